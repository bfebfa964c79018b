"""The papers' recipe keys (issue 48): DyT's α₀, timm's weight-decay exemptions, per-step schedules and milestones."""

import math

import pytest
import torch

from bnablate.config import compose_config
from bnablate.layers.dyt import DyT
from bnablate.models import build_model
from bnablate.pack import packable
from bnablate.train import ConfigError, preflight
from bnablate.train.optim import LRSchedule, build_optimizer, no_decay_names
from bnablate.train.runner import validate_config

VIT = ["dataset=digits", "model=vit", "model.dim=16", "model.heads=2", "model.depth=2", "variant=tf_pre_dyt"]


def _vit(over):
    cfg = compose_config(VIT + over)
    return cfg, build_model(cfg.model, cfg.variant, (1, 8, 8), 10, seed=0, bn=cfg.bn)


@pytest.mark.parametrize("alpha0", [None, 2.0, 0.1])
def test_dyt_starts_at_variant_dyt_alpha0(alpha0):
    _, model = _vit([] if alpha0 is None else [f"variant.dyt_alpha0={alpha0}"])
    alphas = [m.alpha.item() for m in model.modules() if isinstance(m, DyT)]
    assert len(alphas) == 2 * 2 + 1  # two per pre-norm block, one final
    assert alphas == pytest.approx([0.5 if alpha0 is None else alpha0] * len(alphas))


def _lrs(over, epochs, steps):
    """The lr each optimizer step ran at, under LRSchedule as the runner builds it."""
    cfg = compose_config(["optim=sgd", "optim.lr=0.1"] + over).optim
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg, 64)
    seen = []
    schedule = LRSchedule(opt, cfg, epochs, steps, lambda o: (seen.append(o.param_groups[0]["lr"]), o.step()))
    for _ in range(epochs):
        for _ in range(steps):
            schedule.step(opt)
        schedule.end_epoch()
    return seen


def test_cosine_per_step_follows_the_closed_form_and_per_epoch_holds_each_epoch():
    total = 3 * 4
    per_step = _lrs(["optim.schedule=cosine", "optim.schedule_unit=step"], epochs=3, steps=4)
    assert per_step == pytest.approx([0.05 * (1 + math.cos(math.pi * s / total)) for s in range(total)])
    per_epoch = _lrs(["optim.schedule=cosine"], epochs=3, steps=4)
    assert per_epoch == pytest.approx([0.05 * (1 + math.cos(math.pi * e / 3)) for e in range(3) for _ in range(4)])


def test_per_step_cosine_under_the_warm_up():
    seen = _lrs(["optim.schedule=cosine", "optim.schedule_unit=step", "optim.warmup_steps=2"], epochs=1, steps=4)
    cosine = [0.05 * (1 + math.cos(math.pi * s / 4)) for s in range(4)]
    assert seen == pytest.approx([cosine[0] * 0.5, cosine[1] * 1.0, cosine[2], cosine[3]])


def test_milestones_divide_the_lr_at_the_given_steps_or_epochs():
    seen = _lrs(["optim.schedule=multistep", "optim.milestones=[3,5]", "optim.schedule_unit=step"], epochs=2, steps=4)
    assert seen == pytest.approx([0.1] * 3 + [0.01] * 2 + [0.001] * 3)
    seen = _lrs(["optim.schedule=multistep", "optim.milestones=[1]", "optim.gamma=0.5"], epochs=2, steps=2)
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_the_neutral_schedule_unit_keeps_the_earlier_code_path():
    cfg = compose_config(["optim=sgd", "optim.schedule=cosine"]).optim
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg, 64)
    assert LRSchedule(opt, cfg, 2, 5).step is None  # the loop calls opt.step() itself, as before the key


def _decayed_after_one_step(over):
    """Which parameters one AdamW step with zero gradients moved (decoupled decay alone moves a parameter)."""
    cfg, model = _vit(["optim.name=adamw", "optim.lr=0.1", "optim.weight_decay=0.5"] + over)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
        p.data.add_(1.0)  # no parameter at 0, where a decay could not show
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    build_optimizer(model.parameters(), cfg.optim, 64, model=model).step()
    return {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}, model


def test_wd_exclude_timm_exempts_1d_parameters_and_the_tokens():
    moved, model = _decayed_after_one_step(["optim.wd_exclude=timm"])
    names = {n for n, _ in model.named_parameters()}
    exempt = {n for n, p in model.named_parameters() if p.ndim <= 1} | {"tokens.pos", "tokens.cls"}
    assert exempt == no_decay_names(model)
    assert {"blocks.0.0.norm.alpha", "blocks.0.0.norm.weight", "head.bias"} <= exempt
    assert moved == names - exempt and moved  # the conv/linear weights still decay
    moved_all, _ = _decayed_after_one_step([])
    assert moved_all == names  # today's default decays every parameter


def test_wd_exclude_trains_alone():
    cfgs = [compose_config(["model=mlp", "optim.weight_decay=1e-4", "optim.wd_exclude=timm", f"seed={s}"])
            for s in (0, 1)]
    assert "optim.wd_exclude" in packable(cfgs)


@pytest.mark.parametrize("over, says", [
    (["variant.dyt_alpha0=0"], "must be > 0"),
    (["variant=bn_pre_act", "variant.dyt_alpha0=1"], "leave variant.dyt_alpha0=0.5"),
    (["optim.wd_exclude=timm"], "set a decay"),
    (["optim.wd_exclude=all"], "optim.wd_exclude"),
    (["optim.schedule_unit=step"], "choose a schedule"),
    (["optim.schedule=multistep"], "optim.milestones=[32000,48000]"),
    (["optim.milestones=[5]"], "set optim.schedule=multistep"),
    (["optim.schedule=multistep", "optim.milestones=[5,5]"], "must be increasing"),
    (["optim.schedule=multistep", "optim.milestones=[0,5]"], "must be increasing"),
])
def test_bad_recipes_are_refused_before_training(over, says):
    with pytest.raises(ConfigError) as e:
        validate_config(compose_config(VIT + over))
    assert says in str(e.value)


def test_a_milestone_past_the_run_is_refused_with_the_run_s_length():
    over = ["dataset=digits", "model=mlp", "train.epochs=2", "optim.schedule=multistep"]
    with pytest.raises(ConfigError, match="give milestones below 2"):
        preflight(compose_config(over + ["optim.milestones=[1,2]"]))
    with pytest.raises(ConfigError, match="not before the run's end"):
        preflight(compose_config(over + ["optim.milestones=[100000]", "optim.schedule_unit=step"]))
    preflight(compose_config(over + ["optim.milestones=[1]"]))  # within the run: accepted
