"""Embedding backends: selection, identity, the cached ONNX export, and int8 quality against torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from claude_context.config import DEFAULT_MODEL, load_config
from claude_context.embedding import Embedder, parse_model_id, resolve_backend
from claude_context.embedding import model as emb
from claude_context.errors import ConfigError, EmbeddingError

POLYGLOT = Path(__file__).parent / "fixtures" / "polyglot"


@pytest.fixture(scope="module")
def torch_embedder(model) -> Embedder:
    e = Embedder(backend="torch", device="cpu")
    e.embed_query("load the torch model once")
    return e


def _fixture_texts() -> list[str]:
    from claude_context.chunkers import chunk_file

    texts = []
    for path in sorted(p for p in POLYGLOT.rglob("*") if p.is_file() and p.name != "EXPECTED.json"):
        rel = path.relative_to(POLYGLOT).as_posix()
        texts += [c.embed_text() for c in chunk_file(rel, path.read_text(errors="replace"), max_chars=1500)]
    return texts


def test_auto_backend_selection(monkeypatch):
    monkeypatch.setattr(emb, "onnx_available", lambda: True)
    monkeypatch.setattr(emb, "cpu_quant_arch", lambda *a, **k: "avx2")
    assert resolve_backend("auto", "cpu", DEFAULT_MODEL) == "onnx-int8"  # measured quality: the default
    assert resolve_backend("auto", "cpu", "/some/other/model") == "onnx"  # int8 unmeasured: lossless
    assert resolve_backend("auto", "cuda", DEFAULT_MODEL) == "torch"  # a GPU runs torch
    for explicit in ("torch", "onnx", "onnx-int8"):
        assert resolve_backend(explicit, "cpu", DEFAULT_MODEL) == explicit
    monkeypatch.setattr(emb, "cpu_quant_arch", lambda *a, **k: None)
    assert resolve_backend("auto", "cpu", DEFAULT_MODEL) == "onnx"  # no int8 kernels worth it
    monkeypatch.setattr(emb, "onnx_available", lambda: False)
    assert resolve_backend("auto", "cpu", DEFAULT_MODEL) == "torch"  # installed without onnxruntime
    with pytest.raises(EmbeddingError):
        resolve_backend("tensorflow", "cpu", DEFAULT_MODEL)


def test_quantization_config_follows_cpu():
    assert emb.cpu_quant_arch({"avx2", "avx512f", "avx512bw", "avx512_vnni"}, "x86_64") == "avx512_vnni"
    assert emb.cpu_quant_arch({"avx2", "avx512f", "avx512bw"}, "x86_64") == "avx512"
    assert emb.cpu_quant_arch({"avx2", "sse4_2"}, "x86_64") == "avx2"
    assert emb.cpu_quant_arch({"sse4_2"}, "x86_64") is None
    assert emb.cpu_quant_arch(set(), "aarch64") == "arm64"


def test_backend_from_flag_env_and_config(home):
    assert load_config(env={"CLAUDE_CONTEXT_HOME": str(home)}).backend == "auto"
    assert load_config(env={"CLAUDE_CONTEXT_BACKEND": "torch"}).backend == "torch"
    assert load_config(env={"CLAUDE_CONTEXT_BACKEND": "torch"}, backend="onnx").backend == "onnx"
    with pytest.raises(ConfigError):
        load_config(backend="int4")
    cfg = load_config(env={"CLAUDE_CONTEXT_HOME": str(home)})
    assert cfg.model_cache_dir == home / "models"
    assert load_config(env={"CLAUDE_CONTEXT_MODEL_CACHE": str(home / "m")}).model_cache_dir == home / "m"


def test_model_id_is_backend_aware_and_free(monkeypatch):
    monkeypatch.setattr(emb, "cpu_quant_arch", lambda *a, **k: "avx512_vnni")

    def no_load(self):
        raise AssertionError("model_id, backend and dim must not load the model")

    monkeypatch.setattr(Embedder, "_load", no_load)
    ids = {b: Embedder(backend=b, device="cpu") for b in ("torch", "onnx", "onnx-int8")}
    assert ids["torch"].model_id == f"{DEFAULT_MODEL}|st"  # unchanged: existing torch caches stay valid
    assert ids["onnx"].model_id == f"{DEFAULT_MODEL}|onnx"
    assert ids["onnx-int8"].model_id == f"{DEFAULT_MODEL}|onnx-int8|avx512_vnni"
    assert all(e.dim == 384 and not e.loaded for e in ids.values())
    for e in ids.values():  # an index's id gives back the embedder that built it (queries use it)
        again = Embedder.for_model_id(e.model_id, device="cpu")
        assert (again.model_id, again.backend) == (e.model_id, e.backend)
    # an index built on another CPU keeps its quantization config for its queries
    assert Embedder.for_model_id(f"{DEFAULT_MODEL}|onnx-int8|avx2", device="cpu").arch == "avx2"
    assert parse_model_id("x|st") == ("x", "torch", None)


def test_export_is_built_once_under_the_model_cache(tmp_path, monkeypatch, model):
    source, _ = emb.resolve_model(DEFAULT_MODEL)
    models = tmp_path / "models"
    folder, file_name = emb.ensure_export(models, DEFAULT_MODEL, source, "onnx-int8", "avx2", threads=2)
    assert folder == models / f"{DEFAULT_MODEL}-onnx-int8-avx2"
    assert (folder / file_name).is_file() and file_name.endswith("int8_avx2.onnx")
    manifest = json.loads((folder / "claude-context.json").read_text())
    assert manifest["dim"] == 384 and manifest["int8_cosine_to_fp32"] >= emb.INT8_MIN_COSINE
    assert not list(Path(source).rglob("*.onnx"))  # never written next to the installed model
    assert not [p for p in models.iterdir() if ".tmp-" in p.name]

    calls = []
    monkeypatch.setattr(emb, "_export", lambda *a, **k: calls.append(a) or pytest.fail("re-exported"))
    again = emb.ensure_export(models, DEFAULT_MODEL, source, "onnx-int8", "avx2", threads=2)
    assert again == (folder, file_name) and not calls  # second start: reused as is

    # an export made by other library versions is not trusted
    manifest["onnxruntime"] = "0.0.1"
    (folder / "claude-context.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(emb, "_export", lambda *a, **k: calls.append(a) or {"file": file_name})
    emb.ensure_export(models, DEFAULT_MODEL, source, "onnx-int8", "avx2", threads=2)
    assert len(calls) == 1

    # and the embedder loads from there (no export: the manifest is valid again)
    manifest["onnxruntime"] = emb._versions()["onnxruntime"]
    (folder / "claude-context.json").write_text(json.dumps(manifest))
    calls.clear()
    emb._MODELS.pop((DEFAULT_MODEL, "onnx-int8", "avx2", "cpu"), None)
    e = Embedder(backend="onnx-int8", device="cpu", arch="avx2", models_dir=models, threads=1)
    assert e.embed(["def add(a, b): return a + b"]).shape == (1, 384)
    assert not calls
    emb._MODELS.pop((DEFAULT_MODEL, "onnx-int8", "avx2", "cpu"), None)


def test_int8_vectors_close_to_torch(model, torch_embedder):
    assert model.backend == "onnx-int8"  # the session model: the default backend on this CPU
    texts = _fixture_texts()
    assert len(texts) > 50
    a = torch_embedder.embed(texts)
    b = model.embed(texts)
    assert a.shape == b.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    cos = np.sum(a * b, axis=1)
    assert float(cos.mean()) >= 0.98, float(cos.mean())
    assert float(cos.min()) >= 0.9, float(cos.min())
    # queries go through the same model. (int8 activations are quantized per batch, so a text
    # embedded alone differs slightly from the same text embedded among others.)
    q = model.embed_query(texts[0])
    assert np.allclose(q, model.embed([texts[0]])[0], atol=1e-6)
    assert float(q @ a[0]) >= 0.97


def test_the_export_runs_without_sentence_transformers_with_its_vectors(model, tmp_path):
    """Once exported, inference needs the export's tokenizer and graph only (``onnx_direct``):
    the vectors sentence-transformers gives for the same batches, for short, non-ASCII and
    over-long (truncated) texts, in the order given."""
    from sentence_transformers import SentenceTransformer

    from claude_context.embedding import onnx_direct

    source = emb.resolve_model(model.model_name)[0]
    found = emb.find_export(model.models_dir, model.model_name, source, model.backend, model.arch)
    assert found is not None
    encoder = model._direct(build=False)
    assert isinstance(encoder, onnx_direct.OnnxEncoder) and encoder.dim == 384
    long_text = "def handler(request):\n    return render(request, 'page.html')\n" * 60  # > 256 tokens
    texts = ["parse a semantic version string", "où sont mis en cache les vecteurs? 埋め込み", long_text]
    texts += _fixture_texts()[:70]  # more than one batch, of mixed lengths
    reference = SentenceTransformer(
        str(found[0]), backend="onnx", device="cpu", model_kwargs=emb._ort_kwargs(model.threads, found[1])
    ).encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(encoder.encode(texts, 32), reference, atol=1e-5)
    assert np.allclose(model.embed(texts), reference, atol=1e-5)  # the embedder's own path
    for text in texts[:3]:  # a query is a batch of one
        assert np.allclose(model.embed_query(text), encoder.encode([text])[0], atol=1e-6)
    # an export it cannot reproduce exactly (another module chain) is left to sentence-transformers
    odd = tmp_path / "odd"
    shutil.copytree(found[0], odd, ignore=shutil.ignore_patterns("*.onnx"))
    modules = json.loads((odd / "modules.json").read_text())
    (odd / "modules.json").write_text(json.dumps(modules[:2]))  # no Normalize
    assert onnx_direct.load(odd, found[1], emb._ort_kwargs(1)) is None


def test_an_export_that_fails_is_one_clear_error_tried_once(tmp_path, monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        raise OSError("disk on fire")

    monkeypatch.setattr(emb, "_export", broken)
    e = Embedder(backend="onnx", device="cpu", models_dir=tmp_path / "models", threads=1)
    with pytest.raises(EmbeddingError, match=r"cannot load embedding model .*OSError: disk on fire"):
        e.embed(["def add(a, b): return a + b"])
    assert len(calls) == 1
