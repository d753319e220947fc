"""Ignore rules of one codebase root: built-ins, secrets, .gitignore files, .contextignore, extra patterns.

Why a small gitignore matcher of our own rather than ``pathspec.GitIgnoreSpec``: pathspec answers "is
this *file path* ignored" by folding parent-directory matches into the file's own match, and it
deliberately departs from git there (``a/`` + ``!b.py`` keeps ``a/b.py``; git ignores it). We need
git's per-directory answer to prune the walk (never list an ignored folder), and on a directory probe
pathspec gets the common whitelist idiom ``*`` / ``!*/`` / ``!*.py`` wrong (every folder "ignored").
So patterns are evaluated the way git's ``dir.c`` does: each path level on its own, deepest ignore file
first, last matching pattern of a file wins, and nothing below an excluded folder is looked at.

Precedence, highest first:
  1. ``extra_ignore`` (config / flags / MCP), then the root ``.contextignore``: our own settings; a
     negation here (``!dist/``) re-includes something that .gitignore or the built-ins skip.
  2. ``.gitignore`` files, deepest folder first (including ones above the root up to the enclosing
     git work tree's top), then ``.git/info/exclude``. A negation here only undoes git patterns; it
     cannot re-include a built-in (``!*/`` must not resurrect ``node_modules``).
  3. ``BUILTIN_IGNORES`` (+ any folder holding ``pyvenv.cfg``); ``extra_extensions`` override the
     built-in *file* rules for their extensions.
  4. ``SECRET_PATTERNS`` unless ``index_secrets``: files only, never re-included by patterns, and
     reported (not silently dropped) so users know why ``.env`` is missing.
Not read: git's global ``core.excludesFile``, so results do not depend on the user's machine setup.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

IGNORED = "ignored"  # silently skipped (gitignored, built-in, ...)
SECRET = "secret"  # skipped and reported

CONTEXTIGNORE = ".contextignore"
GITIGNORE = ".gitignore"
VENV_MARKER = "pyvenv.cfg"  # any folder holding this is a virtualenv, whatever its name (venv, env, .env)

# Gitignore-style, matched against a single path component anywhere in the tree. A trailing "/" means
# folders only; every other entry applies to files only (case-insensitive, so IMAGE.PNG is caught).
BUILTIN_IGNORES: tuple[str, ...] = (
    # version control
    ".git/", ".hg/", ".svn/", ".bzr/",
    ".git",  # a worktree's / submodule's ".git" file
    # dependencies, virtualenvs (see also VENV_MARKER), caches, build output, editor config
    "node_modules/", "bower_components/", "jspm_packages/", "site-packages/", ".venv/",
    "__pycache__/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".hypothesis/", ".tox/", ".nox/",
    ".eggs/", "*.egg-info/", ".ipynb_checkpoints/", ".cache/", ".gradle/", ".terraform/",
    "dist/", "build/", "target/", ".next/", ".nuxt/", ".svelte-kit/", ".turbo/", ".parcel-cache/",
    "coverage/", "htmlcov/", ".idea/", ".vscode/",
    # lock files: huge, generated, no search value
    "*.lock", "package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "go.sum", "bun.lockb",
    # minified / bundled code and source maps
    "*.min.js", "*.min.mjs", "*.min.css", "*-bundle.js", "*.bundle.js", "*.chunk.js", "*.map",
    # binaries by extension: images, fonts, audio/video, archives, compiled code, documents, data, models
    "*.png", "*.jpg", "*.jpeg", "*.gif", "*.bmp", "*.ico", "*.icns", "*.tif", "*.tiff", "*.webp", "*.avif",
    "*.heic", "*.psd", "*.svg",
    "*.ttf", "*.otf", "*.woff", "*.woff2", "*.eot",
    "*.mp3", "*.wav", "*.ogg", "*.flac", "*.aac", "*.m4a", "*.mp4", "*.m4v", "*.mov", "*.avi", "*.mkv",
    "*.webm",
    "*.zip", "*.tar", "*.gz", "*.tgz", "*.bz2", "*.xz", "*.zst", "*.7z", "*.rar", "*.jar", "*.war",
    "*.whl", "*.egg", "*.apk", "*.dmg", "*.iso", "*.deb", "*.rpm",
    "*.so", "*.dll", "*.dylib", "*.exe", "*.o", "*.obj", "*.a", "*.lib", "*.class", "*.pyc", "*.pyo",
    "*.pyd", "*.wasm", "*.beam", "*.elc",
    "*.pdf", "*.doc", "*.docx", "*.xls", "*.xlsx", "*.ppt", "*.pptx", "*.odt",
    "*.db", "*.sqlite", "*.sqlite3", "*.bin", "*.parquet", "*.arrow", "*.feather", "*.pkl", "*.pickle",
    "*.pt", "*.pth", "*.ckpt", "*.onnx", "*.safetensors", "*.gguf", "*.npy", "*.npz", "*.h5", "*.hdf5",
    "*.tflite",
    ".DS_Store", "*.swp", "*.swo",
)  # fmt: skip

# Credentials and keys: never sent to an index (and from there into an agent's context) by default.
SECRET_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    ".npmrc", ".pypirc", ".netrc", ".git-credentials", ".htpasswd", "credentials.json",
)  # fmt: skip
# Templates that document the variables without values: useful to index.
SECRET_ALLOWED: frozenset[str] = frozenset(
    {".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults"}
)


@dataclass(slots=True)
class DiscoveryOptions:
    max_file_bytes: int = 1024 * 1024
    extra_ignore: list[str] = field(default_factory=list)  # gitignore-style, relative to the root
    index_secrets: bool = False
    extra_extensions: list[str] = field(default_factory=list)  # e.g. [".map"]: beat the built-in file rules
    exclude_dirs: list[str] = field(default_factory=list)  # absolute real paths never entered (our home)


# ---------------------------------------------------------------------------------------------- patterns

_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "digit": "0-9",
    "lower": "a-z",
    "upper": "A-Z",
    "space": " \\t\\n\\r\\f\\v",
    "xdigit": "0-9A-Fa-f",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
}


def _bracket(glob: str, i: int) -> tuple[str, int] | None:
    """Translate the ``[...]`` starting at ``glob[i]``; None if it is not closed (then "[" is literal)."""
    j = i + 1
    negate = j < len(glob) and glob[j] in "!^"
    if negate:
        j += 1
    parts: list[str] = []
    first = True
    while j < len(glob):
        c = glob[j]
        if c == "]" and not first:
            body = "".join(parts)
            # a class never matches "/" in a path pattern (git's FNM_PATHNAME)
            return (f"[^/{body}]" if negate else f"(?!/)[{body}]"), j + 1
        first = False
        if c == "\\" and j + 1 < len(glob):
            parts.append(re.escape(glob[j + 1]))
            j += 2
        elif c == "[" and glob.startswith("[:", j):
            end = glob.find(":]", j + 2)
            if end < 0 or glob[j + 2 : end] not in _POSIX_CLASSES:
                parts.append("\\[")
                j += 1
            else:
                parts.append(_POSIX_CLASSES[glob[j + 2 : end]])
                j = end + 2
        elif c == "-":
            parts.append("-")
            j += 1
        else:
            parts.append(re.escape(c))
            j += 1
    return None


def glob_to_regex(glob: str) -> str:
    """Git wildmatch (with FNM_PATHNAME) as a regex to ``fullmatch``: ``*``/``?`` stay within one path
    component, ``**`` as a whole component spans any number of folders, ``\\`` escapes."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            j = i
            while j < n and glob[j] == "*":
                j += 1
            whole_component = j - i >= 2 and (i == 0 or glob[i - 1] == "/") and (j == n or glob[j] == "/")
            if not whole_component:
                out.append("[^/]*")
            elif j == n:  # "a/**" or "**": everything below
                out.append(".*")
            else:  # "**/": zero or more folders
                out.append("(?:.*/)?")
                j += 1
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (bracket := _bracket(glob, i)) is not None:
            out.append(bracket[0])
            i = bracket[1]
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class GitPattern:
    """One parsed gitignore line."""

    text: str
    negate: bool
    dir_only: bool
    basename: bool  # no "/" in the pattern: matches the last component at any depth
    regex: re.Pattern[str]

    def matches(self, path: str, name: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(name if self.basename else path) is not None


def parse_gitignore(lines: Iterable[str]) -> list[GitPattern]:
    """Parse gitignore lines (comments, blank lines, ``!``, trailing ``/``, leading ``/``, escapes)."""
    patterns: list[GitPattern] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        while line.endswith(" ") and not line.endswith("\\ "):  # trailing spaces unless escaped
            line = line[:-1]
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        body = line[1:] if negate else line
        dir_only = body.endswith("/")
        body = body.rstrip("/")
        basename = "/" not in body
        body = body.removeprefix("/")
        if not body:
            continue
        try:
            regex = re.compile(glob_to_regex(body), re.DOTALL)
        except re.error:  # a pattern git would also never match: drop it rather than fail the walk
            continue
        patterns.append(GitPattern(raw.strip(), negate, dir_only, basename, regex))
    return patterns


class _Layer:
    """The patterns of one ignore source, matched against paths relative to that source's folder."""

    __slots__ = ("_any_name", "_any_path", "patterns", "prefix", "source", "strip")

    def __init__(self, source: str, patterns: Sequence[GitPattern], strip: int = 0, prefix: str = ""):
        self.source = source
        self.patterns = list(patterns)
        self.strip = strip  # chars of the root-relative path to drop ("sub/" for sub/.gitignore)
        self.prefix = prefix  # prepended for ignore files above the root ("myroot/")
        # One alternation per kind: most paths match nothing, and that answer costs one regex call.
        by_name = [p.regex.pattern for p in self.patterns if p.basename]
        by_path = [p.regex.pattern for p in self.patterns if not p.basename]
        self._any_name = re.compile("|".join(f"(?:{r})" for r in by_name), re.DOTALL) if by_name else None
        self._any_path = re.compile("|".join(f"(?:{r})" for r in by_path), re.DOTALL) if by_path else None

    def decide(self, rel: str, name: str, is_dir: bool) -> bool | None:
        """True = ignored, False = re-included by a negation, None = no pattern matches."""
        path = self.prefix + rel[self.strip :]
        if not (
            (self._any_name is not None and self._any_name.fullmatch(name))
            or (self._any_path is not None and self._any_path.fullmatch(path))
        ):
            return None
        for pattern in reversed(self.patterns):
            if pattern.matches(path, name, is_dir):
                return not pattern.negate
        return None


def _decide(layers: Iterable[_Layer], rel: str, name: str, is_dir: bool) -> bool | None:
    for layer in layers:
        verdict = layer.decide(rel, name, is_dir)
        if verdict is not None:
            return verdict
    return None


def _read_layer(path: Path, strip: int = 0, prefix: str = "") -> _Layer | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):  # missing, unreadable, a folder: as if absent (git does the same)
        return None
    patterns = parse_gitignore(text.splitlines())
    return _Layer(str(path), patterns, strip, prefix) if patterns else None


