#!/usr/bin/env bash
# The main job, from a fresh machine: install, build, train the ConvNet on Fashion-MNIST with
# checkpoints in the backend its config names, convert the best checkpoint to every other
# installed format, and check that `ckpt eval` gives the same accuracy from each; then save a
# checkpoint with every format, convert each into every other and verify (the format table).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
bash "$here/scripts/build.sh" "$here/build"
cd "$here"
ckpt=build/bin/ckpt
out=build/main-job
rm -rf "$out"
mkdir -p "$out"

$ckpt plugins
echo
echo "== training the ConvNet (configs/convnet.json)"
$ckpt train configs/convnet.json 2>&1 | tee "$out/train.log"
best=$(sed -n 's/^ckpt train: best checkpoint: //p' "$out/train.log")
[ -n "$best" ] || { echo "no best checkpoint reported" >&2; exit 1; }

echo
echo "== the best checkpoint, $best, in every format"
printf '%-12s %-34s %s\n' format file "test accuracy"
reference=$($ckpt eval "$best" --threads 2 | sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p')
printf '%-12s %-34s %s\n' "(original)" "$(basename "$best")" "$reference"
status=0
for format in $($ckpt plugins --names); do
  file="$out/best.$format"
  $ckpt convert "$best" "$file" --to "$format" >/dev/null
  $ckpt verify "$file" >/dev/null
  acc=$($ckpt eval "$file" --threads 2 | sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p')
  mark=""
  [ "$acc" = "$reference" ] || { mark="  DIFFERS"; status=1; }
  printf '%-12s %-34s %s%s\n' "$format" "$(basename "$file")" "$acc" "$mark"
done

echo
echo "== every format into every other"
build/bin/ckpt_demo "$out/formats"
exit $status
