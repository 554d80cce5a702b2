"""The ``oneclass`` command line: fit, score, benchmark, report, datasets (and more).

Each command is one module of this package (see :mod:`oneclass.cli.common`); they are found by
name, so adding a command touches no other file. ``-v``/``-q`` set stdlib logging (and ``-q``
hides progress bars). A user error is one line on stderr and exit status 2; a broken pipe
(``oneclass score ... | head``) ends quietly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from types import ModuleType

from oneclass.cli.common import CliError, setup_logging

log = logging.getLogger("oneclass.cli")

#: commands listed first in ``--help``; any other command module follows alphabetically
ORDER = ("fit", "score", "embed", "export", "benchmark", "report", "datasets")
_NOT_COMMANDS = {"common"}


def command_modules() -> list[ModuleType]:
    """Returns the command modules of this package, in help order."""
    names = [
        m.name
        for m in pkgutil.iter_modules(__path__)
        if not m.name.startswith("_") and m.name not in _NOT_COMMANDS
    ]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    mods = [importlib.import_module(f"{__name__}.{n}") for n in names]
    return [m for m in mods if hasattr(m, "run") and hasattr(m, "add_arguments")]


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser with one sub-command per command module."""
    p = argparse.ArgumentParser(prog="oneclass", description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=1,
        default=0,
        help="debug logging",
    )
    g.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=-1,
        help="warnings only, no progress bars",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for mod in command_modules():
        cmd = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(cmd)
        cmd.set_defaults(func=mod.run)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 some work failed, 2 usage error)."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbosity)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # the reader went away (``| head``): stop quietly, and keep Python's exit flush quiet too
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except (CliError, ValueError, ImportError, OSError, RuntimeError) as exc:
        log.debug("traceback", exc_info=True)
        print(f"oneclass {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"oneclass {args.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["build_parser", "command_modules", "main"]
