"""The warnings a referee would raise (under-trained, an unreachable time-to-target, variants that build one layer
stack), one interval to cite, and differences in points with a `unit` column (Report.comparisons, comparisons.csv,
decisions.csv) — each on records built to trigger it."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bnablate.api import report as bnablate_report
from bnablate.cli import app
from bnablate.reports.render import comparisons_frame, display_frame, another_test_set_frame
from bnablate.reports.sources import load_sources
from bnablate.reports.summary import build_report
from bnablate.results import write_record
from bnablate.same_stack import same_stack_lines

from .fixtures import make_record

SEEDS = range(4)


def _record(variant, seed, test_acc, losses=(1.0, 0.5, 0.25), val_accs=(0.5, 0.6, 0.7), model="mlp"):
    rec = make_record([f"seed={seed}", f"variant={variant}", f"model={model}"], val_accs=val_accs,
                      test_acc=test_acc)
    for m, loss in zip(rec["metrics"], losses):
        m["train_loss"] = loss
    return rec


def _study(folder, losses_bn=(1.0, 0.5, 0.25), val_accs=(0.5, 0.6, 0.7), model="mlp", variants=("bn_pre_act",)):
    """no_bn converged (flat loss), the others better by ~5 points; their loss as given."""
    for seed in SEEDS:
        write_record(folder, _record("no_bn", seed, 0.80 + 0.01 * seed, (1.0, 0.5, 0.499), val_accs, model))
        for v in variants:
            write_record(folder, _record(v, seed, 0.85 + 0.011 * seed, losses_bn, val_accs, model))


def test_still_falling_loss_is_named_under_trained_and_a_flat_one_is_not(tmp_path):
    _study(tmp_path / "falling")
    rep = bnablate_report(tmp_path / "falling", formats=())
    note = [n for n in rep.notes if n.startswith("Under-trained?")]
    assert len(note) == 1 and "bn_pre_act (50 %)" in note[0] and "no_bn" not in note[0]
    drops = rep.summary.set_index("variant")["train_loss_last_drop_mean"]
    assert drops["bn_pre_act"] == pytest.approx(0.5) and drops["no_bn"] == pytest.approx(0.002)
    _study(tmp_path / "flat", losses_bn=(1.0, 0.5, 0.49))  # a 2 % drop: below the stated 5 %
    assert not any(n.startswith("Under-trained?") for n in bnablate_report(tmp_path / "flat", formats=()).notes)


def test_a_target_no_run_reaches_leaves_the_columns_out_with_a_target_these_runs_reach(tmp_path):
    _study(tmp_path)  # final validation accuracy 0.7 everywhere; the default target (dataset.target_acc) is above
    rep = bnablate_report(tmp_path, formats=("md",))
    note = [n for n in rep.notes if n.startswith("Time-to-target columns omitted")]
    assert len(note) == 1 and "the baseline's median final validation accuracy is 0.7" in note[0], rep.notes
    assert "--target 0.70" in note[0] and "dataset.target_acc" in note[0]
    assert "reached" not in display_frame(rep) and "| reached |" not in (tmp_path / "report/summary.md").read_text()
    reached = bnablate_report(tmp_path, formats=(), target=0.6)  # a target the runs reach: the columns stay
    assert "reached" in display_frame(reached) and set(reached.summary["reached"]) == {"4/4"}
    assert not any(n.startswith("Time-to-target") for n in reached.notes)


def test_bn_post_pool_is_bn_post_act_in_the_blocks_without_a_pool(tmp_path):
    _study(tmp_path, model="lenet", variants=("bn_post_act", "bn_post_pool"))
    rep = bnablate_report(tmp_path, formats=())
    assert any("bn_post_act equals bn_post_pool in 2 of 4 normalized blocks of lenet (fc1, fc2)" in n
               for n in rep.notes), rep.notes
    assert not any("no_bn" in n and "normalized blocks" in n for n in rep.notes)  # different stacks: no note
    res = CliRunner().invoke(app, ["inspect", "model=lenet", "variant=bn_post_pool"])
    assert res.exit_code == 0 and "bn_post_pool equals bn_post_act in 2 of 4" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["sweep", "model=lenet", "variant=bn_post_act,bn_post_pool", "seed=0",
                                   f"out_dir={tmp_path / 'dry'}", "--dry-run"])
    assert res.exit_code == 0 and "same layers: bn_post_act equals bn_post_pool" in " ".join(res.output.split())


def test_identical_stacks_are_one_line_and_different_ones_none():
    a = ({"conv": "Conv2d(1, 8)", "norm": "BatchNorm2d(8)"}, {"norm"})
    b = ({"conv": "Conv2d(1, 8)", "norm": "GroupNorm(2, 8)"}, {"norm"})
    assert same_stack_lines({"x": a, "y": a}, "m") == ["x and y build the same layer stack for m: comparing them "
                                                        "compares seeds only."]
    assert same_stack_lines({"x": a, "z": b}, "m") == []


def test_differences_read_in_points_with_a_unit_and_the_seeds_tests_interval_is_labelled(tmp_path):
    _study(tmp_path)
    src = load_sources([tmp_path])
    # which of 100 test images each run got right: enough for the seeds + test images bootstrap
    rng = np.random.default_rng(0)
    bits = {k: rng.random(100) < 0.8 for k in src.runs["run_key"]}
    inner = build_report(src.results, src.runs, src.identifying, correctness=bits)  # metric units inside
    rep = bnablate_report(tmp_path, formats=("csv", "md"))
    row, raw = rep.comparisons.iloc[0], inner.comparisons.iloc[0]
    assert row["unit"] == "points" and row["diff"] == pytest.approx(100 * raw["diff"])
    np.testing.assert_allclose(row[["ci_low", "ci_high", "mde"]].astype(float),
                               100 * raw[["ci_low", "ci_high", "mde"]].astype(float))
    assert row["margin"] == 1.0 and raw["margin"] == 0.01  # the declared margin, in points like the rest
    csv = pd.read_csv(tmp_path / "report" / "comparisons.csv")
    assert csv.at[0, "unit"] == "points" and csv.at[0, "diff"] == pytest.approx(row["diff"])
    assert comparisons_frame(rep).at[0, "Δ A − B [CI]"].startswith(f"{row['diff']:+.2f}")  # not scaled twice
    # one interval beside the verdict; the seeds + test images one in its own, labelled table
    assert not any("tests" in c for c in comparisons_frame(inner).columns)
    tests = another_test_set_frame(inner)
    lo, hi = 100 * raw["diff_ci_low_tests"], 100 * raw["diff_ci_high_tests"]
    assert np.isfinite(lo) and tests.at[0, "Δ range over seeds + test images"] == f"[{lo:+.2f}, {hi:+.2f}]"
    assert another_test_set_frame(rep).empty  # these records keep no correctness bits: no such table
    assert "Another test set?" not in (tmp_path / "report" / "summary.md").read_text()


def test_decisions_log_in_points_keeps_older_blocks_byte_for_byte(tmp_path):
    from bnablate.sequential import DECISIONS, LOG_COLUMNS, Look, log_rows, write_log

    old_columns = [c for c in LOG_COLUMNS if c != "unit"]  # a file from before the unit column
    old = pd.DataFrame([{**{c: "" for c in old_columns}, "grid": "aaaaaaaaaaaa", "look": "0", "diff": "0.049",
                         "ci_low": "0.0123456789", "ci_high": "0.09"}])
    (tmp_path / DECISIONS).write_text(old[old_columns].to_csv(index=False))
    comp = pd.DataFrame([{"family": "f", "a": "x", "b": "y", "n_pairs": 3, "diff": 0.049, "ci_low": 0.01,
                          "ci_high": 0.09, "ci_level": 0.95, "e_value": 2.0, "p_adj": 0.1, "p_tost_adj": 0.2,
                          "verdict": "undecided", "seeds_needed": 9.0, "family_size": 1, "method": "anytime"}])
    rows = log_rows(Look(0, [0, 1, 2], comp, stop="budget"), 0.05, "bbbbbbbbbbbb", metric="final_test_acc")
    write_log(tmp_path, "bbbbbbbbbbbb", rows)
    log = pd.read_csv(tmp_path / DECISIONS, dtype=str, keep_default_na=False)
    assert list(log.columns) == LOG_COLUMNS
    assert log.iloc[0][old_columns].tolist() == old.iloc[0][old_columns].tolist() and log.at[0, "unit"] == ""
    assert log.at[1, "unit"] == "points" and float(log.at[1, "diff"]) == pytest.approx(4.9)
    assert float(log.at[1, "ci_low"]) == pytest.approx(1.0) and float(log.at[1, "ci_high"]) == pytest.approx(9.0)
