#!/usr/bin/env bash
# The package on the other runtimes, against the built dist/ (`npm run build` first):
#
#   test/runtimes/run.sh bun     the smoke suite (smoke.ts) on Bun, then the SQLite stores' scenarios
#                                on bun:sqlite (bun-sqlite.scenarios.ts) under Bun's test runner
#   test/runtimes/run.sh deno    the smoke suite on Deno (its SQLite is node:sqlite)
#   test/runtimes/run.sh --fetch bun deno   only fetch them, printing each one's binary
#
# Each runtime comes from the npm registry, in the version below, once per machine
# (servers/npm-fetch.sh caches it by version in ~/.cache/txbarrier). TXBARRIER_BUN or TXBARRIER_DENO
# names a binary to use instead (another platform, a local build).
set -euo pipefail
cd "$(dirname "$0")/../.."

BUN_VERSION=1.4
DENO_VERSION=2.9

# binary RUNTIME: the path of its executable, fetched if need be.
binary() {
  local dir
  case $1 in
    bun)
      if [[ -n ${TXBARRIER_BUN:-} ]]; then echo "$TXBARRIER_BUN"; return; fi
      dir=$(servers/npm-fetch.sh "@oven/bun-linux-x64@$BUN_VERSION") && echo "$dir/bin/bun" ;;
    deno)
      if [[ -n ${TXBARRIER_DENO:-} ]]; then echo "$TXBARRIER_DENO"; return; fi
      dir=$(servers/npm-fetch.sh "@deno/linux-x64-glibc@$DENO_VERSION") && echo "$dir/deno" ;;
    *) echo "run.sh: no runtime named '$1' (bun or deno)" >&2; return 2 ;;
  esac
}

if [[ ${1:-} == --fetch ]]; then
  shift
  for runtime in "$@"; do
    exe=$(binary "$runtime")
    echo "$runtime: $exe ($("$exe" --version | head -n 1))"
  done
  exit 0
fi

if [[ ! -f dist/index.js ]]; then
  echo "run.sh: no built package in dist/: run npm run build first" >&2
  exit 1
fi
exe=$(binary "${1:-}")
case $1 in
  bun)
    "$exe" test/runtimes/smoke.ts
    "$exe" test ./test/runtimes/bun-sqlite.scenarios.ts ;;
  deno)
    # The repository's own TypeScript imports name .js files (as tsc wants); Deno maps them to .ts only
    # with sloppy imports. No lock file: node_modules already holds what package-lock.json pinned.
    # Served requests' signals abort as on Node (only when the client goes), not after every response:
    # else Deno 2.9 prints a notice when the idempotent Hono route copies a request (docs/runtimes.md).
    "$exe" run -A --sloppy-imports --no-lock --unstable-no-legacy-abort test/runtimes/smoke.ts ;;
esac
