"""Choices and defaults the commands' `--help` shows (report formats, `--tune`, `--until-decided`), in a module that
imports nothing, so help answers without loading torch or pandas; the modules that use them import them from here."""

FORMATS = ("csv", "md", "tex", "png", "html")  # png = the figures (PNG and PDF); html = report/index.html

# Tuning selection reads the validation split only; a test metric would select on the numbers the comparison reports.
TUNE_METRICS = ("best_val_acc", "final_val_acc", "final_val_loss")
DEFAULT_TUNE_SEEDS = 2
DEFAULT_TUNE_METRIC = "best_val_acc"

# `sweep --until-decided`: bnablate/sequential.py holds the same two values (and uses its own); tests/test_fast_cli.py
# checks that they agree until sequential.py imports them from here.
DEFAULT_MAX_SEEDS = 12
DEFAULT_SEED_STEP = 2
