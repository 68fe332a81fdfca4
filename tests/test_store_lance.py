"""LanceStore: the store contract plus full-text search, the ANN path and SQL translation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from mmrag import registry
from mmrag.errors import ConfigError
from mmrag.stores import filters as F
from mmrag.stores.lance import LANCE_FIELDS, LanceStore
from mmrag.stores.lance_index import IndexPolicy
from mmrag.stores.lance_schema import ROW_COLUMNS
from mmrag.stores.records import RECORD_FIELDS
from mmrag.stores.url import StoreURL, parse_store_url
from mmrag.types import Item, Range
from store_contract import SPACES, StoreContract, unit

pytestmark = pytest.mark.integration


class TestLanceContract(StoreContract):
    """LanceStore, opened from a ``lance:PATH`` store URL, passes the shared contract."""

    def make_store(self, tmp_path: Path, spaces: Mapping[str, int]) -> LanceStore:
        url = parse_store_url(f"lance:{tmp_path / 'lance'}", default_dir=tmp_path / "unused")
        return LanceStore.from_url(url, spaces)


def test_from_url_opens_the_default_table_or_the_named_one(tmp_path: Path) -> None:
    plain = LanceStore.from_url(parse_store_url("lance", default_dir=tmp_path), SPACES)
    assert (plain.path, plain.table_name) == (tmp_path, "items")
    named = LanceStore.from_url(StoreURL("lance", str(tmp_path), "photos"), SPACES)
    assert named.table_name == "photos"
    named.upsert(text_items(["x"]), {})
    assert (named.count(), plain.count()) == (1, 0)
    assert repr(named) == f"LanceStore({str(tmp_path)!r}, 'photos', spaces={SPACES})"


def test_from_url_overwrite_starts_afresh(tmp_path: Path) -> None:
    url = StoreURL("lance", str(tmp_path))
    LanceStore.from_url(url, SPACES).upsert(text_items(["x"]), {})
    assert LanceStore.from_url(url, SPACES).count() == 1
    assert LanceStore.from_url(url, {"clip": 32}, overwrite=True).count() == 0


def test_from_url_refuses_another_backends_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="qdrant"):
        LanceStore.from_url(StoreURL("qdrant", "http://127.0.0.1:6333", "c"), SPACES)


def test_the_registry_builds_lance_through_from_url(tmp_path: Path) -> None:
    url = parse_store_url(f"lance:{tmp_path}#t", default_dir=tmp_path)
    store = registry.stores.create(url.scheme, url, SPACES, overwrite=False, settings=None)
    assert isinstance(store, LanceStore) and store.table_name == "t"


def text_items(texts: list[str], start: int = 0) -> list[Item]:
    """Text items with ids t<start+i>."""
    return [
        Item(id=f"t{start + i}", kind="text", source="doc.pdf", text=t, metadata={"n": start + i})
        for i, t in enumerate(texts)
    ]


def test_text_query_splits_letter_digit_runs_on_both_sides(tmp_path: Path) -> None:
    store = LanceStore(tmp_path, SPACES)
    texts = [
        "Capital expenditure was $1,577 million in 2018.",
        "Revenue grew across segments in FY2017.",
        "Results for 2023Q2 by region.",
        "Nothing about years at all.",
    ]
    store.upsert(text_items(texts), {})

    def found(query: str) -> set[str]:
        return {h.item.id for h in store.text_query(query, 4)}

    for _ in range(2):  # rows scanned exactly, then through the index optimize() builds
        assert found("2017") == {"t1"}  # "FY2017" was indexed as "FY 2017"
        assert found("2023 Q2") == {"t2"}
        assert "t0" in found("FY2018")  # and the query is split the same way
        assert found("fiscal 2018 capital")  # a question's wording still matches
        store.optimize()


def test_text_query_finds_a_chunk_by_its_document_context(tmp_path: Path) -> None:
    store = LanceStore(tmp_path, SPACES)
    chunks = [
        Item(
            id=f"c{i}",
            kind="text",
            source=f"{name}.pdf",
            role="chunk",
            text="Purchases of property, plant and equipment rose this year.",
            context=f"{name.replace('_', ' ')}; FORM 10-K\nItem 8. Financial Statements",
        )
        for i, name in enumerate(["3M_2018_10K", "BOEING_2018_10K", "ADOBE_2015_10K"])
    ]
    store.upsert(chunks, {})
    hits = store.text_query("Boeing purchases of property and equipment", 3)
    assert hits[0].item.id == "c1"
    assert hits[0].item.text == chunks[1].text  # the context is searched, never shown
    only_3m = store.text_query("financial statements", 3, {"source": "3M_2018_10K.pdf"})
    assert [h.item.id for h in only_3m] == ["c0"]


def test_text_query_ranks_by_bm25_and_filters(tmp_path: Path) -> None:
    store = LanceStore(tmp_path, SPACES)
    items = text_items(
        [
            "the red fox jumps",
            "a blue whale",
            "red fox fox fox",
            "fox by a long river bank in the grass today",
        ]
    )
    store.upsert(items, {})
    hits = store.text_query("fox", 10)
    assert {h.item.id for h in hits} == {"t0", "t2", "t3"}
    assert all(h.score > 0 for h in hits)
    assert [h.item.id for h in hits] == ["t2", "t0", "t3"]
    assert hits[0].score > hits[1].score > hits[2].score
    assert [h.item.id for h in store.text_query("fox", 10, {"id": ["t0", "t3"]})] == ["t0", "t3"]
    assert {h.item.id for h in store.text_query("fox", 10, {"n": Range(lte=2)})} == {"t0", "t2"}
    assert store.text_query("   ", 5) == []


def test_text_query_sees_rows_written_after_the_index_was_built(tmp_path: Path) -> None:
    store = LanceStore(tmp_path, SPACES)
    store.upsert(text_items(["alpha beta", "gamma delta"]), {})
    assert [h.item.id for h in store.text_query("gamma", 5)] == ["t1"]  # builds the index
    store.upsert(text_items(["gamma gamma epsilon"], start=2), {})
    store.upsert([text_items(["no longer about it"], start=1)[0]], {})  # replaced row
    assert [h.item.id for h in store.text_query("gamma", 5)] == ["t2"]
    store.delete(["t2"])
    assert store.text_query("gamma", 5) == []
    store.upsert(text_items(["epsilon zeta"], start=3), {})
    store.optimize()  # folds the new rows into the index
    assert [h.item.id for h in store.text_query("zeta", 5)] == ["t3"]


def test_ann_index_path_finds_neighbours_and_skips_null_vectors(tmp_path: Path) -> None:
    store = LanceStore(tmp_path, {"clip": 16}, index_policy=IndexPolicy(ann_threshold=500))
    rng = np.random.default_rng(3)
    n = 1200
    vecs = unit(rng, n, 16)
    vecs[::10] = np.nan
    items = [Item(id=f"v{i}", kind="image", source=f"{i}.png") for i in range(n)]
    for lo in range(0, n, 256):
        store.upsert(items[lo : lo + 256], {"clip": vecs[lo : lo + 256]})
    store.optimize()
    indexed = {c for ix in store._table.list_indices() for c in ix.columns}
    assert "vec_clip" in indexed
    assert store.count() == n
    q = vecs[1]
    hits = store.query("clip", q, 10)
    assert hits[0].item.id == "v1"
    assert all(int(h.item.id[1:]) % 10 for h in hits)
    # Rows written after the index are still found (scanned exactly until the next optimize).
    extra = unit(rng, 1, 16)
    store.upsert([Item(id="late", kind="image", source="late.png")], {"clip": extra})
    assert store.query("clip", extra[0], 1)[0].item.id == "late"
    assert store.query("clip", q, 3, {"id": ["v2", "v3"]})[0].item.id in {"v2", "v3"}


def vector_store(tmp_path: Path, n: int, seed: int = 5) -> tuple[LanceStore, np.ndarray]:
    """A 16-d store with ``n`` items v0.. (category c<i % 50>) and a low ANN threshold."""
    store = LanceStore(tmp_path, {"clip": 16}, index_policy=IndexPolicy(ann_threshold=500))
    vecs = unit(np.random.default_rng(seed), n, 16)
    add_vectors(store, vecs, 0)
    return store, vecs


def add_vectors(store: LanceStore, vecs: np.ndarray, start: int) -> None:
    """Upsert ``vecs`` as items v<start+i> in indexer-sized batches."""
    items = [
        Item(id=f"v{start + i}", kind="image", source="s", metadata={"category": f"c{i % 50}"})
        for i in range(len(vecs))
    ]
    for lo in range(0, len(items), 128):
        store.upsert(items[lo : lo + 128], {"clip": vecs[lo : lo + 128]})


def ann_index(store: LanceStore) -> tuple[str, int, int] | None:
    """(name, indexed rows, unindexed rows) of the vector index on ``clip``, if any."""
    for ix in store._table.list_indices():
        if ix.columns == ["vec_clip"]:
            st = store._table.index_stats(ix.name)
            assert st is not None
            return ix.name, st.num_indexed_rows, st.num_unindexed_rows
    return None


def test_optimize_folds_small_changes_in_and_retrains_after_large_ones(tmp_path: Path) -> None:
    store, _ = vector_store(tmp_path, 1000)
    store.optimize()
    assert ann_index(store) == ("vec_clip_ivfsq_n1000", 1000, 0)
    # A small ingest is folded into the trained partitions, not retrained.
    more = unit(np.random.default_rng(6), 100, 16)
    add_vectors(store, more, 1000)
    assert store.query("clip", more[7], 1)[0].item.id == "v1007"  # unindexed: scanned exactly
    store.optimize()
    assert ann_index(store) == ("vec_clip_ivfsq_n1000", 1100, 0)
    assert store.query("clip", more[7], 1)[0].item.id == "v1007"  # found through the index
    # Growth past rebuild_fraction retrains on everything.
    grown = unit(np.random.default_rng(7), 400, 16)
    add_vectors(store, grown, 1100)
    store.optimize()
    assert ann_index(store) == ("vec_clip_ivfsq_n1500", 1500, 0)
    # So does shrinking by as much; below the threshold the index is dropped.
    store.delete([f"v{i}" for i in range(800)])
    store.optimize()
    assert ann_index(store) == ("vec_clip_ivfsq_n700", 700, 0)
    store.delete([f"v{i}" for i in range(800, 1300)])
    store.optimize()
    assert ann_index(store) is None
    assert store.query("clip", grown[300], 1)[0].item.id == "v1400"


def test_optimize_retrains_when_delta_segments_pile_up(tmp_path: Path) -> None:
    store, _ = vector_store(tmp_path, 1000)
    store.index_policy.max_index_segments = 2
    store.optimize()
    names = []
    for run in range(3):
        add_vectors(store, unit(np.random.default_rng(10 + run), 5, 16), 1000 + 5 * run)
        store.optimize()
        names.append(ann_index(store))
    assert names[0] == ("vec_clip_ivfsq_n1000", 1005, 0)
    assert names[-1] is not None and names[-1][0] != "vec_clip_ivfsq_n1000"
    assert names[-1][1:] == (1015, 0)


def test_optimize_replaces_a_vector_index_it_did_not_build(tmp_path: Path) -> None:
    from lancedb.index import IvfHnswSq

    store, vecs = vector_store(tmp_path, 600)
    store._table.create_index("vec_clip", config=IvfHnswSq(distance_type="cosine"))
    assert store.query("clip", vecs[3], 1)[0].item.id == "v3"
    store.optimize()
    assert ann_index(store) == ("vec_clip_ivfsq_n600", 600, 0)
    assert store.query("clip", vecs[3], 1)[0].item.id == "v3"


def test_optimize_indexes_the_filter_columns(tmp_path: Path) -> None:
    store = LanceStore(tmp_path, SPACES)
    store.optimize()  # an empty table: nothing to index
    store.upsert(text_items(["x"]), {})
    store.optimize()
    indexed = {c for ix in store._table.list_indices() for c in ix.columns}
    assert {"id", "kind", "source", "parent", "category", "price", "tags"} <= indexed


def test_selective_filter_on_the_ann_index_still_returns_k_exact_neighbours(
    tmp_path: Path,
) -> None:
    store, vecs = vector_store(tmp_path, 2000)
    # One probe finds few of the matches.
    store.index_policy.nprobes, store.index_policy.probe_fraction = 1, 0.0
    store.optimize()
    assert ann_index(store) is not None
    q = unit(np.random.default_rng(8), 1, 16)[0]
    hits = store.query("clip", q, 10, {"category": "c7"})  # 40 of 2000 rows pass
    members = np.arange(7, 2000, 50)
    expected = [f"v{i}" for i in members[np.argsort(-(vecs[members] @ q))[:10]]]
    assert [h.item.id for h in hits] == expected  # the search widened until it had 10
    few = store.query("clip", q, 10, {"id": ["v3", "v1500", "v1999"]})
    assert {h.item.id for h in few} == {"v3", "v1500", "v1999"}
    assert hits[0].score == pytest.approx(float((vecs[members] @ q).max()), abs=1e-5)


def test_upsert_sees_ids_written_through_another_handle(tmp_path: Path) -> None:
    a = LanceStore(tmp_path, SPACES)
    a.upsert(text_items(["x"]), {})
    b = LanceStore(tmp_path, SPACES)
    b.upsert(text_items(["y"], start=1), {})
    a.upsert(text_items(["z"], start=2), {})  # a's handle moves past b's commit
    a.upsert(text_items(["y again"], start=1), {})  # must replace, not duplicate
    assert a.count() == 3
    assert [it.text for it in a.get(["t1"])] == ["y again"]
    a.delete(["t0"])
    a.upsert(text_items(["x again"]), {})
    assert a.count() == 3


def test_a_reader_follows_another_handles_writes_optimize_and_its_own_drop(
    tmp_path: Path,
) -> None:
    """Queries go through a second (async) handle opened at the first read: it must see
    later writes from another process's handle, survive that handle's optimize() removing
    the versions it read, and follow this store's own drop()."""
    rng = np.random.default_rng(3)
    reader = LanceStore(tmp_path, SPACES)
    writer = LanceStore(tmp_path, SPACES)
    vecs = unit(rng, 3, 8)
    writer.upsert(text_items(["red kite"]), {"clip": vecs[:1]})
    assert [h.item.id for h in reader.query("clip", vecs[0], 5)] == ["t0"]
    assert [h.item.id for h in reader.text_query("kite", 5)] == ["t0"]

    writer.upsert(text_items(["blue kite", "green boat"], start=1), {"clip": vecs[1:]})
    writer.delete(["t0"])
    writer.optimize()  # compacts and drops the versions the reader last read
    assert [h.item.id for h in reader.query("clip", vecs[2], 1)] == ["t2"]
    assert {h.item.id for h in reader.query("clip", vecs[0], 5)} == {"t1", "t2"}
    assert [h.item.id for h in reader.text_query("kite", 5)] == ["t1"]
    assert [it.text for it in reader.get(["t0", "t2"])] == ["green boat"]

    reader.drop()
    assert reader.query("clip", vecs[2], 5) == []
    assert reader.text_query("boat", 5) == []
    reader.upsert(text_items(["boat again"], start=7), {"clip": vecs[2:]})
    assert [h.item.id for h in reader.text_query("boat", 5)] == ["t7"]
    assert [h.item.id for h in reader.query("clip", vecs[2], 5)] == ["t7"]


