"""Retrieval metrics are pure functions; `mmrag eval` runs them per path on a real index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mmrag.cli import main
from mmrag.errors import InputError
from mmrag.evaluate import (
    Judged,
    bootstrap_interval,
    evaluate,
    load_queries,
    match,
    reciprocal_rank,
)
from mmrag.types import Hit, Item


def hit(source: str, page: int | None = None) -> Hit:
    return Hit(Item(id=source + str(page), kind="page", source=source, page=page), 1.0)


def test_matching_by_source_suffix_and_page() -> None:
    judged = Judged("q", (("docs/manual.pdf", 7),))
    assert match(hit("/data/docs/manual.pdf", 7), judged)
    assert not match(hit("/data/docs/manual.pdf", 8), judged)
    assert not match(hit("/data/old-docs/xmanual.pdf", 7), judged)


def test_reciprocal_rank_and_recall_at_cutoffs() -> None:
    judged = [Judged("a", (("x.jpg", None),)), Judged("b", (("y.jpg", None),))]
    ranked = {
        "a": [hit("/x.jpg"), hit("/z.jpg")],
        "b": [hit("/z.jpg"), hit("/w.jpg"), hit("/y.jpg")],
    }
    assert reciprocal_rank(ranked["b"], judged[1]) == pytest.approx(1 / 3)
    (scores,) = evaluate(lambda q, p: ranked[q], judged, [None], cutoffs=(1, 2, 3))
    assert scores.path == "fused"
    assert scores.recall == {1: 0.5, 2: 0.5, 3: 1.0}
    assert scores.mrr == pytest.approx((1 + 1 / 3) / 2)


def test_query_files_are_validated_line_by_line(tmp_path: Path) -> None:
    good = tmp_path / "q.jsonl"
    good.write_text('{"query": "pump", "relevant": [{"source": "m.pdf", "page": 2}, "a.jpg"]}\n\n')
    assert load_queries(good) == [Judged("pump", (("m.pdf", 2), ("a.jpg", None)))]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "ok", "relevant": []}\n{"relevant": []}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2"):
        load_queries(bad)


@pytest.mark.integration
def test_eval_command_reports_each_path(
    tmp_path: Path, corpus: Path, tiny_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--index", str(tmp_path / "idx"), "--model", str(tiny_clip)]
    assert main(["index", str(corpus), *args, "--json"]) == 0
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        "\n".join(
            json.dumps({"query": f"a {c} shape", "relevant": [f"{c}.{ext}"]})
            for c, ext in (("red", "png"), ("green", "jpg"), ("blue", "jpg"))
        )
    )
    capsys.readouterr()
    assert main(["eval", str(queries), *args, "-k", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_path = {p["path"]: p for p in report["paths"]}
    assert set(by_path) == {"clip", "text", "bm25", "fused"} and report["queries"] == 3
    assert by_path["text"]["recall"]["@1"] == 1.0  # the captions say the colour
    assert by_path["fused"]["recall"]["@5"] == 1.0


def test_financebench_questions_load_with_their_evidence_pages_made_one_based(
    tmp_path: Path,
) -> None:
    rows = [
        {
            "question": "What was 3M's FY2018 capex?",
            "doc": "3M_2018_10K.pdf",
            "evidence": [{"page_num_0based": 59, "text": "..."}, {"page_num_0based": 0}],
        }
    ]
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    [judged] = load_queries(path)
    assert judged.query == "What was 3M's FY2018 capex?"
    assert judged.relevant == (("3M_2018_10K.pdf", 60), ("3M_2018_10K.pdf", 1))


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_queries() -> None:
    small = [1.0, 0.0] * 10
    large = [1.0, 0.0] * 500
    low, high = bootstrap_interval(small)
    assert low < 0.5 < high
    low2, high2 = bootstrap_interval(large)
    assert low < low2 < 0.5 < high2 < high
    assert bootstrap_interval([1.0] * 5) == (1.0, 1.0)


@pytest.mark.integration
def test_eval_compares_indexes_and_writes_a_report(
    tmp_path: Path, corpus: Path, tiny_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip_index, text_index = tmp_path / "with-clip", tmp_path / "text-only"
    assert main(["index", str(corpus), "--index", str(clip_index), "--model", str(tiny_clip)]) == 0
    assert main(["index", str(corpus), "--index", str(text_index), "--model", "none"]) == 0
    queries = tmp_path / "q.jsonl"
    rows = [
        {"query": f"a {c} shape", "relevant": [f"{c}.{ext}"]}
        for c, ext in (("red", "png"), ("green", "jpg"), ("blue", "jpg"))
    ]
    rows.append({"query": "a missing photo", "relevant": ["not-indexed.jpg"]})
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report_dir = tmp_path / "report"
    capsys.readouterr()
    args = ["eval", str(queries), "--index", str(clip_index), "--index", str(text_index)]
    per_query_file = tmp_path / "per_query.jsonl"
    assert (
        main([*args, "--report", str(report_dir), "--per-query", str(per_query_file), "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    labels = {(p["index"], p["path"]) for p in out["paths"]}
    assert ("with-clip", "clip") in labels and ("text-only", "text") in labels
    assert ("text-only", "clip") not in labels
    assert out["queries"] == 3 and out["skipped"] == 1
    assert out["comparison"]["best"].endswith((":text", ":fused", ":bm25"))
    assert set(out["comparison"]) >= {"difference", "ci95", "excludes_zero"}
    text = (report_dir / "report.md").read_text()
    assert "RANDOM" in text and "| with-clip:clip |" in text
    for picture in ("metrics.png", "worst.png"):
        with Image.open(report_dir / picture) as image:
            assert image.width > 300
    per_query = (report_dir / "per_query.jsonl").read_text().splitlines()
    assert len(per_query) == 3 * len(out["paths"])
    assert per_query_file.read_text().splitlines() == per_query
    first = json.loads(per_query[0])
    assert set(first) >= {"index", "path", "query", "rank", "ndcg", "latency_ms", "top"}
