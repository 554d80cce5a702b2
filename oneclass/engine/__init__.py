"""Engines run a fitted pipeline (or an embedder) over a collection of any size, in batches.

- :mod:`oneclass.engine.local`: in-process, the default; needs nothing beyond oneclass.
- :mod:`oneclass.engine.ray`: the same work on a Ray cluster (``pip install "oneclass[scale]"``),
  a model loaded once per worker, images streamed in batches.

Both score through :meth:`oneclass.pipeline.Pipeline.score`, so their scores are the same; both
write tables as rows finish (:mod:`oneclass.engine.tables`) and embeddings as resumable Parquet
shards (:mod:`oneclass.engine.shards`).
"""

ENGINES = ("local", "ray")
