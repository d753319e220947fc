"""Where a codebase's chunks are kept and searched.

``truth/``: SQLite, the source of truth (files, chunks, generation) and ``CodebaseStore``, which
keeps the derived index in step with it. Derived, rebuildable from SQLite and the embedding cache:
``vectors/`` (hnswlib, int8, RaBitQ) and ``keyword/`` (tantivy BM25), composed by ``local.py``;
or ``remote/`` (Milvus). ``base.py`` holds the interfaces, ``registry.py`` names every backend.
Nothing here imports the layers above it (engine, codebase, search, embedding, chunkers).
"""
