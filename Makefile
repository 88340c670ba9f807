# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SAMPLE := sample
SAMPLE_COUNT ?= 2000

.PHONY: demo test lint browser bench clean opensearch-cluster

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## demo: install, generate a sample collection, index it and serve the page (Ctrl-C stops)
demo: $(INSTALLED)
	$(BIN)/searchidx sample $(SAMPLE) --count $(SAMPLE_COUNT) --stories 0.2  # some stories covered by several outlets
	$(BIN)/searchidx index $(SAMPLE) --index index || test $$? -eq 3  # 3: some files skipped
	$(BIN)/searchidx status --index index
	$(BIN)/searchidx serve --index index

## test: install, lint, type-check and run every test (browser tests use Debian's chromium;
## the OpenSearch tests a real cluster built from Maven Central jars)
test: $(INSTALLED) browser opensearch-cluster
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

## bench: searchidx against SQLite FTS5 and tantivy (never part of `make test`); see README
BENCH_SIZES ?= 10000,100000
BENCH_QUERIES ?= 200
BENCH_ARGS ?=
bench: $(INSTALLED)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.run --sizes $(BENCH_SIZES) --queries $(BENCH_QUERIES) $(BENCH_ARGS)

## opensearch-cluster: build the launcher of the OpenSearch test cluster that tests/opensearch/
## start (real nodes in one JVM, from Maven Central jars; needs Java 17 and Maven, caches in ~/.m2)
LAUNCHER := tests/opensearch/launcher
LAUNCHER_JAR := $(LAUNCHER)/target/testcluster.jar
opensearch-cluster: $(LAUNCHER_JAR)

$(LAUNCHER_JAR): $(LAUNCHER)/pom.xml $(shell find $(LAUNCHER)/src -type f)
	cd $(LAUNCHER) && mvn -B -q package
	touch $@

# Debian's chromium for the browser tests; installed once, as root (CI and these machines).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y --no-install-recommends chromium; }

clean:
	rm -rf $(VENV) $(SAMPLE) $(LAUNCHER)/target index/gen-* index/CURRENT index/.writer.lock
