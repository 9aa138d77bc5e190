# The two set-up commands of README.md:
#   make demo   install what is missing, then run the main job on built-in data
#   make test   install what is missing (with test tools), then run the tests
PYTHON ?= python
# OpenMP threads that spin while waiting slow runs 5-10x as soon as anything
# else shares the CPU (the tests start several processes); wait passively.
export OMP_WAIT_POLICY ?= PASSIVE
PYTEST_ARGS ?=

.PHONY: install install-tests demo test

install:
	PYTHON=$(PYTHON) bash tools/install_deps.sh

install-tests:
	PYTHON=$(PYTHON) bash tools/install_deps.sh --tests

demo: install
	$(PYTHON) tools/demo.py

test: install-tests
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)
