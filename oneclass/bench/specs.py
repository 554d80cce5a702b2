"""Every embedder and detector a suite names, built (never fitted) before any image is touched:
an unknown name, an unknown ``key=value`` or a misspelt ``--detectors`` is an error naming the
file and the spec, not a traceback after an hour of embedding."""

from __future__ import annotations

from oneclass.bench.suite import FINETUNE, Suite, SuiteError


def _check_spec(kind: str, spec: str, where: str) -> None:
    from oneclass.detect.registry import make_detector
    from oneclass.embed.registry import make_embedder

    make = make_embedder if kind == "embedder" else make_detector
    try:
        make(spec)
    except (ValueError, TypeError, ImportError, KeyError) as exc:
        raise SuiteError(f"{where}: {kind} {spec!r}: {exc}") from None


def _check_finetune(spec: str, where: str) -> None:
    from oneclass.registry import parse_spec

    try:
        _, params = parse_spec(spec)
    except ValueError as exc:
        raise SuiteError(f"{where}: embedder {spec!r}: {exc}") from None
    base = params.get("base")
    if not isinstance(base, str) or not base:
        raise SuiteError(f"{where}: embedder {spec!r}: a fine-tuned embedder needs base=SPEC")
    _check_spec("embedder", base, where)
    try:
        from oneclass.embed.finetune import FinetuneOptions
    except ImportError as exc:
        raise SuiteError(
            f"{where}: embedder {spec!r}: fine-tuning is not available ({exc})"
        ) from None
    known = set(FinetuneOptions.__dataclass_fields__) | {"base", "auxiliary"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise SuiteError(
            f"{where}: embedder {spec!r}: unknown fine-tuning option(s) {unknown}; "
            f"known: {sorted(known)}"
        )


def check_specs(
    suite: Suite, *, embedders: list[str] | None = None, detectors: list[str] | None = None
) -> None:
    """Build (never fit) every embedder and detector a run of ``suite`` will use.

    ``embedders`` replace the suite's; ``detectors`` restrict it and must each be one of the
    suite's detectors (a misspelt ``--detectors knnn`` is an error, not an empty run).

    Raises:
        SuiteError: an unknown name or parameter, with the file and the spec.
    """
    where = suite.path or suite.name
    for unit in suite.units:
        for i, row in enumerate(unit.rows):
            at = f"{where}: {unit.name}: embedders[{i}]"
            if row.finetuned:
                _check_finetune(row.spec, at)
            elif row.spec != "none":
                _check_spec("embedder", row.spec, at)
    for spec in embedders or []:
        if spec.split(":", 1)[0] == FINETUNE:
            _check_finetune(spec, "--embedders")
        else:
            _check_spec("embedder", spec, "--embedders")
    used: list[str] = []
    for unit in suite.units:
        names = list(unit.detectors) + list(unit.baselines.get("detectors", []))
        if unit.label_efficiency:
            names.append(unit.label_efficiency.get("detector", "logistic"))
        for row in unit.rows:
            names += (row.detectors or []) + (row.baselines or [])
        for spec in dict.fromkeys(names):
            _check_spec("detector", spec, f"{where}: {unit.name}: detectors")
        used += names
    for spec in detectors or []:
        if spec not in used:
            raise SuiteError(
                f"--detectors {spec}: not a detector of {where} (its detectors: "
                f"{', '.join(dict.fromkeys(used))})"
            )
