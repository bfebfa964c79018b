"""Dataset loaders on fixture files in torchvision's formats; splits, normalization, cache and augmentation."""

import os

import pytest
import torch
from omegaconf import OmegaConf

from bnablate.config import DatasetConfig
from bnablate.data import DataError, augment_batch, dataset_spec, load_data
from bnablate.registry import UnknownNameError

from .fixtures import write_cifar10, write_mnist_like


def cfg(tmp_path, name, **kw):
    kw.setdefault("download", False)
    return OmegaConf.structured(DatasetConfig(name=name, root=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"),
                                              **kw))


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_from_idx_files(tmp_path, name, folder):
    write_mnist_like(tmp_path / "data", folder, n_train=60, n_test=20)
    d = load_data(cfg(tmp_path, name, val_fraction=0.1))
    assert d.train_x.shape == (54, 1, 28, 28) and d.val_x.shape == (6, 1, 28, 28) and d.test_x.shape == (20, 1, 28, 28)
    assert d.train_x.dtype == torch.float32 and d.train_y.dtype == torch.int64
    assert d.num_classes == 10 and d.input_shape == dataset_spec(name).input_shape
    assert abs(float(d.train_x.mean())) < 1e-4 and abs(float(d.train_x.std()) - 1) < 1e-3


def test_cifar10_checksum_mismatch_names_the_fix(tmp_path):
    write_cifar10(tmp_path / "data")
    with pytest.raises(DataError, match="checksum mismatch.*data_batch_1.*dataset.verify=false"):
        load_data(cfg(tmp_path, "cifar10"))
    with pytest.warns(UserWarning, match="checksum verification skipped"):
        d = load_data(cfg(tmp_path, "cifar10", verify=False, val_fraction=0.2))
    assert d.train_x.shape == (40, 3, 32, 32) and d.test_x.shape == (10, 3, 32, 32)
    assert torch.allclose(d.train_x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)  # per-channel normalization
    assert torch.allclose(d.train_x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)


def test_cifar10_pixels_are_nchw_in_rgb_plane_order(tmp_path):
    import pickle

    folder = write_cifar10(tmp_path / "data", per_batch=2, n_test=2)
    with open(folder / "test_batch", "rb") as f:
        row = pickle.load(f)["data"][0]  # 1024 R, then 1024 G, then 1024 B values
    raw = dataset_spec("cifar10").load(cfg(tmp_path, "cifar10", verify=False))
    assert raw.test_x.shape == (2, 3, 32, 32)
    assert raw.test_x[0, 1, 0, 5].item() == row[1024 + 5]  # G channel, row 0, col 5


@pytest.mark.parametrize("name,expected", [("mnist", "MNIST/raw/train-images-idx3-ubyte"),
                                           ("cifar10", "cifar-10-batches-py/data_batch_1")])
def test_absent_files_name_expected_folder_and_fix(tmp_path, name, expected):
    with pytest.raises(DataError, match="BNABLATE_DATA_ROOT") as e:
        load_data(cfg(tmp_path, name))
    assert expected in str(e.value)


def test_offline_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tvm

    def offline(*a, **kw):
        raise OSError("network is unreachable")
    monkeypatch.setattr(tvm, "download_and_extract_archive", offline)
    with pytest.raises(DataError, match="downloading them failed"):
        load_data(cfg(tmp_path, "mnist", download=True))


def test_truncated_idx_file_is_named(tmp_path):
    raw = write_mnist_like(tmp_path / "data")
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated or corrupted") as e:
        load_data(cfg(tmp_path, "mnist"))
    assert f"{path} (1000 bytes where its header promises {16 + 60 * 784})" in str(e.value)
    assert "t10k-images" not in str(e.value)  # only the damaged file is named


