"""The user's own data: `dataset=arrays` (an .npz of arrays) and `dataset=imagefolder` (torchvision's ImageFolder
layout), decoded into the same in-memory uint8/float tensors the built-in datasets give — or, for an image folder
larger than dataset.max_memory_mb, kept on disk and decoded batch by batch (`stream`, data/stream.py). Shapes and
class counts are read from the files' headers (`shape`), so every job of a sweep is checked without decoding every
image."""

from __future__ import annotations

import contextlib
import functools
import os
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from .registry import DataError, RawData, register_dataset

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")  # required; x_val/y_val optional (see _arrays_shape)
LAYOUTS = ("auto", "NCHW", "NHWC")
Shape = Tuple[Tuple[int, int, int], int]


def _path(cfg, what: str) -> Path:
    if cfg.path is None:
        raise DataError(f"dataset={cfg.name} needs dataset.path: {what}.")
    path = Path(os.path.expanduser(str(cfg.path))).absolute()
    if not path.exists():
        raise DataError(f"dataset.path={cfg.path}: no such file or folder ({path}). Fix: point dataset.path at {what}.")
    return path


# --- arrays ------------------------------------------------------------------------------------------------------

NPZ_HINT = ("an .npz written by np.savez(FILE, x_train=..., y_train=..., x_test=..., y_test=...) (optional x_val, "
            "y_val); images (N, C, H, W) or (N, H, W, C) or (N, H, W), or features (N, D); labels (N,) integers "
            "0..classes-1")


def _npz_headers(path: Path) -> Dict[str, Tuple[Tuple[int, ...], np.dtype]]:
    """Each array's (shape, dtype) from its .npy header inside the zip, without reading the data."""
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith(".npy"):
                    with z.open(name) as f:
                        version = np.lib.format.read_magic(f)
                        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                else np.lib.format.read_array_header_2_0)
                        shape, _fortran, dtype = read(f)
                        out[name[:-4]] = (tuple(shape), dtype)
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise DataError(f"dataset.path={path} is not a readable .npz ({type(e).__name__}: {e}). Fix: write "
                        f"{NPZ_HINT}.") from None
    return out


def _chw(shape: Tuple[int, ...], layout: str, key: str, path: Path) -> Tuple[int, int, int]:
    """(C, H, W) of one image from an (N, ...) array shape under dataset.layout."""
    rest = shape[1:]
    if len(rest) == 1:  # features: one 1×D "image", for the mlp
        return 1, 1, rest[0]
    if len(rest) == 2:  # (N, H, W): one channel
        return 1, rest[0], rest[1]
    if len(rest) != 3:
        raise DataError(f"{path}: {key} has shape {shape}; expected (N, C, H, W), (N, H, W, C), (N, H, W) or (N, D).")
    if layout == "NCHW" or (layout == "auto" and rest[0] in (1, 3, 4) and rest[2] not in (1, 3, 4)):
        return rest[0], rest[1], rest[2]
    if layout == "NHWC" or (layout == "auto" and rest[2] in (1, 3, 4) and rest[0] not in (1, 3, 4)):
        return rest[2], rest[0], rest[1]
    raise DataError(f"{path}: cannot tell whether {key} {shape} is NCHW or NHWC. Fix: set dataset.layout=NCHW or "
                    f"dataset.layout=NHWC.")


