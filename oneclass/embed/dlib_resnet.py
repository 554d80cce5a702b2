"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``) read from dlib's own
model file into an equivalent torch module.

:func:`read_dlib_net` parses dlib's serialisation; :class:`DlibResNet` is the network (affine
layers folded into the convolutions) and reproduces dlib's descriptors to about 1e-6 at about
6 ms of CPU per face (dlib's own CPU network in the ``dlib-bin`` wheel, without BLAS: 70-200 ms).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from oneclass.embed.face_detect import dlib_model_file

_LAYER = re.compile(
    rb"\x01([\x04-\x20])(input_rgb_image_sized|con_4|affine_|relu_|max_pool_2|"
    rb"avg_pool_2|add_prev_|fc_2)"
)


# ---- reading dlib's serialised network ---------------------------------------------------------
class _Reader:
    """dlib's serialisation: compact integers, floats as (mantissa, exponent), tensors as
    little-endian float32 after a version and 4 dimensions."""

    def __init__(self, buf: bytes, path: str):
        self.buf, self.pos, self.path = buf, 0, path

    def fail(self, what: str) -> ValueError:
        return ValueError(
            f"{self.path}: not a readable dlib network file ({what} at byte {self.pos})"
        )

    def integer(self) -> int:
        if self.pos >= len(self.buf):
            raise self.fail("unexpected end of file")
        head = self.buf[self.pos]
        size = head & 0x0F
        if size > 8 or self.pos + 1 + size > len(self.buf):
            raise self.fail("corrupt integer")
        value = int.from_bytes(self.buf[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def ints(self, n: int) -> list[int]:
        return [self.integer() for _ in range(n)]

    def floats(self, n: int) -> list[float]:
        return [float(m) * 2.0**e for m, e in (self.ints(2) for _ in range(n))]

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise self.fail("unsupported tensor version")
        count = int(np.prod(self.ints(4)))
        if self.pos + 4 * count > len(self.buf):
            raise self.fail("truncated tensor")
        data = np.frombuffer(self.buf, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return data.astype(np.float32)

    def alias(self) -> list[int]:
        if self.integer() != 1:
            raise self.fail("unsupported alias_tensor version")
        return self.ints(4)

    def next_layer(self) -> str | None:
        m = _LAYER.search(self.buf, self.pos)
        if m is None:
            return None
        if self.pos and m.start() - self.pos > 4096:
            raise self.fail("unknown layer")
        if m.group(1)[0] != len(m.group(2)):
            raise self.fail("corrupt layer name")
        self.pos = m.end()
        return m.group(2).decode()


def read_dlib_net(path: str | Path) -> list[tuple[str, dict]]:
    """The layers of a dlib network file, input first: ``[(kind, params), ...]`` for the layer
    kinds of the face recognition ResNet (input, con, affine, relu, max_pool, avg_pool,
    add_prev, fc)."""
    path = str(path)
    with open(path, "rb") as fh:
        r = _Reader(fh.read(), path)
    layers: list[tuple[str, dict]] = []
    while (kind := r.next_layer()) is not None:
        if kind == "input_rgb_image_sized":
            layers.append(("input", {"mean": r.floats(3), "size": r.ints(2)}))
        elif kind == "con_4":
            params = r.tensor()
            nf, nr, nc, sy, sx, py, px = r.ints(7)
            shape = r.alias()
            r.alias()
            r.floats(4)  # learning-rate and weight-decay multipliers
            n = int(np.prod(shape))
            if shape[0] != nf or shape[2:] != [nr, nc] or params.size != n + nf:
                raise r.fail("inconsistent convolution")
            layers.append(
                (
                    "con",
                    {
                        "w": params[:n].reshape(shape),
                        "b": params[n:],
                        "stride": (sy, sx),
                        "pad": (py, px),
                    },
                )
            )
        elif kind == "affine_":
            params = r.tensor()
            k = int(np.prod(r.alias()))
            r.alias()
            r.integer()  # mode
            layers.append(("affine", {"g": params[:k], "b": params[k : 2 * k]}))
        elif kind in ("max_pool_2", "avg_pool_2"):
            nr, nc, sy, sx, py, px = r.ints(6)
            layers.append(
                (kind[:3] + "_pool", {"size": (nr, nc), "stride": (sy, sx), "pad": (py, px)})
            )
        elif kind == "fc_2":
            nout, nin = r.ints(2)
            params = r.tensor()
            r.alias()
            r.alias()
            has_bias = r.integer() == 0
            r.floats(4)
            bias = params[nin * nout : nin * nout + nout] if has_bias else None
            layers.append(("fc", {"w": params[: nin * nout].reshape(nin, nout), "b": bias}))
        else:
            layers.append((kind.rstrip("_"), {}))
    return layers


def _layout(layers: list[tuple[str, dict]], path: str) -> list[bool]:
    """Check the face-ResNet layer sequence; return, per residual block, whether it downsamples."""
    kinds = [k for k, _ in layers]
    block = ["con", "affine", "relu", "con", "affine"]
    if (
        kinds[:5] != ["input", "con", "affine", "relu", "max_pool"]
        or kinds[-2:] != ["avg_pool", "fc"]
        or layers[-2][1]["size"] != (0, 0)
    ):
        raise ValueError(f"{path}: not dlib's face recognition ResNet (layers {kinds[:6]}...)")
    downs, i = [], 5
    while i < len(kinds) - 2:
        down = kinds[i + 5 : i + 6] == ["avg_pool"]
        want = block + (["avg_pool"] if down else []) + ["add_prev", "relu"]
        if kinds[i : i + len(want)] != want:
            raise ValueError(f"{path}: unexpected layers {kinds[i : i + len(want)]} at layer {i}")
        downs.append(down)
        i += len(want)
    return downs


class DlibResNet(nn.Module):
    """dlib's face ResNet in torch: uint8-range RGB ``(n, 3, 150, 150)`` in, 128-d out.

    Residual sums follow dlib's ``add_prev``: tensors of different shapes are added as if
    the smaller were zero-padded (channels, bottom, right).
    """

    def __init__(self, layers: list[tuple[str, dict]], path: str = "<layers>"):
        super().__init__()
        self.downs = _layout(layers, path)
        self.register_buffer("mean", torch.tensor(layers[0][1]["mean"]).view(1, 3, 1, 1))
        pool = layers[4][1]
        self.pool = (pool["size"], pool["stride"], pool["pad"])
        self.stem = self._conv(layers[1][1], layers[2][1])
        convs, i = [], 5
        for down in self.downs:
            convs += [
                self._conv(layers[i][1], layers[i + 1][1]),
                self._conv(layers[i + 3][1], layers[i + 4][1]),
            ]
            i += 8 if down else 7
        self.convs = nn.ModuleList(convs)
        fc = layers[-1][1]
        self.fc = nn.Linear(int(fc["w"].shape[0]), int(fc["w"].shape[1]), bias=fc["b"] is not None)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(fc["w"].T.copy()))
            if fc["b"] is not None:
                self.fc.bias.copy_(torch.from_numpy(fc["b"]))

    @staticmethod
    def _conv(con: dict, aff: dict) -> nn.Conv2d:
        """A convolution with the affine layer after it folded in."""
        w = torch.from_numpy(con["w"])
        g = torch.from_numpy(aff["g"])
        conv = nn.Conv2d(
            int(w.shape[1]),
            int(w.shape[0]),
            (int(w.shape[2]), int(w.shape[3])),
            stride=con["stride"],
            padding=con["pad"],
        )
        assert conv.bias is not None
        with torch.no_grad():
            conv.weight.copy_(w * g.view(-1, 1, 1, 1))
            conv.bias.copy_(torch.from_numpy(con["b"]) * g + torch.from_numpy(aff["b"]))
        return conv

    @staticmethod
    def _add(x, y):
        if x.shape != y.shape:
            c, h, w = (max(a, b) for a, b in zip(x.shape[1:], y.shape[1:], strict=True))
            x = F.pad(x, (0, w - x.shape[3], 0, h - x.shape[2], 0, c - x.shape[1]))
            y = F.pad(y, (0, w - y.shape[3], 0, h - y.shape[2], 0, c - y.shape[1]))
        return x + y

    def forward(self, x):
        x = (x - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), *self.pool)
        for j, down in enumerate(self.downs):
            y = self.convs[2 * j + 1](F.relu(self.convs[2 * j](x)))
            x = F.relu(self._add(F.avg_pool2d(x, 2, 2) if down else x, y))
        return self.fc(x.mean(dim=(2, 3)))


def load_dlib_resnet(path: str | Path | None = None):
    """dlib's face ResNet as an eval-mode torch module (default: the shipped model file)."""
    path = str(path or dlib_model_file("recognition"))
    return DlibResNet(read_dlib_net(path), path).eval()
