"""The PDF writer, read back with poppler: page counts, Unicode text, headers, ellipses, volumes in a zip."""

from __future__ import annotations

import math
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from plugins.export.config import default_font
from plugins.export.files import AtomicOutput
from plugins.export.pdf_writer import write_pdf
from plugins.export.types import Meta, NoControl
from tests.export.conftest import require_tool

UNICODE = "Çağrı Öztürk İğdır — Ωμέγα — Привет — café naïve"


def render(tmp_path: Path, records, columns, *, per_page=50, max_pages=500, title="Rapor Ünicode", user="ayşe"):
    output = AtomicOutput(tmp_path, "report")
    options = {"records_per_page": per_page, "max_pages_per_volume": max_pages, "font": default_font(),
               "stem": "report", "work_dir": str(tmp_path)}
    with output as out:
        stats = write_pdf(records, columns, Meta(title, user, "2026-12-03T10:00:00Z", len(records)), out, options,
                          NoControl())
        path = output.commit(stats.extension)
    return path, stats


def pdf_pages(path: Path) -> int:
    info = subprocess.run([require_tool("pdfinfo"), str(path)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def pdf_text(path: Path, first: int | None = None, last: int | None = None) -> str:
    args = [require_tool("pdftotext"), "-layout"]
    if first:
        args += ["-f", str(first)]
    if last:
        args += ["-l", str(last)]
    return subprocess.run([*args, str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize(("count", "per_page"), [(1, 50), (50, 50), (51, 50), (1234, 50), (100, 7)])
def test_page_count_is_records_over_per_page(tmp_path, count, per_page):
    records = [{"id": i, "name": f"n{i}"} for i in range(count)]
    path, stats = render(tmp_path, records, ["id", "name"], per_page=per_page)
    assert pdf_pages(path) == stats.pages == math.ceil(count / per_page)
    assert stats.volumes == 1 and path.suffix == ".pdf"


def test_first_page_has_title_generated_at_user_and_count_and_every_page_a_header(tmp_path):
    records = [{"id": i, "name": UNICODE, "amount": -i * 1.5} for i in range(120)]
    path, _ = render(tmp_path, records, ["id", "name", "amount"])
    first = pdf_text(path, 1, 1)
    assert "Rapor Ünicode" in first
    assert "Generated at: 2026-12-03T10:00:00Z" in first
    assert "User: ayşe" in first
    assert "Records: 120" in first
    for page in (1, 2, 3):
        text = pdf_text(path, page, page)
        assert re.search(r"id\s+name\s+amount", text), f"no header row on page {page}"
        assert f"Page {page} of 3" in text


def test_unicode_text_reads_back(tmp_path):
    path, _ = render(tmp_path, [{"text": "Çağrı İğdır"}, {"text": "Ωμέγα"}, {"text": "Привет"},
                                {"text": "café naïve"}], ["text"])
    text = pdf_text(path)
    for word in ("Çağrı İğdır", "Ωμέγα", "Привет", "café naïve"):
        assert word in text


def test_long_cells_are_cut_with_an_ellipsis(tmp_path):
    long = "abcdefghij" * 30
    path, _ = render(tmp_path, [{"a": long, "b": "short", "c": 1, "d": 2}], ["a", "b", "c", "d"])
    text = pdf_text(path)
    assert "…" in text and long not in text
    assert "short" in text


def test_volumes_past_max_pages_come_as_a_zip_holding_every_record(tmp_path):
    records = [{"id": f"R{i:05d}", "v": i} for i in range(1, 1235)]
    path, stats = render(tmp_path, records, ["id", "v"], per_page=50, max_pages=10)
    assert path.suffix == ".zip" and stats.volumes == 3 and stats.pages == 25
    seen: list[str] = []
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names == ["report-vol001.pdf", "report-vol002.pdf", "report-vol003.pdf"]
        for index, name in enumerate(names):
            volume = tmp_path / name
            volume.write_bytes(archive.read(name))
            assert pdf_pages(volume) == [10, 10, 5][index]
            text = pdf_text(volume)
            assert f"Volume {index + 1} of 3" in text
            seen += re.findall(r"R\d{5}", text)
    assert seen == [f"R{i:05d}" for i in range(1, 1235)]
    assert [p["last_record"] for p in stats.parts] == [500, 1000, 1234]
