// The MPI communicator of data-parallel training (docs/scaling.md). MPI stays inside
// libckpt_train: libckpt and programs that only read and write checkpoints never link it, and
// a build without MPI (-DCKPT_WITH_MPI=OFF) keeps this interface, whose constructor then
// refuses with a clear error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt::train {

class Communicator {
 public:
  // Whether this process was started by mpirun (Open MPI's OMPI_COMM_WORLD_SIZE, or a PMIx
  // launcher's PMIX_RANK): such a run trains data-parallel without asking for it, since N
  // independent copies of one run would overwrite each other's checkpoints.
  static bool launched_by_mpirun();
  // Whether this build has MPI at all.
  static bool available();

  // Initialises MPI (MPI_Init_thread, funneled: only the training thread calls MPI) unless the
  // process already did, and sets MPI_ERRORS_RETURN on MPI_COMM_WORLD so that every failure
  // comes back as an IoError naming the call. Throws UsageError when the build has no MPI
  // or MPI was already finalized in this process.
  Communicator();
  // Finalizes MPI if this object initialised it, except while an exception unwinds: finalize
  // is collective, and the other ranks may be waiting in a call this rank never reaches; its
  // non-zero exit then makes mpirun stop the job.
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  void broadcast(std::span<std::byte> data, int root = 0) const;
  void broadcast(std::string& s, int root = 0) const;
  // In place, the sum over ranks; every rank gets the same bits (one reduction result,
  // distributed), and the same world size and counts reduce in the same order every run.
  void allreduce_sum(std::span<float> data) const;
  void allreduce_sum(std::span<double> data) const;
  // Every rank's `s`, in rank order, on every rank (a sharded save's item lists and records).
  std::vector<std::string> allgather(const std::string& s) const;
  // ZeRO-1's all-gather: rank r's counts[r] floats lie at the sum of the counts before r in
  // `data` (its own already there); afterwards every rank's are, on every rank. One call.
  void allgatherv(std::span<float> data, std::span<const int64_t> counts) const;
  // Rank `root` receives every rank's `mine` into `out` (ordered by rank, sizes `counts`); the
  // others pass an empty `out`.
  void gatherv(std::span<const float> mine, std::span<float> out, std::span<const int64_t> counts, int root = 0) const;
  void send(std::span<const std::byte> data, int to) const;
  void receive(std::span<std::byte> data, int from) const;
  // Whether every rank passed the same value.
  bool all_equal(uint64_t value) const;
  void barrier() const;

 private:
  int rank_ = 0, size_ = 1;
  bool initialised_here_ = false;
};

}  // namespace ckpt::train
