"""Limits on what a customer template may cost to render.

Customer templates render inside the deliverer's event loop, which every
tenant shares, and in the API when a channel is saved. Jinja2's sandbox stops
a template from reaching Python internals, but not from asking for gigabytes
of text or minutes of CPU. :class:`BoundedEnvironment` adds the missing limits
at Jinja2's own extension points:

* :func:`compile_bounded` refuses, with a line number, what has no bound worth
  having in a notification: macros and call blocks (they recurse), recursive
  loops, loops nested in loops, ``{% block %}``, ``{% extends %}``,
  ``{% include %}``, ``{% import %}``, and filters outside
  :data:`ALLOWED_FILTERS`. It then routes every loop, every ``~``, every
  comparison and every value written through an internal counting filter.
* While rendering, the arithmetic operators (``intercepted_binops``), the
  filters and the few methods a template may call (``call``) estimate the
  size of their result *before* building it, and refuse a value longer than
  :data:`MAX_VALUE_CHARS` or a number wider than :data:`MAX_INT_BITS`.
* What is built, and the text that filters, tests, methods and comparisons
  read, is charged to a per-render budget (:func:`work_budget`) of
  :data:`MAX_WORK_CHARS` characters and :data:`MAX_STEPS` steps (loop
  iterations times the size of the loop's body, and one per filter, test,
  call, operator or comparison), so rendering time stays bounded too.

Refusals at compile time are :class:`jinja2.TemplateSyntaxError`; while
rendering, :class:`LimitExceeded` or :class:`jinja2.sandbox.SecurityError`.
All are Jinja2 template errors, which :mod:`services.deliverer.templates`
reports as its own ``TemplateError``.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import operator
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.defaults import DEFAULT_FILTERS
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Undefined, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Cycler, Joiner, Namespace, pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape

# Rendered text longer than this is a runaway template, not a notification.
MAX_RENDERED_CHARS = 200_000
# No single value a template builds (a string, a list) may be longer than the
# whole message may be.
MAX_VALUE_CHARS = MAX_RENDERED_CHARS
# Characters one render may build or read in all: output, {% set %} blocks,
# intermediate strings, and the text filters, tests and comparisons scan.
# Plenty for a notification; a few ms of work.
MAX_WORK_CHARS = 10 * MAX_RENDERED_CHARS
# Items one loop may run over, and numbers ``range`` may produce.
MAX_LOOP_ITEMS = 1_000
# Steps one render may run: each loop iteration costs the number of template
# nodes in the loop's body, each filter, test, call, operator and comparison
# one more. Bounds the CPU that character counts miss: loops whose bodies
# build nothing, a map() over thousands of tiny items. Tenths of a second.
MAX_STEPS = 100_000
# Notifications need 64-bit numbers at most; division of huge integers is
# quadratic, so anything much wider is only good for burning CPU.
MAX_INT_BITS = 1_024
# round(1, -10**9) computes 10**(10**9); no notification needs 20 digits.
MAX_ROUND_DIGITS = 20
# json.dumps repeats the indent on every line.
MAX_JSON_INDENT = 8

# Filters notification text needs. The rest of Jinja2's filters are removed,
# so a template using one is refused when it is compiled.
ALLOWED_FILTERS = frozenset(
    """
    abs capitalize count d default dictsort e escape first float format indent
    int items join last length list lower map max min reject rejectattr replace
    reverse round select selectattr sort string striptags sum title tojson trim
    truncate unique upper urlencode wordcount
    """.split()
)
# Filters that do not read their whole input. Every other filter's input is
# charged, so a loop cannot make one scan long text a thousand times for free.
_CONSTANT_TIME_FILTERS = frozenset({"count", "d", "default", "first", "last", "length"})
# Methods of text that read only their argument, not the whole text.
_CONSTANT_TIME_METHODS = frozenset({"endswith", "startswith"})

# Methods a template may call, by the type of the object they belong to.
STR_METHODS = frozenset(
    """
    capitalize endswith lower lstrip replace rstrip split startswith strip title
    upper
    """.split()
)
_METHODS: tuple[tuple[type, frozenset[str]], ...] = (
    (str, STR_METHODS),
    (Mapping, frozenset({"get", "items", "keys", "values"})),
    (LoopContext, frozenset({"changed", "cycle"})),
    (Cycler, frozenset({"next", "reset"})),
)

# Internal filters the compiled template calls. The spaces keep a template
# from writing them as filters (a filter name is an identifier); reached by
# name through map() they do no harm.
_WRITE = "switchboard write"
_CONCAT = "switchboard concat"
_LOOP = "switchboard loop"
_SCAN = "switchboard scan"

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "**": operator.pow,
    "%": operator.mod,
}

# One printf-style conversion: %(key)-08.3f, %*d, %%.
_CONVERSION = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?"
    r"(?:\.(?P<precision>\*|\d*))?[hlL]?(?P<kind>.?)",
    re.DOTALL,
)
# "%f" of the largest float has 309 digits before the point.
_FLOAT_CHARS = 320
_WORD = re.compile(r"\S+")


class LimitExceeded(jinja2.TemplateRuntimeError):
    """Raised while rendering when a template would exceed a size or work limit."""


@dataclass
class _Work:
    """What one render may still build or read (characters) and run (steps)."""

    chars: int = MAX_WORK_CHARS
    steps: int = MAX_STEPS


# The budget of the render in progress. Rendering is synchronous, so a
# context variable set around it is seen by every filter and operator it
# calls; compile-time constant folding sees none and charges nothing.
_WORK: ContextVar[_Work | None] = ContextVar("template_work", default=None)


@contextmanager
def work_budget() -> Iterator[None]:
    """Charge what is rendered inside the block to one fresh budget."""
    token = _WORK.set(_Work())
    try:
        yield
    finally:
        _WORK.reset(token)


def text_size(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About how many characters ``str(value)`` has, without building it.

    Exact for strings; for containers within a small factor (quotes and
    separators are estimated, escapes in a repr are not). Counting stops once
    over ``limit``, so a huge container costs no more than ``limit`` steps.
    Undefined values count 0: using them fails on its own, with Jinja2's
    message.
    """
    total = 0
    pending = [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Undefined):
            continue
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, Collection):
            # Brackets, then quotes and a separator per item.
            total += 2 + 4 * len(item)
            if total <= limit:
                pending.extend(item)
                if isinstance(item, Mapping):
                    pending.extend(item.values())
        else:
            # Loop contexts, cyclers, generators: a short repr. A namespace
            # shows its attributes, each itself bounded.
            total += len(str(item))
    return total


