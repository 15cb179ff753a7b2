"""Prompt embeddings for IF: from a precomputed file in the course's format, or from T5.

The course's file is a dict mapping each prompt to a tensor [1, 77, 4096] (T5-XXL's hidden
states), saved with torch.save; the unconditional embedding is the entry for the empty prompt "".
It is read with `weights_only=True`, so a file can never run code. T5 (optional, about 9.5 GB
in fp16) encodes any other prompt once; both sources share one cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from diffusion_stepper.core.deepfloyd_if.models import explain_load_error
from diffusion_stepper.core.devices import is_gpu
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.files import check_input_file, read_torch_data

UNCONDITIONAL = ""
MAX_TOKENS = 77  # IF's T5 sequence length
T5_SOURCE = "DeepFloyd/IF-I-XL-v1.0"  # IF's repos ship the T5 encoder and tokenizer as subfolders


class PromptEmbeddings:
    """prompt -> [1, tokens, dim] embedding, each prompt encoded at most once."""

    def __init__(
        self,
        table: dict[str, torch.Tensor] | None = None,
        encoder: Callable[[str], torch.Tensor] | None = None,
        source: str = "embeddings",
    ):
        self.table = dict(table or {})
        self.encoder = encoder
        self.source = source

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, encoder: Callable[[str], torch.Tensor] | None = None
    ) -> PromptEmbeddings:
        path = check_input_file(path)
        try:
            loaded = read_torch_data(path)
        except Exception as error:  # pickle, zip or safety errors: all mean "not an embeddings file"
            raise UserFacingError(
                f"{path} is not a prompt-embeddings file (a dict of prompt -> tensor saved with torch.save): "
                f"{_first_line(error)}"
            ) from error
        if not isinstance(loaded, dict) or not loaded:
            raise UserFacingError(
                f"{path} holds a {type(loaded).__name__}, not a dict of prompt -> tensor [1, 77, 4096]"
            )
        table = {}
        for prompt, tensor in loaded.items():
            if not isinstance(prompt, str) or not isinstance(tensor, torch.Tensor):
                raise UserFacingError(
                    f"{path}: every entry must map a prompt (text) to a tensor, found "
                    f"{type(prompt).__name__} -> {type(tensor).__name__}"
                )
            if tensor.ndim == 2:
                tensor = tensor.unsqueeze(0)
            if tensor.ndim != 3 or tensor.shape[0] != 1:
                raise UserFacingError(
                    f"{path}: the embedding of {prompt!r} has shape {list(tensor.shape)}, expected [1, 77, 4096]"
                )
            table[prompt] = tensor.float()
        widths = {tensor.shape[-1] for tensor in table.values()}
        if len(widths) > 1:
            raise UserFacingError(f"{path}: the embeddings have different widths {sorted(widths)}")
        return cls(table, encoder, source=str(path))

    @property
    def prompts(self) -> list[str]:
        """The prompts with an embedding at hand (the empty one left out)."""
        return [prompt for prompt in self.table if prompt != UNCONDITIONAL]

    def get(self, prompt: str) -> torch.Tensor:
        if prompt not in self.table:
            if self.encoder is None:
                known = ", ".join(repr(p) for p in self.prompts[:8]) or "none"
                more = " …" if len(self.prompts) > 8 else ""
                what = "the unconditional (empty) prompt" if prompt == UNCONDITIONAL else f"the prompt {prompt!r}"
                raise UserFacingError(
                    f"{self.source} has no embedding for {what}; it has {known}{more} "
                    "(add --t5 to encode new prompts, which loads the 9.5 GB T5 encoder)"
                )
            self.table[prompt] = self.encoder(prompt).float().cpu()
        return self.table[prompt]

    def check_width(self, width: int) -> None:
        """The UNet's expected embedding width must match the table's (4096 for real IF)."""
        for tensor in self.table.values():
            if tensor.shape[-1] != width:
                raise UserFacingError(
                    f"{self.source}: the embeddings are {tensor.shape[-1]} wide but this IF model expects {width}"
                )


def t5_encoder(source: str = T5_SOURCE, device: str | torch.device = "cpu") -> Callable[[str], torch.Tensor]:
    """An encoder of prompts as IFPipeline.encode_prompt(clean_caption=False) encodes them:
    lower-cased, 77 tokens, padded, with the attention mask."""
    # Deferred: transformers takes seconds to import and only DeepFloyd IF needs it.
    from transformers import AutoTokenizer, T5EncoderModel

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, subfolder="tokenizer")
        dtype = torch.float16 if is_gpu(device) else torch.float32
        model = T5EncoderModel.from_pretrained(source, subfolder="text_encoder", torch_dtype=dtype).to(device).eval()
    except Exception as error:
        raise UserFacingError(explain_load_error(source, error)) from error

    @torch.no_grad()
    def encode(prompt: str) -> torch.Tensor:
        prompt = prompt.lower().strip()  # IFPipeline's text preprocessing (without caption cleaning)
        tokens = tokenizer(
            prompt,
            padding="max_length",
            max_length=MAX_TOKENS,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        output = model(tokens.input_ids.to(device), attention_mask=tokens.attention_mask.to(device))
        return output[0]

    return encode


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def prompt_table_for(
    given: PromptEmbeddings | None, file: str | None, t5: bool, device: torch.device, width: int
) -> PromptEmbeddings:
    """The prompt embeddings a run reads: those `given` (kept from an earlier run), else the
    `file`'s (the course's, with T5 for other prompts if `t5`), else T5's; checked against the
    model's embedding `width`."""
    if given is not None:
        table = given
    else:
        encoder = t5_encoder(device=device) if t5 else None
        if file:
            table = PromptEmbeddings.from_file(file, encoder)
        elif encoder is not None:
            table = PromptEmbeddings(encoder=encoder, source="T5")
        else:
            raise UserFacingError(
                "IF needs prompt embeddings: pass --embeddings FILE (the course's prompt_embeds_dict.pth) "
                "or --t5 to encode prompts"
            )
    table.check_width(width)
    return table
