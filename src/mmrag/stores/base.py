"""The vector store role.

A store holds :class:`~mmrag.types.Item` records in one collection with one or
more named vector spaces (``"clip"`` for images, ``"text"`` for text chunks).
An item may have a vector in any subset of the spaces; an item without a vector
in a space is kept and gettable but not found by vector search in that space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError
from ..types import Hit, Item, Where

__all__ = ["MultiSpace", "MultiVectorStore", "VectorStore", "query_multivector", "query_vector"]


def query_vector(spaces: Mapping[str, int], space: str, vector: np.ndarray) -> np.ndarray:
    """The query as a flat float32 vector, checked against the store's spaces (ConfigError)."""
    if space not in spaces:
        raise ConfigError(f"unknown vector space {space!r}; store has {sorted(spaces)}")
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.shape[0] != spaces[space]:
        raise ConfigError(f"query vector has dim {v.shape[0]}, {space!r} has {spaces[space]}")
    return v


@dataclass(frozen=True)
class MultiSpace:
    """A multi-vector space: ``dim`` per token, and the optional quantised first stage.

    ``first_stage`` "int8" or "binary" keeps compact codes beside the float32 vectors; a
    query ranks every page by MaxSim on the codes, then rescores the best ``rerank``
    times ``k`` with exact MaxSim. "none" ranks by exact MaxSim directly.
    """

    dim: int
    first_stage: str = "none"
    rerank: int = 8


def query_multivector(
    spaces: Mapping[str, MultiSpace], space: str, vectors: np.ndarray
) -> np.ndarray:
    """The query as float32 ``(tokens, dim)``, checked against the multi-vector spaces."""
    if space not in spaces:
        raise ConfigError(f"unknown multi-vector space {space!r}; store has {sorted(spaces)}")
    v = np.asarray(vectors, dtype=np.float32)
    dim = spaces[space].dim
    if v.ndim != 2 or v.shape[1] != dim or len(v) == 0:
        raise ConfigError(f"query multi-vector has shape {v.shape}, {space!r} needs (n>0, {dim})")
    return v


@runtime_checkable
class VectorStore(Protocol):
    """Items plus vectors, searchable by vector (and by full text where the backend has it)."""

    @property
    def spaces(self) -> Mapping[str, int]:
        """Names and dimensions of the vector spaces this store was opened with."""
        ...

    def upsert(self, items: Sequence[Item], vectors: Mapping[str, np.ndarray]) -> None:
        """Insert or replace items by id.

        ``vectors[space]`` is a float32 array of shape ``(len(items), dim)``; a row
        of NaN means "no vector in this space" for that item. A space missing from
        the mapping means no vectors in it for any of these items.
        """
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove items by id; unknown ids are ignored."""
        ...

    def query(
        self, space: str, vector: np.ndarray, k: int, where: Where | None = None
    ) -> list[Hit]:
        """The ``k`` nearest items in ``space`` by cosine similarity (score in [-1, 1])."""
        ...

    def text_query(self, text: str, k: int, where: Where | None = None) -> list[Hit]:
        """Full-text (BM25) search over item text; raises StoreError where unsupported."""
        ...

    def get(self, ids: Sequence[str]) -> list[Item]:
        """Items by id, in the order asked; unknown ids are left out."""
        ...

    def get_vectors(self, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id for one space; ids without a vector are left out."""
        ...

    def find(self, where: Where, limit: int | None = None) -> list[Item]:
        """Items matching a filter, in no particular order."""
        ...

    def count(self, where: Where | None = None) -> int:
        """How many items (matching the filter)."""
        ...

    def optimize(self) -> None:
        """Build or refresh indexes and reclaim space after bulk writes."""
        ...


@runtime_checkable
class MultiVectorStore(Protocol):
    """The late-interaction capability: items with many vectors each, ranked by MaxSim.

    A store opened with ``multi_spaces`` has it. Multi-vectors belong to existing items and
    are written after them: ``upsert`` of an item clears its multi-vectors (whole rows), so
    a re-indexed page is re-embedded, and ``delete`` removes them with the item.
    """

    @property
    def multi_spaces(self) -> Mapping[str, MultiSpace]:
        """Names and settings of the multi-vector spaces this store was opened with."""
        ...

    def set_multivectors(self, space: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Give existing items (by id) a float32 ``(tokens, dim)`` multi-vector in ``space``."""
        ...

    def get_multivectors(self, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored multi-vectors by id; ids without one are left out."""
        ...

    def multi_query(
        self, space: str, vectors: np.ndarray, k: int, where: Where | None = None
    ) -> list[Hit]:
        """The ``k`` items with the highest MaxSim against the query's ``(tokens, dim)`` vectors.

        The score is the MaxSim sum (between -tokens and +tokens for unit vectors).
        """
        ...
