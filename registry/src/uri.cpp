#include <ckpt/errors.hpp>
#include <ckpt/registry/model_registry.hpp>

#include <cstdlib>

namespace ckpt::model_registry {

namespace {

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

std::string redact_uri(const std::string& text) {
  std::string out = text;
  // user:password@ in the authority.
  if (const size_t scheme = out.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = out.find_first_of("/?", start);
    const size_t at = out.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=... among the parameters.
  for (size_t at = out.find("password="); at != std::string::npos; at = out.find("password=", at + 1)) {
    if (at != 0 && out[at - 1] != '?' && out[at - 1] != '&' && out[at - 1] != ' ') continue;
    const size_t v = at + 9;
    const size_t end = out.find_first_of("& ", v);
    out.replace(v, (end == std::string::npos ? out.size() : end) - v, "***");
  }
  return out;
}

Uri parse_uri(const std::string& text) {
  Uri u;
  u.text = text;
  const std::string shown = redact_uri(text);
  if (text.empty()) throw UsageError("registry URI is empty (sqlite:///path/registry.db or postgresql://user@host/db)");
  if (text.find('\0') != std::string::npos) throw UsageError("registry URI holds a NUL byte");
  if (starts_with(text, "sqlite:")) {
    if (!starts_with(text, "sqlite://"))
      throw UsageError("registry URI '" + shown + "': write sqlite:///absolute/path.db or sqlite://relative/path.db");
    std::string rest = text.substr(9);
    const size_t q = rest.find('?');
    std::string query;
    if (q != std::string::npos) {
      query = rest.substr(q + 1);
      rest.resize(q);
    }
    if (rest.empty() || rest == "/") throw UsageError("registry URI '" + shown + "' names no database file");
    u.kind = Uri::Kind::sqlite;
    u.sqlite_path = rest;
    if (!query.empty()) {
      if (!starts_with(query, "store=") || query.size() == 6 || query.find('&') != std::string::npos)
        throw UsageError("registry URI '" + shown + "': the only parameter of a sqlite URI is store=/folder");
      u.store = query.substr(6);
    }
    return u;
  }
  if (starts_with(text, "postgresql:") || starts_with(text, "postgres:")) {
    const std::string scheme = starts_with(text, "postgresql:") ? "postgresql://" : "postgres://";
    if (!starts_with(text, scheme))
      throw UsageError("registry URI '" + shown + "': write " + scheme + "user@host/db or " + scheme + "/db?host=/socket/dir");
    u.kind = Uri::Kind::postgresql;
    // store= is ours, not libpq's (which refuses parameters it does not know).
    std::string base = text, query;
    const size_t q = text.find('?');
    if (q != std::string::npos) {
      base = text.substr(0, q);
      query = text.substr(q + 1);
    }
    std::string kept;
    size_t start = 0;
    while (start <= query.size() && !query.empty()) {
      size_t end = query.find('&', start);
      if (end == std::string::npos) end = query.size();
      const std::string part = query.substr(start, end - start);
      if (starts_with(part, "store=")) {
        if (part.size() == 6) throw UsageError("registry URI '" + shown + "': store= names no folder");
        u.store = part.substr(6);
      } else if (!part.empty()) {
        kept += (kept.empty() ? "" : "&") + part;
      }
      start = end + 1;
    }
    // An unreachable server would otherwise hold a command for the operating system's TCP
    // timeout (minutes); a caller's own connect_timeout wins.
    if (kept.find("connect_timeout=") == std::string::npos) kept += std::string(kept.empty() ? "" : "&") + "connect_timeout=15";
    u.conninfo = base + "?" + kept;
    return u;
  }
  const size_t colon = text.find("://");
  if (colon != std::string::npos)
    throw UsageError("registry URI '" + shown + "': unknown scheme '" + text.substr(0, colon) +
                     "' (sqlite:// or postgresql://)");
  // A bare path is an SQLite file.
  u.kind = Uri::Kind::sqlite;
  u.sqlite_path = text;
  return u;
}

std::string default_uri() {
  const char* env = std::getenv(kUriEnvironment);
  return env && *env ? std::string(env) : std::string(kDefaultUri);
}

std::string Ref::text() const {
  if (version) return name + "/" + std::to_string(*version);
  if (alias) return name + "@" + *alias;
  return name;
}

namespace {

void check_token(const std::string& s, const char* what) {
  if (s.empty() || s.size() > 128)
    throw UsageError(std::string(what) + " '" + s + "' must be 1 to 128 characters long");
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      throw UsageError(std::string(what) + " '" + s + "' may hold only letters, digits, '.', '_' and '-'");
  if (s[0] == '.' || s[0] == '-') throw UsageError(std::string(what) + " '" + s + "' may not start with '.' or '-'");
}

}  // namespace

void check_model_name(const std::string& name) { check_token(name, "model name"); }

void check_alias(const std::string& alias) {
  check_token(alias, "alias");
  if (alias.find_first_not_of("0123456789") == std::string::npos)
    throw UsageError("alias '" + alias + "' is all digits, which would read as a version number");
}

Ref parse_ref(const std::string& text) {
  Ref r;
  const size_t slash = text.find('/'), at = text.find('@');
  if (slash != std::string::npos && at != std::string::npos)
    throw UsageError("'" + text + "': write NAME, NAME/VERSION or NAME@ALIAS");
  if (slash != std::string::npos) {
    r.name = text.substr(0, slash);
    const std::string v = text.substr(slash + 1);
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos || std::stoll(v) < 1)
      throw UsageError("'" + text + "': the version after '/' must be a number from 1");
    r.version = std::stoll(v);
  } else if (at != std::string::npos) {
    r.name = text.substr(0, at);
    r.alias = text.substr(at + 1);
    check_alias(*r.alias);
  } else {
    r.name = text;
  }
  check_model_name(r.name);
  return r;
}

}  // namespace ckpt::model_registry
