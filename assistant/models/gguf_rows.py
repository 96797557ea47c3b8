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
import weakref
from pathlib import Path
from typing import Any

TENSOR = "token_embd.weight"
SAMPLE = (0, 1, 2, 100, 1000)  # token ids compared with the model's own rows (those under its vocabulary)


class EmbeddingRows:
    """The token-embedding rows of a GGUF file, read on demand."""

    def __init__(self, gguf: Path) -> None:
        import gguf as gguf_py

        reader = gguf_py.GGUFReader(gguf)  # maps the file; only the header's pages are read
        try:
            tensor = next(t for t in reader.tensors if t.name == TENSOR)
        except StopIteration:
            raise ValueError(f"{gguf} has no {TENSOR}") from None
        self.qtype = tensor.tensor_type
        self.hidden, self.vocab = (int(n) for n in tensor.shape[:2])
        block, size = gguf_py.GGML_QUANT_SIZES[self.qtype]
        self.row_bytes = self.hidden // block * size
        self.offset = int(tensor.data_offset)
        del reader, tensor
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
