// Prompt-processing and generation speed of llama.cpp (node-llama-cpp's CPU build) on a GGUF
// file, measured the way bench/runtime_bench.sh measures our runtime: the prompt in one batch,
// then greedy generation with the KV cache. Model loading is not timed. Prints one JSON line.
// usage: node bench/llama_cpp_bench.mjs MODEL.gguf PROMPT_IDS(comma-separated) N_GEN THREADS
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, idList, nGenText, threadsText] = process.argv.slice(2);
if (!modelPath || !idList || !nGenText || !threadsText) {
  console.error("usage: llama_cpp_bench.mjs MODEL.gguf 1,450,... N_GEN THREADS");
  process.exit(2);
}
const prompt = idList.split(",").map(Number);
const nGen = Number(nGenText);
const threads = Number(threadsText);
const now = () => Number(process.hrtime.bigint()) / 1e9;

const tLoad0 = now();
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
// Default KV cache types and flash-attention setting: what a user of llama.cpp gets.
const context = await model.createContext({contextSize: prompt.length + nGen + 16, batchSize: prompt.length,
                                           threads: {ideal: threads, min: threads}});
const sequence = context.getSequence();
const loadS = now() - tLoad0;

// Warm-up: one token, so that first-call set-up is not counted in either figure.
await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, 1));
await sequence.clearHistory();

// Prompt processing alone.
const t0 = now();
await sequence.evaluateWithoutGeneratingNewTokens(prompt);
const promptS = now() - t0;
await sequence.clearHistory();

// Prompt, then nGen single-token steps: the generator yields a token after the prompt and after
// each step; stopping at nGen + 1 tokens means nGen steps ran.
const t1 = now();
const generated = [];
for await (const tok of sequence.evaluate(prompt, {temperature: 0})) {
  generated.push(tok);
  if (generated.length >= nGen + 1) break;
}
const totalS = now() - t1;
const genS = totalS - promptS;

console.log(JSON.stringify({
  engine: "llama.cpp (node-llama-cpp)", threads, load_s: loadS,
  prompt_tokens: prompt.length, prompt_s: promptS, prompt_tok_s: prompt.length / promptS,
  gen_tokens: nGen, gen_s: genS, gen_tok_s: nGen / genS, greedy_ids: generated.slice(0, 8),
}));
await context.dispose();
await model.dispose();
await llama.dispose();
