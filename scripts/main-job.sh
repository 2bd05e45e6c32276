#!/usr/bin/env bash
# The main job, from a fresh machine: install, build, train the ConvNet on Fashion-MNIST with
# checkpoints in the backend its config names, convert the best checkpoint to every other
# installed format, and check that `ckpt eval` gives the same accuracy from each; train the MLP
# 784-256-128-10; then save a checkpoint with every format, convert each into every other and
# verify (the format table). Fails unless the best test accuracies within the configs' 10 epochs
# reach the targets: ConvNet >= 0.89, MLP >= 0.88.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
bash "$here/scripts/build.sh" "$here/build"
cd "$here"
ckpt=build/bin/ckpt
out=build/main-job
rm -rf "$out"
mkdir -p "$out"

# The best test_acc over the epoch lines of a `ckpt train` log.
best_accuracy() {
  awk '/^epoch /{for (i = 1; i < NF; i++) if ($i == "test_acc" && $(i + 1) > best) best = $(i + 1)} END {print best + 0}' "$1"
}
targets=()
# check_target NAME LOG TARGET SECONDS: prints and keeps NAME's best accuracy against TARGET; below it fails the job.
check_target() {
  local acc verdict=ok
  acc=$(best_accuracy "$2")
  awk -v a="$acc" -v t="$3" 'BEGIN {exit !(a >= t)}' || { verdict="BELOW TARGET"; status=1; }
  targets+=("$(printf '%-8s best test accuracy %s (target >= %s, %s s of training): %s' "$1" "$acc" "$3" "$4" "$verdict")")
  echo "${targets[-1]}"
}
status=0

$ckpt plugins
echo
echo "== training the ConvNet (configs/convnet.json)"
start=$SECONDS
$ckpt train configs/convnet.json 2>&1 | tee "$out/train.log"
check_target ConvNet "$out/train.log" 0.89 $((SECONDS - start))
best=$(sed -n 's/^ckpt train: best checkpoint: //p' "$out/train.log")
[ -n "$best" ] || { echo "no best checkpoint reported" >&2; exit 1; }

echo
echo "== the best checkpoint, $best, in every format"
printf '%-12s %-34s %s\n' format file "test accuracy"
reference=$($ckpt eval "$best" --threads 2 | sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p')
printf '%-12s %-34s %s\n' "(original)" "$(basename "$best")" "$reference"
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
echo "== training the MLP 784-256-128-10 (configs/mlp.json)"
start=$SECONDS
$ckpt train configs/mlp.json 2>&1 | tee "$out/train-mlp.log"
check_target MLP "$out/train-mlp.log" 0.88 $((SECONDS - start))

echo
echo "== every format into every other"
build/bin/ckpt_demo "$out/formats"

echo
echo "== accuracy targets (Fashion-MNIST test set, within 10 epochs)"
printf '%s\n' "${targets[@]}"
[ $status -eq 0 ] || echo "main job FAILED: a converted checkpoint scored differently or a model missed its accuracy target" >&2
exit $status
