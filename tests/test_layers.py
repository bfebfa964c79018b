"""Scratch BN equals torch BN; the norm factory; the block factory's placement, dropout and bias rules."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from bnablate.config import VariantConfig
from bnablate.layers import (NORMS, ScratchBatchNorm, VariantError, block_order, create_norm_layer, get_norm_layer,
                             make_block, validate_variant)


def variant(**kw):
    return OmegaConf.structured(VariantConfig(**kw))


@pytest.mark.parametrize("shape", [(16, 5), (8, 5, 4, 3)])
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_scratch_bn_matches_torch(shape, momentum):
    torch.manual_seed(0)
    ref = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1], momentum=momentum).double()
    mine = ScratchBatchNorm(shape[1], momentum=momentum).double()
    with torch.no_grad():  # non-trivial affine so gradients through gamma/beta are exercised
        for m in (ref, mine):
            m.weight.copy_(torch.linspace(0.5, 2.0, shape[1]))
            m.bias.copy_(torch.linspace(-1.0, 1.0, shape[1]))
    for step in range(3):  # several train steps: running stats accumulate
        x = (torch.randn(*shape, dtype=torch.double) * 3 + step).requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        g = torch.randn(*shape, dtype=torch.double)
        ref(x).backward(g)
        mine(x2).backward(g)
        torch.testing.assert_close(x2.grad, x.grad, atol=1e-6, rtol=0)
        torch.testing.assert_close(mine.weight.grad, ref.weight.grad, atol=1e-6, rtol=0)
        torch.testing.assert_close(mine.bias.grad, ref.bias.grad, atol=1e-6, rtol=0)
        torch.testing.assert_close(mine.running_mean, ref.running_mean, atol=1e-6, rtol=0)
        torch.testing.assert_close(mine.running_var, ref.running_var, atol=1e-6, rtol=0)
        for m in (ref, mine):
            m.weight.grad = m.bias.grad = None
    x = torch.randn(*shape, dtype=torch.double)
    ref.train(), mine.train()
    torch.testing.assert_close(mine(x), ref(x), atol=1e-6, rtol=0)
    ref.eval(), mine.eval()
    xe = torch.randn(*shape, dtype=torch.double, requires_grad=True)
    xe2 = xe.detach().clone().requires_grad_()
    out_ref, out_mine = ref(xe), mine(xe2)
    torch.testing.assert_close(out_mine, out_ref, atol=1e-6, rtol=0)
    out_ref.sum().backward(), out_mine.sum().backward()
    torch.testing.assert_close(xe2.grad, xe.grad, atol=1e-6, rtol=0)


def test_scratch_bn_float32_train_and_eval_match_torch():
    torch.manual_seed(1)
    ref, mine = nn.BatchNorm2d(6), ScratchBatchNorm(6)
    x = torch.randn(10, 6, 5, 5)
    torch.testing.assert_close(mine(x), ref(x), atol=1e-6, rtol=0)
    ref.eval(), mine.eval()
    torch.testing.assert_close(mine(x), ref(x), atol=1e-6, rtol=0)


def test_scratch_bn_rejects_single_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value"):
        ScratchBatchNorm(3)(torch.randn(1, 3))


@pytest.mark.parametrize("name", ["batch", "scratch", "layer", "group"])
@pytest.mark.parametrize("kind,shape", [("conv", (4, 16, 5, 5)), ("linear", (4, 16))])
def test_every_norm_builds_for_both_kinds(name, kind, shape):
    layer = create_norm_layer(name, 16, kind, groups=4)
    assert isinstance(layer, get_norm_layer(name, kind))
    assert layer(torch.randn(*shape)).shape == shape


def test_norm_none_and_group_divisibility():
    assert create_norm_layer("none", 8, "conv") is None
    with pytest.raises(ValueError, match="divisible"):
        create_norm_layer("group", 6, "conv", groups=4)


def test_duplicate_norm_name_is_an_error():
    with pytest.raises(ValueError, match="Duplicate norm name 'batch'"):
        NORMS.register("batch")({})


@pytest.mark.parametrize("kw,pools,order", [
    (dict(placement="pre_act"), True, ["affine", "norm", "act", "pool"]),
    (dict(placement="post_act"), True, ["affine", "act", "norm", "pool"]),
    (dict(placement="post_pool"), True, ["affine", "act", "pool", "norm"]),
    (dict(placement="post_pool"), False, ["affine", "act", "norm"]),
    (dict(placement="none"), True, ["affine", "act", "pool"]),
    (dict(norm="none"), False, ["affine", "act"]),
    (dict(placement="pre_act", dropout="norm_then_dropout"), False, ["affine", "norm", "drop", "act"]),
    (dict(placement="pre_act", dropout="dropout_then_norm"), False, ["affine", "drop", "norm", "act"]),
    (dict(placement="post_act", dropout="dropout_then_norm"), False, ["affine", "act", "drop", "norm"]),
    (dict(norm="none", dropout="norm_then_dropout"), True, ["affine", "act", "pool", "drop"]),
])
def test_block_order(kw, pools, order):
    assert block_order(variant(**kw), pools) == order


@pytest.mark.parametrize("kw,bias", [
    (dict(placement="pre_act", bias="auto"), False),
    (dict(placement="post_act", bias="auto"), True),
    (dict(placement="pre_act", dropout="dropout_then_norm", bias="auto"), True),
    (dict(norm="none", bias="auto"), True),
    (dict(placement="pre_act", bias="on"), True),
    (dict(placement="post_act", bias="off"), False),
])
def test_bias_rule(kw, bias):
    block = make_block("linear", 4, 8, variant(**kw))
    assert (block.linear.bias is not None) == bias


def test_make_block_modules_follow_the_order():
    block = make_block("conv", 3, 8, variant(placement="post_pool", activation="tanh"), pool=nn.MaxPool2d(2))
    assert list(dict(block.named_children())) == ["conv", "act", "pool", "norm"]
    assert isinstance(block.act, nn.Tanh) and isinstance(block.norm, nn.BatchNorm2d)


@pytest.mark.parametrize("kw,msg", [
    (dict(norm="btach"), "Unknown variant.norm 'btach'. Did you mean 'batch'"),
    (dict(placement="after"), "Unknown variant.placement"),
    (dict(dropout="both"), "Unknown variant.dropout"),
    (dict(bias="maybe"), "Unknown variant.bias"),
    (dict(activation="rleu"), "Did you mean 'relu'"),
    (dict(dropout="norm_then_dropout", dropout_p=1.0), r"dropout_p must be in \[0, 1\)"),
])
def test_invalid_variants_are_rejected(kw, msg):
    with pytest.raises((VariantError, KeyError), match=msg):
        validate_variant(variant(**kw))
