"""Run the executor from a checkout: ``python run_dev.py [--port 4001] [--reload] ...``.

Installs the project when its dependencies are missing, and puts the project root on ``sys.path`` so the
built-in plugins load from the source tree without installing.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
REQUIRED = ("aiohttp", "pluggy", "packaging", "prometheus_client", "reportlab", "watchfiles", "rich", "orjson")


def ensure_installed() -> None:
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        print(f"installing the project's dependencies (missing: {', '.join(missing)}) ...", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-e", str(ROOT)])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    ensure_installed()
    from host.runner import main

    sys.exit(main())
