"""The user's own data: dataset=arrays (.npz) and dataset=imagefolder, their shapes read from the files, and the data
fingerprint every record keeps (a changed file is never silently skipped on resume; a report mixing two warns)."""

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.config import compose_config
from bnablate.data import DataError, dataset_shape, load_data
from bnablate.data.fake_files import write_image_folder, write_npz
from bnablate.reports import make_report

SWEEP = ["sweep", "model=mlp", "train.epochs=1", "train.batch_size=16", "variant=no_bn,bn_pre_act", "seed=range(2)"]


def _data(*overrides):
    return compose_config(list(overrides)).dataset


def test_arrays_shape_is_read_from_the_headers_in_either_layout(tmp_path):
    nhwc = write_npz(tmp_path / "nhwc.npz", shape=(8, 6, 3), classes=4)
    assert dataset_shape(_data("dataset=arrays", f"dataset.path={nhwc}")) == ((3, 8, 6), 4)
    nchw = write_npz(tmp_path / "nchw.npz", shape=(1, 9, 7), classes=3)
    assert dataset_shape(_data("dataset=arrays", f"dataset.path={nchw}")) == ((1, 9, 7), 3)
    gray = write_npz(tmp_path / "gray.npz", shape=(5, 5), classes=2)
    assert dataset_shape(_data("dataset=arrays", f"dataset.path={gray}")) == ((1, 5, 5), 2)
    assert dataset_shape(_data("dataset=arrays", f"dataset.path={gray}", "dataset.num_classes=7")) == ((1, 5, 5), 7)


def test_arrays_load_in_nchw_with_their_own_validation_split(tmp_path):
    path = write_npz(tmp_path / "d.npz", n_train=90, n_test=30, n_val=15, shape=(6, 6, 3))
    data = load_data(_data("dataset=arrays", f"dataset.path={path}"))
    assert data.train_x.shape == (90, 3, 6, 6) and len(data.val_x) == 15 and len(data.test_x) == 30
    raw = np.load(path)
    # the given split is the validation set, unshuffled: its first image, standardized, is x_val[0] in NCHW
    expected = (raw["x_val"][0].transpose(2, 0, 1) - np.array(data.mean)[:, None, None]) / np.array(data.std)[:, None, None]
    assert np.allclose(data.val_x[0].numpy(), expected, atol=1e-4)
    assert data.val_y.tolist() == raw["y_val"].tolist()


def test_fingerprint_follows_the_bytes_not_the_name(tmp_path):
    a = write_npz(tmp_path / "a.npz", seed=0)
    b = write_npz(tmp_path / "b.npz", seed=0)
    c = write_npz(tmp_path / "c.npz", seed=1)
    prints = [load_data(_data("dataset=arrays", f"dataset.path={p}")).fingerprint for p in (a, b, c)]
    assert prints[0] == prints[1] != prints[2] and len(prints[0]) == 16
    assert load_data(_data("dataset=digits")).fingerprint == load_data(_data("dataset=digits")).fingerprint


def test_imagefolder_with_train_and_test_folders(tmp_path):
    root = write_image_folder(tmp_path / "imgs", classes=3, per_class=10, size=(12, 10), test_per_class=4)
    cfg = _data("dataset=imagefolder", f"dataset.path={root}")
    assert dataset_shape(cfg) == ((3, 12, 10), 3)
    data = load_data(cfg)
    assert data.test_x.shape == (12, 3, 12, 10) and len(data.train_x) + len(data.val_x) == 30
    small = load_data(_data("dataset=imagefolder", f"dataset.path={root}", "dataset.image_size=8", "dataset.channels=1"))
    assert small.train_x.shape[1:] == (1, 8, 8)


def test_imagefolder_single_folder_carves_a_test_split(tmp_path):
    root = write_image_folder(tmp_path / "flat", classes=2, per_class=20, test_per_class=0, mode="L")
    data = load_data(_data("dataset=imagefolder", f"dataset.path={root}", "dataset.test_fraction=0.25"))
    assert data.input_shape == (1, 12, 10) and len(data.test_x) == 10


def test_imagefolder_of_mixed_sizes_needs_image_size(tmp_path):
    root = write_image_folder(tmp_path / "mixed", classes=2, per_class=4, size=(12, 10), test_per_class=0)
    write_image_folder(tmp_path / "other", classes=2, per_class=1, size=(9, 9), test_per_class=0, seed=1)
    (tmp_path / "other" / "c0" / "0.png").rename(root / "c0" / "zz.png")
    with pytest.raises(DataError, match="dataset.image_size=N"):
        load_data(_data("dataset=imagefolder", f"dataset.path={root}"))
    assert load_data(_data("dataset=imagefolder", f"dataset.path={root}", "dataset.image_size=9")).input_shape == (3, 9, 9)


