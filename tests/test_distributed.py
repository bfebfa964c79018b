"""Data-parallel runs (train.nproc, DDP over gloo on CPU): two processes with local BN at batch b train the same
weights as one process at batch 2b with bn.ghost_batch_size=b — the proof that the single-process simulation answers
the multi-device question — and, under bn.ghost_stats=step, keep the same running statistics and test accuracy end to
end; the options refuse what cannot work."""

import pytest
import torch
import torch.distributed as dist

import bnablate
from bnablate.config import compose_config
from bnablate.errors import ConfigError
from bnablate.models import build_model
from bnablate.train import train_one_epoch, validate_config
from bnablate.train.distributed import DataParallelRun, run_workers
from bnablate.train.loop import LoneRun

# Float tolerance of the weights after 6 SGD steps: the two processes' gradients are averaged by an all-reduce, one
# process sums the same per-sample terms in another order (~1e-7 relative per step, amplified by momentum).
ATOL, RTOL = 1e-5, 1e-4
SHARE, STEPS = 8, 6  # per-process batch b; steps of batch 2b


def _setup(ghost=None):
    """A tiny cnn with conv BN and linear BN (hidden fc layer), and a fixed dataset of 96 8×8 images."""
    cfg = compose_config(["model=cnn", "model.channels=[4]", "model.fc=[8]", "variant=bn_pre_act"] +
                         ([f"bn.ghost_batch_size={ghost}", f"train.batch_size={2 * SHARE}"] if ghost else []))
    model = build_model(cfg.model, cfg.variant, (1, 8, 8), 10, seed=0, bn=cfg.bn)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(96, 1, 8, 8, generator=g), torch.randint(0, 10, (96,), generator=g)
    return model, x, y


def _train(runs, model, x, y):
    opt = torch.optim.SGD(runs.parameters(), lr=0.1, momentum=0.9)
    out = train_one_epoch(runs, opt, x, y, 2 * SHARE, torch.Generator().manual_seed(0), max_steps=STEPS)
    return out, {n: p.detach().clone() for n, p in model.named_parameters()}


def _ddp_worker():
    """One of two processes: local BN on this rank's share of every batch of 2b."""
    dist.init_process_group("gloo")
    try:
        model, x, y = _setup()
        return _train(DataParallelRun(model), model, x, y)
    finally:
        dist.destroy_process_group()


def test_ddp_with_local_bn_trains_the_weights_of_ghost_batches_in_one_process():
    results = run_workers(_ddp_worker, 2)
    ghost_model, x, y = _setup(ghost=SHARE)
    ghost_out, ghost_weights = _train(LoneRun(ghost_model), ghost_model, x, y)
    plain_model, _, _ = _setup()
    _, plain_weights = _train(LoneRun(plain_model), plain_model, x, y)
    for rank in (0, 1):
        out, weights = results[rank]
        assert out["train_loss"] == pytest.approx(ghost_out["train_loss"], rel=RTOL)  # the whole batch's loss
        assert out["train_acc"] == ghost_out["train_acc"]
        for name, w in ghost_weights.items():
            torch.testing.assert_close(weights[name], w, atol=ATOL, rtol=RTOL, msg=name)
    # and the chunks mattered: BN over the whole batch of 2b trains other weights
    assert any((plain_weights[n] - w).abs().max() > 1e-3 for n, w in ghost_weights.items())


# End to end on the digits data: 1294 training images in batches of 2b = 64 leave a last batch of 14, which two
# processes share 7 + 7 (bn.ghost_stats=step cuts it so; chunk makes it one chunk of 14).
DIGITS = ["dataset=digits", "model=cnn", "model.channels=[4]", "model.fc=[8]", "variant=bn_pre_act"]
B, EPOCHS = 32, 2


