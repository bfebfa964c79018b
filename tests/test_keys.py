"""Config keys: every key has a role, the key lists derive from the roles, and run keys never change (golden)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.config import CONF_DIR, KEYS, compose_config, to_plain
from bnablate.keys import Role, option, walk
from bnablate.results import run_key
from bnablate.results.tables import build_tables
from bnablate.results.schema import load_records

from .fixtures import preset_plan

GOLDEN = Path(__file__).parent / "golden"
KEYS_FILE = json.loads((GOLDEN / "run_keys.json").read_text())


def _leaves(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


@pytest.mark.parametrize("overrides", [[], ["model=mlp"], ["model=cnn", "dataset=cifar10"]])
def test_every_composed_key_has_a_declared_role(overrides):
    plain = to_plain(compose_config(overrides))
    missing = [k for k in _leaves(plain) if k not in KEYS.by_key]
    assert not missing, f"keys without a role in bnablate/config.py: {missing}"


def test_a_field_without_a_role_is_refused():
    @dataclasses.dataclass
    class Broken:
        ok: int = option(1, Role.RESULT, "fine")
        forgot: int = 3

    with pytest.raises(TypeError, match="'forgot'.*has no role"):
        list(walk(Broken))


def test_key_lists_are_derived_from_roles():
    roles = {s.key: s.role for s in KEYS.specs}
    assert set(KEYS.not_in_run_key) == {k for k, r in roles.items() if r is not Role.RESULT}
    # the lists that disagreed before (issue 20) now agree: nothing outside the run key is a report factor
    assert set(KEYS.not_in_run_key) <= set(KEYS.not_factors)
    assert {"pack_impl", "threads", "device", "pack", "pack_size"} <= set(KEYS.not_factors)
    # locations never reach the tables; result keys always do
    assert not {k for k, r in roles.items() if r is Role.LOCATION} & set(_table_columns())
    assert all(KEYS.by_key[k].table for k, r in roles.items() if r is Role.RESULT)
    # a pack may mix seeds and learning rates, never data, output folders or execution options
    assert {"seed", "optim.lr"} <= set(KEYS.pack_ignores)
    assert not {"out_dir", "dataset.root", "device", "train.batch_size"} & set(KEYS.pack_ignores)


def _table_columns():
    _, runs = build_tables(load_records(GOLDEN / "v1"))
    assert len(runs) == 4
    return list(runs.columns)


def test_neutral_values_are_valid_defaults():
    # a key added after the first release enters at the value that reproduces the old behaviour: its default
    for spec in KEYS.specs:
        if spec.has_neutral:
            assert spec.role is Role.RESULT, spec.key
            assert spec.default == spec.neutral, f"{spec.key}: default {spec.default!r} ≠ neutral {spec.neutral!r}"


@pytest.mark.xdist_group("presets")
@pytest.mark.parametrize("preset", sorted(KEYS_FILE["sweeps"]))
def test_golden_run_keys_of_every_sweep_preset(preset):
    plan = preset_plan(preset)
    got = {" ".join(job): key for job, key in zip(plan.jobs, plan.keys)}
    want = KEYS_FILE["sweeps"][preset]
    changed = {job: (want.get(job), got.get(job)) for job in set(want) | set(got) if want.get(job) != got.get(job)}
    assert not changed, f"run keys of conf/sweep/{preset}.yaml changed (users' finished runs would retrain): " \
                        f"{dict(list(changed.items())[:5])}"


def test_every_sweep_preset_is_pinned():
    presets = sorted(p.stem for p in (CONF_DIR / "sweep").glob("*.yaml"))
    assert presets == sorted(KEYS_FILE["sweeps"]), "a new conf/sweep preset: add its keys to tests/golden/run_keys.json"


@pytest.mark.parametrize("name", sorted(KEYS_FILE["runs"]))
def test_golden_run_keys_of_single_runs(name):
    overrides = [] if name == "(defaults)" else name.split()
    assert run_key(to_plain(compose_config(overrides))) == KEYS_FILE["runs"][name]


V1_SWEEP = ["variant=no_bn,bn_pre_act", "seed=range(2)", "train.epochs=1", "dataset.train_subset=200"]


def test_records_written_before_issue_20_are_skipped_on_resume(tmp_path):
    out = tmp_path / "old"
    shutil.copytree(GOLDEN / "v1" / "records", out / "records")
    before = {p.name: p.read_bytes() for p in (out / "records").iterdir()}
    result = CliRunner().invoke(app, ["sweep", *V1_SWEEP, f"out_dir={out}"])
    assert result.exit_code == 0, result.output
    assert "4 already completed there, skipping them" in result.output
    assert {p.name: p.read_bytes() for p in (out / "records").glob("*.json")} == before  # nothing retrained


# Columns added to runs.csv after the golden v1 table was written: keys with a neutral value (old records show it)
# and measurements old records lack (empty there).
ADDED_SINCE_V1 = {"model.pool", "model.padding", "bn.conv_beta_init", "bn.running_var_init", "peak_mem_mb",
                  "dataset.test_subset", "variant.residual", "variant.residual_init",
                  "n_train", "n_val", "n_test",  # image counts: an accuracy's resolution for the report
                  "data_fingerprint",  # which data a run saw (issue 34): empty for old records
                  "bn.ghost_batch_size",  # the normalization batch (issue 36): neutral null
                  "bn.renorm_warmup", "bn.renorm_ramp", "bn.renorm_rmax", "bn.renorm_dmax",  # Batch Renorm: neutral
                  "train.nproc", "bn.sync",  # data-parallel runs (issue 36): neutral 1 and false
                  "variant.transformer",  # transformer blocks' norm placement (issue 35): neutral pre
                  "optim.warmup_steps", "optim.warmup_method", "optim.warmup_start",  # warm-up: neutral 0 steps
                  "model.init",  # the papers' initialisations (issue 48): neutral torch
                  "bn.ghost_stats", "bn.renorm_avg",  # ghost/renorm running statistics (issue 48): neutral chunk, var
                  # the papers' recipes (issue 48): neutral 0.5, epoch, null, none
                  "variant.dyt_alpha0", "optim.schedule_unit", "optim.milestones", "optim.wd_exclude",
                  "variant.ffn_norm"}  # Yao et al.'s BN-FFN (issue 48): neutral false


def test_tables_of_old_records_keep_their_columns():
    header = (GOLDEN / "v1" / "runs.csv").read_text().splitlines()[0].split(",")
    columns = _table_columns()
    assert [c for c in columns if c in header] == header  # every old column kept, in its order
    assert set(columns) - set(header) == ADDED_SINCE_V1


def test_old_lenet_records_show_the_neutral_values_of_keys_added_since():
    _, runs = build_tables(load_records(GOLDEN / "v1"))
    assert set(runs["model"]) == {"lenet"}
    assert set(runs["model.pool"]) == {"avg"} and runs["model.padding"].isna().all()
    assert set(runs["bn.conv_beta_init"]) == {0.0} and set(runs["bn.running_var_init"]) == {1.0}
    assert set(runs["model.init"]) == {"torch"}  # PyTorch's default: what every run before model.init drew
    assert runs["peak_mem_mb"].isna().all()  # not measured then: empty, not 0


def test_a_model_key_is_not_shown_for_models_without_it():
    from bnablate.config import neutral_values_for

    assert "model.pool" in neutral_values_for({"model": {"name": "lenet"}})
    assert "model.pool" not in neutral_values_for({"model": {"name": "mlp"}})
    assert "bn.conv_beta_init" in neutral_values_for({"model": {"name": "mlp"}})
