"""Hooks the export plugin adds for other plugins: export formats and data sources."""

from __future__ import annotations

from host import hookspec

from .types import DataSource, ExportFormat


@hookspec
def export_register_formats() -> list[ExportFormat]:  # type: ignore[empty-body]
    """Return export formats (``ExportFormat(name, write)``); csv and pdf come through this same hook."""


@hookspec
def export_register_sources() -> list[DataSource]:  # type: ignore[empty-body]
    """Return named data sources (``DataSource(name, check_params, open)``) clients may export from."""
