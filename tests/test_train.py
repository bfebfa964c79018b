"""Training: determinism, paired batch order, mode handling, divergence, and the batch-size guards."""

import pytest
import torch

from bnablate.config import compose_config
from bnablate.train import ConfigError, batch_indices, run_experiment
from bnablate.seeding import generator

FAST = ["dataset=synthetic", "model=mlp", "train.epochs=2", "train.batch_size=32"]


def _numbers(result):
    return [{k: v for k, v in m.items() if k not in ("epoch_time_s", "samples_per_s")} for m in result["metrics"]]


def test_same_config_and_seed_give_identical_numbers():
    cfg = compose_config(FAST + ["variant=bn_dropout", "seed=5"])
    a, b = run_experiment(cfg), run_experiment(cfg)
    assert a["status"] == "ok" and _numbers(a) == _numbers(b)
    c = run_experiment(compose_config(FAST + ["variant=bn_dropout", "seed=6"]))
    assert _numbers(c) != _numbers(a)


def test_training_learns_digits():
    res = run_experiment(compose_config(["dataset=digits", "model=mlp", "train.epochs=5", "variant=bn_pre_act"]))
    assert res["metrics"][-1]["test_acc"] > 0.8  # 10 classes: chance is 0.1
    assert res["metrics"][-1]["steps"] == 5 * len(batch_indices(res["n_train"], 64, generator(0, "batches")))


def test_variants_see_identical_batches(monkeypatch):
    """Every variant with one seed sees the same images in the same order (paired comparisons)."""
    import bnablate.train.loop as loop

    seen = {}

    def spy(variant):
        original = loop.F.cross_entropy

        def record(out, y, *a, **kw):
            if kw.get("reduction") != "sum":  # training calls only, not evaluation
                seen.setdefault(variant, []).append(y.clone())
            return original(out, y, *a, **kw)
        return record

    for variant in ("no_bn", "bn_pre_act", "dropout_bn", "ln_pre_act"):
        monkeypatch.setattr(loop.F, "cross_entropy", spy(variant))
        run_experiment(compose_config(FAST + [f"variant={variant}", "seed=1"]))
        monkeypatch.undo()
    ref = seen["no_bn"]
    for variant, labels in seen.items():
        assert len(labels) == len(ref) and all(torch.equal(a, b) for a, b in zip(labels, ref)), variant


def test_trailing_single_sample_batch_is_folded():
    chunks = batch_indices(33, 16, generator(0, "b"))
    assert [len(c) for c in chunks] == [16, 17]
    assert sorted(torch.cat(chunks).tolist()) == list(range(33))
    assert [len(c) for c in batch_indices(34, 16, generator(0, "b"))] == [16, 16, 2]


def test_batch_norm_model_trains_when_last_batch_would_have_one_sample():
    # synthetic has a training split whose size leaves remainder 1 for some batch size: find one and train.
    cfg = compose_config(["dataset=synthetic", "model=mlp", "variant=bn_pre_act", "train.epochs=1"])
    n = run_experiment(cfg)["n_train"]
    bs = next(b for b in range(2, n) if n % b == 1)
    res = run_experiment(compose_config(["dataset=synthetic", "model=mlp", "variant=bn_pre_act", "train.epochs=1",
                                         f"train.batch_size={bs}"]))
    assert res["status"] == "ok"


def test_batch_size_one_with_bn_is_rejected_with_advice():
    with pytest.raises(ConfigError, match="batch_size=1 with batch normalization.*ln_pre_act"):
        run_experiment(compose_config(FAST + ["train.batch_size=1", "variant=bn_pre_act"]))
    # Per-sample norms train at batch 1.
    assert run_experiment(compose_config(FAST + ["train.batch_size=1", "train.epochs=1", "variant=ln_pre_act"]))["status"] == "ok"


def test_batch_larger_than_training_set_is_rejected():
    with pytest.raises(ConfigError, match="larger than the training set"):
        run_experiment(compose_config(FAST + ["train.batch_size=100000"]))


def test_divergence_is_recorded_not_raised():
    res = run_experiment(compose_config(FAST + ["variant=no_bn", "optim=sgd", "optim.lr=1e12", "train.epochs=3"]))
    assert res["status"] == "diverged" and len(res["metrics"]) < 3


def test_eval_uses_running_statistics(monkeypatch):
    """Evaluation runs in eval mode (BN running stats), training in train mode."""
    import bnablate.train.loop as loop

    modes = []
    original = loop.F.cross_entropy

    def record(out, y, *a, **kw):
        modes.append(("eval" if kw.get("reduction") == "sum" else "train", torch.is_grad_enabled()))
        return original(out, y, *a, **kw)
    monkeypatch.setattr(loop.F, "cross_entropy", record)
    run_experiment(compose_config(FAST + ["train.epochs=1"]))
    assert ("train", True) in modes and ("eval", False) in modes and ("eval", True) not in modes


@pytest.mark.parametrize("over,msg", [
    (["train.epochs=0"], "epochs must be ≥ 1"),
    (["optim.lr=0"], "lr must be > 0"),
    (["device=cuda:0"] if not torch.cuda.is_available() else ["device=tpu"], "device"),
])
def test_bad_training_values_rejected(over, msg):
    with pytest.raises(ConfigError, match=msg):
        run_experiment(compose_config(FAST + over))


@pytest.mark.slow
def test_compiled_training_runs_and_learns():
    res = run_experiment(compose_config(["dataset=digits", "model=mlp", "train.epochs=3", "train.compile=true"]))
    assert res["status"] == "ok" and res["metrics"][-1]["test_acc"] > 0.8
