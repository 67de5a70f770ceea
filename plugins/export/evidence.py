"""``python -m plugins.export.evidence``: boot (if needed), smoke-test, load, check, and write the evidence.

Writes ``evidence/export/<UTC timestamp>/``: ``metrics-before.txt``, ``metrics-after.txt``, ``exports.json``,
``seed.txt``, ``check.txt`` and ``SUMMARY.md``, which ends with ``HEALTH=GREEN`` or ``HEALTH=RED`` and the
reasons. Exit code 0 for GREEN, 1 for RED.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from .check import check
from .client import BATCH, DEFAULT_URL, SeedResult, answers, get_json, get_text
from .seed import seed

ROOT = Path(__file__).resolve().parent.parent.parent
STEPS = (("smoke", [("csv", 1_000), ("pdf", 1_000)]), ("10k csv", [("csv", 10_000)]), ("batch", list(BATCH)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM (the executor drains), SIGKILL past ``timeout`` seconds; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def server_at(url: str | None, workdir: Path, log: Path) -> Iterator[tuple[str, bool]]:
    """The executor at ``url`` if it answers; else one booted here (exports under ``workdir``), stopped after."""
    if url and answers(f"{url}/health"):
        yield url, False
        return
    port = _free_port()
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, str(ROOT / "run_dev.py"), "--port", str(port)], cwd=workdir,
                                   stdout=output, stderr=subprocess.STDOUT)
        booted = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not answers(f"{booted}/health"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the executor did not come up; see {log}")
                time.sleep(0.1)
            yield booted, True
        finally:
            stop_process(process)


def collect(url: str | None, out_root: Path) -> tuple[bool, Path]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = out_root / stamp
    run_dir.mkdir(parents=True, exist_ok=False)
    reasons: list[str] = []
    lines = [f"# Export evidence {stamp}", ""]
    console_text = io.StringIO()
    console = Console(file=console_text, width=120, force_terminal=False)
    try:
        with server_at(url, run_dir, run_dir / "server.log") as (base, booted):
            lines.append(f"- executor: {base} ({'booted for this run' if booted else 'already running'})")
            health = get_json(f"{base}/health")
            lines.append(f"- health: ok={health['ok']} version={health['version']} plugins={health['plugins']}")
            if not health["ok"]:
                reasons.append("/health is not ok")
            (run_dir / "metrics-before.txt").write_text(get_text(f"{base}/metrics"), encoding="utf-8")
            results: list[SeedResult] = []
            for name, plan in STEPS:
                console.rule(name)
                step = seed(base, plan, concurrency=1, user="evidence", source=None, console=console)
                results += step
                failed = [r for r in step if not r.ok]
                lines.append(f"- {name}: {len(step) - len(failed)}/{len(step)} exports succeeded")
                reasons += [f"{name}: {r.records} {r.format} → {r.status} {r.error}" for r in failed]
            (run_dir / "seed.txt").write_text(console_text.getvalue(), encoding="utf-8")
            assertions = check(base)
            (run_dir / "check.txt").write_text("\n".join(a.line() for a in assertions) + "\n", encoding="utf-8")
            lines += ["", "## Check", ""] + [f"- {a.line()}" for a in assertions]
            reasons += [f"check failed: {a.name} ({a.detail})" for a in assertions if not a.ok]
            (run_dir / "metrics-after.txt").write_text(get_text(f"{base}/metrics"), encoding="utf-8")
            jobs = get_json(f"{base}/export/jobs?limit=1000")
            (run_dir / "exports.json").write_text(json.dumps(jobs, indent=2) + "\n", encoding="utf-8")
            total = sum(r.bytes for r in results)
            lines += ["", f"- exports: {len(results)} requested, {sum(r.ok for r in results)} succeeded, "
                          f"{total:,} bytes"]
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        reasons.append(f"could not run: {type(exc).__name__}: {exc}")
    green = not reasons
    lines += ["", "## Verdict", ""]
    lines += [f"- {reason}" for reason in reasons] or ["- every step and every assertion passed"]
    lines += ["", "HEALTH=GREEN" if green else "HEALTH=RED"]
    (run_dir / "SUMMARY.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return green, run_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugins.export.evidence", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"use the executor there if it answers, else boot one (default {DEFAULT_URL})")
    parser.add_argument("--out", default="evidence/export", help="where runs are written (default evidence/export)")
    args = parser.parse_args(argv)
    green, run_dir = collect(args.url.rstrip("/") if args.url else None, Path(args.out).resolve())
    print((run_dir / "SUMMARY.md").read_text(encoding="utf-8"))
    print(f"evidence written to {run_dir}")
    return 0 if green else 1


if __name__ == "__main__":
    sys.exit(main())
