// A one-line progress bar on stderr, shown only when stderr is a terminal and the job has run
// long enough to be worth watching. The rate is in the unit of what is counted: bytes for a
// conversion, samples for training.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <unistd.h>

namespace ckpt::cli {

enum class Counting { bytes, samples };

class ProgressBar {
 public:
  ProgressBar(std::string label, Counting counting)
      : label_(std::move(label)), counting_(counting), enabled_(::isatty(STDERR_FILENO) != 0),
        start_(std::chrono::steady_clock::now()) {}
  ~ProgressBar() {
    if (drawn_) std::fputc('\n', stderr);
  }
  void update(uint64_t done, uint64_t total) {
    if (!enabled_ || total == 0) return;
    auto now = std::chrono::steady_clock::now();
    // The rate counts from the first update, not from zero: a resumed epoch starts part-way.
    if (!first_done_) {
      first_done_ = done;
      first_ = now;
    }
    double secs = std::chrono::duration<double>(now - start_).count();
    if (secs < 0.5 || (now - last_ < std::chrono::milliseconds(100) && done < total)) return;
    last_ = now;
    drawn_ = true;
    const int width = 30;
    int filled = static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total));
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    const double percent = 100.0 * static_cast<double>(done) / static_cast<double>(total);
    const double rate_secs = std::chrono::duration<double>(now - first_).count();
    const double rate = rate_secs > 0 ? static_cast<double>(done - *first_done_) / rate_secs : 0;
    if (counting_ == Counting::bytes)
      std::fprintf(stderr, "\r%s [%s] %5.1f%% %8.1f MB/s", label_.c_str(), bar.c_str(), percent, rate / 1e6);
    else
      std::fprintf(stderr, "\r%s [%s] %5.1f%% %8.0f samples/s", label_.c_str(), bar.c_str(), percent, rate);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  Counting counting_;
  bool enabled_;
  bool drawn_ = false;
  std::optional<uint64_t> first_done_;
  std::chrono::steady_clock::time_point start_, first_{}, last_{};
};

}  // namespace ckpt::cli
