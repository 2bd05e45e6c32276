// Runs an ONNX model with ONNX Runtime (npm onnxruntime-node, installed in ./node) on a batch of
// float32 inputs and prints its first output as JSON: {"version", "dims", "data"}.
//
//   node ort_run.js MODEL.onnx INPUT.f32 D0 D1 ...
//
// D0 D1 ... is the input's shape; INPUT.f32 holds its elements, little-endian, in C order.
'use strict';
const fs = require('fs');
const path = require('path');

const modules = path.join(__dirname, 'node', 'node_modules');
if (!fs.existsSync(path.join(modules, 'onnxruntime-node'))) {
  console.error(`onnxruntime-node is not installed in ${modules}; run ` +
                `"npm install --ignore-scripts" in ${path.join(__dirname, 'node')}`);
  process.exit(2);
}
const ort = require(path.join(modules, 'onnxruntime-node'));

async function main() {
  const [model, input, ...dims] = process.argv.slice(2);
  const shape = dims.map(Number);
  const bytes = fs.readFileSync(input);
  // A copy, so the floats start at an aligned offset whatever the Buffer's.
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const elements = shape.reduce((a, b) => a * b, 1);
  if (data.length !== elements) throw new Error(`${input} holds ${data.length} floats, shape ${shape} needs ${elements}`);
  // Warnings (such as the unused initializers that hold ckpt's training state) stay off stdout.
  ort.env.logLevel = 'error';
  const session = await ort.InferenceSession.create(model, {executionProviders: ['cpu'], intraOpNumThreads: 1,
                                                            logSeverityLevel: 3});
  const out = await session.run({[session.inputNames[0]]: new ort.Tensor('float32', data, shape)});
  const result = out[session.outputNames[0]];
  console.log(JSON.stringify({version: ort.env.versions.common, dims: result.dims, data: Array.from(result.data)}));
}

main().catch((e) => {
  console.error(e && e.message ? e.message : String(e));
  process.exit(1);
});
