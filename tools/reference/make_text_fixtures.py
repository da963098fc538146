#!/usr/bin/env python3
"""Tokenizer fixtures for Darkroom's `Text` module, computed with sentencepiece 0.2.3, tokenizers 0.23.3 and
transformers 5.24 (no torch).

Writes into Tests/TextTests/Fixtures/tokenizers/ (see ../README.md there):
  gemma/        a Gemma-style BPE (byte fallback) trained with sentencepiece, tokenizer.json built with `tokenizers`
                as the field notes say (transformers 5's GemmaTokenizerFast(vocab_file=...) builds an empty vocab),
                wrapped with GemmaTokenizerFast(tokenizer_object=...) and saved with save_pretrained
  t5/           a T5-style Unigram (nmt_nfkc): Precompiled charsmap + Replace(" {2,}"), Metaspace, `$A </s>`,
                wrapped with T5TokenizerFast (its 100 <extra_id_N> added tokens) and saved
  variants/     tokenizer.json files exercising what the two above do not (merges as "a b" strings and
                ignore_merges, Unigram byte_fallback, NFC/NFKC/Lowercase/Strip/Prepend, WhitespaceSplit, Split,
                Sequence, Metaspace prepend_scheme first/never, split false, added tokens with lstrip/rstrip,
                single_word and normalized content)
  t5-spiece/    the same T5 Unigram as PixArt's tokenizer/ ships it: spiece.model + tokenizer_config.json only
  cases.json    the test strings (>= 5,000: ASCII, accents, CJK, emoji, combining marks, control characters, runs
                of spaces and tabs, special-token text, empty, 10,000-character inputs)
  expected-*.json  for each tokenizer (gemma, t5, t5-spiece): ids of every string with special tokens (AutoTokenizer(text)), without
                (add_special_tokens=False) for a subset, and padded/truncated ids + attention masks for a subset

Every expectation from transformers is also checked equal to the raw `tokenizers` encoding. Deterministic (seeded).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile

import sentencepiece as spm
import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
import transformers
from transformers import AutoTokenizer, GemmaTokenizerFast, T5TokenizerFast
from transformers.convert_slow_tokenizer import SentencePieceExtractor
from sentencepiece import sentencepiece_model_pb2 as model_pb2

assert tokenizers.__version__ == "0.23.3", tokenizers.__version__
assert transformers.__version__.startswith("5.24"), transformers.__version__

WORDS = ("the a red blue green small large circle square triangle ring over under next to bright dark cat dog "
         "house tree river mountain photo painting of in on with and at night morning city street car boat "
         "portrait landscape detailed cinematic light shadow golden hour soft focus girl boy old young").split()
ACCENTED = "café naïve résumé façade jalapeño über Ångström crème brûlée São Paulo Zürich Kraków Dvořák smörgåsbord".split()
CJK = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 300)) + "あいうえおかきくけこさしすせそアイウエオカキクケコ한국어안녕하세요"
EMOJI = ["😀", "🐱", "🚀", "❤️", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🇫🇷", "🇯🇵", "1️⃣", "☕", "🏳️‍🌈", "✨", "🤖"]
COMBINING = ["\u0301", "\u0300", "\u0308", "\u0327", "\u030A", "\u0323", "\u0336", "\u20DD"]
CONTROL = ["\t", "\n", "\r", "\r\n", "\x00", "\x01", "\x1b", "\x7f", "\x85", "\u200b", "\u200d", "\ufeff", "\u2028",
           "\u00a0", "\u3000", "\u2003"]
OTHER = ["Привет мир", "Γειά σου ΣΟΦΙΑ", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
         "Ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３", "ｶﾀｶﾅ", "ﬁﬂ ½ ² ㎏ ℃ Ⅻ ①", "x²+y³", "ǅungla ǈ", "İstanbul ß ẞ"]
SPECIAL_TEXT = ["<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "</s>", "<s>", "<extra_id_0>", "<extra_id_99>",
                "<start_of_turn>", "<end_of_turn>", "<0x41>", "▁", "▁▁"]


def corpus_lines(rng: random.Random, n: int) -> list[str]:
    lines = []
    for _ in range(n):
        k = rng.randint(3, 14)
        parts = []
        for _ in range(k):
            r = rng.random()
            if r < 0.75:
                w = rng.choice(WORDS)
                parts.append(w.capitalize() if rng.random() < 0.1 else w)
            elif r < 0.85:
                parts.append(rng.choice(ACCENTED))
            elif r < 0.93:
                parts.append("".join(rng.choice(CJK) for _ in range(rng.randint(1, 4))))
            else:
                parts.append(str(rng.randint(0, 999)))
        lines.append(" ".join(parts) + rng.choice(["", ".", ",", "!", "?"]))
    return lines


def random_piece(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.30:
        return rng.choice(WORDS)
    if r < 0.40:
        return rng.choice(ACCENTED)
    if r < 0.50:
        return "".join(rng.choice(CJK) for _ in range(rng.randint(1, 6)))
    if r < 0.57:
        return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
    if r < 0.63:
        return rng.choice("aeiouxnAE ") + "".join(rng.choice(COMBINING) for _ in range(rng.randint(1, 4)))
    if r < 0.70:
        return rng.choice(CONTROL)
    if r < 0.76:
        return " " * rng.randint(1, 7) if rng.random() < 0.6 else "\t" * rng.randint(1, 4)
    if r < 0.82:
        return rng.choice(OTHER)
    if r < 0.86:
        return rng.choice(SPECIAL_TEXT)
    if r < 0.93:
        return rng.choice("!?.,;:'\"()[]{}<>/\\|@#$%^&*-_+=~`0123456789")
    # any scalar from a few blocks (no surrogates)
    block = rng.choice([(0x20, 0x7F), (0xA0, 0x250), (0x370, 0x530), (0x2000, 0x2BFF), (0x3000, 0x30FF),
                        (0xAC00, 0xAC40), (0xFF00, 0xFFEF), (0x1F300, 0x1F64F), (0x10000, 0x10040)])
    return chr(rng.randint(*block))


def test_strings(rng: random.Random) -> list[str]:
    out = ["", " ", "  ", "\t", "\n", "a", "hello world", "Hello  World", "  leading", "trailing  ", " both ",
           "red circle", "A red circle over a blue square.", "tabs\tand\t\tspaces   mixed \t ",
           "<bos>red circle", "red<eos>", "<pad><pad>", "<mask> is special", "a <start_of_turn>user hi<end_of_turn>",
           "</s>", "x </s> y", "<extra_id_1> z", "<unk>", "▁already▁metaspaced", "e\u0301e\u0301", "\u00e9\u00e9",
           "ｈｅｌｌｏ", "①②③", "ﬁne", "😀😀😀", "👨‍👩‍👧‍👦 family", "🇫🇷🇯🇵", "\x00\x01\x02", "\r\n\r\n",
           "a  <start_of_image>  b", "<start_of_image>\t<start_of_image>", "cat catalog bobcat cat_ cat. (cat) écat",
           "red red  red\tred"]
    out += SPECIAL_TEXT + OTHER + EMOJI + ACCENTED + CONTROL
    for line in corpus_lines(rng, 1500):
        out.append(line)
    while len(out) < 5200:
        n = rng.choice([1, 1, 2, 3, 5, 8, 12, 20])
        out.append("".join(random_piece(rng) + (" " if rng.random() < 0.5 else "") for _ in range(n)))
    # 10,000-character inputs
    for _ in range(4):
        s = ""
        while len(s) < 10_000:
            s += random_piece(rng) + " "
        out.append(s[:10_000])
    out.append(("red circle " * 1000)[:10_000])
    out.append("x" * 10_000)
    return out


def train(corpus: str, prefix: str, **kw) -> model_pb2.ModelProto:
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, num_threads=1, minloglevel=2, **kw)
    m = model_pb2.ModelProto()
    with open(prefix + ".model", "rb") as f:
        m.ParseFromString(f.read())
    return m


def gemma_tokenizer(model_path: str) -> Tokenizer:
    ext = SentencePieceExtractor(model_path).extract(models.BPE)
    tok = Tokenizer(models.BPE(vocab=ext["vocab"], merges=ext["merges"], unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ["<pad>", "<eos>", "<bos>", "<unk>"]])
    tok.add_tokens([AddedToken(t.content, special=False, normalized=False) for t in ext["additional_special_tokens"]])
    bos = ext["vocab"]["<bos>"]
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                       special_tokens=[("<bos>", bos)])
    return tok


def t5_tokenizer(proto: model_pb2.ModelProto) -> Tokenizer:
    vocab = [(p.piece, p.score) for p in proto.pieces]
    tok = Tokenizer(models.Unigram(vocab, unk_id=proto.trainer_spec.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    eos = [i for i, p in enumerate(proto.pieces) if p.piece == "</s>"][0]
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", eos)])
    return tok


def expectations(folder: str, texts: list[str], padded: list[dict]) -> dict:
    """ids of every text through AutoTokenizer (checked equal to raw tokenizers), plus padded subsets."""
    hf = AutoTokenizer.from_pretrained(folder)
    ids = hf(texts)["input_ids"]
    if os.path.exists(os.path.join(folder, "tokenizer.json")):
        raw = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        assert ids == [e.ids for e in raw.encode_batch(texts)], folder
    plain = hf(texts[:1000], add_special_tokens=False)["input_ids"]
    out = {"vocab_size": len(hf), "ids": ids, "ids_no_special": plain, "padded": []}
    for p in padded:
        hf.padding_side = p["side"]
        enc = hf(texts[: p["count"]], padding="max_length", max_length=p["max_length"], truncation=True)
        out["padded"].append(dict(p, ids=enc["input_ids"], mask=enc["attention_mask"]))
    return out


def variant_ids(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = os.path.join(args.out, "tokenizers")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "variants"))
    rng = random.Random(20261130)
    work = tempfile.mkdtemp(prefix="text-fixtures-")
    corpus = os.path.join(work, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(corpus_lines(rng, 20_000)) + "\n")

    # Gemma layout: pad 0, eos 1, bos 2, unk 3; user-defined symbols become added tokens.
    gemma_proto = train(corpus, os.path.join(work, "gemma"), model_type="bpe", vocab_size=1200, byte_fallback=True,
                        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
                        unk_piece="<unk>", character_coverage=0.9995,
                        user_defined_symbols=["<mask>", "<start_of_turn>", "<end_of_turn>"],
                        add_dummy_prefix=False, remove_extra_whitespaces=False, split_digits=True,
                        normalization_rule_name="identity", allow_whitespace_only_pieces=True)
    gemma = gemma_tokenizer(os.path.join(work, "gemma.model"))
    assert gemma.get_vocab_size() >= 1200, gemma.get_vocab_size()
    g = GemmaTokenizerFast(tokenizer_object=gemma, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                           unk_token="<unk>", mask_token="<mask>")
    g.padding_side = "right"
    g.save_pretrained(os.path.join(out, "gemma"))

    # T5 layout: pad 0, eos 1, unk 2, no bos; nmt_nfkc (its precompiled charsmap).
    t5_proto = train(corpus, os.path.join(work, "t5"), model_type="unigram", vocab_size=800, hard_vocab_limit=False,
                     pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=0.9995,
                     normalization_rule_name="nmt_nfkc")
    assert len(t5_proto.normalizer_spec.precompiled_charsmap) > 1000
    t5 = t5_tokenizer(t5_proto)
    t = T5TokenizerFast(tokenizer_object=t5, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=100)
    t.save_pretrained(os.path.join(out, "t5"))
    # Trap (transformers 5.24): loading that folder, T5Tokenizer rebuilds its normalizer (Precompiled alone) and
    # pre-tokenizer (WhitespaceSplit + Metaspace) and ignores the file's. The pipelines tokenize through
    # transformers, so the committed tokenizer.json is what transformers ends up with; the layout above is kept
    # as the variant t5-field-notes (checked against `tokenizers` over every string).
    loaded = AutoTokenizer.from_pretrained(os.path.join(out, "t5"))
    loaded.backend_tokenizer.save(os.path.join(out, "t5", "tokenizer.json"))
    # What PixArt's tokenizer/ folders ship: the SentencePiece model alone (spiece.model), no tokenizer.json;
    # transformers converts it when it loads (its <extra_id_N> count down from the top id, as in T5).
    os.makedirs(os.path.join(out, "t5-spiece"))
    shutil.copy(os.path.join(work, "t5.model"), os.path.join(out, "t5-spiece", "spiece.model"))
    with open(os.path.join(out, "t5-spiece", "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "T5Tokenizer", "extra_ids": 100, "eos_token": "</s>", "unk_token": "<unk>",
                   "pad_token": "<pad>", "model_max_length": 512}, f, indent=2)
    assert len(AutoTokenizer.from_pretrained(os.path.join(out, "t5-spiece"))) == 900
    for name in ("gemma", "t5"):
        spec = json.load(open(os.path.join(out, name, "tokenizer.json")))
        assert spec["model"]["vocab"] and len(spec["model"]["vocab"]) > 700, name

    texts = test_strings(rng)
    json.dump({"texts": texts}, open(os.path.join(out, "cases.json"), "w"), ensure_ascii=True)
    padded = [dict(max_length=24, side="right", count=600), dict(max_length=24, side="left", count=600),
              dict(max_length=300, side="right", count=50), dict(max_length=3, side="right", count=50)]
    for name in ("gemma", "t5", "t5-spiece"):
        exp = expectations(os.path.join(out, name), texts, padded)
        json.dump(exp, open(os.path.join(out, f"expected-{name}.json"), "w"), separators=(",", ":"))
        print(name, "vocab", exp["vocab_size"], "strings", len(texts),
              "ids", sum(len(i) for i in exp["ids"]))

    # Variants: raw `tokenizers` tokenizers over the first 400 strings and two long ones (t5-field-notes: all).
    vtexts = texts[:400] + texts[-2:]
    variants: dict[str, Tokenizer] = {}
    spec = json.loads(gemma.to_str())
    spec["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]]
    spec["model"]["ignore_merges"] = True
    spec["pre_tokenizer"] = {"type": "Split", "pattern": {"String": "▁"}, "behavior": "MergedWithPrevious",
                             "invert": False}
    variants["bpe-legacy-merges"] = Tokenizer.from_str(json.dumps(spec))

    bf_proto = train(corpus, os.path.join(work, "bf"), model_type="unigram", vocab_size=600, hard_vocab_limit=False,
                     byte_fallback=True, pad_id=0, eos_id=1, unk_id=2, bos_id=3, character_coverage=0.98,
                     normalization_rule_name="identity")
    bf = Tokenizer(models.Unigram([(p.piece, p.score) for p in bf_proto.pieces], unk_id=2, byte_fallback=True))
    bf.normalizer = normalizers.Sequence([normalizers.Strip(left=True, right=True), normalizers.NFC(),
                                          normalizers.Lowercase(), normalizers.Replace(" ", "▁"),
                                          normalizers.Prepend("▁")])
    bf.add_special_tokens([AddedToken("<s>", special=True, normalized=False),
                           AddedToken("</s>", special=True, normalized=False)])
    bf.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B </s>",
                                                      special_tokens=[("<s>", 3), ("</s>", 1)])
    variants["unigram-byte-fallback"] = bf
    variants["t5-field-notes"] = t5

    first = Tokenizer(models.Unigram([(p.piece, p.score) for p in t5_proto.pieces], unk_id=2, byte_fallback=False))
    first.normalizer = normalizers.NFKC()
    first.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split(Regex(r"\d"), behavior="isolated"),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False),
    ])
    variants["unigram-first-nfkc-split"] = first

    never = Tokenizer(models.Unigram([(p.piece, p.score) for p in t5_proto.pieces], unk_id=2, byte_fallback=False))
    never.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    never.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="removed"),
        pre_tokenizers.Split(Regex(r"[!?.,]+"), behavior="merged_with_next", invert=False),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True),
    ])
    never.add_tokens([AddedToken("circle", normalized=True), AddedToken("RED", normalized=False)])
    variants["unigram-never-lowercase"] = never

    strip = Tokenizer.from_str(gemma.to_str())
    strip.add_tokens([AddedToken("<start_of_image>", lstrip=True, rstrip=True, normalized=False),
                      AddedToken("cat", single_word=True, normalized=False),
                      AddedToken("red▁", normalized=True)])
    variants["bpe-added-strip-single-word"] = strip

    for name, tok in variants.items():
        tok.save(os.path.join(out, "variants", f"{name}.json"))
        back = Tokenizer.from_file(os.path.join(out, "variants", f"{name}.json"))
        vt = texts if name == "t5-field-notes" else vtexts
        ids = variant_ids(back, vt)
        assert ids == variant_ids(tok, vt), name
        json.dump({"count": len(vt) - 2, "long": 2, "ids": ids}, open(os.path.join(out, "variants", f"{name}.expected.json"), "w"),
                  separators=(",", ":"))
        print("variant", name, "ids", sum(len(i) for i in ids))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
