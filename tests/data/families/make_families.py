"""Writes tiny checkpoints of model families whose names modelmap chains, with transformers 5.17's
own `save_pretrained` (safetensors): GPT-NeoX (Pythia's layout), Whisper and T5 (encoder-decoder).

    python make_families.py
"""
import os

import torch
import transformers as t

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
for name, cfg, cls in [
    ("neox", t.GPTNeoXConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=32), t.GPTNeoXForCausalLM),
    ("whisper", t.WhisperConfig(vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=2,
                                encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                decoder_ffn_dim=32, num_mel_bins=8, max_source_positions=16,
                                max_target_positions=16, pad_token_id=1, bos_token_id=2, eos_token_id=3,
                                decoder_start_token_id=2), t.WhisperForConditionalGeneration),
    ("t5", t.T5Config(vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2),
     t.T5ForConditionalGeneration),
]:
    cls(cfg).save_pretrained(os.path.join(HERE, name))
