"""The data layer: where images come from and how they are read, split and described.

- :mod:`~oneclass.data.sources`: :func:`open_source` / :func:`open_sources` (ids unique across
  sources), :func:`iter_images` (decodes on a thread pool; yields failures instead of raising),
  :func:`load_image`; re-exports the items and listing classes
- :mod:`~oneclass.data.items`: :class:`ImageItem`, :class:`Failure`, :func:`unique_ids`
- :mod:`~oneclass.data.listing`: folder / zip / list sources (nothing read)
- :mod:`~oneclass.data.uri`: addresses and bounded reads (special files refused unopened, size
  caps, encrypted and bomb zip members refused, names that are not UTF-8)
- :mod:`~oneclass.data.decode`: :func:`decode_image` (robust 8-bit RGB, ``max_side``),
  :func:`downscale`
- :mod:`~oneclass.data.download` / :mod:`~oneclass.data.http`: :class:`Downloader`, cached,
  retried, size- and wall-clock-capped, offline, fails fast without a network
- :mod:`~oneclass.data.hashing`: :func:`sha256_bytes`, :func:`sha256_file` (the one content hash)
- :mod:`~oneclass.data.splits`: perceptual hashes, near-duplicate groups, group splits, audits
- :mod:`~oneclass.data.manifests`: the manifests shipped in ``oneclass/data/datasets/``,
  :func:`data_root`, :func:`dataset_items`, :func:`verify`, :func:`fetch`, :func:`fetch_all`
  (:mod:`~oneclass.data.groups`: their near-duplicate groups)
- :mod:`~oneclass.data.adbench`: the ADBench arrays

Submodules are imported explicitly (``from oneclass.data.sources import open_source``), so
importing one does not load the others. Dependency order inside the layer (no cycles):
errors, hashing -> decode -> http -> download -> uri -> items -> listing -> groups ->
manifests -> sources -> splits.
"""
