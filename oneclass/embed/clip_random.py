"""A tiny, randomly initialised CLIP (real architectures and tokenizer, no training) written as a
model folder that :class:`oneclass.embed.clip.ClipEmbedder` loads like a real one: for tests and
benchmarks on machines without CLIP weights. Its vectors mean nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oneclass.embed.clip import BACKENDS, OPEN_CLIP_CONFIG

__all__ = ["TINY_OPEN_CLIP", "save_random_clip"]

#: the open_clip configuration of the tiny model
TINY_OPEN_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def save_random_clip(path: str | Path, backend: str = "open_clip", seed: int = 0) -> Path:
    """Write a tiny randomly initialised CLIP folder (real architecture and tokenizer, no
    training) that :class:`~oneclass.embed.clip.ClipEmbedder` loads with ``model_path=path``
    (and ``backend``).

    Returns:
        ``path``, as a :class:`~pathlib.Path`.
    """
    import torch

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if backend == "open_clip":
        import logging

        import open_clip
        from safetensors.torch import save_file

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # open_clip warns that the model is random: it is meant to be
        try:
            model = open_clip.create_model("ViT-B-32", pretrained=None, **_tiny_overrides())
        finally:
            root.setLevel(level)
        (path / OPEN_CLIP_CONFIG).write_text(
            json.dumps({"model_cfg": TINY_OPEN_CLIP, "preprocess_cfg": {"size": 64}}, indent=2)
        )
        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            str(path / "open_clip_model.safetensors"),
        )
        return path
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    vocab, merges = _clip_bpe()
    eos = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 64,
            "patch_size": 16,
        },
        projection_dim=32,
    )
    CLIPModel(config).save_pretrained(path)
    CLIPImageProcessor(
        size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64}
    ).save_pretrained(path)
    CLIPTokenizer(
        vocab=vocab,
        merges=[tuple(m.split()) for m in merges],  # type: ignore[misc]
    ).save_pretrained(path)
    return path


def _tiny_overrides() -> dict[str, Any]:
    """create_model keyword overrides that turn a built-in config into :data:`TINY_OPEN_CLIP`."""
    return {
        "embed_dim": TINY_OPEN_CLIP["embed_dim"],
        "vision_cfg": TINY_OPEN_CLIP["vision_cfg"],
        "text_cfg": TINY_OPEN_CLIP["text_cfg"],
    }


def _clip_bpe() -> tuple[dict[str, int], list[str]]:
    """CLIP's byte-level BPE vocabulary and merges, from the file open_clip ships in its wheel."""
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    tokens = list(bytes_to_unicode().values())
    tokens += [t + "</w>" for t in tokens]
    tokens += ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges
