# Enclave: `make up` runs the hub with a demo consortium; `make test` runs the whole suite.
# The interpreter: as root, one whose directories other accounts can pass (per-user servers run
# it), such as Debian's /usr/bin/python3.11 when the default one lives under /root; it says
# which it chose. `make PYTHON=/path/to/python3.11 ...` overrides.
ifeq ($(origin PYTHON), undefined)
PYTHON := $(shell sh hub/choose-python.sh)
endif
VENV := .venv
BIN := $(VENV)/bin
# Changes when the interpreter does: the venv is then made again from the new one.
VENV_STAMP := $(VENV)/.python$(subst /,_,$(PYTHON))
KERNELSPEC := $(VENV)/share/jupyter/kernels/enclave/kernel.json
PROXY := node_modules/.installed

.PHONY: up test install lint clean

up: install
	@sh hub/open-checkout.sh
	$(BIN)/enclave demo build
	$(BIN)/enclave serve

test: install
	$(BIN)/python -m pytest

install: $(VENV)/.installed $(KERNELSPEC) $(PROXY)

$(VENV_STAMP):
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (apt-get install python3.11 python3.11-venv)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	touch $@

$(VENV)/.installed: requirements.txt pyproject.toml $(VENV_STAMP)
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
