"""Reading a GGUF file's header without loading the model: its file type, and whether the file
holds all the tensor data the header describes (a partial download or a cut copy does not).

GGUF layout: magic ``GGUF``, version, tensor count, metadata count, the metadata key/value pairs,
then one record per tensor (name, dimensions, ggml type, offset into the data section), then the
data section, aligned to ``general.alignment`` (default 32) bytes.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

# GGUF metadata value types: fixed sizes of the scalars, and the string and array type ids
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 8


def gguf_file_type(path: Path) -> int | None:
    """``general.file_type`` from a GGUF file's header (None when the header has no such key, or
    is not a GGUF header llama.cpp writes)."""
    try:
        with open(path, "rb") as handle:
            _n_tensors, n_keys = _counts(handle)
            for _ in range(n_keys):
                key, kind = _key(handle)
                if key == b"general.file_type" and kind in (4, 5):
                    return struct.unpack("<i" if kind == 5 else "<I", handle.read(4))[0]
                _skip_value(handle, kind)
    except (OSError, struct.error, KeyError, ValueError):
        return None
    return None


def data_end(path: Path) -> int | None:
    """The smallest size the file must have to hold every tensor's data: the start of the data
    section plus the largest tensor offset (None when the header cannot be read to its end)."""
    try:
        with open(path, "rb") as handle:
            n_tensors, n_keys = _counts(handle)
            alignment = _DEFAULT_ALIGNMENT
            for _ in range(n_keys):
                key, kind = _key(handle)
                if key == b"general.alignment" and kind == 4:
                    (alignment,) = struct.unpack("<I", handle.read(4))
                else:
                    _skip_value(handle, kind)
            last = 0
            for _ in range(n_tensors):
                _read_string(handle)
                (n_dims,) = struct.unpack("<I", handle.read(4))
                if n_dims > _MAX_DIMS:
                    raise ValueError("too many dimensions")
                handle.seek(8 * n_dims + 4, os.SEEK_CUR)  # the dimensions and the ggml type
                (offset,) = struct.unpack("<Q", handle.read(8))
                last = max(last, offset)
            if alignment <= 0:
                raise ValueError("bad alignment")
            if not n_tensors:
                return handle.tell()
            return -(-handle.tell() // alignment) * alignment + last
    except (OSError, struct.error, KeyError, ValueError):
        return None


def _counts(handle: BinaryIO) -> tuple[int, int]:
    """Check the magic and version; return the tensor and metadata counts."""
    magic, version = struct.unpack("<4sI", handle.read(8))
    if magic != b"GGUF" or version < 2:
        raise ValueError("not a GGUF header llama.cpp writes")
    return struct.unpack("<QQ", handle.read(16))


def _key(handle: BinaryIO) -> tuple[bytes, int]:
    """The next metadata key and its value type; the caller reads or skips the value."""
    key = _read_string(handle)
    (kind,) = struct.unpack("<I", handle.read(4))
    return key, kind


def _read_string(handle: BinaryIO) -> bytes:
    (length,) = struct.unpack("<Q", handle.read(8))
    if length > 1 << 16:  # no key or tensor name is this long: not a header llama.cpp wrote
        raise struct.error("string too long")
    return handle.read(length)


def _skip_value(handle: BinaryIO, kind: int) -> None:
    if kind == _STRING:
        (length,) = struct.unpack("<Q", handle.read(8))
        handle.seek(length, os.SEEK_CUR)
    elif kind == _ARRAY:
        item, count = struct.unpack("<IQ", handle.read(12))
        if item in _SCALAR_SIZES:
            handle.seek(_SCALAR_SIZES[item] * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_value(handle, item)
    else:
        handle.seek(_SCALAR_SIZES[kind], os.SEEK_CUR)
