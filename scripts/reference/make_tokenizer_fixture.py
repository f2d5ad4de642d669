#!/usr/bin/env python3
"""Writes the tokenizer parity fixtures for BertTokenizer (Tests/QGOFTCoreTests/TokenizerTests.swift).

Runs HuggingFace `tokenizers` (the Rust library; tested with 0.23.3) on the model's own
tokenizer.json, read from $QGOFT_HOME/minilm-l6 or ~/.cache/qgoft/minilm-l6, and writes into
Tests/Fixtures/tokenizer/:

  minilm_l6_ids.json   for every input of lines.txt: the ids truncated at 64 and at 512
                       ([CLS] and [SEP] included, no padding), the tokens, and the normalizer and
                       pre-tokenizer output on their own.
  unicode_classes.json for every code point, FNV-1a hashes (per block of 4096 code points) of what
                       each BertNormalizer stage, NFD and the BertPreTokenizer make of it. The
                       Rust crate uses old Unicode tables (8.0 categories, 9.0 normalization) that
                       Swift's current tables differ from; this pins them down without committing
                       a million entries.

Usage: python3 scripts/reference/make_tokenizer_fixture.py [--skip-unicode]
Needs only `tokenizers` (pip install tokenizers==0.23.3). Tests never run Python.
"""

import argparse
import hashlib
import json
import os
import sys

import tokenizers
from tokenizers import Tokenizer, normalizers, pre_tokenizers

FORMAT_VERSION = 1
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(REPO, "Tests", "Fixtures", "tokenizer")
BLOCK = 4096
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


def model_dir():
    home = os.environ.get("QGOFT_HOME") or os.path.expanduser("~/.cache/qgoft")
    return os.path.join(home, "minilm-l6")


def decode_line(line):
    """Undoes the escapes of lines.txt: \\\\ \\n \\t \\r \\xHH \\uHHHH \\UHHHHHHHH."""
    out, i = [], 0
    simple = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
    widths = {"x": 2, "u": 4, "U": 8}
    while i < len(line):
        ch = line[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(line):
            raise ValueError(f"dangling backslash in {line!r}")
        kind = line[i + 1]
        if kind in simple:
            out.append(simple[kind])
            i += 2
        elif kind in widths:
            digits = line[i + 2 : i + 2 + widths[kind]]
            if len(digits) != widths[kind]:
                raise ValueError(f"short \\{kind} escape in {line!r}")
            out.append(chr(int(digits, 16)))
            i += 2 + widths[kind]
        else:
            raise ValueError(f"unknown escape \\{kind} in {line!r}")
    return "".join(out)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        raw = f.read().split("\n")
    if raw and raw[-1] == "":
        raw.pop()
    return [decode_line(line) for line in raw if not line.startswith("#:")]


def encode(tok, text, max_length):
    tok.enable_truncation(max_length=max_length)
    enc = tok.encode(text)
    # Without padding the type ids are all 0 and the mask all 1; BertTokenizer returns neither,
    # so check that here instead of storing them.
    assert all(t == 0 for t in enc.type_ids), text
    assert all(m == 1 for m in enc.attention_mask), text
    return enc


def make_ids_fixture(tok, tokenizer_json_path):
    lines = read_lines(os.path.join(OUT_DIR, "lines.txt"))
    assert len(lines) >= 200, f"only {len(lines)} inputs"
    cases = []
    for text in lines:
        e64 = encode(tok, text, 64)
        e512 = encode(tok, text, 512)
        normalized = tok.normalizer.normalize_str(text)
        words = [w for w, _ in tok.pre_tokenizer.pre_tokenize_str(normalized)]
        cases.append({
            "text": text,
            "ids_max64": e64.ids,
            "ids_max512": e512.ids,
            "tokens_max512": e512.tokens,
            "normalized": normalized,
            "words": words,
        })
    with open(tokenizer_json_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    header = {
        "format_version": FORMAT_VERSION,
        "tokenizers_version": tokenizers.__version__,
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "tokenizer_json_sha256": digest,
        "generated_by": "scripts/reference/make_tokenizer_fixture.py",
        "fields": "ids_max64/ids_max512: encode() with truncation at 64/512, [CLS] and [SEP] included, "
        "no padding; tokens_max512: their tokens; normalized/words: the normalizer and "
        "pre-tokenizer alone on the whole line (added tokens not cut out)",
    }
    path = os.path.join(OUT_DIR, "minilm_l6_ids.json")
    # One case per line keeps diffs readable.
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        for key, value in header.items():
            f.write(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n")
        f.write('  "cases": [\n')
        f.write(",\n".join("    " + json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n  ]\n}\n")
    print(f"wrote {path}: {len(cases)} cases")


def fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def make_unicode_fixture():
    """Per code point: each stage's output of that one scalar, hashed per block.

    Serialisation hashed per code point (surrogates skipped): the UTF-8 output followed by a 0xFF
    byte, which never occurs in UTF-8. For `pre`, the output is the number of words of
    "a" + c + "a" as one ASCII digit (1: joined, 2: c is whitespace, 3: c is punctuation).
    """
    stages = {
        "clean": normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                            strip_accents=False, lowercase=False),
        "chinese": normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True,
                                              strip_accents=False, lowercase=False),
        "strip": normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                            strip_accents=True, lowercase=False),
        "lower": normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                            strip_accents=False, lowercase=True),
        "all": normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                          strip_accents=None, lowercase=True),
    }
    nfd = normalizers.NFD()
    pre = pre_tokenizers.BertPreTokenizer()
    names = list(stages) + ["nfd", "pre"]
    hashes = {name: [] for name in names}
    for start in range(0, 0x110000, BLOCK):
        h = {name: FNV_OFFSET for name in names}
        for c in range(start, start + BLOCK):
            if 0xD800 <= c <= 0xDFFF:
                continue
            ch = chr(c)
            outputs = {name: n.normalize_str(ch) for name, n in stages.items()}
            # U+0334 has combining class 1: a mark with a larger known class moves after it.
            outputs["nfd"] = nfd.normalize_str("a" + ch + "\u0334")
            outputs["pre"] = str(len(pre.pre_tokenize_str("a" + ch + "a")))
            for name in names:
                h[name] = fnv1a(h[name], outputs[name].encode("utf-8") + b"\xff")
        for name in names:
            hashes[name].append(f"{h[name]:016x}")
    path = os.path.join(OUT_DIR, "unicode_classes.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        f.write(f'  "format_version": {FORMAT_VERSION},\n')
        f.write(f'  "tokenizers_version": {json.dumps(tokenizers.__version__)},\n')
        f.write(f'  "block_size": {BLOCK},\n')
        f.write('  "hash": "FNV-1a 64 over, per code point (surrogates skipped), the UTF-8 output then 0xFF",\n')
        f.write('  "stages": {\n')
        f.write(",\n".join(f"    {json.dumps(n)}: {json.dumps(hashes[n])}" for n in names))
        f.write("\n  }\n}\n")
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-unicode", action="store_true", help="do not rewrite unicode_classes.json (slow)")
    args = parser.parse_args()
    path = os.path.join(model_dir(), "tokenizer.json")
    if not os.path.exists(path):
        sys.exit(f"{path} not found. HINT: run `qgoft fetch` or set QGOFT_HOME.")
    tok = Tokenizer.from_file(path)
    tok.no_padding()  # tokenizer.json pads to 128; the fixture wants the bare ids
    make_ids_fixture(tok, path)
    if not args.skip_unicode:
        make_unicode_fixture()


if __name__ == "__main__":
    main()
