"""The VectorStore contract: every backend's test class inherits :class:`StoreContract`.

A backend test provides ``make_store(tmp_path, spaces)`` (a store at ``tmp_path``,
reopening the same data when called again with the same path) and sets
``persists`` to False when reopening cannot see earlier data.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmrag.errors import ConfigError, ModelMismatchError
from mmrag.stores.base import VectorStore
from mmrag.types import Item, Range

SPACES = {"clip": 8, "text": 4}


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Random unit vectors."""
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def catalog() -> list[Item]:
    """Eight items spanning kinds, typed metadata, free-form metadata and awkward strings."""
    cats = ["shoes", "shoes", "hats", "hats", "bags", "o'brien's", "shoes", "bags"]
    return [
        Item(
            id=f"item-{i}",
            kind="product" if i < 6 else "page",
            source=f"/data/cat's {i}.png",
            content_hash=f"h{i}",
            parent="doc-1" if i >= 6 else None,
            text=f"text of item {i}" if i % 2 == 0 else None,
            doc="report.pdf" if i >= 6 else None,
            page=i if i >= 6 else None,
            bbox=(0.1 * i, 0.25, 0.5, 1.0) if i == 6 else None,
            thumb=f"t{i}" if i == 1 else None,
            metadata={
                "category": cats[i],
                "price": 10.0 * i + 0.5,
                "tags": ["red", f"t{i}"] if i % 2 == 0 else ["blue"],
                "count": i,
                "on_sale": i % 3 == 0,
                "color": "red" if i < 4 else "green",
                "nested": {"a": [1, 2.5, "x"], "b": None},
            },
        )
        for i in range(8)
    ]


