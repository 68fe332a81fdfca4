"""Vector stores: the protocol here; backends are chosen by store URL through the registry.

The backends (``stores.lance``, ``stores.qdrant``) are imported only when chosen
(``mmrag.registry.stores``), so ``import mmrag.stores`` stays cheap.
"""

from __future__ import annotations

from .base import VectorStore

__all__ = ["VectorStore"]
