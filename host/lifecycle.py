"""Booting plugins in stages, in dependency order, skipping (and rolling back) the ones that fail.

Stages: ``import`` → ``requires`` → ``host_version`` → ``validation`` → ``config`` → ``register`` →
``startup``. A plugin that fails at any stage keeps nothing mounted: its routes answer 404, its middlewares
are out of the chain, its metrics are unregistered, and whatever its lifespan had entered is exited.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy
from aiohttp import web
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from prometheus_client import CollectorRegistry

from . import hookspecs
from ._version import __version__
from .config import Settings
from .discovery import SOURCE_ORDER, Candidate, Found, absent_reason, discover
from .errors import BootError, PluginError

log = logging.getLogger("executor.host")

LOADED, FAILED, DISABLED, PENDING = "loaded", "failed", "disabled", "pending"


@dataclass
class PluginRecord:
    """Everything the host knows of one plugin; ``as_json`` is what ``/plugins`` shows."""

    name: str
    status: str = PENDING
    version: str | None = None
    source: str | None = None
    target: str | None = None
    stage: str | None = None
    error: str | None = None
    skipped: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    boot_ms: float = 0.0
    module: Any = None
    config: dict[str, Any] | None = None
    registry: CollectorRegistry | None = None
    middlewares: list[Any] = field(default_factory=list)
    registered: bool = False

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "target": self.target,
            "status": self.status,
            "skipped_sources": self.skipped,
            "requires": self.requires,
            "hooks": self.hooks,
            "routes": self.routes,
            "boot_ms": round(self.boot_ms, 3),
        }
        if self.status == FAILED:
            shown["stage"] = self.stage
            shown["error"] = self.error
        return shown


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _spec_functions(spec: Any) -> dict[str, Any]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {name: getattr(spec, name) for name in dir(spec) if hasattr(getattr(spec, name, None), marker)}


def _argnames(function: Any) -> set[str]:
    return {
        name
        for name, param in inspect.signature(function).parameters.items()
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and name != "self"
    }


class PluginHost:
    """One app's plugin manager and plugin records; never shared between apps."""

    def __init__(self, app: web.Application, settings: Settings, given: Iterable[Any] = ()) -> None:
        self.app = app
        self.settings = settings
        self.given = list(given)
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.order: list[PluginRecord] = []
        self.registry: CollectorRegistry | None = None
        self.strict: bool = settings.host["strict"]
        self.active_middlewares: list[Any] = []
        self._counts: dict[str, int] = {"loaded": 0, "failed": 0}

    # -- queries -------------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return self._counts

    def _refresh(self) -> None:
        """Recompute what the request path reads, after any plugin's status changed."""
        statuses = [rec.status for rec in self.records.values()]
        self._counts = {"loaded": statuses.count(LOADED), "failed": statuses.count(FAILED)}
        self.active_middlewares = [mw for rec in self.order if rec.status == LOADED for mw in rec.middlewares]

    # -- failure and rollback -------------------------------------------------------------------------

    def fail(self, rec: PluginRecord, stage: str, exc: BaseException) -> None:
        """Mark ``rec`` failed at ``stage``, take back all it registered, log the ❌ line."""
        rec.status, rec.stage = FAILED, stage
        rec.error = f"{type(exc).__name__}: {exc}"
        rec.middlewares = []
        if rec.registered and self.registry is not None and rec.registry is not None:
            with contextlib.suppress(KeyError):
                self.registry.unregister(rec.registry)
        rec.registered = False
        if rec.module is not None and self.pm.is_registered(rec.module):
            self.pm.unregister(rec.module)
        self._refresh()
        line = f"❌ plugin {rec.name} failed at {stage}: {rec.error} — skipped"
        log.error(line, exc_info=exc if self.settings.host["debug"] else None)
        if self.strict:
            raise BootError(line) from exc

    def _alive(self) -> list[PluginRecord]:
        return [rec for rec in self.order if rec.status == PENDING]

    def _fail_orphans(self, stage: str) -> None:
        """Fail every pending plugin that requires one that failed (in order, so chains cascade)."""
        for rec in self._alive():
            broken = [dep for dep in rec.requires if self.records[dep].status != PENDING
                      and self.records[dep].status != LOADED]
            if broken:
                dep = self.records[broken[0]]
                self.fail(rec, stage, PluginError(rec.name, f"requires {dep.name!r}, which is {dep.status}"
                                                  + (f" at {dep.stage}" if dep.stage else "")))

    # -- calling one plugin's hook --------------------------------------------------------------------

    async def call(self, rec: PluginRecord, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call ``hook_name`` of ``rec``'s plugin alone; await what async implementations return."""
        caller = getattr(self.pm.hook, hook_name)
        if not any(impl.plugin is rec.module for impl in caller.get_hookimpls()):
            return []
        others = [plugin for plugin in self.pm.get_plugins() if plugin is not rec.module]
        results = self.pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)
        return [await r if inspect.isawaitable(r) else r for r in results]

    # -- the stages -----------------------------------------------------------------------------------

    def _import(self, found: Found) -> None:
        rec = self.records[found.name]
        autoload = self.settings.host["autoload"]
        started = time.perf_counter()
        by_source: dict[str, list[Candidate]] = {}
        for cand in found.candidates:
            by_source.setdefault(cand.source, []).append(cand)
        order = [c for c in found.candidates if c.source not in SOURCE_ORDER]
        for source in SOURCE_ORDER:
            order.extend(by_source.get(source, []))
        last_error: BaseException | None = None
        for cand in order:
            try:
                module = cand.load()
            except Exception as exc:  # noqa: BLE001 - any import error means: try the next source
                rec.skipped.append(f"{cand.source} {cand.target}: import failed: {type(exc).__name__}: {exc}")
                last_error = exc
                continue
            rec.module, rec.source, rec.target = module, cand.source, cand.target
            rec.version = str(getattr(module, "__version__", None) or cand.version or "0.0.0")
            rec.requires = list(getattr(module, "requires", ()) or ())
            break
        else:
            rec.boot_ms += (time.perf_counter() - started) * 1000
            assert last_error is not None
            self.fail(rec, "import", last_error)
            return
        # why the sources before the winner offered nothing (those that failed are already noted)
        if rec.source in SOURCE_ORDER:
            for source in SOURCE_ORDER[: SOURCE_ORDER.index(rec.source)]:
                if source not in by_source:
                    rec.skipped.insert(SOURCE_ORDER.index(source),
                                       absent_reason(source, rec.name, autoload=autoload))
        rec.boot_ms += (time.perf_counter() - started) * 1000

    def _resolve_order(self) -> None:
        """Topological order by ``requires``; missing requirements and cycles fail the plugins involved."""
        pending = [rec for rec in self.records.values() if rec.status == PENDING]
        for rec in pending:
            missing = [dep for dep in rec.requires if dep not in self.records]
            disabled = [dep for dep in rec.requires if dep in self.records
                        and self.records[dep].status == DISABLED]
            if missing:
                self.order.append(rec)
                self.fail(rec, "requires", PluginError(rec.name, f"requires {missing[0]!r}, which was not found"))
            elif disabled:
                self.order.append(rec)
                self.fail(rec, "requires", PluginError(rec.name, f"requires {disabled[0]!r}, which is disabled"))
        placed: set[str] = set()
        remaining = [rec for rec in pending if rec.status == PENDING]
        while remaining:
            ready = [rec for rec in remaining
                     if all(dep in placed or self.records[dep].status == FAILED for dep in rec.requires)]
            if not ready:
                cycle = " -> ".join(rec.name for rec in remaining)
                for rec in remaining:
                    self.order.append(rec)
                    self.fail(rec, "requires", PluginError(rec.name, f"dependency cycle among: {cycle}"))
                break
            for rec in ready:
                self.order.append(rec)
                placed.add(rec.name)
                remaining.remove(rec)
        self._fail_orphans("requires")

    def _check_host_version(self) -> None:
        host_version = Version(__version__)
        for rec in self._alive():
            wanted = getattr(rec.module, "host_version", None)
            if not wanted:
                continue
            try:
                spec = SpecifierSet(str(wanted))
            except InvalidSpecifier as exc:
                self.fail(rec, "host_version", PluginError(rec.name, f"host_version {wanted!r} is not a PEP 440 "
                                                                     f"specifier: {exc}"))
                continue
            if host_version not in spec:
                self.fail(rec, "host_version", PluginError(
                    rec.name, f"needs host {wanted}, this host is {__version__}"))
        self._fail_orphans("host_version")

    async def _validate(self) -> None:
        for rec in self._alive():
            try:
                self.pm.register(rec.module, name=rec.name)
            except Exception as exc:  # noqa: BLE001 - a bad hook signature, a name clash
                self.fail(rec, "validation", exc)
        for rec in self._alive():
            try:
                specs = await self.call(rec, "register_hookspecs")
                for spec in specs:
                    self._add_hookspecs(spec)
            except BootError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.fail(rec, "validation", exc)
        while True:
            try:
                self.pm.check_pending()
                break
            except pluggy.PluginValidationError as exc:
                rec = next(r for r in self.order if r.module is exc.plugin)
                self.fail(rec, "validation", exc)
        for rec in self._alive():
            rec.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(rec.module) or [])
        self._fail_orphans("validation")

    def _add_hookspecs(self, spec: Any) -> None:
        """Add ``spec``, first failing every plugin whose implementation does not fit a new hook."""
        for name, function in _spec_functions(spec).items():
            allowed = _argnames(function)
            caller = getattr(self.pm.hook, name, None)
            for impl in (caller.get_hookimpls() if caller is not None else []):
                extra = sorted(set(impl.argnames) - allowed)
                if extra:
                    rec = next(r for r in self.order if r.module is impl.plugin)
                    self.fail(rec, "validation", pluggy.PluginValidationError(
                        impl.plugin, f"hook {name!r} of plugin {rec.name!r}: argument(s) {extra!r} are not "
                                     f"in the hookspec ({sorted(allowed)!r})"))
        self.pm.add_hookspecs(spec)

    async def _configure(self) -> None:
        for rec in self._alive():
            try:
                schemas = [s for s in await self.call(rec, "config_schema") if s is not None]
                if schemas:
                    rec.config = self.settings.plugin_config(rec.name, schemas[0])
                elif self.settings.plugins.get(rec.name):
                    key = sorted(self.settings.plugins[rec.name])[0]
                    raise PluginError(rec.name, f"plugins.{rec.name}.{key}: unknown key (plugin {rec.name!r} "
                                                f"takes no configuration)")
                else:
                    rec.config = {}
            except BootError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.fail(rec, "config", exc)
            self._fail_orphans("config")

    async def _register(self, instrument: Any) -> None:
        for rec in self._alive():
            started = time.perf_counter()
            try:
                rec.registry = CollectorRegistry(auto_describe=True)
                common = {"app": self.app, "config": rec.config}
                await self.call(rec, "register_metrics", registry=rec.registry, **common)
                routes: list[web.RouteDef] = []
                for result in await self.call(rec, "register_routes", hook=self.pm.hook, **common):
                    for route in _as_list(list(result) if isinstance(result, web.RouteTableDef) else result):
                        if not isinstance(route, web.RouteDef):
                            raise TypeError(f"register_routes must return web.RouteDef items, got {route!r}")
                        routes.append(route)
                middlewares = [mw for result in await self.call(rec, "register_middlewares", **common)
                               for mw in _as_list(result)]
                for mw in middlewares:
                    if not callable(mw):
                        raise TypeError(f"register_middlewares must return callables, got {mw!r}")
                assert self.registry is not None
                self.registry.register(rec.registry)
                rec.registered = True
                for route in routes:
                    instrument(route.method, route.path, route.handler, rec, **route.kwargs)
                    rec.routes.append(f"{route.method} {route.path}")
                rec.middlewares = middlewares
            except BootError:
                raise
            except Exception as exc:  # noqa: BLE001
                self.fail(rec, "register", exc)
            rec.boot_ms += (time.perf_counter() - started) * 1000
            self._fail_orphans("register")

    async def boot(self, registry: CollectorRegistry, instrument: Any) -> None:
        """Run every stage but startup (which runs when the app starts), in order."""
        self.registry = registry
        host = self.settings.host
        found = discover(autoload=host["autoload"], module_paths=host["plugins"],
                         plugins_dirs=host["plugins_dirs"], given=self.given)
        disabled = set(host["disabled"])
        for item in found:
            rec = self.records[item.name] = PluginRecord(item.name)
            if item.name in disabled:
                rec.status = DISABLED
                rec.skipped.append("disabled by [host] disabled or EXECUTOR_DISABLE_PLUGINS")
                log.info("plugin %s disabled", item.name)
                continue
            self._import(item)
        self._resolve_order()
        self._check_host_version()
        await self._validate()
        await self._configure()
        await self._register(instrument)

    async def lifespan(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx`` of the host: enter each plugin's lifespan in order, exit them in reverse."""
        entered: list[tuple[PluginRecord, contextlib.AsyncExitStack]] = []
        try:
            for rec in [r for r in self.order if r.status == PENDING]:
                self._fail_orphans("startup")
                if rec.status != PENDING:
                    continue
                started = time.perf_counter()
                stack = contextlib.AsyncExitStack()
                try:
                    for result in await self.call(rec, "register_lifespan", app=app, config=rec.config,
                                                  hook=self.pm.hook):
                        for manager in _as_list(result):
                            await stack.enter_async_context(manager)
                except Exception as exc:  # noqa: BLE001
                    await self._close(rec, stack)
                    self.fail(rec, "startup", exc)
                    continue
                rec.boot_ms += (time.perf_counter() - started) * 1000
                rec.status = LOADED
                self._refresh()
                entered.append((rec, stack))
                log.info("✅ plugin %s %s registered (%s, %d ms)", rec.name, rec.version, rec.source,
                         round(rec.boot_ms))
            self._fail_orphans("startup")
        except BaseException:
            for rec, stack in reversed(entered):
                await self._close(rec, stack)
            raise
        yield
        for rec, stack in reversed(entered):
            await self._close(rec, stack)

    async def _close(self, rec: PluginRecord, stack: contextlib.AsyncExitStack) -> None:
        try:
            await stack.aclose()
        except Exception:  # noqa: BLE001 - one plugin's shutdown must not stop the others'
            log.exception("plugin %s raised while shutting down", rec.name)
