#!/usr/bin/env python3
"""Writes Tests/Fixtures/tokenizer/random_expectations.json: Hugging Face `tokenizers` outputs for random
strings, which QwenTokenizerTests compares against.

Strings are drawn (fixed seed) from pools that stress the Qwen3.5 pipeline: combining marks and scripts
with marks (the \\p{M} part of the regex), NFC compositions (Latin, Hangul jamo after syllables, astral
starters), whitespace variants and newline runs, contractions with odd case, digits, emoji sequences,
code, special tokens and their look-alikes, and code points from anywhere in the assigned planes.

Usage: python3 Tools/gen-tokenizer-expectations.py   (needs `pip install tokenizers`)
"""
import json
import pathlib
import random
import unicodedata

from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "Tests/Fixtures/conformance/tokenizer/tokenizer.json"
OUT = ROOT / "Tests/Fixtures/tokenizer/random_expectations.json"
SEED, STRINGS, ID_SEQUENCES = 20261207, 2000, 300

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<think>",
            "</think>", "<tool_call>", "<tool_response>", "<|fim_prefix|>", "<|im_end", "<|im_start>", "<think",
            "<|<|im_end|>|>", "</tool_call>"]


def pool_range(a, b):
    return [chr(c) for c in range(a, b + 1) if unicodedata.category(chr(c)) != "Cn" and not 0xD800 <= c < 0xE000]


POOLS = {
    "ascii": [chr(c) for c in range(0x20, 0x7F)] + ["\t", "\n", "\r", " ", " ", "e", "a", "'"],
    "words": ["hello", "world", "The", "don't", "I'LL", "'s", "'Re", "'vE", "'M", "'ll", "'D", "'ſ", "''", "1234",
              "3.14", "foo_bar", "x=1;", "  ", "\r\n", "\n\n", " \n ", "\t\t", "def f():\n    return 1\n"],
    "latin": pool_range(0xC0, 0x24F) + pool_range(0x1E00, 0x1EFF),
    "marks": pool_range(0x300, 0x36F) + pool_range(0x1AB0, 0x1ABE) + pool_range(0x20D0, 0x20F0) + ["\u0345", "\u0334", "\u05b0", "\u0591"],
    "indic": pool_range(0x900, 0x97F) + pool_range(0xE00, 0xE5B) + pool_range(0xB80, 0xBFA) + pool_range(0xD00, 0xD7F),
    "cjk": pool_range(0x4E00, 0x4FFF) + pool_range(0x3040, 0x30FF) + pool_range(0x3000, 0x303F) + pool_range(0xFF00, 0xFF65) + pool_range(0xF900, 0xFA6D),
    "hangul": pool_range(0xAC00, 0xAC40) + pool_range(0x1100, 0x11FF) + pool_range(0x3130, 0x318E),
    "cyrillic_greek_arabic_hebrew": pool_range(0x370, 0x3FF) + pool_range(0x400, 0x4FF) + pool_range(0x600, 0x6FF) + pool_range(0x590, 0x5FF),
    "space": ["\u00a0", "\u2000", "\u2003", "\u200a", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
              "\u0085", "\u1680", "\u180e", "\x0b", "\x0c", "\x1c", "\x1f", "\ufeff", " ", "\n", "\r", "\t"],
    "emoji": ["\U0001F600", "\U0001F44D", "\U0001F3FD", "\u200d", "\u2764", "\ufe0f", "\U0001F1FA", "\U0001F1F8",
              "\U0001F468", "\U0001F469", "\U0001F467", "\U0001F9D1", "\u2620"],
    "astral": pool_range(0x10400, 0x1044F) + pool_range(0x1D400, 0x1D4FF) + pool_range(0x11000, 0x1107F)
              + pool_range(0x11080, 0x110C2) + pool_range(0x11100, 0x11147) + pool_range(0x11300, 0x1137F)
              + pool_range(0x11930, 0x11946) + pool_range(0x1E900, 0x1E95F) + pool_range(0x20000, 0x2004F) + ["\U000110BA", "\U00011099", "\U0001109B"],
    "nfc": ["e\u0301", "A\u030a", "\u212b", "\u2126", "\u1100\u1161", "\uac00\u11a8", "\u1100\u1161\u11a8", "o\u0308\u0301",
            "a\u0328\u0301", "\u0041\u0301\u0327", "\U00011099\U000110BA", "\U0001109B\U000110BA", "\u0915\u093c", "\u09c7\u09be",
            "\u1e9b\u0323", "s\u0323\u0307", "\u0fb2\u0f80", "\u05d0\u05b7", "\uac01\u11a8", "\u0b47\u0b3e"],
    "any": None,
    "special": SPECIALS,
}
WEIGHTS = {"ascii": 6, "words": 4, "latin": 2, "marks": 3, "indic": 3, "cjk": 3, "hangul": 2, "cyrillic_greek_arabic_hebrew": 2,
           "space": 3, "emoji": 2, "astral": 2, "nfc": 3, "any": 2, "special": 1}


def any_char(rng):
    while True:
        c = rng.choice([rng.randrange(0x80, 0x3000), rng.randrange(0x3000, 0x10000), rng.randrange(0x10000, 0x32000), rng.randrange(0xE0000, 0xE0080)])
        if 0xD800 <= c < 0xE000:
            continue
        return chr(c)


def random_string(rng):
    pools = rng.sample(list(WEIGHTS), k=rng.randint(1, 4))
    weights = [WEIGHTS[p] for p in pools]
    out = []
    for _ in range(rng.randint(1, 24)):
        p = rng.choices(pools, weights)[0]
        out.append(any_char(rng) if p == "any" else rng.choice(POOLS[p]))
    return "".join(out)


def main():
    tok = Tokenizer.from_file(str(TOKENIZER))
    rng = random.Random(SEED)
    cases = []
    for _ in range(STRINGS):
        s = random_string(rng)
        ids = tok.encode(s, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        plain = tok.encode(s, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        case = {"text": s, "ids": ids}
        if plain != ids:
            case["ids_no_special"] = plain
        nfc = tok.normalizer.normalize_str(s)
        if nfc != s:
            case["nfc"] = nfc
        decoded = tok.decode(ids, skip_special_tokens=False)
        if decoded != nfc:
            case["decoded"] = decoded  # NFC between added tokens (the normalizer never sees them)
        cases.append(case)
    sequences = []
    vocab = tok.get_vocab_size(with_added_tokens=True)
    for _ in range(ID_SEQUENCES):
        ids = [rng.randrange(vocab) for _ in range(rng.randint(1, 12))]
        sequences.append({"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                          "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    OUT.write_text(json.dumps({"generator": "Tools/gen-tokenizer-expectations.py", "seed": SEED,
                               "tokenizer": "Tests/Fixtures/conformance/tokenizer/tokenizer.json",
                               "cases": cases, "id_sequences": sequences}, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {len(cases)} strings, {len(sequences)} id sequences, "
          f"{sum('nfc' in c for c in cases)} change under NFC, {sum('ids_no_special' in c for c in cases)} with special tokens")


main()
