# The two commands a new user types (see README): `make demo` and `make test`.
# Each does all of its own set-up on a fresh Debian 12 machine through scripts/bootstrap.sh.
PY := .venv/bin/python

.PHONY: demo test lint bootstrap model image

demo: bootstrap
	$(PY) -m mlopsdeploy demo

test: bootstrap
	$(PY) -m pytest -n 2 --dist loadgroup --durations=25 tests

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy app/src mlopsdeploy

bootstrap:
	scripts/bootstrap.sh

model:
	scripts/bootstrap.sh model

image:
	scripts/bootstrap.sh image