class StoreContract:
    """Behaviour every VectorStore must show."""

    persists: bool = True

    def make_store(self, tmp_path: Path, spaces: Mapping[str, int]) -> Any:
        """Build (or reopen) the backend under test."""
        raise NotImplementedError

    @pytest.fixture
    def loaded(self, tmp_path: Path) -> tuple[Any, list[Item], dict[str, np.ndarray]]:
        """A store holding :func:`catalog` with clip vectors for all and text vectors for some."""
        store = self.make_store(tmp_path, SPACES)
        items = catalog()
        rng = np.random.default_rng(7)
        clip = unit(rng, len(items), 8)
        text = unit(rng, len(items), 4)
        text[1::2] = np.nan  # odd items have no text vector
        store.upsert(items, {"clip": clip, "text": text})
        return store, items, {"clip": clip, "text": text}

    def test_store_satisfies_the_protocol(self, tmp_path: Path) -> None:
        assert isinstance(self.make_store(tmp_path, SPACES), VectorStore)

    def test_get_round_trips_every_field_and_metadata_type(self, loaded: Any) -> None:
        store, items, _ = loaded
        got = store.get([it.id for it in items])
        assert got == items
        assert type(got[3].metadata["count"]) is int
        assert type(got[3].metadata["on_sale"]) is bool
        assert type(got[3].metadata["price"]) is float
        assert got[6].bbox == items[6].bbox
        assert isinstance(got[6].bbox, tuple)

    def test_get_keeps_the_order_asked_and_skips_unknown_ids(self, loaded: Any) -> None:
        store, _, _ = loaded
        got = store.get(["item-5", "nope", "item-0", "item-3"])
        assert [g.id for g in got] == ["item-5", "item-0", "item-3"]

    def test_upsert_replaces_by_id(self, loaded: Any) -> None:
        store, items, _ = loaded
        new = items[2].with_(text="changed", metadata={"category": "new"})
        v = unit(np.random.default_rng(1), 1, 8)
        store.upsert([new], {"clip": v})
        assert store.count() == len(items)
        assert store.get(["item-2"]) == [new]
        assert np.allclose(store.get_vectors("clip", ["item-2"])["item-2"], v[0], atol=1e-6)
        assert store.get_vectors("text", ["item-2"]) == {}  # a space left out is cleared
        assert store.count({"category": "hats"}) == 1

    def test_upsert_replaces_items_whose_vectors_are_missing_in_a_space(
        self, tmp_path: Path
    ) -> None:
        # An image and its caption: the image has no text vector, the caption no CLIP vector.
        store = self.make_store(tmp_path, SPACES)
        image = Item(id="img", kind="image", source="p.jpg", metadata={"width": 3})
        caption = Item(id="cap", kind="text", source="p.jpg", parent="img", text="a red shoe")
        for seed in (0, 1):  # the second round replaces both rows
            rng = np.random.default_rng(seed)
            clip, text = unit(rng, 2, 8), unit(rng, 2, 4)
            clip[1] = np.nan
            text[0] = np.nan
            store.upsert([image, caption], {"clip": clip, "text": text})
        assert store.get(["img", "cap"]) == [image, caption]
        assert np.allclose(store.get_vectors("clip", ["img", "cap"])["img"], clip[0], atol=1e-6)
        assert set(store.get_vectors("text", ["img", "cap"])) == {"cap"}

    def test_context_round_trips_beside_the_clean_text(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path, SPACES)
        chunk = Item(
            id="c",
            kind="text",
            source="3M_2018_10K.pdf",
            role="chunk",
            text="Purchases of PP&E were $1,577 million.",
            context="3M 2018 10K; FORM 10-K\nItem 8. Financial Statements",
        )
        plain = Item(id="p", kind="text", source="notes.txt", text="no context here")
        store.upsert([chunk, plain], {"text": unit(np.random.default_rng(5), 2, 4)})
        assert store.get(["c", "p"]) == [chunk, plain]
        assert store.get(["c"])[0].text == "Purchases of PP&E were $1,577 million."
        assert store.get(["p"])[0].context is None

    def test_role_round_trips_and_filters(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path, SPACES)
        image = Item(id="img", kind="image", source="p")
        caption = Item(id="cap", kind="text", source="p", parent="img", role="caption", text="red")
        ocr = Item(id="ocr", kind="text", source="p", parent="img", role="ocr", text="SALE")
        rng = np.random.default_rng(3)
        clip, text = unit(rng, 3, 8), unit(rng, 3, 4)
        clip[1:], text[0] = np.nan, np.nan
        store.upsert([image, caption, ocr], {"clip": clip, "text": text})
        assert store.get(["img", "cap", "ocr"]) == [image, caption, ocr]
        assert store.get(["cap"])[0].role == "caption"
        assert [it.id for it in store.find({"role": "caption"})] == ["cap"]
        assert store.count({"role": ["caption", "ocr"]}) == 2
        assert store.count({"role": "chunk"}) == 0
        hits = store.query("text", text[2], 5, {"role": "caption"})
        assert [h.item.id for h in hits] == ["cap"]

    def test_metadata_that_is_not_json_is_a_config_error(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path, SPACES)
        bad = Item(id="a", kind="image", source="a", metadata={"x": object()})
        with pytest.raises(ConfigError, match="JSON"):
            store.upsert([bad], {})
        assert store.count() == 0

    def test_upsert_of_a_repeated_id_in_one_batch_keeps_the_last(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path, SPACES)
        a = Item(id="x", kind="image", source="a")
        b = Item(id="x", kind="image", source="b")
        store.upsert([a, b], {"clip": unit(np.random.default_rng(0), 2, 8)})
        assert store.get(["x"]) == [b]

    def test_delete_removes_and_ignores_unknown_ids(self, loaded: Any) -> None:
        store, items, _ = loaded
        store.delete(["item-0", "item-1", "never"])
        assert store.count() == len(items) - 2
        assert store.get(["item-0", "item-2"]) == [items[2]]
        hits = store.query("clip", loaded[2]["clip"][0], 10)
        assert "item-0" not in {h.item.id for h in hits}

    def test_query_orders_by_cosine_and_scores_the_exact_match_one(self, loaded: Any) -> None:
        store, _items, vecs = loaded
        q = vecs["clip"][3]
        hits = store.query("clip", q, 5)
        assert hits[0].item.id == "item-3"
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        expected = np.argsort(-(vecs["clip"] @ q))[:5]
        assert [h.item.id for h in hits] == [f"item-{i}" for i in expected]
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert scores == pytest.approx(sorted(vecs["clip"] @ q, reverse=True)[:5], abs=1e-4)

    def test_query_skips_items_without_a_vector_in_that_space(self, loaded: Any) -> None:
        store, items, vecs = loaded
        hits = store.query("text", vecs["text"][0], 10)
        assert {h.item.id for h in hits} == {f"item-{i}" for i in range(0, 8, 2)}
        assert store.get(["item-1"]) == [items[1]]

    def test_query_accepts_a_non_normalised_vector(self, loaded: Any) -> None:
        store, _, vecs = loaded
        hits = store.query("clip", 3.0 * vecs["clip"][4], 1)
        assert hits[0].item.id == "item-4"
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)

    def test_query_rejects_unknown_space_and_wrong_dim(self, loaded: Any) -> None:
        store, _, _ = loaded
        with pytest.raises(ConfigError):
            store.query("audio", np.zeros(8, np.float32), 3)
        with pytest.raises(ConfigError):
            store.query("clip", np.zeros(5, np.float32), 3)

    def test_upsert_rejects_wrongly_shaped_vectors(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path, SPACES)
        with pytest.raises(ConfigError):
            store.upsert([Item(id="a", kind="image", source="a")], {"clip": np.zeros((1, 3))})
        with pytest.raises(ConfigError):
            store.upsert([Item(id="a", kind="image", source="a")], {"audio": np.zeros((1, 8))})

    @pytest.mark.parametrize(
        ("where", "expected"),
        [
            ({"category": "shoes"}, {0, 1, 6}),
            ({"category": ["hats", "bags"]}, {2, 3, 4, 7}),
            ({"category": ("hats",)}, {2, 3}),
            ({"price": Range(gte=20.5, lt=50.5)}, {2, 3, 4}),
            ({"price": Range(gt=60.5)}, {7}),
            ({"price": 30.5}, {3}),
            ({"tags": "red"}, {0, 2, 4, 6}),
            ({"tags": ["t2", "t4", "blue"]}, {1, 2, 3, 4, 5, 7}),
            ({"kind": "page"}, {6, 7}),
            ({"kind": "page", "category": "bags"}, {7}),
            ({"page": 6}, {6}),
            ({"page": Range(gte=7)}, {7}),
            ({"parent": "doc-1", "tags": "red"}, {6}),
            ({"doc": "report.pdf", "price": Range(lte=65)}, {6}),
            ({"category": "o'brien's"}, {5}),
            ({"source": "/data/cat's 3.png"}, {3}),
            ({"category": "x' OR '1'='1"}, set()),
            ({"category": "shoes') OR (1=1"}, set()),
            ({"category": []}, set()),
            ({"id": ["item-1", "item-2"]}, {1, 2}),
            # Free-form metadata keys.
            ({"color": "red"}, {0, 1, 2, 3}),
            ({"count": Range(gte=6)}, {6, 7}),
            ({"count": [1, 5]}, {1, 5}),
            ({"on_sale": True}, {0, 3, 6}),
            ({"color": "green", "category": "shoes"}, {6}),
            ({"missing_key": "x"}, set()),
        ],
    )
    def test_filters_select_the_right_items(
        self, loaded: Any, where: dict[str, Any], expected: set[int]
    ) -> None:
        store, _, vecs = loaded
        want = {f"item-{i}" for i in expected}
        assert {it.id for it in store.find(where)} == want
        assert store.count(where) == len(want)
        hits = store.query("clip", vecs["clip"][0], 10, where)
        assert {h.item.id for h in hits} == want

    def test_filtered_query_returns_k_nearest_among_matches(self, loaded: Any) -> None:
        store, _, vecs = loaded
        q = vecs["clip"][0]
        for where, ids in [({"tags": "red"}, [0, 2, 4, 6]), ({"color": "green"}, [4, 5, 6, 7])]:
            order = sorted(ids, key=lambda i: -float(vecs["clip"][i] @ q))[:2]
            hits = store.query("clip", q, 2, where)
            assert [h.item.id for h in hits] == [f"item-{i}" for i in order]

    @pytest.mark.parametrize(
        "where",
        [
            {"price": Range()},
            {"price": Range(gte=1, gt=2)},
            {"price": Range(lte=float("nan"))},
            {"category": {"a": 1}},
            {"category": None},
            {"price": float("inf")},
            {"": "x"},
            {"bbox": "x"},
            {"category": Range(gte=1)},
            {"page": "three"},
        ],
    )
    def test_malformed_filters_raise_config_error(self, loaded: Any, where: Any) -> None:
        store, _, vecs = loaded
        with pytest.raises(ConfigError):
            store.count(where)
        with pytest.raises(ConfigError):
            store.query("clip", vecs["clip"][0], 3, where)
        with pytest.raises(ConfigError):
            store.find(where)

    def test_count_with_and_without_filter(self, loaded: Any) -> None:
        store, items, _ = loaded
        assert store.count() == len(items)
        assert store.count({"kind": "product"}) == 6

    def test_get_vectors_returns_stored_vectors_and_skips_missing(self, loaded: Any) -> None:
        store, _, vecs = loaded
        got = store.get_vectors("text", ["item-0", "item-1", "item-2", "nope"])
        assert set(got) == {"item-0", "item-2"}
        assert np.allclose(got["item-2"], vecs["text"][2], atol=1e-6)
        assert got["item-0"].dtype == np.float32

    def test_find_respects_limit(self, loaded: Any) -> None:
        store, _, _ = loaded
        assert len(store.find({"kind": "product"}, limit=2)) == 2
        assert len(store.find({"color": "red"}, limit=3)) == 3

    def test_data_survives_reopening(self, loaded: Any, tmp_path: Path) -> None:
        store, items, vecs = loaded
        if not self.persists:
            pytest.skip("backend does not persist")
        del store
        again = self.make_store(tmp_path, SPACES)
        assert again.get([it.id for it in items]) == items
        assert again.query("clip", vecs["clip"][5], 1)[0].item.id == "item-5"

    def test_reopening_with_other_dims_raises_model_mismatch(
        self, loaded: Any, tmp_path: Path
    ) -> None:
        if not self.persists:
            pytest.skip("backend does not persist")
        del loaded
        with pytest.raises(ModelMismatchError):
            self.make_store(tmp_path, {"clip": 16, "text": 4})
        with pytest.raises(ModelMismatchError):
            self.make_store(tmp_path, {"clip": 8})

    def test_drop_empties_the_store(self, loaded: Any) -> None:
        store, _, vecs = loaded
        store.drop()
        assert store.count() == 0
        assert store.query("clip", vecs["clip"][0], 3) == []

    def test_optimize_keeps_the_data(self, loaded: Any) -> None:
        store, items, vecs = loaded
        store.optimize()
        assert store.get([it.id for it in items]) == items
        assert store.query("clip", vecs["clip"][1], 1)[0].item.id == "item-1"


