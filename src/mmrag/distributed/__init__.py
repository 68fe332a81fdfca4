"""Indexing beyond one process: Ray Data actor pools embed, the calling process writes.

:mod:`.worker` is what a Ray actor runs (the indexer's own pieces, no store);
:mod:`.ray_index` lists the sources, runs the actor pool and writes its results through
the index's store, blobs and manifest.
"""