def test_optimize_below_threshold_builds_no_vector_index(tmp_path: Path) -> None:
    store = LanceStore(tmp_path, SPACES)
    store.upsert(text_items(["x"]), {"clip": unit(np.random.default_rng(0), 1, 8)})
    store.optimize()
    store.optimize()
    indexed = {c for ix in store._table.list_indices() for c in ix.columns}
    assert "vec_clip" not in indexed
    assert store.count() == 1


def test_overwrite_reopens_with_new_spaces(tmp_path: Path) -> None:
    store = LanceStore(tmp_path, SPACES)
    store.upsert(text_items(["x"]), {})
    fresh = LanceStore(tmp_path, {"clip": 32}, overwrite=True)
    assert fresh.count() == 0
    assert fresh.spaces == {"clip": 32}


def test_typed_metadata_of_another_type_round_trips_but_is_not_filterable(
    tmp_path: Path,
) -> None:
    store = LanceStore(tmp_path, SPACES)
    item = Item(id="a", kind="product", source="a", metadata={"price": "n/a", "tags": "solo"})
    store.upsert([item], {})
    assert store.get(["a"]) == [item]
    assert store.count({"price": Range(gte=0)}) == 0
    assert store.count({"tags": "solo"}) == 1  # a lone string tag counts as a one-tag list


