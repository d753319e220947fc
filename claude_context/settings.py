"""Per-codebase settings, typed: what decides the chunks, and which index backend holds them.

They are recorded in the codebase's metadata (keys ``settings``, ``indexed_settings``,
``quantization_requested`` and ``index_options``, unchanged on disk) and resolved once per run:
a value given for this run wins, else what the last run used, else the config.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from claude_context.chunkers import CHUNKER_VERSION
from claude_context.config import Config, Quantization, Splitter, StoreKind, choice
from claude_context.ignore import DiscoveryOptions
from claude_context.index.registry import IndexOptions

if TYPE_CHECKING:
    from claude_context.index.truth.metadata import MetadataStore


@dataclass(frozen=True, slots=True)
class ChunkSettings:
    """Everything that decides a codebase's files and chunks: a change re-chunks every file."""

    splitter: Splitter = "ast"
    ignore_patterns: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    max_chunk_chars: int = 1000
    module_chunk_chars: int = 600
    max_file_bytes: int = 1024 * 1024
    chunker: int = CHUNKER_VERSION  # the chunkers' version (not a setting: recorded to re-chunk on upgrade)

    def to_dict(self) -> dict:
        """The JSON recorded as ``settings`` / ``indexed_settings`` (same keys as ever)."""
        return asdict(self)

    @classmethod
    def resolve(
        cls,
        recorded: dict,
        config: Config,
        splitter: str | None = None,
        ignore_patterns: list[str] | None = None,
        extensions: list[str] | None = None,
        firm: frozenset[str] = frozenset(),
    ) -> ChunkSettings:
        """Given values win, then settings named in ``firm`` (set by a project file, the environment
        or a flag: ``config`` holds them), then what the last run used (``recorded``), then the config."""
        last = {k: v for k, v in recorded.items() if k not in firm}
        return cls(
            splitter=choice(Splitter, splitter or last.get("splitter") or config.splitter, "splitter"),
            ignore_patterns=list(ignore_patterns)
            if ignore_patterns is not None
            else last.get("ignore_patterns", list(config.ignore_patterns)),
            extensions=normalize_exts(extensions)
            if extensions is not None
            else last.get("extensions", normalize_exts(config.extensions)),
            max_chunk_chars=config.max_chunk_chars,
            module_chunk_chars=config.module_chunk_chars,
            max_file_bytes=config.max_file_bytes,
        )

    @classmethod
    def from_meta(
        cls,
        meta: MetadataStore,
        config: Config,
        firm: frozenset[str],
        splitter: str | None = None,
        ignore_patterns: list[str] | None = None,
        extensions: list[str] | None = None,
    ) -> ChunkSettings:
        """``resolve`` against what the codebase's last run recorded; a value a project file set
        then and no longer sets is not carried over (it was never the user's choice for this run)."""
        recorded = loads(meta.get_meta("settings"))
        for key in set(json.loads(meta.get_meta("settings_firm") or "[]")) - firm:
            recorded.pop(key, None)
        return cls.resolve(recorded, config, splitter, ignore_patterns, extensions, firm)

    def rechunk_keys(self, old: dict) -> list[str]:
        """The settings that changed since ``old`` (a recorded dict) and change every file's chunks;
        the others (which files: ignore patterns, extensions, size limit) only need a full scan."""
        now = self.to_dict()
        old = {"chunker": 1, **old} if old else old  # recorded before the version was: 1
        return [k for k in CHUNK_KEYS if k in old and old[k] != now[k]]

    def discovery(self, config: Config) -> DiscoveryOptions:
        """The discovery options for these settings (the watcher filters its events with the same)."""
        return DiscoveryOptions(
            max_file_bytes=self.max_file_bytes,
            extra_ignore=list(self.ignore_patterns),
            index_secrets=config.index_secrets,
            extra_extensions=list(self.extensions),
            exclude_dirs=[str(config.home.expanduser().resolve())],
        )


CHUNK_KEYS = ("splitter", "max_chunk_chars", "module_chunk_chars", "chunker")


def normalize_exts(exts: Iterable[str]) -> list[str]:
    return ["." + e.lower().lstrip(".") for e in exts if e and e.strip(".")]


def firm_json(firm: frozenset[str]) -> str:
    """The recorded ``settings_firm``: which settings a project file, the environment or a flag set."""
    return json.dumps(sorted(firm))


def loads(raw: str | None) -> dict:
    """A recorded settings dict (``{}`` when none was recorded)."""
    return json.loads(raw or "{}")


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """The index backend asked for: ``quantization`` may be ``auto`` (re-decided as the codebase
    grows, hence recorded as asked), the resolved one lives in ``IndexOptions``."""

    quantization: Quantization
    store: StoreKind

    @classmethod
    def resolve(
        cls,
        recorded_quantization: str | None,
        old: IndexOptions | None,
        config: Config,
        quantization: str | None = None,
        store: str | None = None,
    ) -> BackendChoice:
        """Given values win, else what was asked last (``old``: the recorded options, if any)."""
        asked_before = recorded_quantization or (old.quantization if old else config.quantization)
        requested = quantization or asked_before
        kind = store or (old.store if old else config.store)
        return cls(choice(Quantization, requested, "quantization"), choice(StoreKind, kind, "store"))
