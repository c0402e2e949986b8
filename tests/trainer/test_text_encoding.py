"""Caption encoding: 75-token chunks up to 225 tokens, clip_skip with the final layer norm, SDXL."""

from __future__ import annotations

import pytest
import torch

from prep.clip_tokens import count_tokens
from trainer.text_encoding import encode_sd, encode_sdxl, tokenize_chunks


@pytest.fixture(scope="module")
def sd1_text(tiny_sd1):
    from transformers import CLIPTextModel, CLIPTokenizer

    te = CLIPTextModel.from_pretrained(tiny_sd1, subfolder="text_encoder").eval()
    return te, CLIPTokenizer.from_pretrained(tiny_sd1, subfolder="tokenizer")


def _long_caption(tokens: int) -> str:
    words = [f"tag{i}" for i in range(200)]
    caption = ""
    for word in words:
        candidate = f"{caption}, {word}" if caption else word
        if count_tokens(candidate) > tokens:
            break
        caption = candidate
    return caption


def test_225_token_caption_is_chunked_not_truncated(sd1_text):
    te, tok = sd1_text
    caption = _long_caption(220)
    assert count_tokens(caption) > 150
    ids = tokenize_chunks(tok, [caption], 225)
    assert ids.shape == (1, 3, 77)
    assert (ids[0, :, 0] == tok.bos_token_id).all() and (ids[0, :, -1] == tok.eos_token_id).all()
    full = tok(caption, truncation=False).input_ids  # BOS + tokens + EOS
    assert ids[0, 1, 1:76].tolist() == full[76:151]
    with torch.no_grad():
        states = encode_sd(te, tok, [caption], 225, 1, "cpu")
        assert states.shape == (1, 227, 32)
        # Chunk 2 is encoded on its own: its states equal the encoder's output for that chunk alone.
        alone = te(ids[0, 1:2]).last_hidden_state
        assert torch.allclose(states[0, 76:151], alone[0, 1:76], atol=1e-5)
        # The tail of the caption reaches the model at 225, and is cut at 75.
        changed = caption.rsplit(",", 1)[0] + ", different"
        other = encode_sd(te, tok, [changed], 225, 1, "cpu")
        assert not torch.allclose(states, other)
        short_a = encode_sd(te, tok, [caption], 75, 1, "cpu")
        short_b = encode_sd(te, tok, [changed], 75, 1, "cpu")
        assert short_a.shape == (1, 77, 32) and torch.allclose(short_a, short_b)


def test_clip_skip_takes_earlier_layer_through_final_layer_norm(sd1_text):
    te, tok = sd1_text
    with torch.no_grad():
        ids = tok(["1girl, smile"], padding="max_length", max_length=77, return_tensors="pt").input_ids
        out = te(ids, output_hidden_states=True)
        skip1 = encode_sd(te, tok, ["1girl, smile"], 75, 1, "cpu")
        skip2 = encode_sd(te, tok, ["1girl, smile"], 75, 2, "cpu")
    assert torch.allclose(skip1, out.last_hidden_state, atol=1e-6)
    expected = te.final_layer_norm(out.hidden_states[-2]) if hasattr(te, "final_layer_norm") \
        else te.text_model.final_layer_norm(out.hidden_states[-2])
    assert torch.allclose(skip2, expected, atol=1e-6)
    assert not torch.allclose(skip1, skip2)


def test_sdxl_conditioning_shapes(tiny_sdxl):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    te1 = CLIPTextModel.from_pretrained(tiny_sdxl, subfolder="text_encoder").eval()
    te2 = CLIPTextModelWithProjection.from_pretrained(tiny_sdxl, subfolder="text_encoder_2").eval()
    tok = CLIPTokenizer.from_pretrained(tiny_sdxl, subfolder="tokenizer")
    with torch.no_grad():
        states, pooled = encode_sdxl([te1, te2], [tok, tok], ["a", _long_caption(140)], 150, "cpu")
        ids = tok(["a"], padding="max_length", max_length=77, return_tensors="pt").input_ids
        direct = te2(ids, output_hidden_states=True)
    assert states.shape == (2, 152, 64) and pooled.shape == (2, 32)
    assert torch.allclose(pooled[0], direct.text_embeds[0], atol=1e-5)
    assert torch.allclose(states[0, :76, 32:], direct.hidden_states[-2][0, :76], atol=1e-5)
