#!/usr/bin/env bash
# Draws docs/architecture.png from docs/architecture.dot with Graphviz's dot.
# Needs Graphviz: `apt-get install graphviz` (Debian; not installed by scripts/setup.sh, which
# holds only what building and testing need). Run from anywhere; commit the PNG with the .dot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v dot >/dev/null 2>&1; then
  echo "draw_architecture.sh: Graphviz's dot is missing; install it with: apt-get install graphviz" >&2
  exit 1
fi
dot -Tpng -Gdpi=110 "$here/architecture.dot" -o "$here/architecture.png"
echo "wrote $here/architecture.png"
