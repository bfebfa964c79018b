"""dataset=torchvision dataset.name=...: torchvision's own classes read fake files in their formats; checksums are
checked where torchvision keeps them (dataset.verify=false skips them on purpose); missing files name where to put them."""

import pytest
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.config import compose_config
from bnablate.data import DataError, dataset_shape, load_data, load_raw
from bnablate.data.fake_files import write_cifar100, write_emnist, write_mnist_like, write_svhn


def _data(name, *overrides):
    return compose_config(["dataset=torchvision", f"dataset.name={name}", "dataset.root=data", *overrides]).dataset


def test_cifar100_checksums_are_checked_unless_verify_is_false(tmp_path):
    write_cifar100(tmp_path / "data", n_train=40, n_test=20)
    with pytest.raises(DataError, match="checksum mismatch.*dataset.verify=false"):
        load_raw(_data("cifar100"))
    with pytest.warns(UserWarning, match="checksum verification skipped"):
        raw = load_raw(_data("cifar100", "dataset.verify=false"))
    assert raw.train_x.shape == (40, 3, 32, 32) and raw.train_x.dtype.is_floating_point is False
    assert raw.train_y.max() == 39 and dataset_shape(_data("cifar100")) == ((3, 32, 32), 100)


def test_svhn_gives_nchw_images_and_digit_zero_as_label_zero(tmp_path):
    write_svhn(tmp_path / "data", n_train=30, n_test=10)
    with pytest.warns(UserWarning):
        raw = load_raw(_data("svhn", "dataset.verify=false"))
    assert raw.train_x.shape == (30, 3, 32, 32) and raw.test_x.shape == (10, 3, 32, 32)
    assert sorted(set(raw.train_y.tolist())) == list(range(10))  # SVHN's label 10 is the digit 0


def test_kmnist_and_emnist_splits(tmp_path):
    write_mnist_like(tmp_path / "data", "KMNIST", n_train=50, n_test=10)
    data = load_data(_data("kmnist"))
    assert data.input_shape == (1, 28, 28) and len(data.test_x) == 10
    write_emnist(tmp_path / "data", "letters")
    assert dataset_shape(_data("emnist", "dataset.split=letters")) == ((1, 28, 28), 27)
    assert dataset_shape(_data("emnist")) == ((1, 28, 28), 47)  # balanced by default
    raw = load_raw(_data("emnist", "dataset.split=letters"))
    assert raw.train_y.min() == 1 and raw.train_y.max() == 26  # torchvision's letters: 1..26 (0 is 'N/A')


def test_a_torchvision_dataset_trains_end_to_end(tmp_path):
    write_mnist_like(tmp_path / "data", "KMNIST", n_train=80, n_test=20)
    res = CliRunner().invoke(app, ["run", "dataset=torchvision", "dataset.name=kmnist", "dataset.root=data",
                                   "model=mlp", "train.epochs=1", "out_dir=runs/k"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "runs/k/runs.csv").read_text().count("kmnist") == 1
