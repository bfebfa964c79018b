"""Reproduction presets: every repro sweep expands and validates, its report options reach the report (pivot,
largest trainable value, per-epoch table), batch-size lr scaling, and (slow) each `make repro-*` smoke form end to end."""

import math
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.config import CONF_DIR, compose_config
from bnablate.reports import make_report, preset_options
from bnablate.results import load_records, write_record
from bnablate.sweep_plan import plan_sweep
from bnablate.train import build_optimizer, validate_config
from bnablate.train.optim import effective_lr

from .fixtures import make_record, preset_plan, write_cifar10, write_mnist_like

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (CONF_DIR / "sweep").glob("repro_*.yaml"))
GRID = {  # preset → (runs in the full grid, a key that must take the preset's value)
    "repro_mlp_cifar10": (20, ("train.batch_size", 10)), "repro_lenet_fashion": (15, ("train.batch_size", 16)),
    "repro_lenet_fashion_d2l": (15, ("train.batch_size", 256)),
    "repro_lenet_fashion_scratch": (24, ("model.pool", "max")), "repro_lenet_fashion_b4": (1, ("train.batch_size", 4)),
    "repro_placement_lenet_maxpool": (60, ("model.pool", "max")),
    "repro_resnet": (24, ("model.depth", 20)), "repro_resnet_depth": (24, ("optim.lr", 0.1)),
    "repro_resnet_paper": (80, ("train.epochs", 164)),
    "repro_bn_batch": (21, ("train.batch_size", 256)), "repro_bn_batch_renorm": (9, ("bn.renorm_ramp", 200)),
    "repro_bn_batch_gn": (3, ("bn.ghost_batch_size", None)),
    "repro_transformer": (24, ("optim.name", "adamw")), "repro_transformer_norms": (15, ("model.depth", 4)),
    "repro_transformer_peri": (12, ("optim.warmup_steps", 100)),
    # issue 48: the anchor, and the reruns at the papers' recipes
    "repro_resnet_anchor": (1, ("optim.milestones", [32000, 48000])),
    "repro_resnet_he": (24, ("model.init", "he")), "repro_resnet_he_depth": (24, ("model.init", "he")),
    "repro_bn_batch_step": (42, ("bn.ghost_stats", "step")),
    "repro_transformer_xavier": (24, ("model.init", "xavier")),
    "repro_transformer_timm": (15, ("optim.wd_exclude", "timm")),
    "repro_transformer_dyt": (9, ("model.init", "trunc_normal")),
    "repro_placement_lenet": (60, ("train.epochs", 3)), "repro_placement_cnn": (30, ("dataset.train_subset", 10000)),
    "repro_high_lr": (90, ("optim.name", "sgd")), "repro_dropout_order": (30, ("model.name", "cnn")),
    "repro_bias": (20, ("model.name", "lenet")), "repro_batch_size": (120, ("optim.batch_scaling", "linear")),
    "repro_finetune_fashion": (40, ("finetune.source", "mnist")),
    "repro_finetune_fashion_scratch": (10, ("finetune.source", None)),
    "repro_finetune_cifar": (40, ("dataset.classes", [5, 6, 7, 8, 9])),
    "repro_finetune_cifar_scratch": (10, ("dataset.classes", [5, 6, 7, 8, 9])),
    "repro_eval_stats": (30, ("dataset.train_subset", 10000)),
    "repro_dropout_order_restats": (20, ("bn.eval_stats", "precise_nodrop")),
}


def _get(cfg, dotted):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.xdist_group("presets")
@pytest.mark.parametrize("preset", PRESETS)
def test_every_repro_preset_expands_and_validates(preset):
    assert preset in GRID, f"add {preset} to GRID with its expected size"
    plan = preset_plan(preset)  # every job composed and checked (validate_config: no data needed)
    n, (key, value) = GRID[preset]
    assert len(plan.jobs) == n and len(set(plan.keys)) == n
    assert all(_get(c, key) == value for c in plan.configs)
    assert {str(c.out_dir) for c in plan.configs} == {f"runs/{plan.configs[0].sweep.name}"}
    first = (CONF_DIR / "sweep" / f"{preset}.yaml").read_text().splitlines()
    assert first[0] == "# @package _global_" and "make repro-" in first[1]  # the file says how to run it


