#include "engine_memory.hpp"
#include "init.hpp"
#include "layer_base.hpp"
#include "layers.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/train/model.hpp>

#include <cstring>
#include <set>

namespace ckpt::train {

using detail::memory;

// What the model path needs besides the layers: the input it read (kept for the first layer's
// weight gradient), an aligned copy when the caller's input is not, and the plain output.
struct Model::Runtime {
  std::vector<detail::DnnlLayer*> layers;
  Tensor input;
  Tensor input_copy, grad_copy;
  memory in_mem, grad_mem;
  detail::Converter out_conv;
  Tensor output;
  bool backward_ready = false;
};

Model::Model() : rt_(std::make_unique<Runtime>()) {}
Model::~Model() = default;

namespace {
std::string list(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

// A view of `t`'s bytes for oneDNN, or of an aligned copy when they are not aligned.
memory& input_view(const Tensor& t, Tensor& copy, memory& mem, Engine& engine) {
  const void* data = t.bytes().data();
  if (!detail::is_aligned(data)) {
    if (!copy.defined() || copy.shape() != t.shape()) copy = aligned_tensor(t.shape());
    std::memcpy(copy.mutable_bytes().data(), data, t.nbytes());
    data = copy.bytes().data();
  }
  memory::desc md = detail::plain_desc(t.shape());
  if (!mem || !(mem.get_desc() == md)) mem = detail::view(md, engine, nullptr);
  mem.set_data_handle(const_cast<void*>(data));
  return mem;
}
}  // namespace

std::unique_ptr<Model> Model::from_spec(const Group& spec, uint64_t seed) {
  std::unique_ptr<Model> m(new Model());
  m->spec_ = spec;
  const model_spec::SequentialSpec parsed = model_spec::parse(spec);
  // Checked before any parameter is allocated: naming the first layer that does not fit.
  model_spec::layer_shapes(parsed);
  m->input_shape_ = parsed.input_shape;
  m->engine_ = std::make_unique<Engine>();
  for (const model_spec::LayerSpec& l : parsed.layers) {
    auto layer = detail::make_layer(l, *m->engine_);
    // make_layer only builds oneDNN layers; the model path needs their layout-aware calls.
    m->rt_->layers.push_back(&dynamic_cast<detail::DnnlLayer&>(*layer));
    m->layers_.emplace_back(l.name, std::move(layer));
  }
  for (auto& [name, layer] : m->layers_) layer->reset_parameters(detail::layer_seed(seed, name));
  return m;
}

Shape Model::output_shape(int64_t n) const {
  Shape s{n};
  s.insert(s.end(), input_shape_.begin(), input_shape_.end());
  for (const auto& [name, layer] : layers_) s = layer->output_shape(s);
  return s;
}

std::vector<std::pair<std::string, Parameter*>> Model::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> out;
  for (auto& [name, layer] : layers_)
    for (Parameter* p : layer->parameters()) out.emplace_back(name + "." + p->name, p);
  return out;
}

Group Model::state_dict() const {
  Group g;
  for (const auto& [name, layer] : layers_)
    for (Parameter* p : layer->parameters()) g.add_tensor(name + "." + p->name, p->value);
  return g;
}

LoadResult Model::load_state_dict(const Group& state, bool strict) {
  LoadResult r;
  std::vector<std::pair<Parameter*, const Tensor*>> copies;
  std::set<std::string> known;
  for (auto& [name, p] : named_parameters()) {
    known.insert(name);
    const Tensor* t = state.find_tensor(name);
    if (!t) {
      r.missing.push_back(name);
    } else if (t->shape() != p->value.shape()) {
      r.shape_mismatch.push_back(name + ": " + shape_string(p->value.shape()) + " in the model, " +
                                 shape_string(t->shape()) + " given");
    } else if (!is_floating(t->dtype())) {
      r.shape_mismatch.push_back(name + ": f32 in the model, " + std::string(ckpt::name(t->dtype())) +
                                 " given");
    } else {
      copies.emplace_back(p, t);
    }
  }
  state.for_each_tensor([&](const std::string& path, const Tensor&) {
    if (!known.count(path)) r.unexpected.push_back(path);
  });
  if (strict && !r.ok()) {
    std::string msg = "load_state_dict (strict): nothing loaded;";
    if (!r.missing.empty()) msg += " missing: " + list(r.missing) + ";";
    if (!r.unexpected.empty()) msg += " unexpected: " + list(r.unexpected) + ";";
    if (!r.shape_mismatch.empty()) msg += " mismatched: " + list(r.shape_mismatch) + ";";
    msg.pop_back();
    throw UsageError(msg);
  }
  for (auto [p, t] : copies) {
    auto dst = p->value.mutable_bytes();
    if (t->dtype() == DType::f32)
      std::memmove(dst.data(), t->bytes().data(), dst.size());  // may be our own view
    else
      cast_elements(t->dtype(), t->bytes().data(), DType::f32, dst.data(), p->value.numel());
  }
  return r;
}

const Tensor& Model::forward(const Tensor& x) {
  Shape want{-1};
  want.insert(want.end(), input_shape_.begin(), input_shape_.end());
  bool ok = x.dtype() == DType::f32 && x.rank() == want.size() && x.rank() > 0 && x.shape()[0] > 0;
  for (size_t i = 1; ok && i < want.size(); ++i) ok = x.shape()[i] == want[i];
  if (!ok) {
    std::string w = "[N";
    for (int64_t d : input_shape_) w += ", " + std::to_string(d);
    throw UsageError("model input must be f32 " + w + "] with N > 0, got " +
                     std::string(name(x.dtype())) + " " + shape_string(x.shape()));
  }
  Runtime& rt = *rt_;
  rt.backward_ready = false;
  rt.input = x;
  const memory* cur = &input_view(x, rt.input_copy, rt.in_mem, *engine_);
  // A layer may compute in place over its input only when nothing else reads that memory again:
  // not the caller's input, and not an output that the producing layer's backward reads.
  bool guarded = true;
  for (detail::DnnlLayer* layer : rt.layers) {
    const memory& y = layer->run_forward(*cur, training_, !guarded);
    bool aliases = y.get_data_handle() == cur->get_data_handle();
    guarded = (aliases && guarded) || layer->backward_reads_output();
    cur = &y;
  }
  Shape out = output_shape(x.shape()[0]);
  const memory& plain = rt.out_conv(*cur, detail::plain_desc(out), *engine_);
  engine_->stream().wait();
  rt.output = Tensor::borrow(DType::f32, out, plain.get_data_handle());
  rt.backward_ready = training_;
  return rt.output;
}

void Model::backward(const Tensor& grad) {
  Runtime& rt = *rt_;
  if (!rt.backward_ready) throw UsageError("model backward needs a forward in training mode first");
  if (grad.dtype() != DType::f32 || grad.shape() != rt.output.shape())
    throw UsageError("model backward: gradient must be f32 " + shape_string(rt.output.shape()) +
                     " like the output, got " + std::string(name(grad.dtype())) + " " +
                     shape_string(grad.shape()));
  const memory* cur = &input_view(grad, rt.grad_copy, rt.grad_mem, *engine_);
  void* guarded = cur->get_data_handle();
  for (size_t i = rt.layers.size(); i-- > 0;)
    cur = rt.layers[i]->run_backward(*cur, cur->get_data_handle() != guarded, i > 0);
  engine_->stream().wait();
}

}  // namespace ckpt::train
