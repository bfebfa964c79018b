"""bnablate: where does Batch Normalization go? Reproducible, paired BN-placement ablations.

The Python API (the same functions the `bnablate` CLI calls; see each one's help):

    import bnablate
    runs = bnablate.sweep(["variant=no_bn,bn_pre_act", "seed=range(3)"], out_dir="runs/nb")  # one row per run
    record = bnablate.run(["variant=bn_post_act", "train.epochs=2"], out_dir="runs/one")     # the run's record
    report = bnablate.report(["runs/nb"], baseline="no_bn")                                  # statistics, tables, figures
    runs = bnablate.load_results("runs/nb")                                                 # runs.csv as a DataFrame
    bill = bnablate.bill(["variant=no_bn,bn_pre_act"], until_decided=True)                    # runs and time, before
"""

__version__ = "0.1.0"

API = ("sweep", "run", "report", "load_results", "plan", "bill")


def __getattr__(name: str):
    # Imported on first use: `import bnablate` stays light (no torch, Hydra or pandas until a function is called).
    if name in API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'bnablate' has no attribute '{name}'")


__all__ = ["__version__", *API]
