// Writes a .npy file (a document of exactly one tensor, at the root, and nothing else) or a
// .npz archive (every tensor a member '<path>.npy', stored, or deflated with compress=deflate;
// an empty group a directory entry '<path>/'), byte for byte what numpy.lib.format writes for
// each array.
#pragma once

#include <ckpt/sdk.hpp>
#include <ckpt/sdk_io.hpp>
#include <ckpt_zip/zip_writer.hpp>

#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace ckpt_numpy {

enum class Container { npy, npz };

class NumpyWriter final : public ckpt::sdk::Writer {
 public:
  NumpyWriter(const std::string& path, Container container, bool deflate);
  void begin_group(std::string_view name, uint64_t n_attributes, uint64_t n_children) override;
  void end_group() override;
  void attribute(std::string_view name, const ckpt_value& value) override;
  void tensor(const ckpt::sdk::TensorInfo& info, std::span<const std::byte> data) override;
  void finish() override;

 private:
  std::string path_of(std::string_view name) const;

  std::string path_;
  Container container_;
  bool deflate_;
  std::vector<std::string> groups_;  // the open groups below the root
  bool root_open_ = false;
  uint64_t tensors_ = 0;
  std::unordered_set<std::string> members_;  // the .npy members written so far
  std::optional<ckpt::sdk::OutputFile> npy_;
  std::optional<ckpt_zip::ZipWriter> zip_;
};

// The container a file name asks for: .npy, or .npz for anything else. `path` may be the
// host's temporary ('.<name>.ckpt-tmp-<random>', docs/reliability.md): its <name> counts.
Container container_for(const std::string& path);

}  // namespace ckpt_numpy
