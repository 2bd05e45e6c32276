// The JSON the page's API answers with (docs/web-page.md, "The JSON API"): built from what
// core reads (trees, diff, integrity records, signatures), with every name from a file carried
// as JSON data for the page to set as text.
#pragma once

#include "ui_source.hpp"

#include <ckpt/keys.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ckpt::serve::ui {

using nlohmann::json;

// A double as JSON: a number when finite, else "NaN", "Infinity" or "-Infinity" (JSON has none).
json number(double v);

json checkpoints_json(const std::vector<ServedCheckpoint>& served, const std::string& mode);
// The tree (groups, attributes, tensors with dtype, shape and bytes) and the schema's parts,
// with the integrity record's structural check and the signature file's state (unchecked).
json tree_json(const Resolved& what, const OpenedCheckpoint& opened);
json stats_json(const OpenedCheckpoint& opened, const std::string& tensor, int bins);
json diff_json(const Resolved& a, const Resolved& b);
json metrics_json(const Resolved& what);
// Every tensor against its recorded hash, and the signature when a public key was given.
json verify_json(const OpenedCheckpoint& opened, const std::optional<PublicKey>& pubkey);

}  // namespace ckpt::serve::ui
