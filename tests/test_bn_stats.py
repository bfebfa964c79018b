"""BN at evaluation (running / batch / precise / population), bn.momentum/eps/affine through the norm factory, and
their checks."""

import copy

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.config import compose_config
from bnablate.layers import ScratchBatchNorm, batch_norm_layers, create_norm_layer
from bnablate.models import build_model
from bnablate.seeding import generator
from bnablate.train import ConfigError, batch_indices, evaluate, run_experiment, validate_config
from bnablate.train.bn_stats import precise_bn

FAST = ["dataset=synthetic", "model=mlp", "train.epochs=2", "train.batch_size=32"]


def _stats(model):
    return [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
            for m in batch_norm_layers(model)]


def _trained_bn_mlp(norm="batch", seed=0):
    """A small BN MLP (8 → 16 → BN → ReLU → 4) whose running statistics are not at their initial values."""
    torch.manual_seed(seed)
    bn = nn.BatchNorm1d(16) if norm == "batch" else ScratchBatchNorm(16)
    model = nn.Sequential(nn.Linear(8, 16), bn, nn.ReLU(), nn.Linear(16, 4))
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(32, 8) * 2 + 1)  # train mode: running statistics move away from (0, 1)
    return model


@pytest.mark.parametrize("norm", ["batch", "scratch"])
def test_batch_eval_differs_from_running_and_moves_stats_exactly_as_pytorch(norm):
    model = _trained_bn_mlp(norm)
    x, y = torch.randn(70, 8), torch.randint(0, 4, (70,))
    before = _stats(model)
    running = evaluate(model, x, y, batch_size=32, bn_stats="running")
    assert all(torch.equal(a, b) for old, new in zip(before, _stats(model)) for a, b in zip(old, new))  # untouched
    reference = copy.deepcopy(model)
    batch = evaluate(model, x, y, batch_size=32, bn_stats="batch")
    assert batch["loss"] != running["loss"]  # each batch normalized with its own statistics
    # PyTorch itself, the mistake written out: train() under no_grad over the same batches (32, 32, 6)
    reference.train()
    with torch.no_grad():
        outs = [reference(x[s:s + 32]) for s in range(0, 70, 32)]
    ref_loss = float(sum(nn.functional.cross_entropy(o, y[s:s + 32], reduction="sum")
                         for o, s in zip(outs, range(0, 70, 32)))) / 70
    assert batch["loss"] == [pytest.approx(ref_loss, rel=1e-6)]  # one run: K = 1
    for mine, ref in zip(_stats(model), _stats(reference)):
        assert all(torch.equal(a, b) for a, b in zip(mine, ref))  # bitwise the running stats PyTorch would leave
    bn = batch_norm_layers(model)[0]
    assert int(bn.num_batches_tracked) == int(before[0][2]) + 3 and not torch.equal(bn.running_mean, before[0][0])
    model.eval()
    evaluate(model, x, y, batch_size=32, bn_stats="batch")
    assert not model.training  # the caller's mode comes back


def test_batch_eval_never_meets_a_single_sample_batch():
    model = _trained_bn_mlp()
    x, y = torch.randn(33, 8), torch.randint(0, 4, (33,))
    evaluate(model, x, y, batch_size=16, bn_stats="batch")  # 16 + 17, not 16 + 16 + 1 (which BN would refuse)
    assert int(batch_norm_layers(model)[0].num_batches_tracked) == 5 + 2


def _conv_bn(norm):
    torch.manual_seed(3)
    bn = nn.BatchNorm2d(4) if norm == "batch" else ScratchBatchNorm(4)
    return nn.Sequential(nn.Conv2d(3, 4, 3), bn, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


@pytest.mark.parametrize("norm", ["batch", "scratch"])
def test_precise_bn_equals_hand_computed_population_statistics(norm):
    x = torch.randn(64, 3, 8, 8, dtype=torch.float64) * 2 + 0.5
    model = _conv_bn(norm).double()
    params = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "tracked" not in k}
    with torch.no_grad():
        feats = model[0](x)  # (64, 4, 6, 6): what the BN layer normalizes
    # one batch holding the whole dataset: exactly the population mean and (unbiased) variance
    precise_bn(model, x, batch_size=64, n_batches=1, generator=generator(0, "p"))
    bn = model[1]
    torch.testing.assert_close(bn.running_mean, feats.mean(dim=(0, 2, 3)), rtol=0, atol=1e-12)
    torch.testing.assert_close(bn.running_var, feats.var(dim=(0, 2, 3), unbiased=True), rtol=0, atol=1e-12)
    # four batches of 16 covering the data once: the mean of batch means (= population mean) and of batch variances
    precise_bn(model, x, batch_size=16, n_batches=4, generator=generator(0, "q"))
    batches = batch_indices(64, 16, generator(0, "q"))
    torch.testing.assert_close(bn.running_mean, feats.mean(dim=(0, 2, 3)), rtol=0, atol=1e-12)
    hand_var = torch.stack([feats[i].var(dim=(0, 2, 3), unbiased=True) for i in batches]).mean(0)
    torch.testing.assert_close(bn.running_var, hand_var, rtol=0, atol=1e-12)
    assert int(bn.num_batches_tracked) == 4 and bn.momentum == 0.1 and model.training  # momentum and mode restored
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in params.items())  # weights frozen


