"""Zero-shot ``clip-prompt`` detector: an image's CLIP similarity to text prompts.

It follows :mod:`oneclass.detect.base`: higher score = more in-class.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from oneclass.detect.base import BaseDetector, State
from oneclass.detect.validation import check_matrix

AGGREGATES = ("auto", "max", "mean", "softmax")


def _unit_rows(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _prompt_list(prompts, what: str) -> list[str]:
    if isinstance(prompts, str):
        prompts = [prompts]
    out = list(prompts or ())
    bad = [p for p in out if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(f"{what} must be non-empty strings, got {bad[:3]!r}")
    return out


class ClipPrompt(BaseDetector):
    """In-class score = cosine similarity of an image's CLIP vector to text prompts.

    ``X`` holds CLIP image vectors (e.g. from ``ClipEmbedder``); the detector holds the prompts'
    text vectors from the same model. Scores, by ``aggregate``:

    * ``"max"`` / ``"mean"``: the max / mean cosine over ``prompts``, minus the max / mean over
      ``negative_prompts`` when there are any;
    * ``"softmax"``: the probability CLIP gives to the positive prompts against the negative ones,
      ``softmax(temperature * cosines)`` summed over positives (``temperature=100`` is CLIP's);
    * ``"auto"``: ``"softmax"`` with negative prompts, else ``"max"``.

    Positives are needed only for the threshold, never for the score:

    * ``fit(X)`` (>= 2 positive image vectors) computes the text vectors with
      ``make_embedder(embedder)`` (unless set already) and sets ``threshold_`` from the scores
      of ``X``. Nothing is learnt from ``X``, so these in-sample scores are as honest as
      held-out ones (``calibration_folds`` is not used).
    * :meth:`from_text` (an embedder at hand) or :meth:`from_vectors` (text vectors at hand) need
      no positives at all: the threshold is 0.5 for ``"softmax"`` (positive prompts more likely
      than negative ones) or the ``threshold`` you give; ``calibrate(X, y)`` re-sets it from
      held-out data later. ``p_value`` needs calibration scores, so it works after ``fit`` or
      ``calibrate``.
    """

    name = "clip-prompt"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **BaseDetector._parameter_constraints,
        "prompts": [str, "array-like"],
        "negative_prompts": [str, "array-like"],
        "embedder": [str, None, object],
        "aggregate": [StrOptions(set(AGGREGATES))],
        "temperature": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        prompts: Sequence[str] = (),
        negative_prompts: Sequence[str] = (),
        embedder: str | None = "clip",
        aggregate: str = "auto",
        temperature: float = 100.0,
        target_tpr: float = 0.95,
        calibration_folds: int = 0,
        random_state: int | None = None,
        *,
        contamination: float | None = None,
    ):
        self.prompts = prompts
        self.negative_prompts = negative_prompts
        self.embedder = embedder
        self.aggregate = aggregate
        self.temperature = temperature
        self.target_tpr = target_tpr
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.contamination = contamination

    # ---- building from text ---------------------------------------------------------------
    @classmethod
    def from_text(
        cls,
        embedder,
        prompts: Sequence[str],
        negative_prompts: Sequence[str] = (),
        *,
        threshold: float | None = None,
        **params,
    ) -> ClipPrompt:
        """A ready detector from a loaded CLIP embedder (one with ``embed_text``), no positives
        needed; see the class docstring for the threshold."""
        if not hasattr(embedder, "embed_text"):
            raise ValueError(
                f"{type(embedder).__name__} has no embed_text: a CLIP embedder "
                f"is needed to turn prompts into vectors"
            )
        prompts = _prompt_list(prompts, "prompts")
        negative_prompts = _prompt_list(negative_prompts, "negative_prompts")
        if not prompts:
            raise ValueError("no prompts given")
        neg = embedder.embed_text(negative_prompts) if negative_prompts else None
        return cls.from_vectors(
            embedder.embed_text(prompts),
            neg,
            prompts=prompts,
            negative_prompts=negative_prompts,
            threshold=threshold,
            embedder_name=embedder.name,
            **{"embedder": None, **params},
        )

    @classmethod
    def from_vectors(
        cls,
        text_vectors,
        negative_vectors=None,
        *,
        prompts: Sequence[str] = (),
        negative_prompts: Sequence[str] = (),
        threshold: float | None = None,
        embedder_name: str = "",
        **params,
    ) -> ClipPrompt:
        """A ready detector from text vectors (``(n, dim)``, one row per prompt)."""
        det = cls(
            prompts=list(prompts),
            negative_prompts=list(negative_prompts),
            **{"embedder": None, **params},
        )
        det.set_text_vectors(text_vectors, negative_vectors, embedder_name=embedder_name)
        det.n_features_in_ = det.text_vectors_.shape[1]
        if threshold is None:
            if det._aggregate() != "softmax":
                raise ValueError(
                    "a zero-shot detector without negative prompts has no natural threshold: "
                    "pass threshold=<cosine>, give negative_prompts (softmax, threshold 0.5), "
                    "or fit(X) on a few positives"
                )
            threshold = 0.5
        det.threshold_ = float(threshold)
        det.calibration_scores_ = np.empty(0, dtype=np.float64)
        det.calibration_negative_scores_ = None
        det.calibration_ = "zero-shot (no calibration data)"
        det.calibration_info_ = {
            "method": "zero-shot",
            "folds": None,
            "target": None,
            "value": None,
        }
        return det

    def set_text_vectors(
        self, text_vectors, negative_vectors=None, *, embedder_name: str = ""
    ) -> ClipPrompt:
        """Set the prompts' text vectors (rows L2-normalised here)."""
        pos = check_matrix(text_vectors, what="text_vectors")
        dim = pos.shape[1]
        neg = (
            np.empty((0, dim))
            if negative_vectors is None or len(negative_vectors) == 0
            else check_matrix(negative_vectors, what="negative text vectors", n_features=dim)
        )
        self.text_vectors_ = _unit_rows(pos)
        self.negative_text_vectors_ = _unit_rows(neg) if neg.size else neg
        self.embedder_name_ = str(embedder_name)
        self.text_prompts_ = [str(p) for p in _prompt_list(self.prompts, "prompts")]
        self.text_negative_prompts_ = [
            str(p) for p in _prompt_list(self.negative_prompts, "negative_prompts")
        ]
        return self

    # ---- the detector hooks ---------------------------------------------------------------
    def _aggregate(self) -> str:
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {self.aggregate!r}")
        has_neg = len(getattr(self, "negative_text_vectors_", ())) > 0 or bool(
            _prompt_list(self.negative_prompts, "negative_prompts")
        )
        if self.aggregate == "auto":
            return "softmax" if has_neg else "max"
        if self.aggregate == "softmax" and not has_neg:
            raise ValueError("aggregate='softmax' needs negative_prompts")
        return self.aggregate

    def _text_is_current(self) -> bool:
        return (
            hasattr(self, "text_vectors_")
            and self.text_prompts_ == _prompt_list(self.prompts, "prompts")
            and self.text_negative_prompts_
            == _prompt_list(self.negative_prompts, "negative_prompts")
        )

    def _fit_model(self, X: np.ndarray, y: np.ndarray | None) -> None:
        self._aggregate()
        if not self._text_is_current():
            prompts = _prompt_list(self.prompts, "prompts")
            if not prompts:
                raise ValueError("ClipPrompt needs prompts, e.g. ['a photo of Nicolas Cage']")
            if not self.embedder:
                raise ValueError(
                    "no text vectors for these prompts and no embedder to compute "
                    "them: pass embedder='clip:...' or use ClipPrompt.from_text"
                )
            from oneclass.embed.registry import make_embedder

            emb = make_embedder(self.embedder) if isinstance(self.embedder, str) else self.embedder
            negs = _prompt_list(self.negative_prompts, "negative_prompts")
            self.set_text_vectors(
                emb.embed_text(prompts),
                emb.embed_text(negs) if negs else None,
                embedder_name=emb.name,
            )
        dim = self.text_vectors_.shape[1]
        if X.shape[1] != dim:
            raise ValueError(
                f"X has {X.shape[1]} features but the text vectors have {dim}: "
                f"X must be image vectors of the same CLIP model"
            )

    def _training_scores(
        self, X: np.ndarray, y: np.ndarray | None
    ) -> tuple[np.ndarray, str, int | None]:
        # nothing was learnt from X: in-sample scores are out-of-sample
        return self._score(X), "training scores (prompt scores do not depend on them)", None

    def _score(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.text_vectors_.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features, the text vectors {self.text_vectors_.shape[1]}"
            )
        x = _unit_rows(X)
        pos = x @ self.text_vectors_.T
        neg = x @ self.negative_text_vectors_.T if len(self.negative_text_vectors_) else None
        how = self._aggregate()
        if how == "softmax":
            assert neg is not None  # _aggregate() chose softmax: there are negative prompts
            logits = float(self.temperature) * np.hstack([pos, neg])
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            return p[:, : pos.shape[1]].sum(axis=1) / p.sum(axis=1)
        agg = np.max if how == "max" else np.mean
        score = agg(pos, axis=1)
        return score - agg(neg, axis=1) if neg is not None else score

    def _get_state(self) -> State:
        return State(
            meta={
                "embedder_name_": self.embedder_name_,
                "text_prompts_": self.text_prompts_,
                "text_negative_prompts_": self.text_negative_prompts_,
            },
            arrays={
                "text_vectors_": self.text_vectors_,
                "negative_text_vectors_": self.negative_text_vectors_,
            },
        )

    def _set_state(self, state: State) -> None:
        self.text_vectors_ = np.asarray(state.arrays["text_vectors_"], dtype=np.float64)
        self.negative_text_vectors_ = np.asarray(
            state.arrays["negative_text_vectors_"], dtype=np.float64
        )
        self.embedder_name_ = str(state.meta["embedder_name_"])
        self.text_prompts_ = list(state.meta["text_prompts_"])
        self.text_negative_prompts_ = list(state.meta["text_negative_prompts_"])
