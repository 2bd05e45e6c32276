// Save (with fsync) and load of a state dict through the hdf5 plugin, beside h5py writing and
// reading the same tensors in the same run. Runs alternate (ours, then h5py, repeated), and the
// medians are printed. ckpt's save is atomic (temporary file, fsync, rename, fsync of the
// folder); h5py's is timed both as users write it (over the file in place, then fsync) and with
// the same atomic steps.
//
//   bench_hdf5 [--large] [--reps N]
//
// 256 MiB of f32 tensors (4096x4096 and 1024x1024, random bits, see ../state_dict.hpp); 1 GiB with
// --large. Files go to CKPT_BENCH_DIR (default ./bench-tmp), which must be on a real disk.
// Loads read what was just written, so both sides read from the page cache, into newly
// allocated memory (ckpt::read_document; h5py dset[()] and read_direct into numpy.empty).
#include "state_dict.hpp"
#include "timing.hpp"

#include <ckpt/io.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ckpt;

using bench::median;
using bench::seconds_since;

int main(int argc, char** argv) {
  size_t mib = 256;
  int reps = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--large") mib = 1024;
    else if (a == "--reps" && i + 1 < argc) reps = std::max(3, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: bench_hdf5 [--large] [--reps N]\n");
      return 2;
    }
  }
  const char* env = std::getenv("CKPT_BENCH_DIR");
  const fs::path dir = env ? env : "bench-tmp";
  fs::create_directories(dir);
  const fs::path ours = dir / "ours.h5", ref = dir / "ref.h5", theirs = dir / "h5py.h5";
  const std::string script = std::string(CKPT_BENCH_SOURCE_DIR) + "/h5py_side.py";

  const Document doc = bench::make_state_dict(mib);
  const double bytes = static_cast<double>(doc.tensor_bytes());
  SaveOptions save_opts;
  save_opts.format = "hdf5";
  write_document(doc, ref, save_opts);  // what the h5py side loads its tensors from

  std::vector<double> our_save, our_load, py_save, py_atomic, py_load, py_direct;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    write_document(doc, ours, save_opts);
    our_save.push_back(seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    Document back = read_document(ours);
    our_load.push_back(seconds_since(t0));
    if (back.tensor_bytes() != doc.tensor_bytes()) {
      std::fprintf(stderr, "bench_hdf5: the file read back is not what was written\n");
      return 1;
    }
    back = Document();

    const std::string cmd = "/usr/bin/python3 '" + script + "' '" + ref.string() + "' '" + theirs.string() + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    double s = 0, a = 0, l = 0, ld = 0;
    if (!p || std::fscanf(p, "%lf %lf %lf %lf", &s, &a, &l, &ld) != 4 || ::pclose(p) != 0) {
      std::fprintf(stderr, "bench_hdf5: %s failed (needs python3-h5py)\n", cmd.c_str());
      return 1;
    }
    py_save.push_back(s);
    py_atomic.push_back(a);
    py_load.push_back(l);
    py_direct.push_back(ld);
    std::fprintf(stderr,
                 "rep %d: ours save %.3f s load %.3f s | h5py save %.3f s (atomic %.3f s) load %.3f s "
                 "(read_direct %.3f s)\n",
                 r + 1, our_save.back(), our_load.back(), s, a, l, ld);
  }

  auto row = [&](const char* what, const std::vector<double>& v) {
    const double m = median(v);
    std::printf("%-24s %9.3f s %10.0f MiB/s\n", what, m, bytes / (1 << 20) / m);
  };
  std::printf("%zu MiB state dict (%zu tensors), median of %d alternating runs, in %s\n", mib,
              doc.tensor_count(), reps, dir.c_str());
  row("ckpt hdf5 save+fsync", our_save);
  row("h5py save+fsync", py_save);
  row("h5py atomic save", py_atomic);
  row("ckpt hdf5 load", our_load);
  row("h5py load, dset[()]", py_load);
  row("h5py load, read_direct", py_direct);
  fs::remove(ours);
  fs::remove(ref);
  fs::remove(theirs);
  fs::remove(theirs.string() + ".tmp");
  return 0;
}