def test_population_statistics_are_precise_bn_at_the_optimization_batch_with_ghost_batches_off():
    """bn.eval_stats=population: the equal-weight average over batches of 16 each normalized whole, though training
    normalizes chunks of 4; precise averages those chunks (every one, whatever bn.ghost_stats); both restore the
    layer's ghost settings."""
    from bnablate.layers.ghost_bn import GhostBatchNorm2d

    x = torch.randn(64, 3, 8, 8, dtype=torch.float64) * 2 + 0.5
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), GhostBatchNorm2d(4, ghost=4, ghost_stats="step")).double()
    with torch.no_grad():
        feats = model[0](x)  # (64, 4, 6, 6): what the BN layer normalizes
    bn, batches = model[1], batch_indices(64, 16, generator(0, "q"))

    def hand(groups):
        return torch.stack([feats[i].var(dim=(0, 2, 3), unbiased=True) for i in groups]).mean(0)

    precise_bn(model, x, batch_size=16, n_batches=4, generator=generator(0, "q"), ghost=False)  # population
    torch.testing.assert_close(bn.running_mean, feats.mean(dim=(0, 2, 3)), rtol=0, atol=1e-12)
    torch.testing.assert_close(bn.running_var, hand(batches), rtol=0, atol=1e-12)
    assert int(bn.num_batches_tracked) == 4 and (bn.ghost, bn.ghost_stats) == (4, "step")
    precise_bn(model, x, batch_size=16, n_batches=4, generator=generator(0, "q"))  # precise: the 16 chunks of 4
    torch.testing.assert_close(bn.running_var, hand([c for i in batches for c in i.split(4)]), rtol=0, atol=1e-12)
    assert int(bn.num_batches_tracked) == 16 and (bn.ghost, bn.ghost_stats, bn.momentum) == (4, "step", 0.1)


def test_population_evaluation_trains_the_same_weights_and_is_precise_without_ghost_batches():
    ghost = FAST + ["variant=bn_pre_act", "bn.precise_batches=5", "bn.ghost_batch_size=8"]
    runs = {m: run_experiment(compose_config(ghost + [f"bn.eval_stats={m}"])) for m in ("precise", "population")}
    assert [e["train_loss"] for e in runs["precise"]["metrics"]] == \
        [e["train_loss"] for e in runs["population"]["metrics"]]
    assert runs["precise"]["metrics"][-1]["val_loss"] != runs["population"]["metrics"][-1]["val_loss"]
    whole = [o for o in ghost if not o.startswith("bn.ghost")]
    same = [run_experiment(compose_config(whole + [f"bn.eval_stats={m}"]))["metrics"] for m in ("precise",
                                                                                                "population")]
    assert [e["val_loss"] for e in same[0]] == [e["val_loss"] for e in same[1]]


def test_population_statistics_do_not_pack():
    from bnablate.pack.rules import packable

    cfgs = [compose_config(FAST + ["bn.eval_stats=population", f"seed={s}"]) for s in (0, 1)]
    assert "cumulative average" in packable(cfgs)


def test_precise_nodrop_gives_the_statistics_of_dropout_free_activations():
    """Dropout → BN: PreciseBN with dropout on averages the variance of the dropped-out activations (what training
    saw), precise_nodrop that of the activations BN normalizes at test time (dropout off) — the variance shift."""
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8, dtype=torch.float64) * 2 + 0.5
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.5), nn.BatchNorm2d(4)).double()
    with torch.no_grad():
        feats = model[0](x)  # (64, 4, 6, 6); dropout off = identity
    precise_bn(model, x, batch_size=64, n_batches=1, generator=generator(0, "p"), dropout=False)
    torch.testing.assert_close(model[2].running_mean, feats.mean(dim=(0, 2, 3)), rtol=0, atol=1e-12)
    torch.testing.assert_close(model[2].running_var, feats.var(dim=(0, 2, 3), unbiased=True), rtol=0, atol=1e-12)
    assert model.training and model[1].training  # every mode restored
    precise_bn(model, x, batch_size=64, n_batches=1, generator=generator(0, "p"))  # dropout on, as fvcore does
    shifted = model[2].running_var / feats.var(dim=(0, 2, 3), unbiased=True)
    assert (shifted > 1.2).all()  # inverted dropout at p=0.5 inflates the variance BN learns (≈ 2× for zero mean)


def test_precise_bn_draws_more_passes_when_asked_for_more_batches_than_one_pass_has():
    model = _conv_bn("batch").eval()
    precise_bn(model, torch.randn(20, 3, 8, 8), batch_size=8, n_batches=7, generator=generator(1, "p"))
    assert int(model[1].num_batches_tracked) == 7 and not model.training


