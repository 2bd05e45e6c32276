#include "held_file.hpp"

#include "ui_source.hpp"  // ui::HttpError

#include <ckpt/errors_renamed.hpp>

#include <ckpt/signer.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ckpt::serve::detail {

std::string renamed(std::string text, const Names& names) {
  for (const auto& [from, to] : names) text = replace_path(std::move(text), from, to);
  return text;
}

[[noreturn]] void rethrow_renamed(const Names& names) {
  auto rename = [&](std::string m) { return renamed(std::move(m), names); };
  try {
    throw;
  } catch (const ui::HttpError& e) {
    throw ui::HttpError(e.status, rename(e.what()));
  } catch (const HeldFile::Refused& e) {
    throw HeldFile::Refused(e.why, rename(e.what()));
  } catch (...) {
    ckpt::rethrow_renamed(rename);
  }
}

namespace {

// O_NONBLOCK: a FIFO put in the file's place is not waited on (refused as not regular).
int open_no_link(const fs::path& p) { return ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY); }

std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace

HeldFile::HeldFile(const fs::path& file) : file_(file) {
  fd_ = open_no_link(file_);
  if (fd_ < 0) {
    const int err = errno;
    const std::string name = "'" + file_.string() + "'";
    if (err == ELOOP) throw Refused(Refusal::link, name + " is a link; links in a training folder are not followed");
    if (err == ENOENT) throw Refused(Refusal::gone, name + " is gone (removed since the folder was listed)");
    throw IoError("cannot open " + name + ": " + std::strerror(err));
  }
  struct stat st{};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Refused(Refusal::not_regular, "'" + file_.string() + "' is not a regular file");
  }
  open_path_ = proc_path(fd_);
  signature_fd_ = open_no_link(default_signature_path(file_));
  if (signature_fd_ >= 0) signature_ = proc_path(signature_fd_);
  else signature_is_link_ = errno == ELOOP;
}

HeldFile::~HeldFile() {
  if (fd_ >= 0) ::close(fd_);
  if (signature_fd_ >= 0) ::close(signature_fd_);
}

Names HeldFile::names() const {
  return {{open_path_.string(), file_.string()}, {signature_.string(), default_signature_path(file_).string()}};
}

Format HeldFile::format() const {
  return named([&] {
    try {
      return Registry::global().for_writing(file_, "auto");
    } catch (const Error&) {
      return Registry::global().for_reading(open_path_, "auto");  // no extension a writer claims: by content
    }
  });
}

}  // namespace ckpt::serve::detail
