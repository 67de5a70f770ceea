"""A test-only plugin: a ``gated`` source that blocks until the test opens its FIFO, and a ``boom`` format.

Both are module-level functions so the export worker processes can import them by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from host import hookimpl
from plugins.export.types import DataSource, ExportFormat, Meta, SourceRecords, WriteStats

PLUGIN_NAME = "export_test_helpers"
requires = ["export"]


def check_gated(params: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(params.get("gate"), str):
        raise ValueError("'gate' must be the path of a FIFO")
    return {"gate": params["gate"], "records": int(params.get("records", 10))}


def _gated_records(gate: str, records: int) -> Iterator[dict[str, Any]]:
    with open(gate, "rb") as fifo:  # blocks until the test opens the FIFO for writing
        fifo.read()
    for index in range(records):
        yield {"id": index, "name": f"row {index}"}


def open_gated(params: Mapping[str, Any]) -> SourceRecords:
    checked = check_gated(params)
    return SourceRecords(["id", "name"], _gated_records(**checked), checked["records"])


def _crumbling_records(records: int) -> Iterator[dict[str, Any]]:
    for index in range(records):
        yield {"id": index, "name": f"row {index}"}
    raise OSError("the source's disk went away")


def open_crumbling(params: Mapping[str, Any]) -> SourceRecords:
    return SourceRecords(["id", "name"], _crumbling_records(int(params.get("records", 10))), None)


def write_boom(records: Any, columns: list[str], meta: Meta, out: Any, options: Any, control: Any) -> WriteStats:
    out.write(b"partial bytes before the failure\n")
    raise RuntimeError("renderer exploded")


GATED = DataSource("gated", check_gated, open_gated, "blocks until released")
CRUMBLING = DataSource("crumbling", dict, open_crumbling, "fails after `records` records")
BOOM = ExportFormat("boom", write_boom, "always fails")


@hookimpl
def export_register_sources() -> list[DataSource]:
    return [GATED, CRUMBLING]


@hookimpl
def export_register_formats() -> list[ExportFormat]:
    return [BOOM, FULL_DISK]


def make_gate(directory: os.PathLike[str] | str, name: str) -> str:
    path = os.path.join(directory, f"{name}.fifo")
    os.mkfifo(path)
    return path


def release(gate: str) -> None:
    """Open the FIFO for writing and close it: the blocked reader goes on."""
    fd = os.open(gate, os.O_WRONLY)
    os.close(fd)


def write_enospc(records: Any, columns: list[str], meta: Meta, out: Any, options: Any, control: Any) -> WriteStats:
    """A writer whose disk fills up after the first bytes."""
    import errno

    out.write(b"a few bytes before the disk fills\n")
    raise OSError(errno.ENOSPC, "No space left on device")


FULL_DISK = ExportFormat("fulldisk", write_enospc, "fails with ENOSPC")
