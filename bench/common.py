"""What the benchmarks share: servers as child processes, process-tree RSS sampling, medians, the table."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from plugins.export.evidence import stop_process

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


@dataclass
class Figure:
    """One row of the table: ours against the baseline, and whether the target holds."""

    name: str
    ours: float
    baseline: float | None
    unit: str
    ratio: float | None
    target: str
    passed: bool
    notes: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def post_json(url: str, body: Any, timeout: float = 3600.0) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_for_http(url: str, timeout: float = 60.0) -> float:
    """Poll ``url`` until it answers 200; the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def tree_pids(pid: int) -> list[int]:
    pids, frontier = [pid], [pid]
    while frontier:
        children = [child for parent in frontier for child in _children(parent)]
        pids.extend(children)
        frontier = children
    return pids


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(pid: int) -> int:
    return sum(rss(p) for p in tree_pids(pid))


class PeakSampler:
    """Samples the RSS of a process tree in a thread; ``peak`` is the highest sum seen."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids = tree_pids(self.pid)
        last_scan = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - last_scan > 0.5:
                pids, last_scan = tree_pids(self.pid), time.monotonic()
            self.peak = max(self.peak, sum(rss(p) for p in pids))
            self._stop.wait(self.every)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def toml_table(name: str, values: dict[str, Any]) -> list[str]:
    """``values`` as TOML lines under ``[name]``, sub-tables after the keys (JSON scalars are TOML scalars)."""
    lines = [f"[{name}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in values.items() if not isinstance(value, dict)]
    for key, value in values.items():
        if isinstance(value, dict):
            lines += toml_table(f"{name}.{key}", value)
    return lines


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """``command`` pinned to one CPU with taskset (when there is one), so A/B runs share the same core."""
    if cpu is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return command
    return ["taskset", "-c", str(cpu), *command]


@contextmanager
def executor_server(export: dict[str, Any] | None = None, plugins: bool = True,
                    cpu: int | None = None) -> Iterator[Server]:
    """``python run_dev.py`` on a free port with its exports in a temp dir; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        port = free_port()
        section = {"dir": f"{workdir}/exports", **(export or {})}
        lines = ["[host]", "autoload = false", f"plugins = {json.dumps(['plugins.export'] if plugins else [])}",
                 'log_level = "warning"', *toml_table("plugins.export", section)]
        config = Path(workdir) / "bench.toml"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        command = [sys.executable, str(ROOT / "run_dev.py"), "--port", str(port), "--config", str(config)]
        process = subprocess.Popen(pinned(command, cpu), cwd=workdir, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        server = Server(f"http://127.0.0.1:{port}", process, Path(workdir))
        try:
            wait_for_http(f"{server.url}/health")
            yield server
        finally:
            stop_process(process)


def run_python(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (the baselines); it prints one JSON object as its last line."""
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def interleave(reps: int, ours: Callable[[], float], baseline: Callable[[], float]) -> tuple[list[float], list[float]]:
    """A/B interleaved repetitions, the order swapped every other time (ours, baseline, baseline, ours, ...)
    so that a drift in the machine's speed weighs on both sides alike."""
    a, b = [], []
    for rep in range(reps):
        if rep % 2:
            b.append(baseline())
            a.append(ours())
        else:
            a.append(ours())
            b.append(baseline())
    return a, b


def write_report(figures: list[Figure], mode: str, path_json: Path, path_md: Path, notes: str) -> None:
    payload = {"mode": mode, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "cpus": os.cpu_count(), "python": sys.version.split()[0],
               "figures": [asdict(f) for f in figures]}
    path_json.parent.mkdir(parents=True, exist_ok=True)
    path_json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    rows = ["| figure | ours | baseline | ratio | target | pass |", "|---|---|---|---|---|---|"]
    for f in figures:
        base = f"{f.baseline:,.2f} {f.unit}" if f.baseline is not None else "—"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "—"
        rows.append(f"| {f.name} | {f.ours:,.2f} {f.unit} | {base} | {ratio} | {f.target} | "
                    f"{'✅' if f.passed else '❌'} |")
    header = (f"# Performance\n\nMeasured by `python -m bench{' --quick' if mode == 'quick' else ''}` on "
              f"{payload['when']} ({payload['cpus']} CPUs, Python {payload['python']}). Each figure is the median "
              "of A/B interleaved repetitions; the ratio compares ours with a baseline measured in the same run "
              "(higher is better, 1.0 = as fast as the baseline).\n\n")
    path_md.write_text(header + "\n".join(rows) + "\n\n" + notes, encoding="utf-8")
