"""`bnablate report`: statistics against scipy and hand-computed answers, grouping, verdicts, outputs, figures."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.reports import collect, make_report
from bnablate.reports.stats import compare, holm, mean_ci
from bnablate.reports.summary import build_report, time_to_target
from bnablate.results import write_record

from .fixtures import make_record


def test_mean_ci_equals_scipy_t_interval():
    x = [0.91, 0.93, 0.90, 0.95, 0.92]
    est = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert est.n == 5 and est.mean == pytest.approx(np.mean(x)) and est.std == pytest.approx(np.std(x, ddof=1))
    assert (est.ci_low, est.ci_high) == (pytest.approx(lo), pytest.approx(hi))


def test_mean_ci_one_or_no_value_has_no_interval():
    one = mean_ci([0.8])
    assert one.n == 1 and one.mean == 0.8 and math.isnan(one.ci_low) and math.isnan(one.std)
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([float("nan")]).mean)


def test_paired_test_when_seeds_match_equals_scipy():
    a = {0: 0.95, 1: 0.97, 2: 0.96, 3: 0.99}
    b = {0: 0.90, 1: 0.93, 2: 0.93, 3: 0.94}
    c = compare(a, b)
    ref = stats.ttest_rel(list(a.values()), list(b.values()))
    ci = ref.confidence_interval(0.95)
    assert c.test == "paired t" and c.n == 4
    assert c.p == pytest.approx(ref.pvalue) and (c.ci_low, c.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    d = np.array(list(a.values())) - np.array(list(b.values()))
    assert c.diff == pytest.approx(d.mean()) and c.effect_size == pytest.approx(d.mean() / d.std(ddof=1))


def test_welch_when_seeds_differ_equals_scipy():
    a = {0: 0.95, 1: 0.97, 2: 0.96}
    b = {0: 0.90, 1: 0.93, 5: 0.91, 6: 0.94}
    c = compare(a, b)
    ref = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert c.test == "Welch t" and c.p == pytest.approx(ref.pvalue)
    assert (c.ci_low, c.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_too_few_seeds_gives_no_test():
    c = compare({0: 0.9}, {0: 0.8})
    assert c.test == "" and math.isnan(c.p) and c.diff == pytest.approx(0.1)


def test_holm_on_a_hand_computed_example():
    # sorted p: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone 0.06
    adjusted = holm([0.01, 0.04, float("nan"), 0.03, 0.005])
    expected = [0.03, 0.06, float("nan"), 0.06, 0.02]
    assert all((math.isnan(a) and math.isnan(e)) or a == pytest.approx(e) for a, e in zip(adjusted, expected))
    assert holm([0.5, 0.9]) == [pytest.approx(1.0), pytest.approx(1.0)]


def _write_study(folder: Path):
    """no_bn ≈ 0.80, bn_pre_act clearly better (+10 points, every seed), bn_post_act ≈ no_bn; seed 3 of bn_post_act
    diverged, one ln_pre_act failed, gn_pre_act has a single seed."""
    base = [0.80, 0.82, 0.79, 0.81]
    for seed, b in enumerate(base):
        write_record(folder, make_record([f"seed={seed}", "variant=no_bn"], val_accs=(0.5, b), test_acc=b))
        write_record(folder, make_record([f"seed={seed}", "variant=bn_pre_act"], val_accs=(0.96, b + 0.1),
                                         test_acc=b + 0.1 + 0.002 * seed))
        status = "diverged" if seed == 3 else "ok"
        write_record(folder, make_record([f"seed={seed}", "variant=bn_post_act"], status=status,
                                         val_accs=(0.5, b + 0.01), test_acc=b + (0.01 if seed % 2 else -0.01)))
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
    assert s.at["bn_post_act", "n_seeds"] == 3 and s.at["bn_post_act", "n_diverged"] == 1
    assert s.at["bn_post_act", "final_test_acc_mean"] == pytest.approx(np.mean([b + (0.01 if i % 2 else -0.01)
                                                                               for i, b in enumerate(base[:3])]))
    assert any("1 diverged run(s) excluded" in n for n in rep.notes)
    assert rep.notes[0] == "Numerics: fp32."  # the report says which precision its runs trained in
    assert s.at["ln_pre_act", "n_failed"] == 1 and s.at["ln_pre_act", "n_seeds"] == 0
    assert math.isnan(s.at["gn_pre_act", "final_test_acc_ci_low"]) and s.at["gn_pre_act", "verdict"] == "too few seeds to test"
    # bn_pre_act vs no_bn: all four seeds on both sides → paired
    treat = [b + 0.1 + 0.002 * i for i, b in enumerate(base)]
    ref = stats.ttest_rel(treat, base)
    assert s.at["bn_pre_act", "test"] == "paired t" and s.at["bn_pre_act", "p"] == pytest.approx(ref.pvalue)
    assert s.at["bn_pre_act", "verdict"].startswith("better than no_bn")
    assert s.at["bn_pre_act", "rank"] == 1 and s.at["no_bn", "verdict"] == "baseline"
    # bn_post_act has seeds {0,1,2} vs {0,1,2,3}: Welch, and no detectable difference
    assert s.at["bn_post_act", "test"] == "Welch t"
    assert s.at["bn_post_act", "verdict"] == "no detectable difference at α=0.05"
    ps = s["p"].dropna()
    assert s["p_holm"].dropna().tolist() == pytest.approx(holm(ps.tolist()))


def test_time_to_target_counts_steps_epochs_seconds():
    results = pd.DataFrame({"run_key": ["a"] * 3 + ["b"] * 3, "epoch": [1, 2, 3] * 2,
                            "val_acc": [0.5, 0.91, 0.95, 0.5, 0.6, 0.7], "steps": [10, 20, 30] * 2,
                            "epoch_time_s": [1.0, 2.0, 3.0] * 2})
    t = time_to_target(results, pd.Series({"a": 0.9, "b": 0.9})).set_index("run_key")
    assert t.loc["a", ["steps_to_target", "epochs_to_target", "seconds_to_target"]].tolist() == [20, 2, 3.0]
    assert not t.loc["b", "reached"] and math.isnan(t.loc["b", "steps_to_target"])


def test_report_files_rebuild_identically_and_figures_render(tmp_path):
    _write_study(tmp_path / "runs")
    _, first = make_report([tmp_path / "runs"], out=tmp_path / "r1", target=0.9)
    _, second = make_report([tmp_path / "runs"], out=tmp_path / "r2", target=0.9)
    names = sorted(p.name for p in first)
    assert names == sorted(["summary.csv", "summary.md", "summary.tex", "learning_curves.png", "learning_curves.pdf",
                            "final_metric.png", "final_metric.pdf", "time_to_target.png", "time_to_target.pdf",
                            "index.html"])
    for name in names:
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes(), name
    import matplotlib.image as mpimg

    for name in ("learning_curves.png", "final_metric.png", "time_to_target.png"):
        img = mpimg.imread(tmp_path / "r1" / name)
        assert img.shape[0] > 200 and img.shape[1] > 300 and img[..., :3].std() > 0.05, name  # drawn, not blank
    md = (tmp_path / "r1" / "summary.md").read_text()
    assert "| bn_pre_act" in md and "better than no_bn" in md and "diverged run(s) excluded" in md
    tex = (tmp_path / "r1" / "summary.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\textbf{" in tex and r"bn\_pre\_act" in tex
    # time to target with the explicit target: bn_pre_act reached 0.9 in its first epoch (10 steps)
    csv = pd.read_csv(tmp_path / "r1" / "summary.csv").set_index("variant")
    assert csv.at["bn_pre_act", "steps_to_target_mean"] == 10 and csv.at["bn_pre_act", "reached"] == "4/4"
    assert csv.at["no_bn", "reached"] == "0/4"


def test_merging_two_sweeps_counts_each_run_once(tmp_path):
    _write_study(tmp_path / "a")
    write_record(tmp_path / "b", make_record(["seed=0", "variant=no_bn"], val_accs=(0.5, 0.8), test_acc=0.8))
    write_record(tmp_path / "b", make_record(["seed=7", "variant=no_bn"], val_accs=(0.5, 0.8), test_acc=0.8))
    _, runs, _ = collect([tmp_path / "a", tmp_path / "b"])
    assert len(runs) == 15 and runs["run_key"].is_unique


runner = CliRunner()


def test_report_cli(tmp_path):
    _write_study(Path("runs/study"))
    res = runner.invoke(app, ["report", "runs/study", "--baseline", "bn_post_act", "--format", "csv,md"],
                        terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "baseline bn_post_act" in res.output and "diverged run(s) excluded" in res.output
    assert sorted(p.name for p in Path("runs/study/report").iterdir()) == ["summary.csv", "summary.md"]


@pytest.mark.parametrize("args,msg", [
    (["report", "nowhere"], "holds no run records"),
    (["report", "runs/study", "--format", "docx"], "Unknown --format docx"),
    (["report", "runs/study", "--metric", "final_test_acuracy"], "Unknown metric 'final_test_acuracy'"),
    (["report", "runs/study", "--by", "dataset,optimiser"], "Unknown --by column(s) optimiser"),
    (["report", "runs/study", "--alpha", "2"], "--alpha must be in (0, 1)"),
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
    assert s.at["train", "verdict"] == "baseline" and s.at["freeze", "test"] == "paired t"
    ref = stats.ttest_rel(accs["freeze"], accs["train"])
    assert s.at["freeze", "p"] == pytest.approx(ref.pvalue) and s.at["freeze", "diff"] == pytest.approx(0.0533333, 1e-4)
    assert "Δ vs finetune.bn=train" in (tmp_path / "report" / "summary.md").read_text()
    bad = CliRunner().invoke(app, ["report", str(tmp_path), "--baseline", "finetune.bm=train", "--format", "csv"])
    assert bad.exit_code == 2 and "unknown column 'finetune.bm'" in bad.output
