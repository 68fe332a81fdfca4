"""The library surface: mmrag.open, add, search, search_by_image, ask, and the Qdrant backend."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmrag
from mmrag import Range

pytestmark = pytest.mark.integration


def test_public_surface_is_small_and_listed() -> None:
    assert set(mmrag.__all__) == {
        "AnswerError",
        "ConfigError",
        "DependencyError",
        "FetchError",
        "Hit",
        "Index",
        "IndexError_",
        "IndexReport",
        "InputError",
        "Item",
        "MmragError",
        "ModelLoadError",
        "ModelMismatchError",
        "Range",
        "Settings",
        "StoreError",
        "Where",
        "__version__",
        "open",
    }
    for name in mmrag.__all__:
        assert getattr(mmrag, name) is not None


def test_library_round_trip(tmp_path: Path, corpus: Path, tiny_clip: Path) -> None:
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False) as index:
        report = index.add(corpus, metadata={"collection": "shapes"})
        assert (report.added, report.failed) == (6, 0)
        hits = index.search("a green circle", k=3, where={"collection": "shapes"})
        assert hits[0].item.source.endswith("green.jpg") and hits[0].item.kind == "image"
        assert hits[0].evidence and hits[0].evidence[0].role == "caption"
        cheap = index.search("shape", where={"price": Range(lt=5)})
        assert {Path(h.item.source).name for h in cheap} == {"red.png"}
        similar = index.search_by_image(corpus / "blue.jpg", k=1)
        assert similar[0].item.source.endswith("blue.jpg")
        assert index.thumbnail(similar[0].item.thumb)[:2] == b"\xff\xd8"  # a JPEG thumbnail
        assert index.thumbnail("not-a-hash") is None
        by_id = index.similar_to(similar[0].item.id, k=1)
        assert [h.item.id for h in by_id] == [similar[0].item.id]
        with pytest.raises(mmrag.InputError):
            index.similar_to("no-such-item")
        answer = index.ask("which shape is green?", k=2)
        assert answer.citations and answer.citations[0].source.endswith("green.jpg")


def test_reembed_with_another_model_keeps_every_source(
    tmp_path: Path, corpus: Path, tiny_clip: Path
) -> None:
    from mmrag.testing import make_tiny_clip

    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False) as index:
        index.add(corpus)
    wider = make_tiny_clip(tmp_path / "wide", seed=2, projection_dim=24)
    with pytest.raises(mmrag.ModelMismatchError):
        mmrag.open(tmp_path / "idx", model=str(wider))
    with mmrag.open(tmp_path / "idx", model=str(wider), reembed=True, ocr=False) as index:
        assert index.store.spaces["clip"] == 24
        assert index.stats()["kinds"] == {"image": 6, "text": 6}
        assert index.search_by_image(corpus / "red.png", k=1)[0].item.source.endswith("red.png")


def test_qdrant_backend_through_the_same_api(tmp_path: Path, corpus: Path, tiny_clip: Path) -> None:
    with mmrag.open(
        tmp_path / "idx",
        model=str(tiny_clip),
        ocr=False,
        store="qdrant",
        qdrant_url=str(tmp_path / "qdrant"),
    ) as index:
        assert type(index.store).__name__ == "QdrantStore"
        assert index.add(corpus).added == 6
        hits = index.search("a yellow circle", k=2)
        assert hits[0].item.source.endswith("yellow.png")
        assert index.available_paths() == ("clip", "text")  # no BM25 in Qdrant here
        assert index.search_by_image(corpus / "red.png", k=1)[0].item.source.endswith("red.png")


def test_a_store_url_chooses_the_backend_and_a_bad_one_is_a_config_error(
    tmp_path: Path, corpus: Path, tiny_clip: Path
) -> None:
    url = f"qdrant+local:{tmp_path / 'q'}#photos"
    with mmrag.open(tmp_path / "idx", model=str(tiny_clip), ocr=False, store=url) as index:
        assert type(index.store).__name__ == "QdrantStore"
        assert index.store.collection == "photos"  # type: ignore[attr-defined]
    with pytest.raises(mmrag.ConfigError, match="store"):
        mmrag.open(tmp_path / "other", model="none", store="mongo://db/x")
