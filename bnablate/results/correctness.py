"""A run's per-example test correctness as a record field: N booleans packed into N/8 bytes of base64 text."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, Optional

import numpy as np

FIELD = "test_correct"  # the record's top-level key: {"n": N, "bits": base64 of N bits, little-endian bit order}


def encode_correct(mask) -> Dict[str, Any]:
    """{"n": N, "bits": base64 text} of a 1-D bool mask (N,), a numpy array or a torch tensor on any device: bit i of
    the packed bytes (little-endian bit order, zero padding) is example i, so 10,000 test images take 1,250 bytes
    (1,668 characters of base64)."""
    mask = np.asarray(mask.cpu() if hasattr(mask, "cpu") else mask)  # torch tensors leave the GPU here, once
    if mask.ndim != 1 or mask.dtype != np.bool_:
        raise ValueError(f"a correctness mask is a 1-D bool array, got {mask.ndim}-D {mask.dtype}")
    return {"n": int(mask.size), "bits": base64.b64encode(np.packbits(mask, bitorder="little")).decode("ascii")}


def decode_correct(field: Any) -> np.ndarray:
    """The 1-D bool mask (n,) that encode_correct stored; ValueError saying what is wrong with a malformed field."""
    if not isinstance(field, dict):
        raise ValueError(f"{FIELD} must be an object {{n, bits}}, got a {type(field).__name__}")
    n, bits = field.get("n"), field.get("bits")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{FIELD}.n must be a non-negative integer, got {n!r}")
    if not isinstance(bits, str):
        raise ValueError(f"{FIELD}.bits must be a base64 string, got a {type(bits).__name__}")
    try:
        raw = base64.b64decode(bits, validate=True)
    except (binascii.Error, ValueError):  # bad characters or padding; non-ASCII text is a ValueError
        raise ValueError(f"{FIELD}.bits is not valid base64") from None
    if len(raw) != (n + 7) // 8:
        raise ValueError(f"{FIELD}.bits holds {len(raw)} bytes, but n={n} examples take {(n + 7) // 8}")
    unpacked = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), bitorder="little").astype(bool)  # (8·ceil(n/8),)
    if unpacked[n:].any():
        raise ValueError(f"{FIELD}.bits sets padding bits past its n={n} examples (not written by encode_correct)")
    return unpacked[:n]


def record_correct(rec: Dict[str, Any]) -> Optional[np.ndarray]:
    """The record's test correctness mask (n_test,), or None for a record without one (written before it existed, or a
    failed run); ValueError when the field is malformed."""
    return decode_correct(rec[FIELD]) if FIELD in rec else None


__all__ = ["decode_correct", "encode_correct", "record_correct"]
