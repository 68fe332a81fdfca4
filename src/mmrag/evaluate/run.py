"""One evaluation run: the same queries through every path of every index, then a report."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..app import Index
from ..types import Hit
from .loaders import IMAGE_SUFFIXES
from .metrics import Comparison, Judged, PathScores, chance_recall, compare, evaluate, match
from .report import Tile, WorstQuery, write_report

#: Written beside a random-weight CLIP by mmrag.testing (faces may not import it).
RANDOM_WEIGHTS_MARKER = "MMRAG_RANDOM_WEIGHTS"
WORST = 8


@dataclass
class EvalRun:
    """What a run measured: the rows (index x path), the best-two comparison and notes."""

    queries: list[Judged]
    rows: list[PathScores]
    comparison: Comparison | None
    notes: list[str] = field(default_factory=list)
    skipped: int = 0


def _tails(sources: Sequence[str]) -> set[str]:
    """Every path suffix of every source, so a relative judgement can be looked up."""
    tails: set[str] = set()
    for source in sources:
        parts = source.replace("\\", "/").split("/")
        tails.update("/".join(parts[i:]) for i in range(len(parts)))
    return tails


def present(queries: Sequence[Judged], indexes: Sequence[Index]) -> list[Judged]:
    """The queries with a judged source in every index (metadata judgements always count)."""
    tails = [_tails(index.sources()) for index in indexes]
    return [
        q
        for q in queries
        if q.fields or all(any(s.lstrip("/") in t for s, _ in q.relevant) for t in tails)
    ]


def index_notes(name: str, index: Index, queries: Sequence[Judged], k: int) -> list[str]:
    """What a reader must know about an index: size, models, random weights, chance level."""
    stats = index.stats()
    items = int(stats.get("items") or 0)
    clip = stats.get("clip_model")
    notes = [
        f"{name}: {items} items, {stats.get('sources')} sources, paths "
        f"{', '.join(stats.get('paths') or [])}; CLIP model {clip}, text model "
        f"{stats.get('text_model')}"
    ]
    if clip and (Path(str(clip)) / RANDOM_WEIGHTS_MARKER).is_file():
        notes.append(
            f"{name}: the CLIP weights are RANDOM (built by mmrag.testing): its clip rows "
            "measure no learned meaning; compare them with the chance level below."
        )
    if queries and items:
        chance = sum(chance_recall(k, q.targets(), items) for q in queries) / len(queries)
        notes.append(f"{name}: a random ranking would score R@{k} = {chance:.3f} (chance level)")
    return notes


def run(
    queries: Sequence[Judged],
    indexes: Sequence[tuple[str, Index]],
    *,
    k: int = 10,
    metric: str = "mrr",
    keep_unindexed: bool = False,
) -> EvalRun:
    """Every path of every index (and each one fused) on the same queries, compared."""
    kept = list(queries) if keep_unindexed else present(queries, [i for _, i in indexes])
    cutoffs = sorted({1, min(5, k), k})
    rows: list[PathScores] = []
    notes = []
    for name, index in indexes:

        def search(query: str, paths: Sequence[str] | None, index: Index = index) -> list[Hit]:
            return index.search(query, k=k, paths=paths)

        choices: list[Sequence[str] | None] = [[p] for p in index.available_paths()]
        label = name if len(indexes) > 1 else ""
        rows += evaluate(search, kept, [*choices, None], cutoffs, label)
        notes += index_notes(name, index, kept, k)
    skipped = len(queries) - len(kept)
    if skipped:
        notes.append(f"{skipped} of {len(queries)} queries skipped: their items are not indexed")
    return EvalRun(kept, rows, compare(rows, metric), notes, skipped)


def report(
    result: EvalRun,
    directory: Path,
    indexes: Sequence[tuple[str, Index]],
    *,
    title: str,
    root: Path | None = None,
) -> Path:
    """Write the run's report (tables, chart, contact sheet of the best row's worst queries)."""
    by_name = dict(indexes)
    metric = result.comparison.metric if result.comparison else "mrr"
    best = max(result.rows, key=lambda r: r.metric(metric))
    worst = worst_queries(result, best, by_name.get(best.index) or indexes[0][1], root)
    cutoffs = sorted(best.recall)
    return write_report(
        directory, title, result.rows, result.comparison, result.notes, worst, cutoffs
    )


def worst_queries(
    result: EvalRun, row: PathScores, index: Index, root: Path | None
) -> list[WorstQuery]:
    """The ``WORST`` queries of a row (not found first, then the deepest first right hit)."""
    order = sorted(
        range(len(row.per_query)),
        key=lambda i: (row.per_query[i].rank is None, row.per_query[i].rank or 0),
        reverse=True,
    )[:WORST]
    out = []
    for number in order:
        judged, found = result.queries[number], row.per_query[number]
        got = [Tile(_hit_caption(h), _hit_picture(h, index)) for h in found.hits[:5]]
        out.append(
            WorstQuery(judged.query, found.rank, _expected(result, number, index, root), got)
        )
    return out


def _expected(result: EvalRun, number: int, index: Index, root: Path | None) -> Tile:
    """The expected item's picture: a right hit any row found, else the judged file itself."""
    judged = result.queries[number]
    source, page = judged.relevant[0] if judged.relevant else (judged.fields[0][1], None)
    caption = source + (f" p.{page}" if page else "")
    for row in result.rows:
        for hit in row.per_query[number].hits:
            if match(hit, judged) and (picture := _hit_picture(hit, index)):
                return Tile(caption, picture)
    if root and Path(source).suffix.lower() in IMAGE_SUFFIXES and (root / source).is_file():
        return Tile(caption, _open((root / source).read_bytes()))
    return Tile(caption)


def _hit_caption(hit: Hit) -> str:
    item = hit.item
    where = Path(item.source).name + (f" p.{item.page}" if item.page else "")
    return f"{where} {item.kind} {hit.score:.3f}"


def _hit_picture(hit: Hit, index: Index) -> Image.Image | None:
    # A hit is a page, picture or product (search gathers chunks under them): its own thumb.
    for item in (hit.item, *hit.evidence):
        if item.thumb and (data := index.thumbnail(item.thumb)):
            return _open(data)
    return None


def _open(data: bytes) -> Image.Image | None:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except (OSError, ValueError):
        return None
