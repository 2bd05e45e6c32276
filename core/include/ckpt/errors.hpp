// Typed errors. Every message names the file, the place (offset, key or tensor path) and what
// was expected, so a user can act on one line.
#pragma once

#include <stdexcept>
#include <string>

namespace ckpt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The bytes of a file are not what its format requires.
class FormatError : public Error {
 public:
  using Error::Error;
};

// A stored hash or checksum does not match the data.
class IntegrityError : public Error {
 public:
  using Error::Error;
};

// A plugin could not be loaded, or misbehaved at the boundary.
class PluginError : public Error {
 public:
  using Error::Error;
};

// The operating system refused a read or write.
class IoError : public Error {
 public:
  using Error::Error;
};

// Valid input that the chosen format cannot hold, or a conversion that would lose data.
class UnsupportedError : public Error {
 public:
  using Error::Error;
};

// A caller passed something outside the API's contract (bad name, bad option, bad config).
class UsageError : public Error {
 public:
  using Error::Error;
};

// A size in a file exceeds a bound (file size, a format's cap).
class LimitError : public FormatError {
 public:
  using FormatError::FormatError;
};

}  // namespace ckpt
