"""`sweep --tune`: candidates scored on the validation split over tuning seeds, the selection rule (per variant or
shared, finished runs first, ties to the declared order), each variant evaluated at its own value, resume, and the
report's selected.* columns, budget note and unequal-budget refusal."""

import pandas as pd
import pytest
from typer.testing import CliRunner

import bnablate
from bnablate.cli import app
from bnablate.train import ConfigError
from bnablate.tuning import TuneSpec, parse_tune, score_candidates, select
from bnablate.tuning_files import CANDIDATES, SELECTION, TUNING_DIR
from .fixtures import Counting, OtherProcess

# one worker for the module: its module fixture (a trained sweep) is then built once under pytest-xdist
pytestmark = pytest.mark.xdist_group("tuning")

GRID = ["model=mlp", "train.epochs=1", "variant=no_bn,bn_pre_act", "seed=range(2)"]
TUNE = ["optim.lr=0.001,0.3"]


def _runs(rows):
    """Synthetic tuning runs: (cell, candidate, seed, status, best_val_acc, final_test_acc)."""
    frame = pd.DataFrame(rows, columns=["cell", "candidate", "seed", "status", "best_val_acc", "final_test_acc"])
    return frame.assign(label=frame["cell"], context="digits")


SPEC = TuneSpec({"optim.lr": ["0.01", "0.1", "1"]}, [1000, 1001])


def test_selection_reads_the_validation_split_only():
    """Candidate 0 is best on validation, candidate 1 on test: the choice is 0 — and would be 1 on test scores."""
    runs = _runs([("a", 0, s, "ok", 0.90, 0.80) for s in (1000, 1001)] +
                 [("a", 1, s, "ok", 0.85, 0.95) for s in (1000, 1001)] +
                 [("a", 2, s, "ok", 0.10, 0.10) for s in (1000, 1001)])
    assert select(score_candidates(runs, SPEC), SPEC)[0] == {"a": 0}
    on_test = TuneSpec(SPEC.grid, SPEC.seeds, metric="final_test_acc")  # what parse_tune refuses
    assert select(score_candidates(runs, on_test), on_test)[0] == {"a": 1}
    with pytest.raises(ConfigError, match="selection never sees the test split"):
        parse_tune(["optim.lr=0.01,0.1"], metric="final_test_acc")


def test_finished_candidates_first_then_score_then_declared_order():
    runs = _runs([("a", 0, s, "ok", 0.5, 0) for s in (1000, 1001)] +
                 [("a", 1, 1000, "ok", 0.9, 0), ("a", 1, 1001, "diverged", 0.1, 0)] +  # a diverged seed: not clean
                 [("a", 2, s, "ok", 0.5, 0) for s in (1000, 1001)] +  # ties with 0: the earlier one wins
                 [("b", k, s, "failed", None, None) for k in range(3) for s in (1000, 1001)])
    chosen, notes = select(score_candidates(runs, SPEC), SPEC)
    assert chosen == {"a": 0, "b": -1} and len(notes) == 1 and notes[0].startswith("b: every tuning candidate failed")


def test_shared_mode_picks_one_value_by_the_mean_over_variants():
    rows = [("no_bn", 0, s, "ok", 0.80, 0) for s in (1000, 1001)] + [("no_bn", 1, s, "ok", 0.70, 0) for s in (1000, 1001)]
    rows += [("bn", 0, s, "ok", 0.85, 0) for s in (1000, 1001)] + [("bn", 1, s, "ok", 0.99, 0) for s in (1000, 1001)]
    runs = _runs(rows)
    spec = TuneSpec({"optim.lr": ["0.01", "0.1"]}, [1000, 1001])
    assert select(score_candidates(runs, spec), spec)[0] == {"no_bn": 0, "bn": 1}
    shared = TuneSpec(spec.grid, spec.seeds, mode="shared")
    assert select(score_candidates(runs, shared), shared)[0] == {"no_bn": 1, "bn": 1}  # means 0.825 vs 0.845


