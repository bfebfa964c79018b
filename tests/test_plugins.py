"""Plugins from outside the package: docs/examples/tiny_lab (a model built with make_block, a norm_layer-style model,
a dataset, a variant and a sweep preset) loaded by --plugin, BNABLATE_PLUGINS or an entry point, in a fresh
interpreter (plugins load before the config schema); a broken plugin is one clear error naming it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "docs" / "examples" / "tiny_lab"
GOLDEN = json.loads((ROOT / "tests" / "golden" / "run_keys.json").read_text())


def bnablate(*args, cwd, env=None, check=True):
    """`python -m bnablate ARGS` in a fresh interpreter (plugins load at import), wide output, tiny_lab importable."""
    full = {**os.environ, "COLUMNS": "250", "PYTHONPATH": os.pathsep.join([str(TINY), str(ROOT)]), **(env or {})}
    full.pop("BNABLATE_PLUGINS", None) if "BNABLATE_PLUGINS" not in (env or {}) else None
    done = subprocess.run([sys.executable, "-m", "bnablate", *args], cwd=cwd, env=full, capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_list_marks_the_plugin_entries_with_their_origin(tmp_path):
    out = bnablate("--plugin", "tiny_lab", "list", "models", cwd=tmp_path).stdout
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert "plugin tiny_lab" in rows["tiny"] and "plugin tiny_lab" in rows["tiny_norm_layer"]
    assert "bnablate" in rows["lenet"]
    for what, name in (("datasets", "blobs"), ("variants", "tiny_bn_post_pool"), ("sweeps", "tiny")):
        out = bnablate("list", what, cwd=tmp_path, env={"BNABLATE_PLUGINS": "tiny_lab"}).stdout
        assert any(line.startswith(f"│ {name} ") and "plugin tiny_lab" in line for line in out.splitlines()), out
    plain = bnablate("list", "models", cwd=tmp_path).stdout
    assert "tiny" not in plain and "origin" not in plain  # without plugins: the tables as before


def test_a_sweep_of_the_plugins_preset_trains_its_model_on_its_data(tmp_path):
    bnablate("--plugin", "tiny_lab", "sweep", "sweep=tiny", "train.epochs=1", "seed=range(2)",
             "variant=no_bn,tiny_bn_post_pool", "out_dir=runs/t", cwd=tmp_path)
    runs = (tmp_path / "runs/t/runs.csv").read_text().splitlines()
    assert len(runs) == 5 and all(",tiny_bn_post_pool," in r or ",no_bn," in r for r in runs[1:])
    assert all(",blobs,tiny," in r for r in runs[1:])


def test_an_installed_package_is_found_through_its_entry_point(tmp_path):
    """A distribution on the path that declares the `bnablate.plugins` entry point (what pip install writes)."""
    dist = tmp_path / "site" / "tiny_lab-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-lab\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[bnablate.plugins]\ntiny_lab = tiny_lab\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(TINY), str(ROOT)])}
    out = bnablate("list", "models", cwd=tmp_path, env=env).stdout
    assert any(line.startswith("│ tiny ") and "plugin tiny_lab" in line for line in out.splitlines()), out


def test_existing_run_keys_do_not_change_when_a_plugin_is_loaded(tmp_path):
    code = ("from bnablate.config import compose_config, to_plain; from bnablate.results import run_key; "
            "print(run_key(to_plain(compose_config([]))))")
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TINY), str(ROOT)]), "BNABLATE_PLUGINS": "tiny_lab"}
    key = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True).stdout
    assert key.strip() == GOLDEN["runs"]["(defaults)"]


BROKEN = {
    "raises.py": ("import nonexistent_module_xyz\n", "No module named 'nonexistent_module_xyz'"),
    "dup.py": ("from bnablate.models.registry import register_model\n"
               "@register_model('mlp', 'a second mlp')\ndef mlp(*a, **k):\n    pass\n", "Duplicate model name 'mlp'"),
    "schema.py": ("from bnablate.config import register_model_schema\nregister_model_schema('x', dict)\n",
                  "must be a @dataclass subclass of ModelConfig"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_plugin_is_one_error_naming_it_and_nothing_is_written(name, tmp_path):
    code, problem = BROKEN[name]
    (tmp_path / name).write_text(code)
    done = bnablate("--plugin", str(tmp_path / name), "sweep", "model=mlp", "out_dir=runs/x", cwd=tmp_path,
                    check=False)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"plugin {tmp_path / name} (from --plugin) did not load" in message and problem in message, message
    assert f"drop `--plugin {tmp_path / name}`" in message and "BNABLATE_PLUGINS" not in message, message
    assert not (tmp_path / "runs").exists()


def test_a_plugin_that_is_not_there_names_where_it_came_from_and_the_fix(tmp_path):
    done = bnablate("list", cwd=tmp_path, env={"BNABLATE_PLUGINS": "no_such_lab"}, check=False)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "plugin no_such_lab (from BNABLATE_PLUGINS) did not load" in message, message
    assert "unset BNABLATE_PLUGINS" in message and "--plugin" not in message, message
    both = bnablate("--plugin", "other_missing_lab", "list", cwd=tmp_path, env={"BNABLATE_PLUGINS": "no_such_lab"},
                    check=False)
    message = " ".join(both.stderr.split())
    assert "plugin no_such_lab (from BNABLATE_PLUGINS)" in message, message
    assert "plugin other_missing_lab (from --plugin)" in message and "drop `--plugin other_missing_lab`" in message


def test_a_broken_entry_point_names_the_package_that_declares_it(tmp_path):
    dist = tmp_path / "site" / "gone_lab-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gone-lab\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[bnablate.plugins]\ngone = gone_lab_module\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
    done = bnablate("list", cwd=tmp_path, env=env, check=False)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "plugin gone (from entry point gone of gone-lab) did not load" in message, message
    assert "uninstall the package that declares it" in message and "BNABLATE_PLUGINS" not in message, message


def test_a_plugin_model_without_a_schema_says_what_is_missing(tmp_path):
    (tmp_path / "noschema.py").write_text("from bnablate.models.registry import register_model\n"
                                          "@register_model('bare', 'no schema, no yaml')\n"
                                          "def bare(*a, **k):\n    pass\n")
    done = bnablate("--plugin", str(tmp_path / "noschema.py"), "run", "model=bare", cwd=tmp_path, check=False)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "model 'bare' is registered (plugin" in message, message
    assert "register_model_schema('bare', ItsConfig)" in message and "Traceback" not in message


@pytest.mark.slow
def test_the_docs_walkthrough_runs_as_written(tmp_path):
    """docs/extending.md's walkthrough (your npz + the tiny_lab plugin's model), each line run by bash in a folder
    that has the repository's docs/ (the walkthrough runs from the repository root)."""
    text = (ROOT / "docs" / "extending.md").read_text()
    block = text.split("<!-- walkthrough -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
           "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
    env.pop("BNABLATE_PLUGINS", None)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = (tmp_path / "runs/mine/runs.csv").read_text().splitlines()
    assert len(runs) == 7 and all(",arrays,tiny," in r for r in runs[1:])
    assert (tmp_path / "runs/mine/report/summary.md").is_file()
