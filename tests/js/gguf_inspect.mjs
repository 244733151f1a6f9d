// Parses a GGUF file with @huggingface/gguf (an independent reader) and prints its metadata
// (arrays summarised by length and first items) and tensor infos as JSON.
// usage: node tests/js/gguf_inspect.mjs MODEL.gguf
import {gguf} from "@huggingface/gguf";

const [path] = process.argv.slice(2);
if (!path) {
  console.error("usage: gguf_inspect.mjs MODEL.gguf");
  process.exit(2);
}
const {metadata, tensorInfos, tensorDataOffset} = await gguf(path, {allowLocalFile: true});
const plain = (v) => (typeof v === "bigint" ? Number(v) : v);
const meta = {};
for (const [k, v] of Object.entries(metadata)) {
  meta[k] = Array.isArray(v) ? {length: v.length, head: v.slice(0, 4).map(plain)} : plain(v);
}
const tensors = tensorInfos.map((t) => ({name: t.name, ne: t.shape.map(plain), type: t.dtype,
                                         offset: plain(t.offset)}));
console.log(JSON.stringify({metadata: meta, tensors, data_offset: plain(tensorDataOffset)}));
