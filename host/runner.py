"""The command line: ``python run_dev.py`` (serve) and the graceful shutdown around it."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from .app import STATE_KEY, begin_drain, create_app
from .auth import is_loopback
from .config import PROJECT_ROOT, Settings, load_settings
from .errors import BootError, ConfigError
from .logs import configure_logging

log = logging.getLogger("executor.host")

EXIT_BOOT_FAILURE = 2


def build_parser(prog: str = "run_dev.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run the executor plugin host.")
    parser.add_argument("--config", help="TOML file laid over config/default.toml")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 4001; 0 picks a free one)")
    parser.add_argument("--plugins-dir", action="append", dest="plugins_dirs", metavar="DIR",
                        help="directory of drop-in plugins (repeatable; replaces [host] plugins_dirs)")
    parser.add_argument("--strict", action="store_true", default=None, help="any plugin failure fails the boot")
    parser.add_argument("--reload", action="store_true", help="restart when a source file changes")
    parser.add_argument("--log-format", choices=("text", "json"), help="log line format")
    parser.add_argument("--debug", action="store_true", default=None, help="tracebacks for boot failures")
    parser.add_argument("--insecure", action="store_true", default=None,
                        help="serve a non-loopback address with no tokens configured")
    return parser


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    cli: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "plugins_dirs": args.plugins_dirs,
        "strict": args.strict,
        "log_format": args.log_format,
        "debug": args.debug,
        "insecure": args.insecure,
    }
    return load_settings(args.config, environ=environ, cli=cli)


async def serve(settings: Settings) -> int:
    """Boot, serve until SIGINT/SIGTERM, drain (``/health`` 503) and stop; the exit code."""
    app = await create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True,
                           shutdown_timeout=settings.host["shutdown_timeout_s"])
    await runner.setup()  # enters every plugin's lifespan; BootError under strict
    try:
        site = web.TCPSite(runner, settings.host["host"], settings.host["port"])
        await site.start()
        for address in runner.addresses:
            log.info("executor listening on http://%s:%s", address[0], address[1])
        gc.collect()
        gc.freeze()  # boot-time objects live as long as the process: keep them out of every later collection
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        begin_drain(app)
        state = app[STATE_KEY]
        deadline = time.monotonic() + settings.host["shutdown_timeout_s"]
        log.info("draining: %d request(s) in flight, up to %.0f s", state.inflight, settings.host["shutdown_timeout_s"])
        waiters = [asyncio.ensure_future(waiter()) for waiter in state.drain_waiters]
        while (state.inflight > 0 or not all(w.done() for w in waiters)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    finally:
        await runner.cleanup()
    log.info("executor stopped")
    return 0


def _serve_child(argv: list[str]) -> None:
    """Target of the reloader: one server process, restarted on every change."""
    # bytecode caches key on whole-second mtimes: an edit within the same second, of the same size, would
    # load the old code; a process that is restarted on every edit writes none
    sys.dont_write_bytecode = True
    sys.exit(main(argv))


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        settings = settings_from_args(args, environ)
    except ConfigError as exc:
        print(f"❌ config error: {exc}", file=sys.stderr)
        return EXIT_BOOT_FAILURE
    configure_logging(settings.host["log_format"], settings.host["log_level"])
    if not settings.host["auth"]["tokens"] and not is_loopback(settings.host["host"]) and not settings.host["insecure"]:
        print(f"❌ refusing to serve {settings.host['host']!r} with no tokens configured: anyone who can reach it "
              "could export and download. Configure [host.auth] tokens, bind 127.0.0.1, or pass --insecure.",
              file=sys.stderr)
        return EXIT_BOOT_FAILURE
    if args.reload:
        import watchfiles

        paths = [PROJECT_ROOT / "host", PROJECT_ROOT / "plugins", PROJECT_ROOT / "config",
                 *(Path(d) for d in settings.host["plugins_dirs"])]
        if args.config:
            paths.append(Path(args.config))
        child_argv = [a for a in argv if a != "--reload"]
        watchfiles.run_process(*[p for p in paths if p.exists()], target=_serve_child, args=(child_argv,))
        return 0
    try:
        return asyncio.run(serve(settings))
    except BootError as exc:
        if settings.host["debug"]:
            log.exception("boot failed")
        print(f"boot failed (strict): {exc}", file=sys.stderr)
        return EXIT_BOOT_FAILURE
    except OSError as exc:
        print(f"❌ cannot serve on {settings.host['host']}:{settings.host['port']}: {exc}", file=sys.stderr)
        return EXIT_BOOT_FAILURE
