"""Issue 23's options: LeNet's pooling and first padding, the from-scratch tutorial's BN init deviations, and the
peak-memory column — shapes, unchanged run keys at the defaults, packing, and the measurement itself."""

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.config import compose_config, to_plain
from bnablate.layers import block_order
from bnablate.models import build_model
from bnablate.results import run_key
from bnablate.train import run_experiment
from bnablate.train.memory import LiveTensorBytes

from .test_packed import assert_packs_like_separate_runs

TUTORIAL = ["model=lenet", "model.pool=max", "model.padding=0"]


def _shapes(model, shape):
    out = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: out.__setitem__(n, tuple(o.shape[1:])))
             for n, m in model.named_children()]
    model.eval()(torch.zeros(2, *shape))
    for h in hooks:
        h.remove()
    return out


def test_tutorial_lenet_geometry_on_28x28():
    """max-pool, padding 0: 1×28×28 → conv5 24×24 → pool 12×12 → conv5 8×8 → pool 4×4 → Linear(256, 120)."""
    cfg = compose_config(TUTORIAL + ["variant=bn_pre_sigmoid"])
    model = build_model(cfg.model, cfg.variant, (1, 28, 28), 10, seed=0, bn=cfg.bn)
    assert _shapes(model, (1, 28, 28)) == {"conv1": (6, 12, 12), "conv2": (16, 4, 4), "flatten": (256,),
                                          "fc1": (120,), "fc2": (84,), "head": (10,)}
    assert isinstance(model.conv1.pool, nn.MaxPool2d) and model.conv1.conv.padding == (0, 0)
    assert model.fc1.linear.in_features == 256
    assert [n for n, _ in model.conv1.named_children()] == ["conv", "norm", "act", "pool"]  # BN before the Sigmoid
    plain = build_model(cfg.model, compose_config(TUTORIAL + ["variant=no_bn_sigmoid"]).variant, (1, 28, 28), 10, 0)
    assert sum(p.numel() for p in plain.parameters()) == 44426  # 156 + 2,416 + 30,840 + 10,164 + 850


