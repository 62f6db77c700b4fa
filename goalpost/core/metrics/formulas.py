"""Formula metrics: `cac: marketing_spend / new_customers`, parsed, unit-checked, rendered as SQL.

A formula is arithmetic over other metrics' names and numbers: + - * / and parentheses
(Python's own expression parser reads it, and anything else, a call, an attribute, a
comparison, is refused). Its value at a grain is the formula over its parts' values at that
grain, never a sum of its daily values: a month's CAC is the month's spend over the month's
new customers.

Units are checked where the parts declare one. A unit is a quantity: money (`currency`),
things counted (`count` orders or customers, `units` of stock, `hours`, `days`), or none
(`ratio`, `percent`):
- `a + b`, `a - b` need the same unit (money plus customers is an error);
- `a / b` of the same unit is a ratio; money or things per counted thing keep the numerator's
  unit (spend per new customer is money, orders per hour are a count);
- `a * b` of a ratio keeps the other's unit; money times a count is money (orders times the
  average ticket); money times money is an error.
The declared unit of the formula metric must be the unit found (ratio and percent are both a
ratio's: a percentage is shown, not computed, with value_type).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

MONEY = "currency"
COUNTED = ("count", "units", "hours", "days")
PURE = ("ratio", "percent")
UNITS = (MONEY, *COUNTED, *PURE)
_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class FormulaError(ValueError):
    """A formula that cannot be read or whose units do not agree."""


@dataclass(frozen=True)
class Formula:
    """A parsed formula: its text, tree and the metrics it names (in order of appearance)."""

    text: str
    tree: ast.expr
    names: tuple[str, ...]

    def sql(self, column: dict[str, str]) -> str:
        """The formula as SQL over `column[name]` (a divisor of 0 gives NULL, not an error)."""
        return _sql(self.tree, column)

    def additive(self) -> bool:
        """A sum or difference of its parts (constants may scale them): its values add up
        over periods when its parts' values do."""
        return _additive(self.tree)


def parse(text: str) -> Formula:
    """The formula `text`, or FormulaError saying what is wrong with it."""
    source = " ".join(str(text).split())
    if not source:
        raise FormulaError("the formula is empty")
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError as exc:
        raise FormulaError(f"{source!r} is not a formula ({exc.msg} at character "
                           f"{exc.offset}): write metrics and numbers with + - * / and "
                           "parentheses, e.g. marketing_spend / new_customers") from None
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in names:
                names.append(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise FormulaError(f"{source!r}: {node.value!r} is not a number")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _OPERATORS:
                raise FormulaError(f"{source!r}: only + - * / are allowed")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub | ast.UAdd):
                raise FormulaError(f"{source!r}: only + - * / are allowed")
        elif not isinstance(node, ast.expr_context | ast.operator | ast.unaryop):
            raise FormulaError(f"{source!r}: {type(node).__name__.lower()} is not allowed "
                               "in a formula (only metrics, numbers, + - * / and parentheses)")
    if not names:
        raise FormulaError(f"{source!r} names no metric")
    return Formula(source, tree, tuple(names))


def _sql(node: ast.expr, column: dict[str, str]) -> str:
    if isinstance(node, ast.Name):
        return column[node.id]
    if isinstance(node, ast.Constant):
        return repr(float(node.value))
    if isinstance(node, ast.UnaryOp):
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        return f"({sign}{_sql(node.operand, column)})"
    assert isinstance(node, ast.BinOp)
    left, right = _sql(node.left, column), _sql(node.right, column)
    operator = _OPERATORS[type(node.op)]
    if operator == "/":
        right = f"NULLIF({right}, 0)"
    return f"({left} {operator} {right})"


def _additive(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.UnaryOp):
        return _additive(node.operand)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Add | ast.Sub):
            return _additive(node.left) and _additive(node.right)
        if isinstance(node.op, ast.Mult):
            return ((isinstance(node.left, ast.Constant) and _additive(node.right))
                    or (isinstance(node.right, ast.Constant) and _additive(node.left)))
        if isinstance(node.op, ast.Div):
            return isinstance(node.right, ast.Constant) and _additive(node.left)
    return False


def unit_of(formula: Formula, units: dict[str, str | None]) -> str | None:
    """The formula's unit from its parts' units (None where a part declares none, so that
    nothing can be said); FormulaError naming the operation whose units disagree."""
    return _unit(formula.tree, units, formula.text)


def _describe(unit: str | None) -> str:
    return "a ratio" if unit in PURE or unit == "ratio" else str(unit)


def _unit(node: ast.expr, units: dict[str, str | None], text: str) -> str | None:
    if isinstance(node, ast.Name):
        unit = units.get(node.id)
        return "ratio" if unit in PURE else unit
    if isinstance(node, ast.Constant):
        return "ratio"
    if isinstance(node, ast.UnaryOp):
        return _unit(node.operand, units, text)
    assert isinstance(node, ast.BinOp)
    left, right = _unit(node.left, units, text), _unit(node.right, units, text)
    if left is None or right is None:
        return None
    operator = _OPERATORS[type(node.op)]
    where = ast.unparse(node)
    if operator in "+-":
        if left != right:
            raise FormulaError(f"{text!r}: {where} {'adds' if operator == '+' else 'subtracts'}"
                               f" {_describe(right)} {'to' if operator == '+' else 'from'} "
                               f"{_describe(left)}")
        return left
    if operator == "/":
        # The same unit twice is a ratio; anything per counted thing, per unit of money or
        # over a ratio keeps its own unit (spend per customer, customers per euro spent).
        return "ratio" if left == right else left
    if left == "ratio":
        return right
    if right == "ratio":
        return left
    if left == MONEY and right == MONEY:
        raise FormulaError(f"{text!r}: {where} multiplies money by money")
    return MONEY if MONEY in (left, right) else left


def compatible(declared: str, found: str) -> bool:
    """Whether a metric declared in `declared` may hold a formula's unit `found`."""
    if found == "ratio":
        return declared in PURE
    return declared == found
