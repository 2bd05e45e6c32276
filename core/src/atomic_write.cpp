#include "atomic_write.hpp"

#include "atomic_file.hpp"
#include "early_writeback.hpp"

#include <optional>

namespace ckpt::detail {

void write_atomically(const fs::path& target, const Format& format, const Options& write_options,
                      bool durable, const std::function<void(FormatWriter&)>& write,
                      const std::function<void(const fs::path& temp)>& before_commit) {
  AtomicFile file(target);
  std::optional<EarlyWriteback> writeback;
  if (durable && EarlyWriteback::enabled()) writeback.emplace(file.fd());
  auto writer = format.open_writer(file.temp_path(), write_options);
  write(*writer);  // the plugin has closed its file by the end of finish
  writeback.reset();
  if (before_commit) before_commit(file.temp_path());
  file.commit(durable);
  writer->committed(target);
}

}  // namespace ckpt::detail
