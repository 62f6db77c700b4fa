# Two commands matter: `make demo` and `make test`. Both create the virtual environment
# in .venv on first use (pinned by constraints.txt) and reuse it afterwards.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
TEST_WORKERS ?= auto

.PHONY: demo test test-fast wheel-check lint lock clean-state

$(STAMP): pyproject.toml constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/goalpost demo

# Every tier (unit, integration, e2e), spread over the machine's cores: what .ci/run runs.
test: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The inner loop: unit and integration tests, no SQLMesh build, no emulators.
test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not e2e" $(PYTEST_ARGS)

# The built wheel in a clean virtual environment, run from an empty folder.
wheel-check:
	PYTHON=$(PYTHON) .ci/wheel-check

lint: $(STAMP)
	$(VENV)/bin/ruff check goalpost pipelines backup sqlmesh extensions metabase sandbox tests bench

# Re-pin every dependency after changing pyproject.toml.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^goalpost' > constraints.txt
	rm -rf .lock-venv

clean-state:
	-$(VENV)/bin/goalpost db stop
	rm -rf .goalpost
