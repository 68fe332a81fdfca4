"""The multi-vector capability on both backends: LanceDB multivector columns, Qdrant MAX_SIM."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmrag.stores.lance import LanceStore
from mmrag.stores.url import parse_store_url
from store_contract import MultiVectorContract

pytestmark = [
    pytest.mark.integration,
    # local mode is exact and says that search_params (the quantised first stage) do nothing
    pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning"),
]


class TestLanceMultiVector(MultiVectorContract):
    """LanceStore with a ``mv_pages`` column (and codes for the first stage)."""

    def make_multi_store(
        self, tmp_path: Path, spaces: Mapping[str, int], multi_spaces: Mapping[str, Any]
    ) -> LanceStore:
        url = parse_store_url(f"lance:{tmp_path / 'lance'}", default_dir=tmp_path)
        return LanceStore.from_url(url, spaces, multi_spaces=multi_spaces)


class TestQdrantMultiVector(MultiVectorContract):
    """QdrantStore (local mode) with a MAX_SIM named vector (and Qdrant's quantisation)."""

    stores: dict[Path, Any]

    def make_multi_store(
        self, tmp_path: Path, spaces: Mapping[str, int], multi_spaces: Mapping[str, Any]
    ) -> Any:
        pytest.importorskip("qdrant_client")
        from mmrag.stores.qdrant import QdrantStore

        if not hasattr(self, "stores"):
            self.stores = {}
        old = self.stores.pop(tmp_path, None)
        if old is not None:
            old.close()  # local mode locks its folder: reopening means a fresh client
        url = parse_store_url(f"qdrant+local:{tmp_path / 'qdrant'}#items", default_dir=tmp_path)
        store = QdrantStore.from_url(url, spaces, multi_spaces=multi_spaces)
        self.stores[tmp_path] = store
        return store


def test_the_lance_two_stage_path_keeps_codes_beside_the_vectors(tmp_path: Path) -> None:
    from mmrag.stores.base import MultiSpace
    from mmrag.types import Item

    url = parse_store_url(f"lance:{tmp_path / 'l'}", default_dir=tmp_path)
    store = LanceStore.from_url(
        url, {"clip": 4}, multi_spaces={"pages": MultiSpace(16, first_stage="binary")}
    )
    assert {"mv_pages", "mvq_pages"} <= set(store._table.schema.names)
    store.upsert([Item(id="a", kind="page", source="x.pdf")], {})
    store.set_multivectors("pages", {"a": np.eye(16, dtype=np.float32)[:3]})
    codes = store._table.search().select(["mvq_pages"]).to_arrow().column(0).to_pylist()[0]
    assert len(codes) == 3 and all(len(c) == 2 for c in codes)  # 16 bits packed in 2 bytes
