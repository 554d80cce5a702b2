"""Embedder throughput: images per second, decoding included, cold and with a warm cache.

Each embedder runs :func:`oneclass.embed.cache.embed_items` over each image set twice with one
fresh cache file: cold (read, hash, decode, embed, store) and warm (read, hash, cache hit). Model
loading (and compiling) is timed apart and not counted in the rates. Sets:

* ``niccage``: the 318 aligned 256 x 256 Nic Cage crops (``$ONECLASS_DATA/niccage/crops``);
* ``cifar``: a seeded sample (``--n-cifar``, default 1000) of the CIFAR-10 test JPEGs (32 x 32),
  read in place from ``cifar10/cifar10_subset.zip``;
* ``synthetic:N``: N generated 256 x 256 JPEGs (for machines without the shared data).

Embedders are registry specs (``effnet-lite0``, ``effnet-lite0:optimize=compile``,
``dlib-face``, ``clip:pretrained=/models/ViT-B-32.pt``...) plus ``clip-tiny``: a tiny randomly
initialised CLIP (the code path of a real one, at a fraction of the compute). A spec whose
weights are missing is reported as skipped. Writes ``benchmarks/results/embedders_throughput.md``
(``--out``). Run from the repository root::

    OMP_NUM_THREADS=2 python benchmarks/bench_embedders.py [--embedders ...] [--sets ...]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

from oneclass.bench.runner import cpu_name
from oneclass.data.sources import FolderSource, ImageItem, ZipSource
from oneclass.embed.base import default_device, default_threads
from oneclass.embed.cache import EmbeddingCache, embed_items
from oneclass.embed.clip import WeightsNotFoundError
from oneclass.embed.registry import make_embedder

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_EMBEDDERS = ["effnet-lite0", "dlib-face", "clip-tiny", "clip"]
DEFAULT_SETS = ["niccage", "cifar"]


def data_root() -> Path:
    root = Path(os.environ.get("ONECLASS_DATA", "../shared/data")).expanduser()
    return root if root.is_absolute() else (REPO / root).resolve()


def image_set(spec: str, n_cifar: int, seed: int, tmp: Path) -> list[ImageItem]:
    """The items of one set (ValueError when its data is missing)."""
    root = data_root()
    if spec == "niccage":
        return FolderSource(root / "niccage" / "crops").items()
    if spec == "cifar":
        items = ZipSource(root / "cifar10" / "cifar10_subset.zip", "cifar10_jpg/test").items()
        return sorted(
            random.Random(seed).sample(items, min(n_cifar, len(items))), key=lambda it: it.id
        )
    if spec.startswith("synthetic:"):
        return synthetic_jpegs(int(spec.split(":", 1)[1]), tmp / "synthetic", seed)
    raise ValueError(f"unknown set {spec!r}: niccage, cifar or synthetic:N")


def synthetic_jpegs(n: int, folder: Path, seed: int) -> list[ImageItem]:
    """Smooth random 256 x 256 colour images saved as JPEG (photo-like file sizes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((256, 256), Image.BICUBIC)
        noise = rng.normal(0, 6, size=(256, 256, 3))
        im = Image.fromarray(np.clip(np.asarray(im) + noise, 0, 255).astype(np.uint8))
        path = folder / f"{i:05d}.jpg"
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        path.write_bytes(buf.getvalue())
        items.append(ImageItem(id=path.name, uri=str(path)))
    return items


def build(spec: str, tmp: Path):
    if spec == "clip-tiny":
        from oneclass.embed.clip import ClipEmbedder
        from oneclass.embed.clip_random import save_random_clip

        return ClipEmbedder(model_path=str(save_random_clip(tmp / "clip-tiny")))
    return make_embedder(spec)


def run_one(spec: str, items: list[ImageItem], tmp: Path, workers: int | None = None) -> dict:
    emb = build(spec, tmp)
    t0 = time.perf_counter()
    warmup = items[: max(2, int(getattr(emb, "batch_size", 2)))]  # load, compile, tune kernels
    first = embed_items(emb, warmup, progress=False)
    load_s = time.perf_counter() - t0
    if len(first.failures) == len(warmup):
        raise RuntimeError(f"{spec}: cannot embed ({first.failures[0].reason})")
    db = tmp / f"cache-{abs(hash((spec, len(items))))}.sqlite"
    with EmbeddingCache(db) as cache:
        cold = embed_items(emb, items, cache=cache, progress=False, workers=workers)
        warm = embed_items(emb, items, cache=cache, progress=False, workers=workers)
    db.unlink()
    return {
        "embedder": emb.name,
        "spec": spec,
        "n": len(items),
        "load_s": load_s,
        "cold": cold.rate,
        "warm": warm.rate,
        "failed": len(cold.failures),
        "no_face": len(cold.no_face),
        "batch": getattr(emb, "batch_size", ""),
    }


def machine() -> dict[str, str]:
    cpu = cpu_name()
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "CPU": cpu,
        "cores usable": str(default_threads()),
        "torch threads": str(torch.get_num_threads()),
        "GPU": gpu,
        "device used": default_device(),
        "load average (1/5/15 min) at the end": load,
        "python": platform.python_version(),
        "torch": metadata.version("torch"),
        "pillow": metadata.version("pillow"),
    }