def test_the_eval_stats_preset_never_packs_so_its_modes_train_identical_weights():
    from bnablate.pack import why_alone

    plan = plan_sweep(["sweep=repro_eval_stats", "device=cpu"], validate_config)
    assert {why_alone(c) for c in plan.configs} == {"pack=false"}
    assert not plan.packs.packs and len(plan.packs.lone) == len(plan.configs)
    assert all(str(c.pack).lower() == "false" for c in plan.configs)  # on CUDA too, where pack=auto would pack


def test_the_placement_presets_write_one_folder():
    cfgs = [compose_config([f"sweep=repro_placement_{m}"]) for m in ("lenet", "cnn", "lenet_maxpool")]
    assert {c.out_dir for c in cfgs} == {"runs/repro-placement"}


@pytest.mark.xdist_group("presets")
def test_the_tutorial_presets_write_one_folder_and_share_the_pytorch_corner():
    """repro_lenet_fashion_scratch's all-PyTorch corner is repro_lenet_fashion's scratch runs (same keys: skipped)."""
    cfgs = {n: compose_config([f"sweep=repro_lenet_fashion{n}"]) for n in ("", "_scratch", "_b4")}
    assert {c.out_dir for c in cfgs.values()} == {"runs/repro-lenet-fashion"}
    main, scratch = preset_plan("repro_lenet_fashion"), preset_plan("repro_lenet_fashion_scratch")
    shared = set(main.keys) & set(scratch.keys)
    assert len(shared) == 3 and all(c.variant.norm == "scratch" and c.bn.momentum == 0.1
                                    for c, k in zip(scratch.configs, scratch.keys) if k in shared)
    assert compose_config(["sweep=repro_lenet_fashion_d2l"]).out_dir == "runs/repro-lenet-fashion-d2l"


@pytest.mark.xdist_group("presets")
def test_the_resnet_depth_study_shares_its_depth_20_runs_with_the_design_study():
    main, depth = preset_plan("repro_resnet"), preset_plan("repro_resnet_depth")
    assert {c.out_dir for c in main.configs + depth.configs} == {"runs/repro-resnet"}
    shared = set(main.keys) & set(depth.keys)
    assert len(shared) == 12 and {int(c.model.depth) for c, k in zip(depth.configs, depth.keys) if k not in shared} \
        == {56}
    # a key of the model the grid picks, given on the command line (the default model, lenet, has no depth)
    smaller = plan_sweep(["sweep=repro_resnet", "model.depth=8", "seed=0"], validate_config)
    assert len(smaller.configs) == 8 and {int(c.model.depth) for c in smaller.configs} == {8}
    paper = preset_plan("repro_resnet_paper")
    assert {int(c.model.depth) for c in paper.configs} == {56, 110} and paper.configs[0].dataset.train_subset is None


@pytest.mark.xdist_group("presets")
def test_finetune_presets_share_a_folder_and_one_checkpoint_per_seed():
    from bnablate.train.finetune import checkpoint_path

    names = ("fashion", "fashion_scratch", "cifar", "cifar_scratch")
    cfgs = {n: compose_config([f"sweep=repro_finetune_{n}"]) for n in names}
    assert {c.out_dir for c in cfgs.values()} == {"runs/repro-finetune"}
    assert {c.sweep.baseline for c in cfgs.values()} == {"finetune.bn=train"}
    for pair in ("fashion", "cifar"):  # 4 modes × 2 batch sizes per seed share one pretraining: 5 for 40 runs
        plan = preset_plan(f"repro_finetune_{pair}")
        assert len({checkpoint_path(c) for c in plan.configs}) == 5


