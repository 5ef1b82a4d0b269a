#!/usr/bin/env bash
# Runs every check and test of the workspace: what CI runs, and what the README's test
# command runs. Needs: the Rust toolchain with the wasm32-unknown-unknown target
# (`.ci/run` installs everything on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

if grep -q '"client-rs"' Cargo.toml; then
  step "client-rs for wasm32 (session core + REST)"
  cargo build -p moleculer-ws-client --target wasm32-unknown-unknown --no-default-features
fi

step "cargo test --workspace"
cargo test --workspace
