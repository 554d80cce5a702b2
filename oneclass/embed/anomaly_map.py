"""Anomaly maps of patch embeddings: where in the image the detector saw something out of class.

A patch embedder (kind ``"patch"``) gives one vector per cell of a ``grid`` laid over the whole
image; :func:`oneclass.embed.aggregate.score_images` returns the in-class score of every vector.
:func:`anomaly_map` turns those scores into a per-pixel map as PatchCore does (flip the sign so
that high = anomalous, upsample bilinearly to the image, Gaussian blur with sigma 4 pixels);
:func:`overlay` draws it as a heat map over the image for galleries and ``oneclass score --maps``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: PatchCore's Gaussian smoothing of the upsampled map, in pixels of the output
SIGMA = 4.0


def anomaly_map(
    vector_scores: np.ndarray,
    grid: tuple[int, int],
    image_size: tuple[int, int],
    *,
    sigma: float = SIGMA,
) -> np.ndarray:
    """Per-pixel anomaly of an image from the in-class scores of its patches.

    Args:
        vector_scores: ``(rows * cols,)`` in-class scores (higher = more in-class) of the patch
            vectors, in the embedding's order (row-major over the grid).
        grid: ``(rows, cols)`` of the patch grid.
        image_size: ``(width, height)`` of the image (PIL's ``Image.size`` order).
        sigma: standard deviation of the Gaussian smoothing, in output pixels (0 = none).

    Returns:
        ``(height, width)`` float32 map, higher = more anomalous (minus the in-class score).

    Raises:
        ValueError: the number of scores does not match the grid, or a size is not positive.
    """
    import torch
    import torch.nn.functional as F

    rows, cols = (int(v) for v in grid)
    width, height = (int(v) for v in image_size)
    scores = np.asarray(vector_scores, dtype=np.float32).ravel()
    if rows < 1 or cols < 1 or scores.size != rows * cols:
        raise ValueError(f"{scores.size} patch scores do not fill a {rows} x {cols} grid")
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {image_size}")
    amap = torch.from_numpy(-scores.reshape(1, 1, rows, cols))
    amap = F.interpolate(amap, size=(height, width), mode="bilinear", align_corners=False)
    if sigma > 0:
        amap = gaussian_blur(amap, float(sigma))
    return amap[0, 0].numpy().astype(np.float32)


def gaussian_blur(x, sigma: float):
    """Returns ``x`` (a ``(1, 1, H, W)`` tensor) blurred by a separable Gaussian (edges
    reflected)."""
    import torch
    import torch.nn.functional as F

    radius = max(1, int(round(4.0 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    h, w = x.shape[-2:]
    # reflection needs the pad to be smaller than the side; replicate beyond that
    mode = "reflect" if radius < min(h, w) else "replicate"
    x = F.pad(x, (radius, radius, 0, 0), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, radius, radius), mode=mode)
    return F.conv2d(x, kernel.view(1, 1, -1, 1))


def overlay(
    image: Image.Image,
    amap: np.ndarray,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Image.Image:
    """Draw an anomaly map as a heat map over its image.

    Args:
        image: the image (any mode; drawn in RGB).
        amap: ``(H, W)`` map from :func:`anomaly_map`; resized to the image if its size differs.
        alpha: opacity of the heat map (0 = image only, 1 = map only).
        cmap: a matplotlib colormap name.
        vmin: map value drawn with the colormap's lowest colour (default: the map's minimum).
            Pass the same ``vmin``/``vmax`` for every image of a gallery to compare them.
        vmax: map value drawn with the highest colour (default: the map's maximum).

    Returns:
        An RGB :class:`PIL.Image.Image` of the image's size.
    """
    from matplotlib import colormaps

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    base = image.convert("RGB")
    values = np.asarray(amap, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"anomaly map must be 2-D (H, W), got shape {values.shape}")
    if values.shape != (base.height, base.width):
        resized = Image.fromarray(values).resize(base.size, Image.Resampling.BILINEAR)
        values = np.asarray(resized, dtype=np.float32)
    lo = float(np.min(values)) if vmin is None else float(vmin)
    hi = float(np.max(values)) if vmax is None else float(vmax)
    norm = np.clip((values - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(values)
    rgb = (colormaps[cmap](norm)[..., :3] * 255.0).astype(np.uint8)
    return Image.blend(base, Image.fromarray(rgb), alpha)
