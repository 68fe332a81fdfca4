"""Query understanding for documents: which of the candidate documents the question names.

"What was 3M's capital expenditure in FY2018?" names a company and a year; the pages that
answer it are in 3M's 2018 annual report, not in a competitor's. Each candidate document is
described by its identity (file name, title, form, period, issuer: the first line of its
items' ``context``), the question is matched against those descriptions with BM25, and the
match becomes a soft boost for that document's pages: never a filter, so a question that
names no document, or the wrong one, still finds what the paths found.

::

    boost = document_boost("3M capex FY2018", {"3M_2018_10K.pdf": "3M 2018 10K ...", ...})
    boost["3M_2018_10K.pdf"]  # > 0; documents the question does not name get < 0
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from ..types import Item

__all__ = ["document_boost", "identity", "tokens"]

# Letters and digits split apart, so "FY2018" matches "2018" and "2023Q2" matches "Q2".
_TOKEN = re.compile(r"[a-z]+|[0-9]+")
_STOP = frozenset(
    re.findall(
        r"\w+",
        "a s t an and are as at be by did do does for from how in into is it its of on or "
        "than that the their this to was were what when which who why with",
    )
)
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}$")
_SEPARATORS = re.compile(r"[_\-.]+")
_K1, _B = 1.2, 0.75


def tokens(text: str) -> list[str]:
    """Lower-case word and number tokens without stop words, plural ``s`` dropped."""
    out = []
    for token in _TOKEN.findall(text.lower()):
        if token in _STOP:
            continue
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        out.append(token)
    return out


def identity(item: Item) -> str:
    """What identifies an item's document: its name in words and its context's first line."""
    name = _SEPARATORS.sub(" ", _SUFFIX.sub("", item.doc or ""))
    first = (item.context or "").split("\n", 1)[0]
    return f"{name} {first}".strip()


def document_boost(query: str, documents: Mapping[str, str]) -> dict[str, float]:
    """Each document's BM25 match with ``query``, as z-scores across ``documents``.

    Empty when fewer than two documents are candidates or the query names none of them:
    then there is nothing to tell apart.
    """
    if len(documents) < 2:
        return {}
    docs = {name: tokens(text) for name, text in documents.items()}
    wanted = set(tokens(query))
    n = len(docs)
    df = {t: sum(1 for toks in docs.values() if t in toks) for t in wanted}
    avg = sum(len(toks) for toks in docs.values()) / n or 1.0
    scores = {}
    for name, toks in docs.items():
        score = 0.0
        for t in wanted:
            tf = toks.count(t)
            if tf:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                score += idf * tf * (_K1 + 1) / (tf + _K1 * (1 - _B + _B * len(toks) / avg))
        scores[name] = score
    mean = sum(scores.values()) / n
    spread = math.sqrt(sum((s - mean) ** 2 for s in scores.values()) / n)
    if spread < 1e-9:
        return {}
    return {name: (s - mean) / spread for name, s in scores.items()}
