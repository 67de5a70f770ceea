"""Export files: written under a temporary name, hashed while written, fsynced, then renamed.

A reader never sees a partial file under a finished name. Retention deletes by age and by total size.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PART_SUFFIX = ".part"


class HashingWriter:
    """A binary file that counts and sha256-hashes every byte written to it."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        self.bytes += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    def tell(self) -> int:
        return self.bytes

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return bool(self._raw.closed)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicOutput:
    """``with AtomicOutput(dir, stem) as out: out.write(...)``; ``commit(ext)`` publishes the file."""

    def __init__(self, directory: Path, stem: str) -> None:
        self.directory = directory
        self.stem = stem
        self.part_path = directory / f".{stem}{PART_SUFFIX}"
        self.final_path: Path | None = None
        self._raw: Any = None
        self.out: HashingWriter | None = None

    def __enter__(self) -> HashingWriter:
        fd = os.open(self.part_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._raw = os.fdopen(fd, "wb", buffering=1024 * 1024)
        self.out = HashingWriter(self._raw)
        return self.out

    def commit(self, extension: str) -> Path:
        """Flush, fsync and rename to ``stem.extension``; the name is final only after this."""
        assert self._raw is not None
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        self.final_path = self.directory / f"{self.stem}.{extension}"
        os.replace(self.part_path, self.final_path)
        _fsync_dir(self.directory)
        return self.final_path

    def __exit__(self, *exc_info: object) -> None:
        if self._raw is not None and not self._raw.closed:
            self._raw.close()
        if self.final_path is None:
            try:
                self.part_path.unlink()
            except FileNotFoundError:
                pass


def remove_partials(directory: Path, stem: str = "export-*") -> None:
    """Remove what an interrupted export of ``stem`` (every export by default) left: ``.part`` files, volumes."""
    for leftover in [*directory.glob(f".{stem}{PART_SUFFIX}"), *directory.glob(f".{stem}.volumes-*")]:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def prepare_dir(directory: Path) -> None:
    """Create the exports dir (0700) and remove what a crash left behind."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    remove_partials(directory)


@dataclass(frozen=True)
class RetentionReport:
    deleted: list[str]
    freed_bytes: int


def apply_retention(
    directory: Path, ttl_hours: float, max_total_bytes: int, now: float | None = None
) -> RetentionReport:
    """Delete finished export files older than ``ttl_hours``, then the oldest past ``max_total_bytes``."""
    now = time.time() if now is None else now
    files = []
    for path in directory.iterdir():
        if path.name.startswith(".") or not path.is_file():
            continue
        stat = path.stat()
        files.append((stat.st_mtime, stat.st_size, path))
    files.sort()
    deleted: list[str] = []
    freed = 0
    kept_total = sum(size for _, size, _ in files)
    for mtime, size, path in files:
        too_old = ttl_hours > 0 and now - mtime > ttl_hours * 3600
        too_big = max_total_bytes > 0 and kept_total > max_total_bytes
        if too_old or too_big:
            path.unlink(missing_ok=True)
            deleted.append(path.name)
            freed += size
            kept_total -= size
    return RetentionReport(deleted, freed)