@functools.lru_cache(maxsize=32)
def _arrays_shape(path: Path, mtime_ns: int, layout: str, declared: Optional[int]) -> Shape:
    """Cached per file version: validate_config asks once per job of a sweep."""
    heads = _npz_headers(path)
    missing = [k for k in ARRAY_KEYS if k not in heads]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)} (it holds {', '.join(sorted(heads)) or 'no arrays'}). "
                        f"Fix: write {NPZ_HINT}.")
    if ("x_val" in heads) != ("y_val" in heads):
        raise DataError(f"{path} holds only one of x_val and y_val: write both, or neither (a validation split is then "
                        f"carved from the training set with dataset.val_fraction).")
    splits = ["train", "test"] + (["val"] if "x_val" in heads else [])
    for split in splits:
        (xs, _), (ys, _) = heads[f"x_{split}"], heads[f"y_{split}"]
        if len(ys) != 1 or not xs or xs[0] != ys[0]:
            raise DataError(f"{path}: x_{split} {xs} and y_{split} {ys} do not match: expected y_{split} of shape "
                            f"({xs[0] if xs else 'N'},), one integer label per image.")
    shapes = {s: _chw(heads[f"x_{s}"][0], layout, f"x_{s}", path) for s in splits}
    if len(set(shapes.values())) > 1:
        raise DataError(f"{path}: the splits' images differ in shape ({shapes}); every split needs the same (C, H, W).")
    with np.load(path) as z:  # labels only (small); the images are read when a run loads the data
        labels = np.concatenate([np.asarray(z[f"y_{s}"]).ravel() for s in splits])
    if not np.issubdtype(labels.dtype, np.integer) and not np.all(np.mod(labels, 1) == 0):
        raise DataError(f"{path}: the labels are not integers ({labels.dtype}). Fix: store class ids 0..classes-1.")
    low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, -1)
    classes = int(declared) if declared is not None else high + 1
    if low < 0 or high >= classes:
        raise DataError(f"{path}: labels run from {low} to {high}, outside 0..{classes - 1}"
                        + (f" (dataset.num_classes={declared})" if declared is not None else "")
                        + ". Fix: relabel the classes 0..K-1" + (", or raise dataset.num_classes." if declared else "."))
    if classes < 2:
        raise DataError(f"{path}: every label is {high}; a classifier needs at least two classes.")
    return shapes["train"], classes


def _layout(cfg) -> str:
    layout = str(cfg.layout)
    if layout not in LAYOUTS:
        raise DataError(f"dataset.layout={layout} is not one of {', '.join(LAYOUTS)}: use dataset.layout=NHWC for "
                        f"(N, H, W, C) images, NCHW for (N, C, H, W), or auto.")
    return layout


def arrays_shape(cfg) -> Shape:
    path = _path(cfg, NPZ_HINT)
    declared = None if cfg.num_classes is None else int(cfg.num_classes)
    return _arrays_shape(path, path.stat().st_mtime_ns, _layout(cfg), declared)


def _check_finite(x: np.ndarray, key: str, path: Path) -> None:
    """A DataError naming the first NaN or infinite value of a float array by its index: such a pixel makes every run
    that sees it diverge, which a report would count against the variant (a data error, not a property of it)."""
    if not np.issubdtype(x.dtype, np.inexact):
        return  # integer pixels are always finite
    bad = ~np.isfinite(x)
    if bad.any():
        index = np.unravel_index(int(np.argmax(bad)), x.shape)  # the first, in the array's own (C) order
        raise DataError(f"{path}: {key}[{', '.join(map(str, index))}] is {x[index]}, the first of {int(bad.sum())} "
                        f"non-finite value(s) in {key} (image {index[0]}); a NaN or infinite pixel makes every run "
                        f"that sees it diverge. Fix: repair or drop those images (np.isfinite({key}) finds them) and "
                        f"write the .npz again.")


def _images(x: np.ndarray, chw: Tuple[int, int, int]) -> torch.Tensor:
    """(N, C, H, W) uint8 or float32 tensor from an array of any accepted layout."""
    n = x.shape[0]
    if x.ndim == 4 and x.shape[1:] != chw:  # NHWC
        x = x.transpose(0, 3, 1, 2)
    x = np.ascontiguousarray(x.reshape(n, *chw))
    return torch.from_numpy(x if x.dtype == np.uint8 else x.astype(np.float32))


