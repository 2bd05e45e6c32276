// Comparing two files' documents, one tensor at a time.
#pragma once

#include <ckpt/io.hpp>

#include <string>
#include <vector>

namespace ckpt {

struct DiffOptions {
  double rtol = 0.0;
  double atol = 0.0;
  bool ignore_meta = true;  // meta (creation time, hashes) differs between any two saves
  const Registry* registry = nullptr;
};

struct DiffEntry {
  enum class Kind { only_in_a, only_in_b, kind_changed, dtype_changed, shape_changed,
                    values_differ, attribute_differs };
  Kind kind;
  std::string path;
  std::string detail;
  double max_abs_diff = 0.0;  // values_differ
};

struct DiffReport {
  std::vector<DiffEntry> entries;
  size_t tensors_compared = 0;
  size_t attributes_compared = 0;
  bool identical() const { return entries.empty(); }
};

DiffReport diff(const fs::path& a, const fs::path& b, const DiffOptions& options = {});
DiffReport diff_documents(const Document& a, const Document& b, const DiffOptions& options = {});

}  // namespace ckpt