def sql(where: dict[str, object]) -> str | None:
    """The pushed-down SQL for a filter."""
    pushed, rest = F.split(F.normalize(where), LANCE_FIELDS)
    assert not rest
    return F.to_lance_sql(pushed, LANCE_FIELDS)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"category": "a"}, "`category` = 'a'"),
        ({"category": "o'brien"}, "`category` = 'o''brien'"),
        ({"category": "x' OR '1'='1"}, "`category` = 'x'' OR ''1''=''1'"),
        ({"category": "a\\'b"}, "`category` = 'a\\''b'"),
        ({"kind": ["image", "page"]}, "`kind` IN ('image', 'page')"),
        ({"tags": "red"}, "array_has(`tags`, 'red')"),
        ({"tags": ["a", "b"]}, "array_has_any(`tags`, ['a', 'b'])"),
        ({"price": Range(gte=1, lt=2.5)}, "(`price` >= 1.0 AND `price` < 2.5)"),
        ({"page": 3, "kind": "page"}, "`page` = 3 AND `kind` = 'page'"),
        ({"price": 3}, "`price` = 3"),
        ({"category": []}, "FALSE"),
    ],
)
def test_filters_translate_to_quoted_sql(where: dict[str, object], expected: str) -> None:
    assert sql(where) == expected


