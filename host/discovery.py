"""Where plugins come from: entry points, then dotted module paths, then plugins directories.

For each plugin name the sources are tried in that order; the first that imports wins, and the reason each
earlier one was passed over is kept, so ``/plugins`` can say why a plugin came from where it did.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

ENTRY_POINT_GROUP = "executor.plugins"

ENTRY_POINT = "entry point"
MODULE_PATH = "module path"
PLUGINS_DIR = "plugins dir"
GIVEN = "given"


@dataclass
class Candidate:
    """One place a plugin may be imported from."""

    source: str
    target: str
    load: Callable[[], Any]
    version: str | None = None


@dataclass
class Found:
    """The candidates for one plugin name, in the order they are tried."""

    name: str
    candidates: list[Candidate] = field(default_factory=list)


def _import_file(name: str, path: Path) -> ModuleType:
    """Import ``DIR/NAME.py`` or ``DIR/NAME/__init__.py`` under a private module name."""
    module_name = f"executor_dropin_{name}"
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            module_name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _given(obj: Any) -> Any:
    return obj


def dir_plugins(directory: Path) -> dict[str, Path]:
    """Every drop-in plugin in ``directory``: ``NAME.py`` files and ``NAME/`` packages."""
    found: dict[str, Path] = {}
    if not directory.is_dir():
        return found
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.suffix == ".py" and entry.is_file():
            found[entry.stem] = entry
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            found[entry.name] = entry
    return found


def module_name_of(dotted: str) -> str:
    """The plugin name of a dotted path: its last component (``plugins.export`` → ``export``)."""
    return dotted.rsplit(".", 1)[-1]


def discover(
    *,
    autoload: bool,
    module_paths: Iterable[str],
    plugins_dirs: Iterable[str | Path],
    given: Iterable[Any] = (),
) -> list[Found]:
    """Every plugin name, with its candidates in fallback order, in a stable order of first sighting."""
    by_name: dict[str, Found] = {}

    def entry(name: str) -> Found:
        return by_name.setdefault(name, Found(name))

    if autoload:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            version = ep.dist.version if ep.dist is not None else None
            entry(ep.name).candidates.append(Candidate(ENTRY_POINT, ep.value, ep.load, version))
    for dotted in module_paths:
        name = module_name_of(dotted)
        entry(name).candidates.append(Candidate(MODULE_PATH, dotted, partial(importlib.import_module, dotted)))
    for directory in plugins_dirs:
        for name, path in dir_plugins(Path(directory)).items():
            entry(name).candidates.append(Candidate(PLUGINS_DIR, str(path), partial(_import_file, name, path)))
    for obj in given:
        name = getattr(obj, "PLUGIN_NAME", None) or module_name_of(getattr(obj, "__name__", type(obj).__name__))
        entry(name).candidates.insert(0, Candidate(GIVEN, repr(obj), partial(_given, obj)))

    return list(by_name.values())


SOURCE_ORDER = (ENTRY_POINT, MODULE_PATH, PLUGINS_DIR)


def absent_reason(source: str, name: str, *, autoload: bool) -> str:
    """Why ``source`` offered nothing for plugin ``name``."""
    if source == ENTRY_POINT:
        if not autoload:
            return f"{ENTRY_POINT}: autoload disabled (EXECUTOR_DISABLE_PLUGIN_AUTOLOAD or [host] autoload)"
        return f"{ENTRY_POINT}: no installed distribution publishes {name!r} in {ENTRY_POINT_GROUP!r}"
    if source == MODULE_PATH:
        return f"{MODULE_PATH}: {name!r} is not listed in [host] plugins"
    return f"{PLUGINS_DIR}: no {name}.py or {name}/__init__.py in the plugins dirs"
