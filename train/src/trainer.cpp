#include "distributed.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/sharded.hpp>
#include <ckpt/train/loss.hpp>
#include <ckpt/train/manager.hpp>
#include <ckpt/train/optimizer.hpp>
#include <ckpt/train/schedule.hpp>
#include <ckpt/train/spec_inference.hpp>
#include <ckpt/train/trainer.hpp>

#include <ckpt/model_spec.hpp>

#include <chrono>
#include <cmath>
#include <map>
#include <optional>

// The streaming XXH3 of the checkpoint's whole-tensor hashes, continued from rank to rank over
// each one's rows (header only: the hash libckpt records, without linking libxxhash here).
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace ckpt::train {

namespace {

// One-hot targets for MSE, reusing `t` between batches.
void one_hot(std::span<const uint8_t> labels, int64_t classes, Tensor& t) {
  if (!t.defined() || t.shape() != Shape{static_cast<int64_t>(labels.size()), classes})
    t = Tensor::empty(DType::f32, {static_cast<int64_t>(labels.size()), classes});
  auto d = t.mutable_data<float>();
  std::fill(d.begin(), d.end(), 0.0f);
  for (size_t i = 0; i < labels.size(); ++i) d[i * static_cast<size_t>(classes) + labels[i]] = 1.0f;
}

LossResult compute_loss(const std::string& loss, const Tensor& out, std::span<const uint8_t> labels, Tensor& grad,
                        Tensor& targets) {
  if (!grad.defined() || grad.shape() != out.shape()) grad = Tensor::empty(DType::f32, out.shape());
  if (loss == "mse") {
    one_hot(labels, out.shape()[1], targets);
    LossResult r = mse(out, targets, grad);
    // Accuracy of the regression outputs, read as class scores.
    r.correct = 0;
    auto o = out.data<float>();
    size_t c = static_cast<size_t>(out.shape()[1]);
    for (size_t i = 0; i < labels.size(); ++i) {
      size_t best = 0;
      for (size_t k = 1; k < c; ++k)
        if (o[i * c + k] > o[i * c + best]) best = k;
      r.correct += best == labels[i];
    }
    return r;
  }
  return cross_entropy(out, labels, grad);
}

double attr_num(const Group& g, const char* key) {
  const Value* v = g.attribute(key);
  if (!v) throw FormatError(std::string("trainer/") + key + ": missing");
  if (auto* d = std::get_if<double>(v)) return *d;
  if (auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  throw FormatError(std::string("trainer/") + key + ": expected a number");
}

Shape batch_shape(const Model& m, int64_t n) {
  Shape s = {n};
  s.insert(s.end(), m.input_shape().begin(), m.input_shape().end());
  return s;
}

// Gradients are summed over ranks in fused buckets: one MPI_Allreduce per contiguous buffer of
// several parameters' gradients, not one per tensor (the MLP's six tensors go in one call).
// Parameters are bucketed last layer first, the order backward finishes them in; the order is
// fixed, so a run repeated at the same world size reduces the same buffers the same way.
constexpr size_t kBucketBytes = size_t{4} << 20;

struct GradBucket {
  std::vector<Parameter*> params;
  std::vector<float> buffer;
};

std::vector<GradBucket> make_buckets(const NamedParameters& params) {
  std::vector<GradBucket> out;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const size_t n = it->second->grad.numel();
    if (out.empty() || (out.back().buffer.size() + n) * sizeof(float) > kBucketBytes) out.emplace_back();
    out.back().params.push_back(it->second);
    out.back().buffer.resize(out.back().buffer.size() + n);
  }
  return out;
}

void allreduce_gradients(const Communicator& comm, std::vector<GradBucket>& buckets) {
  for (auto& b : buckets) {
    float* at = b.buffer.data();
    for (Parameter* p : b.params) {
      auto g = p->grad.data<float>();
      at = std::copy(g.begin(), g.end(), at);
    }
    comm.allreduce_sum(b.buffer);
    const float* from = b.buffer.data();
    for (Parameter* p : b.params) {
      auto g = p->grad.mutable_data<float>();
      std::copy(from, from + g.size(), g.begin());
      from += g.size();
    }
  }
}

// ZeRO-1 (docs/scaling.md): after each rank updated its rows, every parameter whole on every
// rank again, one MPI_Allgatherv per gradient bucket. A bucket's buffer holds rank 0's rows of
// each of its parameters, then rank 1's, and so on: each rank's part is contiguous, as
// MPI_Allgatherv places it.
void allgather_parameters(const Communicator& comm, std::vector<GradBucket>& buckets) {
  const int world = comm.size();
  std::vector<int64_t> counts(static_cast<size_t>(world));
  for (auto& b : buckets) {
    size_t at = 0;
    for (int r = 0; r < world; ++r) {
      counts[static_cast<size_t>(r)] = 0;
      for (Parameter* p : b.params) {
        const auto [lo, hi] = Optimizer::elements_of(p->value.shape(), r, world);
        if (r == comm.rank()) {
          auto w = p->value.data<float>().subspan(lo, hi - lo);
          std::copy(w.begin(), w.end(), b.buffer.begin() + static_cast<ptrdiff_t>(at));
        }
        at += hi - lo;
        counts[static_cast<size_t>(r)] += static_cast<int64_t>(hi - lo);
      }
    }
    comm.allgatherv(b.buffer, counts);
    const float* from = b.buffer.data();
    for (int r = 0; r < world; ++r)
      for (Parameter* p : b.params) {
        const auto [lo, hi] = Optimizer::elements_of(p->value.shape(), r, world);
        std::copy(from, from + (hi - lo), p->value.mutable_data<float>().begin() + static_cast<ptrdiff_t>(lo));
        from += hi - lo;
      }
  }
}

// Under ZeRO-1 the optimizer's state/<param>/<buffer> tensors hold this rank's rows only: the
// path of each, with the parameter's whole shape.
struct StateRows {
  std::string path;  // "optimizer/state/fc1.weight/momentum_buffer"
  std::string param, buffer;
  Shape whole;
};

std::vector<StateRows> state_rows(const Group& optimizer_state, const NamedParameters& params) {
  std::vector<StateRows> out;
  const Group* st = optimizer_state.find_group("state");
  if (!st) return out;
  for (const auto& [name, p] : params) {
    const Group* pg = st->find_group(name);
    if (!pg) continue;
    for (const auto& c : pg->children()) {
      if (!pg->find_tensor(c.name)) continue;
      StateRows r;
      r.path = "optimizer/state/" + name + "/" + c.name;
      r.param = name;
      r.buffer = c.name;
      r.whole = p->value.shape();
      out.push_back(std::move(r));
    }
  }
  return out;
}

// Each ZeRO-1 state tensor's rows per rank, in elements (MPI_Gatherv's counts).
std::vector<int64_t> counts_of(const StateRows& r, int world) {
  std::vector<int64_t> counts;
  for (int k = 0; k < world; ++k) {
    const auto [lo, hi] = Optimizer::elements_of(r.whole, k, world);
    counts.push_back(static_cast<int64_t>(hi - lo));
  }
  return counts;
}

// The whole tensors' XXH3 of ZeRO-1 state nobody holds whole: rank 0 hashes its rows of every
// tensor, hands the hash states to rank 1, which goes on over its rows, and so on; the last
// rank's digests go to rank 0 (the only one whose result is used). The rows are contiguous in C
// order, so this is the hash of the whole tensor, as add_integrity records it, without any rank
// gathering the state: what crosses is one XXH3 state (576 bytes) per tensor.
std::vector<uint64_t> chained_hashes(const Communicator& comm, const std::vector<StateRows>& rows,
                                     const std::map<std::string, Tensor>& own) {
  const int rank = comm.rank(), world = comm.size();
  std::vector<XXH3_state_t> states(rows.size());
  XXH3_state_t fresh;
  XXH3_64bits_reset(&fresh);
  if (rank == 0) {
    for (auto& st : states) XXH3_64bits_reset(&st);
  } else {
    comm.receive(std::as_writable_bytes(std::span(states)), rank - 1);
    // A reset state points at the default secret in this process's copy of the code; the
    // sender's address means nothing here.
    for (auto& st : states) st.extSecret = fresh.extSecret;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto bytes = own.at(rows[i].path).bytes();
    XXH3_64bits_update(&states[i], bytes.data(), bytes.size());
  }
  std::vector<uint64_t> digests(rows.size());
  if (rank + 1 < world) {
    comm.send(std::as_bytes(std::span(states)), rank + 1);
  } else {
    for (size_t i = 0; i < rows.size(); ++i) digests[i] = XXH3_64bits_digest(&states[i]);
    if (rank != 0) comm.send(std::as_bytes(std::span(digests)), 0);
  }
  if (rank == 0 && world > 1) comm.receive(std::as_writable_bytes(std::span(digests)), world - 1);
  return digests;
}

// A checkpoint with this rank's rows of the ZeRO-1 state only, read from a sharded folder: the
// chunked reader reads the chunks that overlap those rows and nothing else, each checked
// against the index's hash as it is read; the index's record of the whole document is checked
// against its tree first, as a full load's verification would.
Checkpoint load_own_rows(const fs::path& from, const LoadOptions& lo, const NamedParameters& params, int rank, int world) {
  auto reader = ckpt::open(from, lo);
  Document doc = reader->tree();
  if (lo.verify) {
    const auto problems = record_problems(doc);
    if (!problems.empty()) {
      std::string msg = "'" + from.string() + "' failed verification:";
      for (const auto& p : problems) msg += "\n  " + p;
      throw IntegrityError(msg);
    }
  }
  // A tensor read whole is checked against its recorded whole-tensor digest, as verify does;
  // rows are covered by their chunks' hashes, checked as they are read.
  const std::map<std::string, std::string> digests = lo.verify ? recorded_digests(doc) : std::map<std::string, std::string>{};
  auto read_whole = [&](const std::string& path) {
    Tensor t = reader->read(path);
    if (const auto d = digests.find(path); d != digests.end())
      if (const std::string h = hash_hex(hash_bytes(t.bytes())); h != d->second)
        throw IntegrityError("'" + from.string() + "' failed verification: " + path + " has hash " + h + ", meta/integrity records " +
                             d->second);
    return t;
  };
  std::map<std::string, Shape> whole;
  for (const auto& [name, p] : params) whole["optimizer/state/" + name + "/"] = p->value.shape();
  std::vector<std::string> paths;
  doc.for_each_tensor([&](const std::string& path, const Tensor&) { paths.push_back(path); });
  for (const std::string& path : paths) {
    // The document is ours: its tensors get their bytes in place.
    Tensor& t = *const_cast<Tensor*>(doc.find_tensor_path(path));
    const auto slash = path.rfind('/');
    const auto w = slash == std::string::npos ? whole.end() : whole.find(path.substr(0, slash + 1));
    if (w == whole.end()) {
      // Not a state tensor of a parameter this model has: read whole, for the loaders to take or
      // refuse by their own rules.
      t = read_whole(path);
      continue;
    }
    // load_state_dict is told these are this rank's rows and takes their shape as such, so a
    // state tensor not of its parameter's whole shape (which might equal the rows' shape) is
    // refused here.
    if (t.shape() != w->second || t.dtype() != DType::f32)
      throw FormatError("'" + from.string() + "': " + path + " is " + std::string(ckpt::name(t.dtype())) + " " +
                        shape_string(t.shape()) + ", its parameter f32 " + shape_string(w->second));
    const auto [r0, r1] = Optimizer::rows_of(Optimizer::rows(w->second), rank, world);
    if (w->second.empty() && r1 == r0) {
      // A 0-d parameter's one row is another rank's: the rows are shaped [0] (state_shape).
      t = Tensor::empty(DType::f32, {0});
      continue;
    }
    Shape count = w->second.empty() ? Shape{} : w->second;
    std::vector<int64_t> start(count.size(), 0);
    if (!count.empty()) {
      start[0] = r0;
      count[0] = r1 - r0;
    }
    Tensor rows = Tensor::empty(DType::f32, count);
    if (rows.numel() > 0) reader->read_slice_into(path, start, count, rows.mutable_bytes());
    t = std::move(rows);
  }
  return Checkpoint::from_document(std::move(doc), from.string());
}

// FNV-1a over every tensor's bytes, in order: ranks compare it to prove they still hold the
// same parameters.
uint64_t fingerprint(const Group& g) {
  uint64_t h = 1469598103934665603ull;
  g.for_each_tensor([&](const std::string& path, const Tensor& t) {
    for (char c : path) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    auto bytes = std::as_bytes(t.data<float>());
    for (std::byte b : bytes) h = (h ^ static_cast<uint8_t>(b)) * 1099511628211ull;
  });
  return h;
}

// The paths, dtypes and byte sizes of a group's tensors: ranks compare it before rank 0
// broadcasts bytes into them.
uint64_t structure_fingerprint(const Group& g) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ull;
  };
  g.for_each_tensor([&](const std::string& path, const Tensor& t) {
    for (char c : path) mix(static_cast<uint8_t>(c));
    mix(static_cast<uint64_t>(t.dtype()));
    mix(t.nbytes());
  });
  return h;
}

}  // namespace

