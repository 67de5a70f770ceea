"""Paginated PDF through the reportlab canvas, in volumes so that memory stays bounded.

A reportlab canvas keeps every page until ``save()``, about 20 KiB a page, so a volume is saved every
``max_pages_per_volume`` pages. One volume is delivered as a PDF; more are delivered together as a zip
(stored, not recompressed) whose entries are the volumes in order. Every volume's first page carries the
title, generated-at, user and record count; every page the table header and its page number.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from .csv_writer import cell
from .types import Control, Meta, Record, WriteStats

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 36.0
ELLIPSIS = "…"
CELL_PAD = 2.0


def register_font(path: str) -> str:
    """Register the TTF at ``path`` once per process; its reportlab name."""
    name = "ExportFont-" + Path(path).stem
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, path))
    return name


def text_of(value: Any) -> str:
    """A value as the text shown in a cell (same conversions as CSV, without formula neutralising)."""
    converted = cell(value, neutralise=False)
    return "" if converted is None else str(converted)


@dataclass
class Layout:
    font: str
    size: float
    row_height: float
    column_width: float
    columns: list[str]
    records_per_page: int
    safe_chars: int

    @classmethod
    def build(cls, font: str, columns: list[str], records_per_page: int) -> Layout:
        usable = PAGE_HEIGHT - 2 * MARGIN - 90  # room for the title block and footer
        row_height = min(12.0, usable / (records_per_page + 1))
        size = round(row_height * 0.65, 2)
        column_width = (PAGE_WIDTH - 2 * MARGIN) / max(1, len(columns))
        widest = max(pdfmetrics.stringWidth(ch, font, size) for ch in "MW@%mw_#")
        safe = int((column_width - 2 * CELL_PAD) // widest) if widest else 0
        return cls(font, size, row_height, column_width, columns, records_per_page, max(0, safe))

    def fit(self, text: str) -> str:
        """``text`` cut to its column with an ellipsis."""
        if len(text) <= self.safe_chars and text.isascii():
            return text
        room = self.column_width - 2 * CELL_PAD
        if pdfmetrics.stringWidth(text, self.font, self.size) <= room:
            return text
        low, high = 0, len(text)
        while low < high:  # the longest prefix that fits with the ellipsis
            middle = (low + high + 1) // 2
            if pdfmetrics.stringWidth(text[:middle] + ELLIPSIS, self.font, self.size) <= room:
                low = middle
            else:
                high = middle - 1
        return text[:low] + ELLIPSIS


class VolumeRenderer:
    """Draws pages of one volume onto one canvas."""

    def __init__(self, path: str, layout: Layout, meta: Meta, volume: int, first_page: int,
                 total_pages: int | None) -> None:
        self.layout = layout
        self.meta = meta
        self.volume = volume
        self.page_number = first_page
        self.total_pages = total_pages
        self.canvas = canvas.Canvas(path, pagesize=A4, pageCompression=0, invariant=0)
        self.canvas.setTitle(meta.title)
        self.canvas.setAuthor(meta.user)
        self.pages = 0

    def _title_block(self, top: float, volume_note: str) -> float:
        c, layout = self.canvas, self.layout
        c.setFont(layout.font, 16)
        c.drawString(MARGIN, top - 16, self.meta.title)
        c.setFont(layout.font, 9)
        lines = [
            f"Generated at: {self.meta.generated_at}",
            f"User: {self.meta.user}",
            f"Records: {self.meta.total if self.meta.total is not None else 'see the last page'}",
        ]
        if volume_note:
            lines.append(volume_note)
        y = top - 32
        for line in lines:
            c.drawString(MARGIN, y, line)
            y -= 12
        return y - 6

    def page(self, rows: list[list[str]], volume_note: str, first_of_volume: bool, closing_note: str) -> None:
        c, layout = self.canvas, self.layout
        top = PAGE_HEIGHT - MARGIN
        if first_of_volume:
            top = self._title_block(top, volume_note)
        # header row, on a grey band
        c.setFillGray(0.88)
        c.rect(MARGIN, top - layout.row_height, PAGE_WIDTH - 2 * MARGIN, layout.row_height, stroke=0, fill=1)
        c.setFillGray(0)
        text = c.beginText()
        text.setFont(layout.font, layout.size)
        baseline = top - layout.row_height + (layout.row_height - layout.size) / 2 + 1
        for index, name in enumerate(layout.columns):
            text.setTextOrigin(MARGIN + index * layout.column_width + CELL_PAD, baseline)
            text.textOut(layout.fit(name))
        for row in rows:
            baseline -= layout.row_height
            for index, value in enumerate(row):
                if value:
                    text.setTextOrigin(MARGIN + index * layout.column_width + CELL_PAD, baseline)
                    text.textOut(layout.fit(value))
        c.drawText(text)
        c.setFont(layout.font, 8)
        footer = f"Page {self.page_number}" + (f" of {self.total_pages}" if self.total_pages else "")
        c.drawRightString(PAGE_WIDTH - MARGIN, MARGIN / 2, footer)
        if closing_note:
            c.drawString(MARGIN, MARGIN / 2, closing_note)
        c.showPage()
        self.page_number += 1
        self.pages += 1

    def save(self) -> None:
        self.canvas.save()


def _pages(records: Iterator[Record], columns: list[str], per_page: int) -> Iterator[list[list[str]]]:
    while True:
        chunk = list(islice(records, per_page))
        if not chunk:
            return
        yield [[text_of(record.get(column)) for column in columns] for record in chunk]


def write_pdf(
    records: Iterable[Record],
    columns: list[str],
    meta: Meta,
    out: Any,
    options: Mapping[str, Any],
    control: Control,
) -> WriteStats:
    """Render ``records`` as a PDF (or a zip of PDF volumes) to the binary stream ``out``."""
    per_page = int(options.get("records_per_page", 50))
    max_pages = int(options.get("max_pages_per_volume", 500))
    stem = str(options.get("stem", "export"))
    font = register_font(str(options["font"]))
    layout = Layout.build(font, columns, per_page)
    total_pages = max(1, -(-meta.total // per_page)) if meta.total is not None else None
    total_volumes = -(-total_pages // max_pages) if total_pages is not None else None
    work_dir = Path(tempfile.mkdtemp(prefix=f".{stem}.volumes-", dir=options.get("work_dir")))
    pages = _pages(iter(records), columns, per_page)
    pending = next(pages, [])  # one page ahead, to know which page is the last
    written = 0
    volumes: list[dict[str, Any]] = []
    try:
        while True:
            volume = len(volumes) + 1
            path = work_dir / f"{stem}-vol{volume:03d}.pdf"
            renderer = VolumeRenderer(str(path), layout, meta, volume, written // per_page + 1, total_pages)
            first_record = written + 1
            note = f"Volume {volume} of {total_volumes}" if total_volumes and total_volumes > 1 else ""
            while True:
                rows = pending
                pending = next(pages, [])
                written += len(rows)
                last = not pending
                closing = f"{written} records" if last and meta.total is None else ""
                renderer.page(rows, note, renderer.pages == 0, closing)
                control.progress(written)
                if last or renderer.pages >= max_pages:
                    break
            renderer.save()
            volumes.append({"name": path.name, "path": path, "pages": renderer.pages,
                            "first_record": first_record if written else 0, "last_record": written})
            if last:
                break
        if len(volumes) == 1:
            with open(volumes[0]["path"], "rb") as single:
                shutil.copyfileobj(single, out, 1024 * 1024)
            extension, content_type = "pdf", "application/pdf"
        else:
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                for part in volumes:
                    archive.write(part["path"], part["name"])
            extension, content_type = "zip", "application/zip"
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    parts = [{k: v for k, v in part.items() if k != "path"} for part in volumes] if len(volumes) > 1 else []
    return WriteStats(records=written, extension=extension, content_type=content_type,
                      pages=sum(p["pages"] for p in volumes), volumes=len(volumes), parts=parts)

