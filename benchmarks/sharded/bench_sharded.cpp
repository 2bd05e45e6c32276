// One sharded checkpoint's save by R ranks and its load by M ranks, each rank a process of
// mpirun, as the trainer runs them (ckpt/sharded.hpp). Every tensor is split by rows over the
// ranks (optimizer state under ZeRO-1: no rank holds it whole), so each rank writes 1/R of the
// bytes and reads 1/M. Prints one JSON line per round from rank 0.
//
//   mpirun -np R bench_sharded save DIR FORMAT BYTES ROUNDS   # DIR/r<R>-<round>, with fsync
//   mpirun -np M bench_sharded load CKPT ROUNDS               # each rank its rows of every tensor
//
// save: seconds from the barrier before rank 0 stages to the end of its commit (a barrier
// after it), the save's bytes; load: the slowest rank's seconds to read its rows, and in the
// same process a memcpy of the same bytes between buffers of the same size, each rank at once.
#include <ckpt/io.hpp>
#include <ckpt/sharded.hpp>

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sh = ckpt::sharded;

namespace {

constexpr int64_t kColumns = 1024;  // f32: 4 KiB rows
constexpr int kTensors = 8;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::pair<int64_t, int64_t> rows_of(int64_t rows, int r, int n) {
  const int64_t base = rows / n, extra = rows % n;
  const int64_t lo = r * base + std::min<int64_t>(r, extra);
  return {lo, lo + base + (r < extra ? 1 : 0)};
}

// Rank 0 gathers every rank's text.
std::vector<std::string> gather(const std::string& text, int rank, int world) {
  const int len = static_cast<int>(text.size());
  std::vector<int> lens(static_cast<size_t>(world)), offs(static_cast<size_t>(world));
  MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<char> all;
  if (rank == 0) {
    int total = 0;
    for (int r = 0; r < world; ++r) offs[static_cast<size_t>(r)] = total, total += lens[static_cast<size_t>(r)];
    all.resize(static_cast<size_t>(total));
  }
  MPI_Gatherv(text.data(), len, MPI_CHAR, all.data(), lens.data(), offs.data(), MPI_CHAR, 0, MPI_COMM_WORLD);
  std::vector<std::string> out;
  if (rank == 0)
    for (int r = 0; r < world; ++r) out.emplace_back(all.data() + offs[static_cast<size_t>(r)], static_cast<size_t>(lens[static_cast<size_t>(r)]));
  return out;
}

int save(const std::string& dir, const std::string& format, uint64_t bytes, int rounds, int rank, int world) {
  const int64_t rows = static_cast<int64_t>(bytes / kTensors / (kColumns * 4));
  ckpt::Document skeleton;
  std::vector<sh::Item> items;
  for (int t = 0; t < kTensors; ++t) {
    const std::string name = "t" + std::to_string(t);
    skeleton.add_tensor(name, ckpt::Tensor(ckpt::DType::f32, {rows, kColumns}, nullptr));
    const auto [lo, hi] = rows_of(rows, rank, world);
    items.push_back({name, ckpt::DType::f32, {rows, kColumns}, sh::Box{{lo, 0}, {hi - lo, kColumns}}, false});
  }
  // This rank's rows, random bits (incompressible, like trained weights).
  std::vector<std::vector<float>> mine;
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(rank + 1);
  for (const auto& it : items) {
    auto& v = mine.emplace_back(static_cast<size_t>(it.box.sizes[0] * kColumns));
    for (float& f : v) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      const auto bits = static_cast<uint32_t>(x);
      std::memcpy(&f, &bits, 4);
    }
  }
  std::vector<size_t> planned(items.size());
  for (size_t i = 0; i < planned.size(); ++i) planned[i] = i;  // nothing replicated: each rank its own
  for (int round = 0; round < rounds; ++round) {
    sh::SaveSpec spec{dir + "/r" + std::to_string(world) + "-" + std::to_string(round), format, static_cast<size_t>(world)};
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = now();
    std::optional<sh::Stage> stage;
    if (rank == 0) stage.emplace(spec);
    MPI_Barrier(MPI_COMM_WORLD);
    const sh::ShardRecord rec = sh::write_shard(spec, static_cast<size_t>(rank), skeleton, items, planned, [&](const sh::Item& it) {
      const auto& v = mine[static_cast<size_t>(&it - items.data())];
      return std::span<const std::byte>(reinterpret_cast<const std::byte*>(v.data()), v.size() * 4);
    });
    const auto texts = gather(sh::record_text(rec), rank, world);
    if (rank == 0) {
      std::vector<sh::ShardRecord> records;
      for (int r = 0; r < world; ++r) records.push_back(sh::parse_record(texts[static_cast<size_t>(r)], "rank " + std::to_string(r)));
      stage->commit(skeleton, records);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const double seconds = now() - t0;
    if (rank == 0)
      std::printf("{\"op\": \"save\", \"ranks\": %d, \"bytes\": %llu, \"seconds\": %.6f}\n", world,
                  static_cast<unsigned long long>(static_cast<uint64_t>(rows) * kColumns * 4 * kTensors), seconds);
    std::fflush(stdout);
  }
  return 0;
}

int load(const std::string& path, int rounds, int rank, int world) {
  auto reader = ckpt::open(path);
  struct Part {
    std::string path;
    std::vector<int64_t> start, count;
  };
  std::vector<Part> parts;
  uint64_t mine = 0;
  reader->tree().for_each_tensor([&](const std::string& p, const ckpt::Tensor& t) {
    const auto [lo, hi] = rows_of(t.shape()[0], rank, world);
    parts.push_back({p, {lo, 0}, {hi - lo, t.shape()[1]}});
    mine += static_cast<uint64_t>(hi - lo) * static_cast<uint64_t>(t.shape()[1]) * 4;
  });
  std::vector<std::byte> a(mine), b(mine);
  std::memset(a.data(), 1, a.size());
  std::memset(b.data(), 2, b.size());
  for (int round = 0; round < rounds; ++round) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    uint64_t got = 0;
    size_t at = 0;
    for (const Part& p : parts) {
      const size_t n = static_cast<size_t>(p.count[0] * p.count[1]) * 4;
      reader->read_slice_into(p.path, p.start, p.count, std::span(b.data() + at, n));
      at += n;
    }
    got = at;
    double seconds = now() - t0, slowest = 0;
    MPI_Reduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = now();
    std::memcpy(b.data(), a.data(), a.size());
    seconds = now() - t0;
    double copy = 0;
    MPI_Reduce(&seconds, &copy, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    uint64_t total = 0;
    MPI_Reduce(&got, &total, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0)
      std::printf("{\"op\": \"load\", \"ranks\": %d, \"bytes\": %llu, \"seconds\": %.6f, \"memcpy_seconds\": %.6f}\n", world,
                  static_cast<unsigned long long>(total), slowest, copy);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  int rc = 2;
  try {
    const std::string op = argc > 1 ? argv[1] : "";
    if (op == "save" && argc == 6) rc = save(argv[2], argv[3], std::stoull(argv[4]), std::stoi(argv[5]), rank, world);
    else if (op == "load" && argc == 4) rc = load(argv[2], std::stoi(argv[3]), rank, world);
    else if (rank == 0) std::fprintf(stderr, "usage: bench_sharded save DIR FORMAT BYTES ROUNDS | load CKPT ROUNDS\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sharded (rank %d): %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return rc;
}