def _limit(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise LimitExceeded(
            f"{what} would build more than {MAX_VALUE_CHARS:,} characters"
        )


def _remaining_chars() -> int:
    work = _WORK.get()
    return MAX_WORK_CHARS if work is None else max(work.chars, 0)


def _charge(*, chars: int = 0, steps: int = 0) -> None:
    work = _WORK.get()
    if work is None:
        return
    work.chars -= chars
    work.steps -= steps
    if work.chars < 0:
        raise LimitExceeded(
            f"the template builds or reads more than {MAX_WORK_CHARS:,} "
            "characters of text in all"
        )
    if work.steps < 0:
        raise LimitExceeded(
            f"the template runs more than {MAX_STEPS:,} steps (loop items "
            "times the size of the loop's body, and one per filter, test, call, "
            "operator or comparison)"
        )


def _built(value: Any, what: str) -> Any:
    """``value`` after checking its size and charging it to the budget."""
    if isinstance(value, int):
        _limit_int_bits(value.bit_length(), what)
    size = text_size(value)
    _limit(size, what)
    _charge(chars=size, steps=1)
    return value


def _read_size(value: Any) -> int:
    """What reading all of ``value`` costs, in characters.

    Text size rather than ``len``: finding a string in a list of long strings
    compares each of them.
    """
    return text_size(value, _remaining_chars())


def _as_text(value: Any, what: str) -> str:
    """``str(value)``, refused before it is built if it would be too long."""
    if isinstance(value, str):
        return value
    _limit(text_size(value), what)
    return str(value)


def _limit_int_bits(bits: float, what: str) -> None:
    if bits > MAX_INT_BITS:
        raise LimitExceeded(
            f"{what} would need a number of more than {MAX_INT_BITS:,} bits"
        )


# Operators ------------------------------------------------------------------


def bounded_binop(symbol: str, left: Any, right: Any) -> Any:
    """``left <symbol> right``, refused before it is computed if an operand or
    the result would be too large."""
    what = f"'{symbol}'"
    for operand in (left, right):
        # Integer literals in the source are not built by an operator.
        if isinstance(operand, int):
            _limit_int_bits(operand.bit_length(), what)
    if symbol == "*":
        _check_multiply(left, right, what)
    elif symbol == "**":
        _check_power(left, right, what)
    elif symbol == "%" and isinstance(left, str):
        _limit(format_size(left, right), what)
    elif symbol == "+" and _same_sequence_type(left, right):
        _limit(text_size(left) + text_size(right), what)
    return _built(_BINOPS[symbol](left, right), what)


def _check_multiply(left: Any, right: Any, what: str) -> None:
    if isinstance(left, int) and isinstance(right, int):
        _limit_int_bits(left.bit_length() + right.bit_length(), what)
        return
    sequences = (str, list, tuple)
    if isinstance(left, sequences) and isinstance(right, int):
        sequence, count = left, right
    elif isinstance(left, int) and isinstance(right, sequences):
        sequence, count = right, left
    else:
        return
    if count > 0:
        _limit(text_size(sequence, MAX_VALUE_CHARS // count) * count, what)


def _check_power(base: Any, exponent: Any, what: str) -> None:
    # Negative exponents give floats, and floats overflow quickly on their own.
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 1:
        if abs(base) > 1:
            _limit_int_bits(math.log2(abs(base)) * exponent, what)


def _same_sequence_type(left: Any, right: Any) -> bool:
    return any(
        isinstance(left, kind) and isinstance(right, kind)
        for kind in (str, list, tuple)
    )


def format_size(template: str, values: Any) -> int:
    """About how long ``template % values`` is, without building it.

    Counts every conversion's width and precision (``%*d`` takes them from
    ``values``, as Python does) and the size of the value it formats.
    """
    positional = list(values) if isinstance(values, tuple) else [values]
    named = values if isinstance(values, Mapping) else {}
    size = len(template)
    for match in _CONVERSION.finditer(template):
        if match["kind"] == "%":
            continue
        size += _spec_number(match["width"], positional)
        size += _spec_number(match["precision"], positional)
        if match["key"] is not None:
            value = named.get(match["key"])
        else:
            value = positional.pop(0) if positional else None
        repr_factor = 10 if match["kind"] in ("r", "a") else 1
        size += repr_factor * text_size(value)
        if isinstance(value, float):
            size += _FLOAT_CHARS
        if size > MAX_VALUE_CHARS:
            break
    return size


def _spec_number(spec: str | None, positional: list[Any]) -> int:
    if not spec:
        return 0
    if spec == "*":
        value = positional.pop(0) if positional else 0
        # A non-integer here makes Python's own % raise TypeError.
        return abs(value) if isinstance(value, int) else 0
    return int(spec)


# Calls ----------------------------------------------------------------------


def bounded_range(*args: int) -> range:
    """``range`` for templates: at most :data:`MAX_LOOP_ITEMS` numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_LOOP_ITEMS:
        raise LimitExceeded(
            f"range() would produce more than {MAX_LOOP_ITEMS:,} numbers"
        )
    return numbers


# Globals a template may call; lipsum is left out (it writes pages of text).
_GLOBALS: dict[str, Any] = {
    "range": bounded_range,
    "dict": dict,
    "cycler": Cycler,
    "joiner": Joiner,
    "namespace": Namespace,
}


def _callable_name(obj: Any) -> str:
    return str(getattr(obj, "__name__", type(obj).__name__))


def allowed_callable(obj: Any) -> bool:
    """Whether a template may call ``obj``: a global, a joiner, or a method in
    the allow-lists (text, mapping, loop and cycler methods)."""
    if any(obj is allowed for allowed in _GLOBALS.values()) or isinstance(obj, Joiner):
        return True
    if not (inspect.ismethod(obj) or inspect.isbuiltin(obj)):
        return False
    owner, name = obj.__self__, obj.__name__
    return any(isinstance(owner, kind) and name in names for kind, names in _METHODS)


def _split_size(text: str, sep: Any = None, maxsplit: Any = -1) -> int:
    if sep is None:
        pieces = sum(1 for _ in _WORD.finditer(text))
    elif isinstance(sep, str) and sep:
        pieces = text.count(sep) + 1
    else:
        return 0  # str.split refuses it itself
    if isinstance(maxsplit, int) and maxsplit >= 0:
        pieces = min(pieces, maxsplit + 1)
    return len(text) + 4 * pieces


def _replace_size(text: str, old: Any, new: Any, count: Any = -1) -> int:
    if not (isinstance(old, str) and isinstance(new, str)):
        return 0  # str.replace refuses it itself
    if isinstance(text, Markup):
        new = escape(new)  # Markup.replace escapes what it inserts
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


_METHOD_SIZES: dict[str, Callable[..., int]] = {
    "split": _split_size,
    "replace": _replace_size,
}


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    name = _callable_name(obj)
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, str):
        size_of = _METHOD_SIZES.get(name)
        if size_of is not None:
            _limit(size_of(owner, *args, **kwargs), f"{name}()")
        if name not in _CONSTANT_TIME_METHODS:
            _charge(chars=len(owner))
    _charge(chars=sum(map(_read_size, (*args, *kwargs.values()))))


def _refuse_call(obj: Any) -> SecurityError:
    allowed = ", ".join(sorted(STR_METHODS))
    return SecurityError(
        f"calling {_callable_name(obj)}() is not allowed in templates; the "
        f"methods of text a template may call are {allowed}"
    )


# Filters --------------------------------------------------------------------


@pass_eval_context
def _replace_filter(
    eval_ctx: EvalContext, value: Any, old: Any, new: Any, count: int | None = None
) -> Any:
    what = "the replace filter"
    text, old_text, new_text = (_as_text(item, what) for item in (value, old, new))
    if eval_ctx.autoescape:
        new_text = escape(new_text)
    _limit(_replace_size(text, old_text, new_text, count), what)
    return DEFAULT_FILTERS["replace"](eval_ctx, value, old, new, count)


@pass_eval_context
def _join_filter(
    eval_ctx: EvalContext, value: Iterable[Any], d: Any = "", attribute: Any = None
) -> Any:
    what = "the join filter"
    items = list(value)  # a generator (map, select) can be read only once
    size = max(len(items) - 1, 0) * len(_as_text(d, what))
    for item in items:
        if size > MAX_VALUE_CHARS:
            break
        size += text_size(item, MAX_VALUE_CHARS - size)
    _limit(size, what)
    return DEFAULT_FILTERS["join"](eval_ctx, items, d, attribute)


def _indent_filter(
    value: Any, width: Any = 4, first: bool = False, blank: bool = False
) -> Any:
    what = "the indent filter"
    text = _as_text(value, what)
    per_line = len(width) if isinstance(width, str) else width
    if isinstance(per_line, int):
        _limit(len(text) + (text.count("\n") + 1) * max(per_line, 0), what)
    return DEFAULT_FILTERS["indent"](value, width, first, blank)


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> Any:
    what = "the format filter"
    _limit(format_size(_as_text(value, what), kwargs or args), what)
    return DEFAULT_FILTERS["format"](value, *args, **kwargs)


def _round_filter(value: Any, precision: Any = 0, method: str = "common") -> Any:
    if isinstance(precision, int) and abs(precision) > MAX_ROUND_DIGITS:
        raise LimitExceeded(
            f"the round filter allows at most {MAX_ROUND_DIGITS} digits"
        )
    return DEFAULT_FILTERS["round"](value, precision, method)


@pass_eval_context
def _tojson_filter(eval_ctx: EvalContext, value: Any, indent: Any = None) -> Any:
    width = len(indent) if isinstance(indent, str) else indent
    if isinstance(width, int) and width > MAX_JSON_INDENT:
        raise LimitExceeded(
            f"the tojson filter allows an indent of at most {MAX_JSON_INDENT}"
        )
    return DEFAULT_FILTERS["tojson"](eval_ctx, value, indent)


def _string_filter(value: Any) -> Any:
    return DEFAULT_FILTERS["string"](_as_text(value, "the string filter"))


# Filters whose result can be far larger than their input are checked before
# they run; truncate is not among them: its result is at most its input plus
# its ``end`` text.
_CHECKED_FILTERS: dict[str, Callable[..., Any]] = {
    "format": _format_filter,
    "indent": _indent_filter,
    "join": _join_filter,
    "replace": _replace_filter,
    "round": _round_filter,
    "string": _string_filter,
    "tojson": _tojson_filter,
}


def _charged(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a filter whose result is size-checked and charged."""
    what = f"the {name} filter"
    # Set by pass_context and its siblings; then the value is the second
    # argument. functools.wraps copies it, so Jinja2 still passes the context.
    value_index = 1 if hasattr(func, "jinja_pass_arg") else 0
    scans = name not in _CONSTANT_TIME_FILTERS

    @functools.wraps(func)
    def charged(*args: Any, **kwargs: Any) -> Any:
        if scans and len(args) > value_index:
            _charge(chars=_read_size(args[value_index]))
        return _built(func(*args, **kwargs), what)

    return charged


def _charged_test(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` as a test that charges the length of what it reads."""

    @functools.wraps(func)
    def charged(*args: Any, **kwargs: Any) -> Any:
        _charge(chars=sum(map(_read_size, (*args, *kwargs.values()))), steps=1)
        return func(*args, **kwargs)

    return charged


@pass_context
def _write(context: Context, value: Any) -> Any:
    # Every value written, into the message or into a {% set %} or
    # {% filter %} block, is charged before Jinja2 turns it into text.
    if isinstance(value, str):
        _charge(chars=len(value))
    else:
        _charge(chars=text_size(value, _remaining_chars()))
    return value


@pass_context
def _scan(context: Context, value: Any) -> Any:
    # An operand of a comparison: "in" searches, "==" compares, all of it.
    _charge(chars=_read_size(value), steps=1)
    return value


@pass_eval_context
def _concat(eval_ctx: EvalContext, parts: tuple[Any, ...]) -> str:
    size = sum(text_size(part) for part in parts)
    _limit(size, "'~'")
    _charge(chars=size)
    # What Jinja2 itself compiles ``~`` to.
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


@pass_context
def _loop(
    context: Context, iterable: Iterable[Any], weight: int, text_chars: int
) -> list[Any]:
    # ``text_chars`` is the literal text in the loop's body, written once per
    # item: charged here so that literal text needs no metering of its own.
    items = list(itertools.islice(iterable, MAX_LOOP_ITEMS + 1))
    if len(items) > MAX_LOOP_ITEMS:
        raise LimitExceeded(f"a loop may run over at most {MAX_LOOP_ITEMS:,} items")
    _charge(chars=len(items) * text_chars, steps=len(items) * weight)
    return items


# The environment -------------------------------------------------------------


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with limits on size and work.

    Templates must be compiled with :func:`compile_bounded` and rendered
    inside :func:`work_budget`; see the module docstring for the limits.
    """

    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.clear()
        self.globals.update(_GLOBALS)
        self.filters = {
            name: _charged(name, _CHECKED_FILTERS.get(name, DEFAULT_FILTERS[name]))
            for name in ALLOWED_FILTERS
        }
        self.filters.update(
            {_WRITE: _write, _CONCAT: _concat, _LOOP: _loop, _SCAN: _scan}
        )
        self.tests = {name: _charged_test(test) for name, test in self.tests.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Compute an intercepted operator, refusing oversized results."""
        return bounded_binop(operator, left, right)

    def is_safe_callable(self, obj: Any) -> bool:
        """Only the allow-listed callables; an undefined value may be called
        so that it fails with Jinja2's own message."""
        if isinstance(obj, Undefined):
            return True
        return super().is_safe_callable(obj) and allowed_callable(obj)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``obj`` if it is allowed and its result fits the limits."""
        if not self.is_safe_callable(obj):
            raise _refuse_call(obj)
        _check_call(obj, args, kwargs)
        return _built(context.call(obj, *args, **kwargs), f"{_callable_name(obj)}()")

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Subscript ``obj``; a slice is a copy, so it is charged."""
        value = super().getitem(obj, argument)
        if isinstance(argument, slice):
            _charge(chars=text_size(value, _remaining_chars()))
        return value


# Compiling -------------------------------------------------------------------

_REFUSED_STATEMENTS: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Macro, "macros ({% macro %})"),
    (nodes.CallBlock, "call blocks ({% call %})"),
    (nodes.Block, "blocks ({% block %})"),
    (nodes.Extends, "{% extends %}"),
    (nodes.Include, "{% include %}"),
    (nodes.Import, "{% import %}"),
    (nodes.FromImport, "{% from ... import %}"),
)


def compile_bounded(environment: BoundedEnvironment, source: str) -> jinja2.Template:
    """Parse, check and compile ``source``, metering every loop, ``~``,
    comparison and value written.

    Raises :class:`jinja2.TemplateSyntaxError` for what is refused.
    """
    tree = environment.parse(source)
    for node in tree.find_all(nodes.Node):
        problem = _refusal(node, environment)
        if problem:
            raise jinja2.TemplateSyntaxError(problem, node.lineno)
    tree = _Metered().visit(tree)
    tree.set_environment(environment)
    return environment.from_string(tree)


def _refusal(node: nodes.Node, environment: BoundedEnvironment) -> str | None:
    for kind, what in _REFUSED_STATEMENTS:
        if isinstance(node, kind):
            return f"{what} are not allowed in notification templates"
    if isinstance(node, nodes.For):
        if node.recursive:
            return "recursive loops are not allowed in notification templates"
        if any(True for _ in node.find_all(nodes.For)):
            return "a loop inside another loop is not allowed in notification templates"
    if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
        allowed = ", ".join(sorted(ALLOWED_FILTERS))
        return f"filter '{node.name}' is not allowed; the allowed filters are {allowed}"
    if isinstance(node, nodes.Test) and node.name not in environment.tests:
        return f"no test named '{node.name}'"
    return None


def _weight(statements: Iterable[nodes.Node]) -> int:
    """How many template nodes run for one pass over ``statements``."""
    return sum(1 + sum(1 for _ in node.find_all(nodes.Node)) for node in statements)


def _internal(name: str, node: nodes.Expr, *args: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, name, list(args), [], None, None, lineno=node.lineno)


class _Metered(NodeTransformer):
    """Routes every loop, ``~``, comparison and value written through an
    internal filter."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        # The iteration itself, its body, and the optional "if" clause.
        weight = 1 + _weight(node.body) + (_weight([node.test]) if node.test else 0)
        text_chars = sum(
            len(data.data)
            for statement in node.body
            for data in statement.find_all(nodes.TemplateData)
        )
        self.generic_visit(node)
        node.iter = _internal(
            _LOOP, node.iter, nodes.Const(weight), nodes.Const(text_chars)
        )
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _internal(_CONCAT, nodes.Tuple(node.nodes, "load", lineno=node.lineno))

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        node.expr = _internal(_SCAN, node.expr)
        for operand in node.ops:
            operand.expr = _internal(_SCAN, operand.expr)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        # Literal text is charged by the loop it is in (outside loops it is
        # bounded by the template's own length), so Jinja2 still writes it
        # as a constant.
        self.generic_visit(node)
        node.nodes = [
            child if isinstance(child, nodes.TemplateData) else _internal(_WRITE, child)
            for child in node.nodes
        ]
        return node
