"""mmrag: multimodal retrieval-augmented generation.

    import mmrag
    index = mmrag.open("my-index")
    index.add(["photos/", "manual.pdf"])
    for hit in index.search("exploded view of the pump", k=5):
        print(hit.score, hit.item.source, hit.item.page)

Heavy parts (torch, transformers, LanceDB) load on first use, so importing
mmrag is cheap and worker processes stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import (
    AnswerError,
    ConfigError,
    DependencyError,
    FetchError,
    IndexError_,
    InputError,
    MmragError,
    ModelLoadError,
    ModelMismatchError,
    StoreError,
)
from .types import Hit, Item, Range, Where

if TYPE_CHECKING:
    from .app import Index
    from .indexer import IndexReport

__version__ = "0.1.0"

__all__ = [
    "AnswerError",
    "ConfigError",
    "DependencyError",
    "FetchError",
    "Hit",
    "Index",
    "IndexError_",
    "IndexReport",
    "InputError",
    "Item",
    "MmragError",
    "ModelLoadError",
    "ModelMismatchError",
    "Range",
    "Settings",
    "StoreError",
    "Where",
    "__version__",
    "open",
]


def open(path: Any = None, **kwargs: Any) -> Index:
    """Open or create the index at ``path`` (default: settings / ``MMRAG_INDEX``)."""
    from .app import open_index

    return open_index(path, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Index":
        from .app import Index

        return Index
    if name == "IndexReport":
        from .indexer import IndexReport

        return IndexReport
    raise AttributeError(f"module 'mmrag' has no attribute {name!r}")
