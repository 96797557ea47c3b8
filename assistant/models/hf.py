"""The transformers backend: a model folder (or cached hub id, or a GGUF converted once) with its tokenizer.

    gen = TransformersGenerator(name, model, tokenizer, config, path=folder)   # see registry.load_generator

On a CPU the weights are fp32 or bf16 (`generation.dtype`; auto picks bf16 only where the CPU has AMX or
AVX-512-BF16 and a quick check shows it faster, see models/dtype.py); on CUDA bf16. peft adapters are
attached to `model` in place, without reloading the base (`gen.load_adapter(path, "medical-sft")`), then
chosen per call under `gen.lock` with the generation, so app threads never see each other's adapter.
Questions waiting at the same moment are decoded as one batch (models/batching.py, `generation.max_batch`);
a question alone, answered greedily, drafts tokens it can copy from its prompt (prompt lookup decoding).
Adapters go through peft's own API (`PeftModel`), not transformers' peft integration: that integration
checks the installed peft version on every `set_adapter` and has refused a working peft release.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.config import GenerationConfig
from assistant.errors import InputError, ModelUnavailableError
from assistant.models.batching import Batcher, BatchRows, Request
from assistant.models.generator import (
    END_OF_TURN,
    InProcessGenerator,
    Message,
    Prompt,
    as_messages,
    plain_render,
)
from assistant.models.streaming import StopCriteria


class TransformersGenerator(InProcessGenerator):
    """A model + tokenizer in eval mode; generation is serialised by `lock` (torch is not re-entrant)."""

    backend = "transformers"

    def __init__(
        self,
        name: str,
        model: Any,
        tokenizer: Any,
        config: GenerationConfig,
        *,
        path: Path | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        from transformers import GenerationConfig as HFGenerationConfig

        text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        max_positions = int(getattr(text_config, "max_position_embeddings", 0) or 1 << 30)
        super().__init__(name, config, path=path, context_length=max_positions, lock=lock)
        self.model = model
        self.tokenizer = tokenizer
        self._peft: Any = None  # the peft.PeftModel wrapping `model` once an adapter is attached
        # where set (models/gguf_rows.py), prompts' token embeddings come from the GGUF file, not the matrix
        self.prompt_rows: Any = None
        self.eos_token_ids = self._end_tokens()
        pad = tokenizer.pad_token_id
        self.pad_token_id: int = pad if pad is not None else self.eos_token_ids[0]
        # Decoding is set by GenerationConfig alone: a hub model's generation_config.json (do_sample,
        # top_p, ...) would otherwise fill every unset generate() argument behind our back.
        model.generation_config = HFGenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=self.eos_token_ids, pad_token_id=self.pad_token_id
        )
        self.batcher = Batcher(self.lock, self.decode_batch, max_batch=config.max_batch,
                               max_tokens=config.batch_tokens)

    def _end_tokens(self) -> list[int]:
        ids: list[int] = []
        if self.tokenizer.eos_token_id is not None:
            ids.append(int(self.tokenizer.eos_token_id))
        vocab = self.tokenizer.get_vocab()
        ids += [int(vocab[t]) for t in END_OF_TURN if t in vocab]
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids += [configured] if isinstance(configured, int) else list(configured or [])
        if not ids:
            raise ModelUnavailableError(
                f"generation model '{self.name}' has no end-of-sequence token in its tokenizer to stop generation"
            )
        return list(dict.fromkeys(ids))

    # ---------------------------------------------------------------- text <-> tokens
    def engine(self) -> dict[str, Any]:
        param = next(self.model.parameters())
        found = {"dtype": str(param.dtype).removeprefix("torch."), "device": param.device.type}
        # drafted tokens are checked in one pass: greedy replies can differ from one-token steps by rounding
        return found | ({"prompt_lookup": self.config.prompt_lookup_tokens} if self.config.prompt_lookup_tokens else {})

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for `messages` in the model's chat template (plain "role: content" without one)."""
        if not getattr(self.tokenizer, "chat_template", None):
            return plain_render(messages, add_generation_prompt=add_generation_prompt)
        msgs = as_messages(messages)
        return str(self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_generation_prompt))

    def encode(self, text: str) -> list[int]:
        # No added BOS/EOS: rendered chat text already carries the special tokens the template wants.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def truncate(self, text: str, max_tokens: int) -> str:
        """`text` cut to at most `max_tokens` tokens, at a token boundary, keeping the original characters."""
        if max_tokens <= 0:
            return ""
        try:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            offsets = enc["offset_mapping"]
        except (NotImplementedError, TypeError, ValueError):  # slow tokenizers have no offsets
            ids = self.encode(text)
            return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])
        if len(offsets) <= max_tokens:
            return text
        # Cut where the first dropped token starts; a character split over byte tokens is dropped whole.
        n = max_tokens
        cut = text[: offsets[n][0]]
        while n > 0 and self.count_tokens(cut) > max_tokens:  # re-tokenizing a prefix can differ slightly
            n -= 1
            cut = text[: offsets[n][0]]
        return cut

    # ---------------------------------------------------------------- adapters
    @property
    def adapters(self) -> list[str]:
        """Names of the peft adapters attached to `model` (with `load_adapter`)."""
        return list(self._peft.peft_config) if self._peft is not None else []

    def load_adapter(self, path: Path | str, name: str) -> None:
        """Attach the peft adapter in folder `path` under `name`; the base weights stay as they are."""
        from peft import PeftModel

        with self.lock:
            if name in self.adapters:
                raise InputError(f"an adapter named '{name}' is already attached: delete it first")
            if self._peft is None:
                # Wraps `model` and injects the LoRA layers into it in place: `model` keeps serving.
                self._peft = PeftModel.from_pretrained(self.model, str(path), adapter_name=name, is_trainable=False)
            else:
                self._peft.load_adapter(str(path), adapter_name=name, is_trainable=False)
            self.model.eval()

    def delete_adapter(self, name: str) -> None:
        """Detach adapter `name` (the last one detached leaves the plain base model)."""
        with self.lock:
            self.check_adapter(name)
            if self.adapters == [name]:
                self._peft.unload()  # restores the base layers in `model`, in place
                self._peft = None
            else:
                self._peft.delete_adapter(name)
            self.adapter_sources.pop(name, None)

    def activate(self, adapter: str | None) -> None:
        """Select `adapter` (None: the plain base) for the next forward passes. Callers hold `self.lock`."""
        self.check_adapter(adapter)
        if adapter is not None:
            self._peft.set_adapter(adapter)
            self._peft.base_model.enable_adapter_layers()
        elif self._peft is not None:
            self._peft.base_model.disable_adapter_layers()

    # ---------------------------------------------------------------- generation
    def decode_batch(self, batch: list[Request], start: float) -> None:
        """Decode every request of `batch` (one adapter, one temperature) and finish each. Callers hold `lock`."""
        import torch
        from transformers import StoppingCriteriaList

        if len(batch) == 1:
            self.decode_alone(batch[0], start)
            return
        self.activate(batch[0].adapter)
        # Left padding: every reply starts at the same column; the mask hides the pads (and sets positions).
        width = max(len(r.ids) for r in batch)
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, r in enumerate(batch):
            input_ids[row, width - len(r.ids) :] = torch.tensor(r.ids)
            mask[row, width - len(r.ids) :] = 1
        device = self.model.device
        with torch.inference_mode():
            cache = self._read_prompts(batch, width)
        prefix = {} if cache is None else {"cache": cache}
        rows = BatchRows(batch, width, set(self.eos_token_ids), self.decode, start)
        kwargs = self._decoding(width, max(r.max_new for r in batch), batch[0].temperature)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                      stopping_criteria=StoppingCriteriaList([rows]), streamer=rows, **prefix, **kwargs)
        rows.finish_rest(out)

    def _decoding(self, prompt_width: int, max_new: int, temp: float) -> dict[str, Any]:
        """generate() settings of a reply (or batch of replies) after `prompt_width` prompt columns."""
        from transformers import LogitsProcessorList

        from assistant.models.streaming import AnswerRepetitionPenalty

        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": temp > 0}
        if temp > 0:
            kwargs["temperature"] = temp
        if self.config.repetition_penalty != 1.0:
            kwargs["logits_processor"] = LogitsProcessorList(
                [AnswerRepetitionPenalty(self.config.repetition_penalty, prompt_width)])
        return kwargs

    def read_prompt(self, ids: Sequence[int]) -> Any:
        """The KV cache of `ids`, computed by the model's decoder stack alone. Without the LM head nothing is
        paged in that a prompt's keys and values do not need: for tied embeddings (the embedded model) the
        head is the whole embedding matrix, 57 MB in bf16, of which a prompt reads only its tokens' rows,
        and with `prompt_rows` not even those (they are read from the GGUF file: models/gguf_rows.py).
        Callers hold `self.lock`, in torch.inference_mode()."""
        import torch

        try:
            body = self.model.get_decoder()
        except (AttributeError, ValueError, NotImplementedError):  # get_decoder raises for a few exotic models
            body = self.model
        head = {} if body is not self.model else {"logits_to_keep": 1}
        rows = self.prompt_rows
        if rows is not None and isinstance(self.model.get_input_embeddings(), torch.nn.Embedding):  # not adapted
            out = body(inputs_embeds=rows.embed(ids, self.model), use_cache=True, **head)
        else:
            out = body(input_ids=torch.tensor([list(ids)], device=self.model.device), use_cache=True, **head)
        return out["cache"] if "cache" in out else out.past_key_values  # noqa: SIM401 (the old name warns)

    def _read_prompts(self, batch: list[Request], width: int) -> Any:
        """The KV cache of every prompt but its last token, read one prompt at a time (no pads to compute,
        no padded attention to hold in memory) and joined left-padded: generate() then reads only the last
        column. None where the cache is not the plain per-layer kind (sliding windows ...): generate() reads
        the padded prompts itself."""
        import torch
        from transformers.cache_utils import DynamicCache, DynamicLayer

        if min(len(r.ids) for r in batch) < 2:
            return None
        caches = []
        for r in batch:
            cache = self.read_prompt(r.ids[:-1])
            if type(cache) is not DynamicCache or any(type(layer) is not DynamicLayer for layer in cache.layers):
                return None
            caches.append(cache)
        joined = DynamicCache()
        for index in range(len(caches[0].layers)):
            keys, values = [], []
            for r, cache in zip(batch, caches, strict=True):
                layer: Any = cache.layers[index]
                pad = width - len(r.ids)  # zeros at the masked positions
                keys.append(torch.nn.functional.pad(layer.keys, (0, 0, pad, 0)))
                values.append(torch.nn.functional.pad(layer.values, (0, 0, pad, 0)))
            joined.update(torch.cat(keys), torch.cat(values), index)
        return joined

    def decode_tokens(
        self,
        ids: list[int],
        max_new_tokens: int | None,
        temperature: float | None,
        stop: Sequence[str],
        *,
        streamer: Any = None,
        cancel: threading.Event | None = None,
    ) -> list[int]:
        """Generated token ids (the prompt excluded). Callers hold `self.lock`."""
        import torch
        from transformers import StoppingCriteriaList

        temp = self.temperature(temperature)
        kwargs = self._decoding(len(ids), self.max_new(len(ids), max_new_tokens), temp)
        if temp == 0 and self.config.prompt_lookup_tokens:
            kwargs["prompt_lookup_num_tokens"] = self.config.prompt_lookup_tokens
        criteria = [StopCriteria(self.tokenizer, len(ids), [s for s in stop if s], cancel)]
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.model.device)
        # inference_mode is per thread: the streaming worker needs its own.
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                stopping_criteria=StoppingCriteriaList(criteria),
                streamer=streamer,
                **kwargs,
            )
        return list(out[0, len(ids) :].tolist())

    # ---------------------------------------------------------------- scoring
    def score_options(
        self, messages: Prompt, options: Sequence[str], *, normalize: bool = False, adapter: str | None = None
    ) -> list[float]:
        """Log-likelihood of each option as the assistant's reply (see assistant.models.scoring)."""
        from assistant.models.scoring import score_options

        return score_options(self, messages, options, normalize=normalize, adapter=adapter)
