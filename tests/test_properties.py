"""Property-based tests (hypothesis) over the variant space: every valid combination of axes builds and trains on
synthetic data with a finite loss; every invalid one is rejected before training with a message naming the key."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnablate.config import compose_config
from bnablate.train import ConfigError, run_experiment, validate_config

# Small widths keep each example fast; the validity oracle below is written from these, not from bnablate's code.
MODELS = {"mlp": (["model.hidden=[8,6]"], [8, 6]),
          "cnn": (["model.channels=[4,8]", "model.convs_per_stage=1"], [4, 8]),
          "lenet": ([], [6, 16, 120, 84]),
          "resnet": (["model.depth=8", "model.widths=[4,8,8]"], [4, 8, 8])}
NORMS = ["batch", "scratch", "layer", "group", "none"]
PLACEMENTS = ["pre_act", "post_act", "post_pool", "none"]
DROPOUTS = ["none", "norm_then_dropout", "dropout_then_norm"]
BIASES = ["on", "off", "auto"]
ACTIVATIONS = ["relu", "sigmoid", "tanh", "gelu", "leaky_relu", "elu", "silu"]
RESIDUALS = ["original", "bn_after_add", "relu_before_add", "relu_preact", "full_preact"]
RESIDUAL_INITS = ["standard", "zero_gamma", "skipinit"]
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

variants = st.fixed_dictionaries({
    "model": st.sampled_from(sorted(MODELS)), "norm": st.sampled_from(NORMS), "placement": st.sampled_from(PLACEMENTS),
    "dropout": st.sampled_from(DROPOUTS), "dropout_p": st.sampled_from([0.0, 0.1, 0.5, 0.9]),
    "bias": st.sampled_from(BIASES), "activation": st.sampled_from(ACTIVATIONS), "groups": st.sampled_from([1, 2, 3, 4]),
    # the defaults weighted up: other values are refused on three of the four models
    "residual": st.sampled_from(RESIDUALS + ["original"] * 4), "residual_init": st.sampled_from(RESIDUAL_INITS + ["standard"] * 3),
})


def _overrides(v):
    extra, _ = MODELS[v["model"]]
    return ["dataset=synthetic", f"model={v['model']}", *extra, f"variant.norm={v['norm']}",
            f"variant.placement={v['placement']}", f"variant.dropout={v['dropout']}", f"variant.dropout_p={v['dropout_p']}",
            f"variant.bias='{v['bias']}'", f"variant.activation={v['activation']}", f"variant.groups={v['groups']}",
            f"variant.residual={v['residual']}", f"variant.residual_init={v['residual_init']}", "train.epochs=1", "train.batch_size=16", "dataset.train_subset=32", "device=cpu"]


def _rejection(v):
    """Independent oracle: None for a valid combination, else what the rejection names. Residual designs and inits
    need residual blocks; zero γ needs a norm and SkipInit none; GroupNorm must divide every normalized width."""
    normalized = v["norm"] != "none" and v["placement"] != "none"
    if v["model"] != "resnet" and (v["residual"] != "original" or v["residual_init"] != "standard"):
        return "model=resnet"
    if v["model"] == "resnet" and v["residual_init"] == "zero_gamma" and not normalized:
        return "skipinit"
    if v["model"] == "resnet" and v["residual_init"] == "skipinit" and normalized:
        return "zero_gamma"
    if normalized and v["norm"] == "group" and any(w % v["groups"] for w in MODELS[v["model"]][1]):
        return "groups"
    return None


@FAST
@given(variants)
def test_every_combination_trains_or_is_rejected_up_front(v):
    cfg = compose_config(_overrides(v))
    rejected = _rejection(v)
    if rejected:
        with pytest.raises(ConfigError, match=rejected):
            validate_config(cfg)
        return
    validate_config(cfg)
    result = run_experiment(cfg)
    assert result["status"] == "ok" and result["n_params"] > 0
    assert all(math.isfinite(result["metrics"][0][k]) for k in ("train_loss", "val_loss", "test_loss"))


@FAST
@given(st.sampled_from(["norm", "placement", "dropout", "bias", "activation", "residual", "residual_init"]),
       st.text("xyzq_", min_size=2, max_size=6))
def test_unknown_axis_values_are_rejected_naming_the_axis(axis, value):
    cfg = compose_config(["dataset=synthetic", "model=mlp", f"variant.{axis}={value}"])
    with pytest.raises(ConfigError, match=axis):
        validate_config(cfg)


@FAST
@given(st.one_of(st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False),
                 st.floats(min_value=1.0, max_value=1e6, allow_nan=False)))
def test_dropout_p_outside_unit_interval_is_rejected(p):
    cfg = compose_config(["dataset=synthetic", "model=mlp", "variant=bn_dropout", f"variant.dropout_p={p!r}"])
    with pytest.raises(ConfigError, match=r"dropout_p must be in \[0, 1\)"):
        validate_config(cfg)
