"""docker-compose.yml is valid Compose and agrees with the code it runs.

Docker does not run on the development machines, so this is what keeps the
compose file honest: the Compose Specification's own schema, plus checks that
its commands, settings, hosts and ports are the ones the code uses.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer
import yaml

from switchboard.cli import app
from switchboard.settings import PROJECT_ROOT, Settings

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = PROJECT_ROOT.parent / "shared" / "vendor" / "compose-spec.schema.json"
OUR_SERVICES = ("api", "relay", "router", "deliverer", "recorder")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def our_image_services(compose: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "switchboard:latest"
    }


@pytest.mark.skipif(
    not COMPOSE_SCHEMA.exists(), reason="shared/vendor is not beside the checkout"
)
def test_compose_file_matches_the_compose_specification(compose: dict) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())

    errors = list(jsonschema.Draft7Validator(schema).iter_errors(compose))

    assert errors == []


def test_every_service_of_the_design_has_a_container(compose: dict) -> None:
    assert set(OUR_SERVICES) <= set(our_image_services(compose))
    assert {"kafka", "postgres", "mosquitto"} <= set(compose["services"])


def resolve_command(words: list[str]) -> Any:
    """The command-line command that ``switchboard <words>`` runs."""
    command = typer.main.get_command(app)
    for word in words:
        if word.startswith("-") or not hasattr(command, "commands"):
            break
        command = command.commands[word]
    return command


def test_every_container_runs_a_real_command_with_real_options(compose: dict) -> None:
    for name, service in our_image_services(compose).items():
        entrypoint = service.get("entrypoint")
        if entrypoint:
            words_list = [
                shlex.split(part.strip())[1:] for part in entrypoint[-1].split("&&")
            ]
        else:
            words_list = [service["command"]]
        for words in words_list:
            command = resolve_command(words)
            options = {opt for param in command.params for opt in param.opts}
            used = {word for word in words if word.startswith("--")}
            assert used <= options, f"{name}: unknown options {used - options}"


def test_every_environment_variable_is_a_setting(compose: dict) -> None:
    fields = set(Settings.model_fields)
    for service in our_image_services(compose).values():
        for variable in service["environment"]:
            assert variable.startswith("SWITCHBOARD_")
            assert variable.removeprefix("SWITCHBOARD_").lower() in fields, variable


def test_addresses_point_at_the_compose_services(compose: dict) -> None:
    environment = compose["services"]["api"]["environment"]
    database = urlsplit(environment["SWITCHBOARD_DATABASE_URL"])
    postgres = compose["services"]["postgres"]["environment"]

    assert environment["SWITCHBOARD_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert (
        "PLAINTEXT://kafka:9092"
        in compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert (database.username, database.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert environment["SWITCHBOARD_MQTT_HOST"] == "mosquitto"


def test_api_port_is_the_settings_default(compose: dict) -> None:
    published = compose["services"]["api"]["ports"][0]

    assert published.endswith(f":{Settings.model_fields['api_port'].default}")


def test_dockerfile_copies_everything_the_package_needs() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()

    for folder in (
        "switchboard",
        "services",
        "schemas",
        "migrations",
        "deploy",
        "mibs",
    ):
        assert f"COPY {folder} ./{folder}" in dockerfile
        assert (PROJECT_ROOT / folder).is_dir(), folder
    assert Path(PROJECT_ROOT / "pyproject.toml").exists()