def test_grid_over_two_keys_is_their_product_in_declared_order():
    spec = parse_tune(["optim.lr=0.1,0.01", "optim.weight_decay=0,1e-4"], seeds=3)
    assert spec.candidates[:2] == [("optim.lr=0.1", "optim.weight_decay=0"), ("optim.lr=0.1", "optim.weight_decay=0.0001")]  # as Hydra writes 1e-4
    assert spec.budget == 4 * 3 and spec.seeds == [1000, 1001, 1002]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """Interrupted after 3 tuning runs, then resumed: the second call trains the rest, nothing twice."""
    out = tmp_path_factory.mktemp("tune") / "runs"
    first = Counting(stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        bnablate.sweep(GRID, out_dir=out, reporter=first, tune=TUNE)
    second = Counting()
    runs = bnablate.sweep(GRID, out_dir=out, reporter=second, tune=TUNE)
    return out, runs, first, second


def test_tuning_then_evaluation_resumes_without_training_twice(tuned):
    out, runs, first, second = tuned
    assert len(first.trained) == 3 and not set(first.trained) & set(second.trained)
    assert len(first.trained) + len(second.trained) == 2 * 2 * 2 + 2 * 2  # variants × lrs × tuning seeds + evaluation
    tuning = pd.read_csv(out / TUNING_DIR / "runs.csv")
    assert sorted(tuning["seed"].unique()) == [1000, 1001] and len(tuning) == 8
    assert sorted(runs["seed"].unique()) == [0, 1] and len(runs) == 4  # the evaluation runs only, in OUT_DIR
    selection = pd.read_csv(out / TUNING_DIR / SELECTION).set_index("group")
    for variant, g in runs.groupby("variant"):  # each variant evaluated at its own selected value
        assert set(g["lr"]) == {selection.at[variant, "selected.optim.lr"]}
    cands = pd.read_csv(out / TUNING_DIR / CANDIDATES)
    for group, g in cands.groupby("label"):  # the selected candidate has the best validation score of its group
        assert g.loc[g["selected"], "score"].iloc[0] == g["score"].max()
    assert bnablate.sweep(GRID, out_dir=out, reporter=(again := Counting()), tune=TUNE) is not None
    assert again.trained == []  # a rerun trains nothing


def test_report_has_selected_columns_budget_and_sensitivity(tuned, tmp_path):
    out = tuned[0]
    rep = bnablate.report(out, out=tmp_path / "r", formats=["csv", "md", "tex", "png", "html"])
    s = rep.summary.set_index("variant")
    assert "lr" not in rep.by and "selected.optim.lr" in s.columns  # chosen per group, not a factor
    assert set(rep.comparisons["b"]) == {"no_bn"} and len(rep.comparisons) == 1  # the variants are compared
    assert any("budget 2 candidates × 2 seeds = 4 runs per group" in n for n in rep.notes)
    assert "selected.optim.lr" in (tmp_path / "r" / "summary.md").read_text()
    assert (tmp_path / "r" / "sensitivity.png").exists() and "sensitivity" in (tmp_path / "r" / "index.html").read_text()


def test_unequal_budgets_are_refused_unless_allowed(tuned, tmp_path):
    import shutil

    out = tmp_path / "runs"
    shutil.copytree(tuned[0], out)
    path = out / TUNING_DIR / SELECTION
    sel = pd.read_csv(path, dtype=str, keep_default_na=False)
    sel.loc[0, "budget"], sel.loc[0, "grid"] = "10", "optim.lr=0.001,0.003,0.01,0.03,0.3"
    sel.to_csv(path, index=False)
    with pytest.raises(ValueError, match="tuned under different protocols"):
        bnablate.report(out, formats=())
    rep = bnablate.report(out, formats=(), allow_unequal_budgets=True)
    assert any("unequal protocols" in n for n in rep.notes)
    res = CliRunner().invoke(app, ["report", str(out), "--format", "csv"], terminal_width=200)
    assert res.exit_code == 2 and "--allow-unequal-budgets" in res.output


def test_selection_waits_for_tuning_runs_another_process_is_training(tuned, tmp_path):
    """Two sweeps share a folder: a tuning run the other one holds (a live claim, no record yet) is waited for, and
    the selection is then made on every run exactly as before, training nothing; with --wait-timeout 0 nothing is
    selected from part of the grid; if the other process dies during the wait, this one trains the run."""
    import shutil

    from bnablate.errors import RunsPending
    from bnablate.results.claims import claim

    out = tmp_path / "runs"
    shutil.copytree(tuned[0], out)
    tuning = out / TUNING_DIR
    record = sorted((tuning / "records").glob("*.json"))[0]
    data = record.read_bytes()
    record.unlink()  # as if the other process were still training it
    claim(tuning, record.stem)  # held by this test's process: a live owner on this host
    selection = (tuning / SELECTION).read_text()
    first = Counting()
    with pytest.raises(RunsPending, match="1 of 8 tuning runs have no record yet.*--wait-timeout 0 does not wait"):
        bnablate.sweep(GRID, out_dir=out, reporter=first, tune=TUNE, wait_timeout=0)
    assert first.trained == [] and (tuning / SELECTION).read_text() == selection  # nothing selected anew
    finishing = OtherProcess(tuning, record.stem, data)
    bnablate.sweep(GRID, out_dir=out, reporter=finishing, tune=TUNE, wait_poll=0)
    assert len(finishing.lines) == 1 and f"{tuning}/records/*.lock" in finishing.lines[0]
    assert finishing.trained == [] and (tuning / SELECTION).read_text() == selection
    record.unlink()
    claim(tuning, record.stem)
    dying = OtherProcess(tuning, record.stem)  # the other process is killed while this one waits
    bnablate.sweep(GRID, out_dir=out, reporter=dying, tune=TUNE, wait_poll=0)
    assert dying.trained == [record.stem] and (tuning / SELECTION).read_text() == selection


@pytest.mark.parametrize("model,grid,budget", [
    pytest.param("mlp", "optim.lr=0.001,0.3", 4, id="mlp"),
    pytest.param("lenet", "optim.lr=0.003,0.03,0.3", 6, id="issue-command", marks=pytest.mark.slow),
])
def test_cli_done_when(tmp_path, model, grid, budget):
    """The issue's command on the embedded data (LeNet, slow; the MLP form in the default suite): summary.csv with
    selected.optim.lr; a rerun trains nothing."""
    args = ["sweep", f"model={model}", "variant=no_bn,bn_pre_act", "--tune", grid, "seed=range(2)", "train.epochs=1",
            f"out_dir={tmp_path / 'D'}"]
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code == 0, res.output
    assert f"× 2 seeds = {budget} runs" in res.output and "tuned no_bn" in res.output
    lines = [line for line in res.output.splitlines() if line.startswith("[")]
    for variant in ("no_bn", "bn_pre_act"):  # each tuning run's line names the candidate it tries
        for lr in grid.split("=", 1)[1].split(","):
            for seed in (1000, 1001):
                assert sum(f" {variant} optim.lr={lr} seed={seed}: ok" in line for line in lines) == 1, res.output
    assert any(" no_bn seed=0: ok" in line for line in lines), res.output  # an evaluation run: one value per variant
    summary = pd.read_csv(tmp_path / "D" / "report" / "summary.csv")
    assert "selected.optim.lr" in summary and summary["selected.optim.lr"].notna().all()
    again = CliRunner().invoke(app, args, terminal_width=200)
    assert again.exit_code == 0 and "ok, test_acc" not in again.output  # every run "already done, skipped"


def test_sensitivity_titles_show_result_overrides_only_and_wrap():
    from bnablate.reports.tuned import context_title

    context = ("dataset=cifar10 dataset.train_subset=10000 model=cnn model.channels=[16,32,64] train.epochs=6 "
               "threads=1 train.eval_batch_size=256 dataset.verify=False device=cpu")
    title = context_title(context)
    assert "threads" not in title and "eval_batch_size" not in title and "verify" not in title and "device" not in title
    assert "dataset.train_subset=10000" in title and "train.epochs=6" in title
    assert all(len(line) <= 60 for line in title.splitlines()) and len(title.splitlines()) > 1
    assert context_title("") == "all runs" and context_title("threads=1") == "all runs"


def test_rerun_with_execution_options_replaces_the_cells_rows(tmp_path):
    import pandas as pd

    from bnablate.tuning_files import load_selection, write_selection

    def table(extra):
        cells = [f"variant={v} train.epochs=1{extra}" for v in ("no_bn", "bn_pre_act")]
        return pd.DataFrame({"cell": cells, "selected.optim.lr": ["0.01", "0.1"]})

    write_selection(tmp_path, table(" threads=1 train.eval_batch_size=256"), table(" threads=1"))
    write_selection(tmp_path, table(""), table(""))  # the same grid points, without the execution options
    assert list(load_selection(tmp_path)["cell"]) == ["variant=no_bn train.epochs=1", "variant=bn_pre_act train.epochs=1"]
    other = table("").assign(cell=lambda f: f["cell"].str.replace("epochs=1", "epochs=2"))
    write_selection(tmp_path, other, other)
    assert len(load_selection(tmp_path)) == 4  # a different result override is another cell: both kept
