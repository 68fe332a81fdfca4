"""Retrieval: a text or image query -> ranked hits across the index's paths.

Text queries run up to three paths: CLIP text->image vectors over visual items,
the text embedder over text items, and BM25 over item text. Each path's hits
below the relevance floor are dropped and the lists are fused by reciprocal rank,
a caption counting for its image. One grouping step then gathers text under its
parent, with the parents the hits lack fetched in one batched ``get``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from ..errors import ConfigError, StoreError
from ..models.base import ImageTextEncoder, TextEncoder
from ..stores.base import VectorStore
from ..types import Hit, Where
from .fusion import merge_same_key, rrf
from .grouping import Group, group_hits, parents_wanted, stands_for

__all__ = ["PATHS", "Searcher"]

log = logging.getLogger(__name__)

#: Retrieval paths a text query can take.
PATHS = ("clip", "text", "bm25")

#: Each path fetches this many times k before fusion, so fusion has material.
_OVERFETCH = 3


class Searcher:
    """Runs queries against a store with the index's encoders.

    searcher = Searcher(store, clip, text)
    hits = searcher.search("a red bicycle", k=5, where={"category": "bikes"})
    """

    def __init__(
        self,
        store: VectorStore,
        clip: ImageTextEncoder | None,
        text: TextEncoder | None,
        *,
        weights: Mapping[str, float] | None = None,
        max_per_doc: int | None = 3,
        overflow: bool = True,
    ) -> None:
        self.store = store
        self.clip = clip
        self.text = text
        self.weights = weights
        self.max_per_doc = max_per_doc
        # Demote, do not drop, a document's results past the cap: with one big manual
        # in the index a hard cap would hide its 4th-best page at any k.
        self.overflow = overflow

    def available_paths(self) -> tuple[str, ...]:
        """The paths this index can run for a text query."""
        paths = []
        if self.clip is not None and "clip" in self.store.spaces:
            paths.append("clip")
        if self.text is not None and "text" in self.store.spaces:
            paths.append("text")
        if getattr(self.store, "full_text", True):  # a store without BM25 says so
            paths.append("bm25")
        return tuple(paths)

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        where: Where | None = None,
        min_score: float | None = None,
        paths: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Hits for a text query, best first; at most ``k``."""
        query = query.strip()
        if not query:
            raise ConfigError("empty query")
        use = self._paths(paths)
        fetch = max(k * _OVERFETCH, 20)
        ranked: dict[str, list[Hit]] = {}
        if "clip" in use:
            assert self.clip is not None
            vector = self.clip.encode_texts([query])[0]
            ranked["clip"] = _floor(self.store.query("clip", vector, fetch, where), min_score)
        if "text" in use:
            assert self.text is not None
            vector = self.text.encode([query], query=True)[0]
            ranked["text"] = _floor(self.store.query("text", vector, fetch, where), min_score)
        if "bm25" in use:
            ranked["bm25"] = self._bm25(query, fetch, where)
        ranked = {path: _tag(hits, path) for path, hits in ranked.items() if hits}
        if not ranked:
            return []
        if len(ranked) == 1:  # one path keeps its own scores (cosines), which mean something
            fused = merge_same_key(next(iter(ranked.values())), stands_for)
        else:
            fused = rrf(ranked, weights=self.weights, key=stands_for)
        groups = self._group(fused)
        return [_as_hit(group) for group in groups][:k]

    def search_by_vector(
        self,
        vector: np.ndarray,
        *,
        k: int = 10,
        where: Where | None = None,
        min_score: float | None = None,
        collapse: bool = False,
    ) -> list[Hit]:
        """Nearest visual items to a CLIP image vector (reverse image search)."""
        if "clip" not in self.store.spaces:
            raise ConfigError("this index has no CLIP vectors: search by image needs a CLIP model")
        hits = _floor(self.store.query("clip", vector, k * 2 if collapse else k, where), min_score)
        if collapse:
            hits = _collapse_duplicates(hits)
        return hits[:k]

    def search_by_image(
        self,
        image: Image.Image,
        *,
        k: int = 10,
        where: Where | None = None,
        min_score: float | None = None,
        collapse: bool = False,
    ) -> list[Hit]:
        """Nearest visual items to an image."""
        if self.clip is None:
            raise ConfigError("search by image needs a CLIP model; this index has none loaded")
        vector = self.clip.encode_images([image])[0]
        return self.search_by_vector(
            vector, k=k, where=where, min_score=min_score, collapse=collapse
        )

    def _paths(self, paths: Sequence[str] | None) -> tuple[str, ...]:
        available = self.available_paths()
        if paths is None:
            return available
        unknown = set(paths) - set(PATHS)
        if unknown:
            raise ConfigError(f"unknown retrieval path(s) {sorted(unknown)}; choose from {PATHS}")
        missing = [path for path in paths if path not in available]
        if missing:
            raise ConfigError(f"retrieval path(s) {missing} unavailable for this index")
        return tuple(paths)

    def _bm25(self, query: str, fetch: int, where: Where | None) -> list[Hit]:
        """Full-text hits. The relevance floor does not apply: BM25 scores are not
        cosines, and a hit here contains the query's words, which is relevance of its own."""
        try:
            return self.store.text_query(query, fetch, where)
        except StoreError as exc:
            log.debug("full-text path skipped: %s", exc)
            return []

    def _group(self, fused: list[Hit]) -> list[Group]:
        """Text under its parent; the parents the hits lack come from one batched get."""
        wanted = parents_wanted(fused)
        parents = {item.id: item for item in self.store.get(wanted)} if wanted else {}
        return group_hits(
            fused, parents=parents, max_per_doc=self.max_per_doc, overflow=self.overflow
        )


def _tag(hits: list[Hit], path: str) -> list[Hit]:
    """Record which path found each hit, and its score on that path."""
    return [Hit(h.item, h.score, (path,), {path: h.score}, h.evidence) for h in hits]


def _as_hit(group: Group) -> Hit:
    """A group as one hit: its members' best score per path, the folded items as evidence."""
    scores: dict[str, float] = {}
    for member in (group.hit, *group.evidence):
        for path, value in member.scores.items():
            scores[path] = max(value, scores.get(path, value))
    head = group.hit
    evidence = (*head.evidence, *(e.item for e in group.evidence))
    return Hit(head.item, head.score, head.via, scores, evidence, head.parent_item)


def _floor(hits: list[Hit], min_score: float | None) -> list[Hit]:
    if min_score is None:
        return hits
    return [hit for hit in hits if hit.score >= min_score]


def _collapse_duplicates(hits: list[Hit]) -> list[Hit]:
    """Keep the best hit per content hash (the same picture indexed from several places)."""
    seen: set[str] = set()
    out = []
    for hit in hits:
        key = hit.item.content_hash or hit.item.id
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out