class _NameSet:
    """Fast matcher for single-name globs: exact names, ``*suffix`` via str.endswith, else one regex."""

    def __init__(self, globs: Iterable[str]):
        names: set[str] = set()
        suffixes: list[str] = []
        others: list[str] = []
        for glob in globs:
            if not any(c in glob for c in "*?[\\"):
                names.add(glob)
            elif glob.startswith("*") and not any(c in glob[1:] for c in "*?[\\"):
                suffixes.append(glob[1:])
            else:
                others.append(glob_to_regex(glob))
        self.names = frozenset(names)
        self.suffixes = tuple(suffixes)
        self.regex = re.compile("|".join(f"(?:{r})" for r in others)) if others else None

    def __contains__(self, name: str) -> bool:
        return (
            name in self.names
            or (bool(self.suffixes) and name.endswith(self.suffixes))
            or (self.regex is not None and self.regex.fullmatch(name) is not None)
        )


_BUILTIN_DIRS = _NameSet(p[:-1] for p in BUILTIN_IGNORES if p.endswith("/"))
_BUILTIN_FILES = _NameSet(p.lower() for p in BUILTIN_IGNORES if not p.endswith("/"))
_SECRETS = _NameSet(p.lower() for p in SECRET_PATTERNS)


def is_secret_name(name: str) -> bool:
    """Whether a file name looks like credentials (``.env.example`` and friends are not)."""
    lower = name.lower()
    return lower not in SECRET_ALLOWED and lower in _SECRETS


