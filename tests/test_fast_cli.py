"""The commands a person waits on at the keyboard — `bnablate --help`, each command's `--help`, shell completion of
overrides and `bnablate list` — load neither torch nor the other heavy libraries: each runs in a fresh process, which
then reports the modules it imported (never a timing: `bnablate bench --startup` measures those)."""

import json
import subprocess
import sys

import pytest

from bnablate.bench.startup_bench import KEYSTROKES, LAUNCH, TAB, keystroke_env

HEAVY = ("torch", "torchvision", "optuna", "scipy", "statsmodels", "matplotlib", "pandas", "sklearn")
# The CLI as the installed script runs it; afterwards (it ends in SystemExit) the heavy modules it imported, on stderr.
PROBE = (f"try:\n    {LAUNCH}\nfinally:\n    import json, sys\n"
         f"    print('HEAVY=' + json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n")
COMMANDS = ("list", "inspect", "run", "sweep", "report", "bench", "verify")


def cli(args, env=None):
    """(the finished process, the heavy modules it imported)."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          env=keystroke_env(env or {}))
    assert "HEAVY=" in done.stderr, done.stderr
    return done, json.loads(done.stderr.rsplit("HEAVY=", 1)[1])


@pytest.mark.parametrize("name", list(KEYSTROKES))
def test_the_benchmarked_keystrokes_import_nothing_heavy(name):
    args, env = KEYSTROKES[name]
    done, heavy = cli(args, env)
    assert done.returncode == 0 and done.stdout.strip(), done.stdout + done.stderr
    assert heavy == [], f"`{name}` imported {heavy}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_commands_help_imports_nothing_heavy(command):
    done, heavy = cli([command, "--help"])
    assert done.returncode == 0 and f"Usage: bnablate {command}" in done.stdout, done.stdout + done.stderr
    assert heavy == [], f"`bnablate {command} --help` imported {heavy}"


@pytest.mark.parametrize("words,cword,expected", [
    (TAB["COMP_WORDS"], TAB["COMP_CWORD"], "bn_pre_act"),  # bash's words for `variant=bn_p<TAB>`
    ("bnablate sweep model=", "2", "model=lenet"),
    ("bnablate inspect var", "2", "variant="),
])
def test_completion_answers_without_heavy_imports(words, cword, expected):
    done, heavy = cli([], {**TAB, "COMP_WORDS": words, "COMP_CWORD": cword})
    assert done.returncode == 0 and expected in done.stdout.split(), done.stdout + done.stderr
    assert heavy == [], f"completing `{words}` imported {heavy}"


def test_every_list_table_is_shown_without_heavy_imports():
    done, heavy = cli(["list"])
    assert done.returncode == 0, done.stdout + done.stderr
    for title in ("variants (", "models (", "datasets (", "sweeps (", "variant axes", "batch norm and", "config options"):
        assert title in done.stdout
    assert "tv_resnet18" in done.stdout and "cifar10" in done.stdout and "batch_renorm" in done.stdout
    assert heavy == [], f"`bnablate list` imported {heavy}"
