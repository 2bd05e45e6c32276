// A one-line progress bar on stderr, shown only when stderr is a terminal and the job has run
// long enough to be worth watching.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace ckpt::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label)
      : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) != 0),
        start_(std::chrono::steady_clock::now()) {}
  ~ProgressBar() {
    if (drawn_) std::fputc('\n', stderr);
  }
  void update(uint64_t done, uint64_t total) {
    if (!enabled_ || total == 0) return;
    auto now = std::chrono::steady_clock::now();
    double secs = std::chrono::duration<double>(now - start_).count();
    if (secs < 0.5 || (now - last_ < std::chrono::milliseconds(100) && done < total)) return;
    last_ = now;
    drawn_ = true;
    const int width = 30;
    int filled = static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total));
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%s [%s] %5.1f%% %8.1f MB/s", label_.c_str(), bar.c_str(),
                 100.0 * static_cast<double>(done) / static_cast<double>(total),
                 static_cast<double>(done) / 1e6 / secs);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_{};
};

}  // namespace ckpt::cli
