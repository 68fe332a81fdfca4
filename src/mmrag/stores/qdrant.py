"""The distributed store: a Qdrant collection with one named vector per space.

Points are keyed by a UUID derived from our item id (uuid5), and the item travels as
payload (the shared record of :mod:`~mmrag.stores.records`: our id included, metadata
under ``metadata``), so every filter key is pushed down to Qdrant. Qdrant has no BM25
here, so :meth:`QdrantStore.text_query` raises :class:`~mmrag.errors.StoreError`; callers
fuse the vector paths only. An item's ``context`` (what a full-text index would search
besides its text) is kept in the payload so the item round-trips.

Example::

    url = parse_store_url("qdrant://db1:6333/photos", default_dir=d)
    store = QdrantStore.from_url(url, {"clip": 512}, settings=settings)  # QDRANT_API_KEY
    store = QdrantStore.from_url(parse_store_url("qdrant+local:/tmp/q", default_dir=d), spaces)
    store = QdrantStore(":memory:", "test", {"clip": 512})      # local mode, tests
"""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import ConfigError, DependencyError, ModelMismatchError, StoreError
from ..types import Hit, Item, Where
from . import filters as F
from .base import MultiSpace, query_multivector, query_vector
from .qdrant_ops import PAYLOAD_INDEXES, RetryPolicy, with_retries
from .records import item_to_record, record_to_item
from .url import DEFAULT_COLLECTION, StoreURL

if TYPE_CHECKING:
    from typing import Self

    from ..config import Settings

__all__ = ["QdrantStore", "point_id"]

# Fixed namespace so every process maps an item id to the same point id.
_NAMESPACE = uuid.UUID("6f1c3c2e-3b53-5d5e-9a57-6d6d72616700")
_BATCH = 256


def point_id(item_id: str) -> str:
    """The Qdrant point id for one of our item ids (deterministic uuid5)."""
    return str(uuid.uuid5(_NAMESPACE, item_id))


def _import_qdrant() -> tuple[Any, Any]:
    try:
        from qdrant_client import QdrantClient, models
    except ImportError as e:
        raise DependencyError("qdrant-client", "qdrant", "The Qdrant store") from e
    return QdrantClient, models


def _client(url: StoreURL, settings: Settings | None) -> Any:
    """A client for a ``qdrant`` server or a ``qdrant+local`` directory (ConfigError if bad)."""
    client_cls, _ = _import_qdrant()
    if url.scheme == "qdrant+local":
        if url.location == ":memory:":
            return client_cls(location=":memory:")
        try:
            return client_cls(path=url.location)
        except Exception as e:  # e.g. the folder is locked by another client
            raise StoreError(f"cannot open Qdrant local mode at {url.location}: {e}") from e
    if url.scheme != "qdrant":
        raise ConfigError(f"QdrantStore cannot open a {url.scheme!r} store URL")
    parts = urlsplit(url.location)
    if parts.username or parts.password:  # checked first: no message may echo a secret
        raise ConfigError("put no credentials in a store URL; set QDRANT_API_KEY instead")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Not echoed: a malformed location may hide a secret that urlsplit did not find.
        raise ConfigError("a Qdrant server location must be http(s)://HOST:PORT")
    secret = settings.qdrant_api_key if settings is not None else None
    try:
        # The key goes to the client only: the store keeps no copy and names none in messages.
        return client_cls(url=url.location, api_key=secret.get_secret_value() if secret else None)
    except ValueError as e:
        raise ConfigError(f"bad Qdrant server address {url.location!r}: {e}") from None


