"""`bnablate report`: grouping, diverged and failed runs, pairing, families, verdicts, margins, outputs, figures."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.reports import collect, make_report
from bnablate.reports.summary import build_report, time_to_target
from bnablate.stats import compare_paired
from bnablate.stats.resolution import infer_resolution
from bnablate.results import write_record

from .fixtures import make_record


def _write_study(folder: Path, seeds: int = 8):
    """no_bn ≈ 0.80, bn_pre_act clearly better (+10 points, every seed), bn_post_act ≈ no_bn; seed 3 of bn_post_act
    diverged (its last evaluated accuracy 0.10 counts), one ln_pre_act failed, gn_pre_act has a single seed."""
    base = [0.80, 0.82, 0.79, 0.81, 0.80, 0.83, 0.81, 0.80][:seeds]
    for seed, b in enumerate(base):
        write_record(folder, make_record([f"seed={seed}", "variant=no_bn"], val_accs=(0.5, b), test_acc=b))
        write_record(folder, make_record([f"seed={seed}", "variant=bn_pre_act"], val_accs=(0.96, b + 0.1),
                                         test_acc=b + 0.1 + 0.002 * seed))
        diverged = seed == 3
        write_record(folder, make_record([f"seed={seed}", "variant=bn_post_act"], status="diverged" if diverged
                                         else "ok", val_accs=(0.5, b + 0.01), test_acc=0.10 if diverged else
                                         b + (0.001 if seed % 2 else -0.001)))
    write_record(folder, make_record(["seed=0", "variant=ln_pre_act"], status="failed"))
    write_record(folder, make_record(["seed=0", "variant=gn_pre_act"], val_accs=(0.5, 0.9), test_acc=0.9))
    return base


def test_report_names_mixed_precisions(tmp_path):
    from bnablate.results import write_record

    write_record(tmp_path, make_record(["seed=0"]))
    write_record(tmp_path, make_record(["seed=0", "train.precision=bf16"]))
    results, runs, ident = collect([tmp_path])
    rep = build_report(results, runs, ident)
    assert rep.notes[0].startswith("Numerics: bf16, fp32 (mixed") and "train.precision" in rep.by


def test_report_groups_counts_and_compares(tmp_path):
    base = _write_study(tmp_path)
    results, runs, ident = collect([tmp_path])
    rep = build_report(results, runs, ident)
    s = rep.summary.set_index("variant")
    assert rep.by == ["dataset", "model", "variant"]
    # the diverged run counts at its last evaluated accuracy: the mean is not of the survivors alone
    post = [0.10 if i == 3 else b + (0.001 if i % 2 else -0.001) for i, b in enumerate(base)]
    assert s.at["bn_post_act", "n_seeds"] == 8 and s.at["bn_post_act", "n_diverged"] == 1
    assert s.at["bn_post_act", "final_test_acc_mean"] == pytest.approx(np.mean(post))
    assert any("1 diverged run(s) counted" in n for n in rep.notes)
    assert rep.notes[0] == "Numerics: fp32."  # the report says which precision its runs trained in
    assert s.at["ln_pre_act", "n_failed"] == 1 and s.at["ln_pre_act", "n_seeds"] == 0
    assert math.isnan(s.at["gn_pre_act", "final_test_acc_ci_low"]) and s.at["gn_pre_act", "verdict"] == "undecided"
    # every comparison of the family (4 vs no_bn) at level 1 − 0.05/4, computed by bnablate.stats on the paired seeds
    treat = {i: b + 0.1 + 0.002 * i for i, b in enumerate(base)}
    # these records say no n_test, so the floor is the grid the family's values lie on (docs/statistics.md)
    step = infer_resolution([*base, *treat.values(), *post, 0.9])
    assert 1 / step == pytest.approx(1000)  # values in thousandths: the coarsest grid they all lie on
    ref = compare_paired(treat, dict(enumerate(base)), family_size=4, margin=0.01, resolution=step)
    assert s.at["bn_pre_act", "verdict"] == "better" and s.at["bn_pre_act", "p_adj"] == pytest.approx(ref.p)
    assert s.at["bn_pre_act", "ci_low"] == pytest.approx(ref.ci_low) and s.at["bn_pre_act", "family_size"] == 4
    assert s.at["no_bn", "verdict"] == "" and s.at["no_bn", "family"] == "digits · lenet"
    assert set(rep.summary["verdict"]) <= {"", "better", "worse", "equivalent", "undecided"}
    # bn_post_act diverged on seed 3: its verdict on the mean is withheld, and its two parts answered instead
    assert s.at["bn_post_act", "verdict"] == "undecided" and s.at["bn_post_act", "n_pairs"] == 8
    row = rep.comparisons.set_index("a").loc["bn_post_act"]
    assert row["withheld"].startswith("diverged") and math.isnan(row["ci_low"])
    assert (row["diverged_a"], row["diverged_b"], row["divergence_verdict"]) == ("1/8", "0/8", "undecided")
    assert row["n_trained"] == 7 and row["verdict_trained"] == "equivalent"  # ±0.1 points on the 7 trained seeds
    assert s.at["bn_pre_act", "rank"] == 1 and s.at["no_bn", "rank"] == 2
    c = rep.comparisons
    assert len(c) == 4 and set(c["b"]) == {"no_bn"} and (c["family_size"] == 4).all()


def test_each_row_agrees_with_itself(tmp_path):
    """The verdict is read off the row's own interval: better iff it lies above 0, equivalent iff within ±margin."""
    _write_study(tmp_path)
    rep = bnablate_report(tmp_path, compare="pairs")
    c = rep.comparisons
    assert len(c) == 10  # 5 groups (ln_pre_act only failed, yet planned): all pairs, one family
    m = 0.01
    for _, r in c.iterrows():
        inside = -m < r["ci_low"] and r["ci_high"] < m
        expected = "equivalent" if inside else "better" if r["ci_low"] > 0 else "worse" if r["ci_high"] < 0 \
            else "undecided"
        assert r["verdict"] == expected, r.to_dict()
        assert (r["p_adj"] <= 0.05) == (r["ci_low"] > 0 or r["ci_high"] < 0) or inside
        assert r["ci_level"] == pytest.approx(1 - 0.05 / 10)


