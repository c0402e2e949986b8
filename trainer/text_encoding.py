"""Caption -> UNet conditioning, as kohya: 75-token chunks, clip_skip with final layer norm, SDXL's two encoders.

A caption is tokenized to max_token_length + 2 tokens and cut into 75-token chunks; each chunk
becomes [BOS] + 75 tokens + [last token] and is encoded as its own 77-token sequence. The
result keeps chunk 1's BOS state, each chunk's 75 inner states and the last chunk's final
state: 75n + 2 states (227 for 225).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


_TOKEN_CACHE: dict[tuple[int, str, int], torch.Tensor] = {}
_TOKEN_CACHE_LIMIT = 4096


def tokenize_chunks(tokenizer, captions: list[str], max_token_length: int) -> torch.Tensor:
    """Token ids, shape (batch, chunks, 77); repeated captions are tokenized once."""
    import torch

    rows = []
    for caption in captions:
        key = (id(tokenizer), caption, max_token_length)
        row = _TOKEN_CACHE.get(key)
        if row is None:
            row = _tokenize_chunks(tokenizer, [caption], max_token_length)[0]
            if len(_TOKEN_CACHE) >= _TOKEN_CACHE_LIMIT:
                _TOKEN_CACHE.clear()
            _TOKEN_CACHE[key] = row
        rows.append(row)
    return torch.stack(rows)


def _tokenize_chunks(tokenizer, captions: list[str], max_token_length: int) -> torch.Tensor:
    import torch

    model_max = 77
    length = max_token_length + 2
    ids = tokenizer(captions, padding="max_length", truncation=True, max_length=length,
                    return_tensors="pt").input_ids
    if length <= model_max:
        return ids.unsqueeze(1)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    out = []
    for row in ids:
        chunks = []
        for i in range(1, length - model_max + 2, model_max - 2):
            chunk = torch.cat((row[:1], row[i:i + model_max - 2], row[-1:]))
            if pad != eos:
                # SD2/SDXL tokenizers pad with "!": end every chunk with EOS, and make an empty
                # chunk read <BOS><EOS><PAD>... as a short prompt does.
                if chunk[-2] != eos and chunk[-2] != pad:
                    chunk[-1] = eos
                if chunk[1] == pad:
                    chunk[1] = eos
            chunks.append(chunk)
        out.append(torch.stack(chunks))
    return torch.stack(out)


def _final_layer_norm(text_encoder):
    model = getattr(text_encoder, "text_model", text_encoder)
    return model.final_layer_norm


def _merge_chunks(states: torch.Tensor, ids: torch.Tensor, eos: int, pad: int) -> torch.Tensor:
    """(batch*chunks, 77, d) -> (batch, 75*chunks + 2, d)."""
    import torch

    batch, chunks = ids.shape[:2]
    states = states.reshape(batch, chunks * 77, states.shape[-1])
    if chunks == 1:
        return states
    parts = [states[:, :1]]
    for i in range(1, chunks * 77, 77):
        part = states[:, i:i + 75]
        if pad != eos:
            part = part.clone()
            for j in range(batch):
                if ids[j, (i - 1) // 77, 1] == eos:  # an empty chunk: use the next (pad) state
                    part[j, 0] = part[j, 1]
        parts.append(part)
    parts.append(states[:, -1:])
    return torch.cat(parts, dim=1)


def encode_sd(text_encoder, tokenizer, captions: list[str], max_token_length: int, clip_skip: int,
              device) -> torch.Tensor:
    """SD 1.x/2.x conditioning: hidden_states[-clip_skip] through the final layer norm."""
    ids = tokenize_chunks(tokenizer, captions, max_token_length).to(device)
    flat = ids.reshape(-1, ids.shape[-1])
    out = text_encoder(flat, output_hidden_states=True, return_dict=True)
    states = out.hidden_states[-max(clip_skip, 1)]
    states = _final_layer_norm(text_encoder)(states)
    return _merge_chunks(states, ids, tokenizer.eos_token_id, tokenizer.pad_token_id)


def encode_sdxl(text_encoders, tokenizers, captions: list[str], max_token_length: int,
                device) -> tuple[torch.Tensor, torch.Tensor]:
    """SDXL conditioning: TE1 and TE2 penultimate hidden states (no layer norm) concatenated, and
    TE2's projected pooled output of the first chunk."""
    import torch

    te1, te2 = text_encoders
    tok1, tok2 = tokenizers
    ids1 = tokenize_chunks(tok1, captions, max_token_length).to(device)
    ids2 = tokenize_chunks(tok2, captions, max_token_length).to(device)
    out1 = te1(ids1.reshape(-1, 77), output_hidden_states=True, return_dict=True)
    states1 = _merge_chunks(out1.hidden_states[-2], ids1, tok1.eos_token_id, tok1.pad_token_id)
    out2 = te2(ids2.reshape(-1, 77), output_hidden_states=True, return_dict=True)
    states2 = _merge_chunks(out2.hidden_states[-2], ids2, tok2.eos_token_id, tok2.pad_token_id)
    pooled = out2.text_embeds.reshape(ids2.shape[0], ids2.shape[1], -1)[:, 0]
    return torch.cat([states1, states2], dim=-1), pooled


def sdxl_time_ids(original_sizes, crops, targets, device, dtype) -> torch.Tensor:
    """(orig_h, orig_w, crop_top, crop_left, target_h, target_w) per sample."""
    import torch

    rows = []
    for (ow, oh), (top, left), (tw, th) in zip(original_sizes, crops, targets, strict=False):
        rows.append([oh, ow, top, left, th, tw])
    return torch.tensor(rows, device=device, dtype=dtype)
