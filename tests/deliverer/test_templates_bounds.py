"""Customer templates are bounded in memory and time, and realistic ones still render.

Every abuse here used to allocate hundreds of megabytes, recurse until Python
gave up, or burn CPU for minutes in the deliverer's shared event loop. Each
must now end in a TemplateError (a ValueError from ``check``, at save time)
long before it could hurt anyone; the exact timing is not the point, so the
bound checked is generous.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.deliverer import templates
from services.deliverer.channels.email.message import (
    DEFAULT_BODY,
    DEFAULT_HTML,
    DEFAULT_SUBJECT,
)
from services.deliverer.channels.mqtt.config import Config as MqttConfig
from services.deliverer.template_limits import (
    MAX_LOOP_ITEMS,
    MAX_RENDERED_CHARS,
    MAX_VALUE_CHARS,
)

# Refusals take about a millisecond; the unbounded versions took seconds to
# minutes. Generous, so a busy test machine does not make this flaky.
MAX_SECONDS = 2.0

BIG = f'"x" * {MAX_VALUE_CHARS}'  # the largest string a template may build


def _render(source: str, *, autoescape: bool = False, **fields: Any) -> str:
    context = templates.sample_context()
    context.update(fields)
    return templates.render(source, context, autoescape=autoescape)


def _refused(source: str, **fields: Any) -> str:
    """The TemplateError message for ``source``, checking it came quickly."""
    started = time.monotonic()
    with pytest.raises(templates.TemplateError) as raised:
        _render(source, **fields)
    assert time.monotonic() - started < MAX_SECONDS
    return str(raised.value)


# Jinja2's own sandbox, configured as ours was before the limits: realistic
# templates must render exactly as they do there.
_STOCK = {
    autoescape: ImmutableSandboxedEnvironment(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    for autoescape in (False, True)
}


def _stock_render(source: str, *, autoescape: bool = False, **fields: Any) -> str:
    context = templates.sample_context()
    context.update(fields)
    return _STOCK[autoescape].from_string(source).render(context)


# Refused when compiled: the same at save time and at send time, whether or
# not the construct would run for a given alert.
COMPILE_TIME_REFUSALS = [
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "macro"),
    ("{% if false %}{% macro f() %}x{% endmacro %}{% endif %}", "macro"),
    ("{% call range(3) %}x{% endcall %}", "call blocks"),
    ("{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "recursive loops"),
    (
        "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
        "loop inside another loop",
    ),
    (
        "{% for k in labels %}{% if k %}{% for c in k %}{% endfor %}{% endif %}"
        "{% endfor %}",
        "loop inside another loop",
    ),
    ("{% block b %}x{% endblock %}", "blocks"),
    ('{% extends "base" %}', "extends"),
    ('{% include "other" %}', "include"),
    ('{% import "m" as m %}', "import"),
    ('{% from "m" import f %}', "import"),
    ("{{ summary|center(1000000000) }}", "filter 'center' is not allowed"),
    ("{{ summary|wordwrap(1) }}", "filter 'wordwrap' is not allowed"),
    ("{{ [1]|batch(1000000000, 'x')|list }}", "filter 'batch' is not allowed"),
    ("{{ [1]|slice(1000000000)|list }}", "filter 'slice' is not allowed"),
    ("{% if false %}{{ summary|center(9) }}{% endif %}", "filter 'center'"),
    ("{% filter center(1000000000) %}x{% endfilter %}", "filter 'center'"),
]


@pytest.mark.parametrize(("source", "problem"), COMPILE_TIME_REFUSALS)
def test_unbounded_constructs_are_refused_at_compile_time(
    source: str, problem: str
) -> None:
    message = _refused(source)

    assert "TemplateSyntaxError (line 1)" in message
    assert problem in message


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}",
        "{{ 1" + " + 1" * 5000 + " }}",
        "{{ " + "[" * 2000 + "]" * 2000 + " }}",
    ],
)
def test_deep_nesting_is_a_template_error_not_a_crash(source: str) -> None:
    assert "too deeply nested" in _refused(source)


# Refused while rendering, before the oversized value is built.
OPERATOR_REFUSALS = [
    '{{ "a" * 10**8 }}',
    '{{ "a" * 10**10 }}',
    "{{ 10**10 * 'a' }}",
    "{{ [1] * 10**9 }}",
    "{{ (summary,) * 10**8 }}",
    "{{ 2 ** (10**8) }}",  # Jinja2's ** is left-associative
    "{{ 10 ** 400 }}",
    "{{ (10 ** 300) * (10 ** 300) }}",
    '{{ "%999999999d" % 1 }}',
    '{{ "%.999999999f" % 1.5 }}',
    '{{ "%*s" % (999999999, "x") }}',
    '{{ ("%(s)s" * 1000) % {"s": summary * 1000} }}',
    '{{ "%s" % ([' + BIG + "] * 2,) }}",
    "{% set a = " + BIG + " %}{{ a + a }}",
    "{% set a = " + BIG + " %}{{ [a] + [a] }}",
    "{% set a = " + BIG + " %}{{ a ~ a }}",
    "{% set a = " + BIG + " %}{{ a ~ [a] }}",
    # Dividing huge integers is quadratic: refused before it starts.
    "{{ 1" + "0" * 4000 + " // 7 }}",
]


def test_an_integer_literal_python_refuses_is_a_template_error() -> None:
    assert "4300 digits" in _refused("{{ 1" + "0" * 5000 + " }}")


@pytest.mark.parametrize("source", OPERATOR_REFUSALS)
def test_oversized_operator_results_are_refused(source: str) -> None:
    message = _refused(source)

    assert "LimitExceeded" in message
    assert "would build more than" in message or "would need a number" in message


def test_repeated_doubling_is_refused_before_it_grows() -> None:
    # Each line doubles the string: 30 lines would be 200 GB.
    doublings = "".join(f"{{% set s{n + 1} = s{n} ~ s{n} %}}" for n in range(30))

    message = _refused('{% set s0 = "x" * 100000 %}' + doublings + "{{ s30 }}")

    assert "'~' would build more than 200,000 characters" in message


def test_the_big_repetition_never_allocates_its_result() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(templates.TemplateError):
            _render('{{ "a" * 10**8 }}')
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 20_000_000  # 100 MB before the limits


FILTER_REFUSALS = [
    ('{{ ("a" * 1000)|replace("a", "b" * 1000) }}', "the replace filter"),
    ('{{ "ab"|replace("", "x" * 150000) }}', "the replace filter"),
    ("{{ summary|indent(1000000000) }}", "the indent filter"),
    ("{{ ((summary ~ '\\n') * 5000)|indent(50) }}", "the indent filter"),
    ('{{ range(1000)|join("x" * 100000) }}', "the join filter"),
    ('{{ range(1000)|map("string")|join("x" * 1000) }}', "the join filter"),
    ('{{ "%999999999s"|format("x") }}', "the format filter"),
    ("{{ 1|round(-1000000000) }}", "the round filter"),
    ("{{ 1.5|round(1000000000, 'ceil') }}", "the round filter"),
    ("{{ labels|tojson(1000000000) }}", "the tojson filter"),
    ('{{ ("x" * 100000)|list }}', "the list filter"),
    ('{{ ("1" * 100000)|int(base=2) }}', "number of more than 1,024 bits"),
    ("{% set a = " + BIG + " %}{{ [a, a]|string }}", "the string filter"),
]


@pytest.mark.parametrize(("source", "problem"), FILTER_REFUSALS)
def test_amplifying_filters_are_refused_before_they_build(
    source: str, problem: str
) -> None:
    message = _refused(source)

    assert "LimitExceeded" in message
    assert problem in message


@pytest.mark.parametrize(
    "source",
    [
        "{{ summary.center(10**9) }}",
        "{{ summary.ljust(10**9) }}",
        "{{ summary.rjust(10**9) }}",
        "{{ summary.zfill(10**9) }}",
        "{{ '\\t'.expandtabs(10**9) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ '{x:>999999999}'.format_map({'x': 1}) }}",
        "{{ ','.join(['x'] * 10) }}",
        "{{ summary.encode() }}",
        "{{ summary.translate({}) }}",
        "{{ labels.copy() }}",
        "{{ range.__call__(3) }}",
        "{{ (labels.items()|list).index(1) }}",
        "{{ cycler(1, 2).__next__() }}",
    ],
)
def test_methods_outside_the_allow_list_are_refused(source: str) -> None:
    # "calling x() is not allowed", or the sandbox's own refusal of dunders.
    assert "SecurityError" in _refused(source)


@pytest.mark.parametrize(
    "source",
    [
        '{{ "aaaa".replace("a", "b" * 100000) }}',
        '{{ ("a" * 100000).replace("", "-") }}',
        '{{ ("," * 100000).split(",") }}',
        '{{ ("x " * 60000).split() }}',
    ],
)
def test_allowed_methods_are_bounded_too(source: str) -> None:
    message = _refused(source)

    assert "would build more than 200,000 characters" in message


WORK_REFUSALS = [
    # Loops: bounded range, bounded items, bounded work per item.
    ("{% for i in range(100000) %}{% endfor %}", "range() would produce"),
    ("{{ range(10**9)|list|length }}", "range() would produce"),
    ('{% for c in "x" * 100000 %}{% endfor %}', "at most 1,000 items"),
    (
        "{% set a = " + BIG + " %}{% set b %}{% for i in range(1000) %}{{ a }}"
        "{% endfor %}{% endset %}{{ b|length }}",
        "characters of text in all",
    ),
    (
        "{% set b %}{% for i in range(1000) %}"
        + "literal text " * 400
        + "{% endfor %}{% endset %}{{ b|length }}",
        "characters of text in all",
    ),
    (
        "{% set a = " + BIG + " %}{% for i in range(1000) %}{% set b = a|upper %}"
        "{% endfor %}",
        "characters of text in all",
    ),
    (
        "{% set a = " + BIG + " %}{% set n = 'x' * 600 ~ 'y' %}"
        "{% for i in range(1000) %}{% if n in a %}{% endif %}{% endfor %}",
        "characters of text in all",
    ),
    (
        "{% set a = " + BIG + " %}{% for i in range(1000) %}{% if a is lower %}"
        "{% endif %}{% endfor %}",
        "characters of text in all",
    ),
    (
        "{% for i in range(1000) %}"
        + "{% if i == 1 and i == 2 or i == 3 %}{% endif %}" * 40
        + "{% endfor %}",
        "steps",
    ),
    (
        '{% set l = ("x" * 39000)|list %}'
        + '{{ l|map("upper")|map("lower")|map("trim")|list|length }}' * 5,
        "steps",
    ),
    ("{% for i in range(1000) %}{{ summary * 1000 }}{% endfor %}", "characters"),
]


@pytest.mark.parametrize(("source", "problem"), WORK_REFUSALS)
def test_runaway_work_is_stopped(source: str, problem: str) -> None:
    assert problem in _refused(source)


def test_rendered_text_is_capped_without_building_it_first() -> None:
    message = _refused(f"{{% for i in range(1000) %}}{{{{ {BIG} }}}}{{% endfor %}}")

    assert f"rendered text longer than {MAX_RENDERED_CHARS} characters" in message


def test_lipsum_is_not_available() -> None:
    assert "'lipsum' is undefined" in _refused("{{ lipsum(1000000) }}")


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "macro"),
        ('{{ "a" * 10**10 }}', "LimitExceeded"),
        ("{{ summary.center(10**9) }}", "SecurityError"),
        ("{% for i in range(10**6) %}{% endfor %}", "range()"),
        ("{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}", "too deeply nested"),
    ],
)
def test_check_turns_every_refusal_into_the_value_error_validators_expect(
    source: str, problem: str
) -> None:
    with pytest.raises(ValueError, match="template error") as raised:
        templates.check(source)

    assert problem in str(raised.value)


def test_mqtt_topic_validation_refuses_the_abuse_as_a_value_error() -> None:
    with pytest.raises(ValueError, match="LimitExceeded"):
        MqttConfig(host="mqtt.example.com", topic_template='a/{{ "b" * 10**9 }}')


def test_each_render_gets_a_fresh_budget() -> None:
    # Uses about half the per-render budget: fine once, and fine again.
    source = "{% set a = " + BIG + " %}" + "{{ (a|upper)|length }}" * 3

    assert _render(source) == "200000" * 3
    assert _render(source) == "200000" * 3


# Templates customers and the defaults use, with what they render for the
# sample alert.
REALISTIC = [
    (
        "[{{ severity }}] {{ kind }}: {{ summary }}",
        "[CRITICAL] OPEN: Link down on router-1",
    ),
    (
        "{{ severity|lower }} · {{ device_id }}: {{ summary }}",
        "critical · router-1: Link down on router-1",
    ),
    (
        "[{{ site_id }}] {{ summary }} ({{ labels.region }})",
        "[site-1] Link down on router-1 (eu)",
    ),
    ("alerts/{{ labels.rack }}", "alerts/"),
    ("{{ site_id ~ '/' ~ device_id }}", "site-1/router-1"),
    ("{{ summary|truncate(9, true, '…', 0) }}", "Link dow…"),
    ("{{ summary|replace('router', 'rtr')|upper }}", "LINK DOWN ON RTR-1"),
    ("{{ details|wordcount }} words, {{ summary|length }} chars", "7 words, 21 chars"),
    ("{{ summary.split()|join('_') }}", "Link_down_on_router-1"),
    (
        "{{ summary.upper() if severity.startswith('CRIT') else summary }}",
        "LINK DOWN ON ROUTER-1",
    ),
    ("{{ device_id.replace('-', ' ').title() }}", "Router 1"),
    ("{{ labels.get('region', '-') }}/{{ labels.get('zone', '-') }}", "eu/-"),
    ("{% for k, v in labels.items() %}{{ k }}={{ v }}{% endfor %}", "region=eu"),
    ("{{ labels|dictsort|map('join', '=')|join(', ') }}", "region=eu"),
    (
        "{% for name, value in labels|dictsort %}{{ loop.index }}. {{ name }}: "
        "{{ value }}{{ loop.cycle(';', '.') }}{% endfor %}",
        "1. region: eu;",
    ),
    (
        "{% set sep = joiner(', ') %}{% for i in range(3) %}{{ sep() }}{{ i + 1 }}"
        "{% endfor %}",
        "1, 2, 3",
    ),
    (
        "{% set ns = namespace(found=false) %}{% for k in labels %}"
        "{% if k == 'region' %}{% set ns.found = true %}{% endif %}{% endfor %}"
        "{{ ns.found }}",
        "True",
    ),
    (
        "{% set title %}{{ severity }} {{ kind }}{% endset %}{{ title|lower }}",
        "critical open",
    ),
    ("{% filter upper %}{{ alert_type }}{% endfilter %}", "LINK_DOWN"),
    ("{{ '%s: attempt %02d' % (device_id, attempt) }}", "router-1: attempt 01"),
    ("{{ '%-8s|' % severity }}{{ '%.1f'|format(2.25) }}", "CRITICAL|2.2"),
    ("{{ attempt * 2 + 1 }} {{ 2 ** 10 }} {{ 7 // 2 }} {{ 7 % 3 }}", "3 1024 3 1"),
    ("{{ '-' * 20 }}", "-" * 20),
    ("{{ {'id': alert_id}|tojson }}", '{"id": "sample-alert"}'),
    ("{{ summary|urlencode }}", "Link%20down%20on%20router-1"),
    ("{{ '<b>x</b>'|striptags }} {{ ' x '|trim }}", "x x"),
    ("{{ [3, 1, 2]|sort|first }}{{ [3, 1, 2]|max }}{{ [1, 1]|unique|list }}", "13[1]"),
    ("{{ nope|default('n/a') }} {{ none|d('-', true) }}", "n/a -"),
    ("{{ summary[:4] }} {{ 'x' in summary }} {{ kind is string }}", "Link False True"),
    ("{% raw %}lab/{{site}}/alerts{% endraw %}", "lab/{{site}}/alerts"),
    ("{% if is_test %}[TEST] {% endif %}{{ summary }}", "[TEST] Link down on router-1"),
]


@pytest.mark.parametrize(("source", "expected"), REALISTIC)
def test_realistic_templates_render_as_jinja_renders_them(
    source: str, expected: str
) -> None:
    assert _render(source) == expected == _stock_render(source)
    assert templates.check(source) == source


@pytest.mark.parametrize(
    ("source", "autoescape"),
    [
        (DEFAULT_SUBJECT, False),
        (DEFAULT_BODY, False),
        (DEFAULT_HTML, True),
        (MqttConfig.model_fields["topic_template"].default, False),
    ],
)
def test_the_default_templates_render_as_jinja_renders_them(
    source: str, autoescape: bool
) -> None:
    rendered = _render(source, autoescape=autoescape)

    assert rendered == _stock_render(source, autoescape=autoescape)
    assert templates.check(source, autoescape=autoescape) == source


def test_html_escaping_is_unchanged() -> None:
    source = "<p>{{ summary }}</p>{{ summary ~ '<br>' }}{{ '<i>x</i>'|e }}"
    fields = {"summary": "<script>x</script>"}

    rendered = _render(source, autoescape=True, **fields)

    assert rendered == _stock_render(source, autoescape=True, **fields)
    assert rendered == (
        "<p>&lt;script&gt;x&lt;/script&gt;</p>"
        "&lt;script&gt;x&lt;/script&gt;&lt;br&gt;"
        "&lt;i&gt;x&lt;/i&gt;"
    )


def test_concatenation_of_escaped_text_is_unchanged_without_autoescape() -> None:
    # Jinja2 itself joins str() of each part when autoescape is off.
    assert _render("{{ ('<b>'|e) ~ '<i>' }}") == "&lt;b&gt;<i>"


def test_a_loop_over_many_labels_and_long_details_still_renders() -> None:
    labels = templates.Labels({f"label{n:04}": f"value {n}" for n in range(500)})
    details = "carrier lost on ge-0/0/1; " * 4000  # about 100 KB

    rendered = _render(DEFAULT_BODY, labels=labels, details=details)

    assert rendered == _stock_render(DEFAULT_BODY, labels=labels, details=details)
    assert rendered.count("label") == 500
    assert details in rendered


def test_a_loop_may_run_over_the_maximum_number_of_items() -> None:
    source = f"{{% for i in range({MAX_LOOP_ITEMS}) %}}{{{{ i }}}},{{% endfor %}}"

    assert _render(source).count(",") == MAX_LOOP_ITEMS


def test_undefined_names_still_fail_with_jinjas_message() -> None:
    assert "'nope' is undefined" in _refused("{{ nope }}")
    assert "'nope' is undefined" in _refused("{{ nope ~ 'x' }}")
    assert "'nope' is undefined" in _refused("{% for x in nope %}{% endfor %}")
    assert "'nope' is undefined" in _refused("{{ nope() }}")
    assert "has no attribute 'upper'" in _refused("{{ site_id.upper() }}", site_id=None)
