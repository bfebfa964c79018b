"""The planner's JobComposer gives every job exactly the config compose_config gives it, composing less."""

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from bnablate.config import compose_config
from bnablate.hydra_adapter import JobComposer, expand_sweep


@pytest.mark.parametrize("overrides", [
    ["sweep=repro_resnet_depth"],  # group choices from the grid (model=resnet) with model.depth per job
    ["sweep=repro_bn_batch_gn"],  # null values, lists as strings
    ["sweep=repro_transformer", "seed=7"],
    ["variant=no_bn,bn_post_act", "model=cnn", "model.channels=[8,16]", "optim=sgd", "optim.lr=0.1,0.2",
     "+report.note=x", "dataset.classes=[0,1]"],
])
def test_every_job_equals_its_own_compose(overrides):
    jobs, _ = expand_sweep(overrides)
    composer = JobComposer()
    for job in jobs:
        ours, hydra = composer(job), compose_config(job)
        assert OmegaConf.to_container(ours, resolve=False) == OmegaConf.to_container(hydra, resolve=False), job
        assert OmegaConf.is_struct(ours) and OmegaConf.get_type(ours.model) is OmegaConf.get_type(hydra.model)
    assert len(composer._bases) < len(jobs)  # some composing was shared


def test_a_bad_value_fails_as_compose_fails():
    with pytest.raises(ConfigCompositionException) as ours:
        JobComposer()(["model=resnet", "model.depht=3"])
    with pytest.raises(ConfigCompositionException) as hydra:
        compose_config(["model=resnet", "model.depht=3"])
    assert str(ours.value) == str(hydra.value)
