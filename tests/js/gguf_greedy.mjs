// Loads a GGUF file with llama.cpp (node-llama-cpp, CPU) and evaluates a fixed token sequence:
// for every prompt position prints the TOP most likely next tokens with their log-probabilities,
// then continues greedily for N tokens (argmax over the full distribution, one token at a time).
// usage: node tests/js/gguf_greedy.mjs MODEL.gguf 1,450,4996,... [N [TOP]]
// stdout, one JSON line: {"positions": [{"top": [[id, logprob], ...]}, ...], "greedy": [ids],
//                         "greedy_logprob": [...], "bos", "eos", "text"}
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, tokenList, nArg, topArg] = process.argv.slice(2);
if (!modelPath || !tokenList) {
  console.error("usage: gguf_greedy.mjs MODEL.gguf TOKEN,TOKEN,... [N [TOP]]");
  process.exit(2);
}
const tokens = tokenList.split(",").map(Number);
const nGreedy = Number(nArg ?? 0);
const nTop = Number(topArg ?? 40);
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
// f32 KV cache and no flash attention (its CPU kernel rounds to f16), as in gguf_eval.mjs.
const contextSize = Math.max(64, 32 * Math.ceil((tokens.length + nGreedy + 1) / 32));
const context = await model.createContext({contextSize, batchSize: contextSize, threads: 2,
                                           flashAttention: false,
                                           experimentalKvCacheKeyType: "F32",
                                           experimentalKvCacheValueType: "F32"});
const sequence = context.getSequence();

// Sorted [id, logprob] pairs; ties broken by the lower id, as torch.argmax / our runtime do.
function ranked(probs) {
  return [...probs.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([t, p]) => [t, Math.log(p)]);
}

const outputs = await sequence.controlledEvaluate(
    tokens.map((t) => [t, {generateNext: {probabilities: true}}]));
const positions = [];
let last = null;
for (let i = 0; i < tokens.length; i++) {
  const probs = outputs[i]?.next?.probabilities;
  if (!probs) throw new Error(`no probabilities for position ${i}`);
  last = ranked(probs);
  positions.push({top: last.slice(0, nTop)});
}
const greedy = [];
const greedyLogprob = [];
for (let i = 0; i < nGreedy; i++) {
  const [tok, lp] = last[0];
  greedy.push(tok);
  greedyLogprob.push(lp);
  if (i + 1 === nGreedy) break;
  const out = await sequence.controlledEvaluate([[tok, {generateNext: {probabilities: true}}]]);
  const probs = out[0]?.next?.probabilities;
  if (!probs) throw new Error(`no probabilities for greedy step ${i}`);
  last = ranked(probs);
}
console.log(JSON.stringify({positions, greedy, greedy_logprob: greedyLogprob, bos: model.tokens.bos ?? null,
                            eos: model.tokens.eos ?? null, text: model.detokenize(tokens)}));
await context.dispose();
await model.dispose();
await llama.dispose();
