# `make run` starts the app, `make test` runs the tests; both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Test processes for make test (pytest-xdist). The PostgreSQL tests share one database:
# they are one xdist group (--dist loadgroup), run by one process in turn.
TEST_WORKERS ?= 2

.PHONY: run test lint demo emulator bench messages clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python app.py

demo: $(STAMP)
	OTAJOB_DEMO=1 $(BIN)/python app.py

emulator: $(STAMP)
	$(BIN)/python -m bot.emulator

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# After changing a template's words: extract them into locales/messages.pot and add the
# new ones to every locales/<language>.po, to be translated (the tests list what is not).
messages: $(STAMP)
	$(BIN)/pybabel extract -F locales/babel.cfg -k _n_ --no-location --sort-output \
		--omit-header -o locales/messages.pot .
	for po in locales/*.po; do \
		lang=$$(basename $$po .po); \
		$(BIN)/pybabel update -i locales/messages.pot -o $$po -l $$lang \
			--no-fuzzy-matching --ignore-obsolete --width 100; \
	done

bench: $(STAMP)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.capacity
	OTAJOB_BENCH_POSTGRES_URL="$${OTAJOB_BENCH_POSTGRES_URL:-$$(bash .ci/postgres.sh || true)}" \
		$(BIN)/python -m bench.replicas

clean:
	rm -rf $(VENV)
