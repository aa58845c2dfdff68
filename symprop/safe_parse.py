"""Parse user expressions in SymPy syntax without evaluating them.

Spec strings such as ``"0.5*x*(1 + tanh(x))"`` are read by Python's own parser
(:func:`ast.parse`, which builds a syntax tree and runs nothing) and then translated node by
node into SymPy.  Only the node types in :data:`_BINARY_OPS`, :data:`_UNARY_OPS`, numbers,
the variable names the caller allows and the functions in :data:`FUNCTIONS` are accepted;
anything else (attribute access, subscripts, lambdas, keywords, dunder names, strings) is an
:class:`~symprop.errors.ExpressionError` that points at the offending column.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

import sympy

from .errors import ExpressionError

__all__ = ["CONSTANTS", "FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "bracket_depth", "parse_expression"]

MAX_LENGTH = 2000
MAX_DEPTH = 60
MAX_EXPONENT = 1000

FUNCTIONS: dict[str, Callable[..., sympy.Expr]] = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "tanh": sympy.tanh,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "atan": sympy.atan,
    "erf": sympy.erf,
    "abs": sympy.Abs,
    "Abs": sympy.Abs,
    "Max": sympy.Max,
    "Min": sympy.Min,
    "max": sympy.Max,
    "min": sympy.Min,
    "sigmoid": lambda t: 1 / (1 + sympy.exp(-t)),
}

CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E, "e": sympy.E}

_BINARY_OPS: dict[type, Callable[[sympy.Expr, sympy.Expr], sympy.Expr]] = {
    ast.Add: lambda p, q: p + q,
    ast.Sub: lambda p, q: p - q,
    ast.Mult: lambda p, q: p * q,
    ast.Div: lambda p, q: p / q,
    ast.Pow: lambda p, q: p**q,
}

_UNARY_OPS: dict[type, Callable[[sympy.Expr], sympy.Expr]] = {
    ast.USub: lambda p: -p,
    ast.UAdd: lambda p: p,
}

_HINTS: dict[type, str] = {
    ast.BitXor: "Write powers as x**2, not x^2.",
    ast.Attribute: "Attribute access is not allowed; call functions by their plain name.",
    ast.Subscript: "Indexing is not allowed.",
    ast.Lambda: "Lambdas are not allowed; write the expression itself.",
    ast.Compare: "Comparisons are not allowed; use Max/Min for piecewise functions.",
}


def parse_expression(
    text: str,
    variables: Mapping[str, sympy.Expr],
    *,
    where: str | None = None,
    functions: Mapping[str, Callable[..., sympy.Expr]] = FUNCTIONS,
) -> sympy.Expr:
    """Translate ``text`` into a SymPy expression in ``variables``; never evaluates it.

    >>> x = sympy.Symbol("x")
    >>> parse_expression("x**2 + tanh(x)", {"x": x})
    x**2 + tanh(x)
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected a string, got {type(text).__name__}", where=where)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long, more than the {MAX_LENGTH} allowed",
            where=where,
        )
    if not text.strip():
        raise ExpressionError("expression is empty", where=where)
    depth = bracket_depth(text)
    if depth > MAX_DEPTH:
        raise ExpressionError(
            f"expression nests brackets {depth} deep, more than the {MAX_DEPTH} allowed",
            where=where,
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1
        raise ExpressionError(
            f"cannot parse the expression ({exc.msg})", text=text.strip(), position=col,
            where=where,
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("expression is too deeply nested to parse", where=where) from None
    translator = _Translator(text.strip(), variables, functions, where)
    return translator.visit(tree.body)


def bracket_depth(text: str) -> int:
    """How deep ( [ { nest in ``text`` (a guard before any parser recurses)."""
    depth = best = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            best = max(best, depth)
        elif ch in ")]}":
            depth -= 1
    return best


class _Translator:
    """Walks the syntax tree; every accepted node type has one method."""

    def __init__(self, text, variables, functions, where):
        self.text = text
        self.variables = variables
        self.functions = functions
        self.where = where

    def fail(self, node: ast.AST, what: str, hint: str | None = None):
        raise ExpressionError(
            what, text=self.text, position=getattr(node, "col_offset", None), where=self.where,
            hint=hint,
        )

    def visit(self, node: ast.AST) -> sympy.Expr:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            kind = type(node).__name__
            self.fail(node, f"'{kind}' is not allowed in an expression",
                      _HINTS.get(type(node), "Use numbers, +, -, *, /, **, brackets, the "
                                 f"variables {self._names()} and the functions "
                                 f"{', '.join(sorted(self.functions))}."))
        return method(node)

    def _names(self) -> str:
        return ", ".join(sorted(self.variables)) or "(none)"

    def visit_Constant(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(node, f"the constant {value!r} is not a number")
        if isinstance(value, float):
            return sympy.Float(repr(value))
        return sympy.Integer(value)

    def visit_Name(self, node: ast.Name) -> sympy.Expr:
        name = node.id
        if name in self.variables:
            return self.variables[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name.startswith("_"):
            self.fail(node, f"the name '{name}' is not allowed")
        if name in self.functions:
            self.fail(node, f"'{name}' is a function; call it as {name}(...)")
        self.fail(node, f"unknown name '{name}'", f"Allowed variables: {self._names()}.")

    def visit_BinOp(self, node: ast.BinOp) -> sympy.Expr:
        op = _BINARY_OPS.get(type(node.op))
        if op is None:
            self.fail(node, f"the operator '{type(node.op).__name__}' is not allowed",
                      _HINTS.get(type(node.op)))
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow) and right.is_Number and abs(right) > MAX_EXPONENT:
            self.fail(node, f"the exponent {right} is larger than the {MAX_EXPONENT} allowed")
        return op(left, right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> sympy.Expr:
        op = _UNARY_OPS.get(type(node.op))
        if op is None:
            self.fail(node, f"the operator '{type(node.op).__name__}' is not allowed")
        return op(self.visit(node.operand))

    def visit_Call(self, node: ast.Call) -> sympy.Expr:
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only plain function names can be called",
                      _HINTS.get(type(node.func)))
        name = node.func.id
        if name not in self.functions:
            self.fail(node, f"unknown function '{name}'",
                      f"Allowed functions: {', '.join(sorted(self.functions))}.")
        if node.keywords:
            self.fail(node, f"keyword arguments are not allowed in {name}(...)")
        if not node.args:
            self.fail(node, f"{name}() needs an argument")
        args = [self.visit(arg) for arg in node.args]
        try:
            return self.functions[name](*args)
        except TypeError:
            self.fail(node, f"{name}() does not take {len(args)} argument(s)")
