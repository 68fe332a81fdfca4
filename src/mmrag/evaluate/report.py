"""``--report DIR``: report.md (tables; report.html the same for a browser), metrics.png
(bars with 95% intervals), worst.png (contact sheet of the worst queries: the query, the
expected item, what came back) and per_query.jsonl. matplotlib draws headless (Agg);
Pillow draws the contact sheet.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from ..errors import DependencyError
from .metrics import Comparison, PathScores

CELL = 160
TEXT_W = 260
CAPTION_H = 46


@dataclass
class Tile:
    """One picture on the contact sheet and the line under it (image None: a grey box)."""

    caption: str
    image: Image.Image | None = None


@dataclass
class WorstQuery:
    """A query the best row got wrong: what was expected and what came back."""

    query: str
    rank: int | None
    expected: Tile
    got: list[Tile] = field(default_factory=list)


def metric_names(cutoffs: Sequence[int]) -> list[str]:
    """The metrics a report shows, in order."""
    return [*(f"r@{k}" for k in cutoffs), "mrr", "ndcg"]


def _title(metric: str) -> str:
    return {"mrr": "MRR", "ndcg": "nDCG@10"}.get(metric, metric.upper())


def _table(rows: Sequence[PathScores], metrics: Sequence[str]) -> list[list[str]]:
    """The head and one line per row: each metric with its 95% interval, then latency."""
    lines = [["index:path", *map(_title, metrics), "p50 ms", "p95 ms"]]
    for row in rows:
        cells = [
            f"{row.metric(m):.3f} [{row.intervals[m][0]:.3f}, {row.intervals[m][1]:.3f}]"
            for m in metrics
        ]
        lines.append([row.label, *cells, f"{row.p50_ms:.1f}", f"{row.p95_ms:.1f}"])
    return lines


def _verdict(comparison: Comparison) -> str:
    """The best-two comparison as one sentence (markdown bold around the row names)."""
    verdict = (
        "excludes zero: a real difference"
        if comparison.significant
        else "includes zero: not distinguishable on these queries"
    )
    low, high = comparison.interval
    ties = (
        f" {', '.join(comparison.ties)} equal the best on every query, so the next row is compared."
        if comparison.ties
        else ""
    )
    return (
        f"Best two on {_title(comparison.metric)}: **{comparison.best}** minus "
        f"**{comparison.second}** = {comparison.difference:+.3f}, paired bootstrap 95% "
        f"interval [{low:+.3f}, {high:+.3f}] ({verdict}).{ties}"
    )


def markdown(
    title: str,
    rows: Sequence[PathScores],
    comparison: Comparison | None,
    notes: Sequence[str],
    cutoffs: Sequence[int],
) -> str:
    """The report's tables: one row per index and path, each metric with its 95% interval."""
    head, *body = _table(rows, metric_names(cutoffs))
    lines = [f"# {title}", "", *(f"- {note}" for note in notes), ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    lines.append("")
    if comparison:
        lines += [_verdict(comparison), ""]
    lines += [
        "![metrics](metrics.png)",
        "",
        "Worst queries of the best row:",
        "",
        "![worst queries](worst.png)",
        "",
    ]
    return "\n".join(lines)


def html_page(
    title: str,
    rows: Sequence[PathScores],
    comparison: Comparison | None,
    notes: Sequence[str],
    cutoffs: Sequence[int],
) -> str:
    """The same report as one HTML page (for a browser, and for ``mmrag serve``'s link)."""
    head, *body = _table(rows, metric_names(cutoffs))
    cell = "<td>{}</td>".format
    table = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>\n"
    table += "".join("<tr>" + "".join(cell(escape(c)) for c in cells) + "</tr>\n" for cells in body)
    verdict = ""
    if comparison:
        parts = escape(_verdict(comparison)).split("**")
        verdict = "<p>" + "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    items = "".join(f"<li>{escape(note)}</li>" for note in notes)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        "</title><style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}table{border-collapse:collapse}"
        f"img{{max-width:100%}}</style></head><body><h1>{escape(title)}</h1><ul>{items}</ul>"
        f"<table>{table}</table>{verdict}"
        '<p><img src="metrics.png" alt="metrics with 95% intervals"></p>'
        "<h2>Worst queries of the best row</h2>"
        '<p><img src="worst.png" alt="worst queries"></p></body></html>\n'
    )


