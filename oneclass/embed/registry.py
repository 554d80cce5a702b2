"""Build embedders by name or spec (``make_embedder("clip:model=\"hf-hub:org/x\"")``), name an
embedder by its parameters (:func:`embedder_spec`), and rebuild a stateful one from its saved
state (:func:`embedder_from_state`).

The registry below is the one source of embedder names. Keyword arguments override values in the
spec string (the rule of :mod:`oneclass.registry`). With ``ONECLASS_OFFLINE=1`` no embedder is
built with ``allow_download=True``.
"""

from __future__ import annotations

import logging
from typing import Any

from oneclass.config import settings
from oneclass.registry import Registry, format_spec, merge_params, parse_spec

# Embedder classes import this module (their default ``name``); it names them only as ``Any``
# and never imports oneclass.embed.base, so there is no import cycle.
Embedder = Any
EmbedderState = Any

log = logging.getLogger(__name__)

EMBEDDERS = Registry(
    "embedder",
    {
        "dlib-face": "oneclass.embed.dlib_face:DlibFaceEmbedder",
        "facenet": "oneclass.embed.facenet:FaceNetEmbedder",
        "clip": "oneclass.embed.clip:ClipEmbedder",
        "effnet-lite0": "oneclass.embed.effnet:EffNetLite0Embedder",
        "effnet-lite2": "oneclass.embed.effnet:EffNetLite2Embedder",
        "finetuned-effnet": "oneclass.embed.finetune_model:FinetunedEffNet",
        "effnet-lite0-patches": "oneclass.embed.patches:EffNetLite0Patches",
        "thumbnail": "oneclass.embed.thumbnail:ThumbnailEmbedder",
    },
)


def make_embedder(name: str, **params: Any) -> Embedder:
    """Build an embedder by registry name or spec.

    Args:
        name: a registry name or spec, e.g. ``"effnet-lite0:power=0.5"``.
        **params: parameters; they override the same keys of the spec.

    Returns:
        The embedder (models load lazily, on first use).

    Raises:
        ValueError: an unknown name or parameter (the known ones are listed).
    """
    name, spec_params = parse_spec(name)
    params = merge_params(spec_params, params)
    if params.get("allow_download") and settings().offline:
        log.warning("ONECLASS_OFFLINE is set: %s is built with allow_download=False", name)
        params["allow_download"] = False
    return EMBEDDERS.make(name, **params)


def registry_name(embedder: Embedder) -> str:
    """Returns the registry name whose class built ``embedder``.

    Raises:
        ValueError: its class is not registered (it cannot be saved by name).
    """
    cls = type(embedder)
    for name in EMBEDDERS.names():
        try:
            if EMBEDDERS.resolve(name) is cls:
                return name
        except ImportError:  # an optional backend that is not installed
            continue
    raise ValueError(
        f"{cls.__module__}.{cls.__qualname__} is not a registered embedder "
        f"(register it in oneclass.embed.registry.EMBEDDERS)"
    )


def embedder_spec(embedder: Embedder) -> str:
    """Returns the spec that rebuilds ``embedder``: its registry name and the parameters that
    decide its vectors (runtime and network options left out), e.g. ``"effnet-lite0:power=0.5"``.
    """
    return format_spec(registry_name(embedder), embedder.identity_params())


def embedder_from_state(state: EmbedderState, **params: Any) -> Embedder:
    """Rebuild a stateful embedder (e.g. a fine-tuned one) from its saved state.

    ``state.config["kind"]`` must name a registered embedder whose class has a ``from_state``
    class method; nothing else from the file decides what code runs. ``params`` are the
    caller's own runtime options (``batch_size``, ``device``...), never read from a file.

    Returns:
        The embedder, with its weights.

    Raises:
        ValueError: an unknown kind, or a class that cannot be rebuilt from a state.
    """
    config = state.config
    kind = config.get("kind") if isinstance(config, dict) else None
    if not isinstance(kind, str) or kind not in EMBEDDERS:
        raise ValueError(
            f"embedder state kind {kind!r} is not a registered embedder; "
            f"available: {', '.join(available_embedders())}"
        )
    cls = EMBEDDERS.resolve(kind)
    from_state = getattr(cls, "from_state", None)
    if not callable(from_state):
        raise ValueError(f"embedder {kind!r} cannot be rebuilt from a saved state")
    return from_state(state, **params)


def available_embedders() -> list[str]:
    """Returns the registered embedder names."""
    return EMBEDDERS.names()
