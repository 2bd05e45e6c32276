#include "database.hpp"

#include <ckpt/errors.hpp>

#include <charconv>

namespace ckpt::model_registry::detail {

const std::string& Row::str(size_t i) const {
  if (null(i)) throw FormatError("registry database: column " + std::to_string(i) + " is NULL where a value is required");
  return *cells[i];
}

int64_t Row::i64(size_t i) const {
  const std::string& s = str(i);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size())
    throw FormatError("registry database: '" + s + "' is not an integer (column " + std::to_string(i) + ")");
  return v;
}

double Row::f64(size_t i) const {
  const std::string& s = str(i);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    // PostgreSQL spells the specials its own way.
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
    throw FormatError("registry database: '" + s + "' is not a number (column " + std::to_string(i) + ")");
  }
  return v;
}

}  // namespace ckpt::model_registry::detail
