"""Store URLs: which backend holds an index, and where.

::

    parse_store_url("lance", default_dir=Path(".mmrag/store"))     # the embedded default
    parse_store_url("lance:/data/idx/store", default_dir=...)        # LanceDB at a path
    parse_store_url("qdrant://db1:6333/photos", default_dir=...)     # a Qdrant server/cluster
    parse_store_url("qdrant+https://db1:6333/photos", default_dir=...)
    parse_store_url("qdrant+local:/tmp/q#photos", default_dir=...)   # Qdrant's local mode

Secrets never live in the URL: a Qdrant API key comes from Settings (``QDRANT_API_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError

__all__ = ["DEFAULT_COLLECTION", "StoreURL", "parse_store_url"]

#: The Qdrant collection when a URL names none (LanceDB keeps its own default table name).
DEFAULT_COLLECTION = "mmrag"
_FORMS = (
    "lance[:PATH], qdrant://HOST:PORT/COLLECTION, qdrant+https://HOST:PORT/COLLECTION, "
    "qdrant+local:PATH[#COLLECTION]"
)


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL. ``scheme`` is the registry name of the backend.

    ``location`` is a directory for ``lance`` and ``qdrant+local``, and an
    ``http(s)://host:port`` server address for ``qdrant``. ``collection`` is the
    Qdrant collection or LanceDB table; None means the backend's default.
    """

    scheme: str
    location: str
    collection: str | None = None

    def __str__(self) -> str:
        if self.scheme == "qdrant":
            return f"{self.location}/{self.collection or DEFAULT_COLLECTION}"
        return f"{self.scheme}:{self.location}" + (f"#{self.collection}" if self.collection else "")

    def to_url(self) -> str:
        """The URL again, in a form :func:`parse_store_url` reads back to this StoreURL."""
        if self.scheme != "qdrant":
            return str(self)
        parts = urlsplit(self.location)
        scheme = "qdrant+https" if parts.scheme == "https" else "qdrant"
        return f"{scheme}://{parts.netloc}/{self.collection or DEFAULT_COLLECTION}"

    def absolute(self) -> StoreURL:
        """The same store with a local directory made absolute (to record it for later runs)."""
        if self.scheme == "qdrant" or self.location == ":memory:":
            return self
        path = Path(self.location).expanduser().resolve()
        return StoreURL(self.scheme, str(path), self.collection)


def parse_store_url(url: str, *, default_dir: Path) -> StoreURL:
    """Parse ``url`` (see the module doc); ConfigError names the URL and the accepted forms."""
    text = url.strip()
    if text in ("", "lance"):
        return StoreURL("lance", str(default_dir))
    scheme, sep, rest = text.partition(":")
    if not sep:
        raise ConfigError(f"unknown store {url!r}; use one of: {_FORMS}")
    if scheme in ("lance", "qdrant+local"):
        location, _, collection = rest.partition("#")
        if not location:
            raise ConfigError(f"store URL {url!r} has no path; use one of: {_FORMS}")
        return StoreURL(scheme, location, collection or None)
    if scheme in ("qdrant", "qdrant+http", "qdrant+https"):
        return _qdrant_server(url, "https" if scheme == "qdrant+https" else "http")
    raise ConfigError(f"unknown store scheme {scheme!r} in {url!r}; use one of: {_FORMS}")


def _qdrant_server(url: str, transport: str) -> StoreURL:
    parts = urlsplit(url)
    if parts.username or parts.password:  # checked first: no message may echo a secret
        raise ConfigError("put no credentials in a store URL; set QDRANT_API_KEY instead")
    if not parts.hostname:
        raise ConfigError(f"store URL {url!r} has no host; use qdrant://HOST:PORT/COLLECTION")
    try:
        port = parts.port or 6333
    except ValueError:
        raise ConfigError(f"store URL {url!r} has a bad port") from None
    collection = parts.path.strip("/") or DEFAULT_COLLECTION
    if "/" in collection:
        raise ConfigError(f"store URL {url!r}: the path must be one collection name")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return StoreURL("qdrant", f"{transport}://{host}:{port}", collection)