@register_dataset("arrays", "your own arrays: dataset.path=FILE.npz (x_train, y_train, x_test, y_test; optional x_val, "
                  "y_val)", (1, 1, 1), 2, has_test_split=True, shape=arrays_shape)
def arrays(cfg) -> RawData:
    chw, _classes = arrays_shape(cfg)
    path = _path(cfg, NPZ_HINT)
    with np.load(path) as z:
        def split(name: str):
            x = np.asarray(z[f"x_{name}"])
            _check_finite(x, f"x_{name}", path)
            return _images(x, chw), torch.from_numpy(np.asarray(z[f"y_{name}"]).astype(np.int64))
        train_x, train_y = split("train")
        test_x, test_y = split("test")
        val = split("val") if "x_val" in z.files else (None, None)
    return RawData(train_x, train_y, test_x, test_y, *val)


# --- imagefolder -------------------------------------------------------------------------------------------------

FOLDER_HINT = ("a folder in torchvision's ImageFolder layout: PATH/train/<class>/*.png and PATH/test/<class>/*.png, "
               "or PATH/<class>/*.png (a test split is then carved with dataset.test_fraction)")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@contextlib.contextmanager
def _readable(file: str) -> Iterator[None]:
    """What Pillow raises for a file it cannot read — OSError (UnidentifiedImageError, truncated data), SyntaxError
    (a broken PNG chunk), DecompressionBombError (over Image.MAX_IMAGE_PIXELS) — as one DataError naming the file."""
    from PIL import Image

    try:
        yield
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{file} could not be decoded as an image ({e}). Fix: delete or replace it.") from None


