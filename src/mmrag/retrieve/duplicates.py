"""Duplicate pictures: exact copies (same content hash) and near copies (resized, re-encoded).

Near copies are pictures whose CLIP vectors have a cosine above a threshold; an index without
CLIP vectors compares perceptual hashes (``imagehash.phash``) instead. Groups are the
connected components of those pairs, and each can be drawn as a contact sheet::

    groups = find_duplicates(items, vectors, threshold=0.95, load=index.load_image)
    for n, group in enumerate(groups):
        write_sheet(group, [index.load_image(i) for i in group.items], out / f"group-{n}.png")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..errors import DependencyError
from ..stores.base import VectorStore
from ..types import Item

__all__ = ["DuplicateGroup", "find_duplicates", "index_duplicates", "write_sheet"]

#: Perceptual hashes this many bits apart (of 64) or fewer are near copies.
PHASH_BITS = 10
SHEET_SIDE = 160


@dataclass(frozen=True)
class DuplicateGroup:
    """Pictures that are copies of each other: ``exact`` when all bytes are equal."""

    kind: str
    items: tuple[Item, ...]
    #: The weakest link's similarity (cosine, or 1 - hash distance / 64); 1.0 for exact.
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: kind, similarity, and each item's id, source and hash."""
        return {
            "kind": self.kind,
            "similarity": round(self.similarity, 4),
            "items": [
                {"id": i.id, "source": i.source, "content_hash": i.content_hash, "parent": i.parent}
                for i in self.items
            ],
        }


def find_duplicates(
    items: Sequence[Item],
    vectors: Mapping[str, np.ndarray],
    *,
    threshold: float,
    load: Callable[[Item], Image.Image | None],
) -> list[DuplicateGroup]:
    """Groups of exact and near copies among ``items`` (CLIP ``vectors`` by id, else phash)."""
    by_hash: dict[str, list[Item]] = {}
    for item in items:
        by_hash.setdefault(item.content_hash or item.id, []).append(item)
    heads = [group[0] for group in by_hash.values()]
    if vectors:
        pairs = _vector_pairs([h for h in heads if h.id in vectors], vectors, threshold)
    else:
        pairs = _phash_pairs(heads, load)
    parent = {h.content_hash or h.id: h.content_hash or h.id for h in heads}
    weakest: dict[str, float] = {}
    for a, b, sim in pairs:
        ra, rb = _root(parent, a), _root(parent, b)
        parent[ra] = rb
        weakest[rb] = min(sim, weakest.get(ra, 1.0), weakest.get(rb, 1.0))
    components: dict[str, list[str]] = {}
    for key in parent:
        components.setdefault(_root(parent, key), []).append(key)
    groups = []
    for root, keys in components.items():
        members = tuple(i for key in keys for i in by_hash[key])
        if len(keys) > 1:
            groups.append(DuplicateGroup("near", members, weakest.get(root, 1.0)))
        elif len(members) > 1:
            groups.append(DuplicateGroup("exact", members, 1.0))
    return sorted(groups, key=lambda g: (-len(g.items), g.items[0].source))


def _root(parent: dict[str, str], key: str) -> str:
    while parent[key] != key:
        parent[key] = parent[parent[key]]
        key = parent[key]
    return key


def _vector_pairs(
    heads: Sequence[Item], vectors: Mapping[str, np.ndarray], threshold: float
) -> list[tuple[str, str, float]]:
    """Pairs of distinct pictures whose cosine is above ``threshold``."""
    if len(heads) < 2:
        return []
    matrix = np.stack([np.asarray(vectors[h.id], dtype=np.float32) for h in heads])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
    sims = matrix @ matrix.T
    rows, cols = np.nonzero(np.triu(sims, k=1) > threshold)
    keys = [h.content_hash or h.id for h in heads]
    return [(keys[r], keys[c], float(sims[r, c])) for r, c in zip(rows, cols, strict=True)]


def _phash_pairs(
    heads: Sequence[Item], load: Callable[[Item], Image.Image | None]
) -> list[tuple[str, str, float]]:
    """Pairs of distinct pictures whose perceptual hashes differ in few bits."""
    try:
        import imagehash
    except ImportError as exc:
        raise DependencyError("imagehash", "dedup", "Duplicates without CLIP") from exc
    hashes = []
    for head in heads:
        image = load(head)
        if image is not None:
            hashes.append((head.content_hash or head.id, imagehash.phash(image.convert("RGB"))))
    pairs = []
    for i, (a, ha) in enumerate(hashes):
        for b, hb in hashes[i + 1 :]:
            distance = int(ha - hb)
            if distance <= PHASH_BITS:
                pairs.append((a, b, 1.0 - distance / 64))
    return pairs


def write_sheet(group: DuplicateGroup, images: Sequence[Image.Image | None], path: Path) -> Path:
    """A contact sheet PNG: the group's pictures side by side, each with its file name."""
    side = SHEET_SIDE
    sheet = Image.new("RGB", (side * len(images), side + 20), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (item, image) in enumerate(zip(group.items, images, strict=True)):
        if image is not None:
            thumb = image.convert("RGB")
            thumb.thumbnail((side - 8, side - 8))
            sheet.paste(thumb, (n * side + 4, 4))
        draw.text((n * side + 4, side + 2), Path(item.source).name[:24], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG")
    return path


def index_duplicates(
    store: VectorStore,
    load: Callable[[Item], Image.Image | None],
    *,
    threshold: float = 0.95,
    sheet_dir: Path | None = None,
) -> list[tuple[DuplicateGroup, Path | None]]:
    """The duplicate groups among a store's images, each with its contact sheet if asked."""
    items = store.find({"kind": "image"})
    vectors: Mapping[str, np.ndarray] = {}
    if "clip" in store.spaces:
        vectors = store.get_vectors("clip", [i.id for i in items])
    groups = find_duplicates(items, vectors, threshold=threshold, load=load)
    out = []
    for n, group in enumerate(groups, 1):
        sheet = None
        if sheet_dir is not None:
            images = [load(item) for item in group.items]
            sheet = write_sheet(group, images, sheet_dir / f"group-{n:03d}.png")
        out.append((group, sheet))
    return out
