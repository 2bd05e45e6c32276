// The folder fuzz_sharded fuzzes the index of, and whose index ckpt_fuzz_seeds gives it as a
// seed: two msgpack shards of a small document (tensors whole, balanced by bytes; the fuzzer
// makes the boxes that split them).
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/sharded.hpp>

#include <filesystem>
#include <string>

namespace ckpt::fuzz {

inline void make_sharded_fixture(const std::filesystem::path& folder) {
  std::error_code ec;
  std::filesystem::remove_all(folder, ec);
  Document doc;
  doc.set("epoch", int64_t{2});
  doc.group("model").add_tensor("w", Tensor::zeros(DType::f32, {6, 3}));
  doc.group("model").add_tensor("b", Tensor::zeros(DType::f16, {3}));
  doc.add_tensor("step", Tensor::zeros(DType::i64, {}));
  sharded::save_document(doc, sharded::SaveSpec{folder, "msgpack", 2, {}, false}, 2);
}

}  // namespace ckpt::fuzz
