"""Run an embedder's exported network with onnxruntime instead of torch.

:class:`OnnxEmbedder` wraps an embedder that can export its network (``export_network()``, see
:mod:`oneclass.export`): images are preprocessed exactly as the wrapped embedder does, the
network runs in an onnxruntime session, and the vectors come out as the wrapped embedder's would
(same ``name``: same model and weights; vectors equal to torch's within float rounding, cosine
>= 0.9999 is tested). ``precision="int8"`` runs a dynamically quantised copy of the network
(its own ``name``, since its vectors differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from oneclass.config import default_threads
from oneclass.embed.base import Embedder, ImageEmbedding

PRECISIONS = ("fp32", "int8")


def require_onnxruntime() -> Any:
    """Returns the ``onnxruntime`` module; ``ImportError`` naming the extra when it is absent."""
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("the ONNX runtime needs: pip install 'oneclass[scale]'") from exc
    return onnxruntime


class OnnxEmbedder(Embedder):
    """An embedder whose network runs in onnxruntime.

    Args:
        base: the torch embedder (it preprocesses; its network was exported to ``path``).
        path: the ``.onnx`` file of ``base``'s network (:func:`oneclass.export.export_embedder`).
        threads: onnxruntime intra-op threads (default :func:`oneclass.config.default_threads`).
        precision: ``"fp32"`` or ``"int8"`` (``path`` then holds the quantised network).
    """

    def __init__(
        self,
        base: Embedder,
        path: str | Path,
        *,
        threads: int | None = None,
        precision: str = "fp32",
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.base = base
        self.path = Path(path)
        self.threads = threads
        self.precision = precision
        self.kind = base.kind  # type: ignore[misc]
        self.batch_size = base.batch_size
        self.size_hint = base.size_hint
        self.preprocess_version = base.preprocess_version  # type: ignore[misc]
        self._session: Any = None

    @property
    def name(self) -> str:
        """The wrapped embedder's name (``+int8`` for the quantised network)."""
        return self.base.name + ("+int8" if self.precision == "int8" else "")

    @property
    def dim(self) -> int:
        """Length of each vector (the wrapped embedder's)."""
        return self.base.dim

    def session(self) -> Any:
        """Returns the onnxruntime session, created on first use."""
        if self._session is None:
            ort = require_onnxruntime()
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads or default_threads()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        return self._session

    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        """Returns one :class:`ImageEmbedding` per image, computed by onnxruntime."""
        if len(images) == 0:
            return []
        x = self.base.preprocess(images)  # type: ignore[attr-defined]
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        session = self.session()
        (out,) = session.run(None, {session.get_inputs()[0].name: array})
        return [ImageEmbedding(vectors=np.asarray(v, dtype=np.float32)[None, :]) for v in out]
