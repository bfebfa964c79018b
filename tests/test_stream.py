"""The streaming path (dataset.max_memory_mb): an image folder over the budget stays on disk and is decoded batch by
batch through a DataLoader; the runs equal the in-memory ones, record which path they took and the same fingerprint,
and what cannot stream is refused before training."""

import shutil

import pytest
import torch
from typer.testing import CliRunner

import bnablate
from bnablate.cli import app
from bnablate.config import compose_config
from bnablate.data import load_data
from bnablate.data.fake_files import write_image_folder
from bnablate.data.stream import ImageFiles
from bnablate.train import run_experiment, run_packed

NUMBERS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")
STREAM = "dataset.max_memory_mb=0.01"  # 0.01 MiB: a few hundred 12×10 images take ~0.4 MiB as float32


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A fake ImageFolder: 3 classes × 80 training and 20 test PNGs of 12×10 RGB."""
    return write_image_folder(tmp_path_factory.mktemp("imgs"), classes=3, per_class=80, size=(12, 10),
                              test_per_class=20)


def _base(folder, *more):
    return ["dataset=imagefolder", f"dataset.path={folder}", "model=lenet", "variant=bn_pre_act", "train.epochs=2",
            "train.batch_size=32", *more]


def _same(a, b, rel=1e-5):
    """Float tolerance: the streamed statistics come from a float64 pass, the in-memory ones from float32."""
    for x, y in zip(a["metrics"], b["metrics"], strict=True):
        for k in NUMBERS:
            assert x[k] == pytest.approx(y[k], rel=rel, abs=1e-6), k


def test_over_the_budget_the_splits_stay_on_disk(folder):
    cfg = compose_config(_base(folder, STREAM))
    data = load_data(cfg.dataset)
    assert data.path == "stream" and all(isinstance(t, ImageFiles) for t in (data.train_x, data.val_x, data.test_x))
    memory = load_data(compose_config(_base(folder)).dataset)
    assert memory.path == "memory" and data.fingerprint == memory.fingerprint  # the same bytes, hashed alike
    assert len(data.train_x) == len(memory.train_x) and torch.equal(data.train_y, memory.train_y)  # same split
    idx = torch.tensor([5, 0, 17])
    torch.testing.assert_close(data.train_x[idx], memory.train_x[idx], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(data.test_x[2:9], memory.test_x[2:9], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("more", [["dataset.workers=2", "dataset.augment=true"], ["dataset.workers=0"]])
def test_a_streamed_run_equals_the_in_memory_run_and_records_its_path(folder, tmp_path, more):
    memory = bnablate.run(_base(folder, *more), out_dir=tmp_path / "memory")
    streamed = bnablate.run(_base(folder, STREAM, *more), out_dir=tmp_path / "stream")
    _same(streamed, memory)
    assert (memory["data"]["path"], streamed["data"]["path"]) == ("memory", "stream")
    assert streamed["data"]["fingerprint"] == memory["data"]["fingerprint"]
    assert streamed["run_key"] == memory["run_key"]  # an execution choice: the same run, reached another way
    again = bnablate.run(_base(folder, STREAM, *more), out_dir=tmp_path / "stream")
    assert again.get("skipped") and again["run_key"] == streamed["run_key"]  # resume finds it


def test_packed_runs_stream_like_in_memory_packs(folder):
    def train(*more):
        cfgs = [compose_config(_base(folder, "train.epochs=1", *more, f"seed={s}")) for s in (0, 1)]
        return run_packed(cfgs)
    for a, b in zip(train(STREAM), train()):
        _same(a, b)
        assert a["data"]["path"] == "stream"


def test_a_broken_image_is_found_before_training(folder, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    next((broken / "train").rglob("*.png")).write_bytes(b"not a png")
    with pytest.raises(Exception, match="could not be decoded as an image"):
        run_experiment(compose_config(_base(broken, STREAM, "dataset.workers=0")))


def test_a_dataset_that_cannot_stream_is_refused_over_the_budget(tmp_path):
    res = CliRunner().invoke(app, ["run", "dataset=digits", "dataset.max_memory_mb=0.01", f"out_dir={tmp_path}"])
    assert res.exit_code == 2 and "only dataset=imagefolder can stream" in res.output
    assert not any(tmp_path.iterdir())