def _class_dirs(folder: Path) -> List[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _folders(cfg) -> Tuple[Path, Optional[Path]]:
    """(training folder, test folder or None) under dataset.path."""
    root = _path(cfg, FOLDER_HINT)
    if not root.is_dir():
        raise DataError(f"dataset.path={cfg.path} is a file; dataset=imagefolder reads {FOLDER_HINT}.")
    train = root / "train" if (root / "train").is_dir() else root
    test = root / "test" if train != root and (root / "test").is_dir() else None
    return train, test


def _samples(folder: Path, classes: List[str]) -> List[Tuple[str, int]]:
    """(file, class index) of every image under folder/<class>/, by torchvision's ImageFolder rules (its extensions,
    classes sorted by name) but indexed by the training folder's classes."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    own = _class_dirs(folder)
    extra = sorted(set(own) - set(classes))
    if extra:
        raise DataError(f"{folder} has class folder(s) {', '.join(extra)} that the training folder lacks; every test "
                        f"class must also be a training class.")
    index = {c: i for i, c in enumerate(classes)}
    try:
        return make_dataset(str(folder), {c: index[c] for c in own}, IMG_EXTENSIONS, allow_empty=True)
    except (FileNotFoundError, OSError) as e:
        raise DataError(f"{folder}: {e}. Fix: use {FOLDER_HINT}.") from None


@functools.lru_cache(maxsize=32)
def _folder_shape(train: Path, mtime_ns: int, image_size: Optional[int], channels: Optional[int]) -> Shape:
    from PIL import Image

    classes = _class_dirs(train)
    samples = _samples(train, classes) if classes else []
    if len(classes) < 2 or not samples:
        raise DataError(f"{train} holds {len(classes)} class folder(s) and {len(samples)} image(s); a classifier needs "
                        f"at least two class folders of images. Fix: use {FOLDER_HINT}.")
    with _readable(samples[0][0]), Image.open(samples[0][0]) as first:  # the header only: PIL decodes lazily
        width, height = first.size  # (the other images are checked as they are decoded, when the data loads)
        mode = first.mode
    c = int(channels) if channels is not None else (1 if mode in GRAY_MODES else 3)
    size = (int(image_size), int(image_size)) if image_size is not None else (height, width)
    return (c, *size), len(classes)


def imagefolder_shape(cfg) -> Shape:
    train, _test = _folders(cfg)
    if cfg.channels is not None and int(cfg.channels) not in (1, 3):
        raise DataError(f"dataset.channels={cfg.channels}: images are read as 1 (grayscale) or 3 (RGB) channels.")
    if cfg.image_size is not None and int(cfg.image_size) < 1:
        raise DataError(f"dataset.image_size={cfg.image_size} must be a positive number of pixels.")
    return _folder_shape(train, train.stat().st_mtime_ns, cfg.image_size, cfg.channels)


def decode_image(file: str, chw: Tuple[int, int, int], resize: bool, folder: str) -> torch.Tensor:
    """One image as (C, H, W) uint8: decoded by Pillow (torchvision's own ImageFolder loader; torchvision.io's
    decoders are deprecated since 0.29) in the declared channels and, with dataset.image_size, resized by torchvision
    (antialiased bilinear) to it. Module-level, so the streaming path's DataLoader workers can take it."""
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor, resize as resize_image

    with _readable(file), Image.open(file) as pil:
        img = pil_to_tensor(pil.convert("L" if chw[0] == 1 else "RGB"))  # (C, H, W) uint8
    if resize:
        return resize_image(img, list(chw[1:]), antialias=True)
    if tuple(img.shape[1:]) != tuple(chw[1:]):
        raise DataError(f"{folder}: images differ in size ({file} is {tuple(img.shape[1:])}, the first one "
                        f"{tuple(chw[1:])}). Fix: set dataset.image_size=N to resize every image to N×N.")
    return img


def _decode(samples: List[Tuple[str, int]], chw: Tuple[int, int, int], resize: bool, folder: Path):
    """(N, C, H, W) uint8 images and (N,) labels, each image by decode_image."""
    images = [decode_image(file, chw, resize, str(folder)) for file, _label in samples]
    labels = torch.tensor([label for _file, label in samples], dtype=torch.long)
    return torch.stack(images), labels


def _files(samples: List[Tuple[str, int]], chw: Tuple[int, int, int], resize: bool, folder: Path, workers: int):
    """The streaming path's (ImageFiles, labels): nothing decoded yet (data/stream.py)."""
    from .stream import ImageFiles

    decode = functools.partial(decode_image, chw=chw, resize=resize, folder=str(folder))
    labels = torch.tensor([label for _file, label in samples], dtype=torch.long)
    return ImageFiles([file for file, _label in samples], chw, decode, workers), labels


def _imagefolder_splits(cfg, read) -> RawData:
    """RawData of the folders under dataset.path, each split made by read(samples, chw, resize, folder)."""
    chw, _classes = imagefolder_shape(cfg)
    train, test = _folders(cfg)
    classes = _class_dirs(train)
    resize = cfg.image_size is not None
    train_x, train_y = read(_samples(train, classes), chw, resize, train)
    if test is None:
        return RawData(train_x, train_y)  # load_data carves the test split (dataset.test_fraction, split_seed)
    samples = _samples(test, classes)
    if not samples:
        raise DataError(f"{test} holds no images. Fix: put the test images under {test}/<class>/, or remove the "
                        f"empty folder so a test split is carved from the training images.")
    test_x, test_y = read(samples, chw, resize, test)
    return RawData(train_x, train_y, test_x, test_y)


def imagefolder_files(cfg) -> RawData:
    """The streaming form of dataset=imagefolder: the same files, labels and order, decoded when a batch asks."""
    return _imagefolder_splits(cfg, lambda *args: _files(*args, workers=int(cfg.workers)))


@register_dataset("imagefolder", "your own images: dataset.path=FOLDER in torchvision's ImageFolder layout "
                  "(train/<class>/*, test/<class>/*, or <class>/*)", (3, 32, 32), 2, has_test_split=True,
                  shape=imagefolder_shape, stream=imagefolder_files)
def imagefolder(cfg) -> RawData:
    return _imagefolder_splits(cfg, _decode)
