"""The data layer: where images come from and how they are read, split and described.

- :mod:`~oneclass.data.sources`: :class:`ImageItem`, folder / zip / list / dataset sources,
  :func:`iter_images` (decodes on a thread pool; yields failures instead of raising)
- :mod:`~oneclass.data.decode`: :func:`decode_image` / :func:`load_image`, robust 8-bit RGB
- :mod:`~oneclass.data.download`: :class:`Downloader`, cached, retried, size-capped, offline
- :mod:`~oneclass.data.splits`: perceptual hashes, near-duplicate groups, group splits, audits
- :mod:`~oneclass.data.manifests`: ``datasets/<name>.yaml``, :func:`data_root`,
  :func:`dataset_items`, :func:`verify`, :func:`fetch`
- :mod:`~oneclass.data.adbench`: the ADBench arrays

Submodules are imported explicitly (``from oneclass.data.sources import open_source``), so
importing one does not load the others.
"""
