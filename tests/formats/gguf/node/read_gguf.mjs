// Reads a GGUF file with Hugging Face's parser (@huggingface/gguf) and prints what it found as
// JSON: every key with its type and value, every tensor's name, dims, ggml type and offset.
import { gguf } from "@huggingface/gguf";

const path = process.argv[2];
const { metadata, tensorInfos, tensorDataOffset, typedMetadata } = await gguf(path, {
  allowLocalFile: true,
  typedMetadata: true,
});
const out = { version: metadata.version, tensor_count: Number(metadata.tensor_count), kv_count: Number(metadata.kv_count),
              data_offset: Number(tensorDataOffset), kv: {}, tensors: [] };
for (const [k, v] of Object.entries(typedMetadata)) {
  if (k === "version" || k === "tensor_count" || k === "kv_count") continue;
  out.kv[k] = { type: v.type, subType: v.subType, value: v.value };
}
for (const t of tensorInfos)
  out.tensors.push({ name: t.name, shape: t.shape.map(Number), dtype: t.dtype, offset: Number(t.offset) });
console.log(JSON.stringify(out, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
