"""Forms generated from the channel and rule models carry every value through."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import FormData

from services.api.models.channels import EXAMPLES
from services.api.ui.forms import (
    TYPE_TITLES,
    FormField,
    channel_fields,
    label_for,
    place_problems,
    rule_fields,
    secrets_body,
    settings_body,
)
from services.api.ui.rules import (
    evaluation_order,
    matches,
    new_priorities,
    rule_body,
)
from services.deliverer.channels import CHANNEL_SPECS
from switchboard.domain import ChannelType

KINDS = {"text", "textarea", "url", "integer", "number", "checkbox", "select"}
KINDS |= {"lines", "pairs", "json", "multi", "secret"}


def _submitted(fields: list[FormField]) -> FormData:
    """What a browser posts for ``fields`` as they are shown."""
    items: list[tuple[str, Any]] = []
    for form_field in fields:
        if form_field.kind == "checkbox":
            items += [(form_field.name, "on")] if form_field.value else []
        elif form_field.kind == "multi":
            items += [(form_field.name, value) for value in form_field.value]
        else:
            items.append((form_field.name, str(form_field.value)))
    return FormData(items)


@pytest.mark.parametrize("channel_type", [str(t) for t in ChannelType])
def test_a_channel_form_shows_and_posts_back_every_setting(channel_type: str) -> None:
    spec = CHANNEL_SPECS[ChannelType(channel_type)]
    stored = spec.config_model.model_validate(EXAMPLES[channel_type]["config"])
    shown = stored.model_dump(mode="json")
    settings, secrets = channel_fields(channel_type, shown, {})
    assert TYPE_TITLES[channel_type]
    assert {f.kind for f in settings + secrets} <= KINDS
    assert all(f.label and f.html_id.startswith("f-") for f in settings + secrets)

    problems: dict[str, str] = {}
    created = settings_body(settings, _submitted(settings), problems, editing=False)
    assert problems == {}
    assert spec.config_model.model_validate(created) == stored
    # On edit an emptied input is sent as null: the API then restores its default.
    edited = settings_body(settings, _submitted(settings), problems, editing=True)
    merged = {name: value for name, value in edited.items() if value is not None}
    assert spec.config_model.model_validate(merged) == stored


def test_secrets_are_sent_only_when_typed_or_removed() -> None:
    _, secrets = channel_fields("webhook", None, {"signing_secret": True})
    assert secrets[0].secret_set and secrets[0].value == ""
    assert secrets_body(secrets, FormData([("secrets.signing_secret", "")]), True) == {}
    removed = FormData([("clear.secrets.signing_secret", "on")])
    assert secrets_body(secrets, removed, True) == {"signing_secret": None}
    typed = FormData([("secrets.signing_secret", " whsec_x ")])
    assert secrets_body(secrets, typed, False) == {"signing_secret": "whsec_x"}


def test_problems_go_beside_the_input_they_name() -> None:
    settings, _ = channel_fields("email")
    general = place_problems(
        settings,
        {"config.to.1": "not an address", "config": "needs tls", "x": "odd"},
        {"config": "Settings"},
    )
    to = next(f for f in settings if f.name == "config.to")
    assert to.error == "not an address"
    assert general == ["Settings: needs tls", "x: odd"]


def test_a_rule_form_posts_back_every_field() -> None:
    channel = {"id": "5b0c2f8e-3f7a-4d7e-9a51-2f1d9c0b6a11", "name": "NOC"}
    rule = {
        "channel_id": channel["id"],
        "name": "Core",
        "priority": 10,
        "site_ids": ["s1", "s2"],
        "device_prefixes": ["core-"],
        "alert_types": [],
        "min_severity": "HIGH",
        "deliver_on": ["OPEN", "CLOSED"],
        "throttle_minutes": 15,
        "stop_on_match": True,
        "enabled": False,
    }
    fields = rule_fields(rule, [channel])
    assert rule_body(fields, _submitted(fields), {}, editing=True) == rule
    assert matches(rule) == [
        "Severity HIGH or worse",
        "Sites: s1, s2",
        "Devices starting with: core-",
        "Event kinds: OPEN, CLOSED",
    ]


def test_reordering_swaps_or_renumbers_priorities() -> None:
    rules = [{"id": "a", "priority": 5}, {"id": "b", "priority": 7}]
    assert new_priorities(rules, 1, 0) == {"b": 5, "a": 7}
    tied = [{"id": "a", "priority": 100}, {"id": "b", "priority": 100}]
    assert new_priorities(tied, 1, 0) == {"b": 10, "a": 20}
    # Swapping c and a alone would tie a third rule with c, and the router
    # breaks that tie by id (b before c): everything is renumbered instead.
    third = [
        {"id": "c", "priority": 10},
        {"id": "a", "priority": 20},
        {"id": "b", "priority": 20},
    ]
    assert new_priorities(third, 1, 0) == {"a": 10, "c": 20, "b": 30}
    assert [r["id"] for r in evaluation_order(list(reversed(third)))] == [
        "c",
        "a",
        "b",
    ]
    assert label_for("timeout_s") == "Timeout (seconds)"
    assert label_for("ca_certificate_pem") == "CA certificate PEM"
