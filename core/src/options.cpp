#include <ckpt/errors.hpp>
#include <ckpt/options.hpp>

namespace ckpt {

Options parse_options(const std::vector<std::string>& kv) {
  Options out;
  for (const auto& s : kv) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("option '" + s + "' is not of the form key=value");
    out.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  return out;
}

}  // namespace ckpt
