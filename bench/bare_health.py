"""The baseline of the host benchmark: a bare aiohttp app answering the same /health JSON."""

from __future__ import annotations

import sys
import time

from aiohttp import web

STARTED = time.monotonic()


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "status": "ok", "service": "executor", "version": "0.1.0",
                              "uptime_s": round(time.monotonic() - STARTED, 3),
                              "plugins": {"loaded": 1, "failed": 0}})


def init() -> web.Application:
    app = web.Application()
    app.router.add_get("/health", health)
    return app


if __name__ == "__main__":
    web.run_app(init(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
