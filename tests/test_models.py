"""Registry-driven model tests: every model × every variant preset builds, trains a step, and places layers right;
paired init across variants."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from bnablate.config import CNNConfig, LeNetConfig, MLPConfig, ResNetConfig, VariantConfig, ViTConfig
from bnablate.layers import block_order
from bnablate.models import MODELS, ModelShapeError, build_model
from bnablate.registry import UnknownNameError
from bnablate.variants import variant_label, variant_presets

MODEL_CFGS = {"mlp": MLPConfig(name="mlp"), "lenet": LeNetConfig(name="lenet"), "cnn": CNNConfig(name="cnn"),
              "resnet": ResNetConfig(name="resnet", depth=8), "vit": ViTConfig(name="vit", dim=16, depth=2, heads=2)}
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]  # digits, MNIST-like, CIFAR-like


def preset(name):
    return OmegaConf.merge(OmegaConf.structured(VariantConfig), variant_presets().get(name))


def _refusal(model_name, v):
    """What build_model must refuse for this model and variant (tests/test_vit.py has each message's case), or None."""
    if model_name == "vit":
        if v.placement not in ("pre_act", "none") or v.dropout != "none" or v.bias == "off":
            return "keep variant.placement=pre_act"
        if v.placement != "none" and v.norm in ("group", "scratch"):
            return "has no form for transformer tokens"
    elif v.ffn_norm:  # a norm inside a transformer block's MLP (tf_bn_ffn)
        return "leave variant.ffn_norm=false"
    elif v.transformer != "pre":
        return "use model=vit"
    elif model_name != "mlp" and v.norm == "rms" and v.placement != "none":
        return "has no form for conv maps"
    return None


def model_cfg(name):
    return OmegaConf.structured(MODEL_CFGS[name])


def test_every_registered_model_has_a_config():
    from bnablate.config import MODEL_SCHEMAS

    # tv_resnet18 (torchvision's own network, only its norm is the variant's) is tested in tests/test_resnet.py
    assert set(MODELS.names()) == set(MODEL_CFGS) | {"tv_resnet18"} == set(MODEL_SCHEMAS)


@pytest.mark.parametrize("model_name", sorted(MODEL_CFGS))
@pytest.mark.parametrize("variant_name", variant_presets().names())
def test_every_model_and_variant_builds_and_trains(model_name, variant_name):
    v = preset(variant_name)
    shape = (3, 32, 32) if model_name == "cnn" else (1, 8, 8)
    if variant_name == "gn8_pre_act" and model_name == "lenet":  # LeNet's 6 channels: rejected up front
        with pytest.raises(ValueError, match="6 channels, 8 groups"):
            build_model(model_cfg(model_name), v, shape, 10, seed=0)
        return
    refusal = _refusal(model_name, v)
    if variant_name.startswith("rn_") and model_name != "resnet":  # residual designs need residual blocks
        refusal = "use model=resnet"
    if refusal:
        with pytest.raises(ValueError, match=refusal):
            build_model(model_cfg(model_name), v, shape, 10, seed=0)
        return
    model = build_model(model_cfg(model_name), v, shape, 10, seed=0)
    model.train()
    x = torch.randn(6, *shape)
    out = model(x)
    assert out.shape == (6, 10) and torch.isfinite(out).all()
    out.logsumexp(1).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name} got no finite gradient"
        # a branch that starts at zero (zero γ, SkipInit's gain) passes no gradient to its convs at first
        assert p.grad.abs().sum() > 0 or v.residual_init != "standard", f"{name} got an all-zero gradient"
    if model_name in ("resnet", "vit"):  # their blocks follow variant.residual / variant.transformer: tests/test_resnet.py
        return  # and tests/test_vit.py check them
    # Every hidden block's sub-layers follow the block factory's order for this variant.
    kinds = {nn.Conv2d: "affine", nn.Linear: "affine", nn.Dropout: "drop", nn.MaxPool2d: "pool", nn.AvgPool2d: "pool"}
    for bname, block in model.named_children():
        if not isinstance(block, nn.Sequential):
            continue
        names = list(dict(block.named_children()))
        pools = "pool" in names
        expected = block_order(v, pools)
        assert [("affine" if n in ("conv", "linear") else n) for n in names] == expected, bname
        for n, m in block.named_children():
            if n in ("conv", "linear", "drop", "pool"):
                assert kinds[type(m)] == ("affine" if n in ("conv", "linear") else n)


