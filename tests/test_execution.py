"""Execution options: precision, memory layout, per-epoch index transfer, provenance, run keys, CUDA determinism."""

import pytest
import torch

from bnablate.config import compose_config, to_plain
from bnablate.results.records import run_key
from bnablate.seeding import generator
from bnablate.train import ConfigError, batch_indices, epoch_batches, run_experiment
from bnablate.pack import packable
from bnablate.train import run_packed

FAST = ["dataset=synthetic", "model=lenet", "variant=bn_pre_act", "train.epochs=1", "train.batch_size=32"]


def _losses(result):
    return [(m["train_loss"], m["val_loss"], m["test_loss"]) for m in result["metrics"]]


def test_epoch_batches_are_batch_indices_stacked_per_run():
    gens = [generator(s, "batches") for s in (0, 1)]
    ref = [batch_indices(101, 10, generator(s, "batches")) for s in (0, 1)]
    got = epoch_batches(101, 10, gens, torch.device("cpu"))
    assert len(got) == len(ref[0]) == 10 and got[-1].shape == (2, 11)  # the single trailing sample is folded in
    for step, idx in enumerate(got):
        assert torch.equal(idx[0], ref[0][step]) and torch.equal(idx[1], ref[1][step])


def test_bf16_changes_numerics_trains_and_is_recorded():
    fp32 = run_experiment(compose_config(FAST))
    bf16 = run_experiment(compose_config(FAST + ["train.precision=bf16"]))
    assert bf16["status"] == "ok" and bf16["execution"]["precision"] == "bf16"
    assert fp32["execution"]["precision"] == "fp32"
    a, b = _losses(fp32)[0], _losses(bf16)[0]
    assert a != b and all(abs(x - y) < 0.05 * abs(x) for x, y in zip(a, b))  # bf16 rounding, same training


def test_channels_last_is_the_same_maths():
    ref = run_experiment(compose_config(FAST))
    nhwc = run_experiment(compose_config(FAST + ["train.channels_last=true"]))
    assert nhwc["execution"]["channels_last"] is True
    for a, b in zip(_losses(ref)[0], _losses(nhwc)[0]):
        assert a == pytest.approx(b, rel=1e-4)


def test_numerics_options_enter_the_run_key_only_away_from_their_old_behaviour():
    base = run_key(to_plain(compose_config(FAST)))
    assert run_key(to_plain(compose_config(FAST + ["train.channels_last=true", "train.compile_mode=max-autotune",
                                                   "train.deterministic=false"]))) == base  # execution only
    assert run_key(to_plain(compose_config(FAST + ["train.precision=bf16"]))) != base
    assert run_key(to_plain(compose_config(FAST + ["train.tf32=true"]))) != base
    assert run_key(to_plain(compose_config(FAST + ["optim.fused=true"]))) != base
    assert run_key(to_plain(compose_config(FAST + ["optim.fused=false", "pack_impl=vmap"]))) == base


@pytest.mark.parametrize("optim", ["adam", "sgd"])
def test_fused_optimizer_kernels_train_like_foreach_to_float_tolerance(optim):
    from bnablate.train import build_optimizer

    over = FAST + [f"optim={optim}", "train.epochs=2"]
    assert build_optimizer([torch.zeros(2, requires_grad=True)], compose_config(over + ["optim.fused=true"]).optim,
                           32).defaults["fused"] is True
    ref, fused = (run_experiment(compose_config(over + [f"optim.fused={f}"])) for f in ("false", "true"))
    for a, b in zip(_losses(ref), _losses(fused)):
        assert a == pytest.approx(b, rel=1e-4)


@pytest.mark.parametrize("over,msg", [(["train.precision=fp16"],
                                       r"Unknown train.precision 'fp16'. Did you mean 'bf16'\? Choose one of: bf16, fp32."),
                                      (["train.compile_mode=fast"], "Unknown train.compile_mode 'fast'.")])
def test_bad_execution_values_are_rejected(over, msg):
    with pytest.raises(ConfigError, match=msg):
        run_experiment(compose_config(FAST + over))


def test_what_packing_leaves_to_unpacked_runs_says_why():
    assert "unpacked runs only" in packable([compose_config(FAST + ["train.channels_last=true"])])
    assert "bf16" in packable([compose_config(FAST + ["train.precision=bf16"])])
    assert packable([compose_config(FAST + [f"seed={s}"]) for s in (0, 1)]) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("packed", [False, True])
