"""Store URLs: every accepted form, and errors that name the URL but never a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.errors import ConfigError
from mmrag.stores.url import DEFAULT_COLLECTION, StoreURL, parse_store_url

DEFAULT = Path("/idx/store")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", StoreURL("lance", str(DEFAULT))),
        ("lance", StoreURL("lance", str(DEFAULT))),
        ("  lance ", StoreURL("lance", str(DEFAULT))),
        ("lance:/data/store", StoreURL("lance", "/data/store")),
        ("lance:rel/store#photos", StoreURL("lance", "rel/store", "photos")),
        ("qdrant://db1:6333/photos", StoreURL("qdrant", "http://db1:6333", "photos")),
        ("qdrant://db1", StoreURL("qdrant", "http://db1:6333", DEFAULT_COLLECTION)),
        ("qdrant+http://db1:7000/", StoreURL("qdrant", "http://db1:7000", DEFAULT_COLLECTION)),
        ("qdrant+https://db1:6333/p", StoreURL("qdrant", "https://db1:6333", "p")),
        ("qdrant://[::1]:6333/p", StoreURL("qdrant", "http://[::1]:6333", "p")),
        ("qdrant+local:/tmp/q", StoreURL("qdrant+local", "/tmp/q")),
        ("qdrant+local:/tmp/q#photos", StoreURL("qdrant+local", "/tmp/q", "photos")),
    ],
)
def test_store_urls_parse_to_a_backend_location_and_collection(
    url: str, expected: StoreURL
) -> None:
    assert parse_store_url(url, default_dir=DEFAULT) == expected


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mongodb", "unknown store"),
        ("redis://host", "unknown store scheme 'redis'"),
        ("lance:", "no path"),
        ("qdrant+local:#c", "no path"),
        ("qdrant:///c", "no host"),
        ("qdrant://db1:99999/c", "bad port"),
        ("qdrant://db1:6333/a/b", "one collection"),
    ],
)
def test_bad_store_urls_are_config_errors_naming_the_forms(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_store_url(url, default_dir=DEFAULT)


@pytest.mark.parametrize("url", ["qdrant://me:hunter2@db1/c", "qdrant+https://:hunter2@db1/c"])
def test_credentials_in_a_url_are_refused_without_being_echoed(url: str) -> None:
    with pytest.raises(ConfigError, match="QDRANT_API_KEY") as err:
        parse_store_url(url, default_dir=DEFAULT)
    assert "hunter2" not in str(err.value)


def test_a_path_store_url_prints_back_as_itself() -> None:
    for text in ("lance:/data/s#t", "qdrant+local:/tmp/q"):
        assert str(parse_store_url(text, default_dir=DEFAULT)) == text
