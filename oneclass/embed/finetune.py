"""Fine-tune an EfficientNet-Lite's last blocks on your images: ``oneclass.finetune(...)``.

``finetune(base, positives, negatives=None, *, auxiliary=None, **options)`` returns an embedder
(:class:`~oneclass.embed.finetune_model.FinetunedEffNet`) usable wherever an embedder is::

    emb = oneclass.finetune("effnet-lite0", positives="photos/")
    model = oneclass.fit(emb, "knn", positives="photos/")

Modes (``mode="auto"``: ``binary`` with negatives, ``oe`` with only auxiliary images, else
``msc``):

* ``binary``: the seeds' system. A linear head on the pooled features, class-balanced binary
  cross-entropy, augmentation, early stopping on the head's ROC-AUC over a held-out slice
  (by near-duplicate group when the items carry one, else seeded random). Fit
  ``oneclass.fit(emb, "logistic", pos, neg)`` on it for the fine-tuned binary baseline.
* ``oe``: one-class adaptation with outlier exposure (PANDA-OE, Reiss et al. 2021): the
  ``auxiliary`` images ("random negatives": any images not of the class, unlabelled for the
  detector) are the negatives of the binary loop below; fit a one-class detector on the result
  (``oneclass.fit(emb, "knn", positives=...)``).
* ``msc``: one-class adaptation from positives alone, Mean-Shifted Contrastive learning (Reiss &
  Hoshen 2023): features mean-shifted by the centre of the pretrained features, NT-Xent between
  augmented views, plus the angular centre loss. ``mode="msc"`` with ``auxiliary`` images uses
  them as extra contrastive negatives pushed from the centre, with early stopping on a held-out
  slice (kNN ROC-AUC of held-out positives against held-out auxiliary images, epoch 0 included).
  Without ``auxiliary`` there is nothing to validate against: it trains a fixed small budget
  (``epochs``, default 8). On the shared sets this did not beat the frozen network, and on
  CIFAR-10 it lowers the one-class AUC (0.903 -> 0.832; ``benchmarks/results/finetune.md``):
  with few positives the contrastive term mostly learns to tell the training images apart. A
  call on positives alone therefore logs a warning that points to ``auxiliary``.
* ``naive``: the positives-only classifier of the seed question (all labels 1): a baseline that
  shows the collapse (its head calls everything positive); do not use it for anything else.

Speed: the frozen trunk runs once per image and view (the un-augmented view plus ``views``
augmented ones: random resized crop, flip, colour jitter) and its feature maps are cached; the
training steps run only the top, with cheap feature-map augmentation (flip, random crop). Images
are decoded through the data layer: an unreadable file is reported (``fit_report_["failures"]``)
and skipped, never replaced.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from oneclass.embed.base import Embedder, default_device, default_threads
from oneclass.embed.effnet import (
    VARIANTS,
    crop_resize,
    fold_batchnorms,
    load_effnet_lite,
    network_input,
)
from oneclass.embed.finetune_loop import train_top
from oneclass.embed.finetune_model import FinetunedEffNet

__all__ = ["FinetuneOptions", "finetune"]

log = logging.getLogger(__name__)

#: logged when ``msc`` runs on positives alone: what the benchmarks measured, and the remedy
MSC_ALONE_WARNING = (
    "finetune: one-class fine-tuning on positives alone (msc) did not beat the frozen network "
    "on the shared benchmarks and lowered CIFAR-10 one-class ROC-AUC "
    "(benchmarks/results/finetune.md); pass auxiliary= images not of the class (outlier "
    "exposure) or negatives= to improve on the frozen features"
)


@dataclass
class FinetuneOptions:
    """The ``**options`` of :func:`finetune` (``None``: the mode's default).

    Attributes:
        mode: ``"auto"``, ``"msc"``, ``"oe"``, ``"binary"`` or ``"naive"``.
        epochs: passes over the training images (msc 8, oe/binary 15, naive 5).
        lr: learning rate of the trained blocks (AdamW; msc 3e-5, oe/binary/naive 2e-4).
        head_lr: learning rate of the binary head.
        weight_decay: AdamW weight decay.
        batch_size: images per step.
        views: augmented views per image whose trunk maps are cached (plus the plain one).
        holdout: fraction held out for early stopping.
        patience: epochs without improvement before stopping.
        temperature: NT-Xent temperature (msc).
        angular: add the angular centre loss (msc).
        oe_weight: weight of the outlier-exposure term (msc with ``auxiliary``).
        train_from: first trained block (default: the last stride-32 stages).
        output: embedding output, ``"unit"``, ``"sqrt"`` or ``"raw"`` (msc: unit, else sqrt).
        random_state: seed of splits, augmentation, initialisation and batches.
        device: torch device (``None``: CUDA when present).
        threads: CPU threads (``None``: :func:`default_threads`).
    """

    mode: str = "auto"
    epochs: int | None = None
    lr: float | None = None
    head_lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    views: int = 4
    holdout: float = 0.2
    patience: int = 3
    temperature: float = 0.25
    angular: bool = True
    oe_weight: float = 1.0
    train_from: int | None = None
    output: str | None = None
    random_state: int = 0
    device: str | None = None
    threads: int | None = None


EPOCHS = {"msc": 8, "oe": 15, "binary": 15, "naive": 5}
LR = {"msc": 3e-5, "oe": 2e-4, "binary": 2e-4, "naive": 2e-4}


# ---- data --------------------------------------------------------------------------------------
def _items(images: Any) -> list:
    """Paths, source specs (folders, zips, lists, ``dataset:name``) and ImageItems -> items."""
    from oneclass.data.sources import ImageItem, open_source

    if images is None:
        return []
    if isinstance(images, str | Path | ImageItem):
        images = [images]
    out: list = []
    for x in images:
        if isinstance(x, ImageItem):
            out.append(x)
        elif isinstance(x, str | Path):
            out.extend(open_source(x))
        else:
            raise TypeError(f"cannot read images from {type(x).__name__}: {x!r}")
    return out


def _decode(items: list, size_hint: int, failures: dict[str, str]) -> tuple[list, list]:
    """Decode items through the data layer; failures go to ``failures`` (uri -> reason).

    Returns:
        ``(images, items)`` of the readable ones.
    """
    from oneclass.data.sources import load_images

    kept, images, failed = load_images(items, progress=False, size_hint=size_hint)
    failures.update({f.item.uri: f.reason for f in failed})
    return images, kept


def holdout_split(items: list, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Which items to hold out: whole near-duplicate groups when items carry ``group``, else
    single items, drawn at random until ``fraction`` of the items; none below 5 items.

    Returns:
        A boolean mask, True = held out.
    """
    n = len(items)
    mask = np.zeros(n, dtype=bool)
    if n < 5 or fraction <= 0:
        return mask
    keys = [getattr(it, "group", None) or f"item:{i}" for i, it in enumerate(items)]
    groups = sorted(set(keys))
    rng.shuffle(groups)
    chosen: set[str] = set()
    for g in groups:
        if sum(k in chosen for k in keys) >= fraction * n:
            break
        chosen.add(g)
    mask[:] = [k in chosen for k in keys]
    if mask.all() or not mask.any():
        mask[:] = False
        mask[rng.permutation(n)[: max(1, int(round(fraction * n)))]] = True
    return mask


def _augmented(image: Image.Image, size: int) -> np.ndarray:
    """One random view: random resized crop, horizontal flip, colour jitter (torch's RNG)."""
    from torchvision import transforms as T

    aug = T.Compose(
        [
            T.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True),
            T.RandomHorizontalFlip(),
            T.ColorJitter(0.4, 0.4, 0.4, 0.05),
        ]
    )
    w, h = image.size
    scale = (size * 1.3) / min(w, h)
    if scale < 1:  # shrink big images first: same views, far cheaper
        image = image.resize(
            (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR
        )
    return np.asarray(aug(image.convert("RGB")), dtype=np.uint8)


def _trunk_maps(trunk, images: list, size: int, views: int, device, batch: int, bar):
    """The frozen trunk's maps of each image's plain view and ``views`` augmented views.

    Returns:
        ``(n, 1 + views, C, H, W)`` float16 tensor (on ``device`` when it is CUDA, else CPU).
    """
    import torch

    out = []
    store = device if device.type == "cuda" else torch.device("cpu")
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch]
        arrays = [
            [crop_resize(im, size)] + [_augmented(im, size) for _ in range(views)] for im in chunk
        ]
        x = network_input([a for per in arrays for a in per], device)  # NHWC storage
        if device.type == "cuda":
            x = x.contiguous()
        with torch.inference_mode():
            m = trunk(x).contiguous()
        out.append(m.reshape(len(chunk), 1 + views, *m.shape[1:]).to(store, torch.float16))
        bar.update(len(chunk))
    return torch.cat(out)