def test_defaults_are_todays_lenet_and_keep_run_keys():
    base = compose_config(["model=lenet", "dataset=mnist"])
    assert base.model.pool == "avg" and base.model.padding is None
    explicit = compose_config(["model=lenet", "dataset=mnist", "model.pool=avg", "model.padding=null",
                               "bn.conv_beta_init=0", "bn.running_var_init=1"])
    assert run_key(to_plain(explicit)) == run_key(to_plain(base))
    assert run_key(to_plain(compose_config(["model=lenet", "dataset=mnist", "model.pool=max"]))) != \
        run_key(to_plain(base))
    model = build_model(base.model, base.variant, (1, 28, 28), 10, seed=0)
    assert isinstance(model.conv1.pool, nn.AvgPool2d) and model.conv1.conv.padding == (2, 2)
    # padding=2 stated explicitly builds d2l's model with the same weights as the default (paired init by name)
    two = compose_config(["model=lenet", "model.padding=2"])
    same = build_model(two.model, two.variant, (1, 28, 28), 10, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_post_pool_puts_the_norm_after_either_pooling(pool):
    cfg = compose_config(["model=lenet", f"model.pool={pool}", "variant=bn_post_pool"])
    model = build_model(cfg.model, cfg.variant, (1, 28, 28), 10, seed=0)
    for block in (model.conv1, model.conv2):
        assert block_order(cfg.variant, pools=True) == ["affine", "act", "pool", "norm"]
        assert [n for n, _ in block.named_children()] == ["conv", "act", "pool", "norm"]
        assert isinstance(block.pool, {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}[pool])


def test_inspect_shows_the_tutorial_shapes():
    res = CliRunner().invoke(app, ["inspect", "dataset=fashion_mnist", *TUTORIAL, "variant=bn_pre_sigmoid"],
                             terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "MaxPool2d" in res.output and "6×12×12" in res.output and "16×4×4" in res.output
    assert "in_features=256" in res.output


@pytest.mark.parametrize("variant", [pytest.param("bn_pre_sigmoid", marks=pytest.mark.slow), "bn_post_pool"])
def test_max_pool_lenet_packs_equal_to_separate_runs(variant):
    assert_packs_like_separate_runs(["dataset=synthetic", *TUTORIAL, f"variant={variant}", "train.epochs=2",
                                     "train.batch_size=16"])


def _norms(model):
    return {n: m for n, m in model.named_modules() if n.endswith(".norm")}


@pytest.mark.parametrize("norm", ["batch", "scratch"])
def test_tutorial_bn_init_deviations(norm):
    """β starts at 1 after convs (0 after linears) and the running variance at 0; PyTorch's defaults otherwise."""
    cfg = compose_config(TUTORIAL + [f"variant.norm={norm}", "bn.conv_beta_init=1", "bn.running_var_init=0"])
    norms = _norms(build_model(cfg.model, cfg.variant, (1, 28, 28), 10, seed=0, bn=cfg.bn))
    assert set(norms) == {"conv1.norm", "conv2.norm", "fc1.norm", "fc2.norm"}
    for name, m in norms.items():
        assert torch.equal(m.bias, torch.full_like(m.bias, 1.0 if name.startswith("conv") else 0.0)), name
        assert torch.equal(m.weight, torch.ones_like(m.weight)) and not m.running_var.any(), name
    default = _norms(build_model(cfg.model, compose_config(TUTORIAL + [f"variant.norm={norm}"]).variant,
                                 (1, 28, 28), 10, seed=0))
    assert all(not m.bias.any() and (m.running_var == 1).all() for m in default.values())


def test_momentum_point_nine_weights_the_new_batch_statistics():
    """The tutorial's running = 0.1 · running + 0.9 · batch is PyTorch-convention bn.momentum=0.9."""
    cfg = compose_config(TUTORIAL + ["variant.norm=scratch", "bn.momentum=0.9", "bn.running_var_init=0"])
    model = build_model(cfg.model, cfg.variant, (1, 28, 28), 10, seed=0, bn=cfg.bn).train()
    x = torch.randn(16, 1, 28, 28) * 3 + 2
    model(x)
    conv = model.conv1.conv(x)  # the first norm's input, (16, 6, 24, 24)
    mean = conv.mean(dim=(0, 2, 3))
    torch.testing.assert_close(model.conv1.norm.running_mean, 0.9 * mean)
    torch.testing.assert_close(model.conv1.norm.running_var, 0.9 * conv.var(dim=(0, 2, 3)))


def test_deviations_pack_equal_to_separate_runs():
    assert_packs_like_separate_runs(["dataset=synthetic", *TUTORIAL, "variant=scratch_bn_pre_sigmoid",
                                     "bn.conv_beta_init=1", "bn.momentum=0.9", "bn.running_var_init=0",
                                     "train.epochs=2", "train.batch_size=16"])


def test_live_tensor_bytes_counts_what_ops_allocate_until_freed():
    with LiveTensorBytes() as live:
        a = torch.ones(4 * 2**20 // 4)  # 4 MiB
        b = torch.ones(8 * 2**20 // 4)  # 8 MiB: 12 alive
        view = b[:10]  # a view: no new storage
        del a
        c = torch.zeros(2 * 2**20 // 4)  # 10 alive
        del view
    assert live.peak == 12 * 2**20 and live.current == 10 * 2**20
    del b, c


def _probe_mb(variant, batch):
    cfg = compose_config(["dataset=synthetic", *TUTORIAL, f"variant={variant}", f"train.batch_size={batch}",
                          "train.epochs=1"])
    res = run_experiment(cfg)
    assert res["execution"]["memory_measure"] == "cpu_tensor_probe"
    return res["peak_mem_mb"]


def test_the_probe_sees_the_from_scratch_layers_extra_activations():
    """The from-scratch BN keeps more intermediate tensors for backward than torch's fused layer; both more than no
    norm; memory grows with the batch. Deterministic: counted tensor bytes, not a noisy process measure."""
    none, torch_bn, scratch = (_probe_mb(v, 128) for v in ("no_bn_sigmoid", "bn_pre_sigmoid", "scratch_bn_pre_sigmoid"))
    assert 0 < none < torch_bn < scratch
    assert _probe_mb("scratch_bn_pre_sigmoid", 16) < scratch
    assert _probe_mb("bn_pre_sigmoid", 128) == torch_bn


def test_the_probe_leaves_the_runs_numbers_alone(monkeypatch):
    """The probe trains a copy with the global RNG restored: a dropout run's numbers are those without the probe."""
    from bnablate.train.memory import TrainingMemory

    cfg = compose_config(["dataset=synthetic", "model=mlp", "variant=bn_dropout", "train.epochs=2"])
    probed = run_experiment(cfg)
    monkeypatch.setattr(TrainingMemory, "probe", lambda self, fn, held: None)
    plain = run_experiment(cfg)
    assert plain["peak_mem_mb"] is None and probed["peak_mem_mb"] > 0
    numbers = lambda res: [(m["train_loss"], m["val_loss"], m["test_acc"]) for m in res["metrics"]]  # noqa: E731
    assert numbers(probed) == numbers(plain)  # bitwise: timings aside


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA only")
def test_peak_memory_on_cuda_is_the_real_runs_peak_allocation():
    cfg = compose_config(["dataset=synthetic", *TUTORIAL, "variant=bn_pre_sigmoid", "train.epochs=1", "device=cuda"])
    res = run_experiment(cfg)
    assert res["execution"]["memory_measure"] == "cuda_max_allocated" and res["peak_mem_mb"] > 0


def test_each_run_records_its_peak_memory_and_runs_csv_has_it(tmp_path):
    res = CliRunner().invoke(app, ["sweep", "dataset=synthetic", "model=mlp", "train.epochs=1", "pack=false",
                                   "variant=no_bn", "seed=range(2)", f"out_dir={tmp_path}"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    import json

    import pandas as pd
    records = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    assert len(records) == 2
    for rec in records:
        assert rec["provenance"]["memory_measure"] == "cpu_tensor_probe" and rec["peak_mem_mb"] > 0
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert sorted(runs["peak_mem_mb"]) == sorted(r["peak_mem_mb"] for r in records)
    report = CliRunner().invoke(app, ["report", str(tmp_path), "--metric", "peak_mem_mb"], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    assert "peak MiB" in (tmp_path / "report" / "summary.md").read_text()
