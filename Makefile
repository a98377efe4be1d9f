# The two commands a new user runs (see README.md). Both bootstrap first: that step
# installs only what is missing, so it costs nothing on a ready machine.
.PHONY: demo test test-extended lint bench bootstrap

bootstrap:
	./bootstrap

demo: bootstrap
	.venv/bin/distkernel demo

test: bootstrap
	.venv/bin/python -m pytest

# The long walks `make test` leaves out (pyproject.toml's `extended` marker).
test-extended: bootstrap
	.venv/bin/python -m pytest -m extended

lint: bootstrap
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy

bench: bootstrap
	.venv/bin/python -m bench.run
