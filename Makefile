# The two set-up commands of README.md:
#   make demo   install what is missing, then run the main job on built-in data
#   make test   install what is missing (with test tools), then run the tests
PYTHON ?= python
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
