"""Turning what the user named (files, folders, globs, URLs, URL lists) into sources."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

__all__ = ["Source", "expand_sources", "is_url"]

#: Suffixes of files that list one URL or path per line.
_LIST_SUFFIXES = frozenset({".urls", ".list"})


@dataclass(frozen=True)
class Source:
    """One thing to index: a local file (absolute path) or a URL."""

    location: str
    is_url: bool = False

    @property
    def suffix(self) -> str:
        """The lower-case suffix of the file or URL path."""
        tail = self.location.split("?", 1)[0].split("#", 1)[0]
        return Path(tail).suffix.lower()


def is_url(text: str) -> bool:
    """Whether ``text`` looks like a URL rather than a path."""
    return "://" in text[:12]


def expand_sources(
    targets: Iterable[str], suffixes: frozenset[str]
) -> tuple[list[Source], list[InputError]]:
    """Expand targets into sources with a known suffix, plus errors for targets that match nothing.

    Folders are walked recursively (hidden entries skipped); globs are expanded;
    a ``.urls``/``.list`` file contributes one URL or path per line.
    """
    found: dict[str, Source] = {}
    errors: list[InputError] = []
    for target in targets:
        matched = list(_expand_one(target, suffixes, errors))
        if not matched and not errors_for(errors, target):
            errors.append(InputError(target, "no indexable files found"))
        for source in matched:
            found.setdefault(source.location, source)
    return list(found.values()), errors


def errors_for(errors: list[InputError], target: str) -> bool:
    """Whether an error was already recorded for ``target``."""
    return any(error.source == target for error in errors)


def _utf8(path: Path, errors: list[InputError]) -> bool:
    """Whether the file name is valid UTF-8; if not, an error for it (the rest goes on).

    The manifest and the store keep names as UTF-8 text: a name with other bytes (from
    another system's encoding) cannot be recorded, so it is refused here, by name.
    """
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        errors.append(InputError(shown, "file name is not valid UTF-8: rename the file"))
        return False
    return True


def _expand_one(
    target: str, suffixes: frozenset[str], errors: list[InputError]
) -> Iterator[Source]:
    if is_url(target):
        yield Source(target, is_url=True)
        return
    if glob.has_magic(target):
        for match in sorted(glob.glob(target, recursive=True)):
            yield from _expand_one(match, suffixes, errors)
        return
    path = Path(target).expanduser()
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            relative = child.relative_to(path).parts
            if any(part.startswith(".") for part in relative):
                continue
            if child.is_file() and child.suffix.lower() in suffixes and _utf8(child, errors):
                yield Source(os.path.abspath(child))
    elif path.is_file():
        if path.suffix.lower() in _LIST_SUFFIXES:
            yield from _read_list(path, suffixes, errors)
        elif path.suffix.lower() in suffixes:
            if _utf8(path, errors):
                yield Source(os.path.abspath(path))
        else:
            errors.append(InputError(target, f"unsupported file type '{path.suffix or '(none)'}'"))
    elif path.exists():
        errors.append(InputError(target, "not a regular file or folder"))
    else:
        errors.append(InputError(target, "no such file or folder"))


def _read_list(path: Path, suffixes: frozenset[str], errors: list[InputError]) -> Iterator[Source]:
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            yield from _expand_one(line, suffixes, errors)
