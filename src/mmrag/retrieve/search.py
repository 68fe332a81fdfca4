"""Retrieval: a text or image query -> ranked hits across the index's paths.

Text queries run up to three paths: CLIP text->image vectors over visual items, the
text embedder over text items, and BM25 over item text (with its context). Each path's
hits below the relevance floor are dropped and gathered into the units users cite (a
page, a slide, a product, a picture: see :mod:`.grouping`), the units' scores fused by
z-score (:func:`.fusion.zscore_fusion`), and the documents the query names get a soft
boost (:mod:`.documents`). Every path fetches a fixed number of candidates, so a
result's rank does not depend on how many results were asked for.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ..errors import ConfigError, StoreError
from ..models.base import ImageTextEncoder, PageEncoder, TextEncoder
from ..models.precision import available_cores
from ..sched import shorten_slices
from ..stores.base import MultiVectorStore, VectorStore
from ..types import Hit, Item, Where
from .confidence import coverage
from .documents import document_boost, identity
from .fusion import zscore_fusion
from .grouping import MAX_DEPTH, Unit, gather, parents_needed

__all__ = ["PATHS", "Searcher"]

log = logging.getLogger(__name__)

#: Retrieval paths a text query can take ("pages": late interaction, on an index with a
#: page model; see docs/pages.md).
PATHS = ("clip", "text", "bm25", "pages")
#: The multi-vector space the pages path searches (written by the indexer).
_PAGES = "pages"

#: Candidates each path fetches: fixed (not a multiple of k) so that the first results do
#: not change with k; grows as 4k only past k = 25.
_FETCH = 100
#: Weight of the document boost against a path's z-score (fitted on financebench_dev in a
#: prototype: 0.5 / 1 / 2 gave R@5 across documents 0.65 / 0.70 / 0.67; in mmrag, boost off
#: 0.535, on 0.698).
_DOC_BOOST = 1.0
#: Full-text hits whose text is checked for how much of the query they hold (the best one
#: counts; see :mod:`.confidence`).
_COVERAGE_HITS = 3


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
        doc_boost: float = _DOC_BOOST,
        pages: PageEncoder | None = None,
    ) -> None:
        self.store = store
        self.pages = pages
        self.clip = clip
        self.text = text
        self.weights = weights
        self.doc_boost = doc_boost

    def available_paths(self) -> tuple[str, ...]:
        """The paths this index can run for a text query."""
        paths = []
        if self.clip is not None and "clip" in self.store.spaces:
            paths.append("clip")
        if self.text is not None and "text" in self.store.spaces:
            paths.append("text")
        if getattr(self.store, "full_text", True):  # a store without BM25 says so
            paths.append("bm25")
        if self.pages is not None and _PAGES in getattr(self.store, "multi_spaces", {}):
            paths.append("pages")
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
        shorten_slices()  # prompt hand-offs between the query's threads beside busy processes
        fetch = max(_FETCH, 4 * k)
        ranked = self._run_paths(query, self._paths(paths), fetch, where, min_score)
        if not ranked:
            return []
        parents = self._parents(hit.item for hits in ranked.values() for hit in hits)
        units = {path: gather(hits, parents) for path, hits in ranked.items()}
        # A path that returned fewer than it could has returned all it has (full text: every
        # match; a vector space: every item with a vector there): the candidates it lacks are
        # unrelated to it (score 0), not "just below its last hit".
        absent = {p: 0.0 for p, hits in ranked.items() if len(hits) < fetch}
        scores = self._fuse(query, units, absent, self._weights(query, ranked))
        return _merged(units, scores)[:k]

    def _weights(self, query: str, ranked: Mapping[str, list[Hit]]) -> dict[str, float]:
        """Each path's weight for this query: the configured one, the full-text path's
        scaled by how much of the query its best hits hold (:func:`.confidence.coverage`).

        On financebench_dev this lifted R@10 within a question's document from 0.744 to
        0.860 (the text path alone: 0.860) and across documents from 0.791 to 0.837;
        pdfs_real caption R@1 went 0.984 -> 0.976 (BM25 alone: 0.969).
        """
        weights = {
            path: 1.0 if self.weights is None else self.weights.get(path, 1.0) for path in ranked
        }
        if "bm25" in weights and len(ranked) > 1:
            best = ranked["bm25"][:_COVERAGE_HITS]
            held = coverage(query, (f"{h.item.context or ''}\n{h.item.text or ''}" for h in best))
            weights["bm25"] *= held
        return weights

    def _run_paths(
        self,
        query: str,
        use: Sequence[str],
        fetch: int,
        where: Where | None,
        min_score: float | None,
    ) -> dict[str, list[Hit]]:
        """Each path's hits for the query, tagged with the path; paths that found none left out.

        With more than one path and a spare core the paths run at once on threads (the
        encoders and the store release the GIL): a 100k-item query's critical path is then
        its slowest path, not their sum.
        """

        def run(path: str) -> list[Hit]:
            return _tag(self._path_hits(path, query, fetch, where, min_score), path)

        if len(use) > 1 and available_cores() > 1:
            futures = [(path, _path_pool().submit(run, path)) for path in use]
            ranked = {path: future.result() for path, future in futures}
        else:
            ranked = {path: run(path) for path in use}
        return {path: hits for path, hits in ranked.items() if hits}

    def _path_hits(
        self, path: str, query: str, fetch: int, where: Where | None, min_score: float | None
    ) -> list[Hit]:
        """One path's hits for the query, best first."""
        if path == "clip":
            assert self.clip is not None
            vector = self.clip.encode_texts([query])[0]
            return _floor(self.store.query("clip", vector, fetch, where), min_score)
        if path == "text":
            assert self.text is not None
            vector = self.text.encode([query], query=True)[0]
            return _floor(self.store.query("text", vector, fetch, where), min_score)
        if path == "bm25":
            return self._bm25(query, fetch, where)
        return self._pages(query, fetch, where)

    def _parents(self, items: Iterable[Item]) -> dict[str, Item]:
        """The hits and the parents they climb through, one batched get per level."""
        pool = {item.id: item for item in items}  # hits can be each other's parents
        tried: set[str] = set()
        for _ in range(MAX_DEPTH):
            wanted = [i for i in parents_needed(pool.values()) if i not in pool and i not in tried]
            if not wanted:
                break
            tried.update(wanted)  # an id the store lacks (a page's document) ends the climb
            pool.update((item.id, item) for item in self.store.get(wanted))
        return pool

    def _fuse(
        self,
        query: str,
        units: Mapping[str, list[Unit]],
        absent: Mapping[str, float],
        weights: Mapping[str, float],
    ) -> dict[str, float]:
        """Fused unit scores: one path keeps its own scores; several are z-score fused and
        the documents the query names boosted."""
        if len(units) == 1:
            return {u.item.id: u.score for u in next(iter(units.values()))}
        fused = zscore_fusion(
            {path: [(u.item.id, u.score) for u in us] for path, us in units.items()},
            weights=weights,
            absent=absent,
        )
        heads = {u.item.id: u.item for us in units.values() for u in us}
        docs = {item.doc: identity(item) for item in heads.values() if item.doc}
        boost = document_boost(query, docs) if self.doc_boost else {}
        if boost:
            for uid, item in heads.items():
                fused[uid] += self.doc_boost * boost.get(item.doc or "", 0.0)
        return fused

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

    def _pages(self, query: str, fetch: int, where: Where | None) -> list[Hit]:
        """Late-interaction hits: the query's token vectors against each page's, by MaxSim.
        The relevance floor does not apply: MaxSim sums over query tokens, not a cosine."""
        assert self.pages is not None and isinstance(self.store, MultiVectorStore)
        vectors = self.pages.encode_queries([query])[0]
        return self.store.multi_query(_PAGES, vectors, fetch, where)


