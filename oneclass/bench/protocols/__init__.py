"""The protocol registry: a suite's ``protocol:`` name -> the module that plans its tasks.

Adding a protocol is one module (a :class:`~oneclass.bench.protocols.base.Protocol` subclass that
declares its suite keys and its report views) plus one line here and its test. The runner and
the report ask the protocol; neither knows protocol names, and a setting no protocol declares
is still reported (as a ranking).
"""

from __future__ import annotations

from oneclass.bench.protocols.base import (
    Protocol,
    Task,
    View,
    Work,
    group_halves,
    sample,
    split_groups,
)
from oneclass.bench.protocols.families import positives_vs_families
from oneclass.bench.protocols.one_vs_rest import one_vs_rest
from oneclass.registry import Registry

PROTOCOLS = Registry(
    "protocol",
    {
        "positives-vs-families": "oneclass.bench.protocols.families:PositivesVsFamilies",
        "one-vs-rest": "oneclass.bench.protocols.one_vs_rest:OneVsRest",
        "normal-vs-defect": "oneclass.bench.protocols.normal_vs_defect:NormalVsDefect",
        "adbench": "oneclass.bench.protocols.adbench:ADBench",
    },
)

#: the view of a setting that no protocol declares: a ranking table, never dropped
DEFAULT_VIEW_KIND = "ranking"


def available_protocols() -> list[str]:
    """Returns the registered protocol names."""
    return PROTOCOLS.names()


def get_protocol(name: str) -> Protocol:
    """Returns the protocol registered as ``name``; ``ValueError`` naming the known ones."""
    protocol: Protocol = PROTOCOLS.make(name)
    return protocol


def views_for(protocol: str | None, settings: list[str]) -> list[View]:
    """Returns how the report shows each of ``settings``: the protocol's declared views first,
    in its order; a setting it does not declare (or of an unknown protocol) as the view another
    protocol declares for it, else as a ranking."""
    declared: list[View] = []
    if protocol in available_protocols():
        declared = list(get_protocol(str(protocol)).views)
    others = [v for name in available_protocols() for v in get_protocol(name).views]
    out = [v for v in declared if v.setting in settings]
    for s in settings:
        if any(v.setting == s for v in out):
            continue
        known = next((v for v in others if v.setting == s), None)
        out.append(known or View(s, DEFAULT_VIEW_KIND, f"Setting {s}"))
    return out


__all__ = [
    "PROTOCOLS",
    "Protocol",
    "Task",
    "View",
    "Work",
    "available_protocols",
    "get_protocol",
    "group_halves",
    "one_vs_rest",
    "positives_vs_families",
    "sample",
    "split_groups",
    "views_for",
]