def test_batch_scaling_sets_the_optimizers_lr():
    cfg = compose_config(["optim=sgd", "optim.lr=0.05", "optim.batch_scaling=linear", "optim.ref_batch_size=64"])
    assert effective_lr(cfg.optim, 2) == pytest.approx(0.05 * 2 / 64)
    assert effective_lr(cfg.optim, 256) == pytest.approx(0.2)
    cfg.optim.batch_scaling = "sqrt"
    assert effective_lr(cfg.optim, 16) == pytest.approx(0.025)
    cfg.optim.batch_scaling = "none"
    assert effective_lr(cfg.optim, 16) == 0.05
    opt = build_optimizer(torch.nn.Linear(2, 2).parameters(), compose_config(
        ["optim=adam", "optim.batch_scaling=linear", "optim.ref_batch_size=32"]).optim, batch_size=8)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 4)


@pytest.mark.parametrize("bad, message", [("optim.batch_scaling=cubic", "Unknown optim.batch_scaling 'cubic'"),
                                          ("optim.ref_batch_size=0", "optim.ref_batch_size must be ≥ 1")])
def test_bad_batch_scaling_is_a_usage_error(bad, message):
    result = CliRunner().invoke(app, ["run", "dataset=synthetic", "model=mlp", bad])
    assert result.exit_code == 2 and message in result.output
    assert not Path("runs").exists()


def test_batch_scaled_run_records_the_effective_lr():
    result = CliRunner().invoke(app, ["run", "dataset=synthetic", "model=mlp", "train.epochs=1", "train.batch_size=16",
                                      "optim.batch_scaling=linear", "optim.ref_batch_size=64"])
    assert result.exit_code == 0, result.output
    row = pd.read_csv("runs/run/results.csv").iloc[0]
    assert row["lr"] == 1e-3 and row["optim.batch_scaling"] == "linear"  # the config's lr is the factor …
    import json
    rec = json.loads(next(Path("runs/run/records").glob("*.json")).read_text())
    assert rec["metrics"][0]["lr"] == pytest.approx(1e-3 / 4)  # … and each epoch records the lr actually used
    assert row["epoch_lr"] == pytest.approx(1e-3 / 4)


def _lr_grid_records(out: Path):
    """no_bn trains at lr 0.01 only (diverges at 1.0); bn_pre_act trains at both: the largest trainable lr differs."""
    accs = {("no_bn", 0.01): [0.80, 0.82, 0.81], ("no_bn", 1.0): [0.10, 0.11, None],
            ("bn_pre_act", 0.01): [0.85, 0.86, 0.84], ("bn_pre_act", 1.0): [0.83, 0.84, 0.85]}
    for (variant, lr), per_seed in accs.items():
        for seed, acc in enumerate(per_seed):
            status = "diverged" if acc is None else "ok"
            rec = make_record(["sweep=repro_high_lr", f"variant={variant}", f"optim.lr={lr}", f"seed={seed}"],
                              status=status, val_accs=(0.5, acc or 0.1), test_acc=acc or 0.1)
            write_record(out, rec)


def test_preset_report_options_give_the_pivot_and_largest_trainable_lr(tmp_path):
    out = tmp_path / "runs"
    _lr_grid_records(out)
    assert preset_options(load_records(out)) == {"baseline": "no_bn", "pivot": "lr", "trained_above": 0.5, "per_epoch": [],
                                                 "metric": "final_test_acc", "alpha": 0.05, "margin": None,
                                                 "compare": "baseline"}
    report, written = make_report([out], formats=["csv"])
    (title, frame), = report.views.items()
    assert "by lr" in title and list(frame.columns[-3:]) == ["0.01", "1.0", "largest lr with mean ≥ 0.5"]
    rows = frame.set_index("variant")
    assert rows.at["bn_pre_act", "largest lr with mean ≥ 0.5"] == "1.0"
    assert rows.at["no_bn", "largest lr with mean ≥ 0.5"] == "0.01"
    assert "1 of 3 diverged/failed" in rows.at["no_bn", "1.0"]
    assert rows.at["bn_pre_act", "1.0"].startswith("84.00 ± ")
    names = {p.name for p in written}
    assert {"pivot_lr.csv", "pivot_lr.md", "pivot_lr.png", "pivot_lr.pdf"} <= names


