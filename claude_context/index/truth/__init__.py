"""The source of truth of one codebase: SQLite rows (``metadata.py``), the folder that keeps them
in step with the derived index (``store.py``: ``CodebaseStore``), and its one-writer lock."""
