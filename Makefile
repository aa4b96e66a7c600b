# Everyday commands. `make install` once on a fresh machine, then `make run` or `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install system-deps run test lint format stack-down clean

# Debian packages for the local stack and test peers (PostgreSQL server, Mosquitto,
# net-snmp's snmptrapd, Maven and Java for Kafka, Chromium for the web page's
# browser tests). Needs root.
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  postgresql mosquitto mosquitto-clients snmptrapd snmp maven openjdk-17-jre-headless \
	  chromium >/dev/null

$(BIN)/switchboard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/switchboard

# The main job: the whole pipeline on a realistic alert stream, every delivery checked.
run: install
	$(BIN)/switchboard demo

# The whole test suite; brings up the stack it needs itself.
test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

stack-down:
	$(BIN)/switchboard stack down

clean: stack-down
	rm -rf .switchboard
