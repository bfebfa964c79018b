"""The statistics every report and `sweep --until-decided` use: one place, tested by simulation (docs/statistics.md)."""

from .anytime import PHI, confidence_radius, log_evalue
from .decide import Comparison, Verdict, compare_paired, decide
from .estimates import Estimate, mean_ci
from .power import min_detectable_effect, seeds_needed
from .survival import km_median

__all__ = ["PHI", "Comparison", "Estimate", "Verdict", "compare_paired", "confidence_radius", "decide",
           "km_median", "log_evalue", "mean_ci", "min_detectable_effect", "seeds_needed"]
