#!/usr/bin/env bash
# Builds a Go peer (a module from the Go module proxy at a pinned version, or a program in this
# repo) once per machine and prints the binary's path. The cache lives outside the repo, keyed by
# what was built, so only a machine's first run pays for the build.
#
#   servers/go-build.sh NAME MODULE@VERSION [go build flags...]   e.g. dtm github.com/dtm-labs/dtm@v1.19.0
#   servers/go-build.sh NAME ./servers/go/DIR [go build flags...]  a program in this repo (keyed by its sources)
#
# TXBARRIER_CACHE moves the cache (default ~/.cache/txbarrier). Build output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 target=$2; shift 2
cache=${TXBARRIER_CACHE:-$HOME/.cache/txbarrier}
export GOPATH=${GOPATH:-$cache/gopath} GOCACHE=${GOCACHE:-$cache/gocache} GOFLAGS=${GOFLAGS:--mod=mod}
if [[ $target == ./* ]]; then
  key=$( (cd "$target" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 | sort -z | xargs -0 sha256sum; echo "$*") | sha256sum | cut -c1-16)
else
  key=${target##*@}-$(echo "$*" | sha256sum | cut -c1-8)
fi
out=$cache/bin/$name-$key
if [[ ! -x $out ]]; then
  mkdir -p "$cache/bin"
  started=$SECONDS
  echo "go-build: building $name ($target) into $out" >&2
  if [[ $target == ./* ]]; then
    (cd "$target" && go build -o "$out.tmp" "$@" .) >&2
  else
    # Not `go install MODULE@VERSION`: it also asks the proxy for the module's version list (to
    # report deprecations), and the proxy here refuses that list for some modules (DTM's) while
    # serving every pinned version. A throwaway module that requires the pinned version resolves
    # the same dependency versions and builds the same package.
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && go mod init txbarrier.local/go-build && go get "$target" && go build -o "$out.tmp" "$@" "${target%@*}") >&2
  fi
  mv "$out.tmp" "$out"
  echo "go-build: $name built in $((SECONDS - started)) s" >&2
fi
echo "$out"
