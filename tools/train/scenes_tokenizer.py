"""The tiny-scenes tokenizer: SentencePiece BPE (byte_fallback) trained on the caption language (scenes.py),
converted to a Gemma-layout tokenizer.json with `tokenizers` and saved as a GemmaTokenizerFast.

Why not `GemmaTokenizerFast(vocab_file=...)`: in transformers 5.x that silently builds a tokenizer with only the
special tokens (every prompt becomes <unk>; docs/engine.md §8.1, "Tokenizer trap"). So the
tokenizer.json is built as transformers' own GemmaConverter lays it out (transformers 5.24
convert_slow_tokenizer.py, class GemmaConverter): BPE from SentencePieceExtractor (vocab + merges), byte_fallback,
fuse_unk, normalizer Replace(" ", "\u2581"), no pre-tokenizer, post-processor "<bos> $A", decoder
Replace("\u2581", " ") / ByteFallback / Fuse. The vocab size is checked after conversion, and every caption of a
held-out sample must round-trip through ids without <unk>.

Special ids as Gemma: <pad> 0, <eos> 1, <bos> 2, <unk> 3. SanaPipeline lower-cases prompts
(`_text_preprocessing` with clean_caption=False), so the corpus is lower case.

    python tools/train/scenes_tokenizer.py --out DIR      # writes DIR/tokenizer.json etc. (+ DIR/spm.model)
"""
from __future__ import annotations

import argparse
import io
import os

import scenes

VOCAB_SIZE = 384  # 4 specials + 256 byte pieces + ~124 merges/words: the caption language has ~45 words
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]


def train_spm(out_dir: str, n_captions: int = 20000, seed: int = 0) -> str:
    import sentencepiece as spm

    text = "\n".join(scenes.corpus(n_captions, seed)) + "\n"
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines()),
        model_writer=model,
        model_type="bpe",
        vocab_size=VOCAB_SIZE,
        byte_fallback=True,
        character_coverage=1.0,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        add_dummy_prefix=False,
        split_digits=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        num_threads=1,
        minloglevel=2,
    )
    path = os.path.join(out_dir, "spm.model")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


def convert(spm_path: str):
    """tokenizer.json in Gemma's layout from the SentencePiece model."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE
    from transformers.convert_slow_tokenizer import SentencePieceExtractor

    kw = SentencePieceExtractor(spm_path).extract(BPE)  # transformers 5.24: a dict (vocab, merges, ...)
    vocab, merges = kw["vocab"], kw["merges"]
    tok = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True,
                        dropout=None))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                       special_tokens=[("<bos>", 2)])
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIALS])
    return tok


def build(out_dir: str) -> None:
    from transformers import GemmaTokenizerFast

    os.makedirs(out_dir, exist_ok=True)
    spm_path = train_spm(out_dir)
    tok = GemmaTokenizerFast(tokenizer_object=convert(spm_path), bos_token="<bos>", eos_token="<eos>",
                             unk_token="<unk>", pad_token="<pad>", mask_token=None, add_bos_token=True, add_eos_token=False)
    if len(tok) != VOCAB_SIZE:
        raise SystemExit(f"tokenizer vocab is {len(tok)} after conversion, expected {VOCAB_SIZE} (the "
                         "transformers-5 trap: see docs/engine.md §8.1)")
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=spm_path)
    for cap in scenes.corpus(500, seed=999):
        ids = tok(cap).input_ids
        if ids[0] != 2 or 3 in ids:
            raise SystemExit(f"tokenizer check failed on {cap!r}: {ids}")
        if ids[1:] != sp.encode(cap):
            raise SystemExit(f"tokenizer.json differs from sentencepiece on {cap!r}: {ids[1:]} vs {sp.encode(cap)}")
        if tok.decode(ids, skip_special_tokens=True) != cap:
            raise SystemExit(f"round trip failed on {cap!r}")
    tok.save_pretrained(out_dir)
    print(f"tokenizer: vocab {len(tok)}, saved to {out_dir}; "
          f"'a small red circle above a blue square' -> {tok('a small red circle above a blue square').input_ids}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    build(ap.parse_args().out)


if __name__ == "__main__":
    main()
