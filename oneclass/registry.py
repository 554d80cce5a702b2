"""Name -> class registries with lazy imports (heavy backends load only when asked for)."""

from __future__ import annotations

import importlib
from typing import Any


class Registry:
    """Maps names to ``"module:Class"`` targets; ``make(name, **params)`` builds one."""

    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._entries = dict(entries)

    def register(self, name: str, target: str | type) -> None:
        """Add ``name`` -> a class or a ``"module:Class"`` string."""
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def resolve(self, name: str) -> type:
        if name not in self._entries:
            raise ValueError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}"
            )
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
        return target

    def make(self, name: str, **params: Any):
        return self.resolve(name)(**params)


def parse_value(text: str) -> Any:
    """``"5"`` -> 5, ``"0.1"`` -> 0.1, ``"true"`` -> True, ``"none"`` -> None, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text.strip()


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"knn:k=5,metric=cosine"`` or ``"pyod:LOF:n_neighbors=10"`` into name and params.

    Values may be separated by ``|`` to give a list: ``"mlp:hidden_layer_sizes=64|32"``.
    """
    head, sep, tail = spec.rpartition(":")
    if not sep or "=" not in tail:
        return spec, {}
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in tail.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"bad parameter {item!r} in {spec!r}: expected key=value")
        params[key.strip()] = (
            [parse_value(v) for v in value.split("|")] if "|" in value else parse_value(value)
        )
    return head, params
