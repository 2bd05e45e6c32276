#include "output_stream.hpp"

#include <ckpt/sdk_io.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace ckpt_pytorch {

namespace {

constexpr size_t kBuffer = 4 << 20;
// Two buffers in the queue beside the one being filled: enough to keep the writer busy, and a
// bound on what a save holds beyond the caller's tensors (12 MiB).
constexpr size_t kBuffers = 3;

}  // namespace

OutputStream::OutputStream(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) ckpt::sdk::fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot create", path));
  current_.reserve(kBuffer);
  for (size_t i = 1; i < kBuffers; ++i) spare_.emplace_back().reserve(kBuffer);
  writer_ = std::thread([this] { run(); });
}

OutputStream::~OutputStream() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  writer_.join();
  if (fd_ >= 0) ::close(fd_);
}

void OutputStream::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to write
    Chunk c = std::move(queue_.front());
    queue_.pop_front();
    ++writing_;
    const bool skip = !error_.empty();
    lock.unlock();
    std::string err;
    const char* p = c.bytes.data();
    size_t left = skip ? 0 : c.bytes.size();
    uint64_t at = c.at;
    while (left > 0) {
      const ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(at));
      if (n < 0) {
        if (errno == EINTR) continue;
        err = ckpt::sdk::os_error("cannot write", path_);
        break;
      }
      p += n;
      left -= static_cast<size_t>(n);
      at += static_cast<uint64_t>(n);
    }
    c.bytes.clear();
    lock.lock();
    if (!err.empty() && error_.empty()) error_ = std::move(err);
    spare_.push_back(std::move(c.bytes));
    --writing_;
    changed_.notify_all();
  }
}

bool OutputStream::failed() const {
  std::lock_guard lock(mutex_);
  return !error_.empty();
}

std::string OutputStream::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

void OutputStream::abandon(const std::string& why) {
  std::lock_guard lock(mutex_);
  if (error_.empty()) error_ = why + " '" + path_ + "'";
}

void OutputStream::submit() {
  if (current_.empty()) return;
  std::unique_lock lock(mutex_);
  queue_.push_back({std::move(current_), pos_});
  pos_ += queue_.back().bytes.size();
  changed_.notify_all();
  changed_.wait(lock, [&] { return !spare_.empty(); });
  current_ = std::move(spare_.back());
  spare_.pop_back();
}

void OutputStream::drain() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return queue_.empty() && writing_ == 0; });
}

bool OutputStream::write(const void* data, size_t n) {
  if (failed()) return false;
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const size_t take = std::min(n, kBuffer - current_.size());
    current_.insert(current_.end(), p, p + take);
    p += take;
    n -= take;
    if (current_.size() == kBuffer) submit();
  }
  return true;
}

bool OutputStream::seek(uint64_t to) {
  submit();
  drain();
  pos_ = to;
  return !failed();
}

bool OutputStream::flush() {
  submit();
  drain();
  return !failed();
}

void OutputStream::close() {
  const bool ok = flush();
  const int fd = fd_;
  fd_ = -1;
  if (!ok) {
    ::close(fd);
    ckpt::sdk::fail(CKPT_ERR_IO, error());
  }
  if (::close(fd) != 0) ckpt::sdk::fail(CKPT_ERR_IO, ckpt::sdk::os_error("cannot close", path_));
}

}  // namespace ckpt_pytorch
