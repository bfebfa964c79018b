"""ConfigError, the error of a config that cannot run (shared by the training and packing packages, neither owns it), and
RunsPending, a sweep step that waited in vain for runs another process is training."""


class ConfigError(ValueError):
    """A config that cannot run; the message names the fix. Raised before any training."""


class RunsPending(ConfigError):
    """Runs of this sweep that another process sharing the folder is training (live claims, no records yet) and did
    not finish within --wait-timeout (bnablate/waiting.py): a step that needs all of them — the tuning selection, an
    until-decided look — stops there instead of deciding from part of the grid; a rerun once they finish takes the
    step on every run. The message says how many and what to do."""


def pending_message(pending: int, total: int, what: str, where: str, stopped: str, timeout: float) -> str:
    waited = f"did not finish within --wait-timeout {timeout:g} s" if timeout > 0 else "--wait-timeout 0 does not wait"
    return (f"{pending} of {total} {what} have no record yet: another process is training them into this folder "
            f"(their claims are {where}) and {waited}. {stopped}; rerun this command when they finish, or give a "
            "longer --wait-timeout SECONDS (the finished runs are kept and not retrained).")
