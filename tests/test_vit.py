"""model=vit and the transformer placement axis: each placement computes its formula, DeepNorm's α and β-scaled init,
paired init across variants, the new norm types (rms, dyt, BN over tokens) and what is refused where."""

import math

import pytest
import torch
from torch import nn

import bnablate
from bnablate.config import compose_config
from bnablate.errors import ConfigError
from bnablate.layers.dyt import DyT, DyT2d
from bnablate.layers.norm import TokenNorm, create_norm_layer
from bnablate.layers.transformer import Sublayer, deepnorm_constants
from bnablate.models import build_model
from bnablate.pack.rules import packable
from bnablate.train import validate_config

TINY = ["model=vit", "model.dim=16", "model.depth=2", "model.heads=2", "dataset=digits"]


def _vit(variant, *more, seed=0, shape=(1, 8, 8)):
    cfg = compose_config(TINY + [f"variant={variant}", *more])
    return build_model(cfg.model, cfg.variant, shape, 10, seed=seed, bn=cfg.bn)


@pytest.mark.parametrize("placement", ["pre", "post", "peri", "deepnorm"])
def test_each_placement_computes_its_formula(placement):
    torch.manual_seed(0)
    fn = nn.Linear(6, 6)
    block = Sublayer(fn, placement, lambda: nn.LayerNorm(6), alpha=1.7)
    with torch.no_grad():
        for ln in (block.norm, block.norm_out):
            if ln is not None:
                ln.weight.uniform_(0.5, 1.5), ln.bias.uniform_(-0.5, 0.5)  # two norms of peri must not be confused
    x = torch.randn(3, 4, 6)
    n1, n2 = block.norm, block.norm_out
    want = {"pre": lambda: x + fn(n1(x)), "post": lambda: n1(x + fn(x)), "peri": lambda: x + n2(fn(n1(x))),
            "deepnorm": lambda: n1(1.7 * x + fn(x))}[placement]()
    torch.testing.assert_close(block(x), want)


def test_final_norm_and_norm_counts_follow_the_placement():
    def norms(m):
        return sum(isinstance(x, nn.LayerNorm) for x in m.modules())
    # per block: 2 sublayers × (1 norm, or 2 for peri); plus a final norm for pre and peri
    assert norms(_vit("tf_pre_ln")) == 2 * 2 + 1 and norms(_vit("tf_peri_ln")) == 2 * 4 + 1
    assert norms(_vit("tf_post_ln")) == 2 * 2 and norms(_vit("tf_deepnorm")) == 2 * 2
    assert norms(_vit("tf_no_norm")) == 0 and "norm" not in dict(_vit("tf_no_norm").named_children())


def test_deepnorm_scales_the_residual_and_the_value_output_and_mlp_init():
    alpha, beta = deepnorm_constants(2)
    assert alpha == pytest.approx(4 ** 0.25) and beta == pytest.approx(16 ** -0.25)
    deep, post = _vit("tf_deepnorm"), _vit("tf_post_ln")
    assert deep.blocks[0][0].alpha == pytest.approx(alpha) and post.blocks[0][0].alpha == 1.0
    d = 16
    for b in range(2):
        a_deep, a_post = deep.blocks[b][0].fn, post.blocks[b][0].fn
        torch.testing.assert_close(a_deep.qkv.weight[:2 * d], a_post.qkv.weight[:2 * d])  # q, k: paired, unscaled
        torch.testing.assert_close(a_deep.qkv.weight[2 * d:], beta * a_post.qkv.weight[2 * d:])  # v × β
        torch.testing.assert_close(a_deep.proj.weight, beta * a_post.proj.weight)
        for i in (0, 2):
            torch.testing.assert_close(deep.blocks[b][1].fn[i].weight, beta * post.blocks[b][1].fn[i].weight)


def test_paired_init_gives_every_variant_the_same_start_and_seeds_their_own():
    pre, rms, other = _vit("tf_pre_ln"), _vit("tf_pre_rms"), _vit("tf_pre_ln", seed=1)
    for name in ("tokens.pos", "tokens.cls", "tokens.embed.weight", "blocks.0.0.fn.qkv.weight", "head.weight"):
        a, b, c = (dict(m.named_parameters())[name] for m in (pre, rms, other))
        assert torch.equal(a, b) and not torch.equal(a, c), name
    assert 0.01 < float(pre.tokens.pos.detach().std()) < 0.03  # N(0, 0.02²)


