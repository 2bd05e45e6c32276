#!/usr/bin/env bash
# Golden record of a build's PyTorch and pickle readings: makes the corpus of
# make_torch_corpus.py, then for every file records `ckpt inspect`, and converts it to every
# writable format and each of those back to .pt, recording md5 sums, inspect output and any
# error. Run it with the build before a change and after, and diff the two records:
#   scripts/layout_golden/run.sh BUILD_DIR OUT_DIR   (OUT_DIR/record.txt is the record)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
out=$2
ckpt=$build/bin/ckpt
rm -rf "$out"
mkdir -p "$out/corpus" "$out/conv"
/usr/bin/python3 "$here/make_torch_corpus.py" "$out/corpus" || exit 1
rec=$out/record.txt
: >"$rec"
# Paths in messages are the same in both records: every command runs from $out.
cd "$out" || exit 1
run() {  # run LABEL CMD...: its exit code, stdout and stderr into the record
  local o e rc
  o=$("${@:2}" 2>/tmp/layout_golden.err.$$); rc=$?
  e=$(cat /tmp/layout_golden.err.$$)
  printf '== %s (exit %d)\n%s\n' "$1" "$rc" "$o" >>"$rec"
  [ -n "$e" ] && printf -- '-- stderr\n%s\n' "$e" >>"$rec"
  return $rc
}
for f in corpus/*; do
  name=$(basename "$f")
  run "inspect $name" "$ckpt" inspect "$f"
  run "inspect --json $name" "$ckpt" inspect --json "$f"
  for to in msgpack safetensors hdf5 json pytorch onnx numpy gguf; do
    dst=conv/$name.$to
    case $to in
      hdf5) dst=conv/$name.h5 ;;
      pytorch) dst=conv/$name.pt ;;
      numpy) dst=conv/$name.npz ;;
    esac
    lossy=()
    case $to in numpy|gguf) lossy=(--allow-lossy) ;; esac
    if run "convert $name -> $to" "$ckpt" convert "${lossy[@]}" --to "$to" "$f" "$dst"; then
      echo "md5 $(md5sum <"$dst" | cut -d' ' -f1) $dst" >>"$rec"
      run "inspect $dst" "$ckpt" inspect "$dst"
      back=$dst.back.pt
      if run "convert $dst -> pt" "$ckpt" convert --to pytorch "$dst" "$back"; then
        echo "md5 $(md5sum <"$back" | cut -d' ' -f1) $back" >>"$rec"
        run "inspect $back" "$ckpt" inspect "$back"
      fi
    fi
  done
done
rm -f /tmp/layout_golden.err.$$
echo "record: $rec ($(grep -c '^==' "$rec") commands)"
