#include <ckpt/errors_renamed.hpp>

namespace ckpt {

[[noreturn]] void rethrow_renamed(const std::function<std::string(std::string)>& rename) {
  // Most derived first: LimitError is a FormatError.
  try {
    throw;
  } catch (const LimitError& e) {
    throw LimitError(rename(e.what()));
  } catch (const FormatError& e) {
    throw FormatError(rename(e.what()));
  } catch (const IntegrityError& e) {
    throw IntegrityError(rename(e.what()));
  } catch (const PluginError& e) {
    throw PluginError(rename(e.what()));
  } catch (const IoError& e) {
    throw IoError(rename(e.what()));
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(rename(e.what()));
  } catch (const UsageError& e) {
    throw UsageError(rename(e.what()));
  } catch (const Error& e) {
    throw Error(rename(e.what()));
  }
}

std::string replace_path(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at)) {
    const size_t end = at + from.size();
    if (end < text.size() && text[end] >= '0' && text[end] <= '9') {
      at = end;
      continue;
    }
    text.replace(at, from.size(), to);
    at += to.size();
  }
  return text;
}

}  // namespace ckpt
