"""A codebase's own settings, checked in beside its code: ``.claude-context.toml`` at the root, or a
``[tool.claude-context]`` table in its ``pyproject.toml`` (the dedicated file wins key by key).

Layering: defaults < user config (``config.toml``) < project file < environment < flags. Only the
settings that decide what a codebase's index holds may be set here (which files, how they are
chunked); model, store and ranking stay the user's. A malformed file or an unknown key is a
``ConfigError`` naming the file and line: a typo never silently indexes the wrong files.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claude_context.config import Config
from claude_context.errors import ConfigError

PROJECT_FILE = ".claude-context.toml"
PYPROJECT = "pyproject.toml"
PROJECT_FILES = (PROJECT_FILE, PYPROJECT)
# What a project may set (index_secrets deliberately not: a cloned repository must not be able to
# turn secret indexing on), and friendlier spellings of them.
PROJECT_KEYS = frozenset(
    {"ignore_patterns", "extensions", "max_file_bytes", "splitter", "max_chunk_chars", "module_chunk_chars"}
)
ALIASES = {"ignore": "ignore_patterns", "chunk_size": "max_chunk_chars", "max_file_size": "max_file_bytes"}


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    values: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # the files that set something


def read_project(root: Path) -> ProjectConfig:
    """The project settings of ``root`` (empty when it has none); ConfigError on a bad file."""
    values: dict[str, Any] = {}
    files: list[str] = []
    for name in (PYPROJECT, PROJECT_FILE):  # the dedicated file last: it wins
        path = root / name
        if not path.is_file():
            continue
        text, data = _load(path)
        if name == PYPROJECT:
            table = data.get("tool", {}).get("claude-context")
            if table is None:
                continue
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [tool.claude-context] must be a table")
            data = table
        values.update(_checked(path, text, data))
        files.append(str(path))
    return ProjectConfig(values, tuple(files))


def layered(config: Config, project: ProjectConfig) -> Config:
    """``config`` with the project's values, except where the environment or a flag set one."""
    values = {k: v for k, v in project.values.items() if k not in config.pinned}
    if not values:
        return config
    try:
        return config.replace(**values)
    except ConfigError as exc:
        raise ConfigError(f"{', '.join(project.files)}: {exc}") from None


class ProjectLayer:
    """One codebase's layered config, re-read only when a project file's stat data changes."""

    def __init__(self) -> None:
        self._cached: tuple[tuple, Config, frozenset[str]] | None = None

    def get(self, base: Config, root: Path) -> tuple[Config, frozenset[str]]:
        """(``base`` with the project's values, the settings set by the project, environment or
        flags: those beat what the last run recorded)."""
        sig = (id(base), signature(root))
        if self._cached is None or self._cached[0] != sig:
            found = read_project(root)
            self._cached = (sig, layered(base, found), frozenset(found.values) | base.pinned)
        return self._cached[1], self._cached[2]


def signature(root: Path) -> tuple:
    """Changes when a project file may have (stat data of both files), for caching."""
    out = []
    for name in PROJECT_FILES:
        try:
            st = (root / name).stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def _load(path: Path) -> tuple[str, dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else text.count("\n") + 1  # "at end of document"
        reason = re.sub(r"\s*\(at [^)]*\)$", "", str(exc))
        raise ConfigError(f"{path}:{line}: invalid TOML: {reason}") from None


def _checked(path: Path, text: str, data: dict) -> dict[str, Any]:
    """``data`` with aliases resolved; an unknown key is an error naming its line."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = ALIASES.get(key, key.replace("-", "_"))
        if name not in PROJECT_KEYS:
            known = ", ".join(sorted(PROJECT_KEYS | set(ALIASES)))
            raise ConfigError(f"{path}:{_line_of(text, key)}: unknown setting {key!r} (known: {known})")
        out[name] = value
    return out


def _line_of(text: str, key: str) -> int:
    """The line ``key`` is set on (in pyproject.toml: below our table's header), 1 if not found."""
    pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", re.MULTILINE)
    found = pattern.search(text, max(0, text.find("[tool.claude-context]")))
    return text.count("\n", 0, found.start()) + 1 if found else 1
