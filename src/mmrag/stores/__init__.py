"""Vector stores: the protocol, the embedded LanceDB default and the Qdrant adapter."""

from __future__ import annotations

from typing import Any

from .base import VectorStore

__all__ = ["LanceStore", "QdrantStore", "VectorStore"]


def __getattr__(name: str) -> Any:
    # Backends import their engines lazily so `import mmrag.stores` stays cheap.
    if name == "LanceStore":
        from .lance import LanceStore

        return LanceStore
    if name == "QdrantStore":
        from .qdrant import QdrantStore

        return QdrantStore
    raise AttributeError(name)
