"""Query sets from common formats: each loader turns a dataset on disk into judged queries.

The native format is JSON lines, one query each::

    {"query": "exploded view of the pump", "relevant": [{"source": "manual.pdf", "page": 7}]}
    {"query": "a red running shoe", "relevant": ["shoes/red.jpg", {"metadata": {"sku": "X1"}}]}

Other formats (``FORMATS``) are read from their own layout: a folder of class subfolders, COCO
captions, ``labels.csv``, figure-caption JSON lines, financebench questions (0-based evidence
pages made 1-based, as mmrag numbers pages) and a product catalog. Judged paths are relative to
the dataset root, so they match wherever the data was indexed from.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from .metrics import Judged, Target

LABEL_TEMPLATE = "a photo of a {label}"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Numbered JSON objects of a JSON-lines file; a bad line is an InputError naming it."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path}:{number}", f"not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}", "not a JSON object")
            yield number, row


def _rows(path: Path, convert: Callable[[dict[str, Any]], Judged | list[Judged]]) -> list[Judged]:
    """Convert each JSON line; a line missing a field is an InputError naming the line."""
    out: list[Judged] = []
    for number, row in _lines(path):
        try:
            made = convert(row)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}:{number}", f"not a judged query: {exc!r}") from None
        out.extend(made if isinstance(made, list) else [made])
    return out


def load_queries(path: Path) -> list[Judged]:
    """Read a JSON-lines query set (native or financebench rows); bad lines are InputErrors."""
    return _rows(path, _native_or_question)


def _native_or_question(row: dict[str, Any]) -> Judged:
    if "evidence" in row and "question" in row:
        return _evidence_question(row)
    relevant: list[Target] = []
    fields: list[tuple[str, str]] = []
    for entry in row["relevant"]:
        if isinstance(entry, Mapping) and "metadata" in entry:
            fields.extend((str(k), str(v)) for k, v in entry["metadata"].items())
        else:
            relevant.append(_judgement(entry))
    return Judged(str(row["query"]), tuple(relevant), tuple(fields))


def _judgement(entry: str | Mapping[str, Any]) -> Target:
    if isinstance(entry, str):
        return entry, None
    page = entry.get("page")
    return str(entry["source"]), None if page is None else int(page)


def _evidence_question(row: Mapping[str, Any]) -> Judged:
    """A financebench-style question: its evidence pages (0-based) on its document."""
    doc = str(row["doc"])
    pages = dict.fromkeys(int(e["page_num_0based"]) + 1 for e in row["evidence"])
    if not pages:
        raise ValueError("no evidence pages")
    return Judged(str(row["question"]), tuple((doc, page) for page in pages))


def _inside(path: Path, name: str) -> Path:
    """``path`` itself if a file, else ``path/name``; missing is an InputError."""
    found = path / name if path.is_dir() else path
    if not found.is_file():
        raise InputError(str(path), f"no {name} here")
    return found


def _by_label(pairs: Iterator[tuple[str, str]], template: str) -> list[Judged]:
    """One query per label (``template`` filled in), judging every file with that label."""
    groups: dict[str, list[str]] = defaultdict(list)
    for relative, label in pairs:
        groups[label].append(relative)
    return [
        Judged(template.format(label=label.replace("_", " ")), tuple((f, None) for f in files))
        for label, files in sorted(groups.items())
    ]


def load_folders(path: Path, template: str = LABEL_TEMPLATE) -> list[Judged]:
    """A folder of class subfolders: label -> the images in its folder."""
    if not path.is_dir():
        raise InputError(str(path), "not a folder of class subfolders")
    pairs = (
        (f"{sub.name}/{file.relative_to(sub).as_posix()}", sub.name)
        for sub in sorted(p for p in path.iterdir() if p.is_dir())
        for file in sorted(sub.rglob("*"))
        if file.suffix.lower() in IMAGE_SUFFIXES
    )
    return _by_label(pairs, template)


def load_labels(path: Path, template: str = LABEL_TEMPLATE) -> list[Judged]:
    """``labels.csv`` with ``path`` and ``label`` columns: label -> its images."""
    found = _inside(path, "labels.csv")
    with found.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise InputError(str(found), "needs 'path' and 'label' columns")
        pairs = [(row["path"], row["label"]) for row in reader]
    return _by_label(iter(pairs), template)


def load_coco(path: Path) -> list[Judged]:
    """COCO captions: each caption -> its image (``captions.jsonl`` rows or a COCO JSON file)."""
    if path.is_dir():
        path = _inside(path, "captions.jsonl")
    if path.suffix == ".json":
        return _coco_json(path)
    return _rows(
        path, lambda r: [Judged(str(c), ((str(r["image"]), None),)) for c in r["captions"]]
    )


def _coco_json(path: Path) -> list[Judged]:
    """An official ``captions_*.json``: images by id, one query per annotation."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = {image["id"]: image["file_name"] for image in data["images"]}
        return [
            Judged(str(a["caption"]).strip(), ((files[a["image_id"]], None),))
            for a in data["annotations"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(str(path), f"not a COCO captions file: {exc!r}") from None


def load_figures(path: Path) -> list[Judged]:
    """Figure captions (``{pdf, page (1-based), caption}``): caption -> that page of that pdf."""
    found = _inside(path, "figure_captions.jsonl")
    return _rows(found, lambda r: Judged(str(r["caption"]), ((str(r["pdf"]), int(r["page"])),)))


def load_financebench(path: Path) -> list[Judged]:
    """financebench questions: question -> its evidence pages (0-based there, 1-based here)."""
    return _rows(_inside(path, "questions.jsonl"), _evidence_question)


def load_catalog(path: Path) -> list[Judged]:
    """A product catalog (``products.jsonl``): name -> the product (by sku) and its photos."""
    found = _inside(path, "products.jsonl")
    return _rows(
        found,
        lambda r: Judged(
            str(r["name"]),
            tuple((str(image), None) for image in r.get("images", [])),
            (("sku", str(r["sku"])),),
        ),
    )


FORMATS: dict[str, Callable[[Path], list[Judged]]] = {
    "jsonl": load_queries,
    "folders": load_folders,
    "labels": load_labels,
    "coco": load_coco,
    "figures": load_figures,
    "financebench": load_financebench,
    "catalog": load_catalog,
}

#: A file that names a dataset's format when found in its folder.
_MARKERS = (
    ("labels.csv", "labels"),
    ("captions.jsonl", "coco"),
    ("figure_captions.jsonl", "figures"),
    ("questions.jsonl", "financebench"),
    ("products.jsonl", "catalog"),
)


def detect_format(path: Path) -> str:
    """The format of a dataset path, from its marker file, suffix or first line."""
    if path.is_dir():
        return next((fmt for name, fmt in _MARKERS if (path / name).is_file()), "folders")
    for name, fmt in _MARKERS:
        if path.name == name:
            return fmt
    return {".csv": "labels", ".json": "coco"}.get(path.suffix, "jsonl")


def load(fmt: str, path: Path, *, limit: int | None = None, seed: int = 0) -> list[Judged]:
    """Queries from ``path`` in format ``fmt`` ("auto" detects); ``limit`` samples that many."""
    if not path.exists():
        raise InputError(str(path), "no such file or folder")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise InputError(fmt, f"unknown query-set format; choose one of {sorted(FORMATS)}")
    queries = FORMATS[fmt](path)
    if limit is not None and limit < len(queries):
        keep = sorted(random.Random(seed).sample(range(len(queries)), limit))
        queries = [queries[i] for i in keep]
    return queries


def to_jsonl(queries: list[Judged]) -> str:
    """The native JSON-lines form of a query set (what ``load_queries`` reads back)."""
    lines = []
    for judged in queries:
        relevant: list[Any] = [
            source if page is None else {"source": source, "page": page}
            for source, page in judged.relevant
        ]
        relevant += [{"metadata": {key: value}} for key, value in judged.fields]
        lines.append(json.dumps({"query": judged.query, "relevant": relevant}, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)