@pytest.mark.parametrize("shape,pooling", [((1, 8, 8), "cls"), ((1, 28, 28), "mean"), ((3, 32, 32), "cls")])
def test_vit_takes_digits_mnist_and_cifar_inputs(shape, pooling):
    model = _vit("tf_pre_ln", f"model.pooling={pooling}", shape=shape)
    tokens = (shape[1] // 4) * (shape[2] // 4) + (pooling == "cls")
    assert model.tokens.pos.shape == (1, tokens, 16)
    assert model(torch.randn(2, *shape)).shape == (2, 10)


def test_norm_types_new_and_on_tokens():
    x = torch.randn(4, 5, 6) * 3 + 2
    bn = create_norm_layer("batch", 6, "tokens")
    assert isinstance(bn, TokenNorm)
    flat = x.reshape(-1, 6)  # statistics over batch × tokens, per channel
    want = (flat - flat.mean(0)) / torch.sqrt(flat.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(bn(x), want.view(4, 5, 6), rtol=1e-5, atol=1e-5)
    rms = create_norm_layer("rms", 6, "tokens")
    torch.testing.assert_close(rms(x), x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5))
    dyt = create_norm_layer("dyt", 6, "tokens")
    assert isinstance(dyt, DyT) and float(dyt.alpha.detach()) == 0.5
    with torch.no_grad():
        dyt.weight.fill_(2.0), dyt.bias.fill_(0.5)
    torch.testing.assert_close(dyt(x), 2.0 * torch.tanh(0.5 * x) + 0.5)
    conv = create_norm_layer("dyt", 3, "conv")
    assert isinstance(conv, DyT2d) and conv(torch.randn(2, 3, 4, 4)).shape == (2, 3, 4, 4)


@pytest.mark.parametrize("over,match", [
    (["model=cnn", "variant.norm=rms"], "variant.norm=rms has no form for conv maps"),
    (["model=cnn", "variant.transformer=post"], "use model=vit"),
    (TINY + ["variant=bn_post_act"], "keep variant.placement=pre_act"),
    (TINY + ["variant=tf_pre_bn", "bn.ghost_batch_size=8"], "not supported in model=vit"),
    (TINY + ["variant=tf_pre_ln", "variant.norm=group"], "has no form for transformer tokens"),
    (TINY + ["variant=tf_pre_ln", "model.patch_size=3"], "must divide the 8×8 input"),
    (TINY + ["variant=tf_pre_ln", "model.heads=3"], "multiple of model.heads=3"),
    (TINY + ["variant=tf_pre_ln", "variant.transformer=sandwich"], "Unknown variant.transformer"),
    (TINY + ["variant=tf_no_norm", "variant.ffn_norm=true"], "variant.norm=none has none"),
    (["model=cnn", "variant.ffn_norm=true"], "leave variant.ffn_norm=false"),
])
def test_what_is_refused_and_where(over, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(compose_config(over))


def test_the_new_norms_work_where_they_make_sense():
    validate_config(compose_config(["model=mlp", "variant.norm=rms"]))  # features
    validate_config(compose_config(["model=cnn", "variant.norm=dyt"]))  # conv maps: per-channel γ, β


def test_vit_trains_alone_and_records_like_any_run(tmp_path):
    cfgs = [compose_config(TINY + ["variant=tf_pre_bn", f"seed={s}"]) for s in (0, 1)]
    assert "transformer models" in packable(cfgs)
    rec = bnablate.run(TINY + ["variant=tf_pre_bn", "train.epochs=2"], out_dir=tmp_path)
    assert rec["status"] == "ok" and math.isfinite(rec["metrics"][-1]["train_loss"])
    assert rec["metrics"][-1]["val_acc"] > 0.3  # learns in 2 epochs of digits (chance: 0.1)


def test_tf_presets_name_transformer_runs_only():
    """A cnn with LayerNorm and GELU has tf_pre_ln's axes but no transformer blocks: it keeps its descriptive label."""
    from omegaconf import OmegaConf

    from bnablate.variants import variant_label

    axes = OmegaConf.to_container(compose_config(["variant=tf_pre_ln"]).variant)
    assert variant_label(axes, "vit") == "tf_pre_ln"
    assert variant_label(axes, "cnn") == variant_label(axes) == "layer/pre_act/gelu"
    bn = OmegaConf.to_container(compose_config(["variant=bn_pre_act"]).variant)
    assert variant_label(bn, "vit") == variant_label(bn, "cnn") == "bn_pre_act"


def test_qk_norm_normalizes_each_heads_queries_and_keys_and_keeps_the_paired_start():
    plain, qk = _vit("tf_pre_ln"), _vit("tf_pre_ln", "model.qk_norm=true")
    attn = qk.blocks[0][0].fn
    assert isinstance(attn.q_norm, nn.LayerNorm) and attn.q_norm.normalized_shape == (8,)  # d/H = 16/2
    assert isinstance(plain.blocks[0][0].fn.q_norm, nn.Identity)
    torch.testing.assert_close(attn.qkv.weight, plain.blocks[0][0].fn.qkv.weight)  # same paired draws

    seen = {}
    attn.q_norm.register_forward_hook(lambda m, i, o: seen.setdefault("q", o))
    attn.k_norm.register_forward_hook(lambda m, i, o: seen.setdefault("k", o))
    x = torch.randn(3, 1, 8, 8)
    out_plain, out_qk = plain(x), qk(x)
    for t in (seen["q"], seen["k"]):  # (N, H, T, d/H): zero mean, unit variance per head and token
        torch.testing.assert_close(t.mean(-1), torch.zeros(t.shape[:-1]), atol=1e-5, rtol=0)
        torch.testing.assert_close(t.var(-1, unbiased=False), torch.ones(t.shape[:-1]), atol=1e-3, rtol=0)
    assert not torch.allclose(out_plain, out_qk)


def test_bn_ffn_puts_the_norm_inside_each_mlp_and_keeps_the_pairing():
    """tf_bn_ffn (Yao et al. 2021): BN over batch × tokens in Pre-LN's places and between each MLP's first linear layer
    and its GELU; every layer tf_pre_bn has starts from the same weights (the linear layers keep their names)."""
    ffn, pre = _vit("tf_bn_ffn"), _vit("tf_pre_bn")
    mlp = ffn.blocks[0][1].fn
    assert isinstance(mlp[1][0], TokenNorm) and mlp[1][0].inner.num_features == mlp[0].out_features  # hidden width
    assert isinstance(pre.blocks[0][1].fn[1], nn.GELU)
    extra = {n for n, _ in ffn.named_parameters()} - {n for n, _ in pre.named_parameters()}
    assert extra and all(".fn.1.0." in n for n in extra)  # the inner norms' γ and β only
    shared = dict(pre.named_parameters())
    assert all(torch.equal(p, shared[n]) for n, p in ffn.named_parameters() if n in shared)
    x = torch.randn(4, 1, 8, 8)
    assert ffn(x).shape == (4, 10)
