"""Several replies written together by llama.cpp: one context with a KV stream per sequence.

    seqs = Sequences(gen, n_seq=8)     # made by LlamaCppGenerator.decode_batch on its first batch of 2 or more
    seqs.decode(batch, start)          # every request of `batch` finished (models/batching.py)

A small model's decode step on a CPU is mostly reading the weights once per step: 8 replies in one step
cost little more than one (SmolLM2-135M Q4_1, 2 cores, 1,200-token prompts: 65 tokens/s for one reply,
107 for eight together). Each sequence has its own stream of the cache (`kv_unified` off), so a token
attends to its own reply's cells only; with one shared stream every token attended to all eight prompts'
cells and eight replies wrote no faster than two. The context is made on the first concurrent batch and
kept: its cache holds `n_seq` full contexts (~50 MB each for the embedded model), memory a lone user
never pays. Prompts are read as in a single reply: by transformers through the KV handoff where one is
set (assistant.models.kv_handoff), otherwise by llama.cpp, sequence by sequence; each prompt's last token
alone (its logits are a lone reply's: a request's answer options are scored there, `Request.options`), then
each step's new tokens go through the model as one batch.
"""

from __future__ import annotations

import time
from typing import Any

from assistant.models.batching import Request


class Sequences:
    """A llama.cpp context of `n_seq` sequences on the model of `gen` (the LlamaCppGenerator that owns this
    context: its llama.cpp model, tokens, sampling, adapters and KV handoff), for decoding batches of replies."""

    def __init__(self, gen: Any, n_seq: int) -> None:
        import llama_cpp

        self.gen, self.n_seq = gen, n_seq
        params = type(gen.llm.context_params).from_buffer_copy(gen.llm.context_params)
        params.n_seq_max, params.kv_unified = n_seq, False
        params.n_threads = self.threads = gen.batch_decode_threads
        params.n_ctx = n_seq * gen.llm.n_ctx()  # each stream holds one whole context
        self.ctx = llama_cpp.llama_init_from_model(gen.llm.model, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not make a context of {n_seq} sequences for '{gen.name}'")
        self.n_batch = int(params.n_batch)
        self.batch = llama_cpp.llama_batch_init(max(self.n_batch, n_seq), 0, 1)
        self.adapter: str | None = None
        self.n_threads_batch = int(params.n_threads_batch)
        self._lib = llama_cpp  # still reachable from __del__ at interpreter exit

    def close(self) -> None:
        if self.ctx:
            self._lib.llama_batch_free(self.batch)
            self._lib.llama_free(self.ctx)
            self.ctx = None

    def __del__(self) -> None:
        self.close()

    # ---------------------------------------------------------------- the model
    def activate(self, adapter: str | None) -> None:
        if adapter != self.adapter:
            self.gen.apply_lora(self.ctx, adapter)
            self.adapter = adapter

    def _run(self, tokens: list[tuple[int, int, int]], logits: bool) -> list[Any]:
        """Evaluate (token, position, sequence) triples as one batch; the logits after each when `logits`."""
        import llama_cpp
        import numpy as np

        b = self.batch
        b.n_tokens = len(tokens)
        for i, (token, pos, seq) in enumerate(tokens):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
            b.seq_id[i][0] = seq
        if (status := llama_cpp.llama_decode(self.ctx, b)) != 0:
            raise RuntimeError(f"llama.cpp failed to decode a batch of {len(tokens)} tokens (status {status})")
        if not logits:
            return []
        n_vocab = self.gen.llm.n_vocab()
        return [np.array(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.ctx, i), shape=(n_vocab,)),
                         dtype=np.float64) for i in range(len(tokens))]

    def _read_prompt(self, seq: int, ids: list[int], adapter: str | None) -> None:
        """Sequence `seq` holds `ids` at positions 0..n-1."""
        handoff = self.gen.handoff
        if handoff is not None and len(ids) >= handoff.min_tokens and handoff.write(self.ctx, seq, self.n_seq, ids,
                                                                                   adapter):
            return
        for start in range(0, len(ids), self.n_batch):
            chunk = ids[start : start + self.n_batch]
            self._run([(t, start + i, seq) for i, t in enumerate(chunk)], logits=False)

    # ---------------------------------------------------------------- a batch
    def decode(self, batch: list[Request], start: float) -> None:
        """Decode every request of `batch` (one adapter, at most `n_seq`) and finish each, its options
        scored first where it has some. The caller holds the generator's lock."""
        import llama_cpp
        import numpy as np

        gen = self.gen
        memory = llama_cpp.llama_get_memory(self.ctx)
        llama_cpp.llama_memory_clear(memory, True)
        self.activate(batch[0].adapter)
        # a step of several replies runs on n_threads_batch; a step of one (the last reply still being
        # written) on half the cores under the app's load, on all of them for an evaluation's batch
        threads = gen.llm.context_params.n_threads if all(r.exclusive for r in batch) else gen.batch_decode_threads
        if threads != self.threads:
            llama_cpp.llama_set_n_threads(self.ctx, threads, self.n_threads_batch)
            self.threads = threads
        logits: dict[int, Any] = {}
        for seq, r in enumerate(batch):
            if len(r.ids) > 1:
                self._read_prompt(seq, r.ids[:-1], r.adapter)
            # each prompt's last token on its own, as for a reply written alone (llama.cpp's logits differ
            # slightly between a batch and a single-token step): options score as in score_options, and a
            # reply's first token is the one it would have alone
            logits[seq] = self._run([(r.ids[-1], len(r.ids) - 1, seq)], True)[0]
            if r.options:
                r.scores = self._score(memory, seq, r.ids, r.options, logits[seq])
        eos, rng = set(gen.eos_token_ids), np.random.default_rng()
        new: list[list[int]] = [[] for _ in batch]
        while logits:
            step: list[tuple[int, int, int]] = []
            for seq, row in logits.items():
                r = batch[seq]
                token = gen.next_token(row, new[seq], r.temperature, rng)
                new[seq].append(token)
                if r.streamer is not None:
                    r.streamer.put_ids([token])
                if r.ended(new[seq], eos, gen.decode):
                    r.finish(new[seq], time.perf_counter() - start)
                else:
                    step.append((token, len(r.ids) + len(new[seq]) - 1, seq))
            logits = dict(zip((seq for _, _, seq in step), self._run(step, True), strict=True)) if step else {}
        llama_cpp.llama_memory_clear(memory, True)

    def _score(self, memory: Any, seq: int, ids: list[int], options: list[list[int]], first: Any) -> list[float]:
        """The options' log-likelihoods after the prompt `ids` that sequence `seq` holds (the logits after it:
        `first`); an option's tokens are read after the prompt and removed again."""
        import llama_cpp

        from assistant.models.scoring import option_log_likelihoods

        def later(toks: list[int]) -> list[Any]:
            out = [self._run([(t, len(ids) + i, seq)], True)[0] for i, t in enumerate(toks[:-1])]
            llama_cpp.llama_memory_seq_rm(memory, seq, len(ids), -1)
            return out

        return option_log_likelihoods(first, options, later)


__all__ = ["Sequences"]
