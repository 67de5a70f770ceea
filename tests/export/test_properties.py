"""Property-based tests: any records survive the CSV round trip; any body either parses or is a clean 400."""

from __future__ import annotations

import csv
import io
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plugins.export as export
from plugins.export.config import default_font
from plugins.export.csv_writer import _NUMBER, FORMULA_START, cell, write_csv
from plugins.export.payload import BadRequest, Limits, parse_export_request
from plugins.export.pdf_writer import write_pdf
from plugins.export.types import Meta, NoControl

COLUMNS = ["a", "b", "c"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    st.text())
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                    max_leaves=8)
RECORDS = st.lists(st.dictionaries(st.sampled_from(COLUMNS), JSON, max_size=3), max_size=40)
META = Meta("t", "u", "now")


@settings(max_examples=150, deadline=None)
@given(records=RECORDS, chunk_rows=st.integers(1, 7), neutralise=st.booleans())
def test_csv_round_trip_of_any_records(records, chunk_rows, neutralise):
    out = io.BytesIO()
    stats = write_csv(records, COLUMNS, META, out, {"chunk_rows": chunk_rows, "neutralise_formulas": neutralise},
                      NoControl())
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8"), newline="")))
    assert stats.records == len(records) and rows[0] == COLUMNS and len(rows) == len(records) + 1
    for record, row in zip(records, rows[1:], strict=True):
        for column, text in zip(COLUMNS, row, strict=True):
            value = record.get(column)
            want = "" if cell(value, neutralise) is None else str(cell(value, neutralise))
            if isinstance(value, float):
                assert math.isclose(float(text), value) or text == want
            else:
                assert text == want
            if neutralise and isinstance(value, str) and value[:1] in FORMULA_START and not _NUMBER.fullmatch(value):
                assert text == "'" + value, f"formula left as it is: {text!r}"


FORMATS = {"csv": export.CSV, "pdf": export.PDF}
SOURCES = {"synthetic": export.SYNTHETIC}


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(JSON, st.dictionaries(st.sampled_from(["format", "data", "columns", "title", "user",
                                                            "source", "params", "other"]), JSON, max_size=6)))
def test_any_body_parses_or_is_a_clean_400(body):
    try:
        request = parse_export_request(body, FORMATS, SOURCES, Limits(max_depth=4))
    except BadRequest as exc:
        assert exc.status == 400 and exc.code and exc.message
    else:
        assert request.format.name in FORMATS
        assert request.records is not None or request.source is not None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(st.dictionaries(st.sampled_from(COLUMNS), SCALARS, max_size=3), max_size=30),
       per_page=st.integers(1, 9))
def test_pdf_of_any_records_has_every_page(tmp_path_factory, records, per_page):
    work = tmp_path_factory.mktemp("pdf")
    out = io.BytesIO()
    stats = write_pdf(records, COLUMNS, Meta("T", "u", "now", len(records)), out,
                      {"records_per_page": per_page, "max_pages_per_volume": 2, "font": default_font(),
                       "stem": "p", "work_dir": str(work)}, NoControl())
    assert stats.records == len(records)
    assert stats.pages == max(1, math.ceil(len(records) / per_page))
    assert out.getvalue()[:4] in (b"%PDF", b"PK\x03\x04")
