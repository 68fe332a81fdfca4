"""Each dataset format becomes judged queries; `mmrag eval make` writes them as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmrag.cli import main
from mmrag.errors import InputError
from mmrag.evaluate import Judged, detect_format, load, load_queries, to_jsonl

EVALDATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "evaldata"


def write_lines(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_class_folders_give_one_query_per_label(tmp_path: Path) -> None:
    for label, names in (("cat", ["1.jpg", "2.png"]), ("sea_lion", ["a.jpg"])):
        (tmp_path / label).mkdir()
        for name in names:
            (tmp_path / label / name).write_bytes(b"x")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    assert detect_format(tmp_path) == "folders"
    assert load("auto", tmp_path) == [
        Judged("a photo of a cat", (("cat/1.jpg", None), ("cat/2.png", None))),
        Judged("a photo of a sea lion", (("sea_lion/a.jpg", None),)),
    ]


def test_labels_csv_groups_paths_by_label(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text(
        "path,label\ntest/a/0.jpg,dog\ntest/a/1.jpg,dog\nb.jpg,cat\n"
    )
    assert load("auto", tmp_path) == [
        Judged("a photo of a cat", (("b.jpg", None),)),
        Judged("a photo of a dog", (("test/a/0.jpg", None), ("test/a/1.jpg", None))),
    ]
    (tmp_path / "labels.csv").write_text("file,class\nb.jpg,cat\n")
    with pytest.raises(InputError, match="'path' and 'label'"):
        load("labels", tmp_path)


def test_coco_captions_jsonl_and_official_json(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "captions.jsonl", [{"image": "val/1.jpg", "captions": ["a dog", "a pup"]}]
    )
    assert load("auto", tmp_path) == [
        Judged("a dog", (("val/1.jpg", None),)),
        Judged("a pup", (("val/1.jpg", None),)),
    ]
    official = tmp_path / "captions_val.json"
    official.write_text(
        json.dumps(
            {
                "images": [{"id": 7, "file_name": "7.jpg"}],
                "annotations": [{"image_id": 7, "caption": " a cat "}],
            }
        )
    )
    assert load("auto", official) == [Judged("a cat", (("7.jpg", None),))]


def test_figure_captions_and_financebench_pages(tmp_path: Path) -> None:
    figures = write_lines(
        tmp_path / "figure_captions.jsonl",
        [{"pdf": "d/m.pdf", "page": 3, "label": "Figure 1", "caption": "A pump."}],
    )
    assert load("auto", figures) == [Judged("A pump.", (("d/m.pdf", 3),))]
    questions = write_lines(
        tmp_path / "questions.jsonl",
        [{"question": "Capex?", "doc": "3M.pdf", "evidence": [{"page_num_0based": 0}]}],
    )
    assert load("auto", questions) == [Judged("Capex?", (("3M.pdf", 1),))]


def test_catalog_products_are_judged_by_sku_and_photos(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "products.jsonl",
        [{"sku": "MH01", "name": "Chaz Hoodie", "images": ["images/mh01.jpg"]}],
    )
    [judged] = load("auto", tmp_path)
    assert judged == Judged("Chaz Hoodie", (("images/mh01.jpg", None),), (("sku", "MH01"),))


def test_native_jsonl_round_trips_every_kind_of_judgement(tmp_path: Path) -> None:
    queries = [
        Judged("q1", (("m.pdf", 2), ("a.jpg", None))),
        Judged("q2", (("b.jpg", None),), (("sku", "X1"),)),
    ]
    path = tmp_path / "q.jsonl"
    path.write_text(to_jsonl(queries))
    assert load_queries(path) == queries


def test_a_bad_line_or_format_names_the_input(tmp_path: Path) -> None:
    bad = write_lines(tmp_path / "figure_captions.jsonl", [{"pdf": "a.pdf", "caption": "x"}])
    with pytest.raises(InputError, match=r"figure_captions\.jsonl:1"):
        load("figures", bad)
    with pytest.raises(InputError, match="unknown query-set format"):
        load("parquet", bad)
    with pytest.raises(InputError, match="no such file"):
        load("auto", tmp_path / "absent")


def test_limit_takes_the_same_seeded_sample_in_order(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "captions.jsonl",
        [{"image": f"{i}.jpg", "captions": [str(i)]} for i in range(50)],
    )
    first = load("coco", tmp_path, limit=10, seed=3)
    assert first == load("coco", tmp_path, limit=10, seed=3) != load("coco", tmp_path, limit=10)
    assert [int(q.query) for q in first] == sorted(int(q.query) for q in first)


def test_make_writes_queries_that_eval_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "labels.csv").write_text("path,label\na.jpg,dog\n")
    out = tmp_path / "q.jsonl"
    assert main(["eval", "make", "labels", str(tmp_path), "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"queries": 1, "output": str(out)}
    assert load_queries(out) == [Judged("a photo of a dog", (("a.jpg", None),))]
    assert main(["eval", "make", "figures", str(tmp_path), "-o", str(out)]) == 1
    assert "no figure_captions.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("folder", "fmt", "count"),
    [
        ("coco_mini", "coco", 795),
        ("cifar10_test_subset", "labels", 10),
        ("clothing_small", "labels", 10),
        ("pdfs_real", "figures", None),
        ("financebench_dev", "financebench", 43),
        ("magento_luma_catalog", "catalog", 191),
    ],
)
def test_the_shared_datasets_load(folder: str, fmt: str, count: int | None) -> None:
    path = EVALDATA / folder
    if not path.is_dir():
        pytest.skip(f"{path} is absent (shared evaluation data)")
    assert detect_format(path) == fmt
    queries = load("auto", path)
    assert queries and all(q.relevant or q.fields for q in queries)
    if count is not None:
        assert len(queries) == count
