"""The pure torch module behind ``effnet-lite0-patches``: PatchCore-style local features.

:class:`PatchFeatures` runs the stem and the first blocks of an EfficientNet-Lite network and
returns one feature map per *tap*, each averaged over its 3 x 3 neighbourhood (stride 1,
padding 1: PatchCore's "local neighbourhood aggregation"), resized bilinearly to the grid of the
first (finest) tap and concatenated along the channels.

A tap names a place in the network:

* ``"b4"``: the output of block 4 (a stage output, the "layer" of PatchCore's ResNet);
* ``"x5"``: the expanded activation inside block 5 (after its 1 x 1 expansion convolution and
  ReLU6, before the depthwise convolution): 6 times the channels of the block's input, at the
  input's resolution; richer than the narrow stage outputs of a mobile network.

EfficientNet-Lite0 at 224 x 224: blocks 3-4 give 40 channels at stride 8 (28 x 28), blocks 5-7
80 and 8-10 112 channels at stride 16 (14 x 14); ``x5`` is 240 channels at stride 8, ``x11`` 672
at stride 16.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

TAP_PATTERN = re.compile(r"^([bx])(\d+)$")


def parse_tap(tap: str) -> tuple[str, int]:
    """Split a tap name into its type and block index.

    Args:
        tap: ``"b<i>"`` (output of block ``i``) or ``"x<i>"`` (expanded activation of block ``i``).

    Returns:
        ``("b" | "x", i)``.

    Raises:
        ValueError: the name does not follow the pattern.
    """
    m = TAP_PATTERN.match(str(tap))
    if not m:
        raise ValueError(
            f"tap {tap!r}: expected 'b<block>' (block output) or 'x<block>' "
            "(expanded activation inside a block)"
        )
    return m.group(1), int(m.group(2))


class PatchFeatures(nn.Module):
    """Local patch features of an EfficientNet-Lite classifier (``efficientnet_lite_pytorch``).

    Args:
        net: the classifier (its stem, ``_blocks`` and activation are used; the head is not).
        taps: where to read features (see the module docstring), finest first.
        pool: side of the neighbourhood averaging window (odd; ``1`` = none).
    """

    def __init__(self, net: Any, taps: tuple[str, ...], pool: int = 3):
        super().__init__()
        parsed = [parse_tap(t) for t in taps]
        if not parsed:
            raise ValueError("at least one tap is needed")
        n_blocks = len(net._blocks)
        last = max(i for _, i in parsed)
        if last >= n_blocks:
            raise ValueError(f"tap block {last} does not exist: the network has {n_blocks} blocks")
        for kind, i in parsed:
            if kind == "x" and net._blocks[i]._block_args.expand_ratio == 1:
                raise ValueError(f"block {i} has no expansion convolution: use 'b{i}'")
        if pool < 1 or pool % 2 == 0:
            raise ValueError(f"pool must be an odd positive integer, got {pool}")
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.ModuleList(list(net._blocks)[: last + 1])
        self.act = net._swish
        self.taps = parsed
        self.pool = pool

    def channels(self) -> int:
        """Returns the length of one patch vector (the concatenated channels of all taps)."""
        total = 0
        for kind, i in self.taps:
            args: Any = self.blocks[i]._block_args
            if kind == "b":
                total += int(args.output_filters)
            else:
                total += int(args.input_filters * args.expand_ratio)
        return total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the ``(n, channels, rows, cols)`` patch features of a normalised batch."""
        wanted_b = {i for kind, i in self.taps if kind == "b"}
        wanted_x = {i for kind, i in self.taps if kind == "x"}
        found: dict[tuple[str, int], torch.Tensor] = {}
        x = self.stem(x)
        block: Any
        for i, block in enumerate(self.blocks):
            if i in wanted_x:
                found[("x", i)] = self.act(block._bn0(block._expand_conv(x)))
            x = block(x)
            if i in wanted_b:
                found[("b", i)] = x
        maps = [found[t] for t in self.taps]
        size = maps[0].shape[-2:]
        out = []
        for m in maps:
            if self.pool > 1:
                m = F.avg_pool2d(
                    m, self.pool, stride=1, padding=self.pool // 2, count_include_pad=False
                )
            if m.shape[-2:] != size:
                m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
            out.append(m)
        return torch.cat(out, dim=1)
