"""The keyword index: code-aware tokens (``tokens.py``), query expansion (``expansion.py``) and
BM25 over tantivy (``bm25.py``)."""
