// Hugging Face Llama-style state dict names -> llama.cpp's GGUF tensor names (the table in
// docs/formats/gguf.md). Only names; the writer changes no bytes (llama.cpp's converter also
// permutes attn_q/attn_k rows for its rotary layout, which ckpt does not do).
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

// Whether a document's tensor names are a Hugging Face Llama-style state dict's.
inline bool looks_like_llama(bool has_embed_tokens, bool has_first_q_proj) { return has_embed_tokens && has_first_q_proj; }

}  // namespace ckpt_gguf
