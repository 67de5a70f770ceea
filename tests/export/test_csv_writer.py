"""The CSV writer: hostile values survive a round trip through the csv module; formulas are neutralised."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from plugins.export.csv_writer import cell, write_csv
from plugins.export.types import Meta, NoControl

META = Meta("t", "u", "now")


class Counting:
    """Records the progress a writer reports."""

    def __init__(self) -> None:
        self.reports: list[int] = []

    def progress(self, records: int) -> None:
        self.reports.append(records)


def export_csv(records, columns, **options) -> tuple[list[list[str]], bytes, object]:
    out = io.BytesIO()
    stats = write_csv(records, columns, META, out, options, NoControl())
    data = out.getvalue()
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""))), data, stats


HOSTILE = [
    {"text": 'he said "hi", then left', "n": 1},
    {"text": "line one\nline two\r\nline three", "n": -2},
    {"text": "comma, semicolon; tab\tinside", "n": 3.25},
    {"text": "Türkçe ğüşıöç İ — Ελληνικά — Кириллица — 日本語 — 🙂", "n": 0},
    {"text": None, "n": None},
    {"text": {"nested": [1, "two", None]}, "n": [1, 2]},
    {"text": "", "n": 10**20},
]


def test_hostile_values_round_trip():
    rows, data, stats = export_csv(HOSTILE, ["text", "n"])
    assert rows[0] == ["text", "n"]
    assert [row[0] for row in rows[1:]] == [
        'he said "hi", then left', "line one\nline two\r\nline three", "comma, semicolon; tab\tinside",
        "Türkçe ğüşıöç İ — Ελληνικά — Кириллица — 日本語 — 🙂", "", '{"nested":[1,"two",null]}', "",
    ]
    assert [row[1] for row in rows[1:]] == ["1", "-2", "3.25", "0", "", "[1,2]", str(10**20)]
    assert stats.records == len(HOSTILE)
    assert data.endswith(b"\r\n") and data.count(b"\r\n") >= len(HOSTILE) + 1


def test_formulas_are_neutralised_but_numbers_are_not():
    values = ["=SUM(A1:A9)", "+1+2", "-cmd|' /C calc'!A0", "@SUM(1)", "\tTAB", "\rCR", "-5", "+3.5", "-1e3",
              "safe", -7, -0.5]
    rows, _, _ = export_csv([{"v": v} for v in values], ["v"])
    assert [row[0] for row in rows[1:]] == [
        "'=SUM(A1:A9)", "'+1+2", "'-cmd|' /C calc'!A0", "'@SUM(1)", "'\tTAB", "'\rCR", "-5", "+3.5", "-1e3",
        "safe", "-7", "-0.5",
    ]


def test_neutralising_can_be_turned_off():
    rows, _, _ = export_csv([{"v": "=1+1"}], ["v"], neutralise_formulas=False)
    assert rows[1] == ["=1+1"]


def test_dates_booleans_and_missing_keys():
    moment = dt.datetime(2026, 12, 3, 15, 4, 5, tzinfo=dt.UTC)
    rows, _, _ = export_csv([{"at": moment, "day": dt.date(2026, 1, 2), "ok": True}, {"ok": False}],
                            ["at", "day", "ok"])
    assert rows[1] == ["2026-12-03T15:04:05+00:00", "2026-01-02", "true"]
    assert rows[2] == ["", "", "false"]


def test_chunks_are_written_with_progress_and_bytes_are_counted():
    records = ({"i": i, "s": f"row-{i}"} for i in range(2_500))  # a generator: never held whole
    out = io.BytesIO()
    control = Counting()
    stats = write_csv(records, ["i", "s"], META, out, {"chunk_rows": 1000}, control)
    assert control.reports == [1000, 2000, 2500]
    assert stats.records == 2500
    rows = list(csv.reader(io.StringIO(out.getvalue().decode())))
    assert len(rows) == 2501 and rows[-1] == ["2499", "row-2499"]


def test_empty_export_has_the_header():
    rows, _, stats = export_csv([], ["a", "b"])
    assert rows == [["a", "b"]] and stats.records == 0


def test_cell_matches_the_chunk_path_for_mixed_columns():
    mixed = [{"v": v} for v in ("=x", 1, None, True, {"a": 1}, "ok", "-2")]
    rows, _, _ = export_csv(mixed, ["v"])
    expected = ["" if cell(r["v"]) is None else str(cell(r["v"])) for r in mixed]
    assert [row[0] for row in rows[1:]] == expected
    assert json.loads(rows[5][0]) == {"a": 1}
