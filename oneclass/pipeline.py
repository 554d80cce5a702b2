"""A whole model: an embedder, a detector and its calibration, fitted from images, saved safely.

Face embedders: training uses the largest face of each positive image; at scoring time every face
is scored and the image takes its best face ("is he in this image?"), with that face's box. An image
with no face gets ``no_face_score`` (default ``-inf``: ranked below everything) and status
``no_face``; an image that cannot be read gets status ``failed: <reason>`` and no score. Neither
stops a run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from oneclass import calibrate as cal
from oneclass.detect.base import BaseDetector
from oneclass.detect.registry import make_detector
from oneclass.embed.base import Embedder
from oneclass.embed.registry import make_embedder
from oneclass.persist import detector_from_payload, detector_payload, write_bundle

ImagesLike = Any  # a source spec (folder, zip, list, "dataset:name"), paths, ImageItems, PIL images


def as_items(images: ImagesLike) -> list:
    """Turn paths, source specs and ImageItems (or lists of them) into ImageItems."""
    from oneclass.data.sources import ImageItem, open_source

    if isinstance(images, str | Path | ImageItem):
        images = [images]
    items: list = []
    for x in images:
        if isinstance(x, ImageItem):
            items.append(x)
        elif isinstance(x, str | Path):
            items.extend(open_source(x))
        else:
            raise TypeError(f"cannot read images from {type(x).__name__}: {x!r}")
    return items


class Pipeline:
    """Embedder + detector. ``fit(positives[, negatives])``, ``score(images)``, ``save(path)``."""

    def __init__(self, embedder: str | Embedder, detector: str | BaseDetector, *,
                 no_face_score: float = -math.inf, target_fpr: float | None = None,
                 cache: str | Path | None = None, progress: bool = True):
        self.embedder = embedder
        self.detector = detector
        self.no_face_score = no_face_score
        self.target_fpr = target_fpr
        self.cache = cache
        self.progress = progress

    # -- building blocks ------------------------------------------------------------------------
    @property
    def embedder_(self) -> Embedder:
        if not hasattr(self, "_embedder"):
            self._embedder = (make_embedder(self.embedder) if isinstance(self.embedder, str)
                              else self.embedder)
        return self._embedder

    @property
    def embedder_spec(self) -> str:
        return self.embedder if isinstance(self.embedder, str) else self.embedder_.name

    def _embed(self, images: ImagesLike):
        """(ids, uris, ImageEmbedding-or-None per image, {id: failure reason})."""
        if isinstance(images, Image.Image) or (
            isinstance(images, list | tuple) and images and isinstance(images[0], Image.Image)
        ):
            imgs = [images] if isinstance(images, Image.Image) else list(images)
            embs = self.embedder_.embed(imgs, progress=self.progress)
            ids = [f"image[{i}]" for i in range(len(imgs))]
            return ids, ids, embs, {}
        from oneclass.embed.cache import EmbeddingCache, embed_items

        items = as_items(images)
        cache = EmbeddingCache(self.cache) if self.cache else None
        out = embed_items(self.embedder_, items, cache=cache, progress=self.progress)
        failures = {f.item.id: f.reason for f in out.failures}
        return [i.id for i in items], [i.uri for i in items], out.embeddings, failures

    @staticmethod
    def _training_matrix(embs, what: str) -> tuple[np.ndarray, dict[str, int]]:
        vecs = [e.vectors[e.largest()] for e in embs if e is not None and e.n_faces > 0]
        counts = {"images": len(embs), "used": len(vecs),
                  "no_face": sum(1 for e in embs if e is not None and e.n_faces == 0),
                  "failed": sum(1 for e in embs if e is None)}
        if not vecs:
            raise ValueError(f"no usable {what}: {counts}")
        return np.stack(vecs).astype(np.float64), counts

    # -- the API --------------------------------------------------------------------------------
    def fit(self, positives: ImagesLike, negatives: ImagesLike | None = None) -> Pipeline:
        """Embed the images and fit the detector (binary baselines need ``negatives``)."""
        det = make_detector(self.detector) if isinstance(self.detector, str) else self.detector
        _, _, pos_embs, pos_fail = self._embed(positives)
        X, pos_counts = self._training_matrix(pos_embs, "positives")
        self.fit_report_: dict[str, Any] = {"positives": pos_counts, "failures": pos_fail}
        Xn = None
        if negatives is not None:
            _, _, neg_embs, neg_fail = self._embed(negatives)
            Xn, neg_counts = self._training_matrix(neg_embs, "negatives")
            self.fit_report_.update(negatives=neg_counts, failures={**pos_fail, **neg_fail})
        if det.requires_negatives:
            if Xn is None:
                raise ValueError(f"detector {det.name!r} is a binary baseline: give negatives")
            det.fit(np.vstack([X, Xn]), np.r_[np.ones(len(X)), np.zeros(len(Xn))])
        else:
            det.fit(X)
            if Xn is not None and self.target_fpr is not None:
                # negatives were not used to fit a one-class detector: an honest FPR threshold
                det._set_threshold(det.calibration_scores_, det.score_samples(Xn),
                                   det.calibration_.split(",")[0], target_fpr=self.target_fpr)
        self.detector_ = det
        self.embedder_name_ = self.embedder_.name
        return self

    def score(self, images: ImagesLike) -> pd.DataFrame:
        """One row per image: path, score, p_value, in_class, status, n_faces, box."""
        det = self.detector_
        self.check_embedder()
        ids, uris, embs, failures = self._embed(images)
        rows = []
        for item_id, uri, emb in zip(ids, uris, embs, strict=True):
            row = {"id": item_id, "path": uri, "score": math.nan, "p_value": math.nan,
                   "in_class": 0, "status": "ok", "n_faces": 0, "box": ""}
            if emb is None:
                row["status"] = f"failed: {failures.get(item_id, 'unreadable')}"
            elif emb.n_faces == 0:
                row.update(status="no_face", score=self.no_face_score)
            else:
                s = det.score_samples(emb.vectors)
                best = int(np.argmax(s))
                row.update(score=float(s[best]), n_faces=emb.n_faces)
                if emb.boxes is not None:
                    row["box"] = " ".join(f"{v:.0f}" for v in emb.boxes[best])
            rows.append(row)
        df = pd.DataFrame(rows)
        scored = df["status"].isin(["ok", "no_face"])
        df.loc[scored, "p_value"] = cal.conformal_p_values(det.calibration_scores_,
                                                           df.loc[scored, "score"].to_numpy())
        df["in_class"] = (scored & (df["score"] >= det.threshold_)).astype(int)
        if self.embedder_.kind != "face":
            df = df.drop(columns=["n_faces", "box"])
        return df

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save embedder id + detector + calibration (no images, no pickle)."""
        entry, arrays, tensors = detector_payload(self.detector_)
        header = {"kind": "pipeline", "embedder": self.embedder_spec,
                  "embedder_name": self.embedder_name_, "no_face_score": repr(self.no_face_score),
                  "target_fpr": self.target_fpr, "fit_report": _counts_only(self.fit_report_),
                  **entry}
        return write_bundle(path, header, arrays, tensors)

    @classmethod
    def _from_bundle(cls, header: dict, arrays: dict, tensors: dict) -> Pipeline:
        det = detector_from_payload(header, arrays, tensors)
        pipe = cls(header["embedder"], det, no_face_score=float(header["no_face_score"]),
                   target_fpr=header.get("target_fpr"))
        pipe.detector_ = det
        pipe.embedder_name_ = header["embedder_name"]
        pipe.fit_report_ = header.get("fit_report", {})
        return pipe

    def check_embedder(self) -> None:
        """Raise if the embedder built here is not the one the model was fitted with."""
        if self.embedder_.name != self.embedder_name_:
            raise ValueError(f"model was fitted with embedder {self.embedder_name_!r}, but "
                             f"{self.embedder_spec!r} builds {self.embedder_.name!r}")


def _counts_only(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "failures"} | {
        "n_failures": len(report.get("failures", {}))}


def fit(embedder: str | Embedder, detector: str | BaseDetector, positives: ImagesLike,
        negatives: ImagesLike | None = None, **kw) -> Pipeline:
    """Fit a :class:`Pipeline` in one call: ``oneclass.fit("dlib-face", "knn", "photos/")``."""
    return Pipeline(embedder, detector, **kw).fit(positives, negatives)
