"""Expressions of `filter` and `derive` steps: a small, safe language over DataFrame columns.

The text is parsed with Python's `ast` and every node is checked against a whitelist when the file
is loaded: column names, literals, arithmetic/comparison/boolean operators, a few functions and
the `.str`/`.dt` accessors. Anything else (calls to other names, `__dunder__` attributes, lambdas,
subscripts, comprehensions) is a validation error, so `__import__('os').system(...)` never runs.
Nothing is passed to Python's `eval` or pandas' `eval`: the checked tree is compiled into plain
vectorised pandas operations, which is also why an expression costs what hand-written pandas costs.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_LENGTH = 2000
MAX_DEPTH = 40
MAX_INT = 2 ** 63 - 1


class ExpressionError(ValueError):
    """An expression that is not allowed or cannot be evaluated; the message quotes the expression."""


Value = Any
Compiled = Callable[[pd.DataFrame], Value]


def _if_else(cond: pd.Series, then: Value, other: Value) -> pd.Series:
    then = then if isinstance(then, pd.Series) else pd.Series(then, index=cond.index)
    return then.where(cond.fillna(False).astype(bool), other)


def _coalesce(first: Value, *rest: Value) -> Value:
    out = first
    for value in rest:
        out = out.fillna(value) if isinstance(out, pd.Series) else (value if out is None else out)
    return out


# name -> (function, least arguments, most arguments)
FUNCTIONS: dict[str, tuple[Callable, int, int]] = {
    "abs": (np.abs, 1, 1), "round": (lambda x, n=0: x.round(n) if isinstance(x, pd.Series) else round(x, n), 1, 2),
    "floor": (np.floor, 1, 1), "ceil": (np.ceil, 1, 1), "sqrt": (np.sqrt, 1, 1), "log": (np.log, 1, 1),
    "exp": (np.exp, 1, 1), "isnull": (pd.isna, 1, 1), "notnull": (pd.notna, 1, 1),
    "coalesce": (_coalesce, 2, 20), "if_else": (_if_else, 3, 3),
}
# accessor -> methods and properties allowed on it
STR_METHODS = frozenset({"lower", "upper", "strip", "lstrip", "rstrip", "title", "len", "contains", "startswith",
                         "endswith", "slice", "replace", "zfill", "pad", "fullmatch", "match"})
DT_METHODS = frozenset({"strftime", "floor", "ceil", "round", "normalize", "tz_convert", "tz_localize"})
DT_PROPERTIES = frozenset({"year", "month", "day", "hour", "minute", "second", "dayofweek", "dayofyear",
                           "quarter", "days_in_month", "is_month_end", "is_month_start"})
SERIES_METHODS = frozenset({"abs", "round", "fillna", "isna", "notna", "isnull", "notnull", "between", "isin", "clip"})
KEYWORDS = frozenset({"regex", "case", "na", "inclusive", "lower", "upper", "decimals", "n", "width", "side",
                      "fillchar", "start", "stop", "step", "freq"})

_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
           ast.Pow: lambda a, b: a ** b, ast.BitAnd: lambda a, b: a & b, ast.BitOr: lambda a, b: a | b}
_COMPARE = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
            ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}
_UNARY = {ast.USub: lambda a: -a, ast.UAdd: lambda a: +a, ast.Not: lambda a: (not a) if isinstance(a, bool) else ~a,
          ast.Invert: lambda a: (not a) if isinstance(a, bool) else ~a}
_NAMES = {ast.Lambda: "lambda is", ast.Subscript: "subscripts ([...]) are", ast.ListComp: "comprehensions are",
          ast.SetComp: "comprehensions are", ast.DictComp: "comprehensions are", ast.GeneratorExp: "comprehensions are",
          ast.IfExp: "'x if c else y' is", ast.NamedExpr: "assignment (:=) is", ast.Starred: "*arguments are",
          ast.Dict: "a mapping is", ast.Set: "a set is", ast.JoinedStr: "an f-string is", ast.Await: "await is",
          ast.Yield: "yield is", ast.YieldFrom: "yield is", ast.Slice: "a slice is"}


@dataclass(frozen=True)
class Expression:
    """A checked expression: `columns` it reads, and `evaluate(frame)`."""

    text: str
    columns: tuple[str, ...]
    _compiled: Compiled

    def evaluate(self, frame: pd.DataFrame) -> Value:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ExpressionError(f"{_quote(self.text)}: unknown column {', '.join(missing)}")
        try:
            return self._compiled(frame)
        except ExpressionError:
            raise
        except (TypeError, ValueError, AttributeError, ZeroDivisionError, OverflowError) as exc:
            raise ExpressionError(f"{_quote(self.text)}: {reason(exc)}") from None


def compile_expression(text: str) -> Expression:
    """Check `text` against the whitelist and compile it; ExpressionError says what is not allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("expected an expression (text)")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{_quote(text)}: syntax error at column {exc.offset or 0}: {exc.msg}") from None
    compiler = _Compiler(text)
    compiled = compiler.node(tree.body, 0)
    return Expression(text, tuple(dict.fromkeys(compiler.columns)), compiled)


