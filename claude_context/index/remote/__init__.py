"""Remote stores behind ``index.base.ChunkIndex``: Milvus (Lite, server or Zilliz Cloud), one
collection per codebase (``milvus.py``; rows and text in ``milvus_rows.py``, server facts and
errors in ``milvus_server.py``)."""