def _digits_run(runs_of, over=()):
    """Train the tiny cnn on digits for EPOCHS full epochs (the runner's seeds and loop, ghost chunks set as the
    runner sets them), then evaluate on the test split: (weights, BN buffers, test correct mask)."""
    from bnablate.data import load_data
    from bnablate.layers.ghost_bn import set_ghost_chunks
    from bnablate.seeding import generator
    from bnablate.train import evaluate

    cfg = compose_config(DIGITS + [f"train.batch_size={2 * B}"] + list(over))
    data = load_data(cfg.dataset)
    model = build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, seed=0, bn=cfg.bn)
    runs = runs_of(model)
    set_ghost_chunks(model, 2 * B // getattr(runs, "world", 1))
    opt = torch.optim.SGD(runs.parameters(), lr=0.05, momentum=0.9)
    g = generator(0, "batches")
    for _ in range(EPOCHS):
        train_one_epoch(runs, opt, data.train_x, data.train_y, 2 * B, g)
    test = evaluate(runs, data.test_x, data.test_y, 256, masks=True)
    state = {n: t.detach().clone() for n, t in model.state_dict().items()}
    return ({n: t for n, t in state.items() if n in dict(model.named_parameters())},
            {n: t for n, t in state.items() if n not in dict(model.named_parameters())}, test["correct"][0])


def _ddp_digits_worker():
    dist.init_process_group("gloo")
    try:
        return _digits_run(DataParallelRun)
    finally:
        dist.destroy_process_group()


def test_ghost_stats_step_equals_data_parallel_bn_on_weights_buffers_and_test_accuracy_end_to_end():
    """bn.ghost_stats=step: one process at batch 2b with ghost size b is two processes at b — the weights, rank 0's
    running statistics (what DDP keeps) and the test predictions, over two full epochs with a smaller last batch."""
    ddp_weights, ddp_buffers, ddp_correct = run_workers(_ddp_digits_worker, 2)[0]
    step = _digits_run(LoneRun, [f"bn.ghost_batch_size={B}", "bn.ghost_stats=step"])
    chunk = _digits_run(LoneRun, [f"bn.ghost_batch_size={B}"])
    weights, buffers, correct = step
    assert any("running_mean" in n for n in buffers) and any("num_batches_tracked" in n for n in buffers)
    for name, w in ddp_weights.items():
        torch.testing.assert_close(weights[name], w, atol=ATOL, rtol=RTOL, msg=name)
    for name, t in ddp_buffers.items():  # running means and variances, and the step count (one per step)
        torch.testing.assert_close(buffers[name], t, atol=ATOL, rtol=RTOL, msg=name)
    assert int((correct != ddp_correct).sum()) <= 1  # the test accuracy within one test image
    # and chunk (the default) keeps other statistics: k updates per step, the last batch as one chunk
    _, chunk_buffers, _ = chunk
    assert any((chunk_buffers[n].float() - t.float()).abs().max() > 1e-2 for n, t in ddp_buffers.items())


@pytest.mark.slow  # end to end through bnablate.run; the DDP = ghost-BN proof stays fast
def test_train_nproc_2_is_a_run_like_any_other(tmp_path):
    """End to end through bnablate.run: the training curve and the test accuracy (within one test image) of ghost
    batches under bn.ghost_stats=step, an epoch's last batch of 10 included (5 + 5 both ways), the record says how
    it ran, the key is its own, a second call resumes (skips it) instead of training again."""
    base = ["dataset=digits", "dataset.train_subset=650", "model=mlp", "variant=bn_pre_act", "train.epochs=2",
            "train.batch_size=32", "threads=2"]
    ddp = bnablate.run(base + ["train.nproc=2"], out_dir=tmp_path / "ddp")
    ghost = bnablate.run(base + ["bn.ghost_batch_size=16", "bn.ghost_stats=step"], out_dir=tmp_path / "ghost")
    assert ddp["status"] == "ok" and len(ddp["metrics"]) == 2
    for a, b in zip(ddp["metrics"], ghost["metrics"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=RTOL)
        assert a["train_acc"] == b["train_acc"]
        assert abs(a["test_acc"] - b["test_acc"]) * ddp["n_test"] <= 1 + 1e-9
    prov = ddp["provenance"]
    assert (prov["world_size"], prov["per_device_batch"], prov["dist_backend"]) == (2, 16, "gloo")
    assert ddp["run_key"] not in (ghost["run_key"], bnablate.run(base, out_dir=tmp_path / "one")["run_key"])
    again = bnablate.run(base + ["train.nproc=2"], out_dir=tmp_path / "ddp")
    assert again["run_key"] == ddp["run_key"] and again.get("skipped")


@pytest.mark.parametrize("over,match", [
    (["bn.sync=true"], "bn.sync=true needs CUDA"),
    (["train.nproc=0"], "train.nproc must be ≥ 1"),
    (["train.nproc=64"], "more than the"),
    (["train.nproc=2", "train.batch_size=33"], "split evenly over train.nproc=2"),
    (["train.nproc=2", "train.compile=true"], "train.compile trains in one process"),
    (["train.nproc=2", "train.batch_size=2"], "leaves 1 sample per process"),
])
def test_what_data_parallel_runs_refuse(over, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(compose_config(over + ["device=cpu"]))


def test_sync_bn_refusals_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("SyncBatchNorm needs CUDA")
    with pytest.raises(ConfigError, match="no other process"):
        validate_config(compose_config(["bn.sync=true", "device=cuda"]))


def test_a_last_batch_too_small_to_share_is_refused_before_training():
    from bnablate.train.distributed import check_last_batch

    with pytest.raises(ConfigError, match="fewer than 2 per process"):
        check_last_batch(n=100, batch=32, nproc=4, ghost=None, batch_norm=True)  # last batch 4: one per process
    check_last_batch(n=100, batch=32, nproc=4, ghost=None, batch_norm=False)  # no BN: a share of one is fine
    check_last_batch(n=128, batch=32, nproc=4, ghost=None, batch_norm=True)  # no last partial batch
    with pytest.raises(ConfigError, match="last chunk of one sample"):
        check_last_batch(n=105, batch=32, nproc=1, ghost=8, batch_norm=True)  # last batch 9 = 8 + 1
    check_last_batch(n=106, batch=32, nproc=1, ghost=8, batch_norm=True)  # 10 = 8 + 2: fine


def test_data_parallel_runs_do_not_pack():
    from bnablate.pack.rules import packable

    cfgs = [compose_config(["train.nproc=2", f"seed={s}"]) for s in (0, 1)]
    assert "data-parallel" in packable(cfgs)
