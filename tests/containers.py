"""Kafka, PostgreSQL and Mosquitto in Docker through testcontainers, for Docker users.

Selected with SWITCHBOARD_TEST_BACKEND=testcontainers (install the `docker`
extra). It starts the three containers once per test session and points the
SWITCHBOARD_ address settings at them, so the rest of the suite runs unchanged.
Docker does not run on Switchboard's own development and CI machines, so this
path is kept deliberately small and is not exercised there.
"""

from __future__ import annotations

import atexit
import os


def start_containers() -> None:
    """Start the containers and export their addresses as settings."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
    postgres = PostgresContainer(
        "postgres:16",
        username="switchboard",
        password="switchboard",
        dbname="switchboard",
    )
    mosquitto = (
        DockerContainer("eclipse-mosquitto:2")
        .with_command("mosquitto -c /mosquitto-no-auth.conf")
        .with_exposed_ports(1883)
    )
    for container in (kafka, postgres, mosquitto):
        container.start()
        atexit.register(container.stop)
    wait_for_logs(mosquitto, "running")

    os.environ["SWITCHBOARD_KAFKA_BOOTSTRAP"] = kafka.get_bootstrap_server()
    os.environ["SWITCHBOARD_DATABASE_URL"] = postgres.get_connection_url(driver=None)
    os.environ["SWITCHBOARD_MQTT_HOST"] = mosquitto.get_container_host_ip()
    os.environ["SWITCHBOARD_MQTT_PORT"] = str(mosquitto.get_exposed_port(1883))
    os.environ["SWITCHBOARD_STACK_COMPONENTS"] = ""
