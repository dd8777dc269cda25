#!/usr/bin/env node
// Zoo reference runner: like ../shared/tflite-reference/run.mjs (same
// TensorFlow Lite wasm build, XNNPACK off), but reads every output through
// the interpreter's live TfLiteTensor (Interpreter._rawView) after Invoke.
// The stock runner reads the JS binding's tensor views, which point at the
// arena TensorFlow Lite planned before Invoke; a model with dynamic tensors
// (e.g. RESHAPE to a computed shape) makes TensorFlow Lite re-plan the arena
// during Invoke, and the stock runner then writes stale bytes (zeros).
//
//   node run.mjs --model M.tflite [--input in0.bin ...] --outdir D
//
// ZOO_TFLITE_REFERENCE names the tflite-reference directory (default
// /tmp/tflite-reference). Other run.mjs flags are accepted and ignored.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ref = process.env.ZOO_TFLITE_REFERENCE || '/tmp/tflite-reference';
const { Interpreter } = await import(pathToFileURL(path.join(ref, 'lib', 'runtime.mjs')).href);

const args = { input: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i], v = argv[i + 1];
  switch (k) {
    case '--model': args.model = v; i++; break;
    case '--input': args.input.push(v); i++; break;
    case '--outdir': args.outdir = v; i++; break;
    case '--xnnpack':
      if (v !== 'off') throw new Error('the zoo reference runs TensorFlow Lite builtin kernels only (--xnnpack off)');
      i++; break;
    case '--threads': case '--repeat': case '--warmup': i++; break;
    default: throw new Error(`unknown argument ${k}`);
  }
}
if (!args.model || !args.outdir) throw new Error('usage: node run.mjs --model M.tflite [--input in.bin ...] --outdir D');

const it = await Interpreter.create(fs.readFileSync(args.model), { xnnpack: false, threads: 1 });
it.inputs.forEach((t, i) => {
  if (i < args.input.length) it.setInput(i, new Uint8Array(fs.readFileSync(args.input[i])));
});
it.invoke();
fs.mkdirSync(args.outdir, { recursive: true });
it.outputs.forEach((t, i) => {
  fs.writeFileSync(path.join(args.outdir, `out${i}.bin`), Uint8Array.from(it._rawView(t.id)));
});
it.delete();
