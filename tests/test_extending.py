"""docs/extending.md, followed literally: its model (builder, schema, config file) and its partial variant file are
taken from the doc's code blocks, added to a copy of conf/, listed, composed and trained for one step — so the doc
cannot drift from the code. Everything registered here is unregistered again, so other tests and re-runs are
unaffected."""

import contextlib
import dataclasses
import math
import re
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from typer.testing import CliRunner

import bnablate
import bnablate.config
import bnablate.variants
from bnablate.cli import app
from bnablate.config import NON_RESULT_KEYS, Config, VariantConfig, compose_config, to_plain
from bnablate.keys import KeyLists, Role
from bnablate.models import INITS, MODELS, ModelShapeError, build_model
from bnablate.results import run_key

from .fixtures import use_conf_copy

DOC = Path(__file__).parents[1] / "docs" / "extending.md"
ONE_STEP = ["dataset=digits", "dataset.train_subset=64", "train.batch_size=64", "train.epochs=1"]
runner = CliRunner()


def section(title: str) -> str:
    """The text of one '## title' section of the doc."""
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def blocks(text: str, lang: str) -> list:
    """The fenced code blocks of one language, dedented (the model's steps are indented as list items)."""
    out = []
    for m in re.finditer(rf"^( *)```{lang}\n(.*?)^\1```", text, re.S | re.M):
        indent = len(m.group(1))
        out.append("".join(line[indent:] for line in m.group(2).splitlines(keepends=True)))
    return out


MODEL, VARIANT = section("A model"), section("A variant")
BUILDER, SCHEMA = blocks(MODEL, "python")
(MODEL_YAML,) = blocks(MODEL, "yaml")
(VARIANT_YAML,) = blocks(VARIANT, "yaml")
NAME = re.search(r'@register_model\("(\w+)"', BUILDER).group(1)  # "tiny"
SCHEMA_NAME = "base_" + re.search(r'MODEL_SCHEMAS\["(\w+)"\]', SCHEMA).group(1)  # "base_tiny"


def exec_builder() -> None:
    """Step 1: the builder as the doc's module bnablate/models/NAME.py (its relative imports resolve there)."""
    module = types.ModuleType(f"bnablate.models.{NAME}")
    module.__package__ = "bnablate.models"
    sys.modules[module.__name__] = module
    exec(compile(BUILDER, f"{DOC}:builder", "exec"), module.__dict__)


@contextlib.contextmanager
def doc_model(conf: Path):
    """The doc's three model files added (builder registered, schema stored, conf/model/NAME.yaml written), and
    removed again on exit."""
    cs = ConfigStore.instance()
    assert NAME not in MODELS and f"{SCHEMA_NAME}.yaml" not in cs.repo["model"], "left over from an earlier test"
    try:
        exec_builder()
        # Step 2: the schema, declared as in bnablate/config.py (its namespace: dataclass, option, Role, ModelConfig,
        # MODEL_SCHEMAS) and stored by register_configs() with the others.
        namespace = dict(vars(bnablate.config))
        exec(compile(SCHEMA, f"{DOC}:schema", "exec", dont_inherit=True), namespace)
        bnablate.config.register_configs()
        # Step 3: the config file, at the path the doc names.
        path = conf / "model" / f"{NAME}.yaml"
        path.write_text(MODEL_YAML)
        yield namespace["TinyConfig"]
    finally:
        MODELS._entries.pop(NAME, None)
        bnablate.config.MODEL_SCHEMAS.pop(NAME, None)
        cs.repo["model"].pop(f"{SCHEMA_NAME}.yaml", None)
        sys.modules.pop(f"bnablate.models.{NAME}", None)


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """A copy of conf/ to add files to; the variant presets read from it are forgotten afterwards."""
    yield use_conf_copy(tmp_path, monkeypatch)
    bnablate.variants.variant_presets.cache_clear()


@pytest.fixture
def tiny(conf):
    with doc_model(conf) as schema:
        yield schema


def test_the_doc_names_the_places_it_tells_you_to_edit():
    assert "from . import cnn, lenet, mlp" in (Path(bnablate.__file__).parent / "models" / "__init__.py").read_text()
    import inspect

    assert "MODEL_SCHEMAS.items()" in inspect.getsource(bnablate.config.register_configs)
    assert bnablate.config.MODEL_SCHEMAS["mlp"] is bnablate.config.MLPConfig
    assert (NAME, SCHEMA_NAME) == ("tiny", "base_tiny") and f"model={NAME}" in MODEL


