// Naive double-precision references for the layers and helpers shared by the compute tests.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace ckpt::train::test {

struct Ref {
  Shape shape;
  std::vector<double> v;
  double& at(int64_t i) { return v[static_cast<size_t>(i)]; }
};

inline Ref ref_of(const Tensor& t) {
  auto d = t.data<float>();
  return {t.shape(), std::vector<double>(d.begin(), d.end())};
}

inline Tensor random_tensor(Shape shape, std::mt19937_64& rng, float lo = -1, float hi = 1) {
  Tensor t = Tensor::zeros(DType::f32, std::move(shape));
  std::uniform_real_distribution<float> u(lo, hi);
  for (float& v : t.mutable_data<float>()) v = u(rng);
  return t;
}

inline Ref ref_linear(const Ref& x, const Tensor& w, const Tensor* b) {
  int64_t n = x.shape[0], in = x.shape[1], out = w.shape()[0];
  auto W = w.data<float>();
  Ref y{{n, out}, std::vector<double>(static_cast<size_t>(n * out))};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? b->data<float>()[o] : 0.0;
      for (int64_t k = 0; k < in; ++k) s += x.v[i * in + k] * W[o * in + k];
      y.at(i * out + o) = s;
    }
  return y;
}

inline Ref ref_conv2d(const Ref& x, const Tensor& w, const Tensor* b, int64_t sh, int64_t sw,
                      int64_t ph, int64_t pw) {
  int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
  int64_t o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3];
  int64_t oh = (h + 2 * ph - kh) / sh + 1, ow = (wd + 2 * pw - kw) / sw + 1;
  auto W = w.data<float>();
  Ref y{{n, o, oh, ow}, std::vector<double>(static_cast<size_t>(n * o * oh * ow))};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t yy = 0; yy < oh; ++yy)
        for (int64_t xx = 0; xx < ow; ++xx) {
          double s = b ? b->data<float>()[oc] : 0.0;
          for (int64_t ic = 0; ic < c; ++ic)
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t e = 0; e < kw; ++e) {
                int64_t iy = yy * sh - ph + a, ix = xx * sw - pw + e;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += x.v[((i * c + ic) * h + iy) * wd + ix] * W[((oc * c + ic) * kh + a) * kw + e];
              }
          y.at(((i * o + oc) * oh + yy) * ow + xx) = s;
        }
  return y;
}

inline Ref ref_maxpool2d(const Ref& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                         int64_t ph, int64_t pw) {
  int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
  int64_t oh = (h + 2 * ph - kh) / sh + 1, ow = (wd + 2 * pw - kw) / sw + 1;
  Ref y{{n, c, oh, ow}, std::vector<double>(static_cast<size_t>(n * c * oh * ow))};
  for (int64_t i = 0; i < n * c; ++i)
    for (int64_t yy = 0; yy < oh; ++yy)
      for (int64_t xx = 0; xx < ow; ++xx) {
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t a = 0; a < kh; ++a)
          for (int64_t e = 0; e < kw; ++e) {
            int64_t iy = yy * sh - ph + a, ix = xx * sw - pw + e;
            if (iy >= 0 && iy < h && ix >= 0 && ix < wd) m = std::max(m, x.v[(i * h + iy) * wd + ix]);
          }
        y.at((i * oh + yy) * ow + xx) = m;
      }
  return y;
}

inline Ref ref_relu(Ref x) {
  for (double& v : x.v) v = std::max(v, 0.0);
  return x;
}

inline Ref ref_softmax_rows(Ref x) {
  int64_t n = x.shape[0], c = static_cast<int64_t>(x.v.size()) / n;
  for (int64_t i = 0; i < n; ++i) {
    double m = *std::max_element(x.v.begin() + i * c, x.v.begin() + (i + 1) * c), s = 0;
    for (int64_t j = 0; j < c; ++j) s += x.at(i * c + j) = std::exp(x.at(i * c + j) - m);
    for (int64_t j = 0; j < c; ++j) x.at(i * c + j) /= s;
  }
  return x;
}

// Largest |a - b| relative to max(1, |b|).
inline double max_rel_error(const Tensor& a, const Ref& b) {
  auto d = a.data<float>();
  double e = 0;
  for (size_t i = 0; i < b.v.size(); ++i)
    e = std::max(e, std::abs(d[i] - b.v[i]) / std::max(1.0, std::abs(b.v[i])));
  return e;
}

}  // namespace ckpt::train::test
