"""Learning-rate warm-up (optim.warmup_*), AdamW, and the gradient-norm probe (train.probe) with its report figure."""

import math

import pytest
import torch
import torch.nn.functional as F

import bnablate
from bnablate.config import compose_config
from bnablate.data import load_data
from bnablate.models import build_model
from bnablate.pack import packable
from bnablate.seeding import generator
from bnablate.train import ConfigError, run_experiment
from bnablate.train.loop import batch_indices
from bnablate.train.optim import Warmup, build_optimizer, build_scheduler

BASE = ["dataset=synthetic", "model=cnn", "model.channels=[8,16]", "variant=bn_pre_act", "train.batch_size=32",
        "train.epochs=2"]


def _lrs_seen(over, steps, epochs=1):
    """The lr each optimizer step ran at, and the schedule's lr after each epoch."""
    cfg = compose_config(["optim=sgd"] + over).optim
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg, 64)
    sched = build_scheduler(opt, cfg, epochs)
    seen, after = [], []
    step = Warmup(cfg, lambda o: (seen.append(o.param_groups[0]["lr"]), o.step()))
    for _ in range(epochs):
        for _ in range(steps):
            step(opt)
        if sched is not None:
            sched.step()
        after.append(opt.param_groups[0]["lr"])
    return seen, after


def test_linear_warm_up_rises_from_zero_to_lr_per_step_and_leaves_the_schedule_alone():
    seen, after = _lrs_seen(["optim.lr=0.1", "optim.warmup_steps=4", "optim.schedule=cosine"], steps=3, epochs=2)
    # steps 1-4 at 1/4 … 4/4 of epoch 1's lr; steps 5-6 in epoch 2 at the cosine's lr for epoch 2 (0.05 for T_max=2)
    assert seen == pytest.approx([0.025, 0.05, 0.075, 0.05, 0.05, 0.05])
    assert after == pytest.approx([0.05, 0.0])  # the cosine's own values: the warm-up put each step's lr back


def test_constant_warm_up_is_he_et_al_s_start():
    seen, _ = _lrs_seen(["optim.lr=0.1", "optim.warmup_steps=3", "optim.warmup_method=constant",
                         "optim.warmup_start=0.1"], steps=5)
    assert seen == pytest.approx([0.01, 0.01, 0.01, 0.1, 0.1])
    seen, _ = _lrs_seen(["optim.lr=0.1", "optim.warmup_steps=2", "optim.warmup_start=0.5"], steps=3)
    assert seen == pytest.approx([0.075, 0.1, 0.1])  # linear from half of lr


def test_a_warm_up_changes_training_and_none_leaves_it_bit_for_bit():
    plain = run_experiment(compose_config(BASE))
    zero = run_experiment(compose_config(BASE + ["optim.warmup_steps=0"]))
    warm = run_experiment(compose_config(BASE + ["optim.warmup_steps=10"]))
    assert [m["train_loss"] for m in zero["metrics"]] == [m["train_loss"] for m in plain["metrics"]]
    assert warm["metrics"][0]["train_loss"] != plain["metrics"][0]["train_loss"]
    assert warm["metrics"][0]["lr"] == plain["metrics"][0]["lr"]  # the lr column is the schedule's


@pytest.mark.parametrize("over,fix", [
    (["optim.warmup_steps=18"], "not shorter than the run (2 epochs × 9 steps = 18 steps)"),
    (["optim.warmup_steps=-1"], "optim.warmup_steps must be ≥ 0"),
    (["optim.warmup_steps=5", "optim.warmup_method=constant"], "optim.warmup_start=0.1"),
    (["optim.warmup_start=1.0"], "optim.warmup_start must be in [0, 1)"),
    (["optim.warmup_method=cosine"], "optim.warmup_method"),
])
def test_bad_warm_ups_are_refused_before_anything_is_written(tmp_path, over, fix):
    with pytest.raises(ConfigError, match=None) as e:
        bnablate.run(BASE + over, out_dir=tmp_path / "out")
    assert fix in str(e.value)
    assert not (tmp_path / "out" / "records").exists() or not any((tmp_path / "out" / "records").iterdir())


