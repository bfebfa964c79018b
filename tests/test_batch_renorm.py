"""Batch Renormalization (Ioffe 2017): BN while r_max = 1 and d_max = 0 (a whole model's training, weights and
buffers, under every bn.ghost_stats), the paper's correction once the schedule opens (r, d clipped, no gradient
through them), its running σ (bn.renorm_avg=std), BN's evaluation; its options refused where they cannot run."""

import pytest
import torch
from torch import nn

from bnablate.config import compose_config
from bnablate.errors import ConfigError
from bnablate.layers.batch_renorm import BatchRenorm1d, BatchRenorm2d
from bnablate.pack.rules import packable
from bnablate.train import validate_config


@pytest.mark.parametrize("cls,plain,shape", [(BatchRenorm2d, nn.BatchNorm2d, (16, 3, 5, 5)),
                                             (BatchRenorm1d, nn.BatchNorm1d, (16, 4))])
def test_during_the_warm_up_it_is_batch_norm(cls, plain, shape):
    torch.manual_seed(0)
    brn, bn = cls(shape[1], warmup=10, ramp=5), plain(shape[1])
    for _ in range(3):  # three training steps: outputs and running statistics as BN's
        x = torch.randn(*shape) * 2 + 0.5
        assert torch.allclose(brn(x), bn(x), atol=1e-5)
    assert brn.limits() == (1.0, 0.0)
    assert torch.allclose(brn.running_mean, bn.running_mean, atol=1e-6)
    assert torch.allclose(brn.running_var, bn.running_var, atol=1e-5)
    brn.eval(), bn.eval()
    x = torch.randn(*shape)
    assert torch.allclose(brn(x), bn(x), atol=1e-6)


def test_once_open_it_corrects_toward_the_running_statistics_without_gradient_through_r_d():
    torch.manual_seed(1)
    brn = BatchRenorm1d(3, warmup=0, ramp=2, rmax=2.0, dmax=0.5)
    brn.num_batches_tracked.fill_(10)  # past warm-up and ramp: the final limits
    assert brn.limits() == (2.0, 0.5)
    brn.running_mean.fill_(3.0)
    brn.running_var.fill_(0.01)  # far from the batch's statistics: r and d hit their clips
    x = torch.randn(32, 3, requires_grad=True)
    y = brn(x)
    mean, var = x.mean(0), x.var(0, unbiased=False)
    std = (var + brn.eps).sqrt()
    r = (std / (0.01 + brn.eps) ** 0.5).clamp(0.5, 2.0).detach()
    d = ((mean - 3.0) / (0.01 + brn.eps) ** 0.5).clamp(-0.5, 0.5).detach()
    expected = (x - mean) / std * r + d  # γ = 1, β = 0 at init
    assert torch.allclose(y, expected, atol=1e-5)
    assert torch.equal(r, torch.full((3,), 2.0)) and torch.equal(d, torch.full((3,), -0.5))
    g = torch.randn(32, 3)
    (grad,) = torch.autograd.grad((y * g).sum(), x)
    (want,) = torch.autograd.grad((expected * g).sum(), x)  # r and d constants in the reference
    assert torch.allclose(grad, want, atol=1e-5)
    bn = nn.BatchNorm1d(3)
    assert not torch.allclose(y, bn(x.detach()), atol=1e-3)  # no longer BN


def test_options_are_checked_and_runs_train_alone():
    with pytest.raises(ConfigError, match="bn.renorm_rmax ≥ 1"):
        validate_config(compose_config(["variant=brn_pre_act", "bn.renorm_rmax=0.5"]))
    with pytest.raises(ConfigError, match="batch normalization cannot train"):
        validate_config(compose_config(["variant=brn_pre_act", "train.batch_size=1"]))
    cfgs = [compose_config(["variant=brn_pre_act", f"seed={s}"]) for s in (0, 1)]
    assert "Batch Renorm" in packable(cfgs)


