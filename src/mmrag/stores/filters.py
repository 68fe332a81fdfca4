"""Our filter language (:data:`~mmrag.types.Where`) checked once and translated per backend.

A filter maps keys to conditions, all of which must hold (AND). A condition is a
scalar (equality), a list/tuple/set/frozenset ("in") or a :class:`~mmrag.types.Range`.
For list-valued fields such as ``tags`` equality means "contains" and "in" means
"contains any".

Translations:

* :func:`to_lance_sql` renders the keys a backend keeps in typed columns as a
  LanceDB (DataFusion) SQL predicate. String values are quoted by doubling single
  quotes, numbers are rendered from Python numbers only and column names come from
  our own field table, so no value can change the shape of the predicate.
* :func:`to_qdrant_filter` builds a Qdrant ``models.Filter``; every key is pushed
  down because Qdrant filters any payload path.
* :func:`matches` evaluates a filter in Python, for keys a backend cannot push down
  (LanceDB keeps free-form metadata in a JSON string column).

Example::

    where = {"kind": "product", "price": Range(lte=50), "tags": "red"}
    cond = normalize(where)
    sql = to_lance_sql(cond, LANCE_FIELDS)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ..types import Item, Range, Where

__all__ = [
    "ITEM_FIELDS",
    "KNOWN_TYPES",
    "Cond",
    "FieldSpec",
    "lookup",
    "matches",
    "normalize",
    "split",
    "sql_string",
    "to_lance_sql",
    "to_qdrant_filter",
]

FieldType = Literal["str", "int", "float", "list"]
Scalar = str | int | float | bool


@dataclass(frozen=True)
class FieldSpec:
    """A filterable column: its name in the backend and the type of its values."""

    column: str
    type: FieldType


@dataclass(frozen=True)
class Cond:
    """One checked condition: ``op`` is ``eq`` (value), ``in`` (values) or ``range``."""

    key: str
    op: Literal["eq", "in", "range"]
    value: Any


#: Item attributes that can be filtered on (``bbox`` and ``metadata`` cannot).
ITEM_FIELDS: frozenset[str] = frozenset(
    {"id", "kind", "source", "content_hash", "parent", "role", "text", "doc", "page", "thumb"}
)


def _check_scalar(key: str, value: object) -> Scalar:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"filter {key!r}: {value!r} is not a finite number")
    if isinstance(value, (str, int, float, bool)):
        return value
    raise ConfigError(
        f"filter {key!r}: unsupported value {value!r} ({type(value).__name__}); "
        "use a string, number, bool, list of those or Range"
    )


def _check_range(key: str, r: Range) -> Range:
    bounds = {"gte": r.gte, "lte": r.lte, "gt": r.gt, "lt": r.lt}
    set_bounds = {k: v for k, v in bounds.items() if v is not None}
    if not set_bounds:
        raise ConfigError(f"filter {key!r}: Range needs at least one bound")
    if (r.gte is not None and r.gt is not None) or (r.lte is not None and r.lt is not None):
        raise ConfigError(f"filter {key!r}: Range has both an inclusive and exclusive bound")
    for name, v in set_bounds.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"filter {key!r}: Range.{name}={v!r} is not a finite number")
    return r


#: Value types of the keys whose type is fixed (item fields and typed metadata).
KNOWN_TYPES: dict[str, FieldType] = {
    **{k: "str" for k in ITEM_FIELDS},
    "page": "int",
    "price": "float",
    "category": "str",
    "label": "str",
    "caption": "str",
    "tags": "list",
}


def _check_type(c: Cond) -> None:
    kind = KNOWN_TYPES.get(c.key)
    if kind is None:
        return
    if c.op == "range":
        if kind not in ("int", "float"):
            raise ConfigError(f"filter {c.key!r}: Range needs a numeric field")
        return
    values = (c.value,) if c.op == "eq" else c.value
    for v in values:
        numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
        if (kind in ("int", "float")) != numeric or (
            kind in ("str", "list") and not isinstance(v, str)
        ):
            want = "a number" if kind in ("int", "float") else "a string"
            raise ConfigError(f"filter {c.key!r}: expected {want}, got {v!r}")


def normalize(where: Where | None) -> list[Cond]:
    """Check a filter and turn it into conditions; raises ConfigError when malformed."""
    if where is None:
        return []
    if not isinstance(where, Mapping):
        raise ConfigError(f"a filter must be a mapping of key to condition, not {where!r}")
    conds: list[Cond] = []
    for key, value in where.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"filter keys must be non-empty strings, not {key!r}")
        if key in ("bbox", "metadata"):
            raise ConfigError(f"filter {key!r}: this field cannot be filtered on")
        if isinstance(value, Range):
            conds.append(Cond(key, "range", _check_range(key, value)))
        elif isinstance(value, (list, tuple, set, frozenset)):
            vals = tuple(_check_scalar(key, v) for v in value)
            conds.append(Cond(key, "in", tuple(dict.fromkeys(vals))))
        else:
            conds.append(Cond(key, "eq", _check_scalar(key, value)))
    for c in conds:
        _check_type(c)
    return conds


def split(conds: list[Cond], pushable: Mapping[str, FieldSpec]) -> tuple[list[Cond], list[Cond]]:
    """Split conditions into those on backend columns and the rest (filtered in Python)."""
    pushed = [c for c in conds if c.key in pushable]
    rest = [c for c in conds if c.key not in pushable]
    return pushed, rest


# --- LanceDB -------------------------------------------------------------------------------


def sql_string(value: str) -> str:
    """A SQL string literal; single quotes are doubled, so the value cannot end the literal."""
    if "\x00" in value:
        raise ConfigError("filter values cannot contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def _sql_value(c: Cond, spec: FieldSpec, v: Scalar) -> str:
    if spec.type in ("str", "list"):
        if not isinstance(v, str):
            raise ConfigError(f"filter {c.key!r}: expected a string, got {v!r}")
        return sql_string(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"filter {c.key!r}: expected a number, got {v!r}")
    if spec.type == "int" and isinstance(v, float) and not v.is_integer():
        return "NULL"  # an integer column never equals 2.5; NULL compares as false
    return repr(int(v)) if spec.type == "int" and float(v).is_integer() else repr(v)


def _sql_cond(c: Cond, spec: FieldSpec) -> str:
    col = f"`{spec.column}`"
    if c.op == "range":
        if spec.type not in ("int", "float"):
            raise ConfigError(f"filter {c.key!r}: Range needs a numeric field")
        r: Range = c.value
        if spec.type == "int":
            # LanceDB will not compare an integer column with a float literal.
            col = f"CAST({col} AS DOUBLE)"
        parts = [
            f"{col} {op} {float(v)!r}"
            for op, v in ((">=", r.gte), ("<=", r.lte), (">", r.gt), ("<", r.lt))
            if v is not None
        ]
        return "(" + " AND ".join(parts) + ")"
    values = (c.value,) if c.op == "eq" else c.value
    if not values:
        return "FALSE"  # "in an empty set" matches nothing
    rendered = [_sql_value(c, spec, v) for v in values]
    if spec.type == "list":
        if len(rendered) == 1:
            return f"array_has({col}, {rendered[0]})"
        return f"array_has_any({col}, [{', '.join(rendered)}])"
    if len(rendered) == 1:
        return f"{col} = {rendered[0]}"
    return f"{col} IN ({', '.join(rendered)})"


def to_lance_sql(conds: list[Cond], fields: Mapping[str, FieldSpec]) -> str | None:
    """A LanceDB ``where`` string for conditions on known columns (None when there are none)."""
    parts = []
    for c in conds:
        spec = fields.get(c.key)
        if spec is None:
            raise ConfigError(f"filter {c.key!r}: not a column of this store")
        parts.append(_sql_cond(c, spec))
    return " AND ".join(parts) if parts else None


# --- Python evaluation ---------------------------------------------------------------------


_MISSING = object()


def lookup(item: Item, key: str) -> Any:
    """The value a filter key refers to: an item attribute or a metadata entry."""
    if key in ITEM_FIELDS:
        return getattr(item, key)
    return item.metadata.get(key, _MISSING)


def _eq(stored: Any, v: Scalar) -> bool:
    # bool is an int in Python; keep True from matching 1 so both backends agree.
    if isinstance(stored, bool) != isinstance(v, bool):
        return False
    return bool(stored == v)


def _cond_holds(stored: Any, c: Cond) -> bool:
    if stored is _MISSING or stored is None:
        return False
    if c.op == "range":
        if isinstance(stored, bool) or not isinstance(stored, (int, float)):
            return False
        r: Range = c.value
        return (
            (r.gte is None or stored >= r.gte)
            and (r.lte is None or stored <= r.lte)
            and (r.gt is None or stored > r.gt)
            and (r.lt is None or stored < r.lt)
        )
    values = (c.value,) if c.op == "eq" else c.value
    stored_values = stored if isinstance(stored, (list, tuple)) else (stored,)
    return any(_eq(s, v) for s in stored_values for v in values)


def matches(conds: list[Cond], item: Item) -> bool:
    """Whether an item satisfies every condition (list-valued fields: contains)."""
    return all(_cond_holds(lookup(item, c.key), c) for c in conds)


# --- Qdrant --------------------------------------------------------------------------------


def _qdrant_cond(models: Any, path: str, c: Cond) -> Any:
    if c.op == "range":
        r: Range = c.value
        return models.FieldCondition(
            key=path, range=models.Range(gte=r.gte, lte=r.lte, gt=r.gt, lt=r.lt)
        )
    values = (c.value,) if c.op == "eq" else c.value
    if not values:
        # Qdrant has no literal "false"; an empty id set matches nothing.
        return models.HasIdCondition(has_id=[])
    per_value = []
    strings = [v for v in values if isinstance(v, str)]
    if strings:
        match = models.MatchValue(value=strings[0]) if len(strings) == 1 else None
        match = match or models.MatchAny(any=strings)
        per_value.append(models.FieldCondition(key=path, match=match))
    for v in values:
        if isinstance(v, bool):
            per_value.append(models.FieldCondition(key=path, match=models.MatchValue(value=v)))
        elif isinstance(v, (int, float)):
            # A closed range matches ints and floats alike (MatchValue is exact-typed).
            per_value.append(models.FieldCondition(key=path, range=models.Range(gte=v, lte=v)))
    if len(per_value) == 1:
        return per_value[0]
    return models.Filter(should=per_value)


def to_qdrant_filter(conds: list[Cond], models: Any, *, meta_prefix: str = "metadata.") -> Any:
    """A Qdrant ``models.Filter`` (None when empty); metadata keys live under ``meta_prefix``."""
    if not conds:
        return None
    must = [
        _qdrant_cond(models, c.key if c.key in ITEM_FIELDS else meta_prefix + c.key, c)
        for c in conds
    ]
    return models.Filter(must=must)
