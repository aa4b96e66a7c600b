# Everyday commands. On a fresh Debian machine `make run` or `make test` (as root) is
# all it takes: `make install` installs the system packages and the venv itself.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install system-check system-deps run test lint format stack-down clean

# Debian packages for the local stack and test peers (PostgreSQL server, Mosquitto,
# net-snmp's snmptrapd, Maven and Java for Kafka, Chromium for the web page's
# browser tests). Needs root.
SYSTEM_PACKAGES := postgresql mosquitto mosquitto-clients snmptrapd snmp maven \
  openjdk-17-jre-headless chromium
APT_INSTALL := apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null

system-deps:
	$(APT_INSTALL)

$(BIN)/switchboard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The programs the local stack and the test peers run. Missing ones are installed
# from Debian packages when make runs as root; otherwise one line says what to do
# and the install goes on (linting needs none of them; Docker users bring their own).
system-check:
	@missing=""; \
	command -v java >/dev/null || missing="$$missing java"; \
	command -v mvn >/dev/null || missing="$$missing mvn"; \
	{ command -v pg_ctl && command -v initdb || \
	  ls /usr/lib/postgresql/*/bin/pg_ctl /usr/lib/postgresql/*/bin/initdb; \
	} >/dev/null 2>&1 || missing="$$missing pg_ctl/initdb"; \
	{ command -v mosquitto || test -x /usr/sbin/mosquitto; } >/dev/null \
	  || missing="$$missing mosquitto"; \
	{ command -v snmptrapd || test -x /usr/sbin/snmptrapd; } >/dev/null \
	  || missing="$$missing snmptrapd"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing system packages for:$$missing"; \
	  $(APT_INSTALL); \
	else \
	  echo "missing programs:$$missing; run \`make system-deps\` as root (Debian)" \
	    "or install them, else the stack and tests cannot start" >&2; \
	fi

install: system-check $(BIN)/switchboard

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
