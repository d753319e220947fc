"""Search: the filter scope (``scope.py``), the query adapter (``query_adapter.py``), fusion and
code-aware ranking (``ranking.py``), and results shaped for agents (``results.py``)."""
