"""What every ``oneclass`` command shares: logging, the cache option, writing tables safely.

A command module (``oneclass/cli/<name>.py``) defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; :mod:`oneclass.cli` finds it by itself, so
a new command is one new module. Heavy imports go inside ``run`` so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("oneclass")


class CliError(Exception):
    """A user error a command reports as one line (exit status 2), without a traceback."""


def setup_logging(verbosity: int) -> None:
    """Configure stdlib logging for the ``oneclass`` loggers.

    Args:
        verbosity: ``-1`` (``-q``: warnings and errors), ``0`` (default: info), ``1``+
            (``-v``: debug).
    """
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(message)s" if verbosity <= 0 else "%(levelname)s %(name)s: %(message)s"
        )
    )
    root = logging.getLogger("oneclass")
    for h in list(root.handlers):
        if getattr(h, "_oneclass_cli", False):
            root.removeHandler(h)
    handler._oneclass_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def progress_enabled(args: argparse.Namespace) -> bool:
    """Returns whether progress bars are shown (not with ``-q``)."""
    return int(getattr(args, "verbosity", 0)) >= 0


def add_cache_arguments(p: argparse.ArgumentParser) -> None:
    """``--cache DIR`` / ``--no-cache`` (default: the one cache folder of ``oneclass.config``)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--cache",
        metavar="DIR",
        help="embedding cache folder (default: $ONECLASS_CACHE or ~/.cache/oneclass)",
    )
    g.add_argument("--no-cache", action="store_true", help="embed without the embedding cache")


def cache_option(args: argparse.Namespace) -> str | bool:
    """Returns what to pass as ``cache=``: a folder, ``True`` (the default cache) or ``False``."""
    if getattr(args, "no_cache", False):
        return False
    return args.cache if getattr(args, "cache", None) else True


def write_table(df: Any, out: str | Path | None) -> None:
    """Write a pandas DataFrame as CSV (cells neutralised) to ``out`` atomically, or to stdout."""
    from oneclass.outputs import write_csv_atomic, write_csv_stream

    if out:
        write_csv_atomic(df, out)
    else:
        write_csv_stream(df, sys.stdout)
        sys.stdout.flush()
