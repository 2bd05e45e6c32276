// The JSON of TensorFlow Serving's predict API for a model with one float32 input and one
// output: the request's row format ({"instances": [...]}) or columnar format ({"inputs": ...}),
// read into rows of floats with every shape and dtype problem named, and the answer written
// with each float in the fewest digits that read back to the same float32.
#pragma once

#include <ckpt/tensor.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ckpt::serve::detail {

inline constexpr const char* kInputName = "input";
inline constexpr const char* kOutputName = "output";
inline constexpr const char* kSignatureName = "serving_default";

struct PredictInput {
  bool columnar = false;  // "inputs" rather than "instances"
  bool named = false;     // inputs given by name ({"input": ...}), answered by name too
  int64_t rows = 0;
  std::vector<float> values;  // rows * numel(sample shape)
};

// Throws UsageError (the server's 400) naming the place and the problem: not JSON, no
// "instances" or "inputs", a signature other than serving_default, a value that is not a
// finite number representable as float32, a shape other than [rows, sample...], no rows or
// more than max_rows.
PredictInput parse_predict(const std::string& body, const Shape& sample, int64_t max_rows);

// {"predictions": [...]} or {"outputs": ...}, each row shaped `sample`.
std::string format_predict(const PredictInput& input, std::span<const float> output, const Shape& sample);

}  // namespace ckpt::serve::detail
