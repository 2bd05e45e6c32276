// Linked into the sanitizer build's test programs that read HDF5 files in process. libhdf5
// dlopens its filter plugins (blosc, lzf, ...) and unloads them before LeakSanitizer reports at
// exit, so the blocks they keep would be reported from an unloaded module, which no suppression
// can name. The slow unwinder records the frames beyond it, inside libhdf5, which
// tests/lsan.supp suppresses; programs without this keep the fast one. ASAN_OPTIONS, when set,
// still has the last word.
extern "C" __attribute__((visibility("default"), used)) const char* __asan_default_options() {
  return "fast_unwind_on_malloc=0";
}
