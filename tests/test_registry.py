"""One registry seam: every name loads, specs choose backends, tests plug their own in."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import mmrag
from mmrag import registry
from mmrag.config import Settings
from mmrag.errors import ConfigError, DependencyError
from mmrag.registry import Registry

REGISTRIES = {name: value for name, value in vars(registry).items() if isinstance(value, Registry)}
ENTRIES = [(role, name) for role, reg in REGISTRIES.items() for name in reg.names()]


def test_every_role_has_a_registry() -> None:
    assert set(REGISTRIES) == {
        "stores",
        "image_text_encoders",
        "text_encoders",
        "ocr_engines",
        "ingesters",
        "answerers",
        "rerankers",
        "page_encoders",
    }


@pytest.mark.parametrize(("role", "name"), ENTRIES, ids=[f"{r}:{n}" for r, n in ENTRIES])
def test_every_registered_name_loads_or_names_its_missing_extra(role: str, name: str) -> None:
    try:
        factory = REGISTRIES[role].load(name)
    except DependencyError as exc:
        assert f"mmrag[{exc.extra}]" in str(exc)
        return
    assert callable(factory)


def test_an_unknown_name_is_a_config_error_that_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="lance"):
        registry.stores.load("nosuch")


def test_a_missing_module_with_an_extra_is_a_dependency_error() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("w", "mmrag_no_such_module:Widget", extra="widgets")
    with pytest.raises(DependencyError, match=r"mmrag\[widgets\]"):
        reg.load("w")


def test_a_spec_names_its_backend_only_by_a_registered_prefix() -> None:
    text = registry.text_encoders
    assert text.split("openai:text-embedding-3-small") == ("openai", "text-embedding-3-small")
    assert text.split("sentence-transformers/all-MiniLM-L6-v2") == (
        "sentence-transformers",
        "sentence-transformers/all-MiniLM-L6-v2",
    )
    assert text.split(r"C:\models\minilm") == ("sentence-transformers", r"C:\models\minilm")
    # Records stay comparable: the default backend is left out, others are kept.
    assert text.canonical("sentence-transformers:all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert text.canonical("openai:text-embedding-3-small") == "openai:text-embedding-3-small"
    with pytest.raises(ConfigError):
        registry.stores.split("nosuch:thing")  # no default store backend


def test_unregister_removes_a_name() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("w", dict, extra="x")
    reg.unregister("w")
    reg.unregister("never-there")
    assert reg.names() == [] and "w" not in reg


# -- store URLs from settings ----------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "url"),
    [
        ({}, "lance"),
        ({"store": "qdrant://db:6333/photos"}, "qdrant://db:6333/photos"),
        ({"store": "qdrant", "qdrant_url": "http://db:6333"}, "qdrant://db:6333/mmrag"),
        (
            {"store": "qdrant", "qdrant_url": "https://db.example:6333", "qdrant_collection": "p"},
            "qdrant+https://db.example:6333/p",
        ),
        ({"store": "qdrant", "qdrant_url": "/data/q"}, "qdrant+local:/data/q#mmrag"),
    ],
)
def test_the_older_qdrant_settings_become_a_store_url(settings: dict[str, str], url: str) -> None:
    assert Settings(**settings).store_url() == url  # type: ignore[arg-type]


def test_the_older_qdrant_setting_needs_its_url() -> None:
    with pytest.raises(ConfigError, match="QDRANT_URL"):
        Settings(store="qdrant").store_url()
    with pytest.raises(ConfigError, match="without a path"):
        Settings(store="qdrant", qdrant_url="http://db:6333/x").store_url()


# -- a test backend plugged in through the registry --------------------------------


class HashEncoder:
    """A text encoder without a model: a deterministic vector per word."""

    dim = 32

    def __init__(self, model: str, settings: Settings) -> None:
        self.model_id = f"hash:{model}"

    @classmethod
    def from_settings(cls, model: str, settings: Settings) -> HashEncoder:
        return cls(model, settings)

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, hashlib.sha256(word.encode()).digest()[0] % self.dim] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


@pytest.fixture
def hash_backend() -> Iterator[None]:
    registry.text_encoders.register("hash", HashEncoder.from_settings)
    yield
    registry.text_encoders.unregister("hash")


@pytest.mark.integration
def test_a_registered_backend_is_chosen_by_its_spec_and_recorded(
    tmp_path: Path, corpus: Path, hash_backend: None
) -> None:
    opts = {"model": "none", "ocr": False}
    with mmrag.open(tmp_path / "idx", text_model="hash:words", **opts) as index:
        assert isinstance(index.text, HashEncoder)
        index.add(corpus)
        assert index.search("yellow circle", k=1)[0].item.source.endswith("yellow.png")
    recorded = json.loads((tmp_path / "idx" / "mmrag.json").read_text())
    assert recorded["text_model"] == "hash:words" and recorded["clip_model"] is None
    with pytest.raises(mmrag.ModelMismatchError):
        mmrag.open(tmp_path / "idx", text_model="hash:other", **opts)


@pytest.mark.integration
def test_an_ingester_whose_extra_is_missing_is_left_out(tmp_path: Path) -> None:
    def missing() -> object:
        raise DependencyError("widgetlib", "widgets", "Widget ingestion")

    registry.ingesters.register("widget", missing)
    try:
        with mmrag.open(tmp_path / "idx", model="none", ocr=False) as index:
            assert index.stats()["items"] == 0  # opened; the widget ingester was left out
    finally:
        registry.ingesters.unregister("widget")
