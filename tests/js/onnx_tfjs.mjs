// Loads exported directories with Transformers.js (npm @huggingface/transformers, Node, no
// network) and prints one JSON line {"DIR:DTYPE": {logits, generated, model_type, tokens?}}: the
// forward logits of IDS, the greedy continuation of IDS by generate() (NEW tokens), and, for a
// directory with tokenizer files and TEXTS_JSON given, AutoTokenizer's ids for each text (with
// the special tokens the tokenizer adds).
// A spec "ABS_DIR:tokenizer" loads only the tokenizer (a reference tokenizer.json).
// usage: node tests/js/onnx_tfjs.mjs IDS NEW TEXTS_JSON|- ABS_DIR:fp32|fp16|tokenizer ...
import fs from "node:fs";
import path from "node:path";

import {AutoModelForCausalLM, AutoTokenizer, Tensor, env} from "@huggingface/transformers";

const [idsArg, newArg, textsFile, ...dirs] = process.argv.slice(2);
if (!idsArg || !newArg || !textsFile || dirs.length === 0) {
  console.error("usage: onnx_tfjs.mjs IDS NEW TEXTS_JSON|- ABS_DIR:fp32|fp16 ...");
  process.exit(2);
}
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = "/";
env.useBrowserCache = false;
env.useFSCache = false;

const ids = idsArg.split(",").map(Number);
const results = {};
for (const spec of dirs) {
  const cut = spec.lastIndexOf(":");
  const dir = spec.slice(0, cut), dtype = spec.slice(cut + 1);
  const texts = textsFile === "-" ? [] : JSON.parse(fs.readFileSync(textsFile, "utf8"));
  if (dtype === "tokenizer") {
    const tok = await AutoTokenizer.from_pretrained(dir, {local_files_only: true});
    results[spec] = {tokens: texts.map((t) => tok.encode(t))};
    continue;
  }
  const model = await AutoModelForCausalLM.from_pretrained(dir, {dtype, local_files_only: true, device: "cpu"});
  const input_ids = new Tensor("int64", BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
  const attention_mask = new Tensor("int64", BigInt64Array.from(ids.map(() => 1n)), [1, ids.length]);
  const out = await model({input_ids, attention_mask});
  const V = out.logits.dims[2];
  const data = out.logits.data;
  const logits = [];
  for (let s = 0; s < ids.length; s++) logits.push(Array.from(data.subarray(s * V, (s + 1) * V), Number));
  const n = Number(newArg);
  const gen = await model.generate({input_ids, attention_mask, max_new_tokens: n, min_new_tokens: n, do_sample: false});
  const result = {logits, generated: Array.from(gen.data, Number).slice(ids.length), model_type: model.config.model_type};
  if (textsFile !== "-" && fs.existsSync(path.join(dir, "tokenizer.json"))) {
    const tok = await AutoTokenizer.from_pretrained(dir, {local_files_only: true});
    result.tokens = texts.map((t) => tok.encode(t));
  }
  results[spec] = result;
  await model.dispose();
}
console.log(JSON.stringify(results));
