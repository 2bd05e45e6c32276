#include "py_object.hpp"

#include <cmath>

#include <ckpt/sdk.hpp>

#include <cstdio>

#include <string_view>

namespace ckpt_pickle {

std::string python_identity(const Obj* o, uint64_t& budget, int depth) {
  if (depth > kMaxKeyDepth)
    ckpt::sdk::fail(CKPT_ERR_LIMIT, "a dict key or set member nested deeper than " + std::to_string(kMaxKeyDepth) + " levels");
  if (budget == 0)
    ckpt::sdk::fail(CKPT_ERR_LIMIT, "a dict key or set member of more than " + std::to_string(kKeyBudget) + " elements");
  --budget;
  auto by_address = [&](char tag) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%c%p", tag, static_cast<const void*>(o));
    return std::string(buf);
  };
  switch (o->kind) {
    case Kind::string: return "s" + std::string(static_cast<const Text*>(o)->str());
    case Kind::bytes: return "b" + std::string(static_cast<const Text*>(o)->str());
    case Kind::integer: return "i" + std::to_string(static_cast<const Scalar*>(o)->i);
    case Kind::boolean: return static_cast<const Scalar*>(o)->b ? "i1" : "i0";
    case Kind::none: return "n";
    case Kind::floating: {
      const double f = static_cast<const Scalar*>(o)->f;
      if (f != f) return by_address('o');  // NaN equals only itself
      // An integral float is the int of its value to Python (2.0**62 == 2**62): every one in
      // int64's range is one, the others are beyond any int a pickle here holds.
      if (f >= -9223372036854775808.0 && f < 9223372036854775808.0 && f == std::trunc(f))
        return "i" + std::to_string(static_cast<int64_t>(f));
      char buf[40];
      std::snprintf(buf, sizeof buf, "f%a", f);
      return buf;
    }
    case Kind::tuple: {
      std::string out = "t(";
      for (const Obj* e : static_cast<const Seq*>(o)->items) {
        std::string id = python_identity(e, budget, depth + 1);
        out += std::to_string(id.size()) + ":" + id;
      }
      return out + ")";
    }
    case Kind::global: return "g" + static_cast<const Global*>(o)->full();
    case Kind::record:
    case Kind::storage:
    case Kind::dtype: return by_address('o');
    default:
      ckpt::sdk::fail(CKPT_ERR_FORMAT, std::string("a ") + kind_name(o->kind) +
                                           " used as a dict key or set member (Python cannot hash it)");
  }
}

void Seq::add(Obj* item) {
  if (!is_set) {
    items.push_back(item);
    return;
  }
  if (!members_) {
    members_ = std::make_unique<std::unordered_set<std::string>>();
    for (const Obj* o : items) {
      uint64_t budget = kKeyBudget;
      members_->insert(python_identity(o, budget));
    }
  }
  uint64_t budget = kKeyBudget;
  if (members_->insert(python_identity(item, budget)).second) items.push_back(item);
}

std::string_view Dict::TextKey::operator()(size_t i) const {
  const Obj* k = d->entries[i].first;
  // An entry of the other kind never matches: a name holds no byte 0xff-prefixed marker.
  if (k->kind != kind) return std::string_view("\xff\xfe not this kind", 15);
  return static_cast<const Text*>(k)->str();
}

namespace {
bool same_key(const Obj* a, const Obj* b) {
  if (a == b) return true;
  const bool ta = a->kind == Kind::string || a->kind == Kind::bytes, tb = b->kind == Kind::string || b->kind == Kind::bytes;
  if (ta || tb) return a->kind == b->kind && static_cast<const Text*>(a)->str() == static_cast<const Text*>(b)->str();
  uint64_t ba = kKeyBudget, bb = kKeyBudget;
  return python_identity(a, ba) == python_identity(b, bb);
}
}  // namespace

Obj* Dict::find(std::string_view key) const {
  if (!index_) {
    for (const auto& [k, v] : entries)
      if (k->kind == Kind::string && static_cast<const Text*>(k)->str() == key) return v;
    return nullptr;
  }
  auto i = index_->str_keys.find(key, TextKey{this, Kind::string});
  return i ? entries[*i].second : nullptr;
}

void Dict::index(size_t i) {
  Obj* key = entries[i].first;
  if (key->kind == Kind::string || key->kind == Kind::bytes) {
    (key->kind == Kind::string ? index_->str_keys : index_->bytes_keys).insert(i, TextKey{this, key->kind});
    return;
  }
  uint64_t budget = kKeyBudget;
  index_->other_keys.try_emplace(python_identity(key, budget), i);
}

