# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Build the demo dataset into ./maphc2f (no download needed) and its preview sheet.
demo: $(STAMP)
	$(BIN)/maphc2f-build --source demo --out maphc2f
	$(BIN)/maphc2f preview maphc2f --out demo_sheet.png

## The whole test suite (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest -q

## Everything but the slow cases.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python scripts/bench_synthesis.py

clean:
	rm -rf build dist *.egg-info .pytest_cache demo_sheet.png
