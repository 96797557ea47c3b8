"""A prompt's token embeddings read from the GGUF file, for transformers reading prompts beside llama.cpp.

    rows = EmbeddingRows.matching(gguf, model)   # None unless they are the model's own rows, bit for bit
    embeds = rows.embed(ids, model)              # [1, len(ids), hidden] in the model's dtype and device

Where transformers reads prompts for llama.cpp (assistant.models.phased), its weights were converted from the
GGUF llama.cpp runs. Its embedding matrix (57 MB in bf16 for the embedded model) is mapped from the weights
file, and a prompt's ~1,000 tokens fault most of its pages in (the kernel maps 64 KB around each row read),
memory the process then keeps. The same rows are in the GGUF: read with `pread` (not mapped, so nothing
stays resident) and dequantized as the conversion did, they are the model's rows exactly; `matching`
checks that on a sample, and the embedding matrix is then left unread while prompts are read.
"""

from __future__ import annotations

import os
import struct
import weakref
from pathlib import Path
from typing import Any

TENSOR = "token_embd.weight"
MAX_HEADER = 1 << 28  # a header (metadata and tensor table) larger than this is taken for a damaged file
SAMPLE = (0, 1, 2, 100, 1000)  # token ids compared with the model's own rows (those under its vocabulary)


def _tensor_info(gguf: Path, name: str) -> tuple[int, tuple[int, int], int]:
    """(ggml type, (columns, rows), file offset of the data) of tensor `name`, from the GGUF header read
    directly: gguf-py's reader parses every metadata value (the vocabulary: seconds), this skips them."""
    with open(gguf, "rb") as f:
        buf = f.read(1 << 20)
        while True:
            try:
                return _parse_header(buf, name)
            except struct.error:  # the header goes on past what was read
                more = f.read(len(buf)) if len(buf) < MAX_HEADER else b""
                if not more:
                    raise ValueError(f"{gguf}: no complete GGUF header in its first {len(buf)} bytes") from None
                buf += more


def _parse_header(buf: bytes, name: str) -> tuple[int, tuple[int, int], int]:
    from gguf import GGUFValueType as T

    scalar = {T.UINT8: 1, T.INT8: 1, T.BOOL: 1, T.UINT16: 2, T.INT16: 2, T.UINT32: 4, T.INT32: 4, T.FLOAT32: 4,
              T.UINT64: 8, T.INT64: 8, T.FLOAT64: 8}  # byte sizes
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
    if magic != b"GGUF" or version < 2:
        raise ValueError("not a GGUF file of version 2 or later")
    pos, alignment = 24, 32

    def string() -> bytes:
        nonlocal pos
        (n,) = struct.unpack_from("<Q", buf, pos)
        if pos + 8 + n > len(buf):
            raise struct.error("past the buffer")
        pos += 8 + n
        return buf[pos - n : pos]

    def skip(kind: int, count: int = 1) -> None:
        nonlocal pos
        if kind == T.STRING:
            for _ in range(count):
                string()
        elif kind in scalar:
            pos += scalar[T(kind)] * count
        else:
            raise ValueError(f"unknown GGUF value type {kind}")

    for _ in range(n_kv):
        key = string()
        (kind,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        if kind == T.ARRAY:
            item, count = struct.unpack_from("<IQ", buf, pos)
            pos += 12
            skip(item, count)
        elif key == b"general.alignment" and kind == T.UINT32:
            (alignment,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            skip(kind)
    found = None
    for _ in range(n_tensors):
        tensor = string()
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
        qtype, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
        pos += 4 + 8 * n_dims + 12
        if tensor == name.encode() and n_dims == 2:
            found = (qtype, (int(dims[0]), int(dims[1])), offset)
    if found is None:
        raise ValueError(f"no 2-D tensor {name}")
    start = -(-pos // alignment) * alignment  # the data section begins at the next multiple of the alignment
    return found[0], found[1], start + found[2]


class EmbeddingRows:
    """The token-embedding rows of a GGUF file, read on demand."""

    def __init__(self, gguf: Path) -> None:
        import gguf as gguf_py

        qtype, (self.hidden, self.vocab), self.offset = _tensor_info(gguf, TENSOR)
        self.qtype = gguf_py.GGMLQuantizationType(qtype)
        block, size = gguf_py.GGML_QUANT_SIZES[self.qtype]
        self.row_bytes = self.hidden // block * size
        self.fd = os.open(gguf, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)

    def rows(self, ids: Any) -> Any:
        """float32 [len(ids), hidden] for distinct token ids `ids` (a numpy array)."""
        import numpy as np
        from gguf.quants import dequantize

        raw = np.empty((len(ids), self.row_bytes), np.uint8)
        for i, token in enumerate(ids.tolist()):
            raw[i] = np.frombuffer(os.pread(self.fd, self.row_bytes, self.offset + token * self.row_bytes), np.uint8)
        return dequantize(raw, self.qtype).reshape(len(ids), self.hidden)

    def embed(self, ids: Any, model: Any) -> Any:
        """The input embeddings of token ids `ids`, [1, n, hidden], in `model`'s embedding dtype and device."""
        import numpy as np
        import torch

        unique, where = np.unique(np.asarray(ids, dtype=np.int64), return_inverse=True)
        weight = model.get_input_embeddings().weight
        table = torch.from_numpy(self.rows(unique)).to(device=weight.device, dtype=weight.dtype)
        return table[torch.from_numpy(where).to(weight.device)].unsqueeze(0)

    @classmethod
    def matching(cls, gguf: Path | None, model: Any) -> EmbeddingRows | None:
        """The rows of `gguf` where they equal `model`'s plain embedding (sampled), else None."""
        import numpy as np
        import torch

        embedding = model.get_input_embeddings()
        if gguf is None or not isinstance(embedding, torch.nn.Embedding):
            return None
        try:
            rows = cls(gguf)
        except (OSError, ValueError, KeyError, NotImplementedError):
            return None
        if (rows.vocab, rows.hidden) != tuple(embedding.weight.shape):
            return None
        sample = np.array([t for t in SAMPLE if t < rows.vocab])
        try:
            ours = rows.embed(sample, model)[0]
        except (OSError, ValueError, NotImplementedError):  # a type gguf-py cannot dequantize
            return None
        with torch.inference_mode():
            theirs = embedding(torch.from_numpy(sample).to(embedding.weight.device))
        return rows if torch.equal(ours, theirs) else None


__all__ = ["EmbeddingRows"]
