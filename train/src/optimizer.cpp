#include <ckpt/errors.hpp>
#include <ckpt/train/optimizer.hpp>

#include <algorithm>
#include <cmath>
#include <set>

namespace ckpt::train {

namespace {

double number(const Group& g, const char* key, double fallback, const char* where) {
  const Value* v = g.attribute(key);
  if (!v) return fallback;
  if (auto* d = std::get_if<double>(v)) return *d;
  if (auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  throw UsageError(std::string(where) + "." + key + ": expected a number, got " + value_to_string(*v));
}

bool boolean(const Group& g, const char* key, bool fallback, const char* where) {
  const Value* v = g.attribute(key);
  if (!v) return fallback;
  if (auto* b = std::get_if<bool>(v)) return *b;
  throw UsageError(std::string(where) + "." + key + ": expected true or false, got " + value_to_string(*v));
}

void only_keys(const Group& g, std::initializer_list<const char*> keys, const char* where) {
  for (const auto& a : g.attributes()) {
    bool known = false;
    for (const char* k : keys) known = known || a.name == k;
    if (!known) {
      std::string list;
      for (const char* k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
      throw UsageError(std::string(where) + "." + a.name + ": unknown key (known: " + list + ")");
    }
  }
}

Tensor& buffer(std::map<std::string, Tensor>& s, const char* name, const Shape& shape) {
  auto it = s.find(name);
  if (it == s.end()) it = s.emplace(name, Tensor::zeros(DType::f32, shape)).first;
  return it->second;
}

class Sgd : public Optimizer {
 public:
  explicit Sgd(const Group& c) {
    only_keys(c, {"type", "lr", "momentum", "dampening", "nesterov", "weight_decay"}, "optimizer");
    lr_ = number(c, "lr", 0.01, "optimizer");
    momentum_ = number(c, "momentum", 0, "optimizer");
    dampening_ = number(c, "dampening", 0, "optimizer");
    nesterov_ = boolean(c, "nesterov", false, "optimizer");
    weight_decay_ = number(c, "weight_decay", 0, "optimizer");
    if (lr_ < 0) throw UsageError("optimizer.lr: must not be negative");
    if (nesterov_ && (momentum_ <= 0 || dampening_ != 0))
      throw UsageError("optimizer.nesterov: needs momentum > 0 and dampening = 0 (as in PyTorch)");
  }

  // torch.optim.SGD: d_p = g + wd*p; buf = d_p on the first step, else m*buf + (1-damp)*d_p;
  // d_p = nesterov ? d_p + m*buf : buf; p -= lr*d_p.
  void step(const NamedParameters& params, double lr) override {
    lr_ = lr;
    const float flr = static_cast<float>(lr), wd = static_cast<float>(weight_decay_);
    const float m = static_cast<float>(momentum_), damp = 1.0f - static_cast<float>(dampening_);
    for (const auto& [name, p] : params) {
      // Sharded, only this rank's rows: w and g from `lo`, the state from 0.
      const auto [lo, hi] = my_elements(p->value.shape());
      auto w = p->value.mutable_data<float>().subspan(lo, hi - lo);
      auto g = p->grad.data<float>().subspan(lo, hi - lo);
      if (momentum_ == 0) {
        for (size_t i = 0; i < w.size(); ++i) w[i] -= flr * (g[i] + wd * w[i]);
        continue;
      }
      auto& s = state_[name];
      bool first = !s.count("momentum_buffer");
      auto buf = buffer(s, "momentum_buffer", state_shape(p->value.shape())).mutable_data<float>();
      for (size_t i = 0; i < w.size(); ++i) {
        float d = g[i] + wd * w[i];
        buf[i] = first ? d : m * buf[i] + damp * d;
        float u = nesterov_ ? d + m * buf[i] : buf[i];
        w[i] -= flr * u;
      }
    }
    ++step_;
  }

  Group state_dict() const override {
    Group g = state_group();
    g.set("type", "sgd");
    g.set("lr", lr_).set("momentum", momentum_).set("dampening", dampening_);
    g.set("nesterov", nesterov_).set("weight_decay", weight_decay_);
    return g;
  }

  void load_state_dict(const Group& g, const NamedParameters& params, bool own_rows = false) override {
    momentum_ = number(g, "momentum", momentum_, "optimizer");
    dampening_ = number(g, "dampening", dampening_, "optimizer");
    nesterov_ = boolean(g, "nesterov", nesterov_, "optimizer");
    load_state_group(g, params, {"momentum_buffer"}, own_rows);
  }

 private:
  double momentum_, dampening_;
  bool nesterov_;
};

class Adam : public Optimizer {
 public:
  Adam(const Group& c, bool decoupled) : decoupled_(decoupled) {
    const char* where = "optimizer";
    only_keys(c, {"type", "lr", "betas", "eps", "weight_decay"}, where);
    lr_ = number(c, "lr", 0.001, where);
    eps_ = number(c, "eps", 1e-8, where);
    weight_decay_ = number(c, "weight_decay", decoupled ? 0.01 : 0.0, where);
    if (const Value* b = c.attribute("betas")) {
      auto* v = std::get_if<std::vector<double>>(b);
      if (!v || v->size() != 2 || (*v)[0] < 0 || (*v)[0] >= 1 || (*v)[1] < 0 || (*v)[1] >= 1)
        throw UsageError("optimizer.betas: expected two numbers in [0, 1)");
      beta1_ = (*v)[0];
      beta2_ = (*v)[1];
    }
  }

  // torch.optim.Adam / AdamW (1.13, single-tensor path): AdamW first scales p by (1 - lr*wd),
  // Adam adds wd*p to the gradient; then m, v, bias corrections and
  // p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
  void step(const NamedParameters& params, double lr) override {
    lr_ = lr;
    ++step_;
    const double bc1 = 1 - std::pow(beta1_, static_cast<double>(step_));
    const double bc2 = 1 - std::pow(beta2_, static_cast<double>(step_));
    const float step_size = static_cast<float>(lr / bc1);
    const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_);
    const float eps = static_cast<float>(eps_), wd = static_cast<float>(weight_decay_);
    const float decay = static_cast<float>(1 - lr * weight_decay_);
    for (const auto& [name, p] : params) {
      auto& s = state_[name];
      const auto [lo, hi] = my_elements(p->value.shape());
      auto w = p->value.mutable_data<float>().subspan(lo, hi - lo);
      auto g = p->grad.data<float>().subspan(lo, hi - lo);
      const Shape shape = state_shape(p->value.shape());
      auto m = buffer(s, "exp_avg", shape).mutable_data<float>();
      auto v = buffer(s, "exp_avg_sq", shape).mutable_data<float>();
      for (size_t i = 0; i < w.size(); ++i) {
        float gi = g[i];
        if (decoupled_)
          w[i] *= decay;
        else
          gi += wd * w[i];
        m[i] = m[i] * b1 + (1 - b1) * gi;
        v[i] = v[i] * b2 + (1 - b2) * gi * gi;
        float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
        w[i] -= step_size * (m[i] / denom);
      }
    }
  }

  Group state_dict() const override {
    Group g = state_group();
    g.set("type", decoupled_ ? "adamw" : "adam");
    g.set("lr", lr_).set("betas", std::vector<double>{beta1_, beta2_}).set("eps", eps_);
    g.set("weight_decay", weight_decay_);
    return g;
  }

  void load_state_dict(const Group& g, const NamedParameters& params, bool own_rows = false) override {
    eps_ = number(g, "eps", eps_, "optimizer");
    if (const Value* b = g.attribute("betas"))
      if (auto* v = std::get_if<std::vector<double>>(b); v && v->size() == 2) {
        beta1_ = (*v)[0];
        beta2_ = (*v)[1];
      }
    load_state_group(g, params, {"exp_avg", "exp_avg_sq"}, own_rows);
  }

 private:
  bool decoupled_;
  double beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8;
};

}  // namespace

std::unique_ptr<Optimizer> Optimizer::make(const Group& c) {
  const Value* t = c.attribute("type");
  const std::string* type = t ? std::get_if<std::string>(t) : nullptr;
  if (!type) throw UsageError("optimizer.type: missing (one of sgd, adam, adamw)");
  if (*type == "sgd") return std::make_unique<Sgd>(c);
  if (*type == "adam") return std::make_unique<Adam>(c, false);
  if (*type == "adamw") return std::make_unique<Adam>(c, true);
  throw UsageError("optimizer.type: unknown optimizer '" + *type + "' (known: sgd, adam, adamw)");
}

void Optimizer::shard(int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world)
    throw UsageError("optimizer: rank " + std::to_string(rank) + " of a world of " + std::to_string(world));
  rank_ = rank;
  world_ = world;
  state_.clear();
}

std::pair<int64_t, int64_t> Optimizer::rows_of(int64_t rows, int rank, int world) {
  const int64_t base = rows / world, extra = rows % world, r = rank;
  const int64_t lo = r * base + std::min(r, extra);
  return {lo, lo + base + (r < extra ? 1 : 0)};
}

Shape Optimizer::state_shape(const Shape& shape) const {
  if (world_ == 1) return shape;
  const auto [lo, hi] = my_rows(shape);
  Shape s = shape.empty() ? Shape{1} : shape;
  s[0] = hi - lo;
  return shape.empty() && hi - lo == 1 ? shape : s;
}

std::pair<size_t, size_t> Optimizer::elements_of(const Shape& shape, int rank, int world) {
  const auto [lo, hi] = rows_of(rows(shape), rank, world);
  const int64_t rows_total = rows(shape);
  const uint64_t per_row = rows_total ? numel(shape) / static_cast<uint64_t>(rows_total) : 0;
  return {static_cast<size_t>(static_cast<uint64_t>(lo) * per_row), static_cast<size_t>(static_cast<uint64_t>(hi) * per_row)};
}

Group Optimizer::state_group() const {
  Group g;
  g.set("step", step_);
  Group& st = g.add_group("state");
  for (const auto& [param, bufs] : state_) {
    Group& pg = st.add_group(param);
    for (const auto& [name, t] : bufs) pg.add_tensor(name, t);
  }
  return g;
}

void Optimizer::load_state_group(const Group& g, const NamedParameters& params,
                                 const std::vector<std::string>& buffers, bool own_rows) {
  const Value* type = g.attribute("type");
  Group mine = state_dict();
  if (!type || !value_equal(*type, *mine.attribute("type")))
    throw FormatError("optimizer/type: the checkpoint holds " + (type ? value_to_string(*type) : std::string("none")) +
                      ", the run uses " + value_to_string(*mine.attribute("type")));
  lr_ = number(g, "lr", lr_, "optimizer");
  weight_decay_ = number(g, "weight_decay", weight_decay_, "optimizer");
  const Value* s = g.attribute("step");
  step_ = s && std::holds_alternative<int64_t>(*s) ? std::get<int64_t>(*s) : 0;
  state_.clear();
  const Group* st = g.find_group("state");
  if (!st) return;
  std::set<std::string> known;
  for (const auto& [name, p] : params) {
    known.insert(name);
    const Group* pg = st->find_group(name);
    if (!pg) continue;
    for (const auto& b : buffers) {
      const Tensor* t = pg->find_tensor(b);
      if (!t) continue;
      const Shape& whole = p->value.shape();
      const Shape mine = state_shape(whole);
      const Shape& want = own_rows ? mine : whole;
      if (t->dtype() != DType::f32 || t->shape() != want)
        throw FormatError("optimizer/state/" + name + "/" + b + ": " + std::string(ckpt::name(t->dtype())) + " " +
                          shape_string(t->shape()) + " does not match " +
                          (own_rows && mine != whole ? "this rank's f32 rows " + shape_string(mine) + " of the parameter's " +
                                                           shape_string(whole)
                                                     : "the parameter's f32 " + shape_string(whole)));
      if (!own_rows && mine != whole) {
        const auto [lo, hi] = my_elements(whole);
        auto src = t->data<float>().subspan(lo, hi - lo);
        Tensor rows = Tensor::empty(DType::f32, mine);
        std::copy(src.begin(), src.end(), rows.mutable_data<float>().begin());
        state_[name][b] = std::move(rows);
      } else {
        state_[name][b] = t->clone();
      }
    }
  }
  for (const auto& c : st->children())
    if (!known.count(c.name)) throw FormatError("optimizer/state/" + c.name + ": no such parameter in the model");
}

}  // namespace ckpt::train
