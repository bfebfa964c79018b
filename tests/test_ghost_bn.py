"""bn.ghost_batch_size: BN on each chunk of the batch (Hoffer et al. 2017), equal to plain BN applied to each chunk,
bit-for-bit plain BN when the chunk is the whole batch, and refused where it cannot mean anything."""

import pytest
import torch
from torch import nn

import bnablate
from bnablate.errors import ConfigError
from bnablate.layers.ghost_bn import GhostBatchNorm1d, GhostBatchNorm2d
from bnablate.train import validate_config
from bnablate.config import compose_config


@pytest.mark.parametrize("cls,plain,shape", [(GhostBatchNorm2d, nn.BatchNorm2d, (12, 3, 4, 4)),
                                             (GhostBatchNorm1d, nn.BatchNorm1d, (12, 5))])
def test_ghost_bn_is_plain_bn_on_each_chunk_outputs_and_running_statistics(cls, plain, shape):
    torch.manual_seed(0)
    x = torch.randn(*shape) * 3 + 1
    ghost = cls(shape[1], ghost=4)
    with torch.no_grad():
        ghost.weight.uniform_(0.5, 2.0)
        ghost.bias.uniform_(-1, 1)
    ref = plain(shape[1])
    ref.load_state_dict({k: v for k, v in ghost.state_dict().items()})
    expected = torch.cat([ref(chunk) for chunk in x.split(4)])  # one BN call per chunk, running stats in order
    out = ghost(x)
    assert torch.equal(out, expected)
    assert torch.equal(ghost.running_mean, ref.running_mean) and torch.equal(ghost.running_var, ref.running_var)
    assert int(ghost.num_batches_tracked) == 3
    chunk_means = out.reshape(3, 4, shape[1], -1).mean(dim=(1, 3)) - ghost.bias  # each chunk is centred on its own
    assert torch.allclose(chunk_means, torch.zeros_like(chunk_means), atol=1e-5)
    ghost.eval(), ref.eval()
    assert torch.equal(ghost(x), ref(x))  # eval: the running statistics, as BN


def test_remainder_chunk_of_a_smaller_last_batch():
    ghost, ref = GhostBatchNorm1d(3, ghost=4), nn.BatchNorm1d(3)
    x = torch.randn(10, 3)  # chunks 4, 4 and a remainder of 2
    assert torch.equal(ghost(x), torch.cat([ref(c) for c in x.split(4)]))


def test_cumulative_average_counts_every_chunk():
    ghost, ref = GhostBatchNorm1d(3, ghost=2, momentum=None), nn.BatchNorm1d(3, momentum=None)
    x = torch.randn(6, 3)
    ghost(x), [ref(c) for c in x.split(2)]
    assert torch.allclose(ghost.running_mean, ref.running_mean) and int(ghost.num_batches_tracked) == 3


def test_ghost_size_equal_to_the_batch_is_plain_bn_bit_for_bit(tmp_path):
    base = ["dataset=digits", "model=lenet", "variant=bn_pre_act", "train.epochs=1", "train.batch_size=32"]
    plain = bnablate.run(base, out_dir=tmp_path / "a")
    whole = bnablate.run(base + ["bn.ghost_batch_size=32"], out_dir=tmp_path / "b")
    small = bnablate.run(base + ["bn.ghost_batch_size=8"], out_dir=tmp_path / "c")
    assert _same_but_time(whole, plain)
    assert small["metrics"][0]["train_loss"] != plain["metrics"][0]["train_loss"]  # 8-sample statistics differ
    assert plain["run_key"] != whole["run_key"] != small["run_key"]


def _same_but_time(a, b):
    drop = ("epoch_time_s", "samples_per_s")
    return [{k: v for k, v in m.items() if k not in drop} for m in a["metrics"]] == \
        [{k: v for k, v in m.items() if k not in drop} for m in b["metrics"]]


def test_ghost_batches_train_alone_and_refuse_what_cannot_mean_anything():
    cfg = compose_config(["variant=ln_pre_act", "bn.ghost_batch_size=8"])
    with pytest.raises(ConfigError, match="use variant.norm=batch"):
        validate_config(cfg)
    with pytest.raises(ConfigError, match="divide train.batch_size=64"):
        validate_config(compose_config(["bn.ghost_batch_size=24"]))
    with pytest.raises(ConfigError, match="must be ≥ 2"):
        validate_config(compose_config(["bn.ghost_batch_size=1"]))
    validate_config(compose_config(["variant=no_bn", "bn.ghost_batch_size=8"]))  # no norm: nothing to split, fine


@pytest.mark.parametrize("impl,variant", [("grouped", "bn_pre_act"), ("grouped", "bn_post_pool"),
                                          ("vmap", "bn_pre_act")])
def test_ghost_batches_pack_like_separate_runs(impl, variant):
    """Each run of a pack splits its own batch into the same chunks as it would alone (conv and linear BN: the
    hidden fc layer model.fc=[16] has a BatchNorm1d), per step, running statistics included (the evaluation uses them)."""
    from tests.test_packed import BASE, assert_packs_like_separate_runs

    over = BASE + [f"variant={variant}", "model.fc=[16]", "bn.ghost_batch_size=8",
                   f"pack_impl={impl}", "train.epochs=1"]
    packed = assert_packs_like_separate_runs(over, impl=impl)
    plain = assert_packs_like_separate_runs([o for o in over if not o.startswith("bn.ghost")], impl=impl)
    assert packed[0]["metrics"][0]["train_loss"] != plain[0]["metrics"][0]["train_loss"]  # the chunks mattered


def test_models_build_ghost_bn_everywhere_bn_goes():
    from bnablate.models import build_model

    for model in ("mlp", "lenet", "cnn", "resnet"):
        cfg = compose_config([f"model={model}", "bn.ghost_batch_size=8"] + (["model.depth=8"] if model == "resnet" else []))
        net = build_model(cfg.model, cfg.variant, (1, 8, 8) if model != "resnet" else (3, 8, 8), 10, 0, bn=cfg.bn)
        bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert bns and all(isinstance(m, (GhostBatchNorm1d, GhostBatchNorm2d)) for m in bns), model
