"""Fine-tuning: each finetune.bn mode leaves exactly what it claims untouched (bitwise), the pretraining checkpoint is
trained once and reused, the head is re-initialised, and bad fine-tuning configs fail before training."""

import os

import pytest
import torch

import bnablate.train.finetune as finetune
import bnablate.train.runner as runner
from bnablate.config import compose_config
from bnablate.data import load_data
from bnablate.layers import batch_norm_layers
from bnablate.models import build_model
from bnablate.seeding import generator
from bnablate.train import ConfigError, run_experiment, validate_config
from bnablate.train.bn_stats import precise_bn

# digits 0–4 → 5–9 with a BN MLP: seconds per run, no files needed
FT = ["dataset=digits", "model=mlp", "variant=bn_pre_act", "dataset.classes=[5,6,7,8,9]", "finetune.source=digits",
      "finetune.source_classes=[0,1,2,3,4]", "finetune.source_epochs=1", "train.epochs=1", "train.batch_size=32",
      "out_dir=runs/ft"]
BN_PARAMS = ("weight", "bias")
BN_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _finetuned(monkeypatch, mode, extra=()):
    """(final fine-tuned model, checkpoint state_dict, result) of one fine-tuning run."""
    seen = {}
    original = runner.count_params

    def spy(model):  # run_experiment counts the parameters of its final model: keep that model
        seen["model"] = model
        return original(model)
    monkeypatch.setattr(runner, "count_params", spy)
    cfg = compose_config(FT + [f"finetune.bn={mode}", *extra])
    result = run_experiment(cfg)
    ckpt = torch.load(finetune.checkpoint_path(cfg), weights_only=True)["state_dict"]
    return seen["model"], ckpt, result


def _bn_tensors(model, names):
    return {f"{layer}.{n}": t for layer, m in model.named_modules() if m in batch_norm_layers(model)
            for n, t in list(m.named_parameters()) + list(m.named_buffers()) if n in names}


@pytest.mark.parametrize("mode,frozen,moved", [
    ("train", (), BN_PARAMS + BN_STATS),
    ("freeze_affine", BN_PARAMS, BN_STATS),
    ("freeze", BN_PARAMS + BN_STATS, ()),
    ("reset", (), BN_PARAMS + BN_STATS),
])
def test_each_mode_leaves_exactly_what_it_claims_untouched(monkeypatch, mode, frozen, moved):
    model, ckpt, result = _finetuned(monkeypatch, mode)
    assert result["status"] == "ok"
    for name, t in _bn_tensors(model, frozen).items():
        assert torch.equal(t, ckpt[name]), f"{mode} changed {name}"
    for name, t in _bn_tensors(model, moved).items():
        assert not torch.equal(t, ckpt[name]), f"{mode} left {name} at its pretrained value"
    for name in ("fc1.linear.weight", "fc2.linear.weight"):  # the layers around BN fine-tune in every mode
        assert not torch.equal(model.state_dict()[name], ckpt[name])
    assert model.head.weight.shape == (5, 32)
    n_bn = sum(p.numel() for m in batch_norm_layers(model) for p in m.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert result["n_params"] == trainable and (trainable + n_bn == sum(p.numel() for p in model.parameters())) == \
        (mode in ("freeze_affine", "freeze"))


def test_prepare_loads_all_but_the_head_and_reset_reestimates_on_target_data():
    cfg = compose_config(FT + ["finetune.bn=reset", "bn.precise_batches=3"])
    data = load_data(cfg.dataset)
    model = build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, 0, bn=cfg.bn)
    fresh_head = model.head.weight.clone()
    info = finetune.prepare_finetune(cfg, model, data, torch.device("cpu"))
    ckpt = torch.load(finetune.checkpoint_path(cfg), weights_only=True)["state_dict"]
    assert ckpt["head.weight"].shape == (5, 32) and torch.equal(model.head.weight, fresh_head)  # head re-initialised
    assert not torch.equal(model.head.weight, ckpt["head.weight"])
    # everything else is the checkpoint's, bitwise; the statistics are PreciseBN's on the target training data
    expected = build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, 0, bn=cfg.bn)
    expected.load_state_dict({k: v for k, v in ckpt.items() if not k.startswith("head.")}, strict=False)
    precise_bn(expected, data.train_x, 32, 3, generator(0, "finetune", "reset_bn"))
    for k, v in model.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(v, expected.state_dict()[k]), k
            if "running" in k:
                assert not torch.equal(v, ckpt[k])
    assert info["source"] == "digits" and 0 <= info["source_test_acc"] <= 1


