"""dlib-face: dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``), 128-d
face vectors.

Pipeline per image: find faces (:mod:`oneclass.embed.faces`: HOG coarse to fine, then MTCNN, then
the wide search for small and tilted faces) -> 5-point landmarks -> 150 px chips aligned exactly
as dlib aligns them -> the ResNet.

Speed: dlib's own CPU network (the ``dlib-bin`` wheel has no BLAS) costs about 70-200 ms per face,
so the network runs as the equivalent torch module of :mod:`oneclass.embed.dlib_resnet` (about
6 ms of CPU per face), batched over every face of a batch; ``backend="dlib"`` keeps dlib's own
network (also used for ``num_jitters``). Face finding and alignment run on a small thread pool
(dlib releases the GIL). On CPU the network runs single-threaded in each of ``threads`` pool
threads, on its share of the faces: torch's own OpenMP threads spin against other jobs for the
cores and were 3-4 times slower on the busy 2-core development machine. There, the 318 Cage
crops, decoding included, run at 60-95 images/s (about 10 ms of CPU per image; ``backend="dlib"``:
7 images/s).

Vectors live in dlib's metric space (the same person when the Euclidean distance is under about
0.6) and are not normalised: their norm lies between 1.2 and 1.75 (measured 1.23 to 1.67 over
the faces of all 2,336 images of the shared Cage, Trump, Glint, BSDS500 and LFW-sample sets).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from torch import nn

from oneclass.embed import faces as facelib
from oneclass.embed.base import Embedder, ImageEmbedding, default_device, default_threads
from oneclass.embed.dlib_resnet import load_dlib_resnet

#: documented range of the descriptor norm (see the module notes)
NORM_RANGE = (1.2, 1.75)
CHIP_SIZE = 150
CHIP_PADDING = 0.25
_LOAD_LOCK = threading.Lock()


class DlibFaceEmbedder(Embedder):
    """dlib ResNet face descriptors: one 128-d float32 vector per face found, with its box.

    Parameters
    ----------
    detector : ``"hog"`` (default), ``"cnn"`` or ``"mtcnn"`` (see :mod:`oneclass.embed.faces`).
    upsample : ``"auto"`` (coarse-to-fine scales) or dlib's number of 2x upsamplings.
    min_face_size : smallest face looked for, in (searched) pixels.
    max_faces : keep at most this many faces per image, largest first (``None``: all).
    fallback : look with MTCNN in images where ``hog``/``cnn`` find no face.
    search : ``"wide"`` (small and tilted faces too, where the first passes found none) or
        ``"fast"`` (the first passes only).
    max_side : images are searched and aligned with their longer side at most this many pixels.
    num_jitters : dlib's jittered re-sampling (0: none; > 0 uses dlib's own, slower network).
    backend : ``"torch"`` (dlib's network run by torch) or ``"dlib"``.
    batch_size : images per :meth:`embed_batch` call from :meth:`embed`.
    threads : CPU threads (torch and the face-finding pool); ``None``: :func:`default_threads`.
    device : torch device of the network; ``None``: CUDA when present.
    """

    kind = "face"
    preprocess_version = "2"

    def __init__(
        self,
        detector: str = "hog",
        upsample: int | str = "auto",
        min_face_size: float = 20,
        max_faces: int | None = 10,
        fallback: bool = True,
        search: str = "wide",
        max_side: int = facelib.MAX_SIDE,
        num_jitters: int = 0,
        backend: str = "torch",
        batch_size: int = 32,
        threads: int | None = None,
        device: str | None = None,
    ):
        self.detector = detector
        self.upsample = upsample
        self.min_face_size = min_face_size
        self.max_faces = max_faces
        self.fallback = fallback
        self.search = search
        self.max_side = max_side
        self.num_jitters = num_jitters
        self.backend = backend
        self.batch_size = batch_size
        self.threads = threads
        self.device = device

    @property
    def name(self) -> str:
        """Returns the identity of model and face search (keys the embedding cache)."""
        opts = []
        if self.upsample != "auto":
            opts.append(f"up={self.upsample}")
        if self.min_face_size != 20:
            opts.append(f"min={self.min_face_size:g}")
        if self.max_faces != 10:
            opts.append(f"max={self.max_faces}")
        if not self.fallback and self.detector != "mtcnn":
            opts.append("nofallback")
        if self.search != "wide":
            opts.append(self.search)
        if self.max_side != facelib.MAX_SIDE:
            opts.append(f"side={self.max_side}")
        if self.num_jitters:
            opts.append(f"jitter={self.num_jitters}")
        return f"dlib-face/resnet_v1+{self.detector}" + (f"[{','.join(opts)}]" if opts else "")

    @property
    def dim(self) -> int:
        """Returns 128."""
        return 128

    # ---- setup -----------------------------------------------------------------------------
    def _validate(self) -> None:
        facelib.check_face_options(
            self.detector,
            self.upsample,
            self.min_face_size,
            self.max_faces,
            self.search,
            self.max_side,
        )
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
        with _LOAD_LOCK:
            if getattr(self, "net_", None) is None:
                self._validate()
                threads = self.threads_ = self.threads or default_threads()
                self.pool_ = None
                if threads > 1:
                    self.pool_ = ThreadPoolExecutor(
                        threads,
                        thread_name_prefix="dlib-face",
                        initializer=torch.set_num_threads,
                        initargs=(1,),
                    )
                if self.backend == "dlib" or self.num_jitters:
                    self.net_ = facelib.dlib_module().face_recognition_model_v1(
                        facelib.dlib_model_file("recognition")
                    )
                else:
                    self.net_ = self._build_torch(threads)
        return self.net_

    def _build_torch(self, threads: int):
        device = torch.device(self._device())
        if device.type == "cpu" and threads == 1:
            torch.set_num_threads(1)
        return load_dlib_resnet().to(device).to(memory_format=torch.channels_last)

    # ---- embedding -------------------------------------------------------------------------
    def _map(self, fn, items):
        return list(self.pool_.map(fn, items)) if self.pool_ else [fn(i) for i in items]

    def _descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, 128), dtype=np.float32)
        net = self.net_
        if isinstance(net, nn.Module):

            def forward(part: list[np.ndarray]) -> np.ndarray:
                x = torch.from_numpy(np.stack(part)).to(self._device()).permute(0, 3, 1, 2)
                with torch.inference_mode():
                    x = x.float().contiguous(memory_format=torch.channels_last)
                    return net(x).cpu().numpy()

            if self.pool_ is None or self._device() != "cpu":
                return forward(chips)
            # one single-threaded forward per pool thread: robust where torch's own OpenMP
            # threads would spin against other jobs for the cores
            n = min(self.threads_, len(chips))
            out = np.empty((len(chips), 128), dtype=np.float32)
            for i, vecs in enumerate(self.pool_.map(forward, [chips[i::n] for i in range(n)])):
                out[i::n] = vecs
            return out
        if self.num_jitters:
            vecs = [net.compute_face_descriptor(c, self.num_jitters) for c in chips]
        else:
            vecs = net.compute_face_descriptor(chips)
        return np.array([np.asarray(v) for v in vecs], dtype=np.float32)

    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        """Returns one :class:`ImageEmbedding` per image: a vector and a box (input pixels) per
        face found, largest first; ``(0, 128)`` vectors for an image without a face."""
        if len(images) == 0:
            return []
        self._load()
        sizes = [im.size if isinstance(im, Image.Image) else im.shape[1::-1] for im in images]
        capped = self._map(lambda im: facelib.capped_rgb(im, self.max_side), images)
        arrays = [a for a, _ in capped]
        found = facelib.find_faces(
            arrays,
            detector=self.detector,
            upsample=self.upsample,
            min_face_size=self.min_face_size,
            max_faces=self.max_faces,
            fallback=self.fallback,
            search=self.search,
            max_side=self.max_side,
            device=self._device(),
            executor=self.pool_,
        )
        chips = self._map(
            lambda af: facelib.dlib_chips(af[0], af[1], CHIP_SIZE, CHIP_PADDING),
            list(zip(arrays, found, strict=True)),
        )
        vectors = self._descriptors([c for cs in chips for c in cs]).astype(np.float32)
        out, start = [], 0
        for (_, scale), faces, (w, h) in zip(capped, found, sizes, strict=True):
            faces = [facelib.scaled_face(f, 1.0 / scale) for f in faces]
            boxes = facelib.clipped_boxes(faces, w, h)
            out.append(ImageEmbedding(vectors=vectors[start : start + len(faces)], boxes=boxes))
            start += len(faces)
        return out
