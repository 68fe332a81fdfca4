"""The role every ingester plays: what it is given, and what it yields.

An ingester turns one source into items. The pipeline hands it a :class:`SourceData`
(the source's name, bytes and content hash; for ingesters that set ``decode``, the
picture the pipeline's decode pool made of those bytes) and takes what it yields::

    for out in PdfIngester().extract(SourceData.read(Path("report.pdf")), Settings()):
        if isinstance(out, Extracted):
            ...  # an item, with the rendered picture of a visual item
        else:
            ...  # Skipped (a page left out) or Notice (OCR unavailable): the run's warnings

An ingester raises :class:`~mmrag.errors.InputError` when the whole source is unusable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import urlsplit

from PIL import Image

from ..config import Settings
from ..errors import InputError
from ..types import Item, content_hash
from .decode import DecodedImage
from .sources import is_url

__all__ = [
    "Extracted",
    "Ingester",
    "Notice",
    "Output",
    "Skipped",
    "SourceData",
    "each_part",
    "pick_ingester",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceData:
    """One source as an ingester gets it.

    ``name`` is what the user named (an absolute path or a URL): items carry it as
    their ``source`` and derive their ids from it. ``decoded`` is set for ingesters
    whose sources the pipeline decodes (see ``Ingester.decode``); ``data`` is then empty
    when a decode worker read the file.
    """

    name: str
    hash: str
    data: bytes = b""
    #: The HTTP content type of URL bytes; "" for files.
    content_type: str = ""
    decoded: DecodedImage | None = None

    @classmethod
    def read(cls, path: str | Path) -> SourceData:
        """A local file's bytes; InputError when it cannot be read."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(str(path), f"cannot read file: {exc.strerror or exc}") from None
        return cls(str(path), content_hash(data), data)

    @property
    def filename(self) -> str:
        """The last part of the path (of a URL's path), e.g. ``report.pdf``."""
        if is_url(self.name):
            return PurePosixPath(urlsplit(self.name).path).name
        return Path(self.name).name

    @property
    def suffix(self) -> str:
        """The lower-case suffix of :attr:`filename`, with the dot."""
        return PurePosixPath(self.filename).suffix.lower()


@dataclass
class Extracted:
    """One item ready to embed.

    Visual items (image, page, figure, slide) carry their picture: a rendered ``image``
    (the pipeline makes the model pixels, thumbnail and full copy from it) or, for
    sources the decode pool decoded, the ``decoded`` image with its pixels and thumbnail
    made. Text items carry their text in ``item.text`` and are encoded with the text
    embedder (and indexed for full text).
    """

    item: Item
    image: Image.Image | None = None
    decoded: DecodedImage | None = None


@dataclass(frozen=True)
class Skipped:
    """A part of a source (a page, a slide, a row) left out, and why; the rest was indexed."""

    source: str
    #: Which part, as a reader would name it: ``"page 7"``, ``"slide 3"``.
    part: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source} {self.part}: skipped: {self.reason}"


@dataclass(frozen=True)
class Notice:
    """A loss that costs no part of a source: OCR unavailable, slides not rendered.

    Without a ``source`` it reads the same for every source, so a run reports it once.
    """

    message: str
    source: str | None = None

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


#: What an ingester yields.
Output = Extracted | Skipped | Notice


class Ingester(Protocol):
    """Turns one source into items. Raises InputError when the whole source is unusable."""

    #: Lower-case file suffixes this ingester handles, with the dot (".pdf").
    suffixes: frozenset[str]
    #: Content types of URL bytes it takes: a full type ("application/pdf") or a major
    #: type ending in "/" ("image/").
    content_types: frozenset[str]
    #: True when the pipeline decodes its sources as images first (files in worker
    #: processes) and hands them over in ``SourceData.decoded``.
    decode: bool

    def extract(self, source: SourceData, settings: Settings) -> Iterator[Output]:
        """The items of one source, and warnings about parts of it."""
        ...


def pick_ingester(
    ingesters: Sequence[Ingester], suffix: str, content_type: str = ""
) -> Ingester | None:
    """The ingester for a source: the one claiming its content type, else its suffix.

    URL bytes come with a content type; a generic one (application/octet-stream) or a
    file's "" falls through to the suffix.
    """
    if content_type:
        for ingester in ingesters:
            if any(_type_matches(content_type, claim) for claim in ingester.content_types):
                return ingester
    for ingester in ingesters:
        if suffix in ingester.suffixes:
            return ingester
    return None


def _type_matches(content_type: str, claim: str) -> bool:
    return content_type.startswith(claim) if claim.endswith("/") else content_type == claim


def each_part(
    source: str,
    label: str,
    numbers: Iterable[int],
    build: Callable[[int], Sequence[Output]],
) -> Iterator[Output]:
    """Build each part (``label`` "page" or "slide" ``n``) whole, skipping those that fail.

    A part is built completely before any of it is yielded, so a failure leaves no half
    page behind; the failure becomes a :class:`Skipped` and the rest of the source goes on.
    """
    for n in numbers:
        try:
            outputs = build(n)
        except Exception as exc:  # one bad page must not cost the document
            skipped = Skipped(source, f"{label} {n}", str(exc))
            log.warning("%s", skipped)
            yield skipped
            continue
        yield from outputs
