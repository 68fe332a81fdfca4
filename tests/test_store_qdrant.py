"""QdrantStore in local mode: the store contract plus Qdrant-specific behaviour."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from store_contract import SPACES, StoreContract, unit

pytest.importorskip("qdrant_client")

from qdrant_client import models

from mmrag import registry
from mmrag.config import Settings
from mmrag.errors import ConfigError, DependencyError, ModelMismatchError, StoreError
from mmrag.stores import filters as F
from mmrag.stores.qdrant import QdrantStore, point_id
from mmrag.stores.url import StoreURL, parse_store_url
from mmrag.types import Item, Range

pytestmark = [
    pytest.mark.integration,
    # qdrant-client checks a server's version from a thread and warns when none answers.
    pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning"),
]

KEY = "s3cret-qdrant-key"


class TestQdrantContract(StoreContract):
    """QdrantStore, opened from a ``qdrant+local:PATH`` store URL, passes the shared contract."""

    stores: dict[Path, QdrantStore]

    def make_store(self, tmp_path: Path, spaces: Mapping[str, int]) -> QdrantStore:
        if not hasattr(self, "stores"):
            self.stores = {}
        old = self.stores.pop(tmp_path, None)
        if old is not None:
            # Local mode locks its folder: reopening means a fresh client, as after a restart.
            old.close()
        url = parse_store_url(f"qdrant+local:{tmp_path / 'qdrant'}#items", default_dir=tmp_path)
        store = self.stores[tmp_path] = QdrantStore.from_url(url, spaces)
        return store


class FakeQdrant(ThreadingHTTPServer):
    """A loopback stand-in for a Qdrant server: records headers, knows no collections."""

    def __init__(self, status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _QdrantHandler)
        self.status = status
        self.headers_seen: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        """The server's ``http://127.0.0.1:PORT`` address."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _QdrantHandler(BaseHTTPRequestHandler):
    server: FakeQdrant

    def _reply(self) -> None:
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.command == "PUT":
            self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/":
            body: Any = {"title": "qdrant", "version": "1.20.0"}
        elif self.server.status != 200:
            body = {"status": {"error": "forbidden"}, "time": 0.0}
        elif self.path.split("?")[0].endswith("/exists"):
            body = {"result": {"exists": False}, "status": "ok", "time": 0.0}
        else:
            body = {"result": True, "status": "ok", "time": 0.0}
        data = json.dumps(body).encode()
        self.send_response(200 if self.path == "/" else self.server.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = _reply

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_qdrant(request: pytest.FixtureRequest) -> Iterator[FakeQdrant]:
    """A running :class:`FakeQdrant` (``indirect`` param: the status it answers with)."""
    server = FakeQdrant(getattr(request, "param", 200))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def open_server(url: str, **kwargs: Any) -> QdrantStore:
    """``from_url`` on a ``qdrant://`` URL with the API key set, quiet about plain http."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Api key is used with an insecure connection"
        return QdrantStore.from_url(
            parse_store_url(url, default_dir=Path("unused")),
            SPACES,
            settings=Settings(qdrant_api_key=KEY),
            **kwargs,
        )


def test_from_url_sends_the_api_key_to_the_server_but_shows_it_nowhere(
    fake_qdrant: FakeQdrant,
) -> None:
    url = fake_qdrant.url.replace("http://", "qdrant://") + "/photos"
    store = open_server(url)
    assert store.collection == "photos"
    assert any(h.get("api-key") == KEY for h in fake_qdrant.headers_seen)
    for text in (repr(store), str(store), str(vars(store))):
        assert KEY not in text
    assert fake_qdrant.url in repr(store)
    store.close()


@pytest.mark.parametrize("fake_qdrant", [403], indirect=True)
def test_a_refused_server_is_a_store_error_without_the_key(fake_qdrant: FakeQdrant) -> None:
    with pytest.raises(StoreError) as err:
        open_server(fake_qdrant.url.replace("http://", "qdrant://"))
    assert "'mmrag'" in str(err.value)  # the default collection
    assert KEY not in str(err.value) and KEY not in repr(err.value)
    assert KEY not in str(err.value.__cause__)


def test_an_unreachable_server_is_a_store_error_without_the_key() -> None:
    with FakeQdrant() as closed:  # bound, never served: nothing answers on the port
        url = closed.url.replace("http://", "qdrant://")
        closed.server_close()
        with pytest.raises(StoreError, match="cannot open Qdrant collection") as err:
            open_server(url)
    assert KEY not in str(err.value) and KEY not in str(err.value.__cause__)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        (StoreURL("lance", "/tmp/x"), "lance"),
        (StoreURL("qdrant", "ftp://127.0.0.1:6333", "c"), "http"),
        (StoreURL("qdrant", "127.0.0.1:6333", "c"), "http"),
        (StoreURL("qdrant", f"http://user:{KEY}@127.0.0.1:6333", "c"), "credentials"),
        (StoreURL("qdrant", f"user:{KEY}@127.0.0.1:6333", "c"), "http"),
        (StoreURL("redis", f"http://user:{KEY}@127.0.0.1:6333", "c"), "redis"),
    ],
)
def test_from_url_rejects_bad_urls_without_echoing_secrets(url: StoreURL, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        QdrantStore.from_url(url, SPACES, settings=Settings(qdrant_api_key=KEY))
    assert KEY not in str(err.value)


def test_from_url_local_mode_defaults_the_collection_and_unlocks_on_failure(
    tmp_path: Path,
) -> None:
    url = StoreURL("qdrant+local", str(tmp_path))
    store = QdrantStore.from_url(url, SPACES)
    assert store.collection == "mmrag"
    assert repr(store) == f"QdrantStore({str(tmp_path)!r}, 'mmrag', spaces={SPACES})"
    clip = unit(np.random.default_rng(0), 1, 8)
    store.upsert([Item(id="a", kind="image", source="a")], {"clip": clip})
    store.close()
    with pytest.raises(ModelMismatchError):
        QdrantStore.from_url(url, {"clip": 3})
    again = QdrantStore.from_url(url, SPACES)  # the failed open released the folder's lock
    assert again.count() == 1
    again.close()
    fresh = QdrantStore.from_url(url, {"clip": 3}, overwrite=True)
    assert fresh.count() == 0
    fresh.close()


def test_from_url_local_mode_in_memory() -> None:
    store = QdrantStore.from_url(StoreURL("qdrant+local", ":memory:", "c"), SPACES)
    assert store.count() == 0


def test_the_registry_builds_both_qdrant_schemes_through_from_url(tmp_path: Path) -> None:
    url = parse_store_url(f"qdrant+local:{tmp_path}#c", default_dir=tmp_path)
    store = registry.stores.create(url.scheme, url, SPACES, overwrite=False, settings=None)
    assert isinstance(store, QdrantStore) and store.collection == "c"
    assert registry.stores.load("qdrant") == QdrantStore.from_url


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