def test_truncated_cifar_batch_is_named(tmp_path):
    folder = write_cifar10(tmp_path / "data")
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_3 \\(.*truncated or corrupted") as e, pytest.warns(UserWarning):
        load_data(cfg(tmp_path, "cifar10", verify=False))
    assert "data_batch_2" not in str(e.value)


def test_train_and_val_are_disjoint(tmp_path):
    write_mnist_like(tmp_path / "data", n_train=60)  # random pixels: every image is distinct
    d = load_data(cfg(tmp_path, "mnist", val_fraction=0.25))
    rows = lambda t: {r.numpy().tobytes() for r in t}  # same normalization for both, so equal images ⇔ equal bytes
    assert len(rows(d.train_x) | rows(d.val_x)) == 60 and not rows(d.train_x) & rows(d.val_x)


def test_validation_split_is_fixed_and_disjoint(tmp_path):
    a = load_data(cfg(tmp_path, "digits"))
    b = load_data(cfg(tmp_path, "digits"))
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.test_y, b.test_y)
    c = load_data(cfg(tmp_path, "digits", split_seed=1))
    assert not torch.equal(a.val_x, c.val_x)
    assert len(a.train_x) + len(a.val_x) + len(a.test_x) == 1797
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10


def test_split_sizes_and_subset(tmp_path):
    d = load_data(cfg(tmp_path, "synthetic", test_fraction=0.25, val_fraction=0.1))
    assert len(d.test_x) == 100 and len(d.val_x) == 30 and len(d.train_x) == 270
    assert d.train_x.shape[1:] == (3, 8, 8) and d.num_classes == 4
    s = load_data(cfg(tmp_path, "synthetic", train_subset=50, augment=True, target_acc=0.5))
    full = load_data(cfg(tmp_path, "synthetic"))
    assert len(s.train_x) == 50 and s.augment and not full.augment
    # only split_seed (and the fractions) pick validation/test images: same labels, and same pixels up to the
    # per-channel affine normalization (whose statistics come from the different training sets)
    assert torch.equal(s.val_y, full.val_y) and torch.equal(s.test_y, full.test_y)
    unnorm = lambda d, t: t * torch.tensor(d.std)[:, None, None] + torch.tensor(d.mean)[:, None, None]
    assert torch.allclose(unnorm(s, s.val_x), unnorm(full, full.val_x), atol=1e-4)
    with pytest.raises(DataError, match="train_subset"):
        load_data(cfg(tmp_path, "synthetic", train_subset=10**6))
    with pytest.raises(DataError, match="val_fraction"):
        load_data(cfg(tmp_path, "synthetic", val_fraction=1.5))


def test_test_subset_keeps_the_same_test_images_and_moves_nothing_else(tmp_path):
    full = load_data(cfg(tmp_path, "synthetic"))
    a = load_data(cfg(tmp_path, "synthetic", test_subset=30))
    b = load_data(cfg(tmp_path, "synthetic", test_subset=30, train_subset=50))
    assert len(a.test_x) == 30 and torch.equal(a.test_y, b.test_y)  # the same 30 whatever else is chosen
    rows = {tuple(x.flatten().tolist()) for x in full.test_x}
    assert all(tuple(x.flatten().tolist()) in rows for x in a.test_x)  # a subset of the full test split
    assert torch.equal(a.train_x, full.train_x) and torch.equal(a.val_y, full.val_y)
    with pytest.raises(DataError, match="test_subset"):
        load_data(cfg(tmp_path, "synthetic", test_subset=10**6))
    with pytest.raises(DataError, match="test_fraction"):
        load_data(cfg(tmp_path, "synthetic", test_fraction=0.0))
    with pytest.raises(DataError, match="no training images left"):
        load_data(cfg(tmp_path, "synthetic", test_fraction=0.999, val_fraction=0.9))


def test_synthetic_is_deterministic_and_learnable(tmp_path):
    a = dataset_spec("synthetic").load(None)
    assert torch.equal(a.train_x, dataset_spec("synthetic").load(None).train_x)
    d = load_data(DatasetConfig(name="synthetic", root=str(tmp_path), cache_dir=str(tmp_path / "c")))  # plain dataclass
    # nearest class mean (fit on train) must beat chance (25%) by far on the held-out test split
    centroids = torch.stack([d.train_x[d.train_y == k].mean(0) for k in range(4)]).flatten(1)
    pred = torch.cdist(d.test_x.flatten(1), centroids).argmin(1)
    assert (pred == d.test_y).float().mean() > 0.9


