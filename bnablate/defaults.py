"""Choices and defaults the commands' `--help` shows (report formats, `--tune`, `--until-decided`), in a module that
imports nothing, so help answers without loading torch or pandas; the modules that use them import them from here."""

FORMATS = ("csv", "md", "tex", "png", "html")  # png = the figures (PNG and PDF); html = report/index.html

# Tuning selection reads the validation split only; a test metric would select on the numbers the comparison reports.
TUNE_METRICS = ("best_val_acc", "final_val_acc", "final_val_loss")
DEFAULT_TUNE_SEEDS = 2
DEFAULT_TUNE_METRIC = "best_val_acc"
TUNE_SAMPLERS = ("grid", "random", "tpe")  # --tune-sampler: Optuna's GridSampler, RandomSampler, TPESampler
TUNE_PRUNERS = ("none", "median", "asha")  # --tune-pruner: none, Optuna's MedianPruner, SuccessiveHalvingPruner
DEFAULT_RANGE_TRIALS = 20  # --tune-trials for a range: TPE's 10 random start-up trials, then 10 guided ones

# `sweep --until-decided` (bnablate/schedule.py uses them): at most 12 seeds per group; one seed per look once a
# verdict is possible (two at a time costs 0.6–1.5 seeds on average, docs/statistics.md)
DEFAULT_MAX_SEEDS = 12
DEFAULT_SEED_STEP = 1
GOALS = ("baseline", "pairs", "best")  # --goal: report.compare's values
DESIGNS = ("anytime", "fixed", "sequential")  # --design

# `sweep --until-decided`/`--tune` (bnablate/waiting.py): how long a look or the tuning selection waits for runs another
# process sharing the folder is training. An hour: longer than a claim takes to go stale when its owner on another host
# dies (claims.STALE_SECONDS, 30 min: the run is then trained here), and room for the run the other process was
# training when this one reached it; past that the command exits with status 2 rather than hold a job slot.
DEFAULT_WAIT_TIMEOUT = 3600.0
