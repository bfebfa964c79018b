"""ConfigError, the error of a config that cannot run (shared by the training and packing packages, neither owns it), and
RunsPending, a sweep step that waits for runs another process is training."""


class ConfigError(ValueError):
    """A config that cannot run; the message names the fix. Raised before any training."""


class RunsPending(ConfigError):
    """Runs of this sweep that another process sharing the folder is training (live claims, no records yet): a step
    that needs all of them — the tuning selection, an until-decided look — stops there instead of deciding from part
    of the grid; a rerun once they finish takes the step on every run. The message says how many and what to do."""


def pending_message(pending: int, total: int, what: str, where: str, stopped: str) -> str:
    return (f"{pending} of {total} {what} have no record yet: another process is training them into this folder "
            f"(their claims are {where}). {stopped}; rerun this command when they finish (the finished runs are "
            "kept and not retrained).")
