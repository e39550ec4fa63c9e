"""Writes a base checkpoint and a fine-tune of it, and what torch says changed between them.

base/model.safetensors: a 2-layer LLaMA (transformers' LlamaForCausalLM, random init), saved by
save_pretrained in bf16.
tuned.pt: the same model in f32 after 8 AdamW steps on random tokens, with the embedding,
lm_head and layer 0 frozen, saved as a DistributedDataParallel state dict (every name under
`module.`) with a classifier head the base does not have.
facts.json: per tensor of the base, torch's figures in float64 (Δ = tuned − base).

Run with torch and transformers installed:  python make_diff.py
"""

import json
import os

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
cfg = LlamaConfig(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    tie_word_embeddings=False,
)
model = LlamaForCausalLM(cfg).to(torch.bfloat16)
model.save_pretrained(os.path.join(here, "base"), safe_serialization=True)
for extra in ["generation_config.json"]:
    p = os.path.join(here, "base", extra)
    if os.path.exists(p):
        os.remove(p)

tuned = model.float()
for name, p in tuned.named_parameters():
    p.requires_grad = not (
        name.startswith("model.embed_tokens") or name.startswith("lm_head") or ".layers.0." in name
    )
opt = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=1e-3)
for _ in range(8):
    ids = torch.randint(0, 256, (4, 32))
    loss = tuned(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
sd = {"module." + k: v.detach().clone() for k, v in tuned.state_dict().items()}
sd["module.classifier.weight"] = torch.randn(3, 64)
torch.save(sd, os.path.join(here, "tuned.pt"))

base = load_file(os.path.join(here, "base", "model.safetensors"))
facts = {}
for name, a in base.items():
    a = a.double()
    b = sd["module." + name].double()
    d = b - a
    flat = d.abs().flatten()
    changed = int((d != 0).sum())
    entry = {
        "changed": changed,
        "count": a.numel(),
        "norm_a": float(a.norm()),
        "diff_norm": float(d.norm()),
        "rel_change": float(d.norm() / a.norm()),
        "cosine": float((a * b).sum() / (a.norm() * b.norm())),
        "max_abs_diff": float(flat.max()),
        "mean_diff": float(d.mean()),
    }
    if changed:
        i = int(flat.argmax())
        entry["max_at"] = list(torch.unravel_index(torch.tensor(i), a.shape))
        entry["max_at"] = [int(x) for x in entry["max_at"]]
    facts[name] = entry
with open(os.path.join(here, "facts.json"), "w") as f:
    json.dump({"only_b": ["module.classifier.weight"], "tensors": facts}, f, indent=1, sort_keys=True)
print(len(facts), "tensors,", sum(1 for v in facts.values() if v["changed"] == 0), "identical")
