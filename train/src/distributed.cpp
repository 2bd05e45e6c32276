#include "distributed.hpp"

#include <ckpt/errors.hpp>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <limits>
#include <vector>

#ifdef CKPT_WITH_MPI
// The C API only: mpi.h from C++ otherwise drags in Open MPI's removed C++ bindings, which
// libmpi_cxx would have to provide.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace ckpt::train {

bool Communicator::launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

#ifdef CKPT_WITH_MPI

namespace {

// MPI's own text for an error code, with the call that returned it.
void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  std::string what;
  if (MPI_Error_string(code, text, &len) == MPI_SUCCESS) what.assign(text, static_cast<size_t>(len));
  else what = "error code " + std::to_string(code);
  throw IoError(std::string("distributed training: ") + call + " failed: " + what);
}

// MPI counts are int: larger spans go in pieces.
template <typename F>
void in_pieces(size_t count, F&& f) {
  constexpr size_t kMax = static_cast<size_t>(std::numeric_limits<int>::max());
  for (size_t done = 0; done < count;) {
    size_t n = std::min(kMax, count - done);
    f(done, static_cast<int>(n));
    done += n;
  }
}

}  // namespace

bool Communicator::available() { return true; }

Communicator::Communicator() {
  int finalized = 0, initialized = 0;
  check(MPI_Finalized(&finalized), "MPI_Finalized");
  if (finalized) throw UsageError("distributed training: MPI was already finalized in this process; it cannot start again");
  check(MPI_Initialized(&initialized), "MPI_Initialized");
  if (!initialized) {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    initialised_here_ = true;
  }
  check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

Communicator::~Communicator() {
  if (!initialised_here_ || std::uncaught_exceptions() > 0) return;
  int finalized = 0;
  if (MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized) MPI_Finalize();
}

void Communicator::broadcast(std::span<std::byte> data, int root) const {
  in_pieces(data.size(), [&](size_t at, int n) { check(MPI_Bcast(data.data() + at, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast"); });
}

void Communicator::broadcast(std::string& s, int root) const {
  uint64_t n = s.size();
  broadcast(std::as_writable_bytes(std::span(&n, 1)), root);
  s.resize(n);
  broadcast(std::as_writable_bytes(std::span(s.data(), s.size())), root);
}

void Communicator::allreduce_sum(std::span<float> data) const {
  in_pieces(data.size(), [&](size_t at, int n) {
    check(MPI_Allreduce(MPI_IN_PLACE, data.data() + at, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  });
}

void Communicator::allreduce_sum(std::span<double> data) const {
  in_pieces(data.size(), [&](size_t at, int n) {
    check(MPI_Allreduce(MPI_IN_PLACE, data.data() + at, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  });
}

std::vector<std::string> Communicator::allgather(const std::string& s) const {
  const auto n = static_cast<size_t>(size_);
  std::vector<uint64_t> sizes(n);
  uint64_t mine = s.size();
  check(MPI_Allgather(&mine, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
  // MPI_Allgatherv counts and displacements are int: texts past that are refused, not cut.
  std::vector<int> counts(n), displs(n);
  uint64_t total = 0;
  for (size_t r = 0; r < n; ++r) {
    if (total + sizes[r] > static_cast<uint64_t>(std::numeric_limits<int>::max()))
      throw IoError("distributed training: the texts gathered from every rank exceed " +
                    std::to_string(std::numeric_limits<int>::max()) + " bytes together (rank " + std::to_string(r) + "'s is " +
                    std::to_string(sizes[r]) + "), more than one MPI_Allgatherv takes");
    counts[r] = static_cast<int>(sizes[r]);
    displs[r] = static_cast<int>(total);
    total += sizes[r];
  }
  std::string all(total, '\0');
  check(MPI_Allgatherv(s.data(), static_cast<int>(s.size()), MPI_CHAR, all.data(), counts.data(), displs.data(), MPI_CHAR,
                       MPI_COMM_WORLD),
        "MPI_Allgatherv");
  std::vector<std::string> out(n);
  for (size_t r = 0; r < n; ++r) out[r] = all.substr(static_cast<size_t>(displs[r]), sizes[r]);
  return out;
}

namespace {

// MPI's int counts and displacements for `counts` (in elements), refusing what does not fit.
void int_counts(std::span<const int64_t> counts, std::vector<int>& c, std::vector<int>& d, const char* call) {
  c.resize(counts.size());
  d.resize(counts.size());
  int64_t total = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    if (counts[r] < 0 || total + counts[r] > std::numeric_limits<int>::max())
      throw IoError(std::string("distributed training: ") + call + " of " + std::to_string(total + counts[r]) +
                    " elements or more exceeds the " + std::to_string(std::numeric_limits<int>::max()) +
                    " one call takes (rank " + std::to_string(r) + "'s part is " + std::to_string(counts[r]) +
                    "); it is not split, so under distributed.zero 1 a gradient bucket, and an optimizer-state tensor "
                    "saved to a single file, must hold fewer than 2^31 elements (docs/scaling.md)");
    c[r] = static_cast<int>(counts[r]);
    d[r] = static_cast<int>(total);
    total += counts[r];
  }
}

}  // namespace

void Communicator::allgatherv(std::span<float> data, std::span<const int64_t> counts) const {
  std::vector<int> c, d;
  int_counts(counts, c, d, "MPI_Allgatherv");
  check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data.data(), c.data(), d.data(), MPI_FLOAT, MPI_COMM_WORLD),
        "MPI_Allgatherv");
}

void Communicator::gatherv(std::span<const float> mine, std::span<float> out, std::span<const int64_t> counts, int root) const {
  std::vector<int> c, d;
  int_counts(counts, c, d, "MPI_Gatherv");
  check(MPI_Gatherv(mine.data(), static_cast<int>(mine.size()), MPI_FLOAT, out.data(), c.data(), d.data(), MPI_FLOAT, root,
                    MPI_COMM_WORLD),
        "MPI_Gatherv");
}

void Communicator::send(std::span<const std::byte> data, int to) const {
  in_pieces(data.size(), [&](size_t at, int n) {
    check(MPI_Send(data.data() + at, n, MPI_BYTE, to, 0, MPI_COMM_WORLD), "MPI_Send");
  });
}

void Communicator::receive(std::span<std::byte> data, int from) const {
  in_pieces(data.size(), [&](size_t at, int n) {
    check(MPI_Recv(data.data() + at, n, MPI_BYTE, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
  });
}

bool Communicator::all_equal(uint64_t value) const {
  uint64_t lo = 0, hi = 0;
  check(MPI_Allreduce(&value, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
  check(MPI_Allreduce(&value, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return lo == hi;
}

void Communicator::barrier() const { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

#else  // built without MPI

bool Communicator::available() { return false; }

Communicator::Communicator() {
  throw UsageError(
      "distributed training: this ckpt was built without MPI (-DCKPT_WITH_MPI=OFF, or CMake found no MPI); rebuild with "
      "Open MPI's development files to train data-parallel");
}

Communicator::~Communicator() = default;
void Communicator::broadcast(std::span<std::byte>, int) const {}
void Communicator::broadcast(std::string&, int) const {}
void Communicator::allreduce_sum(std::span<float>) const {}
void Communicator::allreduce_sum(std::span<double>) const {}
std::vector<std::string> Communicator::allgather(const std::string& s) const { return {s}; }
void Communicator::allgatherv(std::span<float>, std::span<const int64_t>) const {}
void Communicator::gatherv(std::span<const float> mine, std::span<float> out, std::span<const int64_t>, int) const {
  std::copy(mine.begin(), mine.end(), out.begin());
}
void Communicator::send(std::span<const std::byte>, int) const {}
void Communicator::receive(std::span<std::byte>, int) const {}
bool Communicator::all_equal(uint64_t) const { return true; }
void Communicator::barrier() const {}

#endif

}  // namespace ckpt::train
