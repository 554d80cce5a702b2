"""``oneclass export``: write a model's embedder network as ONNX, with what serving it needs."""

from __future__ import annotations

import argparse
import logging

from oneclass.cli.common import CliError

NAME = "export"
HELP = "export a model's embedder network to ONNX (+ preprocessing JSON and detector state)"
log = logging.getLogger("oneclass.cli.export")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``export``."""
    p.add_argument("--model", required=True, help="a model folder written by `oneclass fit`")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="export format")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "int8"),
        help="int8: dynamically quantised weights (own vectors, report their cosine)",
    )


def run(a: argparse.Namespace) -> int:
    """Run ``export``; returns the exit status."""
    from oneclass.export import export_model

    if not str(a.out).endswith(".onnx"):
        raise CliError(f"--out must name a .onnx file, got {a.out!r}")
    try:
        path = export_model(a.model, a.out, precision=a.precision)
    except NotImplementedError as exc:
        raise CliError(str(exc)) from None
    log.info("exported %s -> %s (+ .json, .model/)", a.model, path)
    return 0