@pytest.mark.parametrize("model_name", sorted(MODEL_CFGS))
@pytest.mark.parametrize("shape", SHAPES)
def test_every_model_takes_every_dataset_shape(model_name, shape):
    model = build_model(model_cfg(model_name), preset("bn_pre_act"), shape, 7, seed=0).eval()
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_lenet_layer_stack_and_size():
    model = build_model(model_cfg("lenet"), preset("no_bn"), (1, 28, 28), 10, seed=0)
    assert sum(p.numel() for p in model.parameters()) == 61706  # the classic LeNet-5 count
    assert "resize" not in dict(model.named_children())
    small = build_model(model_cfg("lenet"), preset("no_bn"), (1, 8, 8), 10, seed=0)
    assert isinstance(small.resize, nn.Upsample)


def test_cnn_rejects_too_small_inputs():
    cfg = OmegaConf.structured(CNNConfig(name="cnn", channels=[8, 8, 8, 8]))
    with pytest.raises(ModelShapeError, match="at least 16×16"):
        build_model(cfg, preset("bn_pre_act"), (1, 8, 8), 10, seed=0)


def _affine_weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()  # conv/linear weights: ≥ 2-D
            if (n.endswith(".weight") and p.dim() > 1) or n.startswith("head")}


@pytest.mark.parametrize("model_name", sorted(MODEL_CFGS))
def test_paired_init_identical_across_variants(model_name):
    shape = (3, 32, 32)
    base = _affine_weights(build_model(model_cfg(model_name), preset("no_bn"), shape, 10, seed=3))
    for name in variant_presets().names():
        if (name == "gn8_pre_act" and model_name == "lenet") or (name.startswith("rn_") and model_name != "resnet"):
            continue
        if _refusal(model_name, preset(name)) or name == "tf_deepnorm":  # DeepNorm scales its draws (test_vit.py)
            continue
        other = _affine_weights(build_model(model_cfg(model_name), preset(name), shape, 10, seed=3))
        assert other.keys() == base.keys()
        for k in base:
            assert torch.equal(other[k], base[k]), f"{name}: {k} differs from no_bn's"
    if model_name == "vit":  # no bias axis: its linear layers keep their biases
        return
    # Biases that exist are identical too (bias on/off does not shift the weight or other layers).
    a = dict(build_model(model_cfg(model_name), preset("bn_pre_act_bias"), shape, 10, seed=3).named_parameters())
    b = dict(build_model(model_cfg(model_name), preset("bn_post_act"), shape, 10, seed=3).named_parameters())
    shared = [k for k in a if k.endswith("bias") and k in b and ("conv" in k or "linear." in k)]
    assert shared and all(torch.equal(a[k], b[k]) for k in shared)
    # A different seed gives different weights.
    c = _affine_weights(build_model(model_cfg(model_name), preset("no_bn"), shape, 10, seed=4))
    assert not any(torch.equal(c[k], base[k]) for k in base)


def test_paired_init_matches_pytorch_default_distribution():
    lin = build_model(model_cfg("mlp"), preset("no_bn"), (1, 8, 8), 10, seed=0).fc1.linear
    bound = 1 / 64 ** 0.5  # kaiming_uniform(a=√5) bound = 1/sqrt(fan_in)
    assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.9 * bound
    assert lin.bias.abs().max() <= bound


def test_variant_label_names_presets_and_custom_axes():
    assert variant_label(preset("bn_post_act")) == "bn_post_act"
    custom = preset("bn_post_act")
    custom.activation = "tanh"
    assert variant_label(custom) == "batch/post_act/tanh"
    equivalent = preset("bn_pre_act")
    equivalent.placement = "none"  # no norm at all and bias auto (built: on) → the network no_bn builds
    assert variant_label(equivalent) == "no_bn"


def test_variant_label_keeps_the_dropout_rate_and_bias_out_of_a_presets_name():
    """A sweep over variant.dropout_p (repro-dropout-order) labels its runs by order, with dropout_p a factor of
    its own; a bias setting that changes the built network is added to the name, one that does not is not."""
    at = lambda name, **axes: OmegaConf.merge(preset(name), axes)  # noqa: E731
    assert variant_label(at("bn_dropout", dropout_p=0.1)) == "bn_dropout"
    assert variant_label(at("bn_dropout", dropout_p=0.3, bias="off")) == "bn_dropout"  # auto builds no bias here
    assert variant_label(at("dropout_bn", dropout_p=0.3, bias="off")) == "dropout_bn/bias_off"  # auto: on
    assert variant_label(at("bn_post_act", bias="off")) == "bn_post_act/bias_off"
    assert variant_label(at("bn_pre_act", bias="on")) == "bn_pre_act_bias"  # an exact preset wins
    assert variant_label(at("gn8_pre_act", groups=4)) == "group4/pre_act/relu"  # groups change the structure


def test_unknown_model_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'lenet'"):
        MODELS.get("lenett")


def test_duplicate_model_name_is_an_error():
    with pytest.raises(ValueError, match="Duplicate model name 'mlp'"):
        MODELS.register("mlp")(lambda *a: None)
