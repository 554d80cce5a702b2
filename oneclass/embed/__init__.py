"""Embedders: turn images (or the faces in them) into vectors."""

from oneclass.embed.base import Embedder, ImageEmbedding
from oneclass.embed.cache import EmbeddingCache, EmbedOutcome, embed_items
from oneclass.embed.registry import available_embedders, make_embedder

__all__ = [
    "EmbedOutcome",
    "Embedder",
    "EmbeddingCache",
    "ImageEmbedding",
    "available_embedders",
    "embed_items",
    "make_embedder",
]