def test_specs_are_static_and_splits_move(tmp_path):
    shapes = {n: (dataset_spec(n).input_shape, dataset_spec(n).num_classes, dataset_spec(n).has_test_split)
              for n in ("digits", "synthetic", "mnist", "fashion_mnist", "cifar10")}  # no files needed
    assert shapes["cifar10"] == ((3, 32, 32), 10, True) and shapes["digits"] == ((1, 8, 8), 10, False)
    assert shapes["synthetic"] == ((3, 8, 8), 4, False) and shapes["fashion_mnist"] == ((1, 28, 28), 10, True)
    d = load_data(cfg(tmp_path, "synthetic")).to("meta")
    assert d.train_x.device.type == "meta" and d.test_y.device.type == "meta" and d.num_classes == 4


def test_cache_is_used_and_invalidated(tmp_path, monkeypatch):
    raw = write_mnist_like(tmp_path / "data")
    first = load_data(cfg(tmp_path, "mnist"))
    assert len(list((tmp_path / "cache").glob("mnist-*.pt"))) == 1
    import torchvision.datasets

    def broken(*a, **kw):
        raise AssertionError("decoded again instead of using the cache")
    monkeypatch.setattr(torchvision.datasets, "MNIST", broken)
    assert torch.equal(load_data(cfg(tmp_path, "mnist")).train_x, first.train_x)
    monkeypatch.undo()
    path = raw / "t10k-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[-1] = (data[-1] + 1) % 10
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))  # a changed file invalidates the entry even with an old mtime (size/mtime key)
    changed = load_data(cfg(tmp_path, "mnist"))
    assert changed.test_y[-1] != first.test_y[-1]


def test_unwritable_cache_only_warns(tmp_path):
    write_mnist_like(tmp_path / "data")
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not cache"):
        d = load_data(cfg(tmp_path, "mnist"))
    assert len(d.train_x) > 0


def test_augment_batch_is_seeded_and_moves_pixels():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    a = augment_batch(x, torch.Generator().manual_seed(0))
    b = augment_batch(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    outs = [augment_batch(x, torch.Generator().manual_seed(s)) for s in range(1, 6)]
    assert any(not torch.equal(o, a) for o in outs)
    assert any(not torch.equal(o, x) for o in outs)


def test_augment_batch_crop_and_flip_geometry():
    x = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8).repeat(64, 1, 1, 1)
    out = augment_batch(x, torch.Generator().manual_seed(3))
    for img in out[:, 0]:
        nz = img[img > 0]
        # every output is a shifted (and maybe mirrored) window of the same image: values come from the source
        assert set(nz.tolist()) <= set(range(64))
    flipped = (out[:, 0, 4, 1:] - out[:, 0, 4, :-1] < 0).any(dim=1) & (out[:, 0, 4] > 0).sum(dim=1).gt(2)
    assert flipped.any() and (~flipped).any()  # some mirrored, some not


def test_unknown_dataset_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'fashion_mnist'"):
        dataset_spec("fashionmnist")


def test_failed_cache_write_leaves_no_temp_file(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "data")

    def disk_full(*a, **kw):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.warns(UserWarning, match="could not cache"):
        assert len(load_data(cfg(tmp_path, "mnist")).train_x) > 0
    assert list((tmp_path / "cache").iterdir()) == []


def test_classes_keep_only_those_relabelled_in_order(tmp_path):
    full = load_data(cfg(tmp_path, "digits"))
    part = load_data(cfg(tmp_path, "digits", classes=[7, 2, 9]))
    assert part.num_classes == 3 and set(part.train_y.tolist()) == set(part.test_y.tolist()) == {0, 1, 2}
    total = sum(int((y == c).sum()) for y in (full.train_y, full.val_y, full.test_y) for c in (7, 2, 9))
    assert len(part.train_x) + len(part.val_x) + len(part.test_x) == total  # every image of those classes, no other
    with pytest.raises(DataError, match="dataset.classes must list at least two distinct class ids"):
        load_data(cfg(tmp_path, "digits", classes=[4]))
    from bnablate.data.splits import _keep_classes

    x, y = _keep_classes(torch.arange(6.0), torch.tensor([2, 7, 3, 9, 7, 2]), [7, 2, 9], 10)
    assert x.tolist() == [0.0, 1.0, 3.0, 4.0, 5.0] and y.tolist() == [1, 0, 2, 0, 1]  # 7 → 0, 2 → 1, 9 → 2
