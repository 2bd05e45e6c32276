#include "st_output.hpp"

#include <ckpt/sdk_io.hpp>

#include <algorithm>
#include <linux/falloc.h>

namespace ckpt_safetensors {

using ckpt::sdk::fail;
using ckpt::sdk::os_error;

namespace {
constexpr size_t kBufferBytes = size_t{1} << 20;
constexpr size_t kCopyChunk = size_t{8} << 20;
}  // namespace

OutputFile::OutputFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(CKPT_ERR_IO, os_error("cannot create", path));
  buffer_.reserve(kBufferBytes);
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void OutputFile::pwrite_all(uint64_t offset, const std::byte* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(CKPT_ERR_IO, os_error("cannot write", path_));
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

void OutputFile::flush() {
  if (buffer_.empty()) return;
  pwrite_all(cursor_, buffer_.data(), buffer_.size());
  cursor_ += buffer_.size();
  buffer_.clear();
}

void OutputFile::append(std::span<const std::byte> bytes) {
  if (buffer_.size() + bytes.size() <= kBufferBytes) {
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    return;
  }
  flush();
  if (bytes.size() >= kBufferBytes) {
    pwrite_all(cursor_, bytes.data(), bytes.size());
    cursor_ += bytes.size();
  } else {
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  }
}

void OutputFile::seek(uint64_t offset) {
  flush();
  cursor_ = offset;
}

void OutputFile::write_at(uint64_t offset, std::span<const std::byte> bytes) {
  pwrite_all(offset, bytes.data(), bytes.size());
}

void OutputFile::read_at(uint64_t offset, std::span<std::byte> dst) {
  flush();
  for (size_t got = 0; got < dst.size();) {
    const ssize_t r = ::pread(fd_, dst.data() + got, dst.size() - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(CKPT_ERR_IO, os_error("cannot read back", path_));
    if (r == 0) fail(CKPT_ERR_IO, "'" + path_ + "' shrank while it was being written");
    got += static_cast<size_t>(r);
  }
}

void OutputFile::open_gap(uint64_t from, uint64_t by) {
  flush();
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail(CKPT_ERR_IO, os_error("cannot stat", path_));
  const auto end = static_cast<uint64_t>(st.st_size);
  if (by == 0 || from >= end) return;
  if (::fallocate(fd_, FALLOC_FL_INSERT_RANGE, static_cast<off_t>(from), static_cast<off_t>(by)) == 0)
    return;
  // Not every file system can insert blocks (tmpfs, btrfs cannot; nor can any when its block
  // size does not divide 4096): move the bytes ourselves, last chunk first, so that nothing is
  // overwritten before it has been read.
  std::vector<std::byte> chunk(static_cast<size_t>(std::min<uint64_t>(kCopyChunk, end - from)));
  for (uint64_t pos = end; pos > from;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), pos - from));
    pos -= n;
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd_, chunk.data() + got, n - got, static_cast<off_t>(pos + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) fail(CKPT_ERR_IO, os_error("cannot read back", path_));
      if (r == 0) fail(CKPT_ERR_IO, "'" + path_ + "' shrank while its data was being moved");
      got += static_cast<size_t>(r);
    }
    pwrite_all(pos + by, chunk.data(), n);
  }
}

void OutputFile::close() {
  flush();
  if (fd_ >= 0 && ::close(fd_) != 0) {
    fd_ = -1;
    fail(CKPT_ERR_IO, os_error("cannot close", path_));
  }
  fd_ = -1;
}

}  // namespace ckpt_safetensors