def bnablate_report(folder, **kw):
    import bnablate

    return bnablate.report(folder, formats=(), **kw)


def test_lost_seeds_keep_the_pairing_and_are_named(tmp_path):
    """A failed run drops its seed from one side: the comparison pairs the seeds both sides have and says so."""
    for seed, (nb, bn) in enumerate([(340, 341), (345, 346), (330, 322)]):
        write_record(tmp_path, make_record([f"seed={seed}", "variant=bn_pre_act"], test_acc=bn / 359))
        write_record(tmp_path, make_record([f"seed={seed}", "variant=no_bn"], test_acc=nb / 359,
                                           status="failed" if seed == 2 else "ok"))
    rep = bnablate_report(tmp_path)
    row = rep.summary.set_index("variant").loc["bn_pre_act"]
    assert row["n_pairs"] == 2 and row["diff"] == pytest.approx(1 / 359) and row["lost_seeds"] == "2"
    assert any("seeds 2 left out" in n and "2 failed" in n for n in rep.notes)


def test_seeds_one_side_never_ran_are_one_note_not_a_loss(tmp_path):
    """--until-decided gives seeds only to undecided cells: unequal seed sets are said once per family, not as losses."""
    for seed in range(5):
        write_record(tmp_path, make_record([f"seed={seed}", "variant=bn_pre_act"], test_acc=(340 + seed) / 359))
        if seed < 3:
            write_record(tmp_path, make_record([f"seed={seed}", "variant=no_bn"], test_acc=(330 + seed) / 359))
    rep = bnablate_report(tmp_path)
    row = rep.summary.set_index("variant").loc["bn_pre_act"]
    assert row["n_pairs"] == 3 and row["lost_seeds"] == "3,4"
    assert not any("left out" in n for n in rep.notes)
    assert any("different numbers of seeds (bn_pre_act 5, no_bn 3)" in n for n in rep.notes), rep.notes


def test_a_factor_left_out_of_by_is_refused(tmp_path):
    for lr in (0.01, 0.1):
        for seed in range(3):
            for variant in ("no_bn", "bn_pre_act"):
                write_record(tmp_path, make_record([f"seed={seed}", f"variant={variant}", f"optim.lr={lr}"]))
    assert "lr" in bnablate_report(tmp_path).by  # found as a factor by default
    with pytest.raises(ValueError, match=r"holds 6 runs for 3 seed\(s\): they differ in lr. Add lr to --by"):
        bnablate_report(tmp_path, by=["dataset", "model", "variant"])


