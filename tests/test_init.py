"""model.init: each init's draw per layer type against its formula (std or bound), pairing kept under every init,
`torch` = PyTorch's own reset_parameters from each layer's keyed stream, inspect shows it, meaningless inits refused."""

import copy
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.config import compose_config
from bnablate.errors import ConfigError
from bnablate.models import INITS, InitError, build_model, layer_inits
from bnablate.seeding import derive_seed
from bnablate.train import validate_config

VIT = ["model=vit", "model.dim=32", "model.depth=2", "model.heads=2"]
MODELS = {"mlp": ["model=mlp"], "lenet": ["model=lenet"], "resnet": ["model=resnet", "model.depth=8"], "vit": VIT}


def _build(overrides, init, seed=0, shape=(1, 8, 8)):
    cfg = compose_config(["dataset=digits", *overrides, f"model.init={init}"])
    return build_model(cfg.model, cfg.variant, shape, 10, seed=seed, bn=cfg.bn)


def _layers(model, kind):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kind)]


def _fans(w):
    receptive = w[0][0].numel() if w.dim() > 2 else 1  # kh·kw for a conv kernel (out, in, kh, kw)
    return w.shape[1] * receptive, w.shape[0] * receptive  # (fan_in, fan_out)


def _assert_std(w, want, name):
    """Sample std of n draws within 5 standard errors (≈ 1/√(2n) relative) of the formula's: fixed seeds, so this is
    a check of the formula, and the inits it tells apart differ by ≥ 1.6× (He vs PyTorch's default)."""
    got, n = float(w.detach().std()), w.numel()
    assert abs(got / want - 1) < 5 / math.sqrt(2 * n), f"{name}: std {got:.4g}, formula {want:.4g} (n={n})"


def _assert_torch_default(layer, name):
    fan_in, _ = _fans(layer.weight)
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=√5): U(±1/√fan_in), std 1/√(3·fan_in)
    assert float(layer.weight.detach().abs().max()) <= bound, name
    _assert_std(layer.weight, bound / math.sqrt(3), name)
    if layer.bias is not None:
        assert 0 < float(layer.bias.detach().abs().max()) <= bound, name


def test_he_draws_convs_kaiming_normal_fan_out_and_leaves_linear_and_biases_at_pytorchs_default():
    """torchvision's ResNet: kaiming_normal_(mode="fan_out", nonlinearity="relu") on every Conv2d, nothing else."""
    model = _build(["model=resnet", "model.depth=8", "model.widths=[16,32,64]"], "he", shape=(3, 32, 32))
    for name, conv in _layers(model, nn.Conv2d):
        _, fan_out = _fans(conv.weight)
        _assert_std(conv.weight, math.sqrt(2 / fan_out), name)
        assert abs(float(conv.weight.detach().mean())) < 5 * math.sqrt(2 / fan_out) / math.sqrt(conv.weight.numel())
    default = _build(["model=resnet", "model.depth=8"], "torch", shape=(3, 32, 32))
    assert torch.equal(model.head.weight, default.head.weight) and torch.equal(model.head.bias, default.head.bias)
    _assert_torch_default(model.head, "head")
    biased = _build(["model=lenet", "variant=no_bn"], "he")  # no norm: its convs have biases
    for name, conv in _layers(biased, nn.Conv2d):
        bound = 1 / math.sqrt(_fans(conv.weight)[0])
        assert 0 < float(conv.bias.detach().abs().max()) <= bound, name  # nn.Conv2d's own: torchvision leaves it


@pytest.mark.parametrize("model_name", ["lenet", "vit"])
def test_xavier_draws_every_conv_and_linear_within_the_glorot_bound_with_zero_biases(model_name):
    model = _build(MODELS[model_name], "xavier", shape=(1, 28, 28))
    layers = _layers(model, (nn.Conv2d, nn.Linear))
    assert layers
    for name, layer in layers:
        fan_in, fan_out = _fans(layer.weight)
        bound = math.sqrt(6 / (fan_in + fan_out))
        w = layer.weight.detach()
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound, name
        _assert_std(w, bound / math.sqrt(3), name)  # U(−a, a): std a/√3
        assert layer.bias is None or not layer.bias.any(), name
    if model_name == "vit":  # the fused qkv is one (3d, d) matrix, as torch's MultiheadAttention's in_proj_weight
        qkv = model.blocks[0][0].fn.qkv.weight
        assert qkv.shape == (96, 32) and float(qkv.detach().abs().max()) <= math.sqrt(6 / (32 + 96))
        reference = nn.MultiheadAttention(32, 2)
        assert reference.in_proj_weight.shape == qkv.shape and not reference.in_proj_bias.any()


