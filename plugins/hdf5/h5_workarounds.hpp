// Which libhdf5 releases the plugin works around, decided at compile time from the H5_VERS_*
// of the libhdf5 headers it is built with. Debian bookworm's libhdf5 1.10.8 needs all of them.
//
// CKPT_H5_DECODE_CHUNKS (h5_chunks.cpp): libhdf5 before 2.2.0 trusts the size a filter
// pipeline returns, so a damaged deflate chunk that inflates short makes H5Dread copy past the
// end of its buffer; 2.2.0 checks a decoded chunk's size (HDFGroup/hdf5 pull request 6184).
// Below 2.2.0 deflate, shuffle and fletcher32 chunks are decoded by the plugin; from 2.2.0 by
// libhdf5. LZF chunks are decoded by the plugin on every version: libhdf5 has no LZF decoder.
//
// CKPT_H5_GUARD_METADATA (h5_guard.cpp, h5_guard_headers.cpp, h5_guard_groups.cpp, run by
// h5_read_driver.cpp): checks of global heap collections, object header chunks, local heaps,
// B-trees, external file lists and the superblock's driver information block before libhdf5
// parses them. Each was reproduced with libhdf5 1.10 (1.10.8): it loops forever on a heap
// object of size 0, allocates continuation chunks and driver blocks by the length a damaged
// file claims, reads past a virtual dataset's heap object, and cannot close a file after a bad
// local heap name offset. No release is known yet to fix them all (1.14 hardened some of these
// decoders, unverified against these files), so they are compiled for every version: bound
// this when a release is checked against tests/formats/hdf5's damaged files.
//
// Not workarounds, so compiled for every version: the superblock's end-of-file check (a
// truncated file is reported as one) and FileGuard::check_vlen, which bounds what the
// variable-length elements of a file read together (libhdf5 copies a shared heap object once
// per element by design, and ckpt bounds what a file may cost) and checks each element's heap
// reference as it counts it.
#pragma once

#include <H5public.h>

#if H5_VERS_MAJOR < 2 || (H5_VERS_MAJOR == 2 && H5_VERS_MINOR < 2)
#define CKPT_H5_DECODE_CHUNKS 1
#else
#define CKPT_H5_DECODE_CHUNKS 0
#endif

#define CKPT_H5_GUARD_METADATA 1
