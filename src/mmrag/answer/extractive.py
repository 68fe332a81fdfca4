"""The offline answerer: no model, just the best evidence sentences quoted with [n] citations.

answer = ExtractiveAnswerer(settings).answer("How much is the trail shoe?", hits, None)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import Settings
from ..types import Hit
from .base import Stream, finish
from .prompt import LoadImage, build_prompt
from .types import Answer, Source, Usage

__all__ = ["NOTHING_RETRIEVED", "ExtractiveAnswerer", "best_evidence"]

NOTHING_RETRIEVED = (
    "Nothing relevant was retrieved from the index, so there is no evidence to answer from."
)

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "show",
        "shows",
        "tell",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "those",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "you",
        "your",
    ]
)
# Words that ask about a product's price; they match the price line of product sources.
_PRICE_WORDS = frozenset({"price", "cost", "costs", "much", "cheap", "expensive", "priced"})
_MAX_QUOTES = 3
_MAX_SENTENCE_CHARS = 300
#: Fewer words than this is a heading or a bullet fragment ("Business"), not an answer.
_MIN_WORDS = 4
#: How fast a source's sentences lose weight with its rank: the retriever put the right
#: document first far more often than a lower source shares one more word with the question.
_RANK_DECAY = 0.25


@dataclass(frozen=True)
class _Evidence:
    """One quotable sentence from a source, with its relevance score."""

    score: float
    n: int
    text: str
    overlap: int = 0


def _terms(text: str) -> set[str]:
    """Lower-case content words with a crude plural fold (shoes -> shoe)."""
    words = (w.lower() for w in _WORD.findall(text))
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOPWORDS}


def _sentences(source: Source) -> list[str]:
    """Candidate sentences of a source: product line, caption, then its text's sentences."""
    item, meta = source.item, source.item.metadata
    found = []
    if item.kind == "product":
        line = source.label
        if meta.get("category"):
            line += f" (category: {meta['category']})"
        found.append(line + " — price" if meta.get("price") is not None else line)
    if meta.get("caption"):
        found.append(str(meta["caption"]))
    # A page has no text of its own: its passages (the evidence search found) stand in.
    found.extend(s for s in _SENTENCE_END.split(item.text or source.text or "") if _long(s))
    return [s.strip()[:_MAX_SENTENCE_CHARS] for s in found if len(s.strip()) > 2]


def _long(sentence: str) -> bool:
    return len(_WORD.findall(sentence)) >= _MIN_WORDS


def best_evidence(
    question: str, sources: Sequence[Source], limit: int = _MAX_QUOTES
) -> list[_Evidence]:
    """The sentences sharing the most question terms, best first, a lower source's weighing
    less. The top source's best sentence leads when it shares at least half as many terms as
    the best one: the retriever ranked it first (with the document the question names) more
    reliably than a shared word or two can."""
    wanted = _terms(question)
    if wanted & _PRICE_WORDS:
        wanted |= {"price"}
    scored = []
    for source in sources:
        for sentence in _sentences(source):
            overlap = len(wanted & _terms(sentence))
            if overlap:
                prior = 1 + _RANK_DECAY * (source.n - 1)
                scored.append(_Evidence(overlap / prior, source.n, sentence, overlap))
    scored.sort(key=lambda e: e.score, reverse=True)
    lead = min(scored, key=lambda e: (e.n, -e.score), default=None)
    if lead is not None and 2 * lead.overlap >= max(e.overlap for e in scored):
        scored.remove(lead)
        scored.insert(0, lead)
    chosen: list[_Evidence] = []
    for evidence in scored:
        if all(evidence.text != c.text for c in chosen):
            chosen.append(evidence)
        if len(chosen) == limit:
            break
    return chosen


def _compose(question: str, sources: Sequence[Source]) -> str:
    """The extractive answer text."""
    if not sources:
        return NOTHING_RETRIEVED
    evidence = best_evidence(question, sources)
    if not evidence:
        closest = ", ".join(f"{s.label} [{s.n}]" for s in sources[:3])
        return (
            "The retrieved sources do not contain text that answers this question. "
            f"The closest matches are: {closest}."
        )
    quotes = "\n".join(f'- "{e.text.removesuffix(" — price")}" [{e.n}]' for e in evidence)
    return f"Best evidence from the retrieved sources (no model was used):\n{quotes}"


class ExtractiveAnswerer:
    """An :class:`~mmrag.answer.base.Answerer` that needs no model or key."""

    model = "extractive"

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @classmethod
    def from_spec(
        cls, settings: Settings, model: str = "extractive", base_url: str | None = None
    ) -> ExtractiveAnswerer:
        """The registry's factory: the offline answerer takes no model and no URL."""
        return cls(settings)

    def answer(
        self,
        question: str,
        hits: Sequence[Hit],
        load_image: LoadImage | None,
        *,
        stream: Stream | None = None,
    ) -> Answer:
        """Quote the best evidence sentences with citations; images are not needed."""
        prompt = build_prompt(question, hits, None)
        text = _compose(question, prompt.sources)
        if stream is not None:
            stream(text)
        return finish(prompt, text, self.model, Usage(cost_usd=0.0))