def markdown(rows: list[dict], skipped: list[str], info: dict[str, str], args) -> str:
    lines = [
        "# Embedder throughput",
        "",
        "Images per second through `embed_items` (read, hash, decode, embed, store); "
        "loading the model and a first full batch are excluded (the load column). "
        "Warm = the same items again with the cache filled by the cold run. "
        "Written by `benchmarks/bench_embedders.py`.",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [f"- command: `{' '.join(['python', 'benchmarks/bench_embedders.py', *args])}`", ""]
    lines += [
        "| embedder | name | set | images | batch | load s | cold img/s | warm img/s "
        "| warm/cold | failed | no face |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['spec']} | {r['embedder']} | {r['set']} | {r['n']} | {r['batch']} | "
            f"{r['load_s']:.1f} | {r['cold']:.1f} | {r['warm']:.0f} | "
            f"{r['warm'] / r['cold']:.0f}x | {r['failed']} | {r['no_face']} |"
        )
    if skipped:
        lines += ["", "Skipped:", *[f"- {s}" for s in skipped]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embedders", nargs="+", default=DEFAULT_EMBEDDERS)
    ap.add_argument("--sets", nargs="+", default=DEFAULT_SETS)
    ap.add_argument("--n-cifar", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="embed_items read/decode threads (default: 2 x cores)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "embedders_throughput.md")
    args = ap.parse_args(argv)
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="bench-embedders-") as tmpdir:
        tmp = Path(tmpdir)
        sets = {}
        for s in args.sets:
            try:
                sets[s] = image_set(s, args.n_cifar, args.seed, tmp)
            except ValueError as exc:
                skipped.append(f"set {s}: {exc}")
        for spec in args.embedders:
            for s, items in sets.items():
                try:
                    row = run_one(spec, items, tmp, args.workers)
                except (WeightsNotFoundError, ImportError) as exc:  # the same for every set
                    skipped.append(f"{spec}: {exc}")
                    print(f"skipped {spec}: {exc}", file=sys.stderr)
                    break
                except RuntimeError as exc:
                    skipped.append(f"{spec} on {s}: {exc}")
                    print(f"skipped {spec} on {s}: {exc}", file=sys.stderr)
                    continue
                row["set"] = s
                rows.append(row)
                print(
                    f"{row['embedder']:<40} {s:<10} cold {row['cold']:7.1f} img/s  warm "
                    f"{row['warm']:8.0f} img/s  ({row['warm'] / row['cold']:.0f}x)  "
                    f"load {row['load_s']:.1f} s  failed {row['failed']}",
                    flush=True,
                )
    text = markdown(rows, skipped, machine(), argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
