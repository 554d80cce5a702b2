"""Build embedders by name: ``make_embedder("dlib-face")``."""

from __future__ import annotations

from oneclass.registry import Registry, parse_spec

EMBEDDERS = Registry(
    "embedder",
    {
        "dlib-face": "oneclass.embed.dlib_face:DlibFaceEmbedder",
        "facenet": "oneclass.embed.facenet:FaceNetEmbedder",
        "clip": "oneclass.embed.clip:ClipEmbedder",
        "effnet-lite0": "oneclass.embed.effnet:EffNetLite0Embedder",
    },
)


def make_embedder(name: str, **params):
    """An embedder by registry name or spec (``"clip:model_path=/models/clip"``)."""
    name, spec_params = parse_spec(name)
    return EMBEDDERS.make(name, **{**spec_params, **params})


def available_embedders() -> list[str]:
    """Registered embedder names."""
    return EMBEDDERS.names()
