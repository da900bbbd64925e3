# One-word developer commands; each installs what it needs first.
.PHONY: install run test check bench lint-fix clean

install:
	@scripts/install

## run: the whole service on http://127.0.0.1:$${GATEWAY_PORT:-5000}, in the foreground (Ctrl-C stops it)
run: install
	scripts/run

## test: static checks, then the test suite
test: install
	scripts/check
	scripts/test

check: install
	scripts/check

## bench: measure against the floor and write docs/benchmarks.md (QUICK=1: a few seconds, to .run/bench-quick)
bench: install
	scripts/bench $(if $(QUICK),--quick --output .run/bench-quick)

## lint-fix: apply ruff's fixes and formatting
lint-fix: install
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

## clean: remove the venv and the local stack's runtime files (not .data/, the local database)
clean:
	rm -rf .venv .run .mypy_cache .ruff_cache .pytest_cache
