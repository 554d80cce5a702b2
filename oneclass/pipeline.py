"""A whole model: an embedder, a detector and its calibration, fitted from images, saved safely.

How an image's vectors train the detector and how an image takes its score is decided by the
embedder's kind, in :mod:`oneclass.embed.aggregate` and nowhere else: whole images their one
vector; faces the largest face to train and the best face to score ("is he in this image?", with
that face's box); patches every patch to train and the mean of their least in-class 1 % to
score ("is any part wrong?"), the patch scores forming an anomaly map
(:meth:`Pipeline.score_details`).

An image with no face gets ``no_face_score`` (default ``-inf``: ranked below everything), status
``no_face``, no p-value and is never in-class; an image that cannot be read gets status
``failed: <reason>`` and no score. Neither stops a run. The embedding cache is on by default
(the one folder of :func:`oneclass.config.settings`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oneclass.calibrate import conformal_p_values
from oneclass.detect.base import BaseDetector
from oneclass.detect.registry import make_detector
from oneclass.embed import aggregate
from oneclass.embed.base import Embedder, EmbedderState, ImageEmbedding
from oneclass.embed.registry import embedder_from_state, embedder_spec, make_embedder
from oneclass.persist import detector_from_payload, detector_payload, write_bundle
from oneclass.pipeline_calibration import image_crossfit_scores
from oneclass.pipeline_inputs import EmbeddedImages, ImagesLike, as_items, embed_images
from oneclass.pipeline_maps import ScoreDetails
from oneclass.pipeline_saved import check_saved_fields, saved_embedder_spec, spec_for_saving

__all__ = ["Pipeline", "ScoreDetails", "as_items", "fit"]

BASE_COLUMNS = ["id", "path", "score", "p_value", "in_class", "status"]


class Pipeline:
    """Embedder + detector: ``fit(positives[, negatives])``, ``score(images)``, ``save(path)``.

    Args:
        embedder: a registry spec (``"effnet-lite0"``, ``"knn:k=5"`` style) or an Embedder.
        detector: a registry spec or a detector.
        embedder_options: keyword arguments for building ``embedder`` from its spec (they
            override the spec's values: e.g. ``{"allow_download": True}``); never saved.
        no_face_score: the score of an image without a face: ``-inf`` or a finite number.
        target_fpr: with negatives, set the threshold so that at most this fraction of them is
            accepted.
        cache: the embedding cache: ``True`` (default folder), ``False``, or a folder.
        progress: show progress bars.
    """

    def __init__(
        self,
        embedder: str | Embedder,
        detector: str | BaseDetector,
        *,
        embedder_options: dict[str, Any] | None = None,
        no_face_score: float = -math.inf,
        target_fpr: float | None = None,
        cache: Any = True,
        progress: bool = True,
    ):
        self.embedder = embedder
        self.detector = detector
        self.embedder_options = embedder_options
        self.no_face_score = no_face_score
        self.target_fpr = target_fpr
        self.cache = cache
        self.progress = progress

    # -- building blocks ------------------------------------------------------------------------
    @property
    def embedder_(self) -> Embedder:
        """The embedder, built from its spec on first use."""
        built = getattr(self, "_embedder", None)
        if built is None or getattr(self, "_embedder_from", None) is not self.embedder:
            built = (
                make_embedder(self.embedder, **(self.embedder_options or {}))
                if isinstance(self.embedder, str)
                else self.embedder
            )
            self._embedder, self._embedder_from = built, self.embedder
        return built

    @property
    def embedder_spec(self) -> str:
        """The embedder as a spec: as given, or derived from an Embedder's parameters."""
        if isinstance(self.embedder, str):
            return self.embedder
        if self.embedder.get_state() is not None:
            return self.embedder.name
        try:
            return embedder_spec(self.embedder)
        except (ValueError, TypeError):
            return self.embedder.name

    def validate(self, *, negatives: bool | None = None) -> None:
        """Check every option before any image is embedded.

        Args:
            negatives: whether negatives will be given (``None``: not known yet).

        Raises:
            ValueError: a bad spec, an unknown parameter, a value out of range, or a target FPR
                without negatives.
        """
        nfs = float(self.no_face_score)
        if math.isnan(nfs) or nfs == math.inf:
            raise ValueError(f"no_face_score must be -inf or a finite number, got {nfs}")
        if self.target_fpr is not None:
            fpr = float(self.target_fpr)
            if not 0.0 <= fpr < 1.0:
                raise ValueError(f"target_fpr must be in [0, 1), got {self.target_fpr}")
            if negatives is False:
                raise ValueError("target_fpr needs negatives: the rate is measured on them")
        det = self._new_detector()
        _check_values(det)
        if det.requires_negatives and negatives is False:
            raise ValueError(f"detector {det.name!r} is a binary baseline: give negatives")
        _check_values(self.embedder_)  # built: unknown embedders and parameters fail here

    def _new_detector(self) -> BaseDetector:
        return make_detector(self.detector) if isinstance(self.detector, str) else self.detector

    def _embed(self, images: ImagesLike) -> EmbeddedImages:
        return embed_images(self.embedder_, images, cache=self.cache, progress=self.progress)

    # -- the API --------------------------------------------------------------------------------
    def fit(self, positives: ImagesLike, negatives: ImagesLike | None = None) -> Pipeline:
        """Embed the images and fit the detector (binary baselines need ``negatives``).

        Returns:
            ``self``, fitted: ``detector_``, ``embedder_name_`` and ``fit_report_`` (counts).
        """
        self.validate(negatives=negatives is not None)
        det = self._new_detector()
        kind = self.embedder_.kind
        pos = self._embed(positives)
        train = aggregate.training_vectors(pos.embeddings, kind, what="positives")
        failures = {pos.ids[k]: r for k, r in pos.failures.items()}
        self.fit_report_: dict[str, Any] = {"positives": train.counts, "failures": failures}
        neg = None
        if negatives is not None:
            neg = self._embed(negatives)
            failures.update({neg.ids[k]: r for k, r in neg.failures.items()})
            self.fit_report_["negatives"] = _counts(neg.embeddings)
        if det.requires_negatives:
            assert neg is not None  # validate() refused a binary baseline without negatives
            ntrain = aggregate.training_vectors(neg.embeddings, kind, what="negatives")
            det.fit(
                np.vstack([train.X, ntrain.X]),
                np.r_[np.ones(len(train.X)), np.zeros(len(ntrain.X))],
            )
        else:
            det.fit(train.X)
            self._calibrate_images(det, train, len(pos), kind, neg)
        self.detector_ = det
        self.embedder_name_ = self.embedder_.name
        return self

    def _calibrate_images(
        self,
        det: BaseDetector,
        train: aggregate.TrainingSet,
        n_images: int,
        kind: str,
        neg: EmbeddedImages | None,
    ) -> None:
        """Threshold on image scores: patch images take their least in-class patches, so the
        detector's per-patch calibration is redone per image; negatives add their image scores
        (and set the threshold when ``target_fpr`` is given)."""
        info = dict(getattr(det, "calibration_info_", {}) or {})
        how, folds = str(info.get("method", "in-sample")), info.get("folds")
        pos = np.asarray(det.calibration_scores_, dtype=np.float64)
        rows_differ = aggregate.aggregation_for(kind).train == "all"
        if rows_differ and int(det.calibration_folds) == 0:  # in-sample, as asked
            row_scores = -np.asarray(det.decision_scores_, dtype=np.float64)
            per_image = aggregate.image_scores_from_rows(
                row_scores, train.image_index, n_images, kind
            )
            pos = per_image[np.isfinite(per_image)]
            how = f"{how}, per image"
        elif rows_differ:  # folds cut by image, not by patch
            per_image = image_crossfit_scores(
                det,
                train,
                n_images,
                kind,
                folds=int(det.calibration_folds),
                seed=getattr(det, "random_state", None),
            )
            pos = per_image[np.isfinite(per_image)]
            how, folds = "cross-fitted by image", int(det.calibration_folds)
        neg_scores = None
        if neg is not None:
            s = aggregate.score_images(neg.embeddings, kind, det.score_samples).scores
            neg_scores = s[np.isfinite(s)]
            if self.target_fpr is not None and not neg_scores.size:
                raise ValueError("target_fpr: no negative image gave a score")
        if rows_differ or neg_scores is not None:
            det.set_threshold(pos, neg_scores, how=how, target_fpr=self.target_fpr, folds=folds)

    def score(self, images: ImagesLike) -> pd.DataFrame:
        """Score images.

        Returns:
            One row per image: ``id`` (unique), ``path``, ``score`` (higher = more in-class),
            ``p_value`` (conformal; NaN unless scored), ``in_class`` (0/1), ``status`` (``ok``,
            ``no_face``, ``failed: <reason>``); face embedders add ``n_faces`` and the best
            face's ``box``. Empty input gives an empty table with these columns.
        """
        return self.score_details(images).table

    def score_details(self, images: ImagesLike) -> ScoreDetails:
        """Score images and keep the embeddings and per-vector scores (anomaly maps).

        Returns:
            A :class:`ScoreDetails`.
        """
        det = self.detector_
        self.check_embedder()
        kind = self.embedder_.kind
        emb = self._embed(images)
        res = aggregate.score_images(
            emb.embeddings, kind, det.score_samples, empty_score=float(self.no_face_score)
        )
        ok = np.array([s == "ok" for s in res.status], dtype=bool)
        p = np.full(len(emb), math.nan)
        if ok.any():
            p[ok] = conformal_p_values(det.calibration_scores_, res.scores[ok])
        status = [
            f"failed: {emb.failures.get(k, 'unreadable')}" if s == "failed" else s
            for k, s in enumerate(res.status)
        ]
        table = pd.DataFrame(
            {
                "id": pd.Series(emb.ids, dtype=object),
                "path": pd.Series(emb.uris, dtype=object),
                "score": res.scores,
                "p_value": p,
                "in_class": (ok & (res.scores >= det.threshold_)).astype(int),
                "status": pd.Series(status, dtype=object),
            },
            columns=BASE_COLUMNS,
        )
        if kind == "face":
            table["n_faces"] = res.n_vectors
            table["box"] = [
                _box(e, int(j)) for e, j in zip(emb.embeddings, res.decisive, strict=True)
            ]
        return ScoreDetails(table, emb, res)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save the model folder: embedder spec (or a stateful embedder's weights), detector,
        calibration. No images, no pickle, no download options.

        Returns:
            The model folder.
        """
        entry, arrays, tensors = detector_payload(self.detector_)
        state = self.embedder_.get_state()
        header: dict[str, Any] = {
            "kind": "pipeline",
            "embedder_name": self.embedder_name_,
            "no_face_score": repr(float(self.no_face_score)),
            "target_fpr": self.target_fpr,
            "fit_report": _counts_only(self.fit_report_),
            **entry,
        }
        embedder_files = None
        if state is not None:
            header["embedder"] = {"state": state.config.get("kind")}
            embedder_files = (state.config, state.tensors)
        else:
            header["embedder"] = spec_for_saving(self.embedder, self.embedder_)
        return write_bundle(path, header, arrays, tensors, embedder=embedder_files)

    @classmethod
    def from_bundle(
        cls,
        header: dict[str, Any],
        arrays: dict[str, np.ndarray],
        tensors: dict[str, Any],
        *,
        embedder_options: dict[str, Any] | None = None,
        cache: Any = True,
        progress: bool = True,
    ) -> Pipeline:
        """Rebuild a fitted pipeline from what :func:`oneclass.persist.read_bundle` read.

        ``embedder_options`` (e.g. ``{"allow_download": True}``) come from the caller only.

        Returns:
            The pipeline.

        Raises:
            ValueError: a field out of range, an embedder spec that names network options, an
                unknown embedder; ``KeyError``: a missing field.
        """
        fields = check_saved_fields(header)
        det = detector_from_payload(header, arrays, tensors)
        emb_state = header.get("_embedder_state")
        embedder: str | Embedder
        if emb_state is not None:
            config, emb_tensors = emb_state
            embedder = embedder_from_state(
                EmbedderState(config=config, tensors=emb_tensors), **(embedder_options or {})
            )
            embedder_options = None
        else:
            spec = saved_embedder_spec(header["embedder"])
            embedder = spec
        pipe = cls(
            embedder,
            det,
            embedder_options=embedder_options,
            cache=cache,
            progress=progress,
            **fields,
        )
        pipe.detector_ = det
        pipe.embedder_name_ = str(header["embedder_name"])
        pipe.fit_report_ = dict(header.get("fit_report") or {})
        return pipe

    def use_embedder(self, embedder: Embedder) -> None:
        """Score with another implementation of the fitted embedder (e.g. the onnxruntime one,
        :func:`oneclass.export.onnx_pipeline`): ``embedder.base`` must be the fitted embedder.

        Raises:
            ValueError: ``embedder`` does not wrap the embedder this model was fitted with.
        """
        base = getattr(embedder, "base", embedder)
        if base.name != self.embedder_name_:
            raise ValueError(
                f"model was fitted with embedder {self.embedder_name_!r}, not {base.name!r}"
            )
        self._embedder, self._embedder_from = embedder, self.embedder

    def check_embedder(self) -> None:
        """Raise ``ValueError`` if the embedder built here is not the one the model was fitted
        with (other weights or preprocessing would give meaningless scores)."""
        if getattr(self.embedder_, "base", self.embedder_).name != self.embedder_name_:
            raise ValueError(
                f"model was fitted with embedder {self.embedder_name_!r}, but "
                f"{self.embedder_spec!r} builds {self.embedder_.name!r}"
            )


def _check_values(obj: Any) -> None:
    """Run an object's public parameter check (``validate_params`` or ``check_params``)."""
    for hook in ("validate_params", "check_params"):
        check = getattr(obj, hook, None)
        if callable(check):
            check()
            return


def _counts(embs: list[ImageEmbedding | None]) -> dict[str, int]:
    return {
        "images": len(embs),
        "used": sum(1 for e in embs if e is not None and e.vectors.shape[0] > 0),
        "no_face": sum(1 for e in embs if e is not None and e.vectors.shape[0] == 0),
        "failed": sum(1 for e in embs if e is None),
    }


def _box(emb: ImageEmbedding | None, j: int) -> str:
    if emb is None or emb.boxes is None or j < 0 or j >= len(emb.boxes):
        return ""
    return " ".join(f"{v:.0f}" for v in emb.boxes[j])


def _counts_only(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "failures"} | {
        "n_failures": len(report.get("failures", {}))
    }


def fit(
    embedder: str | Embedder,
    detector: str | BaseDetector,
    positives: ImagesLike,
    negatives: ImagesLike | None = None,
    **kw: Any,
) -> Pipeline:
    """Fit a :class:`Pipeline` in one call: ``oneclass.fit("dlib-face", "knn", "photos/")``.

    Returns:
        The fitted pipeline.
    """
    return Pipeline(embedder, detector, **kw).fit(positives, negatives)
