"""Residual networks (issue 21): the CIFAR ResNet, the five block designs of He et al. 2016 against the paper's
definitions, zero-initialised γ and SkipInit, paired init across designs, packing equal to separate runs, bad input."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from bnablate.config import compose_config
from bnablate.layers import ScratchBatchNorm
from bnablate.layers.norm import GroupNormC
from bnablate.layers.residual import ResidualAdd, ResidualBlock, ZeroPadShortcut
from bnablate.models import build_model, count_params

from .test_grouped import assert_grouped_step_equals_alone
from .test_packed import assert_packs_like_separate_runs

SMALL = ["model=resnet", "model.depth=8", "model.widths=[4,8,8]", "variant.groups=2"]
DESIGN_PRESETS = {"original": "bn_pre_act", "bn_after_add": "rn_bn_after_add", "relu_before_add": "rn_relu_before_add",
                  "relu_preact": "rn_relu_preact", "full_preact": "rn_full_preact"}
# He et al. 2016, Fig. 4: what a (non-opening) block computes, in order, with "add" the element-wise addition.
PAPER = {
    "original": ["conv", "BN", "ReLU", "conv", "BN", "add", "ReLU"],  # (a)
    "bn_after_add": ["conv", "BN", "ReLU", "conv", "add", "BN", "ReLU"],  # (b)
    "relu_before_add": ["conv", "BN", "ReLU", "conv", "BN", "ReLU", "add"],  # (c)
    "relu_preact": ["ReLU", "conv", "BN", "ReLU", "conv", "BN", "add"],  # (d)
    "full_preact": ["BN", "ReLU", "conv", "BN", "ReLU", "conv", "add"],  # (e)
}
KIND = {nn.Conv2d: "conv", nn.BatchNorm2d: "BN", nn.ReLU: "ReLU", ResidualAdd: "add"}


def _model(variant, *extra, shape=(3, 32, 32), seed=0, classes=10):
    cfg = compose_config(["model=resnet", f"variant={variant}", *extra])  # extra may pick another model
    return build_model(cfg.model, cfg.variant, shape, classes, seed=seed, bn=cfg.bn)


def _sequence(block: ResidualBlock):
    """The residual path of a block in execution order: pre, branch, add, post (the shortcut aside)."""
    mods = [*block.pre, *block.branch, block.add, *block.post]
    return [KIND[type(m)] for m in mods if type(m) in KIND]


@pytest.mark.parametrize("design", list(PAPER))
def test_each_design_has_the_papers_layer_order(design):
    model = _model(DESIGN_PRESETS[design])
    assert _sequence(model.layer1[1]) == PAPER[design]  # an inner block: identity shortcut, nothing shared
    opening = model.layer2[0]  # the stage's first block: stride 2, 16 → 32 channels, option A shortcut
    assert isinstance(opening.shortcut, ZeroPadShortcut) and opening.branch.conv1.stride == (2, 2)
    assert _sequence(opening) == PAPER[design]  # pre-activation designs run it before the split: same order
    if design in ("relu_preact", "full_preact"):
        assert len(opening.pre) > 0 and list(model.layer2[1].pre) == []  # shared only where the stage opens
        assert [KIND[type(m)] for m in model.final] == (["BN", "ReLU"] if design == "full_preact" else ["ReLU"])
        assert [KIND[type(m)] for m in model.stem] == ["conv"]
    else:
        assert "final" not in dict(model.named_children())
        assert [KIND[type(m)] for m in model.stem] == ["conv", "BN", "ReLU"]


@pytest.mark.parametrize("depth,blocks", [(20, 3), (32, 5), (56, 9), (110, 18)])
def test_depth_is_6n_plus_2_weighted_layers(depth, blocks):
    model = _model("bn_pre_act", f"model.depth={depth}")
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == depth and all(len(getattr(model, f"layer{s}")) == blocks for s in (1, 2, 3))
    if depth == 20:
        assert count_params(model) == 269_722  # He et al.'s ResNet-20: 0.27M (option A, no conv bias before BN)


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32)])
def test_resnet_takes_every_dataset_shape(shape):
    model = _model("rn_full_preact", shape=shape, classes=7).eval()
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_shortcut_b_is_a_projection_with_a_norm_only_after_activation_designs():
    post = _model("bn_pre_act", "model.shortcut=B").layer2[0].shortcut
    pre = _model("rn_full_preact", "model.shortcut=B").layer2[0].shortcut
    assert [type(m) for m in post] == [nn.Conv2d, nn.BatchNorm2d] and post.conv.kernel_size == (1, 1)
    assert [type(m) for m in pre] == [nn.Conv2d]


@pytest.mark.parametrize("variant", ["bn_pre_act", "rn_bn_after_add", "rn_relu_before_add", "rn_relu_preact",
                                     "rn_full_preact", "rn_zero_gamma", "no_bn", "rn_skipinit", "gn_pre_act",
                                     "ln_pre_act", "scratch_bn_pre_act", "bn_post_act", "bn_dropout"])
def test_every_residual_variant_trains_a_step(variant):
    model = _model(variant, *SMALL[1:], shape=(3, 16, 16)).train()
    out = model(torch.randn(6, 3, 16, 16))
    assert out.shape == (6, 10) and torch.isfinite(out).all()
    out.logsumexp(1).mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    live = [n for n, g in grads.items() if g.abs().sum() > 0]
    if variant not in ("rn_zero_gamma", "rn_skipinit"):  # a zero γ / gain blocks gradients to the branch at first
        assert live == list(grads), set(grads) - set(live)


def test_paired_init_identical_across_designs():
    def convs(model):
        return {n: p.detach() for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1}
    base = convs(_model("bn_pre_act", seed=3))
    for variant in ["rn_bn_after_add", "rn_relu_before_add", "rn_relu_preact", "rn_full_preact", "rn_zero_gamma",
                    "no_bn", "rn_skipinit", "gn_pre_act"]:
        other = convs(_model(variant, seed=3))
        assert other.keys() == base.keys(), variant
        assert all(torch.equal(other[k], base[k]) for k in base), variant
    assert not torch.equal(convs(_model("bn_pre_act", seed=4))["stem.conv.weight"], base["stem.conv.weight"])


@pytest.mark.parametrize("variant", ["rn_zero_gamma", "rn_skipinit"])
def test_zero_gamma_and_skipinit_start_every_block_as_the_identity(variant):
    model = _model(variant).eval()
    x = torch.relu(torch.randn(3, 16, 8, 8))  # a block's input follows a ReLU: non-negative
    for block in model.layer1:
        torch.testing.assert_close(block(x), x)
    gains = [m.gain for m in model.modules() if isinstance(m, ResidualAdd) and m.gain is not None]
    assert (len(gains) == 9) == (variant == "rn_skipinit") and all(float(g.detach()) == 0 for g in gains)
    if variant == "rn_zero_gamma":
        last = [blk.branch.norm2.weight for s in (1, 2, 3) for blk in getattr(model, f"layer{s}")]
        assert all(not w.any() for w in last)
        assert model.layer1[0].branch.norm1.weight.eq(1).all()  # only the last norm of each branch


GROUPED_CASES = [(v, "A", "grouped") for v in ("bn_pre_act", "rn_bn_after_add", "rn_relu_before_add",
                                                "rn_relu_preact", "rn_full_preact", "rn_skipinit", "gn_pre_act",
                                                "bn_post_act")]
GROUPED_CASES += [(v, "B", "grouped") for v in ("bn_pre_act", "rn_full_preact", "rn_skipinit")]
GROUPED_CASES += [("rn_full_preact", "A", "vmap"), ("rn_skipinit", "B", "vmap")]


@pytest.mark.parametrize("variant,shortcut,impl", GROUPED_CASES)
def test_a_grouped_pack_of_residual_nets_equals_each_run_alone(variant, shortcut, impl):
    """Every design (option A), the projection shortcut in a post- and a pre-activation design and with SkipInit,
    and vmap for two of them."""
    cfg = compose_config([*SMALL, f"variant={variant}", f"model.shortcut={shortcut}", "bn.momentum=0.3"])
    alone = [build_model(cfg.model, cfg.variant, (3, 16, 16), 10, seed=s, bn=cfg.bn) for s in range(3)]
    for m in alone:  # SkipInit's gains start at 0; move them so the branches count
        for add in (a for a in m.modules() if isinstance(a, ResidualAdd) and a.gain is not None):
            add.gain.data.fill_(0.5)
    # grad_floor: a bias whose gradient is 0 up to rounding (a conv before BN-after-add, B shortcuts)
    assert_grouped_step_equals_alone(alone, (3, 16, 16), impl=impl, batch=5, grad_floor=1e-6)


@pytest.mark.parametrize("variant", ["bn_pre_act", "rn_zero_gamma", "rn_skipinit"])
def test_packed_residual_runs_match_separate_runs(variant):
    """Whole runs, packed vs alone. (Every design's single step is equal above; over many steps a ReLU whose input
    lands within ~1e-7 of 0 can switch with the kernels' summation order, after which Adam carries the difference on,
    e.g. rn_full_preact here from its second step, rn_bn_after_add to 1.4e-4 in validation loss after two epochs, and
    rn_relu_preact's seed 1 to 1.2e-4 in training loss on an Intel Xeon (exact on the AMD EPYC this test was first
    run on): equal in distribution, not digit for digit. The designs here are exact on both.)"""
    assert_packs_like_separate_runs(["dataset=synthetic", *SMALL, f"variant={variant}", "train.epochs=2",
                                     "train.batch_size=32"])


def test_variant_labels_name_the_residual_presets():
    from bnablate.variants import variant_label

    for name in ["rn_bn_after_add", "rn_full_preact", "rn_zero_gamma", "rn_skipinit", "bn_pre_act", "no_bn"]:
        assert variant_label(compose_config([f"variant={name}"]).variant) == name
    custom = OmegaConf.merge(compose_config(["variant=gn_pre_act"]).variant, {"residual": "full_preact"})
    assert variant_label(custom) == "group2/pre_act/relu/full_preact"  # gn_pre_act has 2 groups
    old = {k: v for k, v in OmegaConf.to_container(compose_config(["variant=bn_pre_act"]).variant).items()
           if k not in ("residual", "residual_init")}  # a record written before the axes existed
    assert variant_label(old) == "bn_pre_act"


@pytest.mark.parametrize("variant,norm", [("bn_pre_act", nn.BatchNorm2d), ("gn_pre_act", GroupNormC),
                                          ("scratch_bn_pre_act", ScratchBatchNorm), ("no_bn", nn.Identity)])
def test_torchvisions_resnet18_takes_its_norms_from_the_factory(variant, norm):
    model = _model(variant, "model=tv_resnet18")
    norms = [model.bn1, *(getattr(b, n) for s in (1, 2, 3, 4) for b in getattr(model, f"layer{s}") for n in ("bn1", "bn2"))]
    assert all(type(m) is norm for m in norms)
    if variant == "bn_pre_act":
        assert count_params(model) == 11_181_642  # torchvision's resnet18(num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all((c.bias is not None) == (variant == "no_bn") for c in convs)  # bias auto/on: only without a norm
    model.train()(torch.randn(2, 3, 32, 32)).sum().backward()
    mnist = _model(variant, "model=tv_resnet18", shape=(1, 28, 28)).eval()
    assert mnist(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_torchvisions_resnet18_zero_gamma_packs_and_refuses_other_axes():
    model = _model("rn_zero_gamma", "model=tv_resnet18")
    assert all(not b.bn2.weight.any() for s in (1, 2, 3, 4) for b in getattr(model, f"layer{s}"))
    # torchvision's blocks pack under vmap; 32×32 keeps its last stage's BN away from 1×1 maps of a tiny batch, whose
    # statistics would magnify rounding
    alone = [_model("bn_pre_act", "model=tv_resnet18", seed=s) for s in range(2)]
    assert_grouped_step_equals_alone(alone, (3, 32, 32), impl="vmap", batch=8)
    for variant in ("bn_post_act", "bn_dropout", "rn_full_preact", "bn_pre_sigmoid"):
        with pytest.raises(ValueError, match="Use model=resnet for the other axes"):
            _model(variant, "model=tv_resnet18")


def test_list_shows_the_residual_models_presets_and_axes():
    from typer.testing import CliRunner

    from bnablate.cli import app

    run = lambda *a: CliRunner().invoke(app, list(a), terminal_width=250).output  # noqa: E731
    models = run("list", "models")
    assert "resnet" in models and "tv_resnet18" in models and "variant.residual" in models
    variants = run("list", "variants")
    assert "residual" in variants and "rn_full_preact" in variants and "full_preact" in variants
    assert "original + skipinit" in variants  # rn_skipinit: the design and how its branches start
    axes = run("list", "axes")
    assert all(v in axes for v in ("bn_after_add", "relu_before_add", "relu_preact", "zero_gamma", "skipinit"))
