// Hugging Face Llama-style state dict names -> llama.cpp's GGUF tensor names (the table in
// docs/formats/gguf.md), and the row order llama.cpp's rotary embedding wants in attn_q and
// attn_k, which differs from Hugging Face's.
#pragma once

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

namespace ckpt_gguf {

inline std::optional<std::string> llama_name(std::string_view n) {
  auto suffix = [](std::string_view s, std::string_view& stem) {
    for (std::string_view x : {std::string_view(".weight"), std::string_view(".bias")})
      if (s.size() > x.size() && s.substr(s.size() - x.size()) == x) {
        stem = s.substr(0, s.size() - x.size());
        return x;
      }
    return std::string_view();
  };
  std::string_view stem;
  const std::string_view kind = suffix(n, stem);
  if (kind.empty()) return std::nullopt;
  if (stem == "model.embed_tokens") return "token_embd" + std::string(kind);
  if (stem == "model.norm") return "output_norm" + std::string(kind);
  if (stem == "lm_head") return "output" + std::string(kind);
  constexpr std::string_view layers = "model.layers.";
  if (stem.substr(0, layers.size()) != layers) return std::nullopt;
  stem.remove_prefix(layers.size());
  unsigned long layer = 0;
  auto r = std::from_chars(stem.data(), stem.data() + stem.size(), layer);
  if (r.ec != std::errc() || r.ptr == stem.data() || *r.ptr != '.' || (stem[0] == '0' && r.ptr - stem.data() > 1))
    return std::nullopt;
  const std::string_view part = stem.substr(static_cast<size_t>(r.ptr - stem.data()) + 1);
  static constexpr std::pair<std::string_view, std::string_view> table[] = {
      {"input_layernorm", "attn_norm"},       {"self_attn.q_proj", "attn_q"},   {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},         {"self_attn.o_proj", "attn_output"},
      {"post_attention_layernorm", "ffn_norm"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}};
  for (const auto& [hf, gg] : table)
    if (part == hf) return "blk." + std::to_string(layer) + "." + std::string(gg) + std::string(kind);
  return std::nullopt;
}

// llama.cpp's rotary layout (convert_hf_to_gguf.py's permute: reshape(heads, 2, rows / heads / 2,
// ...).swapaxes(1, 2)): within each head of `head_rows` rows, Hugging Face's row i * half + j is
// GGUF's row 2 * j + i. The row of the other order each row is taken from, both ways:
inline uint64_t hf_row_of_gguf_row(uint64_t g, uint64_t head_rows) {
  const uint64_t base = g - g % head_rows, in = g % head_rows;
  return base + (in % 2) * (head_rows / 2) + in / 2;
}
inline uint64_t gguf_row_of_hf_row(uint64_t r, uint64_t head_rows) {
  const uint64_t base = r - r % head_rows, in = r % head_rows, half = head_rows / 2;
  return base + 2 * (in % half) + in / half;
}

// 'q' or 'k' for a GGUF tensor llama.cpp wants in its rotary row order (blk.N.attn_q.weight,
// blk.N.attn_k.bias, ...), else 0.
inline char rotary_kind(std::string_view g) {
  if (g.substr(0, 4) != "blk.") return 0;
  const size_t dot = g.find('.', 4);
  if (dot == std::string_view::npos || dot == 4 || g.find_first_not_of("0123456789", 4) != dot) return 0;
  const std::string_view rest = g.substr(dot + 1);
  for (const char* k : {"attn_q", "attn_k"})
    for (const char* kind : {".weight", ".bias"})
      if (rest == std::string(k) + kind) return k[5];
  return 0;
}

// What llama.cpp needs of a llama model and a state dict cannot tell (writer options).
struct LlamaOptions {
  std::optional<uint64_t> head_count, head_count_kv, context_length;
  std::optional<double> rms_epsilon;
};

// Whether a document's tensor names are a Hugging Face Llama-style state dict's.
inline bool looks_like_llama(bool has_embed_tokens, bool has_first_q_proj) { return has_embed_tokens && has_first_q_proj; }

}  // namespace ckpt_gguf
