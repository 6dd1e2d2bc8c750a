# The two commands of the README:
#   make run   — install what is needed, build, and run Adam with the embedded defaults
#   make test  — install what is needed and run the whole suite (SQLite and PostgreSQL)
export CARGO_TARGET_DIR ?= /var/cache/adam/target

.PHONY: run test setup build check fmt clippy

run: setup
	cargo build --release --locked -p adam
	$(CARGO_TARGET_DIR)/release/adam serve

test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

build:
	cargo build --locked --workspace --all-targets

check:
	cargo check --workspace --all-targets

fmt:
	cargo fmt --all

clippy:
	cargo clippy --workspace --all-targets -- -D warnings
