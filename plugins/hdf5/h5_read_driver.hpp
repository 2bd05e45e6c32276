// The file driver the reader hands libhdf5: reads with pread from a descriptor ckpt opened and
// checked, and nothing else. Why not libhdf5's default (sec2): sec2 lets libhdf5 keep a
// "metadata accumulator", a buffer of recently read metadata that libhdf5 1.10 manages with
// unchecked address arithmetic; a B-tree address of 0 in a 2 KB file made it copy from a null
// buffer (found by fuzz_hdf5). Without the accumulator every metadata read is a plain read that
// libhdf5 checks against the file's end. It also means one open of the file for the guard and
// libhdf5 (no second open by name that a rename could redirect), and no file locks taken for
// reading. And it is the one place every metadata read passes, so the guard's checks of global
// heap collections (h5_guard.hpp) run there, whatever part of libhdf5 asked for one.
#pragma once

#include "h5_common.hpp"

namespace ckpt_hdf5 {

// The driver's id, registered on first use under the Lock, unregistered when the plugin unloads.
hid_t read_driver();

class FileGuard;

// Makes `fapl` open files through read_driver(), reading from the guard's descriptor; every
// global heap collection libhdf5 reads is first checked by the guard. The guard must outlive
// the file.
void use_read_driver(hid_t fapl, FileGuard& guard);

}  // namespace ckpt_hdf5
