"""FaceNet (facenet-pytorch's InceptionResnetV1): 512-d L2-normalised face vectors.

Faces are found by MTCNN (default; its weights ship in the facenet-pytorch wheel) or by dlib's
HOG/CNN detectors (:mod:`oneclass.embed.faces`), cropped with a margin to 160 px chips and
standardised as facenet-pytorch does, then embedded by ``InceptionResnetV1(classify=False)``.

Weights do not ship with the wheel. They are looked up, in order:

1. ``weights=``: a local file, ``.pt``/``.pth`` (a state dict, read with
   ``torch.load(..., weights_only=True)``: no pickle code runs) or ``.safetensors``;
2. ``$TORCH_HOME/checkpoints/`` under the names facenet-pytorch uses
   (``20180402-114759-vggface2.pt``, ``20180408-102900-casia-webface.pt``);
3. only with ``allow_download=True``: the release URL facenet-pytorch downloads from.

Otherwise :class:`WeightsNotFoundError` names the paths looked at and how to provide the file.
The embedder ``name`` pins the weights: ``facenet/vggface2`` (or ``casia-webface``) for the
official file names, ``facenet/file-<sha256 prefix>`` for an explicit file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from oneclass.embed import faces as facelib
from oneclass.embed.base import Embedder, ImageEmbedding, default_device, default_threads

_RELEASE = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
#: official weights: training set -> file name facenet-pytorch caches them under
WEIGHT_FILES = {
    "vggface2": "20180402-114759-vggface2.pt",
    "casia-webface": "20180408-102900-casia-webface.pt",
}
CHIP_SIZE = 160


class WeightsNotFoundError(FileNotFoundError):
    """FaceNet weights were not found locally (and downloading was not allowed)."""


def torch_home() -> Path:
    """``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch`` (as torch)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch"
    return Path(os.environ.get("TORCH_HOME", default)).expanduser()


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_weights(
    pretrained: str, weights: str | Path | None = None, allow_download: bool = False
) -> Path:
    """The weights file to load (see the module notes for the order); may download."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"FaceNet weights file not found: {path}")
        return path
    if pretrained not in WEIGHT_FILES:
        raise ValueError(
            f"unknown FaceNet weights {pretrained!r}; choose one of "
            f"{sorted(WEIGHT_FILES)} or pass weights=<file>"
        )
    cached = torch_home() / "checkpoints" / WEIGHT_FILES[pretrained]
    if cached.is_file():
        return cached
    url = _RELEASE + WEIGHT_FILES[pretrained]
    if not allow_download:
        raise WeightsNotFoundError(
            f"FaceNet {pretrained} weights not found: looked for {cached} "
            f"($TORCH_HOME/checkpoints/). Provide them with weights='/path/to/file.pt' (or "
            f".safetensors), copy {WEIGHT_FILES[pretrained]} into {cached.parent}, or pass "
            f"allow_download=True to fetch {url}"
        )
    import torch

    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(cached))
    return cached


def load_state_dict(path: str | Path) -> dict:
    """A state dict from ``.safetensors`` or a torch file (``weights_only=True``); the
    classifier head (``logits.*``) of the official files is dropped."""
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{path}: cannot read FaceNet weights ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors (got {type(state).__name__})")
    return {k: v for k, v in state.items() if not k.startswith("logits.")}


def load_facenet(path: str | Path, device: str = "cpu"):
    """InceptionResnetV1 (embedding mode, eval) with the weights in ``path``."""
    try:
        from facenet_pytorch import InceptionResnetV1
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("facenet needs facenet-pytorch: pip install 'oneclass[face]'") from exc
    net = InceptionResnetV1(pretrained=None, classify=False)
    missing, unexpected = net.load_state_dict(load_state_dict(path), strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: not InceptionResnetV1 weights (missing {missing[:4]}, "
            f"unexpected {unexpected[:4]})"
        )
    return net.to(device).eval()


class FaceNetEmbedder(Embedder):
    """FaceNet face vectors: one 512-d unit-norm float32 vector per face found, with its box.

    Parameters
    ----------
    pretrained : ``"vggface2"`` or ``"casia-webface"`` (which official file to look for).
    weights : a local weights file (``.pt``/``.pth``/``.safetensors``); overrides ``pretrained``.
    allow_download : fetch the official file when it is not found locally.
    detector : ``"mtcnn"`` (default), ``"hog"`` or ``"cnn"`` (see :mod:`oneclass.embed.faces`).
    upsample, min_face_size, max_faces, fallback, search, max_side : as in
        :class:`oneclass.embed.dlib_face.DlibFaceEmbedder` and :mod:`oneclass.embed.faces`.
    margin : pixels of the 160 px chip added around the MTCNN box.
    batch_size : images per :meth:`embed_batch` call from :meth:`embed`.
    threads : torch CPU threads; ``None``: :func:`default_threads`.
    device : ``None``: CUDA when present.
    """

    kind = "face"
    preprocess_version = "2"

    def __init__(
        self,
        pretrained: str = "vggface2",
        weights: str | Path | None = None,
        allow_download: bool = False,
        detector: str = "mtcnn",
        upsample: int | str = "auto",
        min_face_size: float = 20,
        max_faces: int | None = 10,
        fallback: bool = True,
        search: str = "wide",
        max_side: int = facelib.MAX_SIDE,
        margin: int = 32,
        batch_size: int = 32,
        threads: int | None = None,
        device: str | None = None,
    ):
        self.pretrained = pretrained
        self.weights = weights
        self.allow_download = allow_download
        self.detector = detector
        self.upsample = upsample
        self.min_face_size = min_face_size
        self.max_faces = max_faces
        self.fallback = fallback
        self.search = search
        self.max_side = max_side
        self.margin = margin
        self.batch_size = batch_size
        self.threads = threads
        self.device = device
        self._net = None
        self._weights_tag: str | None = None
        self._lock = threading.Lock()

    def _tag(self) -> str:
        """What the weights are: the official set, or a hash of the given file."""
        if self._weights_tag is None:
            if self.weights is None:
                self._weights_tag = str(self.pretrained)
            else:
                path = resolve_weights(self.pretrained, self.weights)
                self._weights_tag = "file-" + file_digest(path)[:12]
        return str(self._weights_tag)

    @property
    def name(self) -> str:
        opts = []
        if self.detector != "mtcnn":
            opts.append(self.detector + ("" if self.fallback else ",nofallback"))
        if self.upsample != "auto" and self.detector != "mtcnn":
            opts.append(f"up={self.upsample}")
        if self.min_face_size != 20:
            opts.append(f"min={self.min_face_size:g}")
        if self.max_faces != 10:
            opts.append(f"max={self.max_faces}")
        if self.search != "wide":
            opts.append(self.search)
        if self.max_side != facelib.MAX_SIDE:
            opts.append(f"side={self.max_side}")
        if self.margin != 32:
            opts.append(f"margin={self.margin}")
        return f"facenet/{self._tag()}" + (f"[{','.join(opts)}]" if opts else "")

    @property
    def dim(self) -> int:
        return 512

    def _device(self) -> str:
        return self.device or default_device()

    def _load(self):
        with self._lock:
            if self._net is None:
                import torch

                facelib.check_face_options(
                    self.detector,
                    self.upsample,
                    self.min_face_size,
                    self.max_faces,
                    self.search,
                    self.max_side,
                )
                if not (isinstance(self.margin, int) and 0 <= self.margin < CHIP_SIZE):
                    raise ValueError(
                        f"margin must be an integer in [0, {CHIP_SIZE}), got {self.margin!r}"
                    )
                if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
                    raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
                path = resolve_weights(self.pretrained, self.weights, self.allow_download)
                if torch.device(self._device()).type == "cpu":
                    torch.set_num_threads(self.threads or default_threads())
                self._net = load_facenet(path, self._device())
        return self._net

    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        import torch

        if len(images) == 0:
            return []
        net = self._load()
        sizes = [im.size if isinstance(im, Image.Image) else im.shape[1::-1] for im in images]
        capped = [facelib.capped_rgb(im, self.max_side) for im in images]
        arrays = [a for a, _ in capped]
        found = facelib.find_faces(
            arrays,
            detector=self.detector,
            upsample=self.upsample,
            min_face_size=self.min_face_size,
            max_faces=self.max_faces,
            fallback=self.fallback,
            search=self.search,
            max_side=self.max_side,
            device=self._device(),
        )
        chips = [
            facelib.facenet_chips(Image.fromarray(a), f, CHIP_SIZE, self.margin)
            for a, f in zip(arrays, found, strict=True)
            if f
        ]
        if chips:
            with torch.inference_mode():
                vectors = net(torch.cat(chips).to(self._device())).float().cpu().numpy()
        else:
            vectors = np.zeros((0, 512), dtype=np.float32)
        out, start = [], 0
        for (_, scale), faces, (w, h) in zip(capped, found, sizes, strict=True):
            faces = [facelib.scaled_face(f, 1.0 / scale) for f in faces]
            boxes = facelib.clipped_boxes(faces, w, h)
            out.append(ImageEmbedding(vectors=vectors[start : start + len(faces)], boxes=boxes))
            start += len(faces)
        return out