def test_report_cli_options_override_the_preset(tmp_path):
    out = tmp_path / "runs"
    _lr_grid_records(out)
    result = CliRunner().invoke(app, ["report", str(out), "--baseline", "bn_pre_act", "--format", "csv",
                                      "--per-epoch", "train_loss,test_acc"])
    assert result.exit_code == 0, result.output
    assert "Δ vs bn_pre_act" in result.output and "per epoch" in result.output
    per_epoch = pd.read_csv(out / "report" / "per_epoch.csv")
    assert set(per_epoch["epoch"]) == {1, 2} and {"train_loss_mean", "test_acc_ci_low"} <= set(per_epoch.columns)
    last = per_epoch[(per_epoch["variant"] == "bn_pre_act") & (per_epoch["lr"] == 1.0) & (per_epoch["epoch"] == 2)]
    assert last["test_acc_mean"].item() == pytest.approx(0.84) and last["n_seeds"].item() == 3
    bad = CliRunner().invoke(app, ["report", str(out), "--pivot", "momentum"])
    assert bad.exit_code == 2 and "--pivot momentum: not a factor" in bad.output
    bad = CliRunner().invoke(app, ["report", str(out), "--per-epoch", "train_los"])
    assert bad.exit_code == 2 and "Unknown --per-epoch metric(s) train_los" in bad.output


def _write_fixture_data(root: Path) -> None:
    """Enough images for the smoke forms' 500-image training subset after the 10 % validation split."""
    write_mnist_like(root, "MNIST", n_train=600, n_test=30)
    write_mnist_like(root, "FashionMNIST", n_train=600, n_test=30, seed=1)
    write_cifar10(root, per_batch=240, n_test=30)  # 1,200 images: 540 of classes 5–9 left after the validation split


@pytest.mark.slow
@pytest.mark.parametrize("target", ["repro-mlp-cifar10", "repro-lenet-fashion", "repro-lenet-fashion-d2l",
                                    "repro-placement", "repro-high-lr",
                                    "repro-dropout-order", "repro-bias", "repro-batch-size", "repro-finetune",
                                    "repro-eval-stats", "repro-resnet", "repro-bn-batch", "repro-transformer",
                                    "repro-placement-tuned", "repro-placement-best"])
