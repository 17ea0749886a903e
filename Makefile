# Works on a fresh clone: every target creates .venv (python3 -m venv) if it is missing
# and installs the project into it; pip reinstalls only when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run demo test lint bench soak histories install install-test clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## run: the local stack in the foreground (dev server + UI on :8233 + worker); Ctrl-C stops
run: install
	$(BIN)/onboarding up

## demo: sample accounts that escalate within a minute (needs `make run` in another shell)
demo: install
	$(BIN)/onboarding demo

## lint: ruff, formatting, types, import layers
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy workflows activities starter worker.py bench
	$(BIN)/lint-imports

## test: lint, then the whole test suite
test: lint
	$(BIN)/pytest -q

## bench: ingress vs bare SDK on a throwaway dev server, what the onboarding records cost
## per onboarding, then the portfolio report and the dashboard over 10,000 onboardings
## against their 1 s budget, the playbook simulator on 1,000 onboardings, then the
## worker's memory and CPU per onboarding vs bare workflows, and its memory as it ages,
## onboardings driven to handoff on the time-skipping server and the status query, each
## vs bare workflows (about 27 minutes; not part of test)
bench: install-test
	$(BIN)/python bench/ingress.py
	$(BIN)/python bench/records_cost.py
	$(BIN)/python bench/records.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/simulator.py
	$(BIN)/python bench/worker_cost.py
	$(BIN)/python bench/memory_over_life.py
	$(BIN)/python bench/time_skipped.py
	$(BIN)/python bench/status_query.py

## histories: record the workflow tests' histories for the replay test (VERSION=v13)
histories: install-test
	@test -n "$(VERSION)" || (echo "usage: make histories VERSION=<new folder under tests/histories>"; exit 2)
	RECORD_HISTORIES=$(VERSION) $(BIN)/pytest -q tests/test_workflow.py \
		tests/test_events_before_deal.py tests/test_continue_as_new.py tests/test_event_time.py \
		tests/test_deal_lost.py tests/test_champion_change.py tests/test_skip_net.py \
		tests/test_products.py tests/test_success_plan.py tests/test_tracks.py tests/test_behavior.py \
		tests/test_expansion.py tests/test_programs.py tests/test_assignment.py \
		tests/test_business_calendar.py tests/test_activation.py tests/test_measures.py \
		tests/test_trial_conversion.py tests/test_migration.py tests/test_health_alerts.py

## soak: 1,000 onboardings, event storm, worker SIGKILLs; every effect and record counted (about 6 minutes)
soak: install-test
	$(BIN)/python bench/soak.py

## clean-data: forget the local dev server's state (.data/)
clean-data:
	rm -rf .data
