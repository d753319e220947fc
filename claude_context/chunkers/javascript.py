"""Hooks for JavaScript and TypeScript: definitions a table cannot express (assignments of
functions, calls that take a function, exports, object members, TS namespaces)."""

from __future__ import annotations

import re
from typing import Any

from .spec import _SPACE_RE, Classifier, ClassifyResult, Def, Hook, make_def, text_of

_JS_FUNCS = frozenset({"arrow_function", "function_expression", "function", "generator_function"})
_JS_CLASSES = frozenset({"class", "class_expression"})
_JS_UNWRAP = frozenset({"parenthesized_expression", "as_expression", "satisfies_expression"})


def _js_unwrap(value: Any) -> Any:
    while value is not None:
        if value.type == "assignment_expression":  # var proto = module.exports = function () {}
            value = value.child_by_field_name("right")
        elif value.type in _JS_UNWRAP and value.named_children:
            value = value.named_children[0]
        else:
            return value
    return None


def _js_has_functions(obj: Any) -> bool:
    for member in obj.named_children:
        if member.type == "method_definition":
            return True
        if member.type == "pair":
            value = _js_unwrap(member.child_by_field_name("value"))
            if value is not None and (
                value.type in _JS_FUNCS or (value.type == "object" and _js_has_functions(value))
            ):
                return True
    return False


def _js_value_def(value: Any, outer: Any, name: Any, func_kind: str = "function") -> Def | None:
    """A definition when ``name = value`` binds a function, a class or an object of functions."""
    value = _js_unwrap(value)
    if value is None:
        return None
    t = value.type
    if t in _JS_FUNCS:
        return make_def(outer, value, func_kind, name, value.child_by_field_name("body"))
    if t in _JS_CLASSES:
        return make_def(outer, value, "class", name, value.child_by_field_name("body"))
    if t == "object" and _js_has_functions(value):
        return make_def(outer, value, "namespace", name, value)
    if t == "call_expression":  # React.memo(() => ...), debounce(function () {...}, 50)
        args = value.child_by_field_name("arguments")
        if args is not None and any(a.type in _JS_FUNCS for a in args.named_children):
            return make_def(outer, value, func_kind, name)
    return None


def _js_declaration(node: Any, c: Classifier) -> ClassifyResult:
    """``const foo = () => {}``, ``let Foo = class {}``, ``var proto = module.exports = function() {}``."""
    for decl in node.named_children:
        if decl.type != "variable_declarator":
            continue
        name = decl.child_by_field_name("name")
        value = decl.child_by_field_name("value")
        if name is not None and value is not None and name.type == "identifier":
            found = _js_value_def(value, node, name)
            if found is not None:
                return found
    return None


def _js_target_name(left: Any) -> str:
    """Assignment target as a symbol: ``res.send``, ``exports.foo`` (``module.exports`` -> ``exports``)."""
    name = _SPACE_RE.sub("", text_of(left))
    if name == "module.exports" or name.startswith("module.exports."):
        name = name[len("module.") :]
    return name


_JS_IDENTIFIER_RE = re.compile(r"[A-Za-z_$][\w$]*")


def _js_call_with_function(node: Any, call: Any) -> Def | None:
    """``defineGetter(req, 'ip', function ip() {...})`` -> ``ip``; ``describe('parser', () => {})``
    -> ``parser``. Calls passing an unnamed function and no identifier-like string stay module code."""
    args = call.child_by_field_name("arguments")
    if args is None:
        return None
    func = next((a for a in args.named_children if a.type in _JS_FUNCS), None)
    if func is None:
        return None
    name = func.child_by_field_name("name")
    if name is None:
        for arg in args.named_children:
            if arg.type == "string" and _JS_IDENTIFIER_RE.fullmatch(text_of(arg)[1:-1]):
                name = arg
                break
        else:
            return None
    return make_def(node, func, "function", name, func.child_by_field_name("body"))


def _js_expression(node: Any, c: Classifier) -> ClassifyResult:
    """``res.send = function send() {}``, ``exports.x = ...``, a call passing a named function;
    TS ``namespace X {}``."""
    inner = node.named_children[0] if node.named_children else None
    if inner is None:
        return None
    if inner.type in ("internal_module", "module"):
        found = c.classify(inner)
        if isinstance(found, Def):
            found.node = node
        return found
    if inner.type == "call_expression":
        return _js_call_with_function(node, inner)
    if inner.type != "assignment_expression":
        return None
    left = inner.child_by_field_name("left")
    if left is None or left.type not in ("member_expression", "identifier"):
        return None
    found = _js_value_def(inner.child_by_field_name("right"), node, _js_target_name(left))
    if found is not None:
        found.name_byte = left.start_byte
    return found


def _js_export(node: Any, c: Classifier) -> ClassifyResult:
    decl = node.child_by_field_name("declaration")
    if decl is not None:
        found = c.classify(decl)
        if isinstance(found, Def):
            found.node = node
            return found
        return None
    value = node.child_by_field_name("value")
    if value is not None:
        found = _js_value_def(value, node, "default")
        if found is not None:
            found.name_byte = value.start_byte
        return found
    return None


def _js_pair(node: Any, c: Classifier) -> ClassifyResult:
    """Object literal member ``key: function () {}`` (members matter when a big object is split)."""
    key = node.child_by_field_name("key")
    value = node.child_by_field_name("value")
    if key is None or value is None:
        return None
    return _js_value_def(value, node, key, "method")


def _js_field(node: Any, c: Classifier) -> ClassifyResult:
    """Class field holding a function: ``handleClick = () => {}``."""
    name = node.child_by_field_name("name") or node.child_by_field_name("property")
    value = node.child_by_field_name("value")
    if name is None or value is None:
        return None
    value = _js_unwrap(value)
    if value is None or value.type not in _JS_FUNCS:
        return None
    return make_def(node, value, "method", name, value.child_by_field_name("body"))


def _ts_module(node: Any, c: Classifier) -> ClassifyResult:
    return make_def(
        node, node, "namespace", node.child_by_field_name("name"), node.child_by_field_name("body"),
        always_split=True,
    )  # fmt: skip


_JS_DEFS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "class_declaration": "class",
    "method_definition": "method",
}
_TS_DEFS = {
    **_JS_DEFS,
    "function_signature": "function",
    "abstract_class_declaration": "class",
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
    "method_signature": "method",
    "abstract_method_signature": "method",
}
_JS_HOOKS: dict[str, Hook] = {
    "lexical_declaration": _js_declaration,
    "variable_declaration": _js_declaration,
    "expression_statement": _js_expression,
    "export_statement": _js_export,
    "pair": _js_pair,
    "field_definition": _js_field,
    "public_field_definition": _js_field,
}
_TS_HOOKS: dict[str, Hook] = {**_JS_HOOKS, "internal_module": _ts_module, "module": _ts_module}
_JS_COMMON: dict[str, Any] = {
    "wrappers": frozenset({"ambient_declaration"}),
    "transparent": frozenset({"ERROR"}),
    "attach_types": frozenset({"comment", "decorator"}),
    "line_comments": ("//", "@"),
}
