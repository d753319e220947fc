"""Where identifiers are used: call sites, imports, type uses and arguments, from the tree-sitter parse.

Stored at index time (the ``refs`` table) so ``find_references`` is a lookup, not a scan. Each
language has a handful of tree-sitter query patterns, run by the C query engine (a Python walk over
every node costs about ten times more). A pattern a grammar version does not know is skipped, so a
grammar update degrades one kind of reference instead of breaking indexing. Names are matched
textually: a method call ``obj.load()`` is a reference to every ``load``; precise enough for an
agent that then reads the lines, and it needs no type inference.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from claude_context.records import Ref

from .languages import SPECS

log = logging.getLogger(__name__)

_JS_COMMON = """
(call_expression function: (identifier) @call)
(call_expression function: (member_expression property: (property_identifier) @call))
(new_expression constructor: (identifier) @call)
(new_expression constructor: (member_expression property: (property_identifier) @call))
(import_specifier name: (identifier) @import)
(import_clause (identifier) @import)
(namespace_import (identifier) @import)
(export_specifier name: (identifier) @use)
(arguments (identifier) @use)
(class_heritage (identifier) @type)
(extends_clause value: (identifier) @type)
(jsx_opening_element name: (identifier) @call)
(jsx_self_closing_element name: (identifier) @call)
"""

# C and C++: calls (plain, through a field), typedef'd and class types, identifiers as arguments.
_C_COMMON = """
(call_expression function: (identifier) @call)
(call_expression function: (field_expression field: (field_identifier) @call))
(type_identifier) @type
(argument_list (identifier) @use)
"""

# Kotlin and Swift (their grammars share these node types): calls, type uses, argument names.
_KOTLIN_SWIFT = """
(call_expression (simple_identifier) @call)
(call_expression (navigation_expression (navigation_suffix (simple_identifier) @call)))
(user_type (type_identifier) @type)
(value_argument (simple_identifier) @use)
"""

_PATTERNS: dict[str, str] = {
    "python": """
(call function: (identifier) @call)
(call function: (attribute attribute: (identifier) @call))
(decorator (identifier) @call)
(decorator (attribute attribute: (identifier) @call))
(import_from_statement name: (dotted_name (identifier) @import))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @import)))
(import_statement name: (dotted_name (identifier) @import))
(import_statement name: (aliased_import name: (dotted_name (identifier) @import)))
(type (identifier) @type)
(type (attribute attribute: (identifier) @type))
(generic_type (identifier) @type)
(type_parameter (type (identifier) @type))
(subscript value: (identifier) @type)
(class_definition superclasses: (argument_list (identifier) @type))
(class_definition superclasses: (argument_list (attribute attribute: (identifier) @type)))
(except_clause (identifier) @type)
(argument_list (identifier) @use)
(keyword_argument value: (identifier) @use)
""",
    "javascript": _JS_COMMON,
    "typescript": _JS_COMMON + "(type_identifier) @type\n",
    "tsx": _JS_COMMON + "(type_identifier) @type\n",
    "go": """
(call_expression function: (identifier) @call)
(call_expression function: (selector_expression field: (field_identifier) @call))
(type_identifier) @type
(import_spec path: (interpreted_string_literal) @import)
(argument_list (identifier) @use)
(argument_list (selector_expression field: (field_identifier) @use))
""",
    "rust": """
(call_expression function: (identifier) @call)
(call_expression function: (scoped_identifier name: (identifier) @call))
(call_expression function: (field_expression field: (field_identifier) @call))
(macro_invocation macro: (identifier) @call)
(type_identifier) @type
(use_declaration argument: (scoped_identifier name: (identifier) @import))
(use_declaration argument: (identifier) @import)
(use_list (identifier) @import)
(use_list (scoped_identifier name: (identifier) @import))
(arguments (identifier) @use)
""",
    "ruby": """
(call method: (identifier) @call)
(call receiver: (constant) @type)
(call receiver: (scope_resolution name: (constant) @type))
(superclass (constant) @type)
(superclass (scope_resolution name: (constant) @type))
(argument_list (constant) @use)
(argument_list (scope_resolution name: (constant) @use))
(argument_list (identifier) @use)
""",
    "kotlin": _KOTLIN_SWIFT + "(import_header (identifier (simple_identifier) @import .))\n",
    "c": _C_COMMON,
    "cpp": _C_COMMON
    + """
(call_expression function: (qualified_identifier name: (identifier) @call))
(call_expression function: (template_function name: (identifier) @call))
(qualified_identifier name: (type_identifier) @type)
""",
    "csharp": """
(invocation_expression function: (identifier) @call)
(invocation_expression function: (member_access_expression name: (identifier) @call))
(object_creation_expression type: (identifier) @call)
(object_creation_expression type: (generic_name (identifier) @call))
(base_list (identifier) @type)
(base_list (generic_name (identifier) @type))
(parameter type: (identifier) @type)
(variable_declaration type: (identifier) @type)
(method_declaration returns: (identifier) @type)
(property_declaration type: (identifier) @type)
(generic_name (identifier) @type)
(type_argument_list (identifier) @type)
(using_directive (qualified_name name: (identifier) @import))
(using_directive (identifier) @import)
(member_access_expression expression: (identifier) @use)
(argument (identifier) @use)
""",
    "php": """
