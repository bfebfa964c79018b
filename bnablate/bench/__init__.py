"""Benchmarks: bnablate's trainer against the tutorial-style loop, measured as ratios in one process."""

from .harness import CASES, Case, run_bench, summarize

__all__ = ["CASES", "Case", "run_bench", "summarize"]
