"""QdrantStore in local mode: the store contract plus Qdrant-specific behaviour."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from store_contract import SPACES, StoreContract, unit

pytest.importorskip("qdrant_client")

from qdrant_client import models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException

from mmrag import registry
from mmrag.config import Settings
from mmrag.errors import ConfigError, DependencyError, ModelMismatchError, StoreError
from mmrag.stores import filters as F
from mmrag.stores.qdrant import QdrantStore, point_id
from mmrag.stores.qdrant_ops import PAYLOAD_INDEXES, RetryPolicy
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
        #: (method, path without query, JSON body or None) of every request.
        self.requests: list[tuple[str, str, Any]] = []

    @property
    def url(self) -> str:
        """The server's ``http://127.0.0.1:PORT`` address."""
        return f"http://127.0.0.1:{self.server_address[1]}"


#: A new collection's info as a Qdrant server reports it (no payload indexes yet).
_EMPTY_COLLECTION = {
    "status": "green",
    "optimizer_status": "ok",
    "segments_count": 0,
    "config": {
        "params": {"vectors": {"clip": {"size": 8, "distance": "Cosine"}}},
        "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
        "optimizer_config": {
            "deleted_threshold": 0.2,
            "vacuum_min_vector_number": 1000,
            "default_segment_number": 0,
            "flush_interval_sec": 5,
        },
    },
    "payload_schema": {},
}


class _QdrantHandler(BaseHTTPRequestHandler):
    server: FakeQdrant

    def _reply(self) -> None:
        self.server.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        sent = None
        if self.command == "PUT":
            sent = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        path = self.path.split("?")[0]
        self.server.requests.append((self.command, path, sent))
        if self.path == "/":
            body: Any = {"title": "qdrant", "version": "1.20.0"}
        elif self.server.status != 200:
            body = {"status": {"error": "forbidden"}, "time": 0.0}
        elif path.endswith("/exists"):
            body = {"result": {"exists": False}, "status": "ok", "time": 0.0}
        elif path.endswith("/index"):
            body = {"result": {"operation_id": 1, "status": "completed"}, "status": "ok"}
        elif self.command == "GET" and path.startswith("/collections/"):
            body = {"result": _EMPTY_COLLECTION, "status": "ok", "time": 0.0}
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


# --- payload indexes and retried writes ------------------------------------------------------


def test_a_new_collection_gets_a_payload_index_per_filterable_field(
    fake_qdrant: FakeQdrant,
) -> None:
    store = open_server(fake_qdrant.url.replace("http://", "qdrant://") + "/photos")
    made = {
        body["field_name"]: body["field_schema"]
        for method, path, body in fake_qdrant.requests
        if method == "PUT" and path == "/collections/photos/index"
    }
    store.close()
    assert made == PAYLOAD_INDEXES
    assert made["kind"] == made["metadata.tags"] == made["metadata.category"] == "keyword"
    assert made["page"] == "integer" and made["metadata.price"] == "float"
    assert "text" not in made  # whole chunks: filterable, but not worth an index
    # Every key our filters translate to a typed payload path has its index.
    for key, kind in F.KNOWN_TYPES.items():
        value = 1 if kind in ("int", "float") else "x"
        cond = F.to_qdrant_filter(F.normalize({key: value}), models)
        assert cond.must[0].key in made or key == "text"


class FlakyClient:
    """A real local-mode client whose upserts fail ``fails`` times first with ``error``."""

    def __init__(self, error: Exception, fails: int) -> None:
        from qdrant_client import QdrantClient

        self._real = QdrantClient(location=":memory:")
        self.error, self.fails, self.upserts = error, fails, 0

    def upsert(self, *args: Any, **kwargs: Any) -> Any:
        self.upserts += 1
        if self.upserts <= self.fails:
            raise self.error
        return self._real.upsert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _status(code: int) -> Exception:
    from qdrant_client.http.exceptions import UnexpectedResponse

    return UnexpectedResponse(code, "x", b'{"status": {"error": "busy"}}', httpx.Headers())