def test_a_batch_renorm_run_trains(tmp_path):
    import bnablate

    rec = bnablate.run(["dataset=digits", "model=lenet", "variant=brn_pre_act", "train.epochs=2",
                        "bn.renorm_warmup=5", "bn.renorm_ramp=10"], out_dir=tmp_path)
    assert rec["status"] == "ok" and rec["metrics"][-1]["val_acc"] > 0.5


def test_ghost_batches_renormalize_each_chunk_and_the_schedule_counts_steps():
    """bn.ghost_batch_size with Batch Renorm: through the warm-up it is ghost BN; once open each chunk is renormalized
    with its own statistics (against the running statistics as they stand after the chunks before it); one step."""
    from bnablate.layers.ghost_bn import GhostBatchNorm2d

    torch.manual_seed(2)
    brn, ghost_bn = BatchRenorm2d(3, warmup=10, ramp=5, ghost=4), GhostBatchNorm2d(3, ghost=4)
    for _ in range(2):
        x = torch.randn(12, 3, 4, 4) * 2 + 0.5
        assert torch.allclose(brn(x), ghost_bn(x), atol=1e-5)
    assert torch.allclose(brn.running_var, ghost_bn.running_var, atol=1e-5)
    assert int(brn.num_batches_tracked) == 2 and int(ghost_bn.num_batches_tracked) == 6  # steps vs chunks

    opened, ref = BatchRenorm2d(3, warmup=0, ramp=0, rmax=1.5, dmax=0.2, ghost=4), BatchRenorm2d(3, warmup=0, ramp=0,
                                                                                                  rmax=1.5, dmax=0.2)
    for m in (opened, ref):
        m.running_mean.fill_(1.0), m.running_var.fill_(0.3)  # r and d away from 1 and 0
    x = torch.randn(12, 3, 4, 4) * 2 + 0.5
    expected = torch.cat([ref(chunk) for chunk in x.split(4)])
    assert torch.allclose(opened(x), expected, atol=1e-6)
    assert torch.allclose(opened.running_mean, ref.running_mean) and torch.allclose(opened.running_var, ref.running_var)
    assert not torch.allclose(opened(x), BatchRenorm2d(3, warmup=0, ramp=0, rmax=1.5, dmax=0.2)(x), atol=1e-3)


@pytest.mark.parametrize("mode", ["precise", "population"])
def test_batch_renorm_refuses_recomputed_statistics(mode):
    with pytest.raises(ConfigError, match=f"bn.eval_stats={mode} re-estimates.*use bn.eval_stats=running"):
        validate_config(compose_config(["variant=brn_pre_act", f"bn.eval_stats={mode}"]))


def test_ghost_batch_renorm_refuses_a_cumulative_average_over_chunks():
    with pytest.raises(ConfigError, match="use a momentum"):
        validate_config(compose_config(["variant=brn_pre_act", "bn.ghost_batch_size=8", "bn.momentum=null"]))
    validate_config(compose_config(["variant=brn_pre_act", "bn.ghost_batch_size=8"]))
    # step: one update per step, which a cumulative average over steps weighs correctly
    validate_config(compose_config(["variant=brn_pre_act", "bn.ghost_batch_size=8", "bn.momentum=null",
                                    "bn.ghost_stats=step"]))
    with pytest.raises(ConfigError, match="Did you mean 'std'"):
        validate_config(compose_config(["variant=brn_pre_act", "bn.renorm_avg=st"]))


