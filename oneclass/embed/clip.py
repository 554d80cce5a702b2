"""CLIP image and text embedder (open_clip or transformers backend), L2-normalised vectors.

Weights come from a local file or folder, or from the library's own download cache; they are
downloaded only with ``allow_download=True``. Without it, missing weights raise
:class:`WeightsNotFoundError` naming every place that was searched.

* open_clip (default): ``ClipEmbedder(model="ViT-B-32", pretrained="openai")`` (a tag, looked up
  in the Hugging Face / open_clip caches), ``pretrained="/models/clip.safetensors"`` (a checkpoint
  for that architecture), or ``model_path="/models/clip"`` (a folder with
  ``open_clip_config.json`` and its weights, open_clip's ``local-dir`` layout).
* transformers: ``ClipEmbedder(backend="transformers", model_path="/models/clip-vit-b32")`` (a
  folder written by ``CLIPModel.save_pretrained`` with its processor and tokenizer files), or
  ``model="openai/clip-vit-base-patch32"`` from the Hugging Face cache.

Image vectors and :meth:`ClipEmbedder.embed_text` vectors share one space, so their dot product is
the cosine similarity used by the ``clip-prompt`` detector. A tiny randomly initialised CLIP for
tests and benchmarks on machines without weights: :mod:`oneclass.embed.clip_random`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from oneclass.embed.base import Embedder, ImageEmbedding, default_device, default_threads
from oneclass.embed.clip_files import file_digest, folder_digest, weights_in

BACKENDS = ("open_clip", "transformers")
OPEN_CLIP_CONFIG = "open_clip_config.json"


class WeightsNotFoundError(ValueError):
    """Model weights that are not on this machine (and downloading was not allowed)."""


@dataclass
class _Source:
    """Where the weights are, resolved without loading them."""

    backend: str
    ident: str  # the part of ``name`` that pins the weights
    model: str = ""  # open_clip architecture name or "local-dir:<folder>"; HF folder or repo id
    checkpoint: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


class ClipEmbedder(Embedder):
    """CLIP image vectors (one per image) and text vectors, both L2-normalised float32.

    Parameters
    ----------
    model : open_clip architecture (``"ViT-B-32"``) or, with ``backend="transformers"``, a Hugging
        Face repo id looked up in its cache.
    pretrained : open_clip weights: a tag of ``model`` (``"openai"``, ``"laion2b_s34b_b79k"``...),
        a checkpoint file, or a ``local-dir`` folder.
    backend : ``"open_clip"`` or ``"transformers"``.
    model_path : a local model folder (either backend); overrides ``model``/``pretrained``.
    cache_dir : where the libraries keep downloads (``None``: their defaults).
    allow_download : fetch missing weights from the internet (default ``False``: never).
    batch_size, device, threads : as for every embedder (``None``: CUDA if present; all cores).
    """

    kind = "image"
    preprocess_version = "1"

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = "openai",
        backend: str = "open_clip",
        model_path: str | None = None,
        cache_dir: str | None = None,
        allow_download: bool = False,
        batch_size: int = 32,
        device: str | None = None,
        threads: int | None = None,
    ):
        self.model = model
        self.pretrained = pretrained
        self.backend = backend
        self.model_path = model_path
        self.cache_dir = cache_dir
        self.allow_download = allow_download
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self._source: _Source | None = None
        self._loaded: tuple | None = None
        self._lock = threading.Lock()

    # ---- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"clip/{self.backend}/{self._resolve().ident}"

    @property
    def dim(self) -> int:
        return int(self._load()[3])

    @property
    def size_hint(self) -> int:  # type: ignore[override]
        """Input resolution: big JPEGs may be decoded at a draft scale down to this size."""
        return int(self._load()[4])

    # ---- resolving weights ----------------------------------------------------------------
    def _resolve(self) -> _Source:
        if self._source is None:
            if self.backend not in BACKENDS:
                raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
            if self.backend == "open_clip":
                self._source = self._resolve_open_clip()
            else:
                self._source = self._resolve_transformers()
        return self._source

    def _resolve_open_clip(self) -> _Source:
        import open_clip

        folder = self.model_path
        if folder is None and str(self.model).startswith("local-dir:"):
            folder = str(self.model)[len("local-dir:") :]
        if folder is None and self.pretrained and Path(self.pretrained).is_dir():
            folder = self.pretrained
        if folder is not None:
            path = Path(folder).expanduser()
            if not (path / OPEN_CLIP_CONFIG).is_file():
                hint = (
                    " (it looks like a transformers folder: pass backend='transformers')"
                    if (path / "config.json").is_file()
                    else ""
                )
                raise WeightsNotFoundError(
                    f"{path}: not an open_clip model folder: no {OPEN_CLIP_CONFIG}{hint}"
                )
            if not weights_in(path):
                raise WeightsNotFoundError(f"{path}: no weights file (.safetensors/.bin/.pt)")
            return _Source(
                "open_clip",
                f"local/{folder_digest(path)[:16]}",
                model=f"local-dir:{path.resolve()}",
            )
        if open_clip.get_model_config(self.model) is None:
            raise ValueError(
                f"unknown open_clip model {self.model!r}; available: "
                f"{', '.join(open_clip.list_models()[:20])}, ... (open_clip.list_models())"
            )
        if not self.pretrained:
            raise ValueError(
                "pretrained is empty: give a tag, a checkpoint file or model_path "
                "(a CLIP without trained weights embeds nothing useful)"
            )
        if Path(self.pretrained).expanduser().is_file():
            file = Path(self.pretrained).expanduser()
            return _Source(
                "open_clip",
                f"{self.model}/sha256:{file_digest(file)[:16]}",
                model=self.model,
                checkpoint=str(file),
            )
        cfg = open_clip.get_pretrained_cfg(self.model, self.pretrained)
        if not cfg:
            tags = open_clip.list_pretrained_tags_by_model(self.model)
            raise WeightsNotFoundError(
                f"pretrained={self.pretrained!r} is neither a file nor a tag of {self.model} "
                f"(tags: {', '.join(tags) or 'none'})"
            )
        ident = f"{self.model}/{self.pretrained}"
        if self.allow_download:
            return _Source(
                "open_clip",
                ident,
                model=self.model,
                kwargs={"pretrained": self.pretrained, "cache_dir": self.cache_dir},
            )
        ckpt, looked = self._cached_open_clip_file(cfg)
        if ckpt is None:
            raise WeightsNotFoundError(
                f"CLIP weights {self.model}/{self.pretrained} are not on this machine; looked in: "
                f"{'; '.join(looked)}. Pass pretrained=<checkpoint file> or model_path=<folder>, "
                f"or allow_download=True to fetch them"
            )
        preprocess = {
            k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg
        }
        return _Source(
            "open_clip",
            ident,
            model=self.model,
            checkpoint=ckpt,
            kwargs={
                "force_quick_gelu": bool(cfg.get("quick_gelu", False)),
                "force_preprocess_cfg": preprocess,
            },
        )

    def _cached_open_clip_file(self, cfg: dict) -> tuple[str | None, list[str]]:
        """A tag's checkpoint in the Hugging Face cache or open_clip's URL cache, if there."""
        looked: list[str] = []
        hub = cfg.get("hf_hub", "")
        if hub:
            from huggingface_hub import try_to_load_from_cache
            from huggingface_hub.constants import HF_HUB_CACHE

            repo, filename = (
                os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
            )
            names = (
                [filename]
                if filename
                else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
            )
            if filename.endswith((".bin", ".pth")):
                names.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")
            for name in names:
                found = try_to_load_from_cache(repo, name, cache_dir=self.cache_dir)
                if isinstance(found, str):
                    return found, looked
            looked.append(
                f"Hugging Face cache {self.cache_dir or HF_HUB_CACHE} "
                f"(repo {repo}: {', '.join(names)})"
            )
        url = cfg.get("url", "")
        if url:
            target = Path(self.cache_dir or "~/.cache/clip").expanduser() / os.path.basename(url)
            if target.is_file():
                return str(target), looked
            looked.append(str(target))
        return None, looked

    def _resolve_transformers(self) -> _Source:
        if self.model_path is not None:
            path = Path(self.model_path).expanduser()
            if not (path / "config.json").is_file():
                hint = (
                    " (it looks like an open_clip folder: use backend='open_clip')"
                    if (path / OPEN_CLIP_CONFIG).is_file()
                    else ""
                )
                raise WeightsNotFoundError(
                    f"{path}: not a transformers CLIP folder: no config.json{hint}"
                )
            return _Source(
                "transformers", f"local/{folder_digest(path)[:16]}", model=str(path.resolve())
            )
        if not self.model or "/" not in str(self.model):
            raise ValueError(
                "backend='transformers' needs model_path=<folder> or "
                "model=<Hugging Face repo id, e.g. openai/clip-vit-base-patch32>"
            )
        return _Source(
            "transformers",
            str(self.model),
            model=str(self.model),
            kwargs={"cache_dir": self.cache_dir, "local_files_only": not self.allow_download},
        )

    # ---- loading --------------------------------------------------------------------------
    def _load(self) -> tuple:
        """(model, image function, text function, dim, input size), loaded once."""
        with self._lock:
            if self._loaded is None:
                import torch

                if int(self.batch_size) < 1:
                    raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
                src = self._resolve()
                if self._device() == "cpu":
                    torch.set_num_threads(self.threads or default_threads())
                loader = self._load_open_clip if src.backend == "open_clip" else self._load_hf
                self._loaded = loader(src)
        return self._loaded

    def _device(self) -> str:
        return self.device or default_device()

    def _load_open_clip(self, src: _Source) -> tuple:
        import open_clip

        kwargs = dict(src.kwargs)
        pretrained = kwargs.pop("pretrained", src.checkpoint)
        model, _, preprocess = open_clip.create_model_and_transforms(
            src.model, pretrained=pretrained, device=self._device(), **_preprocess_kwargs(kwargs)
        )
        model.eval()
        tokenizer = open_clip.get_tokenizer(src.model)
        dim = (
            int(model.text_projection.shape[1])
            if getattr(model, "text_projection", None) is not None
            else None
        )
        if dim is None:
            dim = int(model.encode_text(tokenizer(["a"]).to(self._device())).shape[1])

        def image_fn(images):
            import torch

            x = torch.stack([preprocess(im) for im in images]).to(self._device())
            return model.encode_image(x)

        def text_fn(prompts):
            return model.encode_text(tokenizer(list(prompts)).to(self._device()))

        size = getattr(model.visual, "image_size", 224)
        return model, image_fn, text_fn, dim, max(size) if isinstance(size, tuple | list) else size

    def _load_hf(self, src: _Source) -> tuple:
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        try:
            model: Any = CLIPModel.from_pretrained(src.model, **src.kwargs)
            processor = CLIPImageProcessor.from_pretrained(src.model, **src.kwargs)
            tokenizer = AutoTokenizer.from_pretrained(src.model, **src.kwargs)
        except OSError as exc:
            where = (
                src.model
                if self.model_path
                else (f"the Hugging Face cache {self.cache_dir or 'default'} (repo {src.model})")
            )
            raise WeightsNotFoundError(
                f"CLIP model not found in {where}: {exc}. Pass model_path=<folder>"
                + ("" if self.allow_download else " or allow_download=True")
            ) from exc
        model = model.to(self._device()).eval()

        def pooled(out):
            return out if hasattr(out, "shape") else out.pooler_output

        def image_fn(images):
            pixels = processor(images=list(images), return_tensors="pt")["pixel_values"]
            return pooled(model.get_image_features(pixel_values=pixels.to(self._device())))

        def text_fn(prompts):
            tok = tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt")
            tok = {k: v.to(self._device()) for k, v in tok.items()}
            return pooled(model.get_text_features(**tok))

        crop = getattr(processor, "crop_size", None)
        sizes = [
            getattr(crop, k, None) or (crop.get(k) if isinstance(crop, dict) else None)
            for k in ("height", "width")
        ]
        size = max((s for s in sizes if s), default=224)
        return model, image_fn, text_fn, int(model.config.projection_dim), int(size)

    # ---- embedding ------------------------------------------------------------------------
    def embed_batch(self, images: Sequence[Image.Image]) -> list[ImageEmbedding]:
        if len(images) == 0:
            return []
        image_fn = self._load()[1]
        images = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        vecs = _normalised(image_fn, images)
        return [ImageEmbedding(vectors=v[None, :]) for v in vecs]

    def embed_text(self, prompts: Sequence[str] | str) -> np.ndarray:
        """``(n, dim)`` float32 L2-normalised text vectors, in the image vectors' space."""
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise ValueError("no prompts given")
        bad = [p for p in prompts if not isinstance(p, str) or not p.strip()]
        if bad:
            raise ValueError(f"prompts must be non-empty strings, got {bad[:3]!r}")
        text_fn = self._load()[2]
        return _normalised(text_fn, prompts)


def _preprocess_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Translate ``force_preprocess_cfg`` into create_model_and_transforms' image_* arguments."""
    pre = kwargs.pop("force_preprocess_cfg", None) or {}
    for key in ("mean", "std", "interpolation", "resize_mode"):
        if key in pre:
            kwargs[f"image_{key}"] = pre[key]
    return kwargs


def _normalised(fn, inputs) -> np.ndarray:
    import torch

    with torch.inference_mode():
        out = fn(inputs).float()
        out = torch.nn.functional.normalize(out, dim=-1)
    return out.cpu().numpy().astype(np.float32)
