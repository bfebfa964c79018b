"""bnablate: where does Batch Normalization go? Reproducible, paired BN-placement ablations."""

__version__ = "0.1.0"
