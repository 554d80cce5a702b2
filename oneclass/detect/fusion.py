"""``fusion``: a weighted mean of several detectors' normalised in-class scores.

It follows :mod:`oneclass.detect.base`: higher score = more in-class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import StrOptions

from oneclass.detect.base import BaseDetector, State
from oneclass.detect.registry import make_detector
from oneclass.detect.validation import check_labels, check_matrix

NORMALIZERS = ("rank", "z")


def _spec(part: str | dict | BaseDetector) -> dict[str, Any]:
    """A detector spec as ``{"detector": name or spec string, "params": {...}}``.

    Returns:
        The part's spec; its ``params`` are keywords that override values in the spec string.
    """
    if isinstance(part, BaseDetector):
        return {"detector": part.name, "params": part.get_params(deep=False)}
    if isinstance(part, str):
        return {"detector": part, "params": {}}
    if isinstance(part, dict) and "detector" in part:
        return {"detector": part["detector"], "params": dict(part.get("params", {}))}
    raise ValueError(
        f"a fusion part must be a detector spec string, a dict with 'detector' "
        f"(and 'params'), or a detector; got {part!r}"
    )


class Fusion(BaseDetector):
    """A weighted mean of several detectors' normalised in-class scores.

    ``detectors``: specs (``"knn:k=5"``, ``{"detector": "clip-prompt", "params": {...}}``).
    Each part's score is normalised against its reference scores, the part's own calibration
    scores of the training positives (out-of-sample for cross-fitted parts):

    * ``"rank"``: the conformal rank ``(1 + #{ref <= s}) / (n + 1)``, in (0, 1];
    * ``"z"``: ``(s - mean(ref)) / std(ref)``.

    ``fit(X)`` fits every part on ``X``; the fusion's threshold comes from the parts' aligned
    calibration scores, combined. :meth:`from_fitted` fuses detectors fitted already (a
    zero-shot ``ClipPrompt`` with a few-shot ``knn``...) using held-out positives for the
    references and the threshold. The fitted parts are saved inside the fusion's own folder.

    Parameters of a part: a dict part's ``params`` override its spec string's values (the one
    precedence rule of :mod:`oneclass.registry`); the fusion's ``random_state`` is only a
    default for parts that set none themselves.
    """

    name = "fusion"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "detectors": [list, tuple],
        "weights": [None, "array-like"],
        "normalize": [StrOptions(set(NORMALIZERS))],
    }

    def __init__(
        self,
        detectors: Sequence[str | dict] = (),
        weights: Sequence[float] | None = None,
        normalize: str = "rank",
        target_tpr: float = 0.95,
        calibration_folds: int = 0,
        random_state: int | None = None,
        *,
        contamination: float | None = None,
    ):
        self.detectors = detectors
        self.weights = weights
        self.normalize = normalize
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    @classmethod
    def from_fitted(
        cls,
        detectors: Sequence[BaseDetector],
        X,
        y=None,
        *,
        weights: Sequence[float] | None = None,
        normalize: str = "rank",
        target_tpr: float = 0.95,
    ) -> Fusion:
        """Fuse fitted detectors; ``X`` (``y``) is held-out data none of them trained on."""
        if not detectors:
            raise ValueError("no detectors to fuse")
        if normalize not in NORMALIZERS:
            raise ValueError(f"normalize must be one of {NORMALIZERS}, got {normalize!r}")
        fus = cls(
            detectors=[_spec(d) for d in detectors],
            weights=weights,
            normalize=normalize,
            target_tpr=target_tpr,
        )
        X = check_matrix(X, what="held-out X")
        y = check_labels(y, X.shape[0], required=False)
        pos = X if y is None else X[y == 1]
        if pos.shape[0] < 2:
            raise ValueError("from_fitted needs at least 2 held-out positives")
        fus.parts_ = list(detectors)
        fus.weights_ = fus._check_weights()
        fus.n_features_in_ = X.shape[1]
        fus.references_ = [np.sort(d.score_samples(pos)) for d in fus.parts_]
        scores = fus._score(X)
        fus.set_threshold(
            scores if y is None else scores[y == 1],
            None if y is None else scores[y == 0],
            how="held-out",
        )
        return fus

    def _check_weights(self) -> np.ndarray:
        n = len(self.detectors)
        w = np.ones(n) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(
                f"weights must be {n} non-negative numbers with a positive sum, "
                f"got {self.weights!r}"
            )
        return w / w.sum()

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        specs = [_spec(p) for p in self.detectors]
        if not specs:
            raise ValueError("Fusion needs at least one detector")
        self.weights_ = self._check_weights()
        self.parts_ = []
        for s in specs:
            part = make_detector(s["detector"], **s["params"])
            if part.get_params(deep=False).get("random_state", 0) is None:
                # the fusion's seed is a default for parts that set none themselves
                part.set_params(random_state=self.random_state)
            self.parts_.append(part.fit(X, y))
        self.references_ = [np.sort(p.calibration_scores_) for p in self.parts_]

    def _normalised(self, i: int, s: np.ndarray) -> np.ndarray:
        ref = self.references_[i]
        if self.normalize == "rank":
            return (1.0 + np.searchsorted(ref, s, side="right")) / (ref.size + 1.0)
        return (s - ref.mean()) / max(float(ref.std()), 1e-12)

    def _combine(self, part_scores: list[np.ndarray]) -> np.ndarray:
        return sum(
            w * self._normalised(i, s)
            for i, (w, s) in enumerate(zip(self.weights_, part_scores, strict=True))
        )

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self._combine([p.score_samples(X) for p in self.parts_])

    def _training_scores(
        self, X: np.ndarray, y: np.ndarray | None
    ) -> tuple[np.ndarray, str, int | None]:
        # each part's out-of-sample training scores (minus its decision_scores_), row by row
        rows = [-p.decision_scores_ for p in self.parts_]
        missing = np.any([np.isnan(r) for r in rows], axis=0)
        combined = self._combine([np.where(missing, 0.0, r) for r in rows])
        return np.where(missing, np.nan, combined), "combined part calibration scores", None

    def _get_state(self) -> State:
        state = State(meta={"weights_": self.weights_.tolist(), "parts_": []})
        for i, part in enumerate(self.parts_):
            own = part.get_state()
            state.meta["parts_"].append(
                {"detector": part.name, "params": part.get_params(deep=False), "state": own.meta}
            )
            state.arrays.update({f"part{i}/{k}": v for k, v in own.arrays.items()})
            state.tensors.update({f"part{i}/{k}": v for k, v in own.tensors.items()})
            state.arrays[f"reference{i}"] = self.references_[i]
        return state

    def _set_state(self, state: State) -> None:
        self.weights_ = np.asarray(state.meta["weights_"], dtype=np.float64)
        self.parts_, self.references_ = [], []
        for i, entry in enumerate(state.meta["parts_"]):
            pre = f"part{i}/"
            arrays = {k[len(pre) :]: v for k, v in state.arrays.items() if k.startswith(pre)}
            tensors = {k[len(pre) :]: v for k, v in state.tensors.items() if k.startswith(pre)}
            if "base_state" in entry:  # format 1: state/base_state, det/ and base/ prefixes
                meta = {"model": entry["state"], "calibration": entry["base_state"]}
                arrays = {
                    ("model/" + k[4:] if k.startswith("det/") else "calibration/" + k[5:]): v
                    for k, v in arrays.items()
                }
                tensors = {"model/" + k[4:]: v for k, v in tensors.items()}
            else:
                meta = entry["state"]
            part = make_detector(str(entry["detector"]), **entry["params"])
            part.set_state(State(meta=meta, arrays=arrays, tensors=tensors))
            self.parts_.append(part)
            self.references_.append(np.asarray(state.arrays[f"reference{i}"], dtype=np.float64))
