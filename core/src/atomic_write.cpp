#include "atomic_write.hpp"

#include "atomic_file.hpp"
#include "early_writeback.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/errors_renamed.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::detail {

void write_atomically(const fs::path& target, const Format& format, const Options& write_options,
                      bool durable, const std::function<void(FormatWriter&)>& write,
                      const std::function<void(const fs::path& temp)>& before_commit) {
  AtomicFile file(target);
  std::optional<EarlyWriteback> writeback;
  if (durable && EarlyWriteback::enabled()) writeback.emplace(file.fd());
  // The temporary is an implementation detail: errors name the file being written.
  auto named = [&](auto&& f) {
    try {
      f();
    } catch (...) {
      rethrow_renamed([&](std::string m) { return replace_path(std::move(m), file.temp_path().string(), target.string()); });
    }
  };
  std::unique_ptr<FormatWriter> writer;
  named([&] {
    writer = format.open_writer(file.temp_path(), write_options);
    write(*writer);  // the plugin has closed its file by the end of finish
    writeback.reset();
    if (before_commit) before_commit(file.temp_path());
  });
  file.commit(durable);
  writer->committed(target);
}

void write_text_atomically(const fs::path& target, const std::string& text, bool durable, int mode) {
  AtomicFile file(target);
  int fd = ::open(file.temp_path().c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  auto fail = [&](const char* what) {
    const int e = errno;
    if (fd >= 0) ::close(fd);
    throw IoError(std::string(what) + " the temporary of '" + target.string() + "': " + std::strerror(e));
  };
  if (fd < 0) fail("cannot open");
  if (mode >= 0 && ::fchmod(fd, static_cast<mode_t>(mode)) != 0) fail("cannot set the permissions of");
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    fd = -1;
    fail("cannot close");
  }
  file.commit(durable);
}

}  // namespace ckpt::detail
