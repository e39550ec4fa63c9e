"""Writes a LLaMA checkpoint and a GGUF conversion of it, and the quantization error per tensor.

hf/model.safetensors: a 1-layer LLaMA with grouped-query attention (4 heads, 2 key/value heads),
random init, saved by transformers' save_pretrained in bf16.
llama_q.gguf: the same weights as llama.cpp's convert_hf_to_gguf.py lays them out for the
`llama` architecture: names from gguf-py's tensor map, attention q and k rows permuted as its
LlamaModel.permute does, attention and output weights quantized to Q8_0 and MLP weights to Q4_0
by gguf-py, the embedding in F16, norms in F32.
gguf_facts.json: per Hugging Face name, what the GGUF holds against it (gguf-py's dequantizer, rows
permuted back), in float64: Δ = GGUF − HF.

Run with torch, transformers and gguf installed:  python make_gguf.py
"""

import json
import os

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as Q
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(1)
N_HEAD, N_KV = 4, 2
cfg = LlamaConfig(
    vocab_size=64,
    hidden_size=256,
    intermediate_size=256,
    num_hidden_layers=1,
    num_attention_heads=N_HEAD,
    num_key_value_heads=N_KV,
    tie_word_embeddings=False,
)
LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(
    os.path.join(here, "hf"), safe_serialization=True
)
p = os.path.join(here, "hf", "generation_config.json")
if os.path.exists(p):
    os.remove(p)
hf = {k: v.float().numpy() for k, v in load_file(os.path.join(here, "hf", "model.safetensors")).items()}


def permute(w, n_head, n_head_kv):
    # llama.cpp convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
out = os.path.join(here, "llama_q.gguf")
w = gguf.GGUFWriter(out, "llama")
w.add_block_count(cfg.num_hidden_layers)
w.add_context_length(128)
w.add_embedding_length(cfg.hidden_size)
w.add_feed_forward_length(cfg.intermediate_size)
w.add_head_count(N_HEAD)
w.add_head_count_kv(N_KV)
w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
mapping = {}
for name, data in hf.items():
    gname = names.get_name(name, try_suffixes=(".weight", ".bias"))
    mapping[name] = gname
    if name.endswith("q_proj.weight"):
        data = permute(data, N_HEAD, N_HEAD)
    elif name.endswith("k_proj.weight"):
        data = permute(data, N_HEAD, N_KV)
    if data.ndim == 1:
        w.add_tensor(gname, data.astype(np.float32))
    elif "embed" in name:
        w.add_tensor(gname, data.astype(np.float16))
    else:
        qt = Q.Q4_0 if ".mlp." in name else Q.Q8_0
        w.add_tensor(gname, gguf.quants.quantize(data, qt), raw_dtype=qt)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

reader = gguf.GGUFReader(out)
stored = {t.name: gguf.quants.dequantize(t.data, t.tensor_type) for t in reader.tensors}
facts = {}


def unpermute(w, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


for name, a in hf.items():
    b = stored[mapping[name]].reshape(a.shape).astype(np.float64)
    if name.endswith("q_proj.weight"):
        b = unpermute(b, N_HEAD, N_HEAD)
    elif name.endswith("k_proj.weight"):
        b = unpermute(b, N_HEAD, N_KV)
    a = a.astype(np.float64)
    d = b - a
    entry = {
        "gguf": mapping[name],
        "changed": int((d != 0).sum()),
        "norm_a": float(np.linalg.norm(a)),
        "diff_norm": float(np.linalg.norm(d)),
        "rel_change": float(np.linalg.norm(d) / np.linalg.norm(a)),
        "cosine": float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b))),
        "max_abs_diff": float(np.abs(d).max()),
    }
    if entry["changed"]:
        entry["max_at"] = [int(i) for i in np.unravel_index(int(np.abs(d).argmax()), a.shape)]
    facts[name] = entry
with open(os.path.join(here, "gguf_facts.json"), "w") as f:
    json.dump(facts, f, indent=1, sort_keys=True)
print({k: round(v["rel_change"], 5) for k, v in facts.items()})