def test_the_doc_model_lists_inspects_composes_and_trains(tiny, tmp_path):
    entry = MODELS.entry(NAME)
    listed = runner.invoke(app, ["list", "models"], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert any(NAME in line and entry.description in line for line in listed.output.splitlines()), listed.output
    shown = runner.invoke(app, ["inspect", f"model={NAME}", "dataset=digits"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "conv1.conv" in shown.output and "head" in shown.output and "Linear(in_features=256" in shown.output

    cfg = compose_config([f"model={NAME}"])
    assert OmegaConf.get_type(cfg.model) is tiny  # the stored schema, picked by the file's defaults list
    assert cfg.model.name == NAME and cfg.model.width == 16 and cfg.model.cpu_pack_max_batch == 0
    with pytest.raises(ModelShapeError, match="at least 2×2"):
        MODELS.get(NAME)(cfg.model, cfg.variant, (1, 1, 1), 10, bn=cfg.bn)

    rec = bnablate.run([f"model={NAME}", *ONE_STEP], out_dir=tmp_path / "tiny")
    assert rec["status"] == "ok", rec.get("error")
    (epoch,) = rec["metrics"]
    assert epoch["steps"] >= 1 and math.isfinite(epoch["train_loss"]) and math.isfinite(epoch["val_loss"])
    assert rec["config"]["model"] == {"name": NAME, "cpu_pack_max_batch": 0, "init": "torch", "width": 16}
    assert rec["n_params"] == 16 * 1 * 3 * 3 + 2 * 16 + 16 * 4 * 4 * 10 + 10  # conv (no bias before BN), BN, head

    # model.width is a result option: in the run key, so a run at another width is another run, as the doc's schema
    # declares it.
    assert KeyLists.of(tiny).by_key["width"].role is Role.RESULT
    assert KeyLists.of(Config).by_key["model.width"].role is Role.RESULT
    assert "model.width" not in NON_RESULT_KEYS
    keys = {run_key(to_plain(compose_config([f"model={NAME}", *ONE_STEP, f"model.width={c}"]))) for c in (16, 8)}
    assert rec["run_key"] in keys and len(keys) == 2


def test_the_doc_model_takes_every_init_and_stays_paired(tiny):
    """model.init reaches a plugin's model through ModelConfig: its conv draws He's fan-out normal, its head Xavier's
    bound or timm's std, each from the layer's own keyed stream (another variant, the same conv weights)."""
    def built(init, variant="bn_pre_act"):
        cfg = compose_config([f"model={NAME}", "dataset=digits", f"variant={variant}", f"model.init={init}"])
        return build_model(cfg.model, cfg.variant, (1, 8, 8), 10, seed=0, bn=cfg.bn)

    he, xavier, timm = built("he"), built("xavier"), built("trunc_normal")
    conv = he.conv1.conv.weight.detach()
    assert 0.8 < float(conv.std()) / math.sqrt(2 / (16 * 9)) < 1.2  # fan_out = 16 channels × 3 × 3
    assert float(xavier.head.weight.detach().abs().max()) <= math.sqrt(6 / (256 + 10))
    assert 0.018 < float(timm.head.weight.detach().std()) < 0.022
    for init in INITS:
        assert torch.equal(built(init).conv1.conv.weight, built(init, "no_bn").conv1.conv.weight), init


def test_registering_the_doc_model_twice_fails_and_it_is_gone_afterwards(conf):
    for _ in range(2):  # re-running works: the exit unregisters everything
        with doc_model(conf):
            with pytest.raises(ValueError, match=f"Duplicate model name '{NAME}'"):
                exec_builder()
        assert NAME not in MODELS and f"{SCHEMA_NAME}.yaml" not in ConfigStore.instance().repo["model"]
        assert f"bnablate.models.{NAME}" not in sys.modules


def test_the_doc_variant_lists_composes_and_trains(conf, tmp_path):
    name = "bn_post_tanh"
    (conf / "variant" / f"{name}.yaml").write_text(VARIANT_YAML)
    written = yaml.safe_load(VARIANT_YAML)
    assert written["defaults"] == ["base_variant", "_self_"]
    set_axes = {k: v for k, v in written.items() if k not in ("defaults", "description")}

    # The defaults the doc lists are the schema's.
    listed_defaults = dict(re.findall(r"`(\w+)=([\w.]+)`", VARIANT.split("A partial file")[0]))
    schema = {f.name: f.default for f in dataclasses.fields(VariantConfig) if f.name != "description"}
    assert {k: str(v) for k, v in schema.items()} == listed_defaults

    listed = runner.invoke(app, ["list", "variants"], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if name in line)
    assert written["description"] in row and all(str(v) in row for v in set_axes.values())

    cfg = compose_config([f"variant={name}"])
    for axis, default in schema.items():
        assert cfg.variant[axis] == set_axes.get(axis, default), axis
    assert set_axes and all(set_axes[a] != schema[a] for a in set_axes)  # the file holds only what differs

    rec = bnablate.run(["model=mlp", f"variant={name}", *ONE_STEP], out_dir=tmp_path / "variant")
    assert rec["status"] == "ok", rec.get("error")
    assert rec["variant"] == name  # labelled NAME in the tables' variant column
    (epoch,) = rec["metrics"]
    assert epoch["steps"] >= 1 and math.isfinite(epoch["train_loss"])
