"""Name -> class registries with lazy imports, and the one spec grammar of oneclass.

Spec grammar
------------
A spec names a registry entry and, optionally, parameters::

    spec   := name [ ":" param { "," param } ]
    name   := part { ":" part }          e.g. "knn", "pyod:LOF"
    param  := key "=" value
    value  := quoted | plain [ "|" plain ... ]

- ``plain`` values are read by :func:`parse_value`: ``5`` -> 5, ``0.1`` -> 0.1, ``true`` -> True,
  ``none`` -> None, anything else the string (``:`` is allowed in a plain value:
  ``clip:model=hf-hub:org/x``). ``a|b|c`` gives a list.
- ``quoted`` values, in ``"..."`` or ``'...'`` (``\\`` escapes the quote and itself), are always
  strings, kept verbatim: they may hold ``,``, ``=``, ``|`` and ``:``
  (``clip:model="hf-hub:org/x,y"``).
- The name ends before the first ``:``-separated part that holds an ``=`` outside quotes.

Precedence (one rule, everywhere): **keyword arguments override values in the spec string**.
``make_detector("knn:k=5", k=7)`` builds ``k=7``. :func:`merge_params` applies it.

Unknown parameter names are refused by :meth:`Registry.make` with the known names listed, before
anything is built.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

__all__ = [
    "Registry",
    "format_spec",
    "merge_params",
    "parse_spec",
    "parse_value",
    "quote_value",
]


class Registry:
    """Maps names to ``"module:Class"`` targets; ``make(name, **params)`` builds one."""

    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._entries: dict[str, str | type] = dict(entries)

    def register(self, name: str, target: str | type) -> None:
        """Add ``name`` -> a class or a ``"module:Class"`` string."""
        self._entries[name] = target

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for plug-ins and tests that registered it)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        """Returns the registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def resolve(self, name: str) -> type:
        """Returns the class registered as ``name`` (importing its module on first use).

        Raises:
            ValueError: ``name`` is not registered (the known names are listed).
        """
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target

    def check_params(self, name: str, params: dict[str, Any]) -> None:
        """Refuse parameter names the class of ``name`` does not take.

        Raises:
            ValueError: an unknown key (the known ones are listed).
        """
        cls = self.resolve(name)
        known = parameter_names(cls)
        if known is None:
            return
        unknown = [k for k in params if k not in known]
        if unknown:
            raise ValueError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(k) for k in unknown)} for {self.kind} {name!r}; "
                f"it takes: {', '.join(sorted(known)) or 'no parameters'}"
            )

    def make(self, name: str, **params: Any) -> Any:
        """Returns a new instance of ``name`` built with ``params`` (unknown keys refused)."""
        self.check_params(name, params)
        return self.resolve(name)(**params)


def parameter_names(cls: type) -> set[str] | None:
    """Returns the keyword parameters of ``cls.__init__`` (``None``: it takes ``**kwargs``)."""
    try:
        sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    except (TypeError, ValueError):
        return None
    names = set()
    for p in list(sig.parameters.values())[1:]:
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
    return names


def merge_params(spec_params: dict[str, Any], keyword_params: dict[str, Any]) -> dict[str, Any]:
    """Apply the precedence rule: keyword arguments override values from the spec string.

    Returns:
        A new dict: ``spec_params`` updated with ``keyword_params``.
    """
    return {**spec_params, **keyword_params}


def parse_value(text: str) -> Any:
    """Returns ``"5"`` -> 5, ``"0.1"`` -> 0.1, ``"true"`` -> True, ``"none"`` -> None, else the
    stripped string."""
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


