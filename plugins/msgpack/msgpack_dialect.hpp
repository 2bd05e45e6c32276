// What the msgpack format says in the shared layout: its wording, and its payloads — "$pad"
// (ignored) and "$data", a bin whose place in the file becomes the tensor's payload, so the
// reader copies or maps it without a parse of its own.
#pragma once

#include <doc_dialect.hpp>

#include <cstdint>
#include <vector>

namespace ckpt_msgpack {

class MsgpackDialect final : public ckpt_doc::Dialect {
 public:
  MsgpackDialect();

  std::string quote(std::string_view s) const override;
  std::string found(const ckpt_doc::Token& t) const override;
  std::string mismatch(ckpt_doc::Slot slot, const ckpt_doc::Detail& d, const std::string& found) const override;
  std::string say(ckpt_doc::Problem p, const ckpt_doc::Detail& d) const override;
  std::string_view root_path() const override { return "<root>"; }

  double number(const ckpt_doc::LayoutParser&, const ckpt_doc::Token& t) const override { return t.f; }

  bool payload_value(ckpt_doc::LayoutParser& parser, ckpt_doc::TensorWork& w, size_t key,
                     const ckpt_doc::Token& t) override;
  void payload_keys_present(ckpt_doc::LayoutParser& parser, const ckpt_doc::TensorWork& w) override;
  void payload_finish(ckpt_doc::LayoutParser& parser, ckpt_doc::TensorWork& w, ckpt_doc::Tree::Tensor& t) override;

  // The file offset of each tensor's $data payload, indexed by its id.
  std::vector<uint64_t> take_offsets(size_t n_tensors);

 private:
  std::vector<uint64_t> offsets_;
};

}  // namespace ckpt_msgpack
