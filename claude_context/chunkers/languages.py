"""Which language a file is, and how each tree-sitter grammar spells "a definition".

The chunking engine (``treesitter.py``) is generic; everything grammar-specific lives here as a
``LangSpec`` table (definition node type -> kind, wrappers, transparent nodes, comment syntax)
plus a few small named hooks for shapes a table cannot express (JS assignments, Go receivers,
C declarators...). Node types were taken from parsing samples with tree-sitter-language-pack 0.13.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from .javascript import _JS_COMMON, _JS_DEFS, _JS_HOOKS, _TS_DEFS, _TS_HOOKS
from .spec import (
    CLASS_LIKE,
    DEFAULT,
    TRANSPARENT,
    Classifier,
    ClassifyResult,
    Def,
    Hook,
    LangSpec,
    clean_name,
    generic_def,
    make_def,
    text_of,
)

__all__ = [
    "CLASS_LIKE",
    "DEFAULT",
    "SPECS",
    "TRANSPARENT",
    "ClassifyResult",
    "Def",
    "LangSpec",
    "detect_language",
]

# --------------------------------------------------------------------------- detection

_EXTENSIONS: dict[str, str] = {
    # languages chunked with tree-sitter
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".kt": "kotlin", ".kts": "kotlin",
    ".scala": "scala", ".sc": "scala",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp",
    ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp", ".tpp": "cpp",
    ".cs": "csharp",
    ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby", ".ru": "ruby",
    ".php": "php", ".phtml": "php",
    ".swift": "swift",
    ".sh": "bash", ".bash": "bash", ".zsh": "bash", ".ksh": "bash",
    ".lua": "lua",
    ".ex": "elixir", ".exs": "elixir",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".mkd": "markdown",
    # well-known text formats and languages without a chunker: a label, then line windows
    ".json": "json", ".jsonc": "json", ".json5": "json", ".jsonl": "json", ".ipynb": "json",
    ".yaml": "yaml", ".yml": "yaml",
    ".toml": "toml",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".css": "css", ".scss": "scss", ".sass": "scss", ".less": "less",
    ".sql": "sql",
    ".xml": "xml", ".xsd": "xml", ".xsl": "xml", ".xslt": "xml", ".plist": "xml", ".svg": "xml",
    ".ini": "ini", ".properties": "properties", ".env": "dotenv",
    ".dockerfile": "dockerfile",
    ".mk": "makefile", ".mak": "makefile",
    ".cmake": "cmake",
    ".rst": "rst", ".txt": "txt", ".adoc": "asciidoc", ".tex": "latex",
    ".csv": "csv", ".tsv": "csv",
    ".graphql": "graphql", ".gql": "graphql", ".proto": "protobuf",
    ".vue": "vue", ".svelte": "svelte",
    ".dart": "dart", ".erl": "erlang", ".hs": "haskell",
    ".ml": "ocaml", ".clj": "clojure", ".r": "r", ".jl": "julia", ".zig": "zig", ".nim": "nim",
    ".pl": "perl", ".pm": "perl", ".groovy": "groovy", ".gradle": "groovy", ".tf": "hcl",
    ".m": "objc", ".mm": "objc", ".ps1": "powershell", ".bat": "batch", ".cmd": "batch",
    ".vim": "vim", ".el": "elisp", ".fs": "fsharp", ".v": "verilog", ".sol": "solidity",
}  # fmt: skip

_FILENAMES: dict[str, str] = {
    "dockerfile": "dockerfile", "containerfile": "dockerfile",
    "makefile": "makefile", "gnumakefile": "makefile",
    "cmakelists.txt": "cmake",
    "gemfile": "ruby", "rakefile": "ruby", "vagrantfile": "ruby", "podfile": "ruby", "fastfile": "ruby",
    "jenkinsfile": "groovy",
    "bashrc": "bash", ".bashrc": "bash", "bash_profile": "bash", ".bash_profile": "bash",
    ".bash_aliases": "bash", ".bash_logout": "bash", ".profile": "bash", ".zshrc": "bash",
    ".zprofile": "bash", ".zshenv": "bash", "pkgbuild": "bash", "apkbuild": "bash",
    "readme": "txt", "license": "txt", "copying": "txt", "authors": "txt", "changelog": "txt",
}  # fmt: skip


def detect_language(path: str) -> str | None:
    """Language label from the file name or extension; None when unknown (indexed as "text")."""
    name = PurePosixPath(path.replace("\\", "/")).name
    lower = name.lower()
    if lower in _FILENAMES:
        return _FILENAMES[lower]
    if lower.startswith("dockerfile.") or lower.endswith(".dockerfile"):
        return "dockerfile"
    if lower.endswith("bashrc"):
        return "bash"
    suffix = PurePosixPath(lower).suffix
    return _EXTENSIONS.get(suffix) if suffix else None


# --------------------------------------------------------------------------- hooks: others


_GO_TYPE_KINDS = {"struct_type": "struct", "interface_type": "interface"}


def _go_type_spec(spec_node: Any, outer: Any) -> Def:
    t = spec_node.child_by_field_name("type")
    kind = _GO_TYPE_KINDS.get(t.type if t is not None else "", "type")
    return make_def(outer, spec_node, kind, spec_node.child_by_field_name("name"))


def _go_type_declaration(node: Any, c: Classifier) -> ClassifyResult:
    specs = [n for n in node.named_children if n.type in ("type_spec", "type_alias")]
    if len(specs) == 1:
        found = _go_type_spec(specs[0], node)
        found.core = node
        return found
    return TRANSPARENT if specs else None


def _go_spec(node: Any, c: Classifier) -> ClassifyResult:
    return _go_type_spec(node, node)


def _go_method(node: Any, c: Classifier) -> ClassifyResult:
    """``func (r *Router[T]) Handle()`` -> ``Router.Handle``."""
    receiver = text_of(node.child_by_field_name("receiver")).strip("() \t\n")
    recv_type = receiver.split()[-1] if receiver.split() else ""
    recv_type = clean_name(recv_type.lstrip("*&"))
    name = node.child_by_field_name("name")
    found = make_def(node, node, "method", name, node.child_by_field_name("body"))
    if recv_type:
        found.name = f"{recv_type}.{found.name}"
    return found


def _rust_impl(node: Any, c: Classifier) -> ClassifyResult:
    """``impl<T> Trait for Foo<T>`` -> ``Foo``; its functions become ``Foo.method``."""
    target = node.child_by_field_name("type")
    while target is not None and target.type in ("generic_type", "reference_type", "pointer_type"):
        target = target.child_by_field_name("type")  # &'a mut Foo<T> -> Foo
    return make_def(node, node, "impl", target, node.child_by_field_name("body"))


def _rust_mod(node: Any, c: Classifier) -> ClassifyResult:
    body = node.child_by_field_name("body")
    if body is None:  # `mod foo;` is just a reference to another file
        return None
    return make_def(node, node, "namespace", node.child_by_field_name("name"), body, always_split=True)


_C_SPECIFIERS = {
    "class_specifier": "class",
    "struct_specifier": "struct",
    "union_specifier": "struct",
    "enum_specifier": "enum",
}


def _c_function(node: Any, c: Classifier) -> ClassifyResult:
    """Name from the declarator chain; ``Foo::bar`` (defined outside its class) is a method ``Foo.bar``."""
    decl = node.child_by_field_name("declarator")
    depth = 0
    while decl is not None and decl.type != "function_declarator" and depth < 8:
        decl = decl.child_by_field_name("declarator")
        depth += 1
    name = decl.child_by_field_name("declarator") if decl is not None else None
    qualified = name is not None and "::" in text_of(name)
    return make_def(node, node, "method" if qualified else "function", name, node.child_by_field_name("body"))


def _c_specifier(node: Any, c: Classifier) -> ClassifyResult:
    body = node.child_by_field_name("body")
    if body is None:  # forward declaration or use of the type
        return None
    name = node.child_by_field_name("name")
    return make_def(node, node, _C_SPECIFIERS[node.type], name if name is not None else "<anonymous>", body)


def _c_declaration(node: Any, c: Classifier) -> ClassifyResult:
    """``typedef struct {...} Foo;`` / ``struct S {...} s;``: the type definition inside."""
    spec = node.child_by_field_name("type")
    if spec is None or spec.type not in _C_SPECIFIERS or spec.child_by_field_name("body") is None:
        return None
    found = _c_specifier(spec, c)
    if isinstance(found, Def):
        found.node = node
        if found.name == "<anonymous>":
            declarator = node.child_by_field_name("declarator")
            if declarator is not None:
                found.name = clean_name(text_of(declarator))
                found.name_byte = declarator.start_byte
    return found


def _cpp_namespace(node: Any, c: Classifier) -> ClassifyResult:
    return make_def(
        node, node, "namespace", node.child_by_field_name("name"), node.child_by_field_name("body"),
        always_split=True,
    )  # fmt: skip


def _swift_class(node: Any, c: Classifier) -> ClassifyResult:
    """Swift parses class/struct/enum/extension/actor alike; the keyword says which."""
    keyword = text_of(node.child_by_field_name("declaration_kind"))
    kind = {"struct": "struct", "enum": "enum", "extension": "impl"}.get(keyword, "class")
    return make_def(node, node, kind, node.child_by_field_name("name"), node.child_by_field_name("body"))


def _kotlin_class(node: Any, c: Classifier) -> ClassifyResult:
    keywords = {ch.type for ch in node.children if not ch.is_named}
    kind = "interface" if "interface" in keywords else "enum" if "enum" in keywords else "class"
    found = generic_def(node, c.spec, kind)
    return found


def _kotlin_companion(node: Any, c: Classifier) -> ClassifyResult:
    found = generic_def(node, c.spec, "class")
    if not found.name:
        found.name = "Companion"
    return found


def _ruby_singleton_method(node: Any, c: Classifier) -> ClassifyResult:
    """``def self.build`` -> ``build`` (inside ``Foo``: ``Foo.build``); ``def Foo.build`` -> ``Foo.build``."""
    found = generic_def(node, c.spec, "function")
    obj = node.child_by_field_name("object")
    if obj is not None and obj.type != "self":
        found.name = f"{clean_name(text_of(obj))}.{found.name}"
    return found


def _swift_keyword_named(node: Any, c: Classifier) -> ClassifyResult:
    """``init`` / ``deinit`` / ``subscript`` have no name node: the keyword is the name."""
    return make_def(
        node, node, "function", node.type.removesuffix("_declaration"), node.child_by_field_name("body")
    )


def _python_type_alias(node: Any, c: Classifier) -> ClassifyResult:
    """``type Vector = list[float]`` (Python 3.12)."""
    return make_def(node, node, "type", node.child_by_field_name("left"))


def _lua_assignment(node: Any, c: Classifier) -> ClassifyResult:
    """``M.f = function() end`` / ``local f = function() end``."""
    if node.type == "variable_declaration":
        inner = next((n for n in node.named_children if n.type == "assignment_statement"), None)
        if inner is None:
            return None
    else:
        inner = node
    targets = next((n for n in inner.named_children if n.type == "variable_list"), None)
    values = next((n for n in inner.named_children if n.type == "expression_list"), None)
    if targets is None or values is None or not targets.named_children or not values.named_children:
        return None
    value = values.named_children[0]
    if value.type != "function_definition":
        return None
    return make_def(node, value, "function", targets.named_children[0], value.child_by_field_name("body"))


_ELIXIR_CONTAINERS = {"defmodule": "class", "defprotocol": "interface", "defimpl": "impl"}
_ELIXIR_FUNCTIONS = frozenset(
    {"def", "defp", "defmacro", "defmacrop", "defguard", "defguardp", "defdelegate", "defn", "defnp"}
)
_ELIXIR_SPECS = frozenset({"callback", "macrocallback"})


def _elixir_call(node: Any, c: Classifier, kind: str | None = None) -> ClassifyResult:
    """Elixir has no definition syntax, only macro calls: ``defmodule A.B do ... end`` is a class
    ``A.B``; ``def f(x) when ... do``, ``defp``, ``defmacro``... are functions ``f``; any other call
    (``schema "users" do``, ``quote do``) is ordinary module code."""
    macro = text_of(node.child_by_field_name("target"))
    kind = kind or _ELIXIR_CONTAINERS.get(macro) or ("function" if macro in _ELIXIR_FUNCTIONS else None)
    args = next((n for n in node.named_children if n.type == "arguments"), None)
    if kind is None or args is None or not args.named_children:
        return None
    head = args.named_children[0]
    while head.type == "binary_operator":  # `f(x) when is_integer(x)`, `a <> b`
        head = head.child_by_field_name("left") or head.named_children[0]
    if head.type == "call":  # `f(x)` -> f
        head = head.child_by_field_name("target") or head
    body = next((n for n in node.named_children if n.type == "do_block"), None)
    return make_def(node, node, kind, head, body)


def _elixir_attribute(node: Any, c: Classifier) -> ClassifyResult:
    """``@callback get(queryable, id) :: t`` declares a behaviour's function, like an interface
    method; every other module attribute (``@doc``, ``@spec``...) is glued to what follows."""
    call = node.child_by_field_name("operand")
    if call is None or call.type != "call":
        return None
    if text_of(call.child_by_field_name("target")) not in _ELIXIR_SPECS:
        return None
    found = _elixir_call(call, c, kind="function")
    if isinstance(found, Def):
        found.node = found.core = node
    return found


def _namespace_with_body(node: Any, c: Classifier) -> ClassifyResult:
    """PHP ``namespace X { ... }`` / Scala ``package x { ... }``; the file-level form is module code."""
    body = node.child_by_field_name("body")
    if body is None:
        return None
    return make_def(node, node, "namespace", node.child_by_field_name("name"), body, always_split=True)


# --------------------------------------------------------------------------- the table

_C_COMMON: dict[str, Any] = {
    "transparent": frozenset(
        {"ERROR", "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"}
    ),
    "attach_types": frozenset({"comment"}),
}
_C_HOOKS: dict[str, Hook] = {
    "function_definition": _c_function,
    "declaration": _c_declaration,
    "type_definition": _c_declaration,
    **{t: _c_specifier for t in _C_SPECIFIERS},
}

SPECS: dict[str, LangSpec] = {
    "python": LangSpec(
        grammar="python",
        defs={"function_definition": "function", "class_definition": "class"},
        wrappers=frozenset({"decorated_definition"}),
        # `if WIN: def f(): ...` / `try: ... except ImportError: def f(): ...` in compat modules
        transparent=frozenset(
            {"ERROR", "if_statement", "elif_clause", "else_clause", "try_statement", "except_clause", "block"}
        ),
        attach_types=frozenset({"comment"}),
        line_comments=("#",),
        block_comment=None,
        hooks={"type_alias_statement": _python_type_alias},
    ),
    "javascript": LangSpec(grammar="javascript", defs=_JS_DEFS, hooks=_JS_HOOKS, **_JS_COMMON),
    "typescript": LangSpec(grammar="typescript", defs=_TS_DEFS, hooks=_TS_HOOKS, **_JS_COMMON),
    "tsx": LangSpec(grammar="tsx", defs=_TS_DEFS, hooks=_TS_HOOKS, **_JS_COMMON),
    "go": LangSpec(
        grammar="go",
        defs={"function_declaration": "function"},
        transparent=frozenset({"ERROR"}),
        attach_types=frozenset({"comment"}),
        hooks={
            "method_declaration": _go_method,
            "type_declaration": _go_type_declaration,
            "type_spec": _go_spec,
            "type_alias": _go_spec,
        },
    ),
    "rust": LangSpec(
        grammar="rust",
        defs={
            "function_item": "function",
            "function_signature_item": "function",
            "struct_item": "struct",
            "union_item": "struct",
            "enum_item": "enum",
            "trait_item": "trait",
            "type_item": "type",
            "macro_definition": "function",
        },
        transparent=frozenset({"ERROR"}),
        attach_types=frozenset({"line_comment", "block_comment", "attribute_item"}),
        line_comments=("//", "#["),
        hooks={"impl_item": _rust_impl, "mod_item": _rust_mod},
    ),
    "java": LangSpec(
        grammar="java",
        defs={
            "class_declaration": "class",
            "interface_declaration": "interface",
            "enum_declaration": "enum",
            "record_declaration": "class",
            "annotation_type_declaration": "interface",
            "method_declaration": "function",
            "constructor_declaration": "function",
            "compact_constructor_declaration": "function",
        },
        transparent=frozenset({"ERROR", "enum_body_declarations"}),
        attach_types=frozenset({"line_comment", "block_comment"}),
        line_comments=("//", "@"),
    ),
    "kotlin": LangSpec(
        grammar="kotlin",
        defs={"object_declaration": "class", "function_declaration": "function", "type_alias": "type"},
        transparent=frozenset({"ERROR"}),
        body_types=frozenset({"class_body", "enum_class_body", "function_body"}),
        name_types=frozenset({"type_identifier", "simple_identifier"}),
        attach_types=frozenset({"line_comment", "multiline_comment"}),
        line_comments=("//", "@"),
        hooks={"class_declaration": _kotlin_class, "companion_object": _kotlin_companion},
    ),
    "scala": LangSpec(
        grammar="scala",
        defs={
            "class_definition": "class",
            "object_definition": "class",
            "trait_definition": "trait",
            "enum_definition": "enum",
            "function_definition": "function",
            "function_declaration": "function",
            "type_definition": "type",
            "given_definition": "function",
            "package_object": "namespace",
        },
        transparent=frozenset({"ERROR"}),
        attach_types=frozenset({"comment", "block_comment"}),
        line_comments=("//", "@"),
        hooks={"package_clause": _namespace_with_body},
    ),
    "c": LangSpec(grammar="c", defs={}, hooks=_C_HOOKS, **_C_COMMON),
    "cpp": LangSpec(
        grammar="cpp",
        defs={"alias_declaration": "type"},
        wrappers=frozenset({"template_declaration"}),
        hooks={**_C_HOOKS, "field_declaration": _c_declaration, "namespace_definition": _cpp_namespace},
        transparent=_C_COMMON["transparent"] | {"linkage_specification", "declaration_list"},
        attach_types=_C_COMMON["attach_types"],
    ),
    "csharp": LangSpec(
        grammar="csharp",
        defs={
            "namespace_declaration": "namespace",
            "class_declaration": "class",
            "struct_declaration": "struct",
            "interface_declaration": "interface",
            "enum_declaration": "enum",
            "record_declaration": "class",
            "record_struct_declaration": "struct",
            "method_declaration": "function",
            "constructor_declaration": "function",
            "destructor_declaration": "function",
            "local_function_statement": "function",
        },
        transparent=frozenset({"ERROR", "global_statement"}),
        attach_types=frozenset({"comment"}),
        line_comments=("//", "["),
    ),
    "ruby": LangSpec(
        grammar="ruby",
        defs={"class": "class", "module": "namespace", "method": "function"},
        transparent=frozenset({"ERROR", "singleton_class"}),
        attach_types=frozenset({"comment"}),
        line_comments=("#",),
        block_comment=None,
        hooks={"singleton_method": _ruby_singleton_method},
    ),
    "php": LangSpec(
        grammar="php",
        defs={
            "class_declaration": "class",
            "interface_declaration": "interface",
            "trait_declaration": "trait",
            "enum_declaration": "enum",
            "function_definition": "function",
            "method_declaration": "function",
        },
        transparent=frozenset({"ERROR"}),
        attach_types=frozenset({"comment"}),
        line_comments=("//", "#"),
        hooks={"namespace_definition": _namespace_with_body},
    ),
    "swift": LangSpec(
        grammar="swift",
        defs={
            "protocol_declaration": "interface",
            "function_declaration": "function",
            "protocol_function_declaration": "function",
            "typealias_declaration": "type",
        },
        transparent=frozenset({"ERROR"}),
        attach_types=frozenset({"comment", "multiline_comment"}),
        line_comments=("//", "@"),
        hooks={
            "class_declaration": _swift_class,
            "init_declaration": _swift_keyword_named,
            "deinit_declaration": _swift_keyword_named,
            "subscript_declaration": _swift_keyword_named,
        },
    ),
    "bash": LangSpec(
        grammar="bash",
        defs={"function_definition": "function"},
        transparent=frozenset({"ERROR"}),
        attach_types=frozenset({"comment"}),
        line_comments=("#",),
        block_comment=None,
    ),
    "lua": LangSpec(
        grammar="lua",
        defs={"function_declaration": "function"},
        transparent=frozenset({"ERROR"}),
        attach_types=frozenset({"comment"}),
        line_comments=("--",),
        block_comment=("--[", "]]"),
        hooks={"variable_declaration": _lua_assignment, "assignment_statement": _lua_assignment},
    ),
    "elixir": LangSpec(
        grammar="elixir",
        defs={},
        transparent=frozenset({"ERROR"}),
        # `@doc`, `@spec`, `@impl` (module attributes) belong to the function after them
        attach_types=frozenset({"comment", "unary_operator"}),
        line_comments=("#", "@"),
        block_comment=None,
        hooks={"call": _elixir_call, "unary_operator": _elixir_attribute},
    ),
}
