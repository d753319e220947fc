"""The presence records watchers leave in a codebase's metadata, so ``status`` in any process can
tell whether a live watcher keeps the index fresh.

A watcher writes ``watcher.<pid>`` = JSON {state, message, pid, heartbeat, ...} and refreshes the
heartbeat every ``HEARTBEAT_S``; an entry whose heartbeat is older than ``STALE_S`` or whose pid is
gone is not live. The watcher (``claude_context.watcher``) writes them through ``Codebase``; status
reads them here, so neither imports the other.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

META_PREFIX = "watcher."
HEARTBEAT_S = 10.0
STALE_S = 45.0  # a watcher entry whose heartbeat is older than this is not live (or its pid is gone)

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


_RANK = {"watching": 0, "polling": 1, "starting": 2, "error": 3}


def live_watchers(meta: dict[str, str], now: float | None = None) -> list[dict[str, Any]]:
    """Watcher entries of a codebase's metadata whose process is alive and heartbeat recent."""
    now = time.time() if now is None else now
    out = []
    for key, value in meta.items():
        if not key.startswith(META_PREFIX):
            continue
        try:
            entry = json.loads(value)
            pid = int(entry["pid"])
            beat = float(entry["heartbeat"])
        except (ValueError, KeyError, TypeError):
            continue
        if entry.get("state") in _RANK and now - beat <= STALE_S and _pid_alive(pid):
            out.append(entry)
    return sorted(out, key=lambda e: (_RANK[e["state"]], e["pid"]))


def watcher_summary(meta: dict[str, str]) -> tuple[str, str, int | None]:
    """(state, message, pid) of the best live watcher, or ("off", "", None)."""
    live = live_watchers(meta)
    if not live:
        return "off", "", None
    best = live[0]
    message = str(best.get("message", ""))
    if len(live) > 1:
        message = (message + "; " if message else "") + f"{len(live)} watcher processes"
    return str(best["state"]), message, int(best["pid"])
