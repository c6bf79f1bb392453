# mcp-webrtc: `make demo` runs the demo, `make test` the whole test suite.
# Both install what they need (Debian packages via apt-get when missing, Python packages in
# local virtual environments) and run inside an isolated network namespace.

PYTHON ?= python3
VENV := .venv
VENV1 := .venv-mcp1
NETNS := scripts/netns-run
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test check deps node-deps system-deps venv venv-mcp1 bench bench-load clean

system-deps:
	@missing=""; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v unshare >/dev/null 2>&1 || missing="$$missing util-linux"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v turnserver >/dev/null 2>&1 || missing="$$missing coturn"; \
	command -v iptables >/dev/null 2>&1 || missing="$$missing iptables"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# tests/node links the repository's own npm package (package.json at the root): file:../..
tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json package.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[dev,fast]'
	touch $@

$(VENV1)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV1)
	$(VENV1)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV1)/bin/pip install $(PIP_FLAGS) -e '.[fast]' 'mcp>=1.10,<2' pytest pytest-timeout
	# the core tests here also cover the standard library's zlib (the .venv has zlib-ng)
	$(VENV1)/bin/pip uninstall $(PIP_FLAGS) --yes zlib-ng
	touch $@

venv: $(VENV)/.installed
venv-mcp1: $(VENV1)/.installed
node-deps: system-deps tests/node/node_modules/.installed
deps: system-deps venv venv-mcp1 node-deps

demo: system-deps venv
	$(NETNS) $(VENV)/bin/mcp-webrtc demo

check: venv
	$(VENV)/bin/ruff check src tests benchmarks examples scripts
	$(VENV)/bin/ruff format --check src tests benchmarks examples scripts
	$(VENV)/bin/mypy

test: deps check
	$(NETNS) $(VENV)/bin/python -m pytest -q -ra
	@echo "--- core tests against the latest mcp 1.x"
	$(NETNS) $(VENV1)/bin/python -m pytest -q -ra -m core

bench: system-deps venv
	$(NETNS) $(VENV)/bin/python benchmarks/compare.py

bench-load: system-deps venv
	$(NETNS) $(VENV)/bin/python benchmarks/rendezvous_load.py

clean:
	rm -rf $(VENV) $(VENV1) tests/node/node_modules .mypy_cache .ruff_cache .pytest_cache
