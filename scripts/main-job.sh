#!/usr/bin/env bash
# The main job, from a fresh machine: installs, builds, then makes a checkpoint, saves it with
# every installed format, converts between them, verifies, and prints a table.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
bash "$here/scripts/build.sh" "$here/build"
out=${CKPT_OUT:-$here/build/main-job}
rm -rf "$out"
"$here/build/bin/ckpt" plugins
echo
"$here/build/bin/ckpt_demo" "$out"
echo
"$here/build/bin/ckpt" inspect "$out/model.msgpack" | head -25
first=$(ls "$out"/model.* | head -1)
"$here/build/bin/ckpt" convert "$first" "$out/roundtrip.json" --to json
"$here/build/bin/ckpt" verify "$out/roundtrip.json"
"$here/build/bin/ckpt" diff "$first" "$out/roundtrip.json"
