// Loads a GGUF file with llama.cpp (node-llama-cpp, CPU build shipped in the npm package) and
// evaluates a fixed token sequence: for every position prints llama.cpp's most likely next token,
// its log-probability and the top 3 candidates, as JSON on stdout.
// usage: node tests/js/gguf_eval.mjs MODEL.gguf 1,450,4996,...
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, tokenList] = process.argv.slice(2);
if (!modelPath || !tokenList) {
  console.error("usage: gguf_eval.mjs MODEL.gguf TOKEN,TOKEN,...");
  process.exit(2);
}
const tokens = tokenList.split(",").map(Number);
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
// An f32 KV cache (llama.cpp defaults to f16) and no flash attention (its CPU kernel rounds to
// f16): f32 weights can then be compared tightly.
const context = await model.createContext({contextSize: 64, batchSize: 64, threads: 2, flashAttention: false,
                                           experimentalKvCacheKeyType: "F32",
                                           experimentalKvCacheValueType: "F32"});
const sequence = context.getSequence();
const outputs = await sequence.controlledEvaluate(
    tokens.map((t) => [t, {generateNext: {probabilities: true}}]));
const positions = [];
for (let i = 0; i < tokens.length; i++) {
  const probs = outputs[i]?.next?.probabilities;
  if (!probs) throw new Error(`no probabilities for position ${i}`);
  const top = [...probs.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
  positions.push({token: top[0][0], logprob: Math.log(top[0][1]),
                  top: top.map(([t, p]) => [t, Math.log(p)])});
}
console.log(JSON.stringify({positions, bos: model.tokens.bos, eos: model.tokens.eos,
                            text: model.detokenize(tokens)}));
await context.dispose();
await model.dispose();
await llama.dispose();
