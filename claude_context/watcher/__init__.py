"""Watch mode: keep indexed codebases fresh as files change.

``service.py`` owns the watchdog observer and one worker thread per root; ``worker.py`` is that
worker's loop; the state each watcher leaves in its codebase's metadata (so ``status`` in any
process sees it) is written through ``Codebase`` and read by ``index/truth/presence.py``.
"""

from claude_context.watcher.service import RootWatch, WatchService, WatchStats, format_update, is_editor_temp

__all__ = ["RootWatch", "WatchService", "WatchStats", "format_update", "is_editor_temp"]