def test_sweep_on_arrays_records_fingerprint_and_refuses_changed_data(tmp_path):
    path = write_npz(tmp_path / "mine.npz")
    args = [*SWEEP, "dataset=arrays", f"dataset.path={path}", "out_dir=runs/mine"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rec = json.loads(next((tmp_path / "runs/mine/records").glob("*.json")).read_text())
    assert len(rec["data"]["fingerprint"]) == 16 and len(rec["data"]["mean"]) == 3
    assert "data_fingerprint" in (tmp_path / "runs/mine/runs.csv").read_text().splitlines()[0]
    assert "4 already finished" in CliRunner().invoke(app, [*args, "--dry-run"]).output

    write_npz(path, seed=5)  # the same name, other images: resuming must not skip (nor overwrite) the old runs
    before = sorted(p.name for p in (tmp_path / "runs/mine/records").glob("*.json"))
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code == 2 and "the data changed since these runs finished" in res.output, res.output
    assert "new out_dir" in " ".join(res.output.split())
    assert sorted(p.name for p in (tmp_path / "runs/mine/records").glob("*.json")) == before


@pytest.mark.slow  # the one-folder case stays fast
def test_report_warns_when_one_dataset_name_saw_different_data(tmp_path):
    path = write_npz(tmp_path / "mine.npz")
    for i, out in enumerate(("runs/a", "runs/b")):
        write_npz(path, seed=i)
        res = CliRunner().invoke(app, [*SWEEP, "dataset=arrays", f"dataset.path={path}", f"out_dir={out}"])
        assert res.exit_code == 0, res.output
    report, _ = make_report([tmp_path / "runs/a", tmp_path / "runs/b"], formats=["csv"])
    assert any("4 run key(s) appear in several folders with different data" in n for n in report.notes), report.notes
    alone, _ = make_report([tmp_path / "runs/a"], formats=["csv"])
    assert not any("different data" in n for n in alone.notes)


def test_report_warns_when_one_folder_mixes_two_versions_of_the_data(tmp_path):
    path = write_npz(tmp_path / "mine.npz")
    args = [*SWEEP, "dataset=arrays", f"dataset.path={path}", "out_dir=runs/a"]
    assert CliRunner().invoke(app, [*args, "seed=0"]).exit_code == 0
    write_npz(path, seed=3)  # a new seed later, on regenerated files: no finished run is skipped, so no refusal
    assert CliRunner().invoke(app, [*args, "seed=1"]).exit_code == 0
    report, _ = make_report([tmp_path / "runs/a"], formats=["csv"])
    assert any("the runs of dataset arrays saw different data (2 run(s) on" in n for n in report.notes), report.notes


def _with_bad_values(path, key, where, values):
    """path's arrays with `values` written at the indices `where` of `key`, which is stored as float32."""
    arrays = dict(np.load(path))
    x = arrays[key].astype(np.float32)
    for index, value in zip(where, values):
        x[index] = value
    np.savez(path, **{**arrays, key: x})
    return path


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_arrays_with_a_non_finite_value_are_refused_naming_the_first(tmp_path, value):
    """A NaN or infinite pixel would make every run diverge (reported as the variant's instability): refused when
    the data loads, before training, with the array and the index of the first such value."""
    path = _with_bad_values(write_npz(tmp_path / "d.npz", shape=(6, 6, 3)), "x_train", [(7, 4, 0, 2), (3, 1, 2, 0)],
                            [1.0, value])
    with pytest.raises(DataError) as err:
        load_data(_data("dataset=arrays", f"dataset.path={path}"))
    message = str(err.value)
    assert f"x_train[3, 1, 2, 0] is {value}, the first of 1 non-finite value(s) in x_train (image 3)" in message
    assert str(path) in message and "np.isfinite(x_train)" in message
    test = _with_bad_values(write_npz(tmp_path / "t.npz", shape=(6, 6, 3)), "x_test", [(9, 0, 0, 0), (2, 5, 5, 1)],
                            [value, value])
    with pytest.raises(DataError, match=r"x_test\[2, 5, 5, 1\] is .*the first of 2 non-finite"):
        load_data(_data("dataset=arrays", f"dataset.path={test}"))
    fine = _with_bad_values(write_npz(tmp_path / "f.npz", shape=(6, 6, 3)), "x_train", [(0, 0, 0, 0)], [0.5])
    assert load_data(_data("dataset=arrays", f"dataset.path={fine}")).train_x.dtype == torch.float32


@pytest.mark.parametrize("where", ["first", "later", "test"])
@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_a_broken_image_anywhere_is_refused_naming_its_file(tmp_path, where, damage):
    """The first training image is read for the folder's shape (its header), the others when the data loads: a
    broken one anywhere is a DataError naming it, never Pillow's traceback."""
    root = write_image_folder(tmp_path / "imgs", classes=2, per_class=3, test_per_class=2)
    files = {"first": sorted((root / "train" / "c0").glob("*.png"))[0],
             "later": sorted((root / "train" / "c1").glob("*.png"))[-1],
             "test": sorted((root / "test" / "c1").glob("*.png"))[0]}
    bad = files[where]
    data = bad.read_bytes()
    bad.write_bytes(b"" if damage == "empty" else data[:len(data) // 2])
    cfg = _data("dataset=imagefolder", f"dataset.path={root}")
    with pytest.raises(DataError, match=f"{re.escape(str(bad))} could not be decoded as an image .*Fix: delete or "
                                        "replace it"):
        dataset_shape(cfg)
        load_data(cfg)