def _find_git_dirs(root: Path) -> tuple[Path | None, Path | None]:
    """(work tree top, git dir) of the repository enclosing ``root``, or (None, None)."""
    for top in (root, *root.parents):
        dot_git = top / ".git"
        if dot_git.is_dir():
            return top, dot_git
        if dot_git.is_file():  # worktree / submodule: "gitdir: <path>"
            try:
                line = dot_git.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                return top, None
            if not line.startswith("gitdir:"):
                return top, None
            git_dir = (top / line.removeprefix("gitdir:").strip()).resolve()
            try:  # linked worktrees keep info/exclude in the main repository's git dir
                common = (git_dir / "commondir").read_text(encoding="utf-8").strip()
                git_dir = (git_dir / common).resolve()
            except OSError:
                pass
            return top, git_dir
    return None, None


_IGNORE, _KEEP, _MAYBE = 1, 2, 3  # folder verdicts; _KEEP = re-included by our own patterns (no venv check)


def _norm_rel(rel_path: str) -> str:
    rel = rel_path.replace(os.sep, "/") if os.sep != "/" else rel_path
    while rel.startswith("./"):
        rel = rel[2:]
    rel = rel.strip("/")
    return "" if rel == "." else rel


class IgnoreRules:
    """All ignore rules of one root; also used by the file watcher to filter events without walking.

    Ignore files are read lazily, once per folder, and cached; call :meth:`invalidate` when one changes
    (or appears). Paths are POSIX, relative to the root.
    """

    def __init__(self, root: Path, options: DiscoveryOptions | None = None):
        self.root = Path(root).resolve()
        self._given_root = os.path.abspath(root)
        self.options = options or DiscoveryOptions()
        self._root_str = str(self.root)
        exts = {
            e.lower() if e.startswith(".") else "." + e.lower() for e in self.options.extra_extensions if e
        }
        self._extra_ext = tuple(sorted(exts))
        self._own: dict[str, _Layer | None] = {}  # folder -> its .gitignore
        self._chains: dict[str, tuple[_Layer, ...]] = {}  # folder -> git layers for its entries
        self._dirs: dict[str, int] = {}  # folder -> pattern-based verdict (_IGNORE, _KEEP, _MAYBE)
        self._load_root_level()

    def _load_root_level(self) -> None:
        tool = [_Layer("extra_ignore", parse_gitignore(self.options.extra_ignore))]
        tool.append(_read_layer(self.root / CONTEXTIGNORE) or _Layer(CONTEXTIGNORE, []))
        self._tool = tuple(layer for layer in tool if layer.patterns)
        outer: list[_Layer] = []
        top, git_dir = _find_git_dirs(self.root)
        if top is not None:
            for folder in self.root.parents:  # .gitignore files above the root, deepest first
                if len(folder.parts) < len(top.parts):
                    break
                prefix = self.root.relative_to(folder).as_posix() + "/"
                if (layer := _read_layer(folder / GITIGNORE, prefix=prefix)) is not None:
                    outer.append(layer)
            if git_dir is not None:
                prefix = "" if top == self.root else self.root.relative_to(top).as_posix() + "/"
                if (layer := _read_layer(git_dir / "info" / "exclude", prefix=prefix)) is not None:
                    outer.append(layer)
        self._outer = tuple(outer)

    # -- public ---------------------------------------------------------------------------------------

    def is_ignored(self, rel_path: str, is_dir: bool) -> bool:
        """Whether discovery would skip this path (itself or because a parent folder is skipped)."""
        return self.classify(rel_path, is_dir) is not None

    def classify(self, rel_path: str, is_dir: bool) -> str | None:
        """None if indexed, else IGNORED (silent) or SECRET (reported); checks every parent folder."""
        if os.path.isabs(rel_path):  # watchers report absolute paths, maybe via the unresolved root
            given = self._given_root
            inside_given = rel_path == given or rel_path.startswith(given.rstrip(os.sep) + os.sep)
            rel_path = os.path.relpath(rel_path, given if inside_given else self._root_str)
        rel = _norm_rel(rel_path)
        if not rel or rel == ".." or rel.startswith("../"):
            return None if not rel else IGNORED
        parts = rel.split("/")
        parent = ""
        for part in parts[:-1]:
            folder = f"{parent}/{part}" if parent else part
            if self._dir_ignored(parent, folder, part):
                return IGNORED
            parent = folder
        return self.classify_entry(parent, rel, parts[-1], is_dir)

    def invalidate(self, rel_dir: str = "") -> None:
        """Forget cached ignore files: of ``rel_dir`` (a path to an ignore file is accepted too), or all
        of them for the root (which also re-reads .contextignore and .git/info/exclude)."""
        rel = _norm_rel(rel_dir)
        head, _, tail = rel.rpartition("/")
        if tail in (GITIGNORE, CONTEXTIGNORE):
            rel = head
        self._chains.clear()
        self._dirs.clear()
        if not rel or rel.startswith(".git"):
            self._own.clear()
            self._load_root_level()
        else:
            self._own.pop(rel, None)

    # -- used by the walk (parents already known not to be ignored) --------------------------------------

    def classify_entry(self, parent: str, rel: str, name: str, is_dir: bool) -> str | None:
        """Verdict for ``rel`` (= ``parent/name``) assuming no parent folder is ignored."""
        if is_dir:
            return IGNORED if self._dir_ignored(parent, rel, name) else None
        tool = _decide(self._tool, rel, name, False) if self._tool else None
        if tool:
            return IGNORED
        if tool is None:
            if _decide(self.chain(parent), rel, name, False):
                return IGNORED
            lower = name.lower()
            if lower in _BUILTIN_FILES and not (self._extra_ext and lower.endswith(self._extra_ext)):
                return IGNORED
        if not self.options.index_secrets and is_secret_name(name):
            return SECRET
        return None

    def _dir_ignored(self, parent: str, rel: str, name: str) -> bool:
        verdict = self._dirs.get(rel)
        if verdict is None:
            tool = _decide(self._tool, rel, name, True) if self._tool else None
            if tool is not None:
                verdict = _IGNORE if tool else _KEEP
            elif _decide(self.chain(parent), rel, name, True) or name in _BUILTIN_DIRS:
                verdict = _IGNORE
            else:
                verdict = _MAYBE
            self._dirs[rel] = verdict
        if verdict != _MAYBE:
            return verdict == _IGNORE
        # Not cached: a virtualenv being created gets its marker just after its folder appears.
        return os.path.isfile(f"{self._root_str}/{rel}/{VENV_MARKER}")

    def chain(self, folder: str) -> tuple[_Layer, ...]:
        """Git layers that apply to the entries of ``folder``, deepest first."""
        chain = self._chains.get(folder)
        if chain is None:
            parent_chain = self._outer if not folder else self.chain(folder.rpartition("/")[0])
            own = self._own_layer(folder)
            chain = (own, *parent_chain) if own is not None else parent_chain
            self._chains[folder] = chain
        return chain

    def _own_layer(self, folder: str) -> _Layer | None:
        if folder not in self._own:
            path = self.root / folder / GITIGNORE if folder else self.root / GITIGNORE
            self._own[folder] = _read_layer(path, strip=len(folder) + 1 if folder else 0)
        return self._own[folder]