def _membership(lhs: Compiled, values: list, negate: bool) -> Compiled:
    return lambda frame: ~lhs(frame).isin(values) if negate else lhs(frame).isin(values)


def _nullness(lhs: Compiled, positive: bool) -> Compiled:
    return lambda frame: lhs(frame).isna() if positive else lhs(frame).notna()


def _comparison(lhs: Compiled, rhs: Compiled, operation: Callable[[Value, Value], Value]) -> Compiled:
    return lambda frame: operation(lhs(frame), rhs(frame))


def _constant(value: Value) -> Compiled:
    return lambda frame: value


class _Compiler:
    def __init__(self, text: str):
        self.text = text
        self.columns: list[str] = []

    def fail(self, reason: str) -> ExpressionError:
        return ExpressionError(f"{_quote(self.text)}: {reason}")

    def node(self, node: ast.AST, depth: int) -> Compiled:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        kind = type(node)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            self.columns.append(node.id)
            name = node.id
            return lambda frame: frame[name]
        if isinstance(node, ast.BinOp):
            return self.binary(node, depth)
        if isinstance(node, ast.UnaryOp):
            unary = _UNARY.get(type(node.op))
            if unary is None:
                raise self.fail(f"operator {type(node.op).__name__} is not allowed")
            operand = self.node(node.operand, depth + 1)
            return lambda frame: unary(operand(frame))
        if isinstance(node, ast.BoolOp):
            parts = [self.node(v, depth + 1) for v in node.values]
            combine: Callable[[Value, Value], Value] = ((lambda a, b: a & b) if isinstance(node.op, ast.And)
                                                        else (lambda a, b: a | b))

            def boolean(frame: pd.DataFrame) -> Value:
                out = parts[0](frame)
                for part in parts[1:]:
                    out = combine(out, part(frame))
                return out
            return boolean
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, depth)
        if kind in (ast.List, ast.Tuple):
            raise self.fail("a list is only allowed after 'in' or as an argument of isin()")
        raise self.fail(f"{_NAMES.get(kind, type(node).__name__ + ' is')} not allowed"
                        + (" (use if_else(c, x, y))" if kind is ast.IfExp else ""))

    def constant(self, node: ast.Constant) -> Compiled:
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
            return lambda frame: value
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise self.fail(f"number {str(value)[:20]}... is too large")
            number = np.int64(value)
            return lambda frame: number
        raise self.fail(f"literal of type {type(value).__name__} is not allowed")

    def literal_list(self, node: ast.AST) -> list:
        elements = node.elts if isinstance(node, (ast.List, ast.Tuple)) else None
        if elements is None or not all(isinstance(e, ast.Constant) for e in elements):
            raise self.fail("expected a list of literals, like ['a', 'b']")
        return [e.value for e in elements if isinstance(e, ast.Constant)]

    def binary(self, node: ast.BinOp, depth: int) -> Compiled:
        operation = _BINARY.get(type(node.op))
        if operation is None:
            raise self.fail(f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant):
            numbers = all(isinstance(n.value, (int, float)) and not isinstance(n.value, bool)
                          for n in (node.left, node.right))
            if not numbers or isinstance(node.op, ast.Pow):
                raise self.fail("write the result of arithmetic between two literals instead")
        left, right = self.node(node.left, depth + 1), self.node(node.right, depth + 1)
        return lambda frame: operation(left(frame), right(frame))

    def compare(self, node: ast.Compare, depth: int) -> Compiled:
        tests: list[Compiled] = []
        left = self.node(node.left, depth + 1)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                values = self.literal_list(right_node)
                negate = isinstance(op, ast.NotIn)
                tests.append(_membership(left, values, negate))
            elif (isinstance(right_node, ast.Constant) and right_node.value is None
                  and isinstance(op, (ast.Eq, ast.NotEq, ast.Is, ast.IsNot))):
                positive = isinstance(op, (ast.Eq, ast.Is))
                tests.append(_nullness(left, positive))
            else:
                operation = _COMPARE.get(type(op))
                if operation is None:
                    raise self.fail(f"comparison {type(op).__name__} is not allowed")
                right = self.node(right_node, depth + 1)
                tests.append(_comparison(left, right, operation))
            left = self.node(right_node, depth + 1) if not isinstance(op, (ast.In, ast.NotIn)) else left

        def chained(frame: pd.DataFrame) -> Value:
            out = tests[0](frame)
            for test in tests[1:]:
                out = out & test(frame)
            return out
        return chained

    def arguments(self, node: ast.Call, depth: int) -> tuple[list[Compiled], dict[str, Any]]:
        args: list[Compiled] = []
        for arg in node.args:
            if isinstance(arg, (ast.List, ast.Tuple)):
                values = self.literal_list(arg)
                args.append(_constant(values))
            else:
                args.append(self.node(arg, depth + 1))
        keywords: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in KEYWORDS:
                raise self.fail(f"keyword argument {keyword.arg or '**'} is not allowed "
                                f"(allowed: {', '.join(sorted(KEYWORDS))})")
            if not isinstance(keyword.value, ast.Constant):
                raise self.fail(f"keyword argument {keyword.arg} must be a literal")
            keywords[keyword.arg] = keyword.value.value
        return args, keywords

    def call(self, node: ast.Call, depth: int) -> Compiled:
        args, keywords = self.arguments(node, depth)
        if isinstance(node.func, ast.Name):
            entry = FUNCTIONS.get(node.func.id)
            if entry is None:
                raise self.fail(f"calling '{node.func.id}' is not allowed (functions: {', '.join(sorted(FUNCTIONS))})")
            function, least, most = entry
            if not least <= len(args) <= most or keywords:
                raise self.fail(f"{node.func.id}() takes {least}" + (f" to {most}" if most != least else "")
                                + " positional arguments")
            return lambda frame: function(*(a(frame) for a in args))
        if isinstance(node.func, ast.Attribute):
            method = node.func.attr
            target = node.func.value
            if isinstance(target, ast.Attribute) and target.attr in ("str", "dt"):
                series = self.node(target.value, depth + 1)
                allowed = STR_METHODS if target.attr == "str" else DT_METHODS
                if method not in allowed:
                    raise self.fail(f"method .{target.attr}.{method}() is not allowed "
                                    f"(allowed: {', '.join(sorted(allowed))})")
                accessor = target.attr
                return lambda frame: getattr(getattr(series(frame), accessor), method)(
                    *(a(frame) for a in args), **keywords)
            series = self.node(target, depth + 1)   # first: the innermost offence is the one named
            if method not in SERIES_METHODS:
                raise self.fail(f"method .{method}() is not allowed (allowed: {', '.join(sorted(SERIES_METHODS))}, "
                                f"and .str.* / .dt.* methods)")
            return lambda frame: getattr(series(frame), method)(*(a(frame) for a in args), **keywords)
        self.node(node.func, depth + 1)   # names what is wrong with it (a lambda, a subscript...)
        raise self.fail("only named functions and methods can be called")

    def attribute(self, node: ast.Attribute, depth: int) -> Compiled:
        if isinstance(node.value, ast.Attribute) and node.value.attr == "dt" and node.attr in DT_PROPERTIES:
            series = self.node(node.value.value, depth + 1)
            prop = node.attr
            return lambda frame: getattr(series(frame).dt, prop)
        self.node(node.value, depth + 1)   # the innermost offence is the one named
        if node.attr in ("str", "dt"):
            raise self.fail(f".{node.attr} must be followed by one of its methods")
        raise self.fail(f"attribute '{node.attr}' is not allowed (allowed: .dt.{', .dt.'.join(sorted(DT_PROPERTIES))})")


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= 80 else text[:77] + "...")


_LONG_QUOTE = re.compile(r"'[^']{13,}'|\"[^\"]{13,}\"")
_NUMBER = re.compile(r"(?<![A-Za-z_])\d{2,}")


def reason(exc: BaseException) -> str:
    """pandas' first line about a failure, without the values it sometimes quotes ('Unable to
    parse string "x@y.z"', a timestamp): long quoted text and numbers become '...'; dtype and
    type names ('float64', 'str') stay, they are what the message is about."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _NUMBER.sub("...", _LONG_QUOTE.sub("'...'", text))
    return text if len(text) <= 160 else text[:157] + "..."
