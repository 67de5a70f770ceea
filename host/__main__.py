"""``python -m host plugins`` and ``python -m host config``: what the server would show, without serving."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

from aiohttp.test_utils import TestServer

from .app import HOST_KEY, create_app
from .config import HOST_SCHEMA, PROJECT_ROOT, masked
from .errors import BootError, ConfigError
from .logs import configure_logging
from .runner import EXIT_BOOT_FAILURE, build_parser, settings_from_args


async def _plugins_report(settings: object) -> list[dict[str, object]]:
    app = await create_app(settings)  # type: ignore[arg-type]
    host = app[HOST_KEY]
    server = TestServer(app, host="127.0.0.1", port=0)  # startup runs the plugins' lifespans, as serving would
    await server.start_server()
    await server.close()
    return [rec.as_json() for rec in host.records.values()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m host", description="Inspect the executor without serving.")
    parser.add_argument("command", choices=("plugins", "config"))
    command_args, rest = parser.parse_known_args(argv)
    args = build_parser(f"python -m host {command_args.command}").parse_args(rest)
    sys.path.insert(0, str(PROJECT_ROOT))
    try:
        settings = settings_from_args(args, os.environ)
    except ConfigError as exc:
        print(f"❌ config error: {exc}", file=sys.stderr)
        return EXIT_BOOT_FAILURE
    if command_args.command == "config":
        shown = {"host": masked(settings.host, HOST_SCHEMA), "plugins": masked(settings.plugins),
                 "sources": settings.sources}
        print(json.dumps(shown, indent=2))
        return 0
    configure_logging(settings.host["log_format"], "warning")
    try:
        plugins = asyncio.run(_plugins_report(settings))
    except BootError as exc:
        print(f"boot failed (strict): {exc}", file=sys.stderr)
        return EXIT_BOOT_FAILURE
    print(json.dumps({"plugins": plugins}, indent=2, ensure_ascii=False))
    return 0


sys.exit(main())
