"""Where bnablate's Hydra configs live (conf/), in a module without Hydra, so shell completion can read it fast."""

from __future__ import annotations

from pathlib import Path

_PKG_DIR = Path(__file__).resolve().parent
# An installed wheel carries conf/ inside the package; a source checkout (editable install) has it beside the package.
CONF_DIR = _PKG_DIR / "conf" if (_PKG_DIR / "conf").is_dir() else _PKG_DIR.parent / "conf"
