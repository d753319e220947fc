"""Local vector indexes, one file each behind ``index.base.VectorIndex``: hnswlib (``hnsw.py``),
scalar int8 codes (``int8.py``) and RaBitQ (``rabitq.py``, its IVF sizing and re-clustering in
``rabitq_ivf.py``); the quantized two re-rank from fp16 rows on disk (``rows.py``, ``slots.py``).
``index/registry.py`` names them."""
