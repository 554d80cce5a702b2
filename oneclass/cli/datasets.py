"""``oneclass datasets``: what the manifests know; verify the local copies; fetch URL sets."""

from __future__ import annotations

import argparse
import logging

NAME = "datasets"
HELP = "what the manifests know; verify; fetch"
log = logging.getLogger("oneclass.cli.datasets")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``datasets``."""
    p.add_argument("action", choices=["list", "verify", "fetch"])
    p.add_argument("names", nargs="*", help="data sets (default: all)")


def run(a: argparse.Namespace) -> int:
    """Run ``datasets``; returns 1 when a data set has a problem or could not be fetched."""
    from oneclass.data import manifests

    names = a.names or manifests.available_datasets()
    if a.action == "list":
        for name in names:
            m = manifests.load_manifest(name)
            print(f"{name:12s} {m.get('description', '')}")
        print(f"data root: {manifests.data_root()}")
        return 0
    bad = 0
    for name in names:
        if a.action == "verify":
            rep = manifests.verify(name)
            ok = rep.get("ok", False)
            bad += not ok
            print(f"{name:12s} {'ok' if ok else 'PROBLEM'}  {rep.get('message', '')}")
            continue
        try:
            print(f"{name:12s} {manifests.fetch(name)}")
        except Exception as exc:  # noqa: BLE001 - one set's problem never stops the others
            if not a.names and "no URLs to download" in str(exc):
                print(f"{name:12s} local files (nothing to fetch)")
                continue
            bad += 1
            print(f"{name:12s} PROBLEM  {exc}")
            if type(exc).__name__ == "OfflineError":
                log.warning("offline: not trying the other data sets")
                return 1
    return 1 if bad else 0
