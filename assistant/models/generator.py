"""The Generator: one loaded causal LM with its tokenizer, for chat generation, streaming and option scoring.

    from assistant.models import load_generator
    gen = load_generator(config)                      # loaded once per process, shared by app threads
    msgs = [{"role": "user", "content": "Is aspirin an NSAID?"}]
    prompt = gen.encode_prompt(msgs)                  # rendered in the chat template and counted, once
    out = gen.generate(prompt)                        # Generation(text, prompt_tokens, output_tokens, ...)
    stream = gen.stream(prompt)
    for piece in stream: print(piece, end="")         # then stream.result is the same Generation
    gen.score_options(prompt, ["yes", "no", "maybe"]) # log-likelihood of each option as the reply

`gen.model` is the plain transformers model. peft adapters are attached to it in place, without
reloading the base (`gen.load_adapter(path, "medical-sft")`), then chosen per call:
`gen.generate(msgs, adapter="medical-sft")`; `adapter=None` runs the base with adapters disabled.
The switch happens under `gen.lock`, with the generation, so app threads never see each other's adapter.
Adapters go through peft's own API (`PeftModel`), not transformers' peft integration: that integration
checks the installed peft version on every `set_adapter` and has refused a working peft release.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.config import GenerationConfig
from assistant.errors import InputError, ModelUnavailableError, unknown
from assistant.models.streaming import FinishReason, Generation, GenerationStream, StopCriteria, finished

Message = Mapping[str, str]


@dataclass(frozen=True)
class EncodedPrompt:
    """A prompt rendered in the model's chat template, with its token ids: render and count once, then
    generate, stream or score options on it."""

    text: str
    ids: list[int]


# Chat messages, a string that is already rendered (e.g. with a prefilled reply), or an encoded prompt.
Prompt = str | Sequence[Message] | EncodedPrompt

# End-of-turn tokens of common chat formats; those in the vocabulary also stop generation.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


class Generator:
    """A model + tokenizer on CPU in eval mode; generation is serialised by `lock` (torch is not re-entrant)."""

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

        self.name = name
        self.path = path
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.lock = lock or threading.RLock()
        self.adapter_sources: dict[str, str] = {}  # adapter name -> where (and which version) it was loaded from
        self._peft: Any = None  # the peft.PeftModel wrapping `model` once an adapter is attached
        text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        max_positions = int(getattr(text_config, "max_position_embeddings", 0) or 1 << 30)
        self.context_length: int = min(max_positions, config.max_input_tokens + config.max_new_tokens)
        # The prompt needs room for at least one new token.
        self.max_input_tokens: int = min(config.max_input_tokens, self.context_length - 1)
        self.eos_token_ids = self._end_tokens()
        pad = tokenizer.pad_token_id
        self.pad_token_id: int = pad if pad is not None else self.eos_token_ids[0]
        # Decoding is set by GenerationConfig alone: a hub model's generation_config.json (do_sample,
        # top_p, ...) would otherwise fill every unset generate() argument behind our back.
        model.generation_config = HFGenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=self.eos_token_ids, pad_token_id=self.pad_token_id
        )

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
    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for `messages` in the model's chat template (plain "role: content" without one)."""
        if isinstance(messages, str) or not messages:
            raise InputError("messages must be a non-empty list of {'role': ..., 'content': ...}")
        msgs = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            return str(
                self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_generation_prompt)
            )
        text = "\n".join(f"{m['role']}: {m['content']}" for m in msgs)
        return text + ("\nassistant:" if add_generation_prompt else "")

    def encode(self, text: str) -> list[int]:
        # No added BOS/EOS: rendered chat text already carries the special tokens the template wants.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

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

    def encode_prompt(self, prompt: Prompt, *, check: bool = True) -> EncodedPrompt:
        """`prompt` rendered (messages) and tokenized; with `check`, an InputError when it does not fit the
        model's input budget (see check_prompt)."""
        if isinstance(prompt, EncodedPrompt):
            encoded = prompt
        else:
            text = prompt if isinstance(prompt, str) else self.render(prompt)
            encoded = EncodedPrompt(text, self.encode(text))
        return self.check_prompt(encoded) if check else encoded

    def check_prompt(self, prompt: EncodedPrompt) -> EncodedPrompt:
        """`prompt` itself, or an InputError when it is empty or longer than the model reads."""
        n = len(prompt.ids)
        if n > self.max_input_tokens:
            limit = (
                "generation.max_input_tokens"
                if self.max_input_tokens == self.config.max_input_tokens
                else "the model's context"
            )
            raise InputError(f"the prompt is {n} tokens; the model reads at most {self.max_input_tokens} ({limit})")
        if not n:
            raise InputError("the prompt is empty")
        return prompt

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt, or InputError when it does not fit the model's input budget."""
        return self.encode_prompt(prompt).ids

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
            self._check_adapter(name)
            if self.adapters == [name]:
                self._peft.unload()  # restores the base layers in `model`, in place
                self._peft = None
            else:
                self._peft.delete_adapter(name)
            self.adapter_sources.pop(name, None)

    def _check_adapter(self, adapter: str | None) -> None:
        if adapter is not None and adapter not in self.adapters:
            raise unknown("adapter loaded on this model", adapter, self.adapters)

    def activate(self, adapter: str | None) -> None:
        """Select `adapter` (None: the plain base) for the next forward passes. Callers hold `self.lock`."""
        self._check_adapter(adapter)
        if adapter is not None:
            self._peft.set_adapter(adapter)
            self._peft.base_model.enable_adapter_layers()
        elif self._peft is not None:
            self._peft.base_model.disable_adapter_layers()

    # ---------------------------------------------------------------- generation
    def generate(
        self,
        messages: Prompt,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        adapter: str | None = None,
    ) -> Generation:
        """The model's reply: greedy when temperature is 0; ends at end-of-turn, a stop string or the length.
        The same decoding as `stream`, on the calling thread."""
        ids = self.prompt_ids(messages)
        stop = _as_list(stop)
        with self.lock:
            start = time.perf_counter()  # compute time, not time spent queueing behind other threads
            self.activate(adapter)
            new = self.decode_tokens(ids, max_new_tokens, temperature, stop)
            seconds = time.perf_counter() - start
        return finished(self, ids, new, seconds, stop, max_new_tokens)

    def stream(
        self,
        messages: Prompt,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
        adapter: str | None = None,
    ) -> GenerationStream:
        """Text pieces as they are generated; joined, they equal the final `result.text`.

        Generation runs in a worker thread; each new token is decoded with all earlier ones (so multi-byte
        characters and stop strings come out whole) and only the stable new part is yielded. Closing the
        iterator early stops generation at the next token (and `result` stays None).
        """
        # Checked here, not on the first next(): a too-long prompt fails where stream() is called.
        ids = self.prompt_ids(messages)
        self._check_adapter(adapter)
        return GenerationStream(self, ids, max_new_tokens, temperature, _as_list(stop), adapter)

    def _max_new(self, n_prompt: int, max_new_tokens: int | None) -> int:
        wanted = max_new_tokens if max_new_tokens is not None else self.config.max_new_tokens
        return max(1, min(wanted, self.context_length - n_prompt))

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
        from transformers import LogitsProcessorList, StoppingCriteriaList

        from assistant.models.streaming import AnswerRepetitionPenalty

        temp = self.config.temperature if temperature is None else temperature
        if temp < 0:
            raise InputError(f"temperature must be >= 0, got {temp}")
        kwargs: dict[str, Any] = {"max_new_tokens": self._max_new(len(ids), max_new_tokens), "do_sample": temp > 0}
        if self.config.repetition_penalty != 1.0:
            kwargs["logits_processor"] = LogitsProcessorList(
                [AnswerRepetitionPenalty(self.config.repetition_penalty, len(ids))]
            )
        if temp > 0:
            kwargs["temperature"] = temp
        criteria = [StopCriteria(self.tokenizer, len(ids), [s for s in stop if s], cancel)]
        input_ids = torch.tensor([ids], dtype=torch.long)
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

    def finish_reason(
        self, new: list[int], raw: str, stop: Sequence[str], ids: list[int], max_new_tokens: int | None
    ) -> FinishReason:
        if new and new[-1] in self.eos_token_ids:
            return "stop"
        if any(s and s in raw for s in stop):
            return "stop"
        return "length" if len(new) >= self._max_new(len(ids), max_new_tokens) else "stop"

    # ---------------------------------------------------------------- scoring
    def score_options(
        self, messages: Prompt, options: Sequence[str], *, normalize: bool = False, adapter: str | None = None
    ) -> list[float]:
        """Log-likelihood of each option as the assistant's reply (see assistant.models.scoring)."""
        from assistant.models.scoring import score_options

        return score_options(self, messages, options, normalize=normalize, adapter=adapter)


def _as_list(stop: Sequence[str]) -> list[str]:
    # stop="Question:" is one stop string, not nine one-character ones.
    return [stop] if isinstance(stop, str) else [s for s in stop if s]
