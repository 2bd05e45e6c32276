// The baseline bench_serve measures ckpt serve against: ONNX Runtime (npm onnxruntime-node)
// serving an .onnx file behind Node's own http module, answering the same request ckpt serve
// answers, so one client drives both:
//
//   POST /v1/models/NAME:predict  {"instances": [x, ...]}  ->  {"predictions": [y, ...]}
//
//   node ort_server.mjs MODEL.onnx NAME [--threads N]
//
// Listens on 127.0.0.1, on a port the kernel picks, and prints {"port": P} as its first line on
// stdout. It exits when its stdin closes, so a benchmark that dies cannot leave it running.
// onnxruntime-node comes from scripts/setup.sh's install in tests/formats/onnx/node (or NODE_PATH).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const installed = path.join(here, '..', '..', 'tests', 'formats', 'onnx', 'node', 'node_modules', 'onnxruntime-node');
const require = createRequire(import.meta.url);

function fail(message) {
  process.stderr.write(`ort_server: ${message}\n`);
  process.exit(2);
}

let ort;
try {
  ort = require(fs.existsSync(installed) ? installed : 'onnxruntime-node');
} catch (e) {
  fail(`onnxruntime-node is not installed (looked in ${installed} and NODE_PATH): run scripts/setup.sh (${e.message})`);
}

const args = process.argv.slice(2);
if (args.length !== 2 && !(args.length === 4 && args[2] === '--threads'))
  fail('usage: node ort_server.mjs MODEL.onnx NAME [--threads N]');
const [modelFile, modelName] = args;
const threads = args.length === 4 ? Number(args[3]) : 1;
if (!Number.isInteger(threads) || threads < 1 || threads > 64) fail(`--threads must be 1..64, got ${args[3]}`);

// Bounds like ckpt serve's: a request body and a batch no larger than these.
const MAX_BODY = 64 << 20;
const MAX_ROWS = 4096;
const MAX_RANK = 8;  // flatten recurses once per level

// Warnings (such as the unused initializers holding ckpt's training state) stay off stdout.
ort.env.logLevel = 'error';
let session;
try {
  // One compute thread, as ckpt serve's default (ServeOptions::threads = 1). session.run runs
  // the model on this event-loop thread (onnxruntime-node calls it synchronously from
  // setImmediate), so HTTP, JSON and the model all share one thread.
  session = await ort.InferenceSession.create(modelFile, {executionProviders: ['cpu'], intraOpNumThreads: threads,
                                                          interOpNumThreads: 1, logSeverityLevel: 3});
} catch (e) {
  fail(`${modelFile}: ${e.message}`);
}
const inputName = session.inputNames[0];
const outputName = session.outputNames[0];

class BadRequest extends Error {}

// The shape of one nested array of numbers (checked to be rectangular as it is flattened).
function shapeOf(x) {
  const shape = [];
  while (Array.isArray(x)) {
    shape.push(x.length);
    x = x[0];
  }
  return shape;
}

function flatten(x, shape, depth, out, where) {
  if (depth === shape.length) {
    if (typeof x !== 'number') throw new BadRequest(`${where}: expected a number, got ${JSON.stringify(x)?.slice(0, 40)}`);
    out.push(x);
    return;
  }
  if (!Array.isArray(x) || x.length !== shape[depth])
    throw new BadRequest(`${where}: expected an array of ${shape[depth]}, as the first instance`);
  for (let i = 0; i < x.length; ++i) flatten(x[i], shape, depth + 1, out, `${where}[${i}]`);
}

function nest(data, dims, depth, offset) {
  if (depth === dims.length) return data[offset];
  const stride = dims.slice(depth + 1).reduce((a, b) => a * b, 1);
  const out = new Array(dims[depth]);
  for (let i = 0; i < dims[depth]; ++i) out[i] = nest(data, dims, depth + 1, offset + i * stride);
  return out;
}

async function predict(body) {
  let request;
  try {
    request = JSON.parse(body);
  } catch (e) {
    throw new BadRequest(`the body is not JSON: ${e.message}`);
  }
  const instances = request?.instances;
  if (!Array.isArray(instances) || instances.length === 0) throw new BadRequest('"instances" must be a non-empty array');
  if (instances.length > MAX_ROWS) throw new BadRequest(`"instances" holds ${instances.length} rows; at most ${MAX_ROWS}`);
  const sample = shapeOf(instances[0]);
  if (sample.length > MAX_RANK) throw new BadRequest(`instances[0] nests ${sample.length} arrays deep; at most ${MAX_RANK}`);
  const values = [];
  instances.forEach((row, i) => flatten(row, sample, 0, values, `instances[${i}]`));
  const input = new ort.Tensor('float32', Float32Array.from(values), [instances.length, ...sample]);
  let out;
  try {
    out = await session.run({[inputName]: input});
  } catch (e) {
    throw new BadRequest(e.message);  // a shape the model does not take
  }
  const result = out[outputName];
  const dims = result.dims;
  const row = dims.slice(1).reduce((a, b) => a * b, 1);
  return JSON.stringify({predictions: Array.from({length: dims[0]}, (_, i) => nest(result.data, dims, 1, i * row))});
}

function answer(res, status, text) {
  res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text)});
  res.end(text);
}

const route = `/v1/models/${modelName}:predict`;
const server = http.createServer((req, res) => {
  if (req.url !== route) return answer(res, 404, JSON.stringify({error: `no route ${req.url}; serving ${route}`}));
  if (req.method !== 'POST') return answer(res, 405, JSON.stringify({error: 'predict takes POST'}));
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) tooLarge = true;
    else chunks.push(chunk);
  });
  req.on('end', () => {
    if (tooLarge) return answer(res, 413, JSON.stringify({error: `the body exceeds ${MAX_BODY} bytes`}));
    predict(Buffer.concat(chunks).toString('utf8')).then(
        (text) => answer(res, 200, text),
        (e) => answer(res, e instanceof BadRequest ? 400 : 500, JSON.stringify({error: e.message})));
  });
});
// Clients hold one keep-alive connection for a whole measurement.
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({port: server.address().port}) + '\n');
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
