#!/usr/bin/python3
"""Writes a 512-piece SentencePiece BPE model (tokenizer.model) with the id layout of llama2.c's
tok512, whose original file is not available: 0 <unk>, 1 <s>, 2 </s>, 3..258 the byte pieces
<0x00>..<0xFF> (byte fallback), then 253 ordinary pieces (letters, "▁"-prefixed words, digits,
punctuation) with decreasing scores. Token ids, not texts, are what the stories260K interop test
compares; the file only has to be a valid vocabulary of the right size for llama.cpp.

usage: gguf_ref_spm512.py OUT/tokenizer.model
The protobuf (sentencepiece_model.proto) is encoded by hand: ModelProto {1: pieces, 2:
trainer_spec, 3: normalizer_spec}; SentencePiece {1: piece, 2: score, 3: type}.
"""
import struct
import sys

NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    return varint((num << 3) | wire) + payload


def msg(num, body):
    return field(num, 2, varint(len(body)) + body)


def pieces():
    out = [("<unk>", 0.0, UNKNOWN), ("<s>", 0.0, CONTROL), ("</s>", 0.0, CONTROL)]
    out += [("<0x%02X>" % b, 0.0, BYTE) for b in range(256)]
    words = ["the", "and", "was", "to", "a", "he", "she", "it", "they", "day", "time", "Once", "upon",
             "little", "girl", "boy", "named", "Lily", "Tim", "Ben", "play", "happy", "big", "saw", "said"]
    normal = ["\u2581"] + ["\u2581" + w for w in words]
    normal += [chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    normal += ["\u2581" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    normal += ["\u2581" + chr(c) for c in range(ord("A"), ord("Z") + 1)]
    normal += [str(d) for d in range(10)] + list(".,!?'\"-:;()")
    bigrams = ["th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ti", "es", "or", "te", "of", "ed",
               "is", "it", "al", "ar", "st", "to", "nt", "ng", "se", "ha", "as", "ou", "io", "le", "ve", "co",
               "me", "de", "hi", "ri", "ro", "ic", "ne", "ea", "ra", "ce", "li", "ch", "ll", "be", "ma", "si",
               "om", "ur", "ca", "el", "ta", "la", "ns", "di", "fo", "ho", "pe", "ec", "pr", "no", "ct", "us",
               "ac", "ot", "il", "tr", "ly", "nc", "et", "ut", "ss", "so", "rs", "un", "lo", "wa", "ge", "ie",
               "wh", "ee", "wi", "em", "ad", "ol", "rt", "po", "we", "na", "ul", "ni", "ts", "mo", "ow", "pa",
               "im", "mi", "ai", "sh", "ir", "su", "id", "os", "iv", "ia", "am", "fi", "ci", "vi", "pl", "ig",
               "tu", "ev", "ld", "ry", "mp", "fe", "bl", "ab", "gh", "ty", "op", "wo", "sa", "ay", "ex", "ke",
               "fr", "oo", "av", "ag", "if", "ap", "gr", "od", "bo", "sp", "rd", "do", "uc", "bu", "ei", "ov"]
    normal += bigrams
    normal = list(dict.fromkeys(normal))  # drop repeats, keep the first position
    n_free = 512 - len(out)
    normal = normal[:n_free]
    i = 0
    while len(normal) < n_free:  # filler pieces, never produced by merges of real text
        normal.append("\u2581zz%d" % i)
        i += 1
    out += [(p, -float(k), NORMAL) for k, p in enumerate(normal)]
    assert len(out) == 512 and len(set(p for p, _, _ in out)) == 512
    return out


def main():
    body = b""
    for p, score, typ in pieces():
        sp = msg(1, p.encode("utf-8")) + field(2, 5, struct.pack("<f", score)) + field(3, 0, varint(typ))
        body += msg(1, sp)
    trainer = (field(3, 0, varint(2)) + field(4, 0, varint(512)) + field(35, 0, varint(1)) +
               field(40, 0, varint(0)) + field(41, 0, varint(1)) + field(42, 0, varint(2)) +
               field(43, 0, varint((1 << 64) - 1)))
    normalizer = msg(1, b"identity") + field(3, 0, varint(1)) + field(4, 0, varint(0)) + field(5, 0, varint(1))
    body += msg(2, trainer) + msg(3, normalizer)
    with open(sys.argv[1], "wb") as f:
        f.write(body)


if __name__ == "__main__":
    main()
