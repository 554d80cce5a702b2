"""EfficientNet-Lite0 end to end on a GPU: images/s through ``embed_items`` (decode included).

What one Ray GPU worker (or the in-process engine on a GPU machine) runs per batch: read and
decode the files on ``2 x ONECLASS_THREADS`` threads, resize, embed on CUDA, no cache. The
images are the shared pokemon_gen1 + art_genres files, repeated to ``N`` (default 4,000); one
warm-up pass of 256, then two timed passes per batch size. Prints one JSON row per pass.
Not a test: it measures (``benchmarks/results/scale.md``, section "gpu").

    ONECLASS_THREADS=16 python benchmarks/bench_gpu_throughput.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from oneclass.data.manifests import data_root
from oneclass.data.sources import open_source
from oneclass.embed.cache import embed_items
from oneclass.embed.registry import make_embedder


def sync() -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    root = Path(data_root())
    items = list(open_source(str(root / "pokemon_gen1"))) + list(
        open_source(str(root / "art_genres"))
    )
    n = int(os.environ.get("N", 4000))
    items = (items * (1 + n // len(items)))[:n]
    for bs in (64, 256):
        emb = make_embedder(f"effnet-lite0:batch_size={bs}")
        embed_items(emb, items[:256], cache=False, progress=False)  # warm-up
        for rep in range(2):
            sync()
            t0 = time.perf_counter()
            out = embed_items(emb, items, cache=False, progress=False)
            sync()
            dt = time.perf_counter() - t0
            ok = sum(e is not None for e in out.embeddings)
            row = {"batch": bs, "rep": rep, "images": ok, "s": round(dt, 2)}
            print(json.dumps({**row, "img_s": round(ok / dt, 1)}), flush=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(json.dumps({"gpu": gpu, "cpus": os.cpu_count(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