void Dict::put(Obj* key, Obj* value) {
  // Small dicts (most of a pickle's) are searched in order; an index is made at the ninth key.
  if (!index_) {
    for (auto& [k, v] : entries)
      if (same_key(k, key)) {
        v = value;
        return;
      }
    if (key->kind != Kind::string && key->kind != Kind::bytes) {
      uint64_t budget = kKeyBudget;
      python_identity(key, budget);  // refuses what Python cannot hash
    }
    entries.emplace_back(key, value);
    if (entries.size() > kLinearKeys) {
      index_ = std::make_unique<Index>();
      for (size_t i = 0; i < entries.size(); ++i) index(i);
    }
    return;
  }
  if (key->kind == Kind::string || key->kind == Kind::bytes) {
    ckpt::sdk::NameIndex& index = key->kind == Kind::string ? index_->str_keys : index_->bytes_keys;
    const TextKey name_of{this, key->kind};
    if (auto i = index.find(static_cast<const Text*>(key)->str(), name_of)) {
      entries[*i].second = value;
      return;
    }
    entries.emplace_back(key, value);
    index.insert(entries.size() - 1, name_of);
    return;
  }
  uint64_t budget = kKeyBudget;
  std::string k = python_identity(key, budget);
  auto [it, fresh] = index_->other_keys.try_emplace(std::move(k), entries.size());
  if (fresh) entries.emplace_back(key, value);
  else entries[it->second].second = value;
}

void Record::set(std::string name, Obj* value) {
  auto [it, fresh] = index_.try_emplace(name, attributes.size());
  if (fresh) attributes.emplace_back(std::move(name), value);
  else attributes[it->second].second = value;
}

Obj* Record::get(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : attributes[it->second].second;
}

Obj* Arena::none() {
  if (!none_) none_ = make<Scalar>(Kind::none);
  return none_;
}

Obj* Arena::boolean(bool b) {
  Obj*& shared = bools_[b ? 1 : 0];
  if (!shared) {
    auto* s = make<Scalar>(Kind::boolean);
    s->b = b;
    shared = s;
  }
  return shared;
}

Obj* Arena::integer(int64_t i) {
  auto* s = make<Scalar>(Kind::integer);
  s->i = i;
  return s;
}

Obj* Arena::floating(double f) {
  auto* s = make<Scalar>(Kind::floating);
  s->f = f;
  return s;
}

