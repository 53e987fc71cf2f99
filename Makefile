# StackSense: `make run` brings up the stack on this machine, `make test` runs the suite.
# Both do their own set-up on a fresh Debian 12 machine as root.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := openssh-server openssh-client prometheus prometheus-alertmanager \
	prometheus-node-exporter iptables iproute2 openssl python3-venv ca-certificates \
	chromium postgresql

.PHONY: setup system-deps venv run test lint bench clean

setup: system-deps venv

# apt packages: the real peers the stack and the tests use. Skipped when present.
system-deps:
	@missing=""; \
	for b in /usr/sbin/sshd /usr/bin/prometheus /usr/bin/promtool /usr/bin/prometheus-alertmanager \
	         /usr/bin/amtool /usr/bin/prometheus-node-exporter /usr/sbin/iptables /usr/bin/openssl \
	         /usr/bin/chromium /usr/lib/postgresql/15/bin/initdb; do \
	  [ -x $$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages (missing:$$missing)"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root, or install: $(APT_PACKAGES)" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -q --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi
	@mkdir -p /run/sshd 2>/dev/null || true

$(VENV)/.installed: pyproject.toml tests/deploy/requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	@# helm-sdkpy declares Python >= 3.12 but its bundled Helm library works on 3.11.
	$(PY) -m pip install -q --ignore-requires-python -r tests/deploy/requirements.txt
	@touch $@

venv: $(VENV)/.installed

run: setup
	$(PY) scripts/run_stack.py

test: setup
	$(PY) scripts/run_tests.py $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .run build *.egg-info