def flaky_store(error: Exception, fails: int, **policy: Any) -> tuple[QdrantStore, list[float]]:
    """A store on a :class:`FlakyClient` that records its backoff pauses instead of sleeping."""
    pauses: list[float] = []
    store = QdrantStore(FlakyClient(error, fails), "c", SPACES)
    store.retry = RetryPolicy(**policy)
    store.sleep = pauses.append  # type: ignore[method-assign]
    return store, pauses


def some_items(n: int) -> tuple[list[Item], dict[str, np.ndarray]]:
    """``n`` image items with clip vectors."""
    items = [Item(id=f"i{j}", kind="image", source=f"{j}.png") for j in range(n)]
    return items, {"clip": unit(np.random.default_rng(n), n, 8)}


@pytest.mark.parametrize(
    "error",
    [
        _status(503),
        _status(429),
        _status(502),
        ResponseHandlingException(httpx.ConnectError("connection refused")),
        ResponseHandlingException(httpx.ReadTimeout("timed out")),
        ResourceExhaustedResponse("slow down", "2"),
    ],
)
def test_an_upsert_that_fails_transiently_is_retried_with_growing_pauses(error: Exception) -> None:
    store, pauses = flaky_store(error, 2, base_delay=1.0, max_delay=30.0)
    items, vectors = some_items(5)
    store.upsert(items, vectors)
    assert store.count() == 5 and store.get(["i3"]) == [items[3]]
    assert store._client.upserts == 3 and len(pauses) == 2
    if isinstance(error, ResourceExhaustedResponse):
        assert pauses == [2.0, 2.0]  # the server's Retry-After
    else:
        assert 0.5 <= pauses[0] <= 1.0 and 1.0 <= pauses[1] <= 2.0  # jittered doubling


@pytest.mark.parametrize(
    "error", [_status(400), _status(404), ResponseHandlingException(ValueError("bad json"))]
)
def test_an_upsert_that_fails_for_good_is_not_retried(error: Exception) -> None:
    store, pauses = flaky_store(error, 1)
    with pytest.raises(StoreError, match="upsert of 5 items failed after 0 were written"):
        store.upsert(*some_items(5))
    assert store._client.upserts == 1 and pauses == []


def test_an_upsert_gives_up_after_the_last_try() -> None:
    store, pauses = flaky_store(_status(503), 99, attempts=3, base_delay=0.01)
    with pytest.raises(StoreError, match="503"):
        store.upsert(*some_items(2))
    assert store._client.upserts == 3 and len(pauses) == 2
    assert store.count() == 0


def test_upserts_go_in_batches_and_a_retry_resends_only_the_failed_batch() -> None:
    store, pauses = flaky_store(_status(503), 0)
    store.batch_size = 3
    items, vectors = some_items(8)
    client = store._client
    real_upsert = client.upsert
    sizes: list[int] = []

    def counting(collection: str, points: list[Any], **kwargs: Any) -> Any:
        sizes.append(len(points))
        if len(sizes) == 2:  # the second batch fails once
            raise _status(503)
        return real_upsert(collection, points, **kwargs)

    client.upsert = counting
    store.upsert(items, vectors)
    assert sizes == [3, 3, 3, 2] and len(pauses) == 1
    assert store.count() == 8
    assert store.get_vectors("clip", ["i7"])["i7"] == pytest.approx(vectors["clip"][7], abs=1e-6)


def test_a_delete_is_retried_too() -> None:
    store, pauses = flaky_store(_status(503), 0)
    items, vectors = some_items(3)
    store.upsert(items, vectors)
    client = store._client
    real_delete, calls = client._real.delete, []

    def flaky_delete(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ResponseHandlingException(httpx.RemoteProtocolError("reset"))
        return real_delete(*args, **kwargs)

    client.delete = flaky_delete
    store.delete(["i0"])
    assert store.count() == 2 and len(calls) == 2 and len(pauses) == 1


def test_the_retry_policy_caps_its_pauses() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
    assert all(2.0 <= policy.delay(5) <= 4.0 for _ in range(20))
    assert policy.delay(1, retry_after=100) == 4.0
