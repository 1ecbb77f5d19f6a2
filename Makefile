# Enclave: `make up` runs the hub with a demo consortium; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
KERNELSPEC := $(VENV)/share/jupyter/kernels/enclave/kernel.json
PROXY := node_modules/.installed

.PHONY: up test install lint clean

up: install
	$(BIN)/enclave demo build
	$(BIN)/enclave serve

test: install
	$(BIN)/python -m pytest

install: $(VENV)/.installed $(KERNELSPEC) $(PROXY)

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(KERNELSPEC): kernels/enclave/kernel.json $(VENV)/.installed
	$(BIN)/jupyter kernelspec install --sys-prefix --replace kernels/enclave >/dev/null
	touch $@

$(PROXY): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) node_modules
