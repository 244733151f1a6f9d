# Independent oracle for SentencePiece models: encodes texts with the sentencepiece library.
# usage: tok_spm_oracle.py MODEL TEXTS_JSON  -> prints a JSON list of id lists (no BOS/EOS),
# followed by a line with the model's normalizer name and add_dummy_prefix flag.
import json
import sys

import sentencepiece as spm

sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    texts = json.load(f)
print(json.dumps([sp.encode(t) for t in texts]))
