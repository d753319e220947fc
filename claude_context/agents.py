"""Instruction files that tell coding agents when to use claude-context (``claude-context init``).

An agent that is never told about a search tool rarely calls it. Each agent reads its own file;
ours is a short snippet between two markers, so running ``init`` again replaces the snippet in place
(one copy, whatever changed) and the user's own text around it is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from claude_context.errors import UserError

BEGIN = "<!-- claude-context:begin -->"
END = "<!-- claude-context:end -->"

# agent -> its instruction file, relative to the project root
AGENT_FILES = {
    "claude": "CLAUDE.md",
    "cursor": ".cursor/rules/claude-context.mdc",
    "codex": "AGENTS.md",
    "copilot": ".github/copilot-instructions.md",
    "gemini": "GEMINI.md",
}

# Cursor reads rule files with a front matter; alwaysApply puts the rule in every request.
_CURSOR_HEAD = (
    "---\ndescription: Use the claude-context MCP tools to search this codebase\nalwaysApply: true\n---\n"
)

SNIPPET = """\
## Code search (claude-context)

This codebase is indexed by claude-context, a local code search (MCP server `claude-context`).
- Before grepping or opening files to find where something is implemented or happens, call
  `search_code` with a plain-language question (and identifiers you know). Omit `path` to search
  every indexed codebase at once.
- To jump to a definition by name, call `find_symbol`. Before changing or removing a function,
  class or type, call `find_references` to see every call site, import and type use.
- Replies are bounded; when one says `has_more`, call again with `offset` set to `next_offset`.
- If a tool says the codebase is not indexed, call `index_codebase` with its root once.
Without MCP, the same from a shell: `claude-context search . "question"`,
`claude-context symbol NAME`, `claude-context refs NAME`."""


@dataclass(frozen=True, slots=True)
class InitResult:
    agent: str
    path: Path
    action: str  # created | updated | unchanged


def install(root: Path, agent: str) -> InitResult:
    """Write or refresh the snippet in ``agent``'s instruction file under ``root``."""
    if agent not in AGENT_FILES:
        raise UserError(f"unknown agent {agent!r}: use one of {', '.join(AGENT_FILES)}")
    path = root / AGENT_FILES[agent]
    block = f"{BEGIN}\n{SNIPPET}\n{END}\n"
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if old is None:
        new, action = (_CURSOR_HEAD + "\n" if agent == "cursor" else "") + block, "created"
    else:
        new, action = _merge(path, old, block), "updated"
    if new == old:
        return InitResult(agent, path, "unchanged")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".claude-context.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)  # whole or not at all: the user's file is never left half written
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc}") from None
    return InitResult(agent, path, action)


def _merge(path: Path, old: str, block: str) -> str:
    """``old`` with its snippet replaced by ``block`` (or ``block`` appended after the user's text)."""
    begin, end = old.find(BEGIN), old.find(END)
    if begin < 0 and end < 0:
        sep = "" if not old else "\n" if old.endswith("\n") else "\n\n"
        return old + sep + block
    if begin < 0 or end < begin or old.count(BEGIN) > 1 or old.count(END) > 1:
        line = old[: max(begin, end)].count("\n") + 1
        raise UserError(
            f"{path}:{line}: the claude-context markers are unpaired or repeated; fix them by hand "
            f"(one {BEGIN} line, then one {END} line) and run init again"
        )
    tail = old[end + len(END) :]
    return old[:begin] + block + tail.removeprefix("\n")
