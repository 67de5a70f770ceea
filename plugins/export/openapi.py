"""The OpenAPI 3.1 document of the export API, served at ``GET /export/openapi.json``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .routes import routes

ERROR_OBJECT: dict[str, Any] = {"type": "object", "required": ["code", "message"],
                                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "success": {"type": "boolean", "const": False},
        "error": ERROR_OBJECT,
    },
}
EXPORT_REQUEST = {
    "type": "object",
    "properties": {
        "format": {"type": "string", "default": "csv", "examples": ["csv", "pdf"]},
        "data": {"type": "array", "items": {"type": "object"}},
        "source": {"type": "string", "examples": ["synthetic"]},
        "params": {"type": "object"},
        "columns": {"type": "array", "items": {"type": "string"}},
        "title": {"type": "string", "default": "Export Report"},
        "user": {"type": "string", "default": "anonymous"},
    },
}
STATUS_SCHEMA: dict[str, Any] = {"type": "string",
                                 "enum": ["queued", "running", "succeeded", "failed", "cancelled", "expired"]}
JOB: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "status": STATUS_SCHEMA,
        "format": {"type": "string"}, "title": {"type": "string"}, "user": {"type": "string"},
        "source": {"type": ["string", "null"]},
        "progress": {"type": "object", "properties": {"records_written": {"type": "integer"},
                                                      "records_total": {"type": ["integer", "null"]}}},
        "bytes": {"type": "integer"}, "sha256": {"type": ["string", "null"]},
        "filename": {"type": ["string", "null"]}, "content_type": {"type": ["string", "null"]},
        "pages": {"type": ["integer", "null"]}, "volumes": {"type": ["integer", "null"]},
        "parts": {"type": "array", "items": {"type": "object"}},
        "attempts": {"type": "integer"},
        "error": {"oneOf": [{"type": "null"}, ERROR_OBJECT]},
        "created_at": {"type": "string"}, "started_at": {"type": ["string", "null"]},
        "finished_at": {"type": ["string", "null"]}, "url": {"type": "string"},
        "download": {"type": ["string", "null"]},
    },
}
NDJSON_QUERY = [
    {"name": "format", "in": "query", "schema": {"type": "string"}},
    {"name": "columns", "in": "query", "schema": {"type": "string"}, "description": "comma-separated"},
    {"name": "title", "in": "query", "schema": {"type": "string"}},
    {"name": "user", "in": "query", "schema": {"type": "string"}},
]
EXPORT_BODY = {"required": True, "content": {
    "application/json": {"schema": EXPORT_REQUEST},
    "application/x-ndjson": {"schema": {"type": "string"}, "description": "one JSON object a line"},
}}
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "error", "content": {"application/json": {"schema": ERROR}}} for s in statuses}


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Export@Scale", "version": version,
                 "description": "Records to CSV and PDF files at scale. See docs/export.md."},
        "paths": {
            "/export/run": {"post": {
                "summary": "Export and wait",
                "parameters": NDJSON_QUERY,
                "requestBody": EXPORT_BODY,
                "responses": {"200": {"description": "the export's result"},
                              "202": {"description": "queued past queue_timeout_s; poll the job"},
                              **_errors(400, 409, 413, 415, 429, 500, 503, 507)},
            }},
            "/export/jobs": {
                "post": {"summary": "Accept an export as a job", "parameters": NDJSON_QUERY,
                         "requestBody": EXPORT_BODY,
                         "responses": {"202": {"description": "the job",
                                               "content": {"application/json": {"schema": JOB}}},
                                       **_errors(400, 413, 415, 429, 503, 507)}},
                "get": {"summary": "Jobs, newest first",
                        "parameters": [
                            {"name": "status", "in": "query", "schema": STATUS_SCHEMA},
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                        "maximum": 1000}},
                            {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
                        "responses": {"200": {"description": "a page of jobs and next_cursor"}, **_errors(400)}},
            },
            "/export/jobs/{job_id}": {
                "get": {"summary": "One job", "parameters": [JOB_ID],
                        "responses": {"200": {"description": "the job",
                                              "content": {"application/json": {"schema": JOB}}},
                                      **_errors(404)}},
                "delete": {"summary": "Cancel a queued or running job, or delete a finished job's file",
                           "parameters": [JOB_ID],
                           "responses": {"200": {"description": "the job afterwards"}, **_errors(404)}},
            },
            "/export/jobs/{job_id}/download": {"get": {
                "summary": "The file: Range, ETag, If-None-Match, Repr-Digest", "parameters": [JOB_ID],
                "responses": {"200": {"description": "the file"}, "206": {"description": "a range"},
                              "304": {"description": "not modified"}, **_errors(404, 409, 410, 416)},
            }},
            "/export/stream": {"post": {
                "summary": "CSV streamed back while the input arrives",
                "parameters": NDJSON_QUERY, "requestBody": EXPORT_BODY,
                "responses": {"200": {"description": "text/csv; a failure mid-stream ends with a '#error,' line"},
                              **_errors(400, 413, 415, 429, 503)},
            }},
            "/export/status": {"get": {"summary": "Limiter state", "responses": {"200": {"description": "status"}}}},
            "/export/metrics": {"get": {"summary": "The nine export metrics (Prometheus text)",
                                        "responses": {"200": {"description": "metrics"}}}},
        },
    }


@routes.get("/export/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    from . import __version__

    return web.json_response(document(__version__))
