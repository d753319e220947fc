"""Shared fixtures: one loaded model per session, an isolated CLAUDE_CONTEXT_HOME per test,
and a pre-warmed embedding cache so tests that do not measure embedding skip the model cost."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# ONNX exports of the model are built once per machine and shared by every test home and subprocess
# (each test's CLAUDE_CONTEXT_HOME would otherwise rebuild them).
os.environ.setdefault(
    "CLAUDE_CONTEXT_MODEL_CACHE", os.path.join(tempfile.gettempdir(), "claude-context-test-models")
)

# The static embedding table (embedding/static.py) takes a minute or two of CPU to build once per
# machine: tests/test_static.py turns it on and builds it; elsewhere searches during an index use
# keywords and the vectors there are, as they do until the table exists.
os.environ.setdefault("CLAUDE_CONTEXT_STATIC_EMBEDDINGS", "0")

FIXTURES = Path(__file__).parent / "fixtures"
POLYGLOT = FIXTURES / "polyglot"


@pytest.fixture(scope="session")
def model():
    """The real default model, loaded once and shared (Embedder instances reuse it)."""
    from claude_context.embedding import Embedder

    emb = Embedder()
    emb.embed_query("load the model once")
    return emb


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty CLAUDE_CONTEXT_HOME, also exported for subprocesses."""
    h = tmp_path / "cc-home"
    h.mkdir()
    monkeypatch.setenv("CLAUDE_CONTEXT_HOME", str(h))
    return h


@pytest.fixture
def config(home: Path):
    from claude_context.config import load_config

    return load_config()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A private copy of the polyglot fixture repository (tests may edit it)."""
    dst = tmp_path / "repo"
    shutil.copytree(POLYGLOT, dst, ignore=shutil.ignore_patterns("EXPECTED.json"))
    return dst


@pytest.fixture(scope="session")
def expected() -> list[dict]:
    return json.loads((POLYGLOT / "EXPECTED.json").read_text())


@pytest.fixture(scope="session")
def warm_cache(tmp_path_factory: pytest.TempPathFactory, model) -> Path:
    """An embeddings.sqlite holding every fixture chunk, built once per session."""
    from claude_context.config import load_config
    from claude_context.engine import Engine

    base = tmp_path_factory.mktemp("warm")
    repo = base / "repo"
    shutil.copytree(POLYGLOT, repo, ignore=shutil.ignore_patterns("EXPECTED.json"))
    env = {"CLAUDE_CONTEXT_HOME": str(base / "home"), "CLAUDE_CONTEXT_STATIC_EMBEDDINGS": "0"}
    engine = Engine(load_config(env=env))
    engine.index(repo)
    engine.close()
    return base / "home" / "embeddings.sqlite"


@pytest.fixture
def engine(config, model, warm_cache: Path):
    """An engine on a fresh home whose embedding cache already knows the fixture chunks."""
    from claude_context.engine import Engine

    shutil.copy(warm_cache, config.cache_path)
    eng = Engine(config)
    yield eng
    eng.close()


@pytest.fixture
def cold_engine(config, model):
    """An engine with an empty embedding cache (for tests that count embeddings)."""
    from claude_context.engine import Engine

    eng = Engine(config)
    yield eng
    eng.close()


def wait_for(cond: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``cond`` until it is truthy; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def files(engine, root: Path) -> set[str]:
    """Paths in a codebase's files table (what the index believes is on disk)."""
    store = engine.resolve(root)[0].store
    return set(store.meta.file_states())