def test_checkpoint_is_trained_once_and_reused(monkeypatch):
    calls = []
    original = finetune.pretrain
    monkeypatch.setattr(finetune, "pretrain", lambda cfg, device: calls.append(1) or original(cfg, device))
    first = run_experiment(compose_config(FT + ["finetune.bn=train"]))
    path = finetune.checkpoint_path(compose_config(FT))
    stamp = os.stat(path).st_mtime_ns
    assert first["pretrain"]["trained_now"] and len(calls) == 1
    # other modes, batch sizes and eval statistics of the same seed reuse it …
    for extra in (["finetune.bn=freeze"], ["finetune.bn=reset", "train.batch_size=16"], ["bn.eval_stats=batch"]):
        res = run_experiment(compose_config(FT + extra))
        assert not res["pretrain"]["trained_now"]
    assert len(calls) == 1 and os.stat(path).st_mtime_ns == stamp
    # … and a reused checkpoint fine-tunes to exactly the numbers of a freshly trained one
    again = run_experiment(compose_config(FT + ["finetune.bn=train"]))
    assert [m["val_loss"] for m in again["metrics"]] == [m["val_loss"] for m in first["metrics"]]
    # another seed or pretraining length is another checkpoint
    run_experiment(compose_config(FT + ["seed=1"]))
    assert len(calls) == 2
    assert len(list(path.parent.glob("pretrain-*.pt"))) == 2 and not list(path.parent.glob(".*.tmp"))


def test_checkpoint_key_follows_the_pretraining_config_only():
    key = lambda *extra: finetune.checkpoint_path(compose_config(FT + list(extra))).name  # noqa: E731
    same = ("finetune.bn=freeze", "train.batch_size=16", "train.epochs=4", "bn.eval_stats=precise", "out_dir=runs/ft")
    assert all(key(o) == key() for o in same)
    other = ("finetune.source_epochs=2", "seed=1", "bn.eps=1e-3", "optim.lr=0.01", "finetune.source_classes=[0,1,2]",
             "finetune.source_batch_size=16", "variant=bn_post_act")
    assert len({key(o) for o in other} | {key()}) == len(other) + 1


@pytest.mark.parametrize("over,msg", [
    (["finetune.bn=freez"], "Unknown finetune.bn 'freez'. Did you mean 'freeze'?"),
    (["finetune.source=digitz"], "Unknown finetune.source 'digitz'. Did you mean 'digits'?"),
    (["finetune.source=synthetic", "finetune.source_classes=null"], "3 input channel.*dataset=digits has 1"),
    (["finetune.source=mnist", "finetune.source_classes=null"], "fc1.linear.weight"),  # mlp: 28×28 vs 8×8 inputs
    (["finetune.bn=freeze", "bn.eval_stats=batch"], "bn.eval_stats=running"),
    (["finetune.bn=freeze", "variant=ln_pre_act"], "acts on batch-norm layers"),
    (["finetune.source_epochs=0"], "finetune.source_epochs must be ≥ 1"),
    (["finetune.source_batch_size=1"], "finetune.source_batch_size must be ≥ 2"),
    (["finetune.source_classes=[0,10]"], "finetune.source_classes must list at least two distinct class ids in 0..9"),
    (["dataset.classes=[3,3]"], "dataset.classes must list"),
])
def test_bad_finetune_configs_fail_before_training(over, msg):
    with pytest.raises(ConfigError, match=msg):
        validate_config(compose_config(FT + over))


def test_a_bn_mode_without_a_source_is_rejected():
    with pytest.raises(ConfigError, match="finetune.bn=reset applies only when fine-tuning"):
        validate_config(compose_config(["finetune.bn=reset"]))


def test_lenet_transfers_between_28_and_32_pixel_inputs():
    validate_config(compose_config(["dataset=mnist", "model=lenet", "finetune.source=fashion_mnist"]))
    validate_config(compose_config(["dataset=cifar10", "model=lenet", "dataset.classes=[5,6,7,8,9]",
                                    "finetune.source=cifar10", "finetune.source_classes=[0,1,2,3,4]"]))


def test_frozen_mode_swaps_in_torchvisions_frozen_bn_with_the_source_statistics(monkeypatch):
    """finetune.bn=frozen: no batch-norm layer is left, each became torchvision's FrozenBatchNorm2d holding the
    checkpoint's statistics and affine as buffers (nothing trainable), normalizing the same in train and eval mode."""
    from torchvision.ops import FrozenBatchNorm2d

    model, ckpt, result = _finetuned(monkeypatch, "frozen")
    assert result["status"] == "ok" and not batch_norm_layers(model)
    frozen = {n: m for n, m in model.named_modules() if isinstance(m, FrozenBatchNorm2d)}
    assert frozen and not any(p.requires_grad for m in frozen.values() for p in m.parameters())
    for name, m in frozen.items():  # fc1.norm.frozen ← fc1.norm in the checkpoint (the MLP's BatchNorm1d)
        source = name.removesuffix(".frozen")
        for stat in ("running_mean", "running_var", "weight", "bias"):
            assert torch.equal(getattr(m, stat), ckpt[f"{source}.{stat}"]), f"{name}.{stat}"
    x = torch.randn(8, 64)
    model.train()
    out_train = model(x)
    model.eval()
    assert torch.equal(out_train, model(x))  # no batch statistics anywhere