def test_eval_modes_train_identically_and_differ_only_in_evaluation():
    """Same weights at every epoch (training never reads the running statistics; dropout's stream is untouched by
    the batch-mode and PreciseBN passes), different evaluation numbers."""
    runs = {m: run_experiment(compose_config(FAST + ["variant=bn_dropout", f"bn.eval_stats={m}",
                                                     "bn.precise_batches=5"]))
            for m in ("running", "batch", "precise", "precise_nodrop")}
    losses = {m: [e["train_loss"] for e in r["metrics"]] for m, r in runs.items()}
    assert losses["running"] == losses["batch"] == losses["precise"] == losses["precise_nodrop"]
    tests = {m: [e["val_loss"] for e in r["metrics"]] for m, r in runs.items()}
    assert len({tuple(v) for v in tests.values()}) == 4


@pytest.mark.parametrize("name,kind,shape", [("batch", "conv", (4, 8, 3, 3)), ("batch", "linear", (4, 8)),
                                             ("scratch", "conv", (4, 8, 3, 3)), ("layer", "conv", (4, 8, 3, 3)),
                                             ("layer", "linear", (4, 8)), ("group", "linear", (4, 8))])
def test_norm_factory_passes_eps_affine_and_momentum(name, kind, shape):
    layer = create_norm_layer(name, 8, kind, groups=2, momentum=None, eps=1e-3, affine=False)
    assert layer.eps == 1e-3 and not list(layer.parameters())  # no γ, β
    if name in ("batch", "scratch"):
        assert layer.momentum is None
    assert layer(torch.randn(*shape)).shape == shape


def test_scratch_bn_without_affine_matches_torch():
    torch.manual_seed(2)
    ref, mine = nn.BatchNorm2d(5, affine=False, eps=1e-3), ScratchBatchNorm(5, affine=False, eps=1e-3)
    for _ in range(3):
        x = torch.randn(6, 5, 4, 4)
        torch.testing.assert_close(mine(x), ref(x), atol=1e-6, rtol=0)
    ref.eval(), mine.eval()
    torch.testing.assert_close(mine(x), ref(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("variant", ["bn_pre_act", "scratch_bn_pre_act", "ln_pre_act", "gn_pre_act"])
def test_bn_section_reaches_every_norm_of_a_model(variant):
    cfg = compose_config(["model=lenet", f"variant={variant}", "bn.momentum=null", "bn.eps=1e-3", "bn.affine=false"])
    model = build_model(cfg.model, cfg.variant, (1, 28, 28), 10, seed=0, bn=cfg.bn)
    norms = [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, ScratchBatchNorm,
                                                           nn.GroupNorm, nn.LayerNorm))]
    assert len(norms) == 4 and all(m.eps == 1e-3 and not list(m.parameters()) for m in norms)
    assert all(m.momentum is None for m in norms if hasattr(m, "momentum"))


def test_cumulative_momentum_trains():
    res = run_experiment(compose_config(FAST + ["variant=bn_pre_act", "bn.momentum=null"]))
    assert res["status"] == "ok" and res["metrics"][-1]["test_acc"] > 0.5


@pytest.mark.parametrize("over,msg", [
    (["bn.eval_stats=runing"], "Unknown bn.eval_stats 'runing'. Did you mean 'running'?"),
    (["bn.precise_batches=0"], "bn.precise_batches must be ≥ 1"),
    (["bn.momentum=1.5"], r"bn.momentum must be in \[0, 1\].*Keras"),
    (["bn.momentum=-0.1"], r"bn.momentum must be in \[0, 1\]"),
    (["bn.eps=0"], "bn.eps must be > 0"),
    (["bn.eval_stats=populaton"], "Did you mean 'population'?"),
    (["bn.ghost_stats=step"], "no ghost batches: set bn.ghost_batch_size"),
    (["bn.ghost_stats=per_step", "bn.ghost_batch_size=8"], "Unknown bn.ghost_stats 'per_step'"),
    (["bn.renorm_avg=sd"], "Unknown bn.renorm_avg 'sd'"),
])
def test_bad_bn_values_are_rejected_before_training(over, msg):
    with pytest.raises(ConfigError, match=msg):
        validate_config(compose_config(FAST + over))


def test_bad_bn_value_is_a_usage_error_on_the_command_line():
    result = CliRunner().invoke(app, ["run", "dataset=synthetic", "model=mlp", "bn.eps=-1"])
    assert result.exit_code == 2 and "bn.eps must be > 0" in result.output


def test_list_bn_documents_the_modes_and_the_keras_momentum_convention():
    result = CliRunner().invoke(app, ["list", "bn"])
    assert result.exit_code == 0, result.output
    for text in ("running", "batch", "precise", "population", "freeze_affine", "reset", "0.99", "0.01"):
        assert text in result.output