def _trained(over):
    """A tiny conv + linear model trained one epoch on 300 digits images in batches of 32 (a last batch of 12):
    (parameters, buffers) by name."""
    from bnablate.data import load_data
    from bnablate.layers.ghost_bn import set_ghost_chunks
    from bnablate.models import build_model
    from bnablate.train import train_one_epoch

    cfg = compose_config(["dataset=digits", "dataset.train_subset=300", "model=cnn", "model.channels=[4]",
                          "model.fc=[8]", "train.batch_size=32"] + over)
    data = load_data(cfg.dataset)
    model = build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, seed=0, bn=cfg.bn)
    set_ghost_chunks(model, 32)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train_one_epoch(model, opt, data.train_x, data.train_y, 32, torch.Generator().manual_seed(0))
    params = dict(model.named_parameters())
    return ({n: t.detach() for n, t in params.items()},
            {n: t for n, t in model.state_dict().items() if n not in params})


@pytest.mark.parametrize("ghost", [[], ["bn.ghost_batch_size=8"], ["bn.ghost_batch_size=8", "bn.ghost_stats=step"]],
                         ids=["whole", "chunk", "step"])
def test_at_r_max_1_and_d_max_0_a_model_trains_as_with_batch_norm_buffers_included(ghost):
    """renorm_rmax=1, renorm_dmax=0 (r = 1, d = 0 at every step) and renorm_avg=var: the weights and the running
    statistics of BN after an epoch (the last batch of 12: 8 + 4 under chunk, 4 parts of 3 under step)."""
    weights, buffers = _trained(ghost + ["variant=brn_pre_act", "bn.renorm_rmax=1", "bn.renorm_dmax=0"])
    bn_weights, bn_buffers = _trained(ghost + ["variant=bn_pre_act"])
    assert weights.keys() == bn_weights.keys() and buffers.keys() == bn_buffers.keys()
    for name, w in bn_weights.items():
        torch.testing.assert_close(weights[name], w, atol=1e-5, rtol=1e-4, msg=name)
    for name, b in bn_buffers.items():
        if name.endswith("num_batches_tracked") and ghost == ["bn.ghost_batch_size=8"]:
            assert (int(b), int(buffers[name])) == (9 * 4 + 2, 10)  # chunk: BN counts chunks, Batch Renorm steps
            continue
        torch.testing.assert_close(buffers[name], b, atol=1e-5, rtol=1e-4, msg=name)
    assert any("running_var" in n and not torch.allclose(b, torch.ones_like(b)) for n, b in bn_buffers.items())


@pytest.mark.parametrize("ghost", [None, 4])
def test_renorm_avg_std_keeps_an_average_of_sigma_as_ioffe(ghost):
    """σ ← σ + m·(σ_B − σ) with σ_B = √(biased var + eps) of the normalization batch (the first chunk's under
    ghost_stats=step), kept as running_var = σ² − eps so evaluation divides by σ; var averages the variance."""
    torch.manual_seed(4)
    std = BatchRenorm1d(3, warmup=0, ramp=0, rmax=2.0, dmax=1.0, avg="std", ghost=ghost, ghost_stats="step")
    var = BatchRenorm1d(3, warmup=0, ramp=0, rmax=2.0, dmax=1.0, avg="var", ghost=ghost, ghost_stats="step")
    sigma, mean = torch.full((3,), (1.0 + std.eps) ** 0.5), torch.zeros(3)
    for _ in range(4):
        x = torch.randn(16, 3) * 3 + 1
        torch.testing.assert_close(std(x), var(x))  # the same running statistics: the same renormalization
        first = x if ghost is None else x[:ghost]
        sigma = sigma + 0.1 * ((first.var(0, unbiased=False) + std.eps).sqrt() - sigma)
        mean = mean + 0.1 * (first.mean(0) - mean)
        assert not torch.allclose(var.running_var, std.running_var, atol=1e-3)  # the variance averaged, not σ
        var.running_mean.copy_(std.running_mean), var.running_var.copy_(std.running_var)
    torch.testing.assert_close((std.running_var + std.eps).sqrt(), sigma)
    torch.testing.assert_close(std.running_mean, mean)
    std.eval()
    x = torch.randn(5, 3)
    torch.testing.assert_close(std(x), (x - mean) / sigma)  # γ = 1, β = 0: evaluation divides by the running σ
