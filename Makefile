# The two commands of README.md: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ADDR ?= 127.0.0.1:8000
# The PostgreSQL half of the suite; pytest-django creates and drops test_clips.
PG_TEST_URL ?= postgres://postgres:postgres@127.0.0.1:5432/clips

.PHONY: run serve test test-sqlite test-postgres lint

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py loaddata sample_clips
	DEBUG=1 $(BIN)/python manage.py runserver $(ADDR)

# Production's topology, in the foreground: nginx on $PORT (8080) in front of
# gunicorn, Redis, under honcho (deploy/serve.py, deploy/Procfile). Needs Debian's
# nginx and redis-server, and PostgreSQL (DATABASE_URL; see README).
serve: $(BIN)/.installed
	$(BIN)/python deploy/serve.py

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-sqlite: $(BIN)/.installed
	DATABASE_URL= $(BIN)/pytest

test-postgres: $(BIN)/.installed
	DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest

test: lint test-sqlite test-postgres
