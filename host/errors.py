"""Errors the host raises, and the JSON error body every response uses."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ConfigError(Exception):
    """A configuration value is unknown, of the wrong type or out of range; names the key path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class PluginError(Exception):
    """A plugin could not be used; carries the plugin's name."""

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(message)
        self.plugin = plugin


class BootError(Exception):
    """The host cannot boot (bad host config, or a plugin failure under ``strict``)."""


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON error object: ``{"error": {"code", "message"}}`` plus any top-level extras."""
    return {**extra, "error": {"code": code, "message": message}}


def json_error(
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """A JSON error response with the standard body."""
    return web.json_response(error_body(code, message, **extra), status=status, headers=headers)


_STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_error",
    501: "not_implemented",
    503: "service_unavailable",
}


def code_for_status(status: int) -> str:
    """The snake_case error code for an HTTP status."""
    return _STATUS_CODES.get(status, f"http_{status}")