def test_a_family_is_one_question_unrelated_runs_do_not_change_its_verdicts(tmp_path):
    _write_study(tmp_path / "digits")
    alone = bnablate_report(tmp_path / "digits").comparisons
    for seed in range(8):  # another dataset's sweep in a second folder: its own family
        for variant in ("no_bn", "bn_pre_act", "bn_post_act"):
            write_record(tmp_path / "mnist", make_record([f"seed={seed}", f"variant={variant}", "dataset=mnist"],
                                                         test_acc=0.9 + 0.01 * (variant != "no_bn")))
    both = bnablate_report([tmp_path / "digits", tmp_path / "mnist"])
    digits = both.comparisons[both.comparisons["family"].str.startswith("digits")].reset_index(drop=True)
    pd.testing.assert_frame_equal(digits[alone.columns], alone)
    assert set(both.comparisons["family"]) == {"digits · lenet", "mnist · lenet"}
    assert any("mnist · lenet: 2 comparisons vs no_bn" in n for n in both.notes)


@pytest.mark.parametrize("kw,msg", [
    (dict(margin=0), "margin must be a positive number"), (dict(margin=-1.0), "margin must be a positive number"),
    (dict(alpha=1.0), "alpha must be in (0, 1)"), (dict(alpha=0.0), "alpha must be in (0, 1)"),
    (dict(metric="final_test_acuracy"), "Unknown metric 'final_test_acuracy'"),
    (dict(compare="pairz"), "Unknown compare mode 'pairz'"),
])
def test_bad_report_options_name_the_fix(tmp_path, kw, msg):
    _write_study(tmp_path, seeds=3)
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        bnablate_report(tmp_path, **kw)


def test_margin_is_declared_in_points_and_printed(tmp_path):
    _write_study(tmp_path)
    s = bnablate_report(tmp_path).summary.set_index("variant")
    assert s.at["bn_pre_act", "verdict"] == "better"  # +10.7 points, interval [+9.7, +11.7]: beyond ±1
    wide = bnablate_report(tmp_path, margin=20.0)  # a margin of 20 points declares that gain negligible
    assert wide.settings.margin == pytest.approx(0.20) and "margin ±20 pts" in wide.notes[2]
    assert wide.summary.set_index("variant").at["bn_pre_act", "verdict"] == "equivalent"
    loss = bnablate_report(tmp_path, metric="final_train_loss")
    assert loss.settings.margin is None and "no margin declared" in loss.notes[2]


def test_one_survivor_and_two_diverged_runs_is_neither_first_nor_bold(tmp_path):
    """The issue's case: 1 run at 358/359 + 2 diverged gave 99.72, rank 1, bold, n = 1."""
    for seed in range(3):
        write_record(tmp_path, make_record([f"seed={seed}", "variant=bn_pre_act"], test_acc=(350 + seed) / 359))
        write_record(tmp_path, make_record([f"seed={seed}", "variant=no_bn"], test_acc=358 / 359 if seed == 0 else
                                           36 / 359, status="ok" if seed == 0 else "diverged"))
    rep, _ = make_report([tmp_path], out=tmp_path / "r", formats=["tex", "csv"])
    s = rep.summary.set_index("variant")
    assert s.at["no_bn", "final_test_acc_mean"] == pytest.approx((358 + 72) / 3 / 359)
    assert s.at["no_bn", "n_seeds"] == 3 and s.at["no_bn", "reached"].endswith("/3")
    tex = (tmp_path / "r" / "summary.tex").read_text()
    assert r"\textbf" not in tex  # three seeds decide no pair: nothing is shown as best


