"""Ingestion: every source is an :class:`~mmrag.ingest.base.Ingester` that turns it into items.

- ``base``: the protocol, what an ingester is given (``SourceData``) and yields
  (``Extracted`` items, ``Skipped`` parts, ``Notice`` s), and content-type routing.
- ``items``: item construction in one place (images, figures, captions, chunks, OCR text).
- ``images``, ``pdf``, ``pptx``: the ingesters; ``decode``, ``ocr_images``, ``figures``,
  ``chunk``: what they are made of.
- ``sources``, ``fetch``, ``pool``, ``report``: the pipeline's parts (``mmrag.indexer``):
  expanding targets, downloading URLs, the decode worker pool, the run's report.
"""