# --- the multi-vector (late-interaction) capability -------------------------------------
# A separate contract: a backend with the capability inherits MultiVectorContract too and
# provides ``make_multi_store(tmp_path, spaces, multi_spaces)``.

MULTI_DIM = 8


def multivectors(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` random multi-vectors of 3-9 unit tokens each."""
    return [unit(rng, int(rng.integers(3, 10)), MULTI_DIM) for _ in range(n)]


def brute_maxsim(query: np.ndarray, docs: Mapping[str, np.ndarray]) -> list[tuple[str, float]]:
    """Every document's MaxSim score, best first (the reference ranking, plain numpy)."""
    scores = {i: float((query @ d.T).max(axis=1).sum()) for i, d in docs.items()}
    return sorted(scores.items(), key=lambda kv: -kv[1])


class MultiVectorContract:
    """Behaviour every store with the multi-vector capability must show, per first stage."""

    persists: bool = True

    def make_multi_store(
        self, tmp_path: Path, spaces: Mapping[str, int], multi_spaces: Mapping[str, Any]
    ) -> Any:
        """Build (or reopen) the backend under test with these multi-vector spaces."""
        raise NotImplementedError

    @pytest.fixture(params=["none", "int8", "binary"])
    def first_stage(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    def _open(self, tmp_path: Path, first_stage: str, rerank: int = 8) -> Any:
        from mmrag.stores.base import MultiSpace

        multi = {"pages": MultiSpace(MULTI_DIM, first_stage=first_stage, rerank=rerank)}
        return self.make_multi_store(tmp_path, SPACES, multi)

    @pytest.fixture
    def paged(
        self, tmp_path: Path, first_stage: str
    ) -> tuple[Any, list[Item], dict[str, np.ndarray]]:
        """The catalog, each item with a multi-vector except item-3 (a clip vector only)."""
        store = self._open(tmp_path, first_stage, rerank=100)
        items = catalog()
        rng = np.random.default_rng(11)
        store.upsert(items, {"clip": unit(rng, len(items), 8)})
        docs = dict(zip([it.id for it in items], multivectors(rng, len(items)), strict=True))
        del docs["item-3"]
        store.set_multivectors("pages", docs)
        return store, items, docs

    def test_store_has_the_multi_vector_capability(self, paged: Any) -> None:
        from mmrag.stores.base import MultiVectorStore, VectorStore

        store, _, _ = paged
        assert isinstance(store, VectorStore) and isinstance(store, MultiVectorStore)
        assert set(store.multi_spaces) == {"pages"}

    def test_multivectors_round_trip_and_unknown_ids_are_ignored(self, paged: Any) -> None:
        store, _, docs = paged
        store.set_multivectors("pages", {"nope": docs["item-0"]})  # no such item: ignored
        got = store.get_multivectors("pages", [*docs, "item-3", "nope"])
        assert set(got) == set(docs)
        for i, d in docs.items():
            assert got[i].dtype == np.float32 and got[i].shape == d.shape
            assert np.allclose(got[i], d, atol=1e-6)
        assert store.count() == len(catalog())

    def test_multi_query_ranks_like_brute_force_maxsim(self, paged: Any) -> None:
        store, _, docs = paged
        rng = np.random.default_rng(5)
        for _ in range(3):
            query = unit(rng, 4, MULTI_DIM)
            want = brute_maxsim(query, docs)[:5]
            hits = store.multi_query("pages", query, 5)
            assert [h.item.id for h in hits] == [i for i, _ in want]
            assert np.allclose([h.score for h in hits], [s for _, s in want], atol=1e-4)

    def test_a_page_is_its_own_best_match(self, paged: Any) -> None:
        store, _, docs = paged
        hits = store.multi_query("pages", docs["item-6"], 1)
        assert hits[0].item.id == "item-6"
        assert hits[0].score == pytest.approx(len(docs["item-6"]), abs=1e-4)

    @pytest.mark.parametrize(
        "where", [{"kind": "page"}, {"category": ["shoes", "bags"]}, {"color": "green"}]
    )
    def test_filters_apply_to_multi_queries(self, paged: Any, where: Any) -> None:
        store, items, docs = paged
        from mmrag.stores import filters as F

        allowed = {it.id for it in items if F.matches(F.normalize(where), it)}
        query = unit(np.random.default_rng(9), 3, MULTI_DIM)
        want = [i for i, _ in brute_maxsim(query, docs) if i in allowed][:3]
        assert [h.item.id for h in store.multi_query("pages", query, 3, where=where)] == want

    def test_delete_and_reupsert_remove_multivectors(self, paged: Any) -> None:
        store, items, docs = paged
        store.delete(["item-6"])
        assert "item-6" not in {h.item.id for h in store.multi_query("pages", docs["item-6"], 8)}
        store.upsert([items[7]], {})  # a re-indexed item has no multi-vector until it gets one
        assert store.get_multivectors("pages", ["item-7"]) == {}
        assert "item-7" not in {h.item.id for h in store.multi_query("pages", docs["item-7"], 8)}

    def test_a_small_rerank_still_scores_hits_exactly(
        self, tmp_path: Path, first_stage: str
    ) -> None:
        store = self._open(tmp_path, first_stage, rerank=1)
        rng = np.random.default_rng(3)
        items = [Item(id=f"p{i}", kind="page", source="a.pdf", page=i) for i in range(30)]
        store.upsert(items, {})
        docs = dict(zip([it.id for it in items], multivectors(rng, 30), strict=True))
        store.set_multivectors("pages", docs)
        query = unit(rng, 5, MULTI_DIM)
        exact = dict(brute_maxsim(query, docs))
        hits = store.multi_query("pages", query, 5)
        assert len(hits) == 5
        assert all(abs(h.score - exact[h.item.id]) < 1e-4 for h in hits)

    def test_bad_multivectors_and_queries_raise_config_error(self, paged: Any) -> None:
        store, _, _ = paged
        with pytest.raises(ConfigError):
            store.set_multivectors("pages", {"item-0": np.ones((3, MULTI_DIM + 1), np.float32)})
        with pytest.raises(ConfigError):
            store.set_multivectors("nope", {"item-0": np.ones((3, MULTI_DIM), np.float32)})
        with pytest.raises(ConfigError):
            store.multi_query("pages", np.ones((2, 3), np.float32), 3)
        with pytest.raises(ConfigError):
            store.multi_query("clip", np.ones((2, MULTI_DIM), np.float32), 3)

    def test_multivectors_survive_reopening_and_other_dims_mismatch(
        self, paged: Any, tmp_path: Path, first_stage: str
    ) -> None:
        if not self.persists:
            pytest.skip("backend does not persist")
        store, _, docs = paged
        del store, paged
        again = self._open(tmp_path, first_stage)
        assert np.allclose(again.get_multivectors("pages", ["item-1"])["item-1"], docs["item-1"])
        from mmrag.stores.base import MultiSpace

        with pytest.raises(ModelMismatchError):
            self.make_multi_store(tmp_path, SPACES, {"pages": MultiSpace(MULTI_DIM * 2)})
        with pytest.raises(ModelMismatchError):
            self.make_multi_store(tmp_path, SPACES, {})
