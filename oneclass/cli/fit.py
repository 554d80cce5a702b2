"""``oneclass fit``: fit an embedder + detector on images and save the model folder."""

from __future__ import annotations

import argparse
import json
import logging

from oneclass.cli.common import (
    CliError,
    add_cache_arguments,
    cache_option,
    progress_enabled,
)

NAME = "fit"
HELP = "fit embedder + detector on images and save the model"
log = logging.getLogger("oneclass.cli.fit")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the options of ``fit``."""
    p.add_argument(
        "--embedder",
        required=True,
        help='NAME[:k=v,...], e.g. dlib-face, effnet-lite0, clip:model="hf-hub:org/x"',
    )
    p.add_argument("--detector", required=True, help="NAME[:k=v,...], e.g. knn:k=5")
    p.add_argument("--positives", nargs="+", required=True, help="folders, zips, lists, files")
    p.add_argument("--negatives", nargs="+", help="negatives (binary baselines need them)")
    p.add_argument(
        "--target-fpr",
        type=float,
        help="set the threshold at this false-positive rate on the negatives",
    )
    p.add_argument(
        "--finetune",
        action="store_true",
        help="adapt the embedder to the positives (and negatives) before fitting",
    )
    p.add_argument(
        "--auxiliary",
        nargs="+",
        metavar="SRC",
        help="with --finetune: images not of the class (outlier exposure)",
    )
    add_cache_arguments(p)
    p.add_argument(
        "--out",
        required=True,
        help="model folder to write (a new folder, or an existing oneclass model)",
    )


def run(a: argparse.Namespace) -> int:
    """Run ``fit``; returns the exit status."""
    from oneclass.persist import check_model_target
    from oneclass.pipeline import Pipeline

    if a.target_fpr is not None and not a.negatives:
        raise CliError("--target-fpr needs --negatives (the rate is measured on them)")
    if a.auxiliary and not a.finetune:
        raise CliError("--auxiliary is used only with --finetune")
    check_model_target(a.out)  # before any image is embedded
    progress = progress_enabled(a)
    embedder = a.embedder
    pipe = Pipeline(
        embedder, a.detector, cache=cache_option(a), progress=progress, target_fpr=a.target_fpr
    )
    pipe.validate(negatives=bool(a.negatives))  # bad specs fail here, before embedding
    if a.finetune:
        import oneclass

        log.info("fine-tuning %s on %d source(s) of positives", a.embedder, len(a.positives))
        pipe.embedder = oneclass.finetune(
            pipe.embedder_,
            a.positives,
            a.negatives or None,
            auxiliary=a.auxiliary or None,
            progress=progress,
        )
    pipe.fit(a.positives, a.negatives or None)
    pipe.save(a.out)
    rep = pipe.fit_report_
    det = pipe.detector_
    print(f"fitted {a.detector} on {pipe.embedder_spec}: {json.dumps(_summary(rep))}")
    print(f"threshold {det.threshold_:.6g} ({_calibration_text(det)}); saved to {a.out}")
    for item_id, reason in list(rep.get("failures", {}).items())[:20]:
        log.warning("failed: %s: %s", item_id, reason)
    return 0


def _calibration_text(det) -> str:
    info = getattr(det, "calibration_info_", None)
    if isinstance(info, dict) and info:
        return ", ".join(f"{k}={v}" for k, v in info.items())
    return str(getattr(det, "calibration_", ""))


def _summary(rep: dict) -> dict:
    return {k: v for k, v in rep.items() if k != "failures"} | {
        "failures": len(rep.get("failures", {}))
    }
