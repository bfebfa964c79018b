"""bn.ghost_batch_size: BN on each chunk of the batch (Hoffer et al. 2017), equal to plain BN applied to each chunk,
bit-for-bit plain BN when the chunk is the whole batch, and refused where it cannot mean anything; bn.ghost_stats=step:
the running statistics of the first chunk once per step, and the last batch cut as data-parallel processes share it."""

import pytest
import torch
from torch import nn

import bnablate
from bnablate.errors import ConfigError
from bnablate.layers.ghost_bn import GhostBatchNorm1d, GhostBatchNorm2d, set_ghost_chunks
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


@pytest.mark.parametrize("cls,plain,shape", [(GhostBatchNorm2d, nn.BatchNorm2d, (12, 3, 4, 4)),
                                             (GhostBatchNorm1d, nn.BatchNorm1d, (12, 5))])
def test_step_normalizes_each_chunk_and_keeps_the_first_chunks_statistics_once_per_step(cls, plain, shape):
    torch.manual_seed(0)
    step, chunk, ref = cls(shape[1], ghost=4, ghost_stats="step"), cls(shape[1], ghost=4), plain(shape[1])
    for _ in range(3):  # three steps of 3 chunks each
        x = torch.randn(*shape) * 2 + 1
        assert torch.equal(step(x), chunk(x))  # the same normalization: each chunk on its own statistics
        ref(x[:4])  # rank 0's share: the first chunk, one BN call per step
    assert torch.equal(step.running_mean, ref.running_mean) and torch.equal(step.running_var, ref.running_var)
    assert int(step.num_batches_tracked) == 3 and int(chunk.num_batches_tracked) == 9
    assert not torch.allclose(chunk.running_mean, ref.running_mean)  # chunk folds in every chunk


def test_step_cuts_a_smaller_last_batch_as_the_processes_share_it():
    torch.manual_seed(0)
    net = nn.Sequential(GhostBatchNorm1d(3, ghost=8, ghost_stats="step"))
    set_ghost_chunks(net, 16)  # a full batch of 16 is 2 chunks: two processes of 8
    assert net[0].chunks == 2
    x, ref = torch.randn(14, 3), nn.BatchNorm1d(3)
    out = net(x)  # 7 + 7, as tensor_split(2) shares 14 between two processes (chunk would cut 8 + 6)
    assert torch.equal(out[7:], nn.BatchNorm1d(3)(x[7:])) and torch.equal(out[:7], ref(x[:7]))
    assert torch.equal(net[0].running_mean, ref.running_mean) and torch.equal(net[0].running_var, ref.running_var)
    unset = GhostBatchNorm1d(3, ghost=8, ghost_stats="step")  # unset: ⌈14 / 8⌉ = 2 parts, as for full batches
    assert torch.equal(unset(x), out)
    assert torch.equal(unset(x[:6]), nn.BatchNorm1d(3)(x[:6]))  # ⌈6 / 8⌉ = 1: the whole batch


@pytest.mark.parametrize("impl", ["grouped", "vmap"])
def test_step_packs_like_separate_runs(impl):
    """A pack under bn.ghost_stats=step keeps each run's first-chunk statistics and cuts its last batch (24 of 280
    images: 4 parts of 6) as the run alone does."""
    from tests.test_packed import BASE, assert_packs_like_separate_runs

    over = BASE + ["variant=bn_pre_act", "model.fc=[16]", "bn.ghost_batch_size=8", "dataset.train_subset=280",
                   f"pack_impl={impl}", "train.epochs=1"]
    step = assert_packs_like_separate_runs(over + ["bn.ghost_stats=step"], impl=impl)
    chunk = bnablate.run(over + ["seed=0"], out_dir="chunk")
    assert step[0]["metrics"][0]["val_loss"] != chunk["metrics"][0]["val_loss"]  # the running statistics mattered


def test_the_runner_tells_ghost_layers_each_process_share(monkeypatch, tmp_path):
    """The chunk count that cuts the last batch comes from train.batch_size / train.nproc (set_ghost_chunks)."""
    import bnablate.train.runner as runner

    seen = []
    monkeypatch.setattr(runner, "set_ghost_chunks", lambda model, size: seen.append(size) or set_ghost_chunks(
        model, size))
    bnablate.run(["dataset=synthetic", "model=mlp", "train.epochs=1", "train.batch_size=32", "bn.ghost_batch_size=8",
                  "bn.ghost_stats=step"], out_dir=tmp_path)
    assert seen == [32]


def test_step_and_its_last_batch_are_checked_before_training():
    from bnablate.train.distributed import check_last_batch

    with pytest.raises(ConfigError, match="bn.ghost_batch_size"):
        validate_config(compose_config(["bn.ghost_stats=step"]))  # no ghost batches: nothing to keep per step
    with pytest.raises(ConfigError, match="Did you mean 'step'"):
        validate_config(compose_config(["bn.ghost_batch_size=8", "bn.ghost_stats=steps"]))
    validate_config(compose_config(["bn.ghost_batch_size=8", "bn.ghost_stats=step"]))
    with pytest.raises(ConfigError, match="cuts it into 4 near-equal parts"):
        check_last_batch(n=100, batch=32, nproc=1, ghost=8, batch_norm=True, ghost_stats="step")  # 4 = 4 × 1
    check_last_batch(n=100, batch=32, nproc=1, ghost=8, batch_norm=True)  # chunk: 4 ≤ 8 is one chunk, fine
    check_last_batch(n=104, batch=32, nproc=1, ghost=8, batch_norm=True, ghost_stats="step")  # 8 = 4 × 2
    with pytest.raises(ConfigError, match="cuts it into 4"):  # 2 processes × 2 ghost batches of their share
        check_last_batch(n=102, batch=32, nproc=2, ghost=8, batch_norm=True, ghost_stats="step")  # 6 → 3 + 3 → 2 + 1