# ---- the API ---------------------------------------------------------------------------------
def _base_variant(base: str | Embedder) -> str:
    from oneclass.registry import parse_spec

    name = parse_spec(base)[0] if isinstance(base, str) else getattr(base, "variant", None)
    variant = str(name).removeprefix("effnet-") if name else ""
    if variant not in VARIANTS:
        raise ValueError(
            f"finetune: base must be one of "
            f"{[f'effnet-{v}' for v in VARIANTS]} or such an embedder, got {base!r}"
        )
    return variant


def finetune(
    base: str | Embedder,
    positives: Any,
    negatives: Any = None,
    *,
    auxiliary: Any = None,
    progress: bool = True,
    **options: Any,
) -> FinetunedEffNet:
    """Fine-tune the last blocks of an EfficientNet-Lite on ``positives`` (and ``negatives``).

    Args:
        base: ``"effnet-lite0"``, ``"effnet-lite2"`` or such an embedder.
        positives: images of the class (a folder, zip, list, ``dataset:name``, paths, items).
        negatives: images not of the class: binary fine-tuning (the default mode then).
        auxiliary: images known not to be of the class, for one-class training with outlier
            exposure (``oe``, the default mode then; or ``msc``'s extra negatives).
        progress: show progress bars.
        **options: see :class:`FinetuneOptions`.

    Returns:
        The fine-tuned embedder; ``fit_report_`` holds counts, failures, the validation history
        and timings.

    Raises:
        ValueError: bad options, or no readable positives (or negatives in binary mode, auxiliary
            images in oe mode).
    """
    import torch

    unknown = set(options) - {f.name for f in fields(FinetuneOptions)}
    if unknown:
        raise ValueError(
            f"finetune: unknown option(s) {sorted(unknown)}; "
            f"known: {[f.name for f in fields(FinetuneOptions)]}"
        )
    opt = FinetuneOptions(**options)
    mode = opt.mode
    if mode == "auto":
        auto = "oe" if auxiliary is not None else "msc"
        mode = "binary" if negatives is not None else auto
    if mode not in EPOCHS:
        raise ValueError(f"finetune: mode must be auto, msc, oe, binary or naive, got {opt.mode!r}")
    if mode == "binary" and negatives is None:
        raise ValueError("finetune: mode 'binary' needs negatives")
    if mode == "oe" and auxiliary is None:
        raise ValueError("finetune: mode 'oe' needs auxiliary images")
    variant = _base_variant(base)
    size = VARIANTS[variant][0]
    if mode == "msc" and auxiliary is None:
        log.warning(MSC_ALONE_WARNING)
    from oneclass.embed.finetune_net import DEFAULT_TRAIN_FROM, split_effnet

    train_from = opt.train_from if opt.train_from is not None else DEFAULT_TRAIN_FROM[variant]
    start = time.perf_counter()
    rng = np.random.default_rng(opt.random_state)
    torch.manual_seed(opt.random_state)
    device = torch.device(opt.device or default_device())
    if device.type == "cpu":
        torch.set_num_threads(opt.threads or default_threads())

    failures: dict[str, str] = {}
    sets = {  # named as the caller passed them
        "positives": positives,
        "negatives": negatives if mode == "binary" else None,
        "auxiliary": auxiliary if mode in ("msc", "oe") else None,
    }
    listed = {k: _items(v) for k, v in sets.items()}
    decoded = {k: _decode(v, size + 32, failures) for k, v in listed.items()}
    needed = {"binary": ("negatives",), "oe": ("auxiliary",)}.get(mode, ())
    for k in ("positives", *needed):
        if not decoded[k][0]:
            raise ValueError(
                f"finetune: no readable {k} ({len(failures)} failed: {list(failures.items())[:3]})"
            )
    net = load_effnet_lite(variant)
    fold_batchnorms(net, train_from)  # the frozen trunk's batch-norms, for speed
    trunk, top = split_effnet(net, train_from)
    trunk, top = trunk.to(device), top.to(device)
    if device.type == "cpu":
        trunk = trunk.to(memory_format=torch.channels_last)
    n_total = sum(len(v[0]) for v in decoded.values())
    with tqdm(total=n_total, disable=not progress, unit="img", desc="finetune: trunk maps") as bar:
        maps = {
            k: _trunk_maps(trunk, imgs, size, opt.views, device, 16, bar)
            for k, (imgs, _) in decoded.items()
            if imgs
        }
    t_maps = time.perf_counter() - start
    masks = {k: holdout_split(items, opt.holdout, rng) for k, (_, items) in decoded.items()}
    if mode == "msc" and "auxiliary" not in maps:
        masks["positives"][:] = False  # nothing to validate against: train on all
    if mode == "naive":
        masks["positives"][:] = False
    output = opt.output or ("unit" if mode == "msc" else "sqrt")
    epochs = opt.epochs if opt.epochs is not None else EPOCHS[mode]
    lr = opt.lr if opt.lr is not None else LR[mode]
    loop, as_loop = mode, {}
    if mode == "oe":  # the binary loop, with the auxiliary images as its negatives
        loop, as_loop = "binary", {"auxiliary": "negatives"}
    state, head, history = train_top(
        top,
        {as_loop.get(k, k): v for k, v in maps.items()},
        {as_loop.get(k, k): masks[k] for k in maps},
        mode=loop,
        epochs=epochs,
        lr=lr,
        options=opt,
        rng=rng,
        progress=progress,
    )
    tensors = {f"top.{k}": v.detach().cpu().clone() for k, v in state.items()}
    if head is not None:
        tensors.update({f"head.{k}": v.detach().cpu().clone() for k, v in head.items()})
    counts = {
        k: {
            "images": len(listed[k]),
            "used": len(decoded[k][0]),
            "held_out": int(masks[k].sum()),
        }
        for k, given in sets.items()
        if given is not None  # the sets this mode trained on
    }
    seconds = time.perf_counter() - start
    info = {
        "mode": mode,
        "epochs": epochs,
        "lr": lr,
        "views": opt.views,
        "random_state": opt.random_state,
        "counts": counts,
        "best_epoch": history["best_epoch"],
        "seconds": round(seconds, 1),
    }
    emb = FinetunedEffNet(
        tensors=tensors,
        variant=variant,
        train_from=train_from,
        mode=mode,
        output=output,
        device=opt.device,
        threads=opt.threads,
        info=info,
    )
    emb.check_params()
    emb.fit_report_ = {
        **info,
        "failures": failures,
        "history": history,
        "options": asdict(opt),
        "seconds_trunk_maps": round(t_maps, 1),
        "device": str(device),
    }
    return emb
