"""Remote stores behind ``index.base.ChunkIndex``: Milvus (Lite, server or Zilliz Cloud), one
collection per codebase: ``milvus.py`` (the chunk index: writes, search, stats) on
``milvus_collection.py`` (connection, verification, creation); rows, BM25 text and filter
expressions in ``milvus_rows.py``; server facts, Milvus Lite state and error wording in
``milvus_server.py``."""
