"""The wheel carries conf/, so an installed bnablate works from any directory."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True)
    return next(out.glob("bnablate-*.whl"))


def test_wheel_carries_conf(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for conf in ("bnablate/conf/config.yaml", "bnablate/conf/variant/bn_pre_act.yaml", "bnablate/conf/sweep/placement.yaml",
                 "bnablate/conf/model/lenet.yaml", "bnablate/conf/dataset/digits.yaml",
                 "bnablate/reports/templates/index.html.j2"):  # the HTML report's template travels too
        assert conf in names, conf


def test_installed_wheel_runs_from_another_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200",
           "BNABLATE_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-m", "bnablate", "list", "sweeps"], cwd=elsewhere, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "placement" in res.stdout
    where = subprocess.run([sys.executable, "-c", "import bnablate.config as c; print(c.CONF_DIR)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True)
    assert where.stdout.strip() == str(target / "bnablate" / "conf")


def test_every_module_imports_first():
    """Each module imports as the first bnablate import of a fresh interpreter (a joblib or submitit worker unpickles
    the task function's module directly, so an import cycle that the usual `import bnablate` order hides breaks it)."""
    names = sorted(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                   for path in (ROOT / "bnablate").rglob("*.py") if path.name != "__main__.py")  # it runs the CLI
    script = (
        f"import importlib, sys\nnames = {names!r}\n"
        "bad = []\n"
        "for name in names:\n"
        "    for loaded in [k for k in sys.modules if k == 'bnablate' or k.startswith('bnablate.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        bad.append(f'{name}: {exc!r}')\n"
        "print(len(names)); print('\\n'.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    count, *bad = done.stdout.strip().splitlines()
    assert int(count) > 30 and not bad, "\n".join(bad)
