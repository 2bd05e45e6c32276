// Bit-exact comparison of two documents that says where they differ. A format may list a
// group's members in another order (HDF5 lists by name), so order is not compared; the set of
// names, every type, dtype, shape, byte and value bit is.
#pragma once

#include <ckpt/document.hpp>

#include <string>
#include <vector>

namespace ckpt::conformance {

struct Comparison {
  std::vector<std::string> differences;  // at most `limit`, each naming the path
  size_t more = 0;                       // differences beyond the limit
  bool reordered = false;                // some group came back in another order
  bool equal() const { return differences.empty(); }
  std::string report() const;
};

Comparison compare(const Group& expected, const Group& actual, size_t limit = 20);

}  // namespace ckpt::conformance
