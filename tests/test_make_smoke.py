"""Every reproduction's smoke form passes bnablate's checks: each `bnablate sweep` command that `make -n TARGET
SCALE=smoke` prints is run with --dry-run (every job composed and validated, data loaded, nothing trained or written)
on random files in torchvision's formats, so no real data is needed. A budget the looks cannot decide in, a key a
preset lost, a smoke override that breaks a recipe: each fails here rather than in a user's terminal."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.data.fake_files import write_benchmark_files

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"repro-resnet-paper",  # no smoke form: the paper's scale, for a GPU
        "repro-all"}  # every other target, in turn

pytestmark = [pytest.mark.xdist_group("make-smoke"),
              pytest.mark.skipif(shutil.which("make") is None, reason="needs make")]


def _targets():
    text = (ROOT / "Makefile").read_text()
    return sorted(set(re.findall(r"^(repro-[a-z0-9-]+):", text, re.M)) - SKIP)


def _sweeps(target: str, data: Path, runs: Path):
    """The argument lists of the `bnablate sweep` commands of the target's smoke form, as make would run them."""
    out = subprocess.run(["make", "-n", "-C", str(ROOT), target, "SCALE=smoke", f"DATA_ROOT={data}", f"RUNS={runs}",
                          "VERIFY=false"], capture_output=True, text=True, check=True).stdout
    for line in out.replace("\\\n", " ").splitlines():
        if "bnablate sweep" not in line or line.lstrip().startswith("#"):  # make -n prints the recipes' comments too
            continue
        words = shlex.split(line)
        if len(words) > 2 and words[1].endswith("bnablate") and words[2] == "sweep":
            yield words[3:]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_benchmark_files(tmp_path_factory.mktemp("data"), n_train=2000, n_test=1000)


@pytest.mark.parametrize("target", _targets())
def test_each_smoke_command_passes_the_checks(target, data, tmp_path, monkeypatch):
    monkeypatch.setenv("BNABLATE_DATA_ROOT", str(data))
    commands = list(_sweeps(target, data, tmp_path / "runs"))
    assert commands, f"make -n {target} printed no bnablate sweep command"
    for args in commands:
        res = CliRunner().invoke(app, ["sweep", *args, "--dry-run", "--no-calibrate"], terminal_width=200)
        assert res.exit_code == 0, f"{target}: bnablate sweep {' '.join(args)}\n{res.output[-1500:]}"
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.json"))  # nothing trained
