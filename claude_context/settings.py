"""Per-codebase settings, typed: what decides the chunks, and which index backend holds them.

They are recorded in the codebase's metadata (keys ``settings``, ``indexed_settings``,
``quantization_requested`` and ``index_options``, unchanged on disk) and resolved once per run:
a value given for this run wins, else what the last run used, else the config.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from claude_context.config import Config, Quantization, Splitter, StoreKind, choice
from claude_context.ignore import DiscoveryOptions
from claude_context.index.registry import IndexOptions


@dataclass(frozen=True, slots=True)
class ChunkSettings:
    """Everything that decides a codebase's files and chunks: a change re-chunks every file."""

    splitter: Splitter = "ast"
    ignore_patterns: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    max_chunk_chars: int = 1000
    module_chunk_chars: int = 600

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
    ) -> ChunkSettings:
        """Given values win, else what the last run used (``recorded``), else the config."""
        return cls(
            splitter=choice(Splitter, splitter or recorded.get("splitter") or config.splitter, "splitter"),
            ignore_patterns=list(ignore_patterns)
            if ignore_patterns is not None
            else recorded.get("ignore_patterns", list(config.ignore_patterns)),
            extensions=normalize_exts(extensions)
            if extensions is not None
            else recorded.get("extensions", normalize_exts(config.extensions)),
            max_chunk_chars=config.max_chunk_chars,
            module_chunk_chars=config.module_chunk_chars,
        )

    def discovery(self, config: Config) -> DiscoveryOptions:
        """The discovery options for these settings (the watcher filters its events with the same)."""
        return DiscoveryOptions(
            max_file_bytes=config.max_file_bytes,
            extra_ignore=list(self.ignore_patterns),
            index_secrets=config.index_secrets,
            extra_extensions=list(self.extensions),
            exclude_dirs=[str(config.home.expanduser().resolve())],
        )


def normalize_exts(exts: Iterable[str]) -> list[str]:
    return ["." + e.lower().lstrip(".") for e in exts if e and e.strip(".")]


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
