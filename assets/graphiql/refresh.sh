#!/usr/bin/env bash
# Refreshes the vendored GraphiQL assets from the npm registry: each file exactly as the package
# publishes it (npm checks the tarball against the registry's integrity hash), its LICENSE, and a
# gzip copy of each large file (served to browsers that accept gzip).
#
#   assets/graphiql/refresh.sh                 # the versions below
#   GRAPHIQL=3.9.0 REACT=18.3.1 assets/graphiql/refresh.sh
#
# GraphiQL must be a 3.x (the last line that ships a UMD bundle, graphiql.min.js) and React an
# 18.x (React 19 ships no UMD build). Update the table in README.md afterwards; the binary picks
# the files up at the next build (their URLs carry a hash of their content).
set -euo pipefail
cd "$(dirname "$0")"

GRAPHIQL=${GRAPHIQL:-3.9.0}
REACT=${REACT:-18.3.1}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for spec in "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT"; do
  dir="$tmp/${spec%@*}"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$spec" >/dev/null && tar -xzf ./*.tgz --strip-components=1)
done

cp "$tmp/graphiql/graphiql.min.js" graphiql.min.js
cp "$tmp/graphiql/graphiql.min.css" graphiql.min.css
cp "$tmp/graphiql/LICENSE" LICENSE.graphiql
cp "$tmp/react/umd/react.production.min.js" react.production.min.js
cp "$tmp/react/LICENSE" LICENSE.react
cp "$tmp/react-dom/umd/react-dom.production.min.js" react-dom.production.min.js
cp "$tmp/react-dom/LICENSE" LICENSE.react-dom

# -n: no name or time stamp in the header, so the same input gives the same bytes.
for f in graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js; do
  gzip -9 -n -c "$f" >"$f.gz"
done

for pkg in graphiql react react-dom; do
  printf '%-10s %s\n' "$pkg" "$(node -p "require('$tmp/$pkg/package.json').version")"
done
wc -c graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js ./*.gz
