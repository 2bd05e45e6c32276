// What the json format says in the shared layout: its wording, and its payloads — "$data" as
// base64 (long strings validated in place and decoded only at read) and "$values" as numbers.
#pragma once

#include "input_cursor.hpp"

#include <doc_dialect.hpp>

#include <cstddef>
#include <string_view>
#include <vector>

namespace ckpt_json {

// A tensor's elements as the reader keeps them: long "$data" stays as validated base64 inside
// the mapped file and is decoded straight into the caller's buffer; everything else is decoded
// at open into `bytes`.
struct TensorBytes {
  std::string_view base64;
  std::vector<std::byte> bytes;
};

class JsonDialect final : public ckpt_doc::Dialect {
 public:
  explicit JsonDialect(const InputCursor& cursor);

  // One entry per tensor, indexed by its id.
  std::vector<TensorBytes> take_bytes(size_t n_tensors);

  std::string quote(std::string_view s) const override;
  std::string found(const ckpt_doc::Token& t) const override;
  std::string mismatch(ckpt_doc::Slot slot, const ckpt_doc::Detail& d, const std::string& found) const override;
  std::string say(ckpt_doc::Problem p, const ckpt_doc::Detail& d) const override;
  ckpt_status_code code(ckpt_doc::Problem p, const ckpt_doc::Detail& d) const override;
  std::string_view root_path() const override { return "/"; }

  double number(const ckpt_doc::LayoutParser& parser, const ckpt_doc::Token& t) const override;
  bool float_from_string(std::string_view s, double& v) const override;

  bool payload_value(ckpt_doc::LayoutParser& parser, ckpt_doc::TensorWork& w, size_t key,
                     const ckpt_doc::Token& t) override;
  bool payload_element(ckpt_doc::LayoutParser& parser, ckpt_doc::TensorWork& w, const ckpt_doc::Token& t) override;
  void payload_keys_present(ckpt_doc::LayoutParser& parser, const ckpt_doc::TensorWork& w) override;
  void payload_finish(ckpt_doc::LayoutParser& parser, ckpt_doc::TensorWork& w, ckpt_doc::Tree::Tensor& t) override;

 private:
  TensorBytes& bytes(size_t tensor);
  void set_data(ckpt_doc::LayoutParser& parser, ckpt_doc::TensorWork& w, const ckpt_doc::Token& t);

  const InputCursor& cursor_;
  std::vector<TensorBytes> bytes_;
};

}  // namespace ckpt_json