_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()
# A forked child has none of the parent's threads: it starts a pool of its own.
os.register_at_fork(after_in_child=_POOL.clear)


def _path_pool() -> ThreadPoolExecutor:
    """The threads text queries run their paths on, shared by every searcher in the process."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(
                ThreadPoolExecutor(max_workers=2 * len(PATHS), thread_name_prefix="mmrag-path")
            )
        return _POOL[0]


def _tag(hits: list[Hit], path: str) -> list[Hit]:
    """Record which path found each hit, and its score on that path."""
    return [Hit(h.item, h.score, (path,), {path: h.score}, h.evidence) for h in hits]


def _merged(units: Mapping[str, list[Unit]], scores: Mapping[str, float]) -> list[Hit]:
    """One hit per unit across the paths, best fused score first."""
    found: dict[str, list[Unit]] = {}
    best_rank: dict[str, int] = {}
    for us in units.values():
        for rank, unit in enumerate(us):
            found.setdefault(unit.item.id, []).append(unit)
            best_rank[unit.item.id] = min(rank, best_rank.get(unit.item.id, rank))
    # Ties: the better rank on any path, then the id, so the order never depends on k.
    order = sorted(found, key=lambda uid: (-scores[uid], best_rank[uid], uid))
    return [_as_hit(found[uid], scores[uid]) for uid in order]


def _as_hit(units: Sequence[Unit], score: float) -> Hit:
    """A unit found by one or more paths as a hit: every path's best score, all evidence."""
    via: list[str] = []
    scores: dict[str, float] = {}
    evidence: dict[str, Item] = {}
    for unit in sorted(units, key=lambda u: -u.score):
        for member in unit.members:
            for path in member.via:
                if path not in via:
                    via.append(path)
                scores[path] = max(member.score, scores.get(path, member.score))
        for item in unit.evidence():
            evidence.setdefault(item.id, item)
    return Hit(units[0].item, score, tuple(via), scores, tuple(evidence.values()))


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
