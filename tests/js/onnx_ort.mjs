// Runs an exported decoder in onnxruntime (npm onnxruntime-node, CPU) the three ways a client
// drives it, and prints every logit:
//   full         the whole prompt in one call, empty past
//   incremental  the prompt in two chunks, then one token per call, present.* fed back as past
//   batch        the prompt and a shorter second prompt left-padded (pad id 0, mask 0, positions
//                as Transformers.js makes them: cumsum(mask) - 1, padded ones 1), then one more
//                step feeding token STEP to both rows; only the rows' real positions are printed
// as one JSON line {MODEL: {full, incremental, batch, inputs, outputs}} over the models given.
// usage: node tests/js/onnx_ort.mjs IDS IDS2 STEP MODEL.onnx...     (IDS = 1,2,3)
import * as ort from "onnxruntime-node";

const [idsArg, ids2Arg, stepArg, ...models] = process.argv.slice(2);
if (!idsArg || !ids2Arg || !stepArg || models.length === 0) {
  console.error("usage: onnx_ort.mjs IDS IDS2 STEP MODEL.onnx...");
  process.exit(2);
}
const ids = idsArg.split(",").map(Number);
const ids2 = ids2Arg.split(",").map(Number);
const step = Number(stepArg);
let session, pastMeta, vocab;

const i64 = (rows, dims) => new ort.Tensor("int64", BigInt64Array.from(rows.flat().map(BigInt)), dims);
function emptyPast(batch) {
  const past = {};
  for (const m of pastMeta) {
    const [, kv, , hd] = m.shape;  // concrete kv heads and head dim, symbolic batch and past
    if (typeof kv !== "number" || typeof hd !== "number") throw new Error(`${m.name}: kv/head dims not concrete`);
    past[m.name] = new ort.Tensor("float32", new Float32Array(0), [batch, kv, 0, hd]);
  }
  return past;
}
// One call: rows of ids (same length), full attention mask rows, position rows, past.
async function run(idRows, maskRows, posRows, past) {
  const S = idRows[0].length, B = idRows.length;
  const feeds = {input_ids: i64(idRows, [B, S]), attention_mask: i64(maskRows, [B, maskRows[0].length]),
                 position_ids: i64(posRows, [B, S]), ...past};
  const out = await session.run(feeds);
  const next = {};
  for (const m of pastMeta) next[m.name] = out[m.name.replace("past_key_values", "present")];
  const logits = out.logits.data;
  const rows = [];
  for (let b = 0; b < B; b++) {
    const r = [];
    for (let s = 0; s < S; s++) r.push(Array.from(logits.subarray((b * S + s) * vocab, (b * S + s + 1) * vocab)));
    rows.push(r);
  }
  return {rows, past: next};
}
const range = (a, b) => Array.from({length: b - a}, (_, i) => a + i);

async function drive(modelPath) {
  session = await ort.InferenceSession.create(modelPath, {intraOpNumThreads: 1, interOpNumThreads: 1});
  pastMeta = session.inputMetadata.filter((m) => m.name.startsWith("past_key_values."));
  vocab = session.outputMetadata.find((m) => m.name === "logits").shape[2];
  const full = (await run([ids], [ids.map(() => 1)], [range(0, ids.length)], emptyPast(1))).rows[0];

  const n = ids.length, c1 = Math.max(1, Math.floor(n / 3)), c2 = Math.max(c1 + 1, Math.floor((2 * n) / 3));
  const incremental = [];
  let past = emptyPast(1);
  for (const [a, b] of [[0, c1], [c1, c2], ...range(c2, n).map((i) => [i, i + 1])]) {
    const r = await run([ids.slice(a, b)], [range(0, b).map(() => 1)], [range(a, b)], past);
    incremental.push(...r.rows[0]);
    past = r.past;
  }

  const L = Math.max(ids.length, ids2.length);
  const padRow = (x) => [...Array(L - x.length).fill(0), ...x];
  const maskRow = (x) => [...Array(L - x.length).fill(0), ...x.map(() => 1)];
  const posRow = (m) => {
    let c = 0;
    return m.map((v) => (v ? c++ : 1));
  };
  const masks = [maskRow(ids), maskRow(ids2)];
  const first = await run([padRow(ids), padRow(ids2)], masks, masks.map(posRow), emptyPast(2));
  const masks2 = masks.map((m) => [...m, 1]);
  const second = await run([[step], [step]], masks2, [[ids.length], [ids2.length]], first.past);
  const batch = [ids, ids2].map((x, b) => [...first.rows[b].slice(L - x.length), ...second.rows[b]]);
  return {full, incremental, batch, inputs: session.inputNames, outputs: session.outputNames};
}

const results = {};
for (const m of models) results[m] = await drive(m);
console.log(JSON.stringify(results));
