"""Checks for the values of a suite file: each names the file and the key it rejects.

A check is ``check(value, where) -> value`` (``where`` is ``"file.yaml: key.sub[2]"``); it raises
:class:`SuiteError` with that location and what was expected. :mod:`oneclass.bench.suite` declares
the suite format with these checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any, str], Any]


class SuiteError(ValueError):
    """A suite file that cannot be run as written (the message names the file and the key)."""


def show(value: Any) -> str:
    """Returns a short description of ``value`` for an error message."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def text(value: Any, where: str) -> str:
    """Returns ``value`` if it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise SuiteError(f"{where}: expected a non-empty string, got {show(value)}")
    return value


def optional_text(value: Any, where: str) -> str:
    """Returns ``value`` if it is a string (may be empty)."""
    if not isinstance(value, str):
        raise SuiteError(f"{where}: expected a string, got {show(value)}")
    return value


def boolean(value: Any, where: str) -> bool:
    """Returns ``value`` if it is ``true`` or ``false``."""
    if not isinstance(value, bool):
        raise SuiteError(f"{where}: expected true or false, got {show(value)}")
    return value


def integer(low: int | None = None) -> Check:
    """Returns a check for an integer ``>= low``."""

    def check(value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SuiteError(f"{where}: expected an integer, got {show(value)}")
        if low is not None and value < low:
            raise SuiteError(f"{where}: must be >= {low}, got {value}")
        return value

    return check


def fraction(value: Any, where: str) -> float:
    """Returns ``value`` if it is a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise SuiteError(f"{where}: expected a number between 0 and 1, got {show(value)}")
    return float(value)


def choice(*options: str) -> Check:
    """Returns a check for one of ``options``."""

    def check(value: Any, where: str) -> str:
        if value not in options:
            raise SuiteError(f"{where}: expected one of {list(options)}, got {show(value)}")
        return str(value)

    return check


def list_of(item: Check, *, non_empty: bool = False) -> Check:
    """Returns a check for a YAML list whose items pass ``item``; a bare string is refused (it
    is not a list of its characters: ``detectors: knn`` must be ``detectors: [knn]``)."""

    def check(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            hint = f" (write [{value}])" if isinstance(value, str | int) else ""
            raise SuiteError(f"{where}: expected a list, got {show(value)}{hint}")
        if non_empty and not value:
            raise SuiteError(f"{where}: the list is empty")
        return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]

    return check


def count_or_all(value: Any, where: str) -> int | str:
    """Returns a positive integer or the word ``all``."""
    if value == "all":
        return "all"
    return integer(1)(value, where)


def at(where: str, key: str) -> str:
    """Returns the location of ``key`` inside ``where``: ``"file.yaml: key"`` at the top level,
    ``"file.yaml: outer.key"`` below it."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def mapping(keys: Mapping[str, Check], *, required: tuple[str, ...] = ()) -> Check:
    """Returns a check for a mapping with only ``keys`` (each checked), ``required`` present."""

    def check(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise SuiteError(f"{where}: expected a mapping, got {show(value)}")
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            raise SuiteError(f"{where}: unknown keys {unknown}; known: {sorted(keys)}")
        missing = [k for k in required if k not in value]
        if missing:
            raise SuiteError(f"{where}: missing required key {missing[0]!r}")
        return {k: keys[k](v, at(where, k)) for k, v in value.items()}

    return check


def mapping_of(item: Check) -> Check:
    """Returns a check for a mapping of names to values that pass ``item``."""

    def check(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise SuiteError(f"{where}: expected a mapping, got {show(value)}")
        return {text(k, f"{where} (key)"): item(v, at(where, str(k))) for k, v in value.items()}

    return check


#: a data entry: ``{dataset: NAME[, subset][, label][, sample][, sample_seed]}`` or ``{source}``
ENTRY_KEYS: dict[str, Check] = {
    "dataset": text,
    "subset": text,
    "source": text,
    "label": text,
    "sample": integer(1),
    "sample_seed": integer(0),
}
entry = mapping(ENTRY_KEYS)
