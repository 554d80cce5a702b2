"""Scale figures of the engines: runtimes, Ray workers, memory as the collection grows.

Prints each figure and writes ``benchmarks/results/scale_engine.md`` (merged into ``scale.md``).
Not a test: it measures. The machine is shared, so quote the medians and the ratios of one run.

    python benchmarks/bench_engine.py [--section runtime|ray|memory|paper ...] [--images N]

- runtime: EfficientNet-Lite0 end to end (decode included, no cache) with torch fp32 (jit), torch
  bf16, onnxruntime fp32 and int8; images/s (median of 3) and the cosine of the vectors to torch's
  plain eager fp32 model.
- ray: images/s of ``score --engine ray`` with 1 and 2 local Ray workers, against in-process,
  and the largest score difference.
- memory: peak RSS of ``oneclass score --out scores.csv`` on 10k, 30k and 100k images (a list of
  generated images; the tiny-image embedder, so the engine and not the network is measured).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "scale_engine.md"


def shared_images(n: int) -> list[str]:
    """Returns ``n`` real JPEG paths from the shared data (Cage crops, then BSDS photos)."""
    from oneclass.data.manifests import data_root

    root = data_root()
    paths = sorted((root / "niccage" / "crops").glob("*.jpg")) + sorted(
        (root / "generic" / "bsds500").glob("*.jpg")
    )
    return [str(p) for p in paths[:n]]


def cos(a: np.ndarray, b: np.ndarray) -> float:
    """Returns the smallest row cosine between two matrices."""
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def timed_rate(fn, n: int, repeats: int = 3) -> tuple[float, np.ndarray]:
    """Returns (median images/s over ``repeats`` calls, the last result)."""
    rates, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates), out


def section_runtime(n: int) -> list[str]:
    """Torch vs onnxruntime, decode included."""
    from oneclass.embed.cache import embed_items
    from oneclass.embed.onnx_runtime import OnnxEmbedder
    from oneclass.embed.registry import make_embedder
    from oneclass.export import export_embedder
    from oneclass.pipeline import as_items

    items = as_items(shared_images(n))
    tmp = Path(tempfile.mkdtemp())

    def run(emb) -> np.ndarray:
        out = embed_items(emb, items, cache=False, progress=False)
        return np.vstack([e.vectors for e in out.embeddings])

    ref = run(make_embedder("effnet-lite0:optimize=none"))
    jit = make_embedder("effnet-lite0")
    rows = [
        "| runtime | images/s (median of 3) | min cosine to torch eager fp32 |",
        "|---|---|---|",
    ]
    candidates = [
        ("torch fp32 (jit, default)", jit),
        ("torch bf16 (jit)", make_embedder("effnet-lite0:precision=bf16")),
        ("onnxruntime fp32", OnnxEmbedder(jit, export_embedder(jit, tmp / "f.onnx"))),
        (
            "onnxruntime int8 (dynamic)",
            OnnxEmbedder(
                jit, export_embedder(jit, tmp / "q.onnx", precision="int8"), precision="int8"
            ),
        ),
    ]
    for label, emb in candidates:
        run(emb)  # warm up: model load, first-call optimisation
        rate, vecs = timed_rate(lambda e=emb: run(e), len(items))
        rows.append(f"| {label} | {rate:.1f} | {cos(ref, vecs):.5f} |")
        print(rows[-1], flush=True)
    return [
        f"### Runtimes: EfficientNet-Lite0, {len(items)} real JPEGs, decode included, "
        f"no cache, {os.cpu_count()} cores",
        "",
        *rows,
    ]


def section_ray(n: int) -> list[str]:
    """Ray workers vs in-process."""
    import oneclass
    from oneclass.engine import local
    from oneclass.engine import ray as ray_engine

    images = shared_images(n)
    tmp = Path(tempfile.mkdtemp())
    oneclass.fit("effnet-lite0", "knn", images[:40], progress=False, cache=False).save(tmp / "m")
    pipe = oneclass.load(tmp / "m")
    pipe.cache = False
    t0 = time.perf_counter()
    frames: list = []
    local.score_collection(pipe, images, sink=frames.append, progress=False, batch_size=64)
    base = time.perf_counter() - t0
    ref = np.concatenate([f.score.to_numpy() for f in frames])
    rows = [
        "| engine | workers | images/s | max score difference vs in-process |",
        "|---|---|---|---|",
        f"| in-process | - | {len(images) / base:.1f} | 0 |",
    ]
    for workers in (1, 2):
        got: list = []
        t0 = time.perf_counter()
        ray_engine.score_collection(
            tmp / "m", images, sink=got.append, workers=workers, batch_size=32, progress=False
        )
        secs = time.perf_counter() - t0
        diff = np.max(np.abs(np.concatenate([f.score.to_numpy() for f in got]) - ref))
        rows.append(
            f"| ray (local, includes start-up) | {workers} | {len(images) / secs:.1f} "
            f"| {diff:.2e} |"
        )
        print(rows[-1], flush=True)
    return [
        f"### Ray workers, {len(images)} real JPEGs, EfficientNet-Lite0 + kNN, "
        f"{os.cpu_count()} cores",
        "",
        *rows,
    ]


def section_memory() -> list[str]:
    """Peak RSS of a streaming ``score`` as the collection grows."""
    import oneclass

    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    files = []
    for i in range(500):  # 500 distinct generated images, listed over and over
        arr = (rng.random((48, 48, 3)) * 255).astype(np.uint8)
        path = tmp / f"g{i:04d}.png"
        Image.fromarray(arr).save(path)
        files.append(str(path))
    oneclass.fit("thumbnail", "knn", files[:100], progress=False, cache=False).save(tmp / "m")
    rows = ["| images | rows written | peak RSS (MB) | seconds |", "|---|---|---|---|"]
    for n in (10_000, 30_000, 100_000):
        links = tmp / f"links{n}"  # n distinct names (a list never repeats a path)
        links.mkdir()
        for i in range(n):
            (links / f"i{i:06d}.png").symlink_to(files[i % len(files)])
        lst = tmp / f"list{n}.txt"
        lst.write_text("\n".join(str(p) for p in sorted(links.iterdir())) + "\n")
        cmd = [
            sys.executable,
            "-c",
            "import resource,sys; from oneclass.cli import main; rc=main(sys.argv[1:]); "
            "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)",
            "-q",
            "score",
            "--model",
            str(tmp / "m"),
            str(lst),
            "--no-cache",
            "--out",
            str(tmp / "s.csv"),
        ]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        rss = [ln for ln in res.stdout.splitlines() if ln.startswith("RSS")]
        peak = int(rss[-1].split()[1]) / 1024 if rss else float("nan")
        scored = sum(1 for _ in open(tmp / "s.csv")) - 1
        rows.append(f"| {n:,} | {scored:,} | {peak:.0f} | {secs:.0f} |")
        print(rows[-1], res.stderr[-300:] if res.returncode else "", flush=True)
    return [
        "### Memory of `oneclass score --out` as the collection grows (tiny-image embedder, "
        "a list file of generated PNGs)",
        "",
        *rows,
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--section", action="append", choices=("runtime", "ray", "memory"))
    ap.add_argument("--images", type=int, default=256)
    a = ap.parse_args()
    sections = a.section or ["runtime", "ray", "memory"]
    parts = [f"## Engines (`python benchmarks/bench_engine.py`), {time.strftime('%Y-%m-%d')}", ""]
    for s in sections:
        parts += {
            "runtime": lambda: section_runtime(a.images),
            "ray": lambda: section_ray(a.images),
            "memory": section_memory,
        }[s]() + [""]
    load = os.getloadavg()
    parts.append(f"Load average during the run: {load[0]:.1f} (2 cores; other jobs share them).")
    OUT.write_text("\n".join(parts) + "\n")
    print(
        f"wrote {OUT}; peak RSS of this process "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
