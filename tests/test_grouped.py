"""Grouped packed forward (grouped convs, batched matmuls, wide norms): K runs computed as each run computes alone."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnablate.config import compose_config
from bnablate.models import build_model
from bnablate.train import ConfigError
from bnablate.pack import PackedModel

SHAPES = {"lenet": (1, 28, 28), "cnn": (3, 16, 16), "mlp": (3, 8, 8)}
VARIANTS = [("batch", "pre_act"), ("batch", "post_act"), ("batch", "post_pool"), ("scratch", "pre_act"),
            ("layer", "pre_act"), ("group", "post_act"), ("none", "none")]
K, B = 3, 6


def _models(model: str, norm: str, placement: str, extra=()):
    cfg = compose_config([f"model={model}", f"variant.norm={norm}", f"variant.placement={placement}",
                          "variant.groups=2", "bn.momentum=0.3", *(["model.channels=[4,8]"] if model == "cnn" else []),
                          *extra])
    return [build_model(cfg.model, cfg.variant, SHAPES[model], 10, seed=s, bn=cfg.bn) for s in range(K)]


def assert_grouped_step_equals_alone(alone, shape, impl="grouped", batch=B, grad_floor=0.0):
    """Training-mode outputs, every parameter's gradient and the BN running statistics of a pack of `alone`'s models
    equal those of each run alone on its own batch; eval-mode outputs on a shared batch too. grad_floor: an absolute
    tolerance for gradients that are 0 up to rounding."""
    k = len(alone)
    pm = PackedModel([copy.deepcopy(m) for m in alone], impl=impl)
    assert pm.impl == impl
    g = torch.Generator().manual_seed(0)
    x = torch.randn(k, batch, *shape, generator=g)
    y = torch.randint(0, 10, (k, batch), generator=g)
    out = pm(x)  # (K, B, classes)
    F.cross_entropy(out.reshape(k * batch, -1), y.reshape(-1), reduction="sum").backward()
    for i, m in enumerate(alone):
        ref = m(x[i])
        F.cross_entropy(ref, y[i], reduction="sum").backward()
        torch.testing.assert_close(out[i], ref, rtol=1e-5, atol=1e-5)
        for name, p in m.named_parameters():
            # summation order differs (grouped vs lone kernels): tolerance relative to the gradient's scale
            scale = float(p.grad.abs().max())
            torch.testing.assert_close(pm.params[name].grad[i], p.grad, rtol=1e-4, atol=1e-4 * scale + grad_floor,
                                       msg=name)
        for name, buf in m.named_buffers():
            torch.testing.assert_close(pm.buffers[name][i], buf, rtol=1e-5, atol=1e-6, msg=name)
    shared = torch.randn(batch, *shape, generator=g)
    pm.train(False)
    out = pm(shared, shared_input=True)
    for i, m in enumerate(alone):
        torch.testing.assert_close(out[i], m.eval()(shared), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model", list(SHAPES))
@pytest.mark.parametrize("norm,placement", VARIANTS)
def test_grouped_pack_equals_each_run_alone(model, norm, placement):
    """A grouped pack computes each run as it computes alone: outputs, gradients, running statistics."""
    assert_grouped_step_equals_alone(_models(model, norm, placement), SHAPES[model])


def test_grouped_and_vmap_packs_agree_on_bias_and_affine_options():
    alone = _models("lenet", "batch", "pre_act", ["variant.bias=on", "bn.affine=false"])
    x = torch.randn(K, B, *SHAPES["lenet"])
    grouped, vmapped = (PackedModel([copy.deepcopy(m) for m in alone], impl=i) for i in ("grouped", "vmap"))
    torch.testing.assert_close(grouped(x), vmapped(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grouped.buffers["conv1.norm.running_var"], vmapped.buffers["conv1.norm.running_var"])


class Odd(nn.Module):
    """A layer without a grouped form."""

    def forward(self, x):
        return x.flip(-1)


def test_a_layer_without_grouped_form_falls_back_to_vmap_or_is_refused():
    models = [nn.Sequential(nn.Linear(4, 3), Odd()) for _ in range(2)]
    assert PackedModel(models).impl == "vmap"
    with pytest.raises(ConfigError, match=r"pack_impl=grouped: layer 1 \(Odd\) has no grouped form"):
        PackedModel(models, impl="grouped")
    with pytest.raises(ConfigError, match="Unknown pack_impl 'fast'.* Choose one of: auto, grouped, vmap"):
        PackedModel(models, impl="fast")


def test_sweep_rejects_an_unknown_pack_impl():
    from bnablate.pack import check_pack_options

    with pytest.raises(ConfigError, match="Unknown pack_impl 'grouped_conv'. Did you mean 'grouped'?"):
        check_pack_options(compose_config(["pack_impl=grouped_conv"]))