def bar_chart(rows: Sequence[PathScores], cutoffs: Sequence[int], out: Path) -> None:
    """Grouped bars, one group per metric and one bar per row, with 95% interval whiskers."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DependencyError("matplotlib", "eval", "The report's chart") from None
    metrics = metric_names(cutoffs)
    width = 0.8 / max(len(rows), 1)
    columns = min(len(rows), 4)
    height = 3.6 + 0.25 * -(-len(rows) // columns)  # room for the legend's lines below
    figure, axes = plt.subplots(figsize=(max(6.0, 1.6 * len(metrics) + 0.4 * len(rows)), height))
    for number, row in enumerate(rows):
        means = [row.metric(m) for m in metrics]
        errors = [
            [mean - row.intervals[m][0] for m, mean in zip(metrics, means, strict=True)],
            [row.intervals[m][1] - mean for m, mean in zip(metrics, means, strict=True)],
        ]
        xs = [i + (number - (len(rows) - 1) / 2) * width for i in range(len(metrics))]
        axes.bar(xs, means, width, yerr=errors, capsize=3, label=row.label)
    axes.set_xticks(range(len(metrics)), [_title(m) for m in metrics])
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("score (95% bootstrap interval)")
    # Below the axes: inside, it hid the bars near 1.0 that matter most.
    axes.legend(fontsize="small", ncols=columns, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def contact_sheet(worst: Sequence[WorstQuery], out: Path, columns: int = 5) -> None:
    """One line per query: its text, the expected item, then the top hits, as thumbnails."""
    height = CELL + CAPTION_H
    sheet = Image.new("RGB", (TEXT_W + CELL * (columns + 1), height * max(len(worst), 1)), "white")
    draw = ImageDraw.Draw(sheet)
    for line, entry in enumerate(worst):
        top = line * height
        where = "not in the top hits" if entry.rank is None else f"first right hit at {entry.rank}"
        text = textwrap.fill(entry.query, 38)[:400] + f"\n\n({where})"
        draw.multiline_text((6, top + 6), text, fill="black")
        tiles = [entry.expected, *entry.got[:columns]]
        for column, tile in enumerate(tiles):
            left = TEXT_W + column * CELL
            _paste(sheet, draw, tile, left, top, expected=column == 0)
        draw.line((0, top + height - 1, sheet.width, top + height - 1), fill="#ccc")
    sheet.save(out)


def _paste(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    tile: Tile,
    left: int,
    top: int,
    *,
    expected: bool,
) -> None:
    box = (left + 4, top + 4, left + CELL - 4, top + CELL - 4)
    if tile.image is None:
        draw.rectangle(box, fill="#eee")
    else:
        # contain() scales small pictures up too: a 32 px CIFAR image should still be seen
        picture = ImageOps.contain(tile.image.convert("RGB"), (CELL - 8, CELL - 8))
        sheet.paste(picture, (box[0], box[1]))
    if expected:
        draw.rectangle(box, outline="green", width=3)
    caption = textwrap.shorten(("expected: " if expected else "") + tile.caption, 48)
    draw.multiline_text((left + 4, top + CELL), textwrap.fill(caption, 24), fill="black")


def write_report(
    directory: Path,
    title: str,
    rows: Sequence[PathScores],
    comparison: Comparison | None,
    notes: Sequence[str],
    worst: Sequence[WorstQuery],
    cutoffs: Sequence[int] = (1, 5, 10),
) -> Path:
    """Write report.md, report.html, metrics.png, worst.png and per_query.jsonl; returns
    report.md's path."""
    directory.mkdir(parents=True, exist_ok=True)
    bar_chart(rows, cutoffs, directory / "metrics.png")
    contact_sheet(worst, directory / "worst.png")
    write_per_query(rows, directory / "per_query.jsonl")
    page = html_page(title, rows, comparison, notes, cutoffs)
    (directory / "report.html").write_text(page, encoding="utf-8")
    report = directory / "report.md"
    report.write_text(markdown(title, rows, comparison, notes, cutoffs), encoding="utf-8")
    return report


def write_per_query(rows: Sequence[PathScores], out: Path) -> None:
    """Every query on every row, one JSON object a line (rank of the first right hit, top hits)."""
    with out.open("w", encoding="utf-8") as handle:
        for row in rows:
            for result in row.per_query:
                record: dict[str, Any] = {"index": row.index, "path": row.path, **result.to_dict()}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