def test_sql_translation_rejects_nul_and_free_form_keys_stay_in_python() -> None:
    with pytest.raises(ConfigError):
        sql({"category": "a\x00b"})
    pushed, rest = F.split(F.normalize({"color": "red", "kind": "image"}), LANCE_FIELDS)
    assert [c.key for c in pushed] == ["kind"] and [c.key for c in rest] == ["color"]


def test_injection_attempts_match_nothing_and_leave_the_table_intact(tmp_path: Path) -> None:
    store = LanceStore(tmp_path, SPACES)
    store.upsert(text_items(["a", "b"]), {})
    for evil in ["' OR 1=1 --", "'); DELETE FROM items; --", "\\' OR '1'='1", "`id`"]:
        assert store.count({"category": evil}) == 0
        assert store.count({"id": evil}) == 0
        assert store.get([evil]) == []
        store.delete([evil])
    assert store.count() == 2


def test_rows_hold_the_shared_record_fields_and_the_metadata_json() -> None:
    assert [*RECORD_FIELDS[:-1], "meta"] == ROW_COLUMNS
    assert RECORD_FIELDS[-1] == "metadata"


@pytest.mark.parametrize("k", [10, 100])  # re-ranked 2x, and just its own k (a search path's)
def test_ann_scores_are_exact_cosines(tmp_path: Path, k: int) -> None:
    # Without the exact re-rank LanceDB reports IVF_SQ distances off the cosine scale, and
    # fusion and the relevance floor read these scores.
    store, vecs = vector_store(tmp_path, 1200)
    store.optimize()
    assert ann_index(store) is not None
    q = unit(np.random.default_rng(11), 1, 16)[0]
    hits = store.query("clip", q, k)
    exact = {f"v{i}": float(s) for i, s in enumerate(vecs @ q)}
    assert len(hits) == k
    assert [h.score for h in hits] == pytest.approx([exact[h.item.id] for h in hits], abs=1e-5)
