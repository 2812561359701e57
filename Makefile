# The two commands of README.md: `make run` and `make test`.
PYTHON ?= python3
# Development and tests: requirements-dev.txt (the runtime lock and the test tools).
VENV ?= .venv
BIN := $(VENV)/bin
# What ships: requirements.txt alone, as the image installs it (make serve).
RUNTIME_VENV ?= .venv-runtime
PIP_INSTALL = -m pip install --quiet --require-hashes --disable-pip-version-check
ADDR ?= 127.0.0.1:8000
# The PostgreSQL half of the suite; pytest-django creates and drops test_clips.
PG_TEST_URL ?= postgres://postgres:postgres@127.0.0.1:5432/clips

.PHONY: run serve test test-quick test-sqlite test-postgres lint lock

# Each venv installs one lock, every package pinned with its hashes; `pip check`
# fails the install when the lock misses what a package needs.
$(BIN)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP_INSTALL) -r requirements-dev.txt
	$(BIN)/python -m pip check
	touch $@

$(RUNTIME_VENV)/bin/.installed: requirements.txt
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python $(PIP_INSTALL) -r requirements.txt
	$(RUNTIME_VENV)/bin/python -m pip check
	touch $@

# Compiles requirements*.in into the locks. Upgrade one package (README):
# make lock UPGRADE=django
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	$(if $(UPGRADE),--upgrade-package $(UPGRADE))
lock: $(BIN)/.installed
	$(UV_COMPILE) requirements.in -o requirements.txt
	$(UV_COMPILE) requirements-dev.in -o requirements-dev.txt

run: $(BIN)/.installed
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py loaddata sample_clips
	DEBUG=1 $(BIN)/python manage.py runserver $(ADDR)

# Production's topology, in the foreground: nginx on $PORT (8080) in front of
# gunicorn, the Celery worker and beat, Redis, under supervisord (deploy/serve.py,
# deploy/Procfile), from the runtime lock alone. Needs Debian's nginx and
# redis-server, and PostgreSQL (DATABASE_URL; see README).
serve: $(RUNTIME_VENV)/bin/.installed
	$(RUNTIME_VENV)/bin/python deploy/serve.py

# ruff, and import-linter's contracts (pyproject.toml): imports run one way.
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

# The quick loop: unit and API tests, no servers started (clips/tests/system/).
test-quick: $(BIN)/.installed
	DATABASE_URL= $(BIN)/pytest -m "not system"

test-sqlite: $(BIN)/.installed
	DATABASE_URL= $(BIN)/pytest

test-postgres: $(BIN)/.installed
	DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest

test: lint test-sqlite test-postgres