def test_latex_typesets_minus_signs_and_leaves_out_empty_columns(tmp_path):
    """A worse variant's negative difference is typeset with a math minus (not a hyphen); steps to target, with no
    run reaching the target, is a column of nothing and is left out."""
    for seed in range(6):  # bn_pre_act 5 points below no_bn at every seed, both below the 0.9 target
        write_record(tmp_path, make_record([f"seed={seed}", "variant=no_bn"], val_accs=(0.5, 0.6),
                                           test_acc=0.80 + seed / 1000))
        write_record(tmp_path, make_record([f"seed={seed}", "variant=bn_pre_act"], val_accs=(0.5, 0.6),
                                           test_acc=0.75 + seed / 1000))
    make_report([tmp_path], out=tmp_path / "r", formats=["tex"])
    tex = (tmp_path / "r" / "summary.tex").read_text()
    row = next(line for line in tex.splitlines() if line.startswith("digits & lenet & bn\\_pre\\_act"))
    assert "$-$5.00 [$-$" in row and " -5.00" not in row, row
    assert "steps to target" not in tex and "—" not in tex
    header = next(line for line in tex.splitlines() if line.startswith("dataset"))
    spec = next(line for line in tex.splitlines() if line.startswith("\\begin{tabular}"))
    assert len(spec.split("{")[2].rstrip("}")) == header.count("&") + 1  # one alignment per column kept


def test_time_to_target_counts_steps_epochs_seconds():
    results = pd.DataFrame({"run_key": ["a"] * 3 + ["b"] * 3, "epoch": [1, 2, 3] * 2,
                            "val_acc": [0.5, 0.91, 0.95, 0.5, 0.6, 0.7], "steps": [10, 20, 30] * 2,
                            "epoch_time_s": [1.0, 2.0, 3.0] * 2})
    t = time_to_target(results, pd.Series({"a": 0.9, "b": 0.9})).set_index("run_key")
    assert t.loc["a", ["steps_to_target", "epochs_to_target", "seconds_to_target"]].tolist() == [20, 2, 3.0]
    # never reached: censored at the steps it trained (the report's Kaplan–Meier median counts it)
    assert not t.loc["b", "reached"] and t.loc["b", "steps_to_target"] == 30