namespace {

// Python 2 names that protocol 0-2 pickles use for Python 3's (Lib/_compat_pickle.py, which
// Python's own unpickler applies), and the platform modules os functions live in.
struct Rename {
  std::string_view from, to;
};
constexpr Rename kModules[] = {
    {"BaseHTTPServer", "http.server"}, {"CGIHTTPServer", "http.server"}, {"ConfigParser", "configparser"},
    {"Cookie", "http.cookies"}, {"Dialog", "tkinter.dialog"}, {"DocXMLRPCServer", "xmlrpc.server"},
    {"FileDialog", "tkinter.filedialog"}, {"HTMLParser", "html.parser"}, {"Queue", "queue"},
    {"ScrolledText", "tkinter.scrolledtext"}, {"SimpleDialog", "tkinter.simpledialog"},
    {"SimpleHTTPServer", "http.server"}, {"SimpleXMLRPCServer", "xmlrpc.server"},
    {"SocketServer", "socketserver"}, {"StringIO", "io"}, {"Tix", "tkinter.tix"},
    {"Tkconstants", "tkinter.constants"}, {"Tkdnd", "tkinter.dnd"}, {"Tkinter", "tkinter"},
    {"UserDict", "collections"}, {"UserList", "collections"}, {"UserString", "collections"},
    {"__builtin__", "builtins"}, {"_abcoll", "collections.abc"}, {"_elementtree", "xml.etree.ElementTree"},
    {"_winreg", "winreg"}, {"anydbm", "dbm"}, {"cPickle", "pickle"}, {"cStringIO", "io"},
    {"commands", "subprocess"}, {"cookielib", "http.cookiejar"}, {"copy_reg", "copyreg"}, {"dbhash", "dbm.bsd"},
    {"dbm", "dbm.ndbm"}, {"dumbdbm", "dbm.dumb"}, {"dummy_thread", "_dummy_thread"}, {"gdbm", "dbm.gnu"},
    {"htmlentitydefs", "html.entities"}, {"httplib", "http.client"}, {"markupbase", "_markupbase"},
    {"repr", "reprlib"}, {"robotparser", "urllib.robotparser"}, {"test.test_support", "test.support"},
    {"thread", "_thread"}, {"tkColorChooser", "tkinter.colorchooser"},
    {"tkCommonDialog", "tkinter.commondialog"}, {"tkFileDialog", "tkinter.filedialog"},
    {"tkFont", "tkinter.font"}, {"tkMessageBox", "tkinter.messagebox"},
    {"tkSimpleDialog", "tkinter.simpledialog"}, {"ttk", "tkinter.ttk"}, {"urllib2", "urllib.request"},
    {"urlparse", "urllib.parse"}, {"whichdb", "dbm"}, {"xmlrpclib", "xmlrpc.client"}, {"posix", "os"},
    {"nt", "os"}, {"exceptions", "builtins"},
};
struct NameRename {
  std::string_view module, name, to_module, to_name;
};
constexpr NameRename kNames[] = {
    {"UserDict", "IterableUserDict", "collections", "UserDict"},
    {"UserDict", "UserDict", "collections", "UserDict"},
    {"UserList", "UserList", "collections", "UserList"},
    {"UserString", "UserString", "collections", "UserString"},
    {"__builtin__", "basestring", "builtins", "str"},
    {"__builtin__", "intern", "sys", "intern"},
    {"__builtin__", "long", "builtins", "int"},
    {"__builtin__", "reduce", "functools", "reduce"},
    {"__builtin__", "unichr", "builtins", "chr"},
    {"__builtin__", "unicode", "builtins", "str"},
    {"__builtin__", "xrange", "builtins", "range"},
    {"_multiprocessing", "Connection", "multiprocessing.connection", "Connection"},
    {"_socket", "fromfd", "socket", "fromfd"},
    {"itertools", "ifilter", "builtins", "filter"},
    {"itertools", "ifilterfalse", "itertools", "filterfalse"},
    {"itertools", "imap", "builtins", "map"},
    {"itertools", "izip", "builtins", "zip"},
    {"itertools", "izip_longest", "itertools", "zip_longest"},
    {"multiprocessing", "AuthenticationError", "multiprocessing.context", "AuthenticationError"},
    {"multiprocessing", "BufferTooShort", "multiprocessing.context", "BufferTooShort"},
    {"multiprocessing", "ProcessError", "multiprocessing.context", "ProcessError"},
    {"multiprocessing", "TimeoutError", "multiprocessing.context", "TimeoutError"},
    {"multiprocessing.forking", "Popen", "multiprocessing.popen_fork", "Popen"},
    {"multiprocessing.process", "Process", "multiprocessing.context", "Process"},
    {"socket", "_socketobject", "socket", "SocketType"},
    {"urllib", "ContentTooShortError", "urllib.error", "ContentTooShortError"},
    {"urllib", "getproxies", "urllib.request", "getproxies"},
    {"urllib", "pathname2url", "urllib.request", "pathname2url"},
    {"urllib", "quote", "urllib.parse", "quote"},
    {"urllib", "quote_plus", "urllib.parse", "quote_plus"},
    {"urllib", "unquote", "urllib.parse", "unquote"},
    {"urllib", "unquote_plus", "urllib.parse", "unquote_plus"},
    {"urllib", "url2pathname", "urllib.request", "url2pathname"},
    {"urllib", "urlcleanup", "urllib.request", "urlcleanup"},
    {"urllib", "urlencode", "urllib.parse", "urlencode"},
    {"urllib", "urlopen", "urllib.request", "urlopen"},
    {"urllib", "urlretrieve", "urllib.request", "urlretrieve"},
    {"urllib2", "HTTPError", "urllib.error", "HTTPError"},
    {"urllib2", "URLError", "urllib.error", "URLError"},
    {"whichdb", "whichdb", "dbm", "whichdb"},
};

}  // namespace

std::string display_name(std::string_view module, std::string_view name) {
  for (const auto& r : kNames)
    if (r.module == module && r.name == name) return std::string(r.to_module) + "." + std::string(r.to_name);
  for (const auto& r : kModules)
    if (r.from == module) return std::string(r.to) + "." + std::string(name);
  return std::string(module) + "." + std::string(name);
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::list: return "list";
    case Kind::tuple: return "tuple";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::record: return "object";
    case Kind::storage: return "storage";
    case Kind::array: return "array";
    case Kind::dtype: return "dtype";
  }
  return "?";
}

}  // namespace ckpt_pickle
