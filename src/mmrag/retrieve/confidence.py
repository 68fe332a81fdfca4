"""How far a full-text path can be trusted for one query: how much of it its best hits hold.

BM25 ranks by the words a text shares with the query, and some query words are always
matched somewhere. A verbatim caption or a product name is held whole by its best match;
a long question ("What is the FY2018 capital expenditure amount (in USD millions) for 3M?
Give a response ...") is matched piecemeal, and its best hits are pages that repeat a few of
its incidental words (prose about "operating margin") rather than the statement that answers
it. So the full-text path's weight in fusion is the share of the query's words that its
best hit holds::

    coverage("self locking nuts", ["Figure 7-26. Self-locking nuts."])   # 1.0
    coverage("What was 3M's capex in FY2018? Answer in USD millions", [...])  # ~0.3

No constant is fitted: on financebench_dev (43 analyst questions, 3,651 pages) the share of
the query held by BM25's best hit was 0.13 / 0.39 / 0.71 (10th / 50th / 90th percentile)
and on pdfs_real's 127 figure captions 0.90 / 1.0 / 1.0.
"""

from __future__ import annotations

from collections.abc import Iterable

from .documents import tokens

__all__ = ["coverage"]


def coverage(query: str, texts: Iterable[str]) -> float:
    """The largest share of the query's words (stop words left out) held by one of ``texts``.

    1.0 for a query without content words: then there is nothing to discount.
    """
    wanted = set(tokens(query))
    if not wanted:
        return 1.0
    return max((len(wanted & set(tokens(text))) / len(wanted) for text in texts), default=0.0)
