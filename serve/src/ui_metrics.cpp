// The metrics of every checkpoint of a training folder, for the page's plot: the numbers the
// trainer records in each checkpoint's trainer group and trainer/metrics (epoch, losses,
// accuracies), read from the listing alone, without any tensor data.
#include "ui_views.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/io.hpp>

namespace ckpt::serve::ui {

namespace {

void numbers_of(const Group& g, json& into) {
  for (const auto& a : g.attributes()) {
    if (auto* i = std::get_if<int64_t>(&a.value)) into[a.name] = *i;
    else if (auto* d = std::get_if<double>(&a.value)) into[a.name] = number(*d);
  }
}

}  // namespace

json metrics_json(const Resolved& what) {
  if (!what.training_folder)
    throw HttpError(404, "'" + what.served.model + "' is not served from a training folder, so it has no metrics");
  json points = json::array(), errors = json::array();
  for (const auto& f : training_files(what.served.source)) {
    try {
      const OpenedCheckpoint opened = OpenedCheckpoint::from_folder(what.served.source, f.name);
      const Document& doc = opened.tree();
      json m = json::object();
      // trainer's own numbers (epoch in progress, step) first, so the finished epoch's metrics
      // (trainer/metrics) win where both name the same thing.
      if (const Group* t = doc.find_group("trainer")) {
        json trainer = json::object();
        numbers_of(*t, trainer);
        for (const char* k : {"epoch", "step", "loss"})
          if (trainer.contains(k)) m[k] = trainer[k];
        if (const Group* g = t->find_group("metrics")) numbers_of(*g, m);
      }
      points.push_back({{"file", f.name}, {"step", f.step}, {"metrics", std::move(m)}});
    } catch (const std::runtime_error& e) {  // ckpt's errors, and HttpError (a link, a file gone)
      // A damaged or half-removed checkpoint costs its point, not the plot.
      errors.push_back({{"file", f.name}, {"error", e.what()}});
    }
  }
  return {{"name", what.served.model}, {"folder", what.served.source}, {"points", std::move(points)},
          {"errors", std::move(errors)}};
}

}  // namespace ckpt::serve::ui