def test_report_files_rebuild_identically_and_figures_render(tmp_path):
    _write_study(tmp_path / "runs")
    _, first = make_report([tmp_path / "runs"], out=tmp_path / "r1", target=0.9)
    _, second = make_report([tmp_path / "runs"], out=tmp_path / "r2", target=0.9)
    names = sorted(p.name for p in first)
    assert names == sorted(["summary.csv", "comparisons.csv", "summary.md", "summary.tex", "forest.png", "forest.pdf",
                            "learning_curves.png", "learning_curves.pdf", "final_metric.png", "final_metric.pdf",
                            "time_to_target.png", "time_to_target.pdf", "index.html"])
    for name in names:
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes(), name
    import matplotlib.image as mpimg

    for name in ("forest.png", "learning_curves.png", "final_metric.png", "time_to_target.png"):
        img = mpimg.imread(tmp_path / "r1" / name)
        assert img.shape[0] > 200 and img.shape[1] > 300 and img[..., :3].std() > 0.05, name  # drawn, not blank
    md = (tmp_path / "r1" / "summary.md").read_text()
    assert md.startswith("final_test_acc (%) by dataset, model, variant") and "margin ±1 pts" in md.splitlines()[0]
    assert "| bn_pre_act" in md and "| better" in md and "diverged run(s) counted" in md
    tex = (tmp_path / "r1" / "summary.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\textbf{" in tex and r"bn\_pre\_act" in tex
    # time to target with the explicit target: bn_pre_act reached 0.9 in its first epoch (10 steps)
    csv = pd.read_csv(tmp_path / "r1" / "summary.csv").set_index("variant")
    assert csv.at["bn_pre_act", "steps_to_target_median"] == 10 and csv.at["bn_pre_act", "reached"] == "8/8"
    assert csv.at["no_bn", "reached"] == "0/8" and math.isnan(csv.at["no_bn", "steps_to_target_median"])
    comps = pd.read_csv(tmp_path / "r1" / "comparisons.csv")
    assert set(comps["verdict"]) <= {"better", "worse", "equivalent", "undecided"} and len(comps) == 4


def test_merging_two_sweeps_counts_each_run_once(tmp_path):
    _write_study(tmp_path / "a")
    write_record(tmp_path / "b", make_record(["seed=0", "variant=no_bn"], val_accs=(0.5, 0.8), test_acc=0.8))
    write_record(tmp_path / "b", make_record(["seed=9", "variant=no_bn"], val_accs=(0.5, 0.8), test_acc=0.8))
    _, runs, _ = collect([tmp_path / "a", tmp_path / "b"])
    assert len(runs) == 27 and runs["run_key"].is_unique


runner = CliRunner()


def test_report_cli(tmp_path):
    _write_study(Path("runs/study"))
    res = runner.invoke(app, ["report", "runs/study", "--baseline", "bn_post_act", "--format", "csv,md"],
                        terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "Δ vs bn_post_act" in res.output and "diverged run(s) counted" in res.output
    assert sorted(p.name for p in Path("runs/study/report").iterdir()) == ["comparisons.csv", "summary.csv",
                                                                            "summary.md"]


@pytest.mark.parametrize("args,msg", [
    (["report", "nowhere"], "holds no run records"),
    (["report", "runs/study", "--format", "docx"], "Unknown --format docx"),
    (["report", "runs/study", "--metric", "final_test_acuracy"], "Unknown metric 'final_test_acuracy'"),
    (["report", "runs/study", "--by", "dataset,optimiser"], "Unknown --by column(s) optimiser"),
    (["report", "runs/study", "--alpha", "2"], "alpha must be in (0, 1)"),
    (["report", "runs/study", "--margin", "0"], "margin must be a positive number"),
    (["report", "runs/study", "--compare", "all"], "Unknown compare mode 'all'"),
])
def test_report_cli_errors(args, msg):
    _write_study(Path("runs/study"))
    res = runner.invoke(app, args, terminal_width=200)
    assert res.exit_code == 2 and msg in " ".join(res.output.split()), res.output
    assert not Path("runs/study/report").exists()


def test_baseline_can_be_a_value_of_another_factor(tmp_path):
    """--baseline finetune.bn=train compares the fine-tuning modes of each variant, paired by seed."""
    accs = {"train": [0.80, 0.82, 0.81], "freeze": [0.85, 0.88, 0.86], "reset": [0.80, 0.83, 0.80]}
    for mode, per_seed in accs.items():
        for seed, acc in enumerate(per_seed):
            write_record(tmp_path, make_record(["finetune.source=digits", f"finetune.bn={mode}", f"seed={seed}"],
                                               val_accs=(0.5, acc), test_acc=acc))
    report, _ = make_report([tmp_path], baseline="finetune.bn=train", formats=["csv", "md", "tex", "png"])
    assert report.compared == "finetune.bn" and "finetune.bn" in report.by
    s = report.summary.set_index("finetune.bn")
    assert s.at["train", "verdict"] == "" and s.at["freeze", "n_pairs"] == 3 and s.at["freeze", "family_size"] == 2
    step = infer_resolution([a for per_seed in accs.values() for a in per_seed])  # no n_test: the values' grid
    assert 1 / step == pytest.approx(100)
    ref = compare_paired(dict(enumerate(accs["freeze"])), dict(enumerate(accs["train"])), family_size=2, margin=0.01,
                         resolution=step)
    assert s.at["freeze", "p_adj"] == pytest.approx(ref.p) and s.at["freeze", "diff"] == pytest.approx(0.0533333, 1e-4)
    assert "Δ vs finetune.bn=train" in (tmp_path / "report" / "summary.md").read_text()
    bad = CliRunner().invoke(app, ["report", str(tmp_path), "--baseline", "finetune.bm=train", "--format", "csv"])
    assert bad.exit_code == 2 and "unknown column 'finetune.bm'" in bad.output


def test_rank_agrees_with_the_verdicts_shown(tmp_path):
    """Baseline mode: the baseline, decided worse than both, ranks last; the two never compared share rank 1."""
    for seed in range(12):
        wobble = (seed % 3) / 359
        write_record(tmp_path, make_record([f"seed={seed}", "variant=no_bn"], test_acc=300 / 359 + wobble))
        write_record(tmp_path, make_record([f"seed={seed}", "variant=bn_pre_act"], test_acc=340 / 359 + wobble))
        write_record(tmp_path, make_record([f"seed={seed}", "variant=bn_post_act"], test_acc=330 / 359 + 2 * wobble))
    s = bnablate_report(tmp_path).summary.set_index("variant")
    assert s.at["bn_pre_act", "verdict"] == s.at["bn_post_act", "verdict"] == "better"
    assert s.at["bn_pre_act", "rank"] == s.at["bn_post_act", "rank"] == 1 and s.at["no_bn", "rank"] == 3
    pairs = bnablate_report(tmp_path, compare="pairs").summary.set_index("variant")
    assert pairs["rank"].to_dict() == {"no_bn": 3, "bn_pre_act": 1, "bn_post_act": 2}
