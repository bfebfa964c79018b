"""ConfigError, the error of a config that cannot run: shared by the training and packing packages (neither owns it)."""


class ConfigError(ValueError):
    """A config that cannot run; the message names the fix. Raised before any training."""