(function_call_expression function: (name) @call)
(member_call_expression name: (name) @call)
(scoped_call_expression name: (name) @call)
(scoped_call_expression scope: (name) @type)
(object_creation_expression (name) @call)
(named_type (name) @type)
(base_clause (name) @type)
(class_interface_clause (name) @type)
(namespace_use_clause (qualified_name (name) @import .))
(namespace_use_clause (name) @import)
""",
    "swift": _KOTLIN_SWIFT + "(import_declaration (identifier (simple_identifier) @import .))\n",
    "elixir": """
(call target: (identifier) @call)
(call target: (dot right: (identifier) @call))
(call target: (dot left: (alias) @type))
(call target: (identifier) @k (arguments (alias) @import) (#any-of? @k "alias" "import" "require" "use"))
(arguments (identifier) @use)
""",
    "java": """
(method_invocation name: (identifier) @call)
(object_creation_expression type: (type_identifier) @call)
(type_identifier) @type
(import_declaration (scoped_identifier name: (identifier) @import))
(argument_list (identifier) @use)
""",
}

# Parents whose ``name`` child *defines* the type named there (not a use of it).
_DEFINING = frozenset(
    {
        "type_spec",
        "type_alias_declaration",
        "interface_declaration",
        "class_declaration",
        "abstract_class_declaration",
        "enum_declaration",
        "record_declaration",
        "struct_item",
        "class_specifier",
        "struct_specifier",
        "union_specifier",
        "enum_specifier",
        "alias_declaration",
        "enum_item",
        "trait_item",
        "type_item",
        "union_item",
        "type_parameter",
        "constraint",
    }
)
LANGUAGES = frozenset(_PATTERNS) | frozenset(SPECS)  # uses where patterns exist, definitions everywhere


@functools.cache
def _queries(language: str) -> tuple[Any, ...]:
    """The language's patterns compiled as one query (one pass over the tree); a pattern naming a
    node type this grammar lacks is left out (found by compiling each alone), not the language."""
    from tree_sitter import Query
    from tree_sitter_language_pack import get_language

    lang = get_language(SPECS[language].grammar)  # type: ignore[arg-type]
    try:
        return (Query(lang, _PATTERNS[language]),)
    except Exception:  # a node type this grammar version does not have: find which, below
        pass
    valid = []
    for pattern in _PATTERNS[language].strip().splitlines():
        try:
            Query(lang, pattern)
            valid.append(pattern)
        except Exception as exc:  # a node type this grammar version does not have
            log.debug("%s: reference pattern skipped (%s): %s", language, exc, pattern)
    return (Query(lang, "\n".join(valid)),) if valid else ()


def extract_refs(language: str, text: str) -> list[Ref]:
    """The references in one file, sorted by line, then its definitions (``find_symbol``); [] on
    any parser trouble (references are a help, never a reason to fail indexing). A language
    without use patterns gets its definitions only."""
    if language not in LANGUAGES or not text:
        return []
    try:
        return _extract(language, text)
    except (Exception, RecursionError) as exc:
        log.warning("reference extraction failed for a %s file: %s", language, exc)
        return []


def _extract(language: str, text: str) -> list[Ref]:
    from tree_sitter import QueryCursor

    from .treesitter import definitions, parse_with_deadline

    src = text.encode("utf-8", "surrogatepass")
    root = parse_with_deadline(SPECS[language].grammar, src).root_node
    found: dict[tuple[str, int], str] = {}
    for query in _queries(language) if language in _PATTERNS else ():
        for kind, nodes in QueryCursor(query).captures(root).items():
            if kind not in _RANK:  # a capture only a predicate needs (@k: Elixir's ``alias`` keyword)
                continue
            for node in nodes:
                name = _name(src, node, kind)
                if not name or (kind == "type" and _defines(node)) or name in _NOT_NAMES.get(language, ()):
                    continue
                key = (name, node.start_point[0] + 1)
                if _RANK.get(kind, 9) < _RANK.get(found.get(key, ""), 9):
                    found[key] = kind  # one row per name and line: the most telling kind
    uses = sorted((Ref(name, line, kind) for (name, line), kind in found.items()), key=_order)
    defined = [
        Ref(name, start, "definition", end, symbol, signature, kind)
        for name, symbol, kind, start, end, signature in definitions(SPECS[language], text, root)
    ]
    return uses + defined


_RANK = {"call": 0, "import": 1, "type": 2, "use": 3}
# Calls that are the language's own forms, not uses of a name (Elixir defines with macro calls).
_NOT_NAMES = {
    "elixir": frozenset(
        "def defp defmacro defmacrop defmodule defprotocol defimpl defstruct defdelegate defguard "
        "defexception defcallback alias import require use quote unquote if unless case cond with "
        "for fn raise receive try".split()
    )
}


def _order(r: Ref) -> tuple[int, str]:
    return r.line, r.name


def _name(src: bytes, node: Any, kind: str) -> str:
    raw = src[node.start_byte : node.end_byte].decode("utf-8", "replace")  # node.text is 10x slower
    if kind == "import" and raw[:1] in "\"'`":  # Go: import "net/http" -> http
        raw = raw.strip("\"'`").rstrip("/").rsplit("/", 1)[-1]
    elif kind in ("import", "type") and "." in raw and " " not in raw:  # Ecto.Changeset -> Changeset
        raw = raw.rsplit(".", 1)[-1]
    return raw[:200]


def _defines(node: Any) -> bool:
    parent = node.parent
    return (
        parent is not None
        and parent.type in _DEFINING
        and (named := parent.child_by_field_name("name")) is not None
        and named.id == node.id
    )
