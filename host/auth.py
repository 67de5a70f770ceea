"""Bearer-token authentication: tokens are configured as sha256 digests, compared in constant time.

    [host.auth]
    tokens = [
        { name = "alice", sha256 = "<hex sha256 of alice's secret>" },
        { name = "ops", sha256 = "<hex>", admin = true },
    ]
    open_paths = ["/health"]          # answered without a token

With no tokens configured, every request is anonymous (and the host binds only loopback addresses unless
``--insecure``). With tokens, every path but ``open_paths`` needs ``Authorization: Bearer SECRET``; the
token's name is who the request is (``host.identity(request)``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Identity:
    """Who a request is: a token's name, and whether that token is an admin's."""

    name: str
    admin: bool = False


IDENTITY_KEY = web.RequestKey("executor_identity", Identity)


def check_tokens(tokens: Sequence[Any]) -> str | None:
    """The config check of ``[host.auth] tokens``."""
    names: set[str] = set()
    for index, token in enumerate(tokens):
        if not isinstance(token, Mapping):
            return f"tokens[{index}] must be a table {{ name, sha256, admin }}"
        unknown = sorted(set(token) - {"name", "sha256", "admin"})
        if unknown:
            return f"tokens[{index}]: unknown key {unknown[0]!r} (known: name, sha256, admin)"
        if not isinstance(token.get("name"), str) or not token["name"]:
            return f"tokens[{index}].name must be a non-empty string"
        if not isinstance(token.get("sha256"), str) or not _HEX64.fullmatch(token["sha256"].lower()):
            return (f"tokens[{index}].sha256 must be the 64 hex digits of the secret's sha256 "
                    "(the secret itself never goes in a config file)")
        if not isinstance(token.get("admin", False), bool):
            return f"tokens[{index}].admin must be true or false"
        if token["name"] in names:
            return f"tokens[{index}]: the name {token['name']!r} is used twice"
        names.add(token["name"])
    return None


class TokenAuth:
    def __init__(self, tokens: Sequence[Mapping[str, Any]], open_paths: Sequence[str]) -> None:
        self.tokens = [(bytes.fromhex(t["sha256"].lower()), Identity(t["name"], bool(t.get("admin", False))))
                       for t in tokens]
        self.open_paths = frozenset(open_paths)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def identify(self, header: str | None) -> Identity | None:
        """The identity of an ``Authorization`` header, or None; every digest is compared, in constant time."""
        if not header or not header.startswith("Bearer "):
            return None
        digest = hashlib.sha256(header[7:].strip().encode()).digest()
        found = None
        for expected, identity in self.tokens:
            if hmac.compare_digest(digest, expected):
                found = identity
        return found


def identity(request: web.Request) -> Identity | None:
    """Who made ``request``: None when the host has no tokens configured (everyone is anonymous)."""
    return request.get(IDENTITY_KEY)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
