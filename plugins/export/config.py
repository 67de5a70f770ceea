"""The ``[plugins.export]`` schema and the typed settings object built from it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host import Field, non_negative, positive

from .sql import check_sources

MIB = 1024 * 1024

DEJAVU_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
)

SCHEMA: dict[str, Any] = {
    "dir": Field(str, "./exports", "where export files are written"),
    "max_concurrent": Field(int, 5, "exports rendering at once", check=positive),
    "max_queue": Field(int, 100, "exports waiting for a slot (FIFO); past it: 429", check=non_negative),
    "queue_timeout_s": Field(float, 30.0, "how long POST /export/run waits for a slot before answering 202",
                             check=non_negative),
    "max_body_bytes": Field(int, 64 * MIB, "largest JSON body of POST /export/run", check=positive),
    "chunk_rows": Field(int, 1000, "rows written per chunk", check=positive),
    "drain_grace_s": Field(float, 30.0, "at shutdown, how long running exports may finish (queued ones stay "
                                        "queued for the next start)", check=non_negative),
    "limits": {
        "max_records": Field(int, 10_000_000, "records one export may have (inline or NDJSON)", check=positive),
        "max_columns": Field(int, 1000, "columns (and keys of one record) an export may have", check=positive),
        "max_cell_chars": Field(int, 32_767, "characters of one text cell (a spreadsheet's own limit)",
                                check=positive),
        "max_depth": Field(int, 16, "nesting depth of a value inside a record", check=positive),
    },
    "workers": Field(str, "process", "where rendering runs: a pool of processes or of threads",
                     choices=("process", "thread")),
    "ttl_hours": Field(float, 24.0, "export files older than this are deleted (0: never)", check=non_negative),
    "max_total_bytes": Field(int, 10 * 1024 * MIB, "oldest export files are deleted past this total (0: no cap)",
                             check=non_negative),
    "sources": Field(dict, {}, "named SQL data sources: [plugins.export.sources.NAME] kind, path, query, params",
                     check=lambda sources: check_sources(sources)),
    "csv": {
        "neutralise_formulas": Field(bool, True, "prefix text cells a spreadsheet would run as a formula with '"),
    },
    "pdf": {
        "records_per_page": Field(int, 50, "table rows per PDF page", check=positive),
        "font": Field(str, "", "TTF font path; empty: DejaVu Sans from the system, else reportlab's Vera",
                      check=lambda path: None if not path or os.path.isfile(path) else "no such font file"),
        "max_pages_per_volume": Field(int, 500, "pages per PDF volume; more pages make a zip of volumes",
                                      check=positive),
    },
    "metrics": {
        "max_user_labels": Field(int, 50, "distinct user label values; later users count as 'other'",
                                 check=non_negative),
        "success_window": Field(int, 100, "finished exports export_success_rate is computed over",
                                check=positive),
    },
}


def default_font() -> str:
    """DejaVu Sans when the system has it, else reportlab's bundled Vera."""
    for candidate in DEJAVU_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    import reportlab

    return str(Path(reportlab.__file__).parent / "fonts" / "Vera.ttf")


@dataclass(frozen=True)
class ExportSettings:
    """Validated ``[plugins.export]`` values, with paths resolved."""

    dir: Path
    max_concurrent: int
    max_queue: int
    queue_timeout_s: float
    max_body_bytes: int
    chunk_rows: int
    workers: str
    ttl_hours: float
    max_total_bytes: int
    neutralise_formulas: bool
    records_per_page: int
    font: str
    max_pages_per_volume: int
    max_user_labels: int
    success_window: int
    sources: dict[str, Any]
    limits: dict[str, int]
    drain_grace_s: float

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ExportSettings:
        return cls(
            dir=Path(config["dir"]).resolve(),
            max_concurrent=config["max_concurrent"],
            max_queue=config["max_queue"],
            queue_timeout_s=config["queue_timeout_s"],
            max_body_bytes=config["max_body_bytes"],
            chunk_rows=config["chunk_rows"],
            workers=config["workers"],
            ttl_hours=config["ttl_hours"],
            max_total_bytes=config["max_total_bytes"],
            neutralise_formulas=config["csv"]["neutralise_formulas"],
            records_per_page=config["pdf"]["records_per_page"],
            font=config["pdf"]["font"] or default_font(),
            max_pages_per_volume=config["pdf"]["max_pages_per_volume"],
            max_user_labels=config["metrics"]["max_user_labels"],
            success_window=config["metrics"]["success_window"],
            sources=config["sources"],
            limits=dict(config["limits"]),
            drain_grace_s=config["drain_grace_s"],
        )

    def render_options(self) -> dict[str, Any]:
        """What a writer needs, as plain data a worker process can receive."""
        return {
            "chunk_rows": self.chunk_rows,
            "neutralise_formulas": self.neutralise_formulas,
            "records_per_page": self.records_per_page,
            "font": self.font,
            "max_pages_per_volume": self.max_pages_per_volume,
        }
