"""Tiny random-weight GGUF models of real architectures, generated with numpy and ``gguf``.

No model hub is reachable here, so the suite writes its own: a llama text model with a byte-level BPE
tokenizer and a ChatML template, a CLIP vision projector (mmproj) in the legacy LLaVA layout, and a
BERT embedding model with mean pooling. Weights are random but seeded, so answers are deterministic
gibberish at temperature 0, and the whole inference path (tokenizer, chat template, image encoder) is
the real one. All three together are well under 1 MB and take a fraction of a second.

Test tooling of the Bun suite (moved from the Python suite's tests/backend/gguf_models.py): run with the
Python of test/.venv, which has ``gguf`` and numpy (test/backend/requirements.txt)::

    python test/backend/gguf_models.py FOLDER

writes ``tiny-llama.gguf``, ``tiny-mmproj.gguf`` and ``tiny-bert.gguf`` into FOLDER. Each file is written
under a temporary name and renamed into place, so a reader (or a second writer racing this one) never sees
a half-written model.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["TinyModels", "write_tiny_models"]

N_EMBD = 64  # the text model's width; the projector must output this width
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Any small text teaches the BPE merges; colour words make the tiny models' vocabulary apt.
CORPUS = (
    "What colour is the shape? Answer with one word. The shape is red. The shape is blue. Green, yellow, "
    "orange, purple, black, white. Describe this image succinctly. A large filled circle on a plain "
    "background. The quick brown fox jumps over the lazy dog. Hello world, this is a tiny model for tests. "
) * 4


@dataclass(frozen=True)
class TinyModels:
    text: Path
    mmproj: Path
    embedding: Path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-to-printable-character table (the byte-level BPE alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def _learn_bpe(text: str, n_merges: int) -> tuple[list[str], list[str]]:
    """A few hundred byte-level BPE merges learned from ``text``: (tokens, merges)."""
    table = _bytes_to_unicode()
    alphabet = [table[b] for b in range(256)]
    words = Counter()
    for i, word in enumerate(text.split(" ")):
        encoded = ("" if i == 0 else " ") + word
        words[tuple(table[b] for b in encoded.encode("utf-8"))] += 1
    merges: list[str] = []
    tokens = list(alphabet)
    known = set(tokens)
    for _ in range(n_merges):
        pairs: Counter[tuple[str, str]] = Counter()
        for word, freq in words.items():
            for a, b in zip(word, word[1:], strict=False):
                pairs[(a, b)] += freq
        if not pairs:
            break
        (a, b), _count = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merged = a + b
        merges.append(f"{a} {b}")
        if merged not in known:
            tokens.append(merged)
            known.add(merged)
        new_words: Counter[tuple[str, ...]] = Counter()
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] += freq
        words = new_words
    return tokens, merges


def _rand(rng: np.random.Generator, *shape: int, scale: float = 0.2) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _write_text_model(path: Path, rng: np.random.Generator) -> None:
    import gguf

    tokens, merges = _learn_bpe(CORPUS, 300)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    all_tokens = tokens + specials
    types = [gguf.TokenType.NORMAL] * len(tokens) + [gguf.TokenType.CONTROL] * len(specials)
    n_vocab, n_head, n_head_kv, n_ff, n_layer = len(all_tokens), 4, 2, 128, 2
    head_dim = N_EMBD // n_head
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama-test")
    w.add_context_length(2048)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(head_dim)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(all_tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(all_tokens.index("<|endoftext|>"))
    w.add_eos_token_id(all_tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)
    w.add_tensor("token_embd.weight", _rand(rng, n_vocab, N_EMBD))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor("output.weight", _rand(rng, n_vocab, N_EMBD))
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", _rand(rng, N_EMBD, N_EMBD))
        w.add_tensor(p + "attn_k.weight", _rand(rng, head_dim * n_head_kv, N_EMBD))
        w.add_tensor(p + "attn_v.weight", _rand(rng, head_dim * n_head_kv, N_EMBD))
        w.add_tensor(p + "attn_output.weight", _rand(rng, N_EMBD, N_EMBD))
        w.add_tensor(p + "ffn_gate.weight", _rand(rng, n_ff, N_EMBD))
        w.add_tensor(p + "ffn_up.weight", _rand(rng, n_ff, N_EMBD))
        w.add_tensor(p + "ffn_down.weight", _rand(rng, N_EMBD, n_ff))
    _finish(w)


def _write_mmproj(path: Path, rng: np.random.Generator) -> None:
    import gguf

    image_size, patch, v_embd, v_ff, n_head = 32, 8, 32, 64, 2
    n_pos = (image_size // patch) ** 2 + 1
    w = gguf.GGUFWriter(str(path), "clip")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.has_llava_projector", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_bool("clip.use_gelu", False)
    w.add_uint32("clip.vision.image_size", image_size)
    w.add_uint32("clip.vision.patch_size", patch)
    w.add_uint32("clip.vision.embedding_length", v_embd)
    w.add_uint32("clip.vision.feed_forward_length", v_ff)
    w.add_uint32("clip.vision.projection_dim", v_embd)
    w.add_uint32("clip.vision.attention.head_count", n_head)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_uint32("clip.vision.block_count", 1)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    w.add_tensor("mm.0.weight", _rand(rng, N_EMBD, v_embd))
    w.add_tensor("mm.0.bias", _rand(rng, N_EMBD))
    w.add_tensor("mm.2.weight", _rand(rng, N_EMBD, N_EMBD))
    w.add_tensor("mm.2.bias", _rand(rng, N_EMBD))
    w.add_tensor("v.class_embd", _rand(rng, v_embd))
    w.add_tensor("v.patch_embd.weight", _rand(rng, v_embd, 3, patch, patch).astype(np.float16))
    w.add_tensor("v.position_embd.weight", _rand(rng, n_pos, v_embd))
    w.add_tensor("v.pre_ln.weight", np.ones(v_embd, dtype=np.float32))
    w.add_tensor("v.pre_ln.bias", np.zeros(v_embd, dtype=np.float32))
    p = "v.blk.0."
    for t in ("attn_q", "attn_k", "attn_v", "attn_out"):
        w.add_tensor(p + t + ".weight", _rand(rng, v_embd, v_embd))
        w.add_tensor(p + t + ".bias", _rand(rng, v_embd))
    for t in ("ln1", "ln2"):
        w.add_tensor(p + t + ".weight", np.ones(v_embd, dtype=np.float32))
        w.add_tensor(p + t + ".bias", np.zeros(v_embd, dtype=np.float32))
    w.add_tensor(p + "ffn_up.weight", _rand(rng, v_ff, v_embd))
    w.add_tensor(p + "ffn_up.bias", _rand(rng, v_ff))
    w.add_tensor(p + "ffn_down.weight", _rand(rng, v_embd, v_ff))
    w.add_tensor(p + "ffn_down.bias", _rand(rng, v_embd))
    _finish(w)


def _write_bert(path: Path, rng: np.random.Generator) -> None:
    import gguf

    words = sorted({w.strip(".,?").lower() for w in CORPUS.split() if w.strip(".,?")})
    pieces = words + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijklmnopqrstuvwxyz0123456789.,?!")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(dict.fromkeys(pieces))  # unique tokens
    types = [gguf.TokenType.CONTROL] * 5 + [gguf.TokenType.NORMAL] * (len(vocab) - 5)
    n_ctx, n_ff, n_layer, n_head = 256, 128, 2, 4
    w = gguf.GGUFWriter(str(path), "bert")
    w.add_name("tiny-bert-test")
    w.add_context_length(n_ctx)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("bert")
    w.add_token_list(vocab)
    w.add_token_types(types)
    w.add_token_type_count(2)
    w.add_unk_token_id(1)
    w.add_pad_token_id(0)
    w.add_uint32("tokenizer.ggml.cls_token_id", 2)  # older llama.cpp reads cls/sep, newer bos/eos
    w.add_bos_token_id(2)
    w.add_eos_token_id(3)
    w.add_sep_token_id(3)
    w.add_mask_token_id(4)
    w.add_tensor("token_embd.weight", _rand(rng, len(vocab), N_EMBD))
    w.add_tensor("token_types.weight", _rand(rng, 2, N_EMBD))
    w.add_tensor("position_embd.weight", _rand(rng, n_ctx, N_EMBD))
    w.add_tensor("token_embd_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor("token_embd_norm.bias", np.zeros(N_EMBD, dtype=np.float32))
    for i in range(n_layer):
        p = f"blk.{i}."
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(p + t + ".weight", _rand(rng, N_EMBD, N_EMBD))
            w.add_tensor(p + t + ".bias", _rand(rng, N_EMBD))
        for t in ("attn_output_norm", "layer_output_norm"):
            w.add_tensor(p + t + ".weight", np.ones(N_EMBD, dtype=np.float32))
            w.add_tensor(p + t + ".bias", np.zeros(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "ffn_up.weight", _rand(rng, n_ff, N_EMBD))
        w.add_tensor(p + "ffn_up.bias", _rand(rng, n_ff))
        w.add_tensor(p + "ffn_down.weight", _rand(rng, N_EMBD, n_ff))
        w.add_tensor(p + "ffn_down.bias", _rand(rng, N_EMBD))
    _finish(w)


def _finish(w: object) -> None:
    w.write_header_to_file()  # type: ignore[attr-defined]
    w.write_kv_data_to_file()  # type: ignore[attr-defined]
    w.write_tensors_to_file()  # type: ignore[attr-defined]
    w.close()  # type: ignore[attr-defined]


def _atomically(path: Path, write: Callable[[Path, np.random.Generator], None], rng: np.random.Generator) -> None:
    """``write(tmp, rng)`` to a name of this process, then rename it to ``path`` (atomic on one file system)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp, rng)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_tiny_models(folder: Path, seed: int = 1234) -> TinyModels:
    """Write the three fixtures into ``folder`` (deterministic for a given seed) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    models = TinyModels(folder / "tiny-llama.gguf", folder / "tiny-mmproj.gguf", folder / "tiny-bert.gguf")
    _atomically(models.text, _write_text_model, np.random.default_rng(seed))
    _atomically(models.mmproj, _write_mmproj, np.random.default_rng(seed + 1))
    _atomically(models.embedding, _write_bert, np.random.default_rng(seed + 2))
    return models


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python gguf_models.py FOLDER")
    written = write_tiny_models(Path(sys.argv[1]))
    print(written.text, written.mmproj, written.embedding, sep="\n")
