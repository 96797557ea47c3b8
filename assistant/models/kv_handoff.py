"""A prompt read by transformers, its reply written by llama.cpp: the keys and values transformers computes
for the prompt, written into llama.cpp's KV cache, so that each engine does the phase it is fastest at.

    handoff = KVHandoff.check(decoder, reader)    # None where the two caches do not agree (checked once)
    handoff.fill(ids[:-1], adapter)               # the cache of `decoder` now holds the prefix

On a CPU with AMX, transformers in bf16 reads a ~1,200-token RAG prompt about 10x faster than llama.cpp,
while llama.cpp writes ~3x faster (bench/generate.py). Both run the same weights (the GGUF's), so the cache
one computes is the cache the other would have computed, up to rounding: the keys and values of every
layer go into llama.cpp's sequence-state format (llama_state_seq_set_data: a magic number, the sequence id,
one stream, the cells' positions, then per layer the keys as rows of the cache's type and the values,
row-wise or transposed as the context keeps them). llama.cpp's Llama-family GGUFs store the query and key
weights permuted so that its rotary embedding rotates adjacent pairs where transformers rotates the two
halves of a head: its keys are transformers' with each head's dimensions interleaved. The layout is not
taken on trust: `check` reads a short prompt with both engines and compares llama.cpp's own cache with the
one built here, layer by layer, and the handoff is used only when every layer agrees (cosine >= AGREE).
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from typing import Any

from assistant.models.generator import trim_heap

MAGIC = 0xAF143CD8  # llama.cpp's sequence-state magic number
AGREE = 0.99  # least cosine similarity of every layer's keys and values between the two engines' caches
MIN_TOKENS = 32  # a shorter uncached prompt is read by llama.cpp itself
_PROBE = "The patient was treated with aspirin and monitored for bleeding over the following weeks."


@dataclass(frozen=True)
class CacheLayout:
    """How a llama.cpp context keeps its cache: per layer, the keys' type and row size and the values'
    type and element size, and whether the values are transposed."""

    v_trans: bool
    keys: tuple[tuple[int, int], ...]  # (ggml type, bytes per cell) per layer
    values: tuple[tuple[int, int, int], ...]  # (ggml type, bytes per element or row, width) per layer


def _state(llm: Any) -> bytes:
    import llama_cpp

    size = llama_cpp.llama_state_seq_get_size(llm.ctx, 0)
    buf = (ctypes.c_uint8 * size)()
    return bytes(buf[: llama_cpp.llama_state_seq_get_data(llm.ctx, buf, size, 0)])


def _parse(blob: bytes) -> tuple[CacheLayout, list[Any], list[Any]]:
    """The layout and the per-layer keys [cells, width] and values [cells, width] of a sequence state."""
    import numpy as np

    at = 0

    def read(fmt: str) -> tuple[Any, ...]:
        nonlocal at
        out = struct.unpack_from(fmt, blob, at)
        at += struct.calcsize(fmt)
        return out

    magic, _, streams, cells = read("<IiII")
    if magic != MAGIC or streams != 1:
        raise ValueError(f"unexpected llama.cpp sequence state (magic {magic:#x}, {streams} streams)")
    for _ in range(cells):
        _, n_seq = read("<iI")
        read(f"<{n_seq}i")
    v_trans, layers = read("<II")
    keys, values, k_layout, v_layout = [], [], [], []
    for _ in range(layers):
        k_type, row = read("<iQ")
        keys.append(np.frombuffer(blob, np.float16, cells * row // 2, at).reshape(cells, -1) if k_type == 1 else None)
        k_layout.append((k_type, row))
        at += row * cells
    for _ in range(layers):
        if v_trans:
            v_type, size, width = read("<iII")
            data = np.frombuffer(blob, np.float16, cells * width, at).reshape(width, cells).T if v_type == 1 else None
            at += size * width * cells
        else:
            v_type, size = read("<iQ")
            width = size // 2
            data = np.frombuffer(blob, np.float16, cells * width, at).reshape(cells, width) if v_type == 1 else None
            at += size * cells
        values.append(data)
        v_layout.append((v_type, size, width))
    return CacheLayout(bool(v_trans), tuple(k_layout), tuple(v_layout)), keys, values


def _state_buffer(layout: CacheLayout, cells: int, streams: int = 1) -> tuple[Any, list[Any], list[Any]]:
    """A sequence state for `cells` cells at 0..n-1 in a context of `streams` KV streams (one per sequence,
    or one shared), and float16 views into it where each layer's keys ([cells, width]) and values ([cells,
    width], or [width, cells] where the context keeps them transposed) go. The cells go in the first
    stream's section, and llama.cpp puts them in the stream of the sequence they are set to. One buffer,
    filled in place: the prompt's cache is never copied whole (it is ~30 MB for a RAG prompt)."""
    import numpy as np

    head = [struct.pack("<IiII", MAGIC, 0, streams, cells),
            np.rec.fromarrays([np.arange(cells, dtype=np.int32), np.ones(cells, np.uint32),
                               np.zeros(cells, np.int32)]).tobytes(),
            struct.pack("<II", int(layout.v_trans), len(layout.keys))]
    sections: list[tuple[bytes, tuple[int, int]]] = []  # (header, (rows, columns) of float16)
    for k_type, row in layout.keys:
        sections.append((struct.pack("<iQ", k_type, row), (cells, row // 2)))
    for v_type, size, width in layout.values:
        sections.append((struct.pack("<iII", v_type, size, width), (width, cells)) if layout.v_trans
                        else (struct.pack("<iQ", v_type, size), (cells, size // 2)))
    tail = struct.pack(f"<{streams - 1}I", *[0] * (streams - 1))  # the other streams: no cells
    total = sum(map(len, head)) + sum(len(h) + 2 * r * c for h, (r, c) in sections) + len(tail)
    buf = (ctypes.c_uint8 * total)()
    raw = np.frombuffer(memoryview(buf).cast("B"), np.uint8)
    at = 0

    def put(data: bytes) -> None:
        nonlocal at
        raw[at:at + len(data)] = np.frombuffer(data, np.uint8)
        at += len(data)

    for part in head:
        put(part)
    views = []
    for header, (rows, columns) in sections:
        put(header)
        views.append(raw[at:at + 2 * rows * columns].view(np.float16).reshape(rows, columns))
        at += 2 * rows * columns
    put(tail)
    return buf, views[:len(layout.keys)], views[len(layout.keys):]


class KVHandoff:
    """Fills `decoder`'s (llama.cpp) cache with the keys and values `reader` (transformers) computes."""

    min_tokens = MIN_TOKENS

    def __init__(self, decoder: Any, reader: Any, layout: CacheLayout, interleave: bool) -> None:
        self.decoder, self.reader, self.layout, self.interleave = decoder, reader, layout, interleave

    def _state(self, ids: list[int], streams: int = 1) -> Any:
        """The sequence state (a ctypes buffer) of `ids` as the reader computes it, for a context of `streams`
        KV streams: its keys and values written layer by layer into the buffer, as float16."""
        import torch

        with torch.inference_mode():
            cache = self.reader.read_prompt(ids)
            trim_heap()  # the pass's freed activations (~70 MB for a RAG prompt), before the state's buffer
            buf, key_slots, value_slots = _state_buffer(self.layout, len(ids), streams)
            for layer, k_slot, v_slot in zip(cache.layers, key_slots, value_slots, strict=True):
                k = layer.keys[0].to(torch.float16)  # [heads, cells, dim]
                heads, cells, dim = k.shape
                if self.interleave:  # each head's two halves -> adjacent pairs, as llama.cpp's rotation reads them
                    k = k.reshape(heads, cells, 2, dim // 2).transpose(2, 3)
                k_slot[...] = k.reshape(heads, cells, dim).transpose(0, 1).reshape(cells, heads * dim).cpu().numpy()
                v = layer.values[0].to(torch.float16).transpose(0, 1).reshape(cells, -1).cpu().numpy()
                v_slot[...] = v.T if self.layout.v_trans else v
                layer.keys = layer.values = None  # copied: let it go
        return buf

    def write(self, ctx: Any, seq: int, streams: int, ids: list[int], adapter: str | None) -> bool:
        """Put the cache of `ids` (with `adapter`) into sequence `seq` of llama.cpp context `ctx` (of
        `streams` KV streams) as its tokens 0..n-1; False (nothing done) when the reader lacks the adapter.
        Callers hold the decoder's lock."""
        import llama_cpp

        if adapter is not None and adapter not in self.reader.adapters:
            return False  # e.g. a GGUF LoRA given to llama.cpp alone
        with self.reader.lock:
            self.reader.activate(adapter)
            state = self._state(ids, streams)
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), seq, -1, -1)
        if llama_cpp.llama_state_seq_set_data(ctx, state, len(state), seq) != len(state):
            raise RuntimeError("llama.cpp did not take the prompt's keys and values")
        return True

    def fill(self, ids: list[int], adapter: str | None) -> bool:
        """`write` into the decoder's own context (one sequence), which then holds `ids` as its cached prompt."""
        import numpy as np

        llm = self.decoder.llm
        llm.n_tokens = 0
        if not self.write(llm.ctx, 0, 1, ids, adapter):
            return False
        llm.input_ids[: len(ids)] = np.asarray(ids)
        llm.n_tokens = len(ids)
        return True

    @classmethod
    def check(cls, decoder: Any, reader: Any) -> KVHandoff | None:
        """The handoff between these two engines, when llama.cpp's own cache of a short prompt and the one
        built from transformers' agree on every layer; None otherwise (a layout or model this does not
        know). Takes both locks."""
        import llama_cpp
        import numpy as np

        ids = decoder.encode(_PROBE)
        with decoder.lock, reader.lock:
            decoder.activate(None)
            reader.activate(None)
            llm = decoder.llm
            llm.n_tokens = 0
            llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm.ctx), -1, -1, -1)
            try:
                llm.eval(ids)
                layout, own_k, own_v = _parse(_state(llm))
            except (ValueError, RuntimeError, struct.error):
                return None
            finally:
                llm.n_tokens = 0
            if any(k is None for k in own_k) or any(v is None for v in own_v):
                return None  # a quantized cache: not written here
            interleave = llama_cpp.llama_model_rope_type(llm.model) == llama_cpp.LLAMA_ROPE_TYPE_NORM
            handoff = cls(decoder, reader, layout, interleave)
            _, keys, values = _parse(bytes(handoff._state(ids)))

        def cosine(a: Any, b: Any) -> float:
            a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
            return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))

        pairs = list(zip(own_k, keys, strict=False)) + list(zip(own_v, values, strict=False))
        if len(keys) != len(own_k) or any(a.shape != b.shape or cosine(a, b) < AGREE for a, b in pairs):
            return None
        return handoff


__all__ = ["AGREE", "MIN_TOKENS", "CacheLayout", "KVHandoff"]
