"""QdrantStore in local mode: the store contract plus Qdrant-specific behaviour."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from store_contract import SPACES, StoreContract, unit

pytest.importorskip("qdrant_client")

from qdrant_client import QdrantClient, models

from mmrag.errors import DependencyError, StoreError
from mmrag.stores import filters as F
from mmrag.stores.qdrant import QdrantStore, point_id
from mmrag.types import Item, Range

pytestmark = pytest.mark.integration


class TestQdrantContract(StoreContract):
    """QdrantStore (on-disk local mode) passes the shared contract."""

    clients: dict[Path, QdrantClient]

    def make_store(self, tmp_path: Path, spaces: Mapping[str, int]) -> QdrantStore:
        if not hasattr(self, "clients"):
            self.clients = {}
        old = self.clients.pop(tmp_path, None)
        if old is not None:
            # Local mode locks its folder: reopening means a fresh client, as after a restart.
            old.close()
        client = self.clients[tmp_path] = QdrantClient(path=str(tmp_path / "qdrant"))
        return QdrantStore(client, "items", spaces)


def test_in_memory_location_string_works() -> None:
    store = QdrantStore(":memory:", "c", SPACES)
    item = Item(id="a", kind="image", source="a.png", metadata={"tags": ["x"]})
    store.upsert([item], {"clip": unit(np.random.default_rng(0), 1, 8)})
    assert store.get(["a"]) == [item]
    assert store.count({"tags": "x"}) == 1


def test_point_ids_are_deterministic_uuids() -> None:
    assert point_id("abc") == point_id("abc") != point_id("abd")
    assert len(point_id("abc")) == 36


def test_text_query_is_unsupported() -> None:
    store = QdrantStore(":memory:", "c", SPACES)
    with pytest.raises(StoreError):
        store.text_query("anything", 3)


def test_filters_translate_to_qdrant_conditions() -> None:
    conds = F.normalize({"kind": "page", "price": Range(lte=5), "tags": ["a", "b"], "n": 2})
    flt = F.to_qdrant_filter(conds, models)
    by_key = {c.key: c for c in flt.must}
    assert by_key["kind"].match == models.MatchValue(value="page")
    assert by_key["metadata.price"].range == models.Range(lte=5)
    assert by_key["metadata.tags"].match == models.MatchAny(any=["a", "b"])
    assert by_key["metadata.n"].range == models.Range(gte=2, lte=2)
    assert F.to_qdrant_filter([], models) is None


def test_missing_qdrant_client_raises_dependency_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("qdrant_client"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(DependencyError, match="mmrag\\[qdrant\\]"):
        QdrantStore(":memory:", "c", SPACES)