def test_trunc_normal_is_timms_vit_init():
    """timm's init_weights_vit_timm and VisionTransformer.init_weights: Linear trunc_normal(std .02) with zero
    biases, the positions trunc_normal(std .02), the class token normal(std 1e-6); the patch-embedding conv (not a
    Linear) keeps PyTorch's default."""
    model = _build(VIT, "trunc_normal")
    for name, layer in _layers(model, nn.Linear):
        _assert_std(layer.weight, 0.02, name)
        assert float(layer.weight.detach().abs().max()) < 2.0 and not layer.bias.any(), name  # timm's cut: ±2, absolute
    _assert_std(model.tokens.pos, 0.02, "tokens.pos")
    assert 0 < float(model.tokens.cls.detach().abs().max()) < 6e-6
    default = _build(VIT, "torch")
    assert torch.equal(model.tokens.embed.weight, default.tokens.embed.weight)
    assert not torch.equal(model.tokens.cls, default.tokens.cls)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_torch_is_each_layers_own_reset_parameters_from_its_keyed_stream(model_name):
    """The default reproduces every recorded run: each Conv2d/Linear is what nn.Module.reset_parameters draws when
    the global generator is seeded with the layer's (seed, "init", name) stream, and the ViT tokens are N(0, .02²)."""
    model = _build(MODELS[model_name], "torch", seed=3)
    for name, layer in _layers(model, (nn.Conv2d, nn.Linear)):
        fresh = copy.deepcopy(layer)
        torch.manual_seed(derive_seed(3, "init", name))
        fresh.reset_parameters()
        assert torch.equal(fresh.weight, layer.weight), name
        assert layer.bias is None or torch.equal(fresh.bias, layer.bias), name
    if model_name == "vit":
        _assert_std(model.tokens.pos, 0.02, "tokens.pos")


@pytest.mark.parametrize("init", sorted(INITS))
@pytest.mark.parametrize("model_name,variants", [("lenet", ("no_bn", "bn_post_act")),
                                                 ("resnet", ("bn_pre_act", "rn_full_preact")),
                                                 ("vit", ("tf_pre_ln", "tf_peri_ln"))])
def test_every_init_keeps_variants_paired_and_seeds_apart(init, model_name, variants):
    a, b = (_build(MODELS[model_name] + [f"variant={v}"], init, seed=5) for v in variants)
    other = _build(MODELS[model_name] + [f"variant={variants[0]}"], init, seed=6)
    pa, pb, po = (dict(m.named_parameters()) for m in (a, b, other))
    shared = [n for n, m in _layers(a, (nn.Conv2d, nn.Linear)) if n in dict(b.named_modules())]
    assert len(shared) >= 3
    for n in shared:
        assert torch.equal(pa[f"{n}.weight"], pb[f"{n}.weight"]), f"{init}: {n} differs between {variants}"
        assert not torch.equal(pa[f"{n}.weight"], po[f"{n}.weight"]), f"{init}: {n} equal across seeds"
    if model_name == "vit":
        assert torch.equal(pa["tokens.pos"], pb["tokens.pos"]) and not torch.equal(pa["tokens.pos"], po["tokens.pos"])


def test_deepnorm_scales_each_inits_draws():
    """DeepNorm's β multiplies the value, output and MLP draws of whichever init (the paper: Xavier-normal × β)."""
    deep, post = _build(VIT + ["variant=tf_deepnorm"], "xavier"), _build(VIT + ["variant=tf_post_ln"], "xavier")
    beta = (8 * 2) ** -0.25
    qd, qp = deep.blocks[0][0].fn.qkv.weight, post.blocks[0][0].fn.qkv.weight
    torch.testing.assert_close(qd[:64], qp[:64])
    torch.testing.assert_close(qd[64:], beta * qp[64:])
    assert "xavier_uniform × 0.5 on rows 64:96" in layer_inits(deep, "xavier")["blocks.0.0.fn.qkv"]


def test_norm_layers_are_left_as_built_under_every_init():
    for init in INITS:
        model = _build(["model=resnet", "model.depth=8", "variant=rn_zero_gamma"], init)
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms and all(not m.bias.any() for m in norms)
        assert {float(m.weight.detach().max()) for m in norms} == {0.0, 1.0}  # each branch's last γ: zero_gamma's 0


def test_unknown_and_meaningless_inits_are_refused_before_training_naming_the_fix():
    with pytest.raises(InitError, match="Did you mean 'xavier'"):
        _build(["model=mlp"], "xavir")
    with pytest.raises(InitError, match="model=mlp .*none of the layers.*model.init=xavier"):
        _build(["model=mlp"], "he")  # torchvision's He init draws Conv2d only: the mlp would be model.init=torch
    with pytest.raises(ConfigError, match="model.init=he"):
        validate_config(compose_config(["model=mlp", "dataset=digits", "model.init=he"]))
    for init in INITS:  # every other model has layers each init draws
        for overrides in MODELS.values():
            if overrides != ["model=mlp"]:
                _build(overrides, init)


def test_inspect_shows_each_layers_init_and_the_tokens():
    res = CliRunner().invoke(app, ["inspect", "dataset=digits", *VIT, "model.init=trunc_normal"], terminal_width=250)
    assert res.exit_code == 0, res.output
    assert "trunc_normal(std 0.02), bias 0" in res.output and "kaiming_uniform(a=√5), bias U(±1/√fan_in)" in res.output
    assert "tokens: pos trunc_normal(std 0.02), cls normal(std 1e-6)" in res.output
    res = CliRunner().invoke(app, ["inspect", "dataset=digits", "model=resnet", "model.init=he"], terminal_width=250)
    assert res.exit_code == 0 and "kaiming_normal(fan_out, relu)" in res.output, res.output