Evaluation evaluate(Model& model, const Dataset& data, int64_t batch_size, const std::string& loss) {
  bool was_training = model.training();
  model.eval();
  Evaluation e;
  std::vector<uint32_t> order(data.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
  Tensor x, grad, targets;
  std::vector<uint8_t> y;
  double loss_sum = 0;
  int64_t correct = 0;
  for (size_t b = 0; b < data.size(); b += static_cast<size_t>(batch_size)) {
    size_t end = std::min(data.size(), b + static_cast<size_t>(batch_size));
    gather_batch(data, order, b, end, x, y);
    const Tensor& out = model.forward(x.reshape(batch_shape(model, static_cast<int64_t>(end - b))));
    LossResult r = compute_loss(loss, out, y, grad, targets);
    loss_sum += r.loss * static_cast<double>(end - b);
    correct += r.correct;
  }
  e.samples = static_cast<int64_t>(data.size());
  e.loss = e.samples ? loss_sum / static_cast<double>(e.samples) : 0;
  e.accuracy = e.samples ? static_cast<double>(correct) / static_cast<double>(e.samples) : 0;
  model.train(was_training);
  return e;
}

namespace {

// The parameters a spec's model has ("fc1.weight" -> [out, in]), read off the spec's layers
// with parameters as Model::from_spec reads them (model_spec::parse_layer, same errors) but
// without building anything. Layers it cannot find or type are left to from_spec, which names
// the problem before it allocates.
std::vector<std::pair<std::string, Shape>> spec_parameters(const Group& spec) {
  std::vector<std::pair<std::string, Shape>> out;
  const Value* lv = spec.attribute("layers");
  const auto* names = lv ? std::get_if<std::vector<std::string>>(lv) : nullptr;
  if (!names) return out;
  for (const std::string& name : *names) {
    const Group* g = spec.find_group(name);
    const Value* t = g ? g->attribute("type") : nullptr;
    const std::string* type = t ? std::get_if<std::string>(t) : nullptr;
    if (!type || (*type != "linear" && *type != "conv2d")) continue;  // no parameters, or from_spec's to refuse
    for (const auto& p : model_spec::parameters(model_spec::parse_layer(*g, name)))
      out.emplace_back(name + "." + p.name, p.shape);
  }
  return out;
}

// Building the model allocates (and initialises) every parameter the spec names, and a spec is
// a few bytes whatever sizes it names: checked first against the tensors model/state really
// holds, so a small file cannot make the model take gigabytes only for load_state_dict to
// refuse it afterwards.
void check_state_fits_spec(const Group& spec, const Group& state) {
  std::string problems;
  for (const auto& [name, shape] : spec_parameters(spec)) {
    const Tensor* t = state.find_tensor(name);
    std::string problem;
    if (!t)
      problem = "missing (model/spec makes it " + shape_string(shape) + ")";
    else if (t->shape() != shape)
      problem = shape_string(t->shape()) + ", but model/spec makes it " + shape_string(shape);
    else if (!is_floating(t->dtype()))
      problem = std::string(ckpt::name(t->dtype())) + ", not a floating dtype the model's f32 parameters can take";
    if (!problem.empty()) problems += (problems.empty() ? "" : "; ") + ("model/state/" + name + ": " + problem);
  }
  if (!problems.empty())
    throw FormatError("the checkpoint's model/state does not fit its model/spec, so no model was built: " + problems);
}

}  // namespace

std::unique_ptr<Model> model_from_checkpoint(const Checkpoint& c) {
  // A state dict from another tool has no spec; a ready-made model's can be read off its shapes.
  std::optional<Group> inferred = c.model_spec.empty() ? infer_spec(c.model_state) : std::nullopt;
  if (c.model_spec.empty() && !inferred)
    throw FormatError("the checkpoint has no model/spec, so the model cannot be rebuilt from it alone");
  check_state_fits_spec(inferred ? *inferred : c.model_spec, c.model_state);
  auto m = Model::from_spec(inferred ? *inferred : c.model_spec, 0);
  m->load_state_dict(c.model_state, true);
  m->eval();
  return m;
}

struct Trainer::State {
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<Schedule> schedule;
  int64_t epoch = 0;     // the epoch in progress (0-based)
  int64_t position = 0;  // samples of this epoch already trained on
  int64_t step = 0;      // optimizer steps so far
  double loss_sum = 0;   // this epoch's running sums, so a resumed epoch reports the same
  int64_t correct = 0;
  Group metrics;  // the last finished epoch's metrics
};

Trainer::Trainer(TrainConfig config, const Registry& registry) : config_(std::move(config)), registry_(registry) {
  Engine::set_threads(config_.threads);
  if (config_.distributed_engine == "mpi" || Communicator::launched_by_mpirun()) comm_ = std::make_unique<Communicator>();
  model_ = Model::from_spec(config_.model_spec, config_.seed);
}

Trainer::~Trainer() = default;

int Trainer::rank() const { return comm_ ? comm_->rank() : 0; }
int Trainer::world_size() const { return comm_ ? comm_->size() : 1; }

void Trainer::broadcast_state(State& s) {
  Group model_state = model_->state_dict();
  // Under ZeRO-1 each rank already holds its own rows of the optimizer state (taken at restore),
  // which no other rank has: only the model and the position are rank 0's to send.
  Group optimizer_state = s.optimizer->sharded() ? Group() : s.optimizer->state_dict();
  uint64_t shape = structure_fingerprint(model_state) ^ (structure_fingerprint(optimizer_state) * 31);
  if (!comm_->all_equal(shape))
    throw UsageError("distributed training: rank " + std::to_string(comm_->rank()) +
                     "'s model or optimizer state has another structure than another rank's (tensor names, dtypes or "
                     "sizes differ), so rank 0's state cannot be broadcast to it");
  auto send = [&](const std::string&, const Tensor& t) {
    auto d = t.mutable_data<float>();
    comm_->broadcast(std::as_writable_bytes(d));
  };
  model_state.for_each_tensor(send);
  optimizer_state.for_each_tensor(send);
  struct {
    int64_t epoch, position, step, correct;
    double loss_sum;
  } scalars{s.epoch, s.position, s.step, s.correct, s.loss_sum};
  comm_->broadcast(std::as_writable_bytes(std::span(&scalars, 1)));
  s.epoch = scalars.epoch;
  s.position = scalars.position;
  s.step = scalars.step;
  s.correct = scalars.correct;
  s.loss_sum = scalars.loss_sum;
}

Checkpoint Trainer::snapshot(const State& s, bool owned) const {
  Checkpoint c;
  c.producer = "ckpt train";
  c.model_spec = model_->spec();
  c.model_state = model_->state_dict();
  c.optimizer = s.optimizer->state_dict();
  Group& t = c.trainer;
  t.set("epoch", s.epoch).set("position", s.position).set("step", s.step);
  t.set("seed", static_cast<int64_t>(config_.seed)).set("batch_size", config_.batch_size).set("epochs", config_.epochs);
  t.set("threads", static_cast<int64_t>(config_.threads));
  t.set("world_size", static_cast<int64_t>(world_size()));
  t.set("epoch_loss_sum", s.loss_sum).set("epoch_correct", s.correct);
  t.set("rng", "splitmix64(seed, epoch) -> mt19937_64 -> Fisher-Yates");
  t.set("config", config_.source);
  t.add_group("metrics") = s.metrics;
  t.add_group("schedule") = s.schedule->state_dict();
  if (owned) {
    c.model_state = clone_tensors(c.model_state);
    c.optimizer = clone_tensors(c.optimizer);
  }
  return c;
}

int64_t Trainer::restore(const Checkpoint& c, const fs::path& from, State& s, bool own_rows) {
  // oneDNN's kernels split their sums by thread count (the ConvNet trained at 1 and at 2 threads
  // differs in every weight after two epochs), so another count would continue a different run:
  // refused like another seed or batch size rather than resumed inexactly.
  std::string differ;
  auto same = [&](const char* key, double ours) {
    double theirs = attr_num(c.trainer, key);
    if (theirs != ours)
      differ += std::string(differ.empty() ? "" : ", ") + key + " " + std::to_string(static_cast<int64_t>(theirs)) +
                " (the config says " + std::to_string(static_cast<int64_t>(ours)) + ")";
  };
  same("seed", static_cast<double>(config_.seed));
  same("batch_size", static_cast<double>(config_.batch_size));
  same("threads", static_cast<double>(config_.threads));
  if (!differ.empty())
    throw UsageError(from.string() + ": made with " + differ +
                     "; resuming would not continue the same run bit for bit (use the same seed, batch_size and threads, "
                     "or set checkpoint.resume to \"none\" to start over)");
  model_->load_state_dict(c.model_state, true);
  auto params = model_->named_parameters();
  s.optimizer->load_state_dict(c.optimizer, params, own_rows);
  if (const Group* sch = c.trainer.find_group("schedule")) s.schedule->load_state_dict(*sch);
  s.epoch = static_cast<int64_t>(attr_num(c.trainer, "epoch"));
  s.position = static_cast<int64_t>(attr_num(c.trainer, "position"));
  s.step = static_cast<int64_t>(attr_num(c.trainer, "step"));
  s.loss_sum = attr_num(c.trainer, "epoch_loss_sum");
  s.correct = static_cast<int64_t>(attr_num(c.trainer, "epoch_correct"));
  if (const Group* m = c.trainer.find_group("metrics")) s.metrics = *m;
  return c.trainer.attribute("world_size") ? static_cast<int64_t>(attr_num(c.trainer, "world_size")) : 1;
}

std::filesystem::path Trainer::run(const TrainCallbacks& cb) {
  const bool primary = rank() == 0;
  // More than one rank: slices of each batch, summed gradients. A world of one (mpirun -np 1)
  // trains exactly as a plain run.
  const bool parallel = world_size() > 1;
  const int64_t world = world_size(), me = rank();
  auto say = [&](const std::string& m) {
    if (primary && cb.on_message) cb.on_message(m);
  };
  Dataset train = load_fashion_mnist(config_.data_dir, "train", static_cast<size_t>(config_.train_limit));
  // Only rank 0 evaluates and reports.
  Dataset test = primary ? load_fashion_mnist(config_.data_dir, "test", static_cast<size_t>(config_.test_limit)) : Dataset{};
  // Only rank 0 writes checkpoints: the state is replicated, so one copy is the whole of it.
  std::optional<CheckpointManager> manager;
  if (primary) {
    manager.emplace(config_.checkpoint, registry_);
    if (size_t n = manager->remove_temporaries()) say("removed " + std::to_string(n) + " temporary file(s) left by an interrupted save");
  }

  State s;
  s.optimizer = Optimizer::make(config_.optimizer);
  s.schedule = Schedule::make(config_.schedule, s.optimizer->lr());
  // ZeRO-1: this rank keeps and updates the optimizer state of its rows of each parameter only.
  const bool zero = config_.zero == 1 && parallel;
  if (zero) s.optimizer->shard(static_cast<int>(me), static_cast<int>(world));
  auto params = model_->named_parameters();

  std::optional<fs::path> from;
  const std::string& resume = config_.checkpoint.resume;
  if (resume == "auto") {
    if (primary) from = manager->latest_good(say);
  } else if (resume != "none") {
    from = resume;
  }
  if (comm_) {
    // Rank 0 chose the checkpoint; the others read the same file.
    std::string chosen = from ? from->string() : std::string();
    comm_->broadcast(chosen);
    from = chosen.empty() ? std::nullopt : std::optional<fs::path>(chosen);
  }
  if (from) {
    LoadOptions lo;
    lo.verify = true;
    // Under ZeRO-1 a sharded folder gives each rank its rows of the optimizer state alone; a
    // single file is read whole and each rank keeps its rows (load_state_dict takes them).
    const bool own_rows = zero && sharded::is_sharded(*from);
    int64_t made_with = restore(own_rows ? load_own_rows(*from, lo, params, static_cast<int>(me), static_cast<int>(world))
                                         : ckpt::load(*from, lo),
                                *from, s, own_rows);
    say("resumed from " + from->string() + " (epoch " + std::to_string(s.epoch + 1) + ", sample " +
        std::to_string(s.position) + ", step " + std::to_string(s.step) + ")");
    if (made_with != world)
      say("the checkpoint was made by " + std::to_string(made_with) + " rank(s), this run has " + std::to_string(world) +
          ": the same batches follow, but each is split into other slices, so gradient sums round differently from a "
          "continuation at " + std::to_string(made_with));
  }
  if (parallel) broadcast_state(s);

  const int64_t n = static_cast<int64_t>(train.size()), bs = config_.batch_size;
  Tensor x, grad, targets;
  std::vector<uint8_t> y;
  fs::path last_saved = from ? *from : fs::path();
  // Under ZeRO-1 rank 0 gathers every rank's rows of the optimizer state (MPI_Gatherv, one
  // tensor at a time) to write one file: the whole state is on rank 0 while it saves. Every rank
  // calls this; the others return their part and nothing else.
  auto gathered_optimizer = [&] {
    Group local = s.optimizer->state_dict();
    Group whole = local;
    for (const StateRows& r : state_rows(local, params)) {
      const Tensor* t = local.find_group("state")->find_group(r.param)->find_tensor(r.buffer);
      Tensor full = primary ? Tensor::empty(DType::f32, r.whole) : Tensor();
      comm_->gatherv(t->data<float>(), primary ? full.mutable_data<float>() : std::span<float>(),
                     counts_of(r, static_cast<int>(world)));
      if (primary) whole.group("state").group(r.param).set_tensor(r.buffer, std::move(full));
    }
    return whole;
  };
  auto save = [&](bool owned) {
    std::optional<Group> optimizer;
    if (zero) optimizer = gathered_optimizer();
    if (!primary) return;
    Checkpoint c = snapshot(s, owned && !zero);
    if (optimizer) {
      // Gathered into tensors of their own: owned already.
      c.optimizer = std::move(*optimizer);
      if (owned) c.model_state = clone_tensors(c.model_state);
    }
    manager->save(std::move(c), s.step);
    last_saved = manager->path_for(s.step);
  };
  // A sharded save (docs/sharded.md), called by every rank at the same step: each offers every
  // tensor whole and replicated, the planner spreads them over the ranks by bytes, each writes
  // its planned tensors from its own copy, and rank 0 commits the folder.
  auto save_sharded = [&] {
    Checkpoint c = snapshot(s, false);
    Document doc = c.to_document();
    // Under ZeRO-1 each rank offers its rows of the optimizer state as boxes of its own (not
    // replicated), so each shard holds its rank's rows; the document lists those tensors whole,
    // without bytes, as every rank's skeleton.
    std::map<std::string, Tensor> own;
    std::vector<StateRows> rows;
    if (zero) rows = state_rows(c.optimizer, params);
    for (const StateRows& r : rows) {
      Tensor& t = *const_cast<Tensor*>(doc.find_tensor_path(r.path));
      own.emplace(r.path, t);
      t = Tensor(DType::f32, r.whole, nullptr);
    }
    // Only rank 0's groups and attributes go into the folder: the whole tensors' hashes there
    // let a load at any world size verify what it assembled, as it does a single file. Those
    // of ZeRO-1 state are hashed along the ranks (chained_hashes): the same record as without.
    if (zero) {
      const std::vector<uint64_t> chained = chained_hashes(*comm_, rows, own);
      if (primary) {
        std::map<std::string, uint64_t> by_path;
        for (size_t i = 0; i < rows.size(); ++i) by_path.emplace(rows[i].path, chained[i]);
        std::vector<std::pair<std::string, std::string>> hashes;
        doc.for_each_tensor([&](const std::string& path, const Tensor& t) {
          auto it = by_path.find(path);
          hashes.emplace_back(path, hash_hex(it != by_path.end() ? it->second : hash_bytes(t.bytes())));
        });
        write_integrity(doc, hashes);
      }
    } else if (primary) {
      add_integrity(doc);
    }
    std::vector<sharded::Item> items;
    doc.for_each_tensor([&](const std::string& path, const Tensor& t) {
      sharded::Item item;
      item.path = path;
      item.dtype = t.dtype();
      item.shape = t.shape();
      item.box.offsets.assign(t.shape().size(), 0);
      item.box.sizes = t.shape();
      item.replicated = true;
      if (own.count(path)) {
        const auto [lo, hi] = s.optimizer->my_rows(t.shape());
        if (hi == lo) return;  // no rows here (fewer rows than ranks)
        if (!t.shape().empty()) {
          item.box.offsets[0] = lo;
          item.box.sizes[0] = hi - lo;
        }
        item.replicated = false;
      }
      items.push_back(std::move(item));
    });
    const std::string mine = sharded::items_text(items);
    const std::vector<std::string> offered = comm_ ? comm_->allgather(mine) : std::vector<std::string>{mine};
    std::vector<std::vector<sharded::Item>> per_rank;
    for (size_t r = 0; r < offered.size(); ++r)
      per_rank.push_back(sharded::parse_items(offered[r], "rank " + std::to_string(r) + "'s checkpoint items"));
    const auto plan = sharded::plan_save(per_rank);
    std::string target = primary ? manager->path_for(s.step).string() : std::string();
    if (comm_) comm_->broadcast(target);
    sharded::SaveSpec spec;
    spec.target = target;
    spec.format = config_.checkpoint.backend;
    spec.world = static_cast<size_t>(world);
    spec.format_options = config_.checkpoint.options;
    spec.registry = &registry_;
    // Rank 0 clears a staging folder a killed save left and makes a fresh one before any rank
    // writes into it.
    std::optional<sharded::Stage> stage;
    if (primary) stage.emplace(spec);
    if (comm_) comm_->barrier();
    const sharded::ShardRecord record =
        sharded::write_shard(spec, static_cast<size_t>(me), doc, items, plan.at(static_cast<size_t>(me)),
                             [&](const sharded::Item& item) {
                               auto it = own.find(item.path);
                               return it != own.end() ? it->second.bytes() : doc.find_tensor_path(item.path)->bytes();
                             });
    // Gathering the records is the barrier after the writes: rank 0 has every one only once
    // every rank has written.
    const std::string sent = sharded::record_text(record);
    const std::vector<std::string> records = comm_ ? comm_->allgather(sent) : std::vector<std::string>{sent};
    if (!primary) return;
    std::vector<sharded::ShardRecord> parsed;
    for (size_t r = 0; r < records.size(); ++r)
      parsed.push_back(sharded::parse_record(records[r], "rank " + std::to_string(r) + "'s shard record"));
    stage->commit(doc, parsed);
    manager->saved(c, s.step);
    last_saved = target;
  };
  const bool sharded_saves = config_.checkpoint.sharded;
  std::vector<GradBucket> buckets = parallel ? make_buckets(params) : std::vector<GradBucket>{};
  // A rank's share of the epoch's loss and accuracy sums, added to the global ones before each
  // save and at the epoch's end, not at every step.
  double pending[2] = {0, 0};
  auto gather_sums = [&] {
    if (!parallel) return;
    comm_->allreduce_sum(std::span<double>(pending));
    s.loss_sum += pending[0];
    s.correct += static_cast<int64_t>(pending[1]);
    pending[0] = pending[1] = 0;
  };

  while (s.epoch < config_.epochs) {
    model_->train();
    auto order = epoch_order(config_.seed, s.epoch, static_cast<size_t>(n));
    const double lr = s.schedule->lr();
    auto t0 = std::chrono::steady_clock::now();
    int64_t trained = 0;
    while (s.position < n) {
      const int64_t end = std::min(n, s.position + bs), count = end - s.position;
      // This rank's contiguous slice of the global batch; slices differ by at most one sample.
      int64_t lo = s.position, len = count;
      if (parallel) {
        const int64_t base = count / world, extra = count % world;
        lo = s.position + me * base + std::min(me, extra);
        len = base + (me < extra ? 1 : 0);
      }
      LossResult r;
      if (len > 0) {
        gather_batch(train, order, static_cast<size_t>(lo), static_cast<size_t>(lo + len), x, y);
        const Tensor& out = model_->forward(x.reshape(batch_shape(*model_, len)));
        r = compute_loss(config_.loss, out, y, grad, targets);
        if (len != count) {
          // The loss is a mean over the slice; scaled by len / count, the ranks' gradients sum
          // to the gradient of the mean over the whole batch.
          const float scale = static_cast<float>(static_cast<double>(len) / static_cast<double>(count));
          for (float& g : grad.mutable_data<float>()) g *= scale;
        }
        model_->backward(grad);
      } else {
        for (const auto& [name, p] : params) std::fill_n(p->grad.mutable_data<float>().data(), p->grad.numel(), 0.0f);
      }
      if (parallel) {
        allreduce_gradients(*comm_, buckets);
        pending[0] += r.loss * static_cast<double>(len);
        pending[1] += static_cast<double>(r.correct);
      } else {
        s.loss_sum += r.loss * static_cast<double>(len);
        s.correct += r.correct;
      }
      s.optimizer->step(params, lr);
      if (zero) allgather_parameters(*comm_, buckets);
      trained += count;
      s.position = end;
      ++s.step;
      if (primary && cb.on_batch) cb.on_batch(s.position, n);
      if (config_.checkpoint.every_n_steps && s.step % config_.checkpoint.every_n_steps == 0 && s.position < n) {
        gather_sums();
        if (sharded_saves) save_sharded();
        else if (primary || zero) save(config_.checkpoint.background);
      }
    }
    gather_sums();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (parallel && !comm_->all_equal(fingerprint(model_->state_dict())))
      throw IoError("distributed training: rank " + std::to_string(me) + "'s parameters differ from another rank's after epoch " +
                    std::to_string(s.epoch + 1) + "; the gradient reduction did not give every rank the same bits");
    EpochReport rep;
    rep.epoch = s.epoch + 1;
    rep.epochs = config_.epochs;
    rep.lr = lr;
    rep.train_loss = s.loss_sum / static_cast<double>(n);
    rep.train_accuracy = static_cast<double>(s.correct) / static_cast<double>(n);
    if (primary) {
      Evaluation ev = evaluate(*model_, test, 256, config_.loss);
      rep.test_loss = ev.loss;
      rep.test_accuracy = ev.accuracy;
    }
    rep.samples_per_second = secs > 0 ? static_cast<double>(trained) / secs : 0;
    s.metrics = Group();
    s.metrics.set("epoch", rep.epoch).set("train_loss", rep.train_loss).set("train_accuracy", rep.train_accuracy);
    s.metrics.set("test_loss", rep.test_loss).set("test_accuracy", rep.test_accuracy);
    s.epoch++;
    s.position = 0;
    s.loss_sum = 0;
    s.correct = 0;
    s.schedule->step();
    bool last = s.epoch == config_.epochs;
    bool scheduled = (config_.checkpoint.every_n_epochs && s.epoch % config_.checkpoint.every_n_epochs == 0) ||
                     (config_.checkpoint.every_n_steps && s.step % config_.checkpoint.every_n_steps == 0);
    if (scheduled || last) {
      if (sharded_saves) save_sharded();
      else if (primary || zero) save(config_.checkpoint.background && !last);
      if (primary) rep.saved = last_saved.filename().string();
    }
    if (primary && cb.on_epoch) cb.on_epoch(rep);
  }
  if (primary) {
    manager->wait();
    if (auto best = manager->best()) say("best checkpoint: " + best->string());
    if (last_saved.empty()) {
      // Resumed a run that had already finished: its newest checkpoint is the result.
      auto all = manager->list();
      if (!all.empty()) last_saved = all.back().path;
    }
  }
  if (comm_) {
    std::string final_path = last_saved.string();
    comm_->broadcast(final_path);
    last_saved = final_path;
  }
  return last_saved;
}

}  // namespace ckpt::train
