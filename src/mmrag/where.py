"""The filter syntax people type: ``category=shoes``, ``kind=image,page``, ``price<200``.

parse_where(["category=shoes", "price<200"])
# {"category": "shoes", "price": Range(lt=200.0)}
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import PurePath
from typing import Any

from .errors import ConfigError
from .types import Range, Where

__all__ = ["describe_where", "parse_where", "resolve_documents"]

_OPS = ("<=", ">=", "<", ">", "=")
_BOUNDS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def parse_where(filters: Iterable[str]) -> Where | None:
    """Parse ``key=value`` (equals), ``key=a,b`` (in) and ``key<n``/``<=``/``>``/``>=`` (ranges)."""
    where: dict[str, Any] = {}
    for raw in filters:
        op = next((op for op in _OPS if op in raw), None)
        if op is None:
            raise ConfigError(f"filter {raw!r}: expected key=value, key<number or key>=number")
        key, _, value = (part.strip() for part in raw.partition(op))
        if not key:
            raise ConfigError(f"filter {raw!r}: missing field name")
        if op == "=":
            values = [_scalar(v.strip()) for v in value.split(",")]
            where[key] = values[0] if len(values) == 1 else values
            continue
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"filter {raw!r}: {value!r} is not a number") from None
        previous = where.get(key)
        bounds = asdict(previous) if isinstance(previous, Range) else {}
        where[key] = Range(**{**bounds, _BOUNDS[op]: number})
    return where or None


def describe_where(where: Where | None) -> str:
    """A filter written back in the same syntax: ``price<200 category=bags``."""
    parts = []
    for key, value in (where or {}).items():
        if isinstance(value, Range):
            ops = (("gte", ">="), ("gt", ">"), ("lte", "<="), ("lt", "<"))
            parts += [
                f"{key}{op}{getattr(value, b):g}" for b, op in ops if getattr(value, b) is not None
            ]
        elif isinstance(value, (list, tuple, set, frozenset)):
            parts.append(f"{key}={','.join(map(str, value))}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _scalar(value: str) -> str | int | float:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value


def resolve_documents(where: Where | None, names: Sequence[str]) -> Where | None:
    """``where`` with each ``doc`` value made an indexed document's name.

    A document is named by its file name (``3M_2022_10K.pdf``); the stem
    (``3M_2022_10K``) or a path ending in it (``reports/3M_2022_10K.pdf``) also
    names it. A value that names no document is a ConfigError that says so and
    suggests the nearest names, instead of an empty result.
    """
    if not where or "doc" not in where:
        return where
    value = where["doc"]
    values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    resolved: list[str] = []
    for v in values:
        resolved.extend(_document_names(str(v), names))
    found: Any = resolved[0] if len(resolved) == 1 else resolved
    return {**where, "doc": found}


def _document_names(value: str, names: Sequence[str]) -> list[str]:
    if value in names:
        return [value]
    base = PurePath(value).name
    matches = [n for n in names if n == base or PurePath(n).stem == base]
    if matches:
        return matches
    stems = {PurePath(n).stem: n for n in names}
    close = difflib.get_close_matches(base, [*names, *stems], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(dict.fromkeys(stems.get(c, c) for c in close))}?"
    raise ConfigError(
        f"doc={value!r} names no indexed document" + (hint if close else f" ({len(names)} indexed)")
    )
