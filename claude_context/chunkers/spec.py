"""What a language table is made of: ``LangSpec``, the ``Def`` a hook returns, and the helpers
hooks share (``languages.py`` holds the tables, ``javascript.py`` the JS/TS hooks)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class Def:
    """A definition found among a container's children.

    ``node`` is the whole span (with wrappers such as decorators or ``export``), ``core`` the
    definition proper (signature, body), ``body`` the node whose children are its members.
    """

    node: Any
    core: Any
    kind: str
    name: str
    body: Any = None
    always_split: bool = False  # namespaces: members are always their own chunks
    name_byte: int = -1  # where the name starts, to find the signature line
    start: int = 0  # line span, filled in by the engine
    end: int = 0


TRANSPARENT = object()  # hook result: scan this node's children as if they were siblings
DEFAULT = object()  # hook result: fall back to the generic table lookup

ClassifyResult = Def | object | None


class Classifier(Protocol):
    spec: LangSpec

    def classify(self, node: Any) -> ClassifyResult: ...


Hook = Callable[[Any, Classifier], ClassifyResult]

# Kinds whose function members are methods.
CLASS_LIKE = frozenset({"class", "struct", "interface", "trait", "impl", "enum"})


@dataclass(frozen=True, slots=True)
class LangSpec:
    grammar: str
    defs: Mapping[str, str]  # node type -> kind
    wrappers: frozenset[str] = frozenset()  # node holds one definition (decorators, export, template)
    transparent: frozenset[str] = frozenset()  # children are scanned at the parent's level
    body_types: frozenset[str] = frozenset()  # member containers when there is no "body" field
    name_types: frozenset[str] = frozenset()  # name child types when there is no "name" field
    attach_types: frozenset[str] = frozenset()  # sibling nodes glued to the next definition
    line_comments: tuple[str, ...] = ("//",)  # line prefixes glued to the next definition
    block_comment: tuple[str, str] | None = ("/*", "*/")
    hooks: Mapping[str, Hook] = field(default_factory=dict)


def text_of(node: Any) -> str:
    raw = node.text if node is not None else None
    return raw.decode("utf-8", "replace") if raw else ""


_GENERIC_RE = re.compile(r"<[^<>]*>|\[[^\[\]]*\]")
_SPACE_RE = re.compile(r"\s+")


def clean_name(raw: str) -> str:
    """Turn a name as written into a symbol path part: no generics, no spaces, ``::`` -> ``.``."""
    name = _SPACE_RE.sub("", raw)
    if "operator" not in name:
        prev = None
        while prev != name and ("<" in name or "[" in name):
            prev, name = name, _GENERIC_RE.sub("", name)
    name = name.replace("::", ".").replace("\\", ".").replace(":", ".").replace("->", ".")
    return name.strip(".'\"`")


def make_def(
    node: Any,
    core: Any,
    kind: str,
    name: Any,
    body: Any = None,
    *,
    always_split: bool = False,
) -> Def:
    """Build a Def; ``name`` is a node (its text is cleaned) or a ready string."""
    if isinstance(name, str) or name is None:
        return Def(node, core, kind, name or "", body, always_split)
    return Def(node, core, kind, clean_name(text_of(name)), body, always_split, name.start_byte)


def generic_def(node: Any, spec: LangSpec, kind: str) -> Def:
    name = node.child_by_field_name("name")
    if name is None and spec.name_types:
        name = next((c for c in node.named_children if c.type in spec.name_types), None)
    body = node.child_by_field_name("body")
    if body is None and spec.body_types:
        body = next((c for c in node.named_children if c.type in spec.body_types), None)
    if name is None and kind != "namespace":  # an unnamed namespace adds nothing to symbol paths
        name = "<anonymous>"
    return make_def(node, node, kind, name, body, always_split=kind == "namespace")
