"""Embedders: turn images (or the faces in them) into vectors."""

from oneclass.embed.base import Embedder, ImageEmbedding
from oneclass.embed.registry import available_embedders, make_embedder

__all__ = ["Embedder", "ImageEmbedding", "available_embedders", "make_embedder"]
