"""Export@Scale: records to CSV and PDF files at scale, as an executor plugin.

Published in the ``executor.plugins`` entry point group as ``export``; also found as the module path
``plugins.export`` from a checkout. Other plugins add formats and data sources through the hooks in
:mod:`plugins.export.hookspecs`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from host import hookimpl, on_drain

__version__ = "0.1.0"
host_version = ">=0.1,<1"

from . import (
    hookspecs,  # noqa: E402 - after __version__, which routes reads
    openapi,  # noqa: E402, F401 - adds GET /export/openapi.json to the routes
    stream,  # noqa: E402, F401 - adds POST /export/stream to the routes
)
from .config import SCHEMA, ExportSettings  # noqa: E402
from .csv_writer import write_csv  # noqa: E402
from .metrics import ExportMetrics  # noqa: E402
from .pdf_writer import write_pdf  # noqa: E402
from .routes import EXPORT_REGISTRY, SERVICE, routes  # noqa: E402
from .service import ExportService  # noqa: E402
from .sources import SYNTHETIC  # noqa: E402
from .sql import sql_sources  # noqa: E402
from .types import DataSource, ExportFormat  # noqa: E402

METRICS = web.AppKey("export_metrics", ExportMetrics)

CSV = ExportFormat("csv", write_csv, "RFC 4180 CSV, UTF-8, streamed in chunks")
PDF = ExportFormat("pdf", write_pdf, "paginated PDF; a zip of PDF volumes past max_pages_per_volume")


@hookimpl
def register_hookspecs() -> Any:
    return hookspecs


@hookimpl
def config_schema() -> dict[str, Any]:
    return SCHEMA


@hookimpl
def export_register_formats() -> list[ExportFormat]:
    return [CSV, PDF]


@hookimpl
def export_register_sources() -> list[DataSource]:
    return [SYNTHETIC]


@hookimpl
def register_metrics(registry: CollectorRegistry, config: dict[str, Any], app: web.Application) -> None:
    app[EXPORT_REGISTRY] = registry
    app[METRICS] = ExportMetrics(registry, max_user_labels=config["metrics"]["max_user_labels"],
                                 success_window=config["metrics"]["success_window"])


@hookimpl
def register_routes() -> web.RouteTableDef:
    return routes


def _collect(results: list[list[Any]], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for items in results:
        for item in items or []:
            if item.name in found:
                raise ValueError(f"two plugins register the export {kind} {item.name!r}")
            found[item.name] = item
    return found


@hookimpl
def register_lifespan(app: web.Application, config: dict[str, Any], hook: Any) -> Any:
    settings = ExportSettings.from_config(config)
    formats = _collect(hook.export_register_formats(), "format")
    sources = _collect([*hook.export_register_sources(), sql_sources(settings.sources)], "source")
    service = ExportService(settings, app[METRICS], formats, sources)
    app[SERVICE] = service
    on_drain(app, service.drain)
    return service.running()