def test_make_repro_smoke_form_end_to_end(tmp_path, target):
    _write_fixture_data(tmp_path / "data")
    runs = tmp_path / "runs"
    proc = subprocess.run(["make", "-C", str(REPO), target, "SCALE=smoke", f"DATA_ROOT={tmp_path / 'data'}",
                           f"RUNS={runs}", "VERIFY=false"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "report skipped" not in proc.stdout + proc.stderr, proc.stdout[-3000:]  # the sweep's report must succeed
    out = runs / f"{target}-smoke"
    table = pd.read_csv(out / "runs.csv")
    assert (table["status"] == "ok").all() and (table["epochs_done"] == 1).all()
    # --until-decided (up to 8 seeds in the smoke form: the fewest that can decide any family) adds seeds where a
    # comparison is undecided
    seeds = set(table["seed"])
    assert seeds == {0, 1} or (seeds <= set(range(8)) and (out / "decisions.csv").exists()), seeds
    report = out / "report"
    assert {"summary.csv", "summary.md", "summary.tex", "learning_curves.png"} <= {p.name for p in report.iterdir()}
    assert math.isfinite(pd.read_csv(report / "summary.csv")["final_test_acc_mean"].iloc[0])
    pivots = {"repro-high-lr": "lr", "repro-dropout-order": "dropout_p", "repro-batch-size": "batch_size",
              "repro-eval-stats": "batch_size", "repro-finetune": "batch_size", "repro-bn-batch": "bn.ghost_batch_size"}
    if target == "repro-placement-tuned":  # each variant at its own lr, and (from the same tuning runs) at one lr
        per_variant = pd.read_csv(report / "summary.csv")
        shared = pd.read_csv(runs / "repro-placement-tuned-shared-smoke" / "report" / "summary.csv")
        assert "selected.optim.lr" in per_variant and shared["selected.optim.lr"].nunique() == 1
        tuned = {p.name: p.read_bytes() for p in (out / "tuning" / "records").iterdir()}
        reused = {p.name: p.read_bytes() for p in (runs / "repro-placement-tuned-shared-smoke" / "tuning" /
                                                   "records").iterdir()}
        assert tuned and reused == tuned  # the shared protocol found the tuning runs: none retrained or added
    if target == "repro-placement-best":  # a race under a plan declared once tuning chose each variant's lr
        assert len(list((out / "plans").glob("*.json"))) == 1 and "race" in pd.read_csv(report / "summary.csv")
    if target == "repro-transformer":  # probed runs: the gradient norms by layer, and warm-up's own comparisons
        assert {"probe.csv", "grad_norms.png"} <= {p.name for p in report.iterdir()}
        assert (out / "report-warmup" / "comparisons.csv").exists()
    if target in pivots:  # the preset's pivot table: one row per variant (or compared value), one column per level
        assert (report / f"pivot_{pivots[target].replace('.', '_')}.csv").exists()


def test_normalize_unit_gives_tutorial_pixels_and_keeps_old_run_keys(tmp_path):
    from bnablate.config import to_plain
    from bnablate.data import load_data
    from bnablate.results import run_key

    write_cifar10(tmp_path / "data", per_batch=20, n_test=10)
    cfg = compose_config(["dataset=cifar10", f"dataset.root={tmp_path / 'data'}", "dataset.verify=false"])
    std = load_data(cfg.dataset)
    cfg.dataset.normalize = "unit"
    unit = load_data(cfg.dataset)
    assert unit.train_x.min() >= 0 and unit.train_x.max() <= 1 and unit.mean == (0.0, 0.0, 0.0)
    assert abs(float(std.train_x.mean())) < 1e-5  # standardized per channel with the training split's statistics
    # a key added later is left out of the run key at its neutral value, so earlier records keep their keys
    plain = to_plain(compose_config(["dataset=digits"]))
    old = {k: v for k, v in plain.items()}
    old["dataset"] = {k: v for k, v in plain["dataset"].items() if k != "normalize"}
    old["optim"] = {k: v for k, v in plain["optim"].items() if k not in ("batch_scaling", "ref_batch_size")}
    assert run_key(plain) == run_key(old)
    assert run_key(to_plain(compose_config(["dataset=digits", "dataset.normalize=unit"]))) != run_key(plain)
    bad = CliRunner().invoke(app, ["run", "dataset=digits", "dataset.normalize=minmax"])
    assert bad.exit_code == 2 and "Unknown dataset.normalize 'minmax'" in bad.output


def test_numeric_factors_sort_as_numbers_in_the_summary(tmp_path):
    from bnablate.reports.render import display_frame

    for bs in (128, 16, 2):
        for seed in range(2):
            write_record(tmp_path, make_record(["variant=bn_pre_act", f"train.batch_size={bs}", f"seed={seed}"]))
    report, _ = make_report([tmp_path], formats=[])
    assert display_frame(report)["batch_size"].tolist() == ["2", "16", "128"]  # not 128, 16, 2 as text would
