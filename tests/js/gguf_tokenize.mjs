// Tokenizes texts with llama.cpp's tokenizer (node-llama-cpp) from a GGUF file's vocabulary only
// (vocabOnly: no weights are read, so llama.cpp's vocab-only files load too).
// usage: node tests/js/gguf_tokenize.mjs MODEL.gguf TEXTS.json
// TEXTS.json is a JSON array of strings. Prints one JSON line: {"ids": [[...] per text, no BOS,
// special-token text not parsed], "ids_special": [[...] with special-token text parsed],
// "detok": [text of ids], "bos", "eos"}.
import {readFileSync} from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

const [modelPath, textsPath] = process.argv.slice(2);
if (!modelPath || !textsPath) {
  console.error("usage: gguf_tokenize.mjs MODEL.gguf TEXTS.json");
  process.exit(2);
}
const texts = JSON.parse(readFileSync(textsPath, "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0, vocabOnly: true});
// model.tokenize never adds BOS/EOS (llama_tokenize with add_special = false).
const ids = texts.map((t) => Array.from(model.tokenize(t, false)));
const idsSpecial = texts.map((t) => Array.from(model.tokenize(t, true)));
const detok = ids.map((v) => model.detokenize(v, false));
console.log(JSON.stringify({ids, ids_special: idsSpecial, detok, bos: model.tokens.bos ?? null,
                            eos: model.tokens.eos ?? null}));
await model.dispose();
await llama.dispose();
