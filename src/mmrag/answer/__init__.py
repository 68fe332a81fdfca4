"""Answering: a vision-language model (or the offline extractive answerer) answers from hits.

answerer = make_answerer(settings, "gpt-4o")
answer = answerer.answer(question, hits, index.load_image)
"""

from .base import Answerer, make_answerer
from .types import Answer, Citation, Usage

__all__ = ["Answer", "Answerer", "Citation", "Usage", "make_answerer"]
