"""Configuration: TOML defaults, an overlay file, ``EXECUTOR_*`` environment and CLI flags, in that order.

The environment is read once, through an injectable mapping, so tests never touch ``os.environ``.
A schema is a nested ``dict`` of :class:`Field` (or of further schemas, for TOML sub-tables).
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from .auth import check_tokens
from .errors import ConfigError

#: Where a fresh checkout keeps its shipped defaults.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "default.toml"

ENV_PREFIX = "EXECUTOR_"
MASK = "***"
_SECRET_NAME = re.compile(r"(secret|token|password|passwd|api_key|private_key)s?$", re.IGNORECASE)


@dataclass(frozen=True)
class Field:
    """One configuration key: its type (``kind``), default, a check, and whether it is secret.

    ``check`` returns a problem such as ``"must be > 0"`` or ``None`` when the value is fine.
    ``item`` is the type of each element when ``type`` is ``list``.
    """

    kind: type | tuple[type, ...]
    default: Any
    help: str = ""
    check: Callable[[Any], str | None] | None = None
    item: type | None = None
    secret: bool = False
    choices: tuple[Any, ...] | None = None


Schema = dict[str, Union[Field, "Schema"]]


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def _type_name(expected: type | tuple[type, ...]) -> str:
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return expected.__name__


def _is_instance(value: Any, expected: type | tuple[type, ...]) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in types:
        return False  # True is an int to Python, never to a config file
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, types)


def validate(schema: Schema, raw: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Check ``raw`` against ``schema`` and fill in defaults; raise :class:`ConfigError` naming the key."""
    if not isinstance(raw, Mapping):
        raise ConfigError(path, f"must be a table, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        known = ", ".join(sorted(schema)) or "none"
        raise ConfigError(f"{path}.{unknown[0]}", f"unknown key (known keys: {known})")
    result: dict[str, Any] = {}
    for key, spec in schema.items():
        key_path = f"{path}.{key}" if path else key
        if isinstance(spec, dict):
            result[key] = validate(spec, raw.get(key, {}), key_path)
            continue
        value = raw.get(key, copy.deepcopy(spec.default))
        if value is None and spec.default is None:
            result[key] = None
            continue
        if not _is_instance(value, spec.kind):
            raise ConfigError(
                key_path, f"must be {_type_name(spec.kind)}, got {type(value).__name__} {value!r}"
            )
        if spec.item is not None:
            for index, element in enumerate(value):
                if not _is_instance(element, spec.item):
                    raise ConfigError(
                        f"{key_path}[{index}]",
                        f"must be {spec.item.__name__}, got {type(element).__name__} {element!r}",
                    )
        if spec.choices is not None and value not in spec.choices:
            raise ConfigError(key_path, f"must be one of {list(spec.choices)!r}, got {value!r}")
        if spec.check is not None:
            problem = spec.check(value)
            if problem:
                raise ConfigError(key_path, f"{problem}, got {value!r}")
        result[key] = float(value) if spec.kind is float else value
    return result


def defaults(schema: Schema) -> dict[str, Any]:
    """The schema's defaults as a nested dict."""
    return validate(schema, {}, "")


def flat_keys(schema: Schema, prefix: str = "") -> dict[str, Field]:
    """``{"pdf.records_per_page": Field, ...}`` for every leaf of the schema."""
    keys: dict[str, Field] = {}
    for key, spec in schema.items():
        dotted = f"{prefix}{key}"
        if isinstance(spec, dict):
            keys.update(flat_keys(spec, dotted + "."))
        else:
            keys[dotted] = spec
    return keys


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` on top of ``base``; tables merge, everything else is replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def parse_env_value(text: str) -> Any:
    """An environment value read as a TOML value when it is one (``5``, ``true``, ``["a"]``), else text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def env_overrides(schema: Schema, section: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """Values for ``section`` from ``EXECUTOR_<SECTION>_<KEY>`` variables, matched against the schema.

    A nested key ``pdf.records_per_page`` is ``EXECUTOR_EXPORT_PDF_RECORDS_PER_PAGE``. A variable with the
    section's prefix that names no key is an error, so a typo never goes unnoticed.
    """
    prefix = f"{ENV_PREFIX}{section.upper()}_"
    by_env_name = {key.replace(".", "_").upper(): key for key in flat_keys(schema)}
    found: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):]
        if rest not in by_env_name:
            raise ConfigError(name, f"names no key of [{section}] (known: {', '.join(sorted(by_env_name))})")
        set_path(found, by_env_name[rest], parse_env_value(text))
    return found


def is_secret(key: str, spec: Field | None = None) -> bool:
    return bool(spec and spec.secret) or bool(_SECRET_NAME.search(key))


def masked(values: Mapping[str, Any], schema: Schema | None = None) -> dict[str, Any]:
    """A copy of ``values`` with every secret replaced by ``***``."""
    shown: dict[str, Any] = {}
    for key, value in values.items():
        spec = schema.get(key) if schema else None
        if isinstance(value, Mapping):
            shown[key] = masked(value, spec if isinstance(spec, dict) else None)
        elif value not in (None, "", []) and is_secret(key, spec if isinstance(spec, Field) else None):
            shown[key] = MASK
        else:
            shown[key] = value
    return shown


def _log_level(value: str) -> str | None:
    return None if value.upper() in {"DEBUG", "INFO", "WARNING", "ERROR"} else "must be debug|info|warning|error"


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number 0..65535 (0 picks a free port)"


HOST_SCHEMA: Schema = {
    "host": Field(str, "127.0.0.1", "address to bind"),
    "port": Field(int, 4001, "port to bind (0 picks a free one)", check=_port),
    "plugins": Field(list, ["plugins.export"], "dotted module paths of plugins", item=str),
    "plugins_dirs": Field(list, [], "directories of drop-in plugins", item=str),
    "disabled": Field(list, [], "plugin names not to load", item=str),
    "autoload": Field(bool, True, "discover plugins through the executor.plugins entry points"),
    "strict": Field(bool, False, "any plugin failure fails the boot (exit code 2)"),
    "log_format": Field(str, "text", "log line format", choices=("text", "json")),
    "log_level": Field(str, "info", "log level", check=_log_level),
    "debug": Field(bool, False, "show tracebacks of boot failures"),
    "max_body_bytes": Field(int, 1024 * 1024, "largest request body the host reads for a handler", check=positive),
    "shutdown_timeout_s": Field(float, 30.0, "how long in-flight requests may finish at shutdown", check=non_negative),
    "insecure": Field(bool, False, "allow binding a non-loopback address with no tokens configured"),
    "auth": {
        "tokens": Field(list, [], "bearer tokens: { name, sha256 = hex digest of the secret, admin }",
                        check=lambda tokens: check_tokens(tokens)),
        "open_paths": Field(list, ["/health"], "paths answered without a token when tokens are configured",
                            item=str),
    },
}


@dataclass
class Settings:
    """The effective configuration: the validated ``[host]`` table and the raw ``[plugins.*]`` tables.

    Plugin tables are validated by their plugin at boot, with the plugin's own schema; ``environ`` is kept
    so that ``EXECUTOR_<PLUGIN>_<KEY>`` variables apply then.
    """

    host: dict[str, Any]
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def plugin_config(self, name: str, schema: Schema) -> dict[str, Any]:
        raw = deep_merge(self.plugins.get(name, {}), env_overrides(schema, name, self.environ))
        return validate(schema, raw, f"plugins.{name}")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(path), "config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None


def _split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _host_env(environ: Mapping[str, str]) -> dict[str, Any]:
    found = env_overrides(HOST_SCHEMA, "host", environ)
    if "EXECUTOR_DISABLE_PLUGINS" in environ:
        found["disabled"] = _split_names(environ["EXECUTOR_DISABLE_PLUGINS"])
    if environ.get("EXECUTOR_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower() in {"1", "true", "yes", "on"}:
        found["autoload"] = False
    return found


def load_settings(
    config_path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    default_path: Path | None = DEFAULT_CONFIG_PATH,
) -> Settings:
    """Build :class:`Settings` from every layer: defaults < default.toml < ``config_path`` < ``data`` < env < CLI.

    ``data`` is a config given as a dict (what tests and ``host.testing`` use); ``cli`` holds ``[host]`` keys.
    """
    environ = {} if environ is None else environ
    layers: list[tuple[str, dict[str, Any]]] = []
    if default_path is not None and default_path.exists():
        layers.append((str(default_path), read_toml(default_path)))
    if config_path is not None:
        layers.append((str(config_path), read_toml(Path(config_path))))
    if data is not None:
        layers.append(("<given>", dict(data)))
    merged: dict[str, Any] = {}
    for origin, layer in layers:
        unknown = sorted(set(layer) - {"host", "plugins"})
        if unknown:
            raise ConfigError(unknown[0], f"unknown section in {origin} (known: host, plugins)")
        merged = deep_merge(merged, layer)
    host_raw = deep_merge(merged.get("host", {}), _host_env(environ))
    host_raw = deep_merge(host_raw, {k: v for k, v in (cli or {}).items() if v is not None})
    plugins = merged.get("plugins", {})
    if not isinstance(plugins, Mapping):
        raise ConfigError("plugins", f"must be a table of [plugins.NAME] tables, got {type(plugins).__name__}")
    for name, table in plugins.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"plugins.{name}", f"must be a table, got {type(table).__name__}")
    return Settings(
        host=validate(HOST_SCHEMA, host_raw, "host"),
        plugins={name: dict(table) for name, table in plugins.items()},
        environ=environ,
        sources=[origin for origin, _ in layers],
    )