def test_cuda_runs_are_bitwise_repeatable(packed):
    over = FAST + ["device=cuda", "dataset.augment=true", "train.epochs=2"]
    if packed:
        cfgs = [compose_config(over + [f"seed={s}"]) for s in (0, 1)]
        a, b = run_packed(cfgs), run_packed(cfgs)
        assert [_losses(r) for r in a] == [_losses(r) for r in b]
    else:
        cfg = compose_config(over)
        a, b = run_experiment(cfg), run_experiment(cfg)
        assert a["execution"]["deterministic"] is True and _losses(a) == _losses(b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("packed", [False, True])
def test_cuda_step_loop_never_waits_for_the_gpu(packed):
    """Host/device synchronisations of an epoch do not grow with its step count: indices go to the GPU once per
    epoch and the summed losses are read once at its end (torch's sync debug mode reports every waiting call)."""
    import warnings

    from bnablate.data import load_data
    from bnablate.models import build_model
    from bnablate.train import train_one_epoch
    from bnablate.train.optim import build_optimizer
    from bnablate.pack import PackedModel

    cfg = compose_config(FAST + ["device=cuda"])
    data = load_data(cfg.dataset).to(torch.device("cuda"))

    def model(seed):
        return build_model(cfg.model, cfg.variant, data.input_shape, data.num_classes, seed, bn=cfg.bn).cuda()

    def syncs(steps: int) -> int:
        if packed:
            pm = PackedModel([model(0), model(1)])
            opt = build_optimizer(pm.parameters(), cfg.optim, 32)
            epoch = lambda: train_one_epoch(pm, opt, data.train_x, data.train_y, 32,  # noqa: E731
                                            [generator(s, "batches") for s in (0, 1)], max_steps=steps)
        else:
            m = model(0)
            opt = build_optimizer(m.parameters(), cfg.optim, 32)
            epoch = lambda: train_one_epoch(m, opt, data.train_x, data.train_y, 32,  # noqa: E731
                                            generator(0, "batches"), max_steps=steps)
        epoch()  # first calls (cuDNN/cuBLAS set-up) may synchronise once; steady state is what is checked
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                epoch()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchronizing CUDA operation" in str(w.message) for w in caught)

    few, many = syncs(2), syncs(8)
    assert few >= 1  # the end-of-epoch loss read is seen: the check is live
    assert many == few


def test_fit_pack_size_divides_free_memory_after_the_dataset():
    from bnablate.pack.memory import MAX_PACK_SIZE, fit_pack_size

    gib = 2 ** 30
    assert fit_pack_size(10 * gib, 1 * gib, gib // 2) == 14  # (0.8·10 − 1) GiB / 0.5 GiB
    assert fit_pack_size(80 * gib, 0, 1) == MAX_PACK_SIZE  # tiny runs: capped
    assert fit_pack_size(gib, 2 * gib, gib) == 1  # nothing fits: still one run at a time


def test_pack_size_auto_on_cuda_uses_the_probe_and_free_memory(monkeypatch):
    from bnablate.pack import memory as pack_memory

    gib = 2 ** 30
    monkeypatch.setattr(pack_memory.torch.cuda, "mem_get_info", lambda device: (20 * gib, 80 * gib))
    cfg = compose_config(FAST)
    size = pack_memory.auto_pack_size(cfg, torch.device("cuda"), data_bytes=gib, probe=lambda c, d: gib)
    assert size == 15  # (16 − 1) GiB / 1 GiB
    assert pack_memory.auto_pack_size(cfg, torch.device("cpu"), data_bytes=gib) == pack_memory.CPU_PACK_SIZE


def test_pack_size_values():
    from bnablate.pack import check_pack_options, pack_size

    assert pack_size(compose_config(FAST + ["pack_size=3"])) == (3, "pack_size=3")
    assert pack_size(compose_config(FAST + ["device=cpu"])) == (8, "pack_size=auto: 8 on a CPU")
    for bad in ("0", "many"):
        with pytest.raises(ConfigError, match="pack_size must be auto or an integer ≥ 1"):
            check_pack_options(compose_config(FAST + [f"pack_size={bad}"]))


def test_pack_auto_on_a_cpu_packs_only_where_the_model_measured_faster():
    from bnablate.pack import why_alone

    cpu = ["device=cpu", "dataset=synthetic"]

    def packs(*over):
        return why_alone(compose_config(cpu + list(over))) is None
    assert packs("model=lenet", "train.batch_size=8") and not packs("model=lenet", "train.batch_size=16")
    assert packs("model=mlp", "train.batch_size=32") and not packs("model=mlp", "train.batch_size=64")
    assert packs("model=cnn", "train.batch_size=8") and not packs("model=cnn", "train.batch_size=16")
    assert "model.cpu_pack_max_batch=8" in why_alone(compose_config(cpu + ["model=lenet", "train.batch_size=16"]))
    assert not packs("model=lenet", "train.batch_size=8", "model.cpu_pack_max_batch=0")
    assert not packs("model=lenet", "train.batch_size=4", "pack=false") and packs("model=cnn", "pack=true")
    # a speed hint: not part of the run key, not a column of the tables
    plain = to_plain(compose_config(cpu))
    assert run_key(plain) == run_key(to_plain(compose_config(cpu + ["model.cpu_pack_max_batch=64"])))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_probe_measures_a_positive_share_per_run():
    from bnablate.pack.memory import probe_run_bytes

    assert probe_run_bytes(compose_config(FAST + ["device=cuda"]), torch.device("cuda")) > 0