def test_adamw_decouples_weight_decay():
    p = torch.nn.Parameter(torch.ones(3))
    cfg = compose_config(["optim=adam", "optim.name=adamw", "optim.lr=0.1", "optim.weight_decay=0.5"]).optim
    opt = build_optimizer([p], cfg, 64)
    assert isinstance(opt, torch.optim.AdamW)
    p.grad = torch.zeros(3)  # no gradient: only the decoupled decay moves p, by lr × wd × p
    opt.step()
    assert p.detach() == pytest.approx(torch.full((3,), 1 - 0.1 * 0.5))


def test_the_probe_reads_the_gradient_at_initialisation_and_changes_nothing():
    over = BASE + ["seed=3"]
    probed = run_experiment(compose_config(over + ["train.probe=true"]))
    plain = run_experiment(compose_config(over))
    assert [m["train_loss"] for m in probed["metrics"]] == [m["train_loss"] for m in plain["metrics"]]
    rows = probed["probe"]
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 1), (2, 10)]  # 9 steps per epoch
    assert "probe" not in plain
    assert "train.probe" in packable([compose_config(over + ["train.probe=true", f"seed={s}"]) for s in (0, 1)])

    # the first row is the gradient of the first batch's loss at the initial weights, layer by layer
    cfg = compose_config(over)
    data = load_data(cfg.dataset)
    model = build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, 3, bn=cfg.bn)
    idx = batch_indices(len(data.train_x), 32, generator(3, "batches"))[0]
    model.train()
    F.cross_entropy(model(data.train_x[idx]), data.train_y[idx]).backward()
    expected = {n: float(m.weight.grad.norm()) for n, m in model.named_modules()
                if isinstance(getattr(m, "weight", None), torch.nn.Parameter) and m.weight.dim() >= 2}
    assert list(rows[0]["grad_norm"]) == list(expected)
    assert rows[0]["grad_norm"] == pytest.approx(expected, rel=1e-5)
    assert rows[0]["stream_rms"] == {}  # the cnn has no residual blocks


def test_the_probe_records_the_residual_stream_of_each_block_and_trains_alone(tmp_path):
    over = ["dataset=digits", "model=vit", "model.dim=16", "model.depth=3", "model.heads=2", "train.epochs=1",
            "variant=tf_post_ln", "train.probe=true"]
    rec = bnablate.run(over, out_dir=tmp_path)
    (row,) = rec["probe"]
    assert list(row["stream_rms"]) == ["blocks.0", "blocks.1", "blocks.2"]
    # Post-LN normalizes the stream after every sublayer: RMS 1 up to LayerNorm's eps and its affine init (γ=1, β=0)
    assert all(math.isclose(v, 1.0, rel_tol=1e-3) for v in row["stream_rms"].values())
    report = bnablate.report(tmp_path)
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"probe.csv", "grad_norms.png", "grad_norms.pdf"} <= names
    table = (tmp_path / "report" / "probe.csv").read_text().splitlines()
    assert table[0].split(",") == report.by + ["run_key", "seed", "epoch", "step", "kind", "layer", "depth", "value"]
    assert sum(",stream_rms," in line for line in table) == 3


def test_a_report_without_probed_runs_has_no_probe_files(tmp_path):
    bnablate.run(BASE[:-1] + ["train.epochs=1"], out_dir=tmp_path)
    bnablate.report(tmp_path)
    assert not {"probe.csv", "grad_norms.png"} & {p.name for p in (tmp_path / "report").iterdir()}


def test_the_probe_refuses_torch_compile(tmp_path):
    with pytest.raises(ConfigError, match="train.compile=false with train.probe=true"):
        bnablate.run(BASE + ["train.probe=true", "train.compile=true"], out_dir=tmp_path)
