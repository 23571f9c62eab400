# Puhui: the two commands of the README, and the pieces they are made of.
#   make demo   build, start the local runner (embedded backend), seed, walk through, stop
#   make test   fmt, clippy, unit + conformance (both adapters) + end-to-end tests, API fuzzing, cfn-lint
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
CARGO ?= cargo
# Tools installed into the repository's own virtualenv; the stamp changes when the pins do.
TOOLS := $(VENV)/.tools-$(shell cksum < tests/requirements.txt | cut -d' ' -f1)

.PHONY: demo serve test lint unit fuzz-api cfn-lint tools local-bins clean bench-coldstart bench-flow

demo: local-bins
	target/debug/samplekit demo --runner target/debug/puhui-local

serve: local-bins
	@echo "Dev token for Bank of Ningbo's product admin (valid 1 h):"
	@target/debug/samplekit token --bank nbcb --roles product_admin
	@echo "Try: curl -s 'http://127.0.0.1:8080/v1/catalogue?region=330203' ; seed with: target/debug/samplekit seed --url http://127.0.0.1:8080"
	target/debug/puhui-local

local-bins:
	$(CARGO) build -p puhui-runner -p puhui-samplekit

tools: $(TOOLS)

$(TOOLS): tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	rm -f $(VENV)/.tools-*
	touch $@

test: tools lint unit fuzz-api cfn-lint

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit, conformance (embedded and AWS adapters) and end-to-end tests, with a local AWS-API
# server (moto) started for the run and stopped after it. The end-to-end test runs every Lambda
# under `cargo lambda watch`, so the function binaries are built first.
FUNCTIONS := product-listing scan-submit bank-desk demand-dispatch notify reminders outbox-relay risk-scan risk-worker risk-desk model-score model-batch data-query data-ingest data-export snapshot-build data-quality

unit: tools
	$(CARGO) build $(addprefix -p ,$(FUNCTIONS)) -p puhui-runner -p puhui-samplekit
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" tests/scripts/with-moto.sh $(CARGO) test --workspace --no-fail-fast

# Generated requests against the OpenAPI contract on the local runner: no input may cause a 5xx.
fuzz-api: tools local-bins
	tests/scripts/fuzz-api.sh

cfn-lint: tools
	$(VENV)/bin/cfn-lint infra/template.yaml

clean:
	rm -rf target .puhui $(VENV)

# Release binary size and cold start (process start to first response) under the cargo-lambda
# emulator, on the AWS adapter against moto. Results go to BENCHMARKS.md by hand.
bench-coldstart: tools
	$(VENV)/bin/cargo-lambda lambda build --release --compiler cargo -p product-listing
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" tests/scripts/with-moto.sh $(VENV)/bin/python samplekit/bench/coldstart.py --runs 30

# In-process latency of submit → dispatched offers on the embedded backend (10,000 demands).
bench-flow:
	$(CARGO) bench -p puhui-services --bench financing_flow

# Backtest over 1,380,000 synthetic firms x 100 random rules, against Polars and DuckDB on the
# same Parquet snapshot with 2 threads (both installed into a throwaway venv outside the repo).
BENCH_VENV ?= /tmp/benchvenv
.PHONY: bench-scan
bench-scan:
	$(CARGO) build --release -p puhui-samplekit
	test -x $(BENCH_VENV)/bin/python || (python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install --quiet polars duckdb)
	$(BENCH_VENV)/bin/python samplekit/bench/scan_vs_polars.py --firms 1380000 --rules 100 --threads 2

# Ingest of one 1,380,000-row government file (CSV, then Parquet) into a fresh embedded backend:
# rows per second and the process's peak memory.
.PHONY: bench-ingest
bench-ingest:
	samplekit/bench/ingest.sh

# Indicator snapshot build for a region's month: 1,380,000 firms' previous snapshot, bases 6
# and 12 months back, and the month's inputs (4 sources, 90% of firms each, 1% new firms) in a
# local blob directory, then one timed build and publish on the embedded blob store (peak RSS
# from GNU time).
SNAPSHOT_BENCH_DIR ?= /tmp/puhui-snapshot-bench
.PHONY: bench-snapshot
bench-snapshot:
	$(CARGO) build --release -p puhui-samplekit
	rm -rf $(SNAPSHOT_BENCH_DIR)
	target/release/samplekit snapshot-inputs --dir $(SNAPSHOT_BENCH_DIR) --firms 1380000 --period 2026-10
	/usr/bin/time -v target/release/samplekit snapshot-build --dir $(SNAPSHOT_BENCH_DIR) --period 2026-10 2>&1 \
		| grep -E 'snapshot|Elapsed|Maximum resident'

# Screening's first page (cold: fresh service, nothing remembered) and second page over the
# 1,380,000-firm region snapshot of bench-snapshot (built here once; delete the directory to
# build it again), for each filter case of samplekit's screening_bench::CASES, 3 runs each;
# peak RSS per case from GNU time.
SCREENING_BENCH_DIR ?= /tmp/puhui-screening-bench
SCREENING_CASES := province section district-class-years grade-headcount-clear narrow all-filters
.PHONY: bench-screening
bench-screening:
	$(CARGO) build --release -p puhui-samplekit
	test -f $(SCREENING_BENCH_DIR)/.built-2026-10 || ( rm -rf $(SCREENING_BENCH_DIR) && \
		target/release/samplekit snapshot-inputs --dir $(SCREENING_BENCH_DIR) --firms 1380000 --period 2026-10 && \
		target/release/samplekit snapshot-build --dir $(SCREENING_BENCH_DIR) --period 2026-10 && \
		touch $(SCREENING_BENCH_DIR)/.built-2026-10 )
	for c in $(SCREENING_CASES); do \
		/usr/bin/time -v target/release/samplekit screening-bench --dir $(SCREENING_BENCH_DIR) --case $$c --runs 3 2>&1 \
			| grep -E 'screening|Elapsed|Maximum resident'; \
	done

# Model engines (criterion), ONNX Runtime side by side on the same files and rows (ORT installed
# into a throwaway venv outside the repo), and one in-process score on the embedded backend.
ONNX_VENV ?= /tmp/onnxvenv
.PHONY: bench-models
bench-models:
	$(CARGO) bench -p puhui-engines --bench models
	$(CARGO) build --release -p puhui-engines --example onnx_throughput
	test -x $(ONNX_VENV)/bin/python || (python3 -m venv $(ONNX_VENV) && $(ONNX_VENV)/bin/pip install --quiet onnxruntime numpy)
	$(ONNX_VENV)/bin/python samplekit/bench/onnx_vs_ort.py --seconds 2
	$(CARGO) bench -p puhui-services --bench scoring
