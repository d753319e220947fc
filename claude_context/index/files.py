"""Crash-safe file helpers shared by the index files: write to a temp name, fsync, rename.

Every derived index (vectors, BM25) follows one rule: a file is complete or absent, and a JSON
sidecar written last says what a complete set looks like. A reader that finds anything else
starts empty and the store rebuilds from SQLite.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import zlib
from pathlib import Path
from typing import Any


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform/filesystem
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def crc32_of(path: Path, limit: int | None = None) -> int:
    """CRC32 of the first ``limit`` bytes of a file (all of it when ``limit`` is None)."""
    crc = 0
    left = limit if limit is not None else float("inf")
    with open(path, "rb") as f:
        while left > 0 and (chunk := f.read(int(min(8 << 20, left)))):
            crc = zlib.crc32(chunk, crc)
            left -= len(chunk)
    return crc


def write_replace(path: Path, payload: bytes | None = None, writer: Any = None) -> tuple[int, int]:
    """Write ``payload`` (or call ``writer(tmp)``) to a temp file, fsync, rename; (size, crc32)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        if writer is not None:
            writer(str(tmp))
        else:
            tmp.write_bytes(payload or b"")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        size = tmp.stat().st_size
        crc = crc32_of(tmp, size)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return size, crc


def unlink(path: Path) -> None:
    """Remove a file if it is there (a reader that opened it keeps reading it on POSIX)."""
    with contextlib.suppress(OSError):
        path.unlink()
