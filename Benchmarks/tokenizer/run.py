#!/usr/bin/env python3
"""Encode/decode throughput of QwenTokenizer next to Hugging Face `tokenizers` on the same mixed-language text.

Builds a deterministic corpus of a few MB from what a Debian machine carries: translated message catalogs
(/usr/share/locale/*/LC_MESSAGES/*.mo: Chinese, Japanese, Korean, Russian, Hindi, Arabic, ... UI strings),
Python standard-library sources (English comments and code) and licence texts. Times HF (`Tokenizer.encode`
of the whole text, median of N runs, one thread), writes HF's ids, then runs the Swift TokenizerBench
(release build) on the same text, which checks its ids are identical.

Usage: python3 Benchmarks/tokenizer/run.py [--mb 4] [--runs 5] [--tokenizer PATH]   (pip install tokenizers)
"""
import argparse
import os
os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one thread, as the Swift side
import gettext
import glob
import json
import os
import pathlib
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def corpus(megabytes):
    parts, size, budget = [], 0, int(megabytes * 1e6)
    per_source = budget // 2
    # Translations: the msgstr side of each catalog, languages taken round-robin.
    languages = ["zh_CN", "ja", "ko", "ru", "hi", "ar", "th", "vi", "de", "fr", "es", "uk", "he", "el", "pt_BR", "ta", "tr", "pl"]
    by_language = {lang: sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")) for lang in languages}
    catalogs = sum(len(v) for v in by_language.values())
    texts = []
    for round_index in range(max(len(v) for v in by_language.values())):
        for lang in languages:
            if round_index >= len(by_language[lang]):
                continue
            try:
                with open(by_language[lang][round_index], "rb") as f:
                    catalog = gettext.GNUTranslations(f)
            except Exception:
                continue
            strings = [v for k, v in sorted(catalog._catalog.items(), key=lambda kv: str(kv[0])) if k and isinstance(v, str)]
            if strings:
                texts.append("\n".join(strings))
    taken = 0
    for t in texts:
        if taken >= per_source:
            break
        parts.append(t)
        taken += len(t.encode())
    size += taken
    # Python sources and licences (English prose, code, tabs).
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py")) + sorted(glob.glob("/usr/share/common-licenses/*")):
        if size >= budget:
            break
        try:
            t = pathlib.Path(path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        parts.append(t)
        size += len(t.encode())
    return "\n\n".join(parts), catalogs


def train(kit_folder, text, vocab_size, work):
    from tokenizers import Tokenizer, models, trainers, pre_tokenizers
    kit = Tokenizer.from_file(os.path.join(kit_folder, "tokenizer.json"))
    tok = Tokenizer(models.BPE())
    tok.normalizer = kit.normalizer
    tok.pre_tokenizer = kit.pre_tokenizer
    tok.decoder = kit.decoder
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text.split("\n"), trainer)
    kit_json = json.loads(pathlib.Path(kit_folder, "tokenizer.json").read_text())
    base = tok.get_vocab_size()
    added = [dict(t, id=base + k) for k, t in enumerate(kit_json["added_tokens"])]
    trained = json.loads(tok.to_str())
    trained["added_tokens"] = added
    folder = work / f"bpe{vocab_size}"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(trained, ensure_ascii=False))
    return str(folder)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=4)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokenizer", default=str(ROOT / "Tests/Fixtures/conformance/tokenizer"))
    ap.add_argument("--train-vocab", type=int, default=0,
                    help="first train a BPE of this size with the kit tokenizer's pipeline on the corpus (closer to the real 248k vocabulary than the kit's 2000 tokens)")
    args = ap.parse_args()
    from tokenizers import Tokenizer, __version__

    text, catalogs = corpus(args.mb)
    work = pathlib.Path(tempfile.mkdtemp(prefix="qwenvk-tokenizer-bench-"))
    (work / "corpus.txt").write_text(text, encoding="utf-8")
    if args.train_vocab:
        args.tokenizer = train(args.tokenizer, text, args.train_vocab, work)
    nbytes = len(text.encode())
    non_ascii = sum(1 for c in text if ord(c) > 127) / len(text)

    tok_file = args.tokenizer if args.tokenizer.endswith(".json") else os.path.join(args.tokenizer, "tokenizer.json")
    tok = Tokenizer.from_file(tok_file)
    enc_times, dec_times = [], []
    for _ in range(args.runs):
        t = time.perf_counter(); ids = tok.encode(text, add_special_tokens=False).ids; enc_times.append(time.perf_counter() - t)
    for _ in range(args.runs):
        t = time.perf_counter(); tok.decode(ids, skip_special_tokens=False); dec_times.append(time.perf_counter() - t)
    # Typical serving use: many short texts. encode_batch on the lines, one thread (RAYON_NUM_THREADS=1).
    lines = text.split("\n")
    batch_times = []
    for _ in range(args.runs):
        t = time.perf_counter(); tok.encode_batch(lines, add_special_tokens=False); batch_times.append(time.perf_counter() - t)
    import array
    array.array("i", ids).tofile(open(work / "hf_ids.bin", "wb"))

    subprocess.run(["swift", "build", "-c", "release", "--product", "TokenizerBench"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    swift = json.loads(subprocess.run([str(ROOT / ".build/release/TokenizerBench"), args.tokenizer, str(work / "corpus.txt"),
                                       str(args.runs), str(work / "hf_ids.bin")], check=True, capture_output=True, text=True).stdout)
    hf_enc = nbytes / 1e6 / statistics.median(enc_times)
    hf_dec = nbytes / 1e6 / statistics.median(dec_times)
    print(f"corpus: {nbytes / 1e6:.2f} MB ({catalogs} message catalogs + Python sources + licences; {non_ascii:.0%} non-ASCII characters), "
          f"{len(ids)} tokens, tokenizer {args.tokenizer}")
    print(f"{'':24}{'encode MB/s':>14}{'decode MB/s':>14}")
    print(f"{'HF tokenizers ' + __version__:24}{hf_enc:14.2f}{hf_dec:14.2f}")
    print(f"{'HF encode_batch(lines)':24}{nbytes / 1e6 / statistics.median(batch_times):14.2f}{'':>14}")
    print(f"{'QwenTokenizer (Swift)':24}{swift['encode_MBps']:14.2f}{swift['decode_MBps']:14.2f}")
    print(f"ratio Swift/HF: encode {swift['encode_MBps'] / hf_enc:.2f}x, decode {swift['decode_MBps'] / hf_dec:.2f}x; "
          f"ids identical to HF: {swift['ids_identical_to_reference']} ({swift['tokens']} vs {len(ids)} tokens); median of {args.runs} runs")


main()
