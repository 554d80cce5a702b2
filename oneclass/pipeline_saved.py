"""The pipeline's own fields in a saved model, written and read as a stranger's file is read.

- The embedder is saved as its registry spec without runtime options and without any option that
  reaches the network or chooses a download folder (``allow_download``, ``cache_dir``, ...).
  Reading a model whose spec names such an option is refused: they come only from the user's own
  call (``oneclass.load(path, embedder_options={...})``) or environment.
- ``no_face_score`` must be ``-inf`` or finite, ``target_fpr`` in ``[0, 1)`` or absent; the
  embedder must be a registered one with parameters it takes.
"""

from __future__ import annotations

import math
from typing import Any

from oneclass.embed.base import RUNTIME_PARAMS, Embedder, is_network_param
from oneclass.embed.registry import EMBEDDERS, embedder_spec
from oneclass.registry import format_spec, parse_spec

__all__ = ["check_saved_fields", "saved_embedder_spec", "spec_for_saving"]

#: longest embedder spec a model file may hold
MAX_SPEC_CHARS = 4096


def spec_for_saving(given: str | Embedder, built: Embedder) -> str:
    """Returns the embedder spec to save: the given spec, or the one derived from an Embedder,
    with runtime and network options removed.

    Raises:
        ValueError: an Embedder object whose class is not registered (it could not be rebuilt).
    """
    if not isinstance(given, str):
        return embedder_spec(built)
    name, params = parse_spec(given)
    keep = {k: v for k, v in params.items() if k not in RUNTIME_PARAMS and not is_network_param(k)}
    return format_spec(name, keep)


def saved_embedder_spec(value: Any) -> str:
    """Check the embedder spec read from a model file.

    Returns:
        The spec.

    Raises:
        ValueError: not a string, too long, an unknown embedder or parameter, or a parameter that
            reaches the network (the field is named).
    """
    if not isinstance(value, str) or not value or len(value) > MAX_SPEC_CHARS:
        raise ValueError(
            f"field 'embedder' must be an embedder spec (a string of at most "
            f"{MAX_SPEC_CHARS} characters), got {str(value)[:80]!r}"
        )
    name, params = parse_spec(value)
    network = sorted(k for k in params if is_network_param(k))
    if network:
        raise ValueError(
            f"field 'embedder' = {value!r} sets {', '.join(network)}: a saved model may not "
            f"enable downloads or choose a download folder (pass such options yourself: "
            f"oneclass.load(path, embedder_options={{...}}))"
        )
    if name not in EMBEDDERS:
        raise ValueError(
            f"field 'embedder': unknown embedder {name!r}; available: "
            f"{', '.join(EMBEDDERS.names())}"
        )
    EMBEDDERS.check_params(name, params)
    return value


def _number(header: dict[str, Any], field: str) -> float | None:
    value = header.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"field {field!r} = {value!r} is not a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"field {field!r} = {value!r} is not a number") from None


def check_saved_fields(header: dict[str, Any]) -> dict[str, Any]:
    """Read and check the pipeline fields of a model header.

    Returns:
        ``{"no_face_score": float, "target_fpr": float | None}`` for the Pipeline constructor.

    Raises:
        ValueError: NaN, +inf or an out-of-range value (the field is named).
    """
    nfs = _number(header, "no_face_score")
    nfs = -math.inf if nfs is None else nfs
    if math.isnan(nfs) or nfs == math.inf:
        raise ValueError(
            f"field 'no_face_score' = {header.get('no_face_score')!r}: must be "
            f"-inf or a finite number"
        )
    fpr = _number(header, "target_fpr")
    if fpr is not None and not (math.isfinite(fpr) and 0.0 <= fpr < 1.0):
        raise ValueError(f"field 'target_fpr' = {header.get('target_fpr')!r}: must be in [0, 1)")
    report = header.get("fit_report")
    if report is not None and not isinstance(report, dict):
        raise ValueError("field 'fit_report' must be a mapping")
    if not isinstance(header.get("embedder_name"), str):
        raise ValueError("field 'embedder_name' must be a string")
    return {"no_face_score": nfs, "target_fpr": fpr}