def _split_unquoted(text: str, sep: str, spec: str) -> list[tuple[str, bool]]:
    """Split ``text`` on ``sep`` outside quotes; returns ``(part, had_quotes)`` pairs."""
    parts: list[tuple[str, bool]] = []
    buf: list[str] = []
    quote: str | None = None
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            buf.append(c)
            if c == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote, quoted = c, True
            buf.append(c)
        elif c == sep:
            parts.append(("".join(buf), quoted))
            buf, quoted = [], False
        else:
            buf.append(c)
        i += 1
    if quote:
        raise ValueError(f"unclosed {quote} quote in spec {spec!r}")
    parts.append(("".join(buf), quoted))
    return parts


def _has_unquoted(text: str, ch: str, spec: str) -> bool:
    return len(_split_unquoted(text, ch, spec)) > 1


def _unquote(value: str, spec: str) -> str:
    v = value.strip()
    q = v[0]
    if len(v) < 2 or v[-1] != q:
        raise ValueError(f"bad quoted value {value!r} in {spec!r}: text after the closing quote")
    out, i, body = [], 0, v[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
            continue
        if c == q:
            raise ValueError(
                f"bad quoted value {value!r} in {spec!r}: text after the closing quote"
            )
        out.append(c)
        i += 1
    return "".join(out)


def _value(text: str, spec: str) -> Any:
    v = text.strip()
    if v[:1] in ("'", '"'):
        return _unquote(v, spec)
    if "|" in v:
        return [parse_value(x) for x in v.split("|")]
    return parse_value(v)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split a spec into its registry name and parameters (see the module docstring).

    ``"knn:k=5,metric=cosine"`` -> ``("knn", {"k": 5, "metric": "cosine"})``;
    ``"pyod:LOF:n_neighbors=10"`` -> ``("pyod:LOF", {"n_neighbors": 10})``;
    ``'clip:model="hf-hub:org/x"'`` -> ``("clip", {"model": "hf-hub:org/x"})``.

    Returns:
        ``(name, params)``.

    Raises:
        ValueError: a malformed parameter, an empty key, a key given twice or an unclosed quote.
    """
    if not isinstance(spec, str):
        raise TypeError(f"a spec is a string, got {type(spec).__name__}")
    segments = _split_unquoted(spec, ":", spec)
    cut = next((i for i, (s, _) in enumerate(segments) if _has_unquoted(s, "=", spec)), None)
    if cut is None:
        if any(q for _, q in segments):
            raise ValueError(f'bad spec {spec!r}: quotes belong in parameter values (key="...")')
        return spec.strip(), {}
    if cut == 0:
        raise ValueError(f"bad spec {spec!r}: it starts with a parameter, not a name")
    name = ":".join(s for s, _ in segments[:cut]).strip()
    tail = ":".join(s for s, _ in segments[cut:])
    params: dict[str, Any] = {}
    for item, _ in _split_unquoted(tail, ",", spec):
        if not item.strip():
            continue
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not key.isidentifier():
            raise ValueError(f"bad parameter {item.strip()!r} in {spec!r}: expected key=value")
        if key in params:
            raise ValueError(f"parameter {key!r} given twice in {spec!r}")
        if not value.strip():
            raise ValueError(f"parameter {key!r} in {spec!r} has no value")
        params[key] = _value(value, spec)
    return name, params


def quote_value(value: Any) -> str:
    """Returns ``value`` written so that :func:`parse_spec` reads it back unchanged.

    Raises:
        TypeError: a value the grammar cannot hold (dicts, nested lists).
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        items = [quote_value(v) for v in value]
        if len(items) < 2 or any(isinstance(v, list | tuple | str) for v in value):
            raise TypeError(f"cannot write {value!r} in a spec (lists of 2+ numbers only)")
        return "|".join(items)
    if isinstance(value, str):
        if value and parse_value(value) == value and not any(c in value for c in ",=|'\":"):
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {type(value).__name__} {value!r} in a spec")


def format_spec(name: str, params: dict[str, Any] | None = None) -> str:
    """Returns the spec string of ``name`` with ``params`` (the inverse of :func:`parse_spec`)."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={quote_value(v)}" for k, v in sorted(params.items()))
