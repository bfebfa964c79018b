"""bnablate/catalog.json — the built-ins `bnablate list` names without importing torch — is what the registries hold,
and `bnablate list` prints the same tables whether it reads them live or from the snapshot."""

import json
import os
import subprocess
import sys

from bnablate.bench.startup_bench import LAUNCH, keystroke_env
from bnablate.catalog import SNAPSHOT
from bnablate.plugins import ENV


def python(code, *args):
    env = {k: v for k, v in keystroke_env({}).items() if k != ENV}  # the built-ins alone
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_snapshot_is_current():
    live = json.loads(python("import json; from bnablate.catalog import snapshot; print(json.dumps(snapshot()))"))
    assert json.loads(SNAPSHOT.read_text(encoding="utf-8")) == live, (
        "bnablate/catalog.json is stale: run `python -m bnablate.catalog` (or `make docs`) and commit it")


def test_list_prints_the_same_from_the_registries_and_from_the_snapshot():
    from_snapshot = python(LAUNCH, "list")
    # with the defining modules imported first, `bnablate list` reads the registries themselves
    preload = "import bnablate.models, bnablate.data, bnablate.layers, bnablate.train.bn_stats, bnablate.train.finetune"
    live = python(f"{preload}; {LAUNCH}", "list")
    assert from_snapshot == live and "lenet" in live


def test_writing_refuses_a_loaded_plugin(tmp_path):
    plugin = tmp_path / "nothing.py"
    plugin.write_text("")
    env = {**keystroke_env({}), ENV: str(plugin)}
    done = subprocess.run([sys.executable, "-m", "bnablate.catalog", str(tmp_path / "out.json")], capture_output=True,
                          text=True, env=env)
    assert done.returncode != 0 and "without them" in done.stderr and not (tmp_path / "out.json").exists()
    assert os.path.exists(SNAPSHOT)
