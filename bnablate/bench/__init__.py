"""Benchmarks: bnablate's trainer against the tutorial-style loop, measured as ratios in one process (harness.py), and
the other measurements of `bnablate bench` (one module each). Importing the package loads none of them: the command's
help reads only cases.py."""