class QdrantStore:
    """A :class:`~mmrag.stores.base.VectorStore` on a Qdrant collection with named vectors."""

    #: No BM25 here: the full-text retrieval path is skipped for this store.
    full_text = False
    #: Points per upsert request: a few hundred 512-d points is ~1 MB of JSON, well under a
    #: server's 32 MB request limit and small enough that a retried batch costs little.
    batch_size: int = _BATCH
    #: How writes are retried on transient errors (see :mod:`~mmrag.stores.qdrant_ops`).
    retry: RetryPolicy = RetryPolicy()
    #: How retries wait; tests replace it.
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(
        self,
        client_or_location: Any,
        collection: str,
        spaces: Mapping[str, int],
        *,
        overwrite: bool = False,
        location: str | None = None,
        multi_spaces: Mapping[str, MultiSpace] | None = None,
    ) -> None:
        """Use a ``QdrantClient``, or make one from ``":memory:"``, a URL or a local path.

        ``overwrite`` deletes an existing collection first (a deliberate re-embed);
        ``location`` says where a given client points, for messages.
        """
        client_cls, self._models = _import_qdrant()
        if not spaces:
            raise ConfigError("a store needs at least one vector space")
        self.spaces: dict[str, int] = dict(spaces)
        #: Multi-vector (MaxSim) named vectors besides ``spaces``; see set_multivectors.
        self.multi_spaces: dict[str, MultiSpace] = dict(multi_spaces or {})
        self.collection = collection
        if isinstance(client_or_location, (str, Path)):
            loc = self.location = str(client_or_location)
            if loc == ":memory:":
                self._client = client_cls(location=":memory:")
            elif loc.startswith(("http://", "https://")):
                self._client = client_cls(url=loc)
            else:
                self._client = client_cls(path=loc)
        else:
            self._client = client_or_location
            self.location = location or type(client_or_location).__name__
        try:
            if overwrite and self._client.collection_exists(collection):
                self._client.delete_collection(collection)
            if self._client.collection_exists(collection):
                self._check_spaces()
            else:
                self._create()
            self._ensure_payload_indexes()
        except ModelMismatchError:
            raise
        except Exception as e:
            raise StoreError(
                f"cannot open Qdrant collection {collection!r} at {self.location}: {e}"
            ) from e

    @classmethod
    def from_url(
        cls,
        url: StoreURL,
        spaces: Mapping[str, int],
        *,
        overwrite: bool = False,
        settings: Settings | None = None,
        multi_spaces: Mapping[str, MultiSpace] | None = None,
    ) -> Self:
        """Open collection ``url.collection`` (default ``mmrag``) on a server or in local mode.

        ``qdrant``: ``url.location`` is ``http(s)://HOST:PORT``, the API key comes from
        ``settings.qdrant_api_key``; ``qdrant+local``: ``url.location`` is a directory.
        """
        client = _client(url, settings)
        collection = url.collection or DEFAULT_COLLECTION
        try:
            return cls(
                client,
                collection,
                spaces,
                overwrite=overwrite,
                location=url.location,
                multi_spaces=multi_spaces,
            )
        except BaseException:
            client.close()  # local mode locks its folder until the client is closed
            raise

    def __repr__(self) -> str:
        return f"QdrantStore({self.location!r}, {self.collection!r}, spaces={self.spaces})"

    def close(self) -> None:
        """Release the client (local mode unlocks its folder); the store is unusable after."""
        self._client.close()

    def _create(self) -> None:
        m = self._models
        config = {
            s: m.VectorParams(size=d, distance=m.Distance.COSINE) for s, d in self.spaces.items()
        }
        config.update({s: self._multi_params(multi) for s, multi in self.multi_spaces.items()})
        self._client.create_collection(self.collection, vectors_config=config)

    def _check_spaces(self) -> None:
        params = self._client.get_collection(self.collection).config.params.vectors
        have = {name: p.size for name, p in params.items()} if isinstance(params, dict) else {}
        multi = {
            name: p.size
            for name, p in (params.items() if isinstance(params, dict) else [])
            if p.multivector_config is not None
        }
        want_multi = {name: m.dim for name, m in self.multi_spaces.items()}
        have = {name: size for name, size in have.items() if name not in multi}
        if have != self.spaces or multi != want_multi:
            raise ModelMismatchError(
                f"Qdrant collection {self.collection!r} has vector spaces {have} and "
                f"multi-vector spaces {multi}, not {self.spaces} and {want_multi}: re-embed "
                "deliberately (drop the store) or use the original models"
            )

    def _ensure_payload_indexes(self) -> None:
        """Create the payload indexes of :data:`PAYLOAD_INDEXES` that the collection lacks.

        Run on every open, so a collection made by an older mmrag gains them too; creating
        one that exists is a no-op on the server.
        """
        have = self._client.get_collection(self.collection).payload_schema or {}
        schema = self._models.PayloadSchemaType
        with warnings.catch_warnings():
            # Local mode keeps no payload indexes and says so once per process; the calls
            # are still made so that local mode runs the server's code path.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for path, kind in PAYLOAD_INDEXES.items():
                if path not in have:
                    self._client.create_payload_index(
                        self.collection, path, field_schema=schema(kind), wait=True
                    )

    # --- multi-vectors (late interaction) ---------------------------------------------------

    def _multi_params(self, multi: MultiSpace) -> Any:
        """A MaxSim named vector; with a first stage, Qdrant's own int8/binary quantisation."""
        m = self._models
        quantization = None
        if multi.first_stage == "int8":
            quantization = m.ScalarQuantization(
                scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8, always_ram=True)
            )
        elif multi.first_stage == "binary":
            quantization = m.BinaryQuantization(binary=m.BinaryQuantizationConfig(always_ram=True))
        return m.VectorParams(
            size=multi.dim,
            distance=m.Distance.COSINE,
            multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM),
            # No HNSW graph over single tokens: MaxSim ranks whole points, and a graph per
            # token would cost more memory than the vectors (Qdrant's advice for rerankers).
            hnsw_config=m.HnswConfigDiff(m=0),
            quantization_config=quantization,
        )

    def _multi(self, space: str) -> MultiSpace:
        if space not in self.multi_spaces:
            raise ConfigError(
                f"unknown multi-vector space {space!r}; store has {sorted(self.multi_spaces)}"
            )
        return self.multi_spaces[space]

    def set_multivectors(self, space: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Give existing items a float32 ``(tokens, dim)`` multi-vector; unknown ids are ignored."""
        multi = self._multi(space)
        for item_id, v in vectors.items():
            a = np.asarray(v, dtype=np.float32)
            if a.ndim != 2 or a.shape[1] != multi.dim or len(a) == 0 or not np.isfinite(a).all():
                raise ConfigError(
                    f"multi-vector of {item_id!r} in {space!r} has shape {a.shape} "
                    f"(or non-finite values); expected (tokens>0, {multi.dim})"
                )
        m = self._models
        try:
            known = {p.payload["id"] for p in self._client.retrieve(
                self.collection, ids=[point_id(i) for i in vectors], with_payload=["id"]
            )}  # fmt: skip
            points = [
                m.PointVectors(id=point_id(i), vector={space: np.asarray(v, np.float32).tolist()})
                for i, v in vectors.items()
                if i in known
            ]
            for lo in range(0, len(points), self.batch_size):
                batch = points[lo : lo + self.batch_size]
                write = partial(self._client.update_vectors, self.collection, batch, wait=True)
                with_retries(write, "multi-vector update", self.retry, self.sleep)
        except Exception as e:
            raise StoreError(f"Qdrant multi-vector update failed: {e}") from e

    def get_multivectors(self, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored multi-vectors by id; ids without one are left out."""
        self._multi(space)
        return self._vectors_by_id(space, ids)

    def multi_query(
        self, space: str, vectors: np.ndarray, k: int, where: Where | None = None
    ) -> list[Hit]:
        """The ``k`` items with the highest MaxSim in ``space`` (Qdrant's MAX_SIM comparator).

        With a first stage, Qdrant searches the quantised vectors and rescores
        ``rerank`` times more candidates on the originals (a server does; local mode is exact).
        """
        multi = self._multi(space)
        q = query_multivector(self.multi_spaces, space, vectors)
        flt = self._filter(where)
        if k <= 0:
            return []
        m = self._models
        params = None
        if multi.first_stage != "none":
            params = m.SearchParams(
                quantization=m.QuantizationSearchParams(
                    rescore=True, oversampling=float(multi.rerank)
                )
            )
        try:
            res = self._client.query_points(
                self.collection,
                query=q.tolist(),
                using=space,
                limit=k,
                query_filter=flt,
                search_params=params,
                with_payload=True,
            )
        except Exception as e:
            raise StoreError(f"Qdrant multi-vector query on {space!r} failed: {e}") from e
        return [Hit(record_to_item(p.payload), float(p.score)) for p in res.points]

    def _filter(self, where: Where | None) -> Any:
        return F.to_qdrant_filter(F.normalize(where), self._models)

    # --- writing ---------------------------------------------------------------------------

    def upsert(self, items: Sequence[Item], vectors: Mapping[str, np.ndarray]) -> None:
        """Insert or replace items by id (whole points: a space left out is cleared)."""
        unknown = set(vectors) - set(self.spaces)
        if unknown:
            raise ConfigError(f"unknown vector spaces {sorted(unknown)}; store has {self.spaces}")
        arrays = {}
        for space, arr in vectors.items():
            a = np.asarray(arr, dtype=np.float32)
            if a.shape != (len(items), self.spaces[space]):
                want = (len(items), self.spaces[space])
                raise ConfigError(f"vectors[{space!r}] has shape {a.shape}, expected {want}")
            arrays[space] = a
        points = []
        for i, item in enumerate(items):
            vec = {s: a[i].tolist() for s, a in arrays.items() if not np.isnan(a[i]).any()}
            points.append(
                self._models.PointStruct(
                    id=point_id(item.id), vector=vec, payload=item_to_record(item)
                )
            )
        done = 0
        try:
            for lo in range(0, len(points), self.batch_size):
                batch = points[lo : lo + self.batch_size]
                write = partial(self._client.upsert, self.collection, batch, wait=True)
                with_retries(write, "upsert", self.retry, self.sleep)
                done += len(batch)
        except Exception as e:
            raise StoreError(
                f"Qdrant upsert of {len(items)} items failed after {done} were written: {e}"
            ) from e

    def delete(self, ids: Sequence[str]) -> None:
        """Remove items by id; unknown ids are ignored."""
        if not ids:
            return
        selector = self._models.PointIdsList(points=[point_id(i) for i in ids])
        try:
            with_retries(
                lambda: self._client.delete(self.collection, points_selector=selector, wait=True),
                "delete",
                self.retry,
                self.sleep,
            )
        except Exception as e:
            raise StoreError(f"Qdrant delete failed: {e}") from e

    def drop(self) -> None:
        """Delete the collection and start an empty one with the same spaces."""
        try:
            self._client.delete_collection(self.collection)
            self._create()
            self._ensure_payload_indexes()
        except Exception as e:
            raise StoreError(f"dropping Qdrant collection {self.collection!r} failed: {e}") from e

    # --- reading ---------------------------------------------------------------------------

    def query(
        self, space: str, vector: np.ndarray, k: int, where: Where | None = None
    ) -> list[Hit]:
        """The ``k`` nearest items in ``space`` by cosine similarity."""
        v = query_vector(self.spaces, space, vector)
        flt = self._filter(where)
        if k <= 0:
            return []
        try:
            res = self._client.query_points(
                self.collection,
                query=v.tolist(),
                using=space,
                limit=k,
                query_filter=flt,
                with_payload=True,
            )
        except Exception as e:
            raise StoreError(f"Qdrant query on {space!r} failed: {e}") from e
        return [Hit(record_to_item(p.payload), float(p.score)) for p in res.points]

    def text_query(self, text: str, k: int, where: Where | None = None) -> list[Hit]:
        """Not supported: Qdrant offers no BM25 ranking here."""
        raise StoreError("the Qdrant store has no full-text (BM25) search; use LanceStore for it")

    def get(self, ids: Sequence[str]) -> list[Item]:
        """Items by id, in the order asked; unknown ids are left out."""
        if not ids:
            return []
        try:
            pts = self._client.retrieve(
                self.collection, ids=list({point_id(i) for i in ids}), with_payload=True
            )
        except Exception as e:
            raise StoreError(f"Qdrant retrieve failed: {e}") from e
        found = {p.payload["id"]: record_to_item(p.payload) for p in pts}
        return [found[i] for i in ids if i in found]

    def get_vectors(self, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id for one space; ids without a vector are left out."""
        if space not in self.spaces:
            raise ConfigError(f"unknown vector space {space!r}; store has {sorted(self.spaces)}")
        return self._vectors_by_id(space, ids)

    def _vectors_by_id(self, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """One named vector (single or multi) of each id that has one, as float32 arrays."""
        if not ids:
            return {}
        try:
            pts = self._client.retrieve(
                self.collection,
                ids=list({point_id(i) for i in ids}),
                with_payload=["id"],
                with_vectors=[space],
            )
        except Exception as e:
            raise StoreError(f"Qdrant retrieve failed: {e}") from e
        return {
            p.payload["id"]: np.asarray(p.vector[space], dtype=np.float32)
            for p in pts
            if isinstance(p.vector, dict) and p.vector.get(space) is not None
        }

    def find(self, where: Where, limit: int | None = None) -> list[Item]:
        """Items matching a filter, in no particular order."""
        flt = self._filter(where)
        out: list[Item] = []
        offset = None
        try:
            while limit is None or len(out) < limit:
                page = _BATCH if limit is None else min(_BATCH, limit - len(out))
                pts, offset = self._client.scroll(
                    self.collection, scroll_filter=flt, limit=page, offset=offset
                )
                out.extend(record_to_item(p.payload) for p in pts)
                if offset is None:
                    break
        except Exception as e:
            raise StoreError(f"Qdrant scroll failed: {e}") from e
        return out

    def count(self, where: Where | None = None) -> int:
        """How many items (matching the filter)."""
        flt = self._filter(where)
        try:
            return int(self._client.count(self.collection, count_filter=flt, exact=True).count)
        except Exception as e:
            raise StoreError(f"Qdrant count failed: {e}") from e

    def optimize(self) -> None:
        """Nothing to do: Qdrant optimises segments in the background."""
