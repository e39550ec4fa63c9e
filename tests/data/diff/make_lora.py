"""Writes a LoRA adapter for the base checkpoint of make_diff.py, and what it changes.

lora/adapter_model.safetensors + adapter_config.json: PEFT's save_pretrained of a LoraConfig
(r 4, alpha 8) on q_proj, v_proj and down_proj, with rank 2 for down_proj (`rank_pattern`) and
alpha 4 for v_proj (`alpha_pattern`), and lm_head in `modules_to_save`. The B matrices (zero
when PEFT initialises them) and the saved lm_head copy are set to random values, as training
would leave them.
lora_facts.json: per base tensor, what merging the adapter changes (W' − W), from PEFT's own
PeftModel.from_pretrained + merge_and_unload() of the saved adapter on a float64 base.

Run with torch, transformers and peft installed, after make_diff.py:  python make_lora.py
"""

import json
import os

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(2)
base = LlamaForCausalLM.from_pretrained(os.path.join(here, "base"), torch_dtype=torch.float32)
cfg = LoraConfig(
    r=4,
    lora_alpha=8,
    target_modules=["q_proj", "v_proj", "down_proj"],
    rank_pattern={"down_proj": 2},
    alpha_pattern={"v_proj": 4},
    modules_to_save=["lm_head"],
    lora_dropout=0.0,
)
model = get_peft_model(base, cfg)
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.copy_(torch.randn_like(p) * 0.02)
        if "modules_to_save" in name:
            p.add_(torch.randn_like(p) * 0.01)
model.save_pretrained(os.path.join(here, "lora"), safe_serialization=True)
# A path relative to the adapter, not this machine's.
cfg_path = os.path.join(here, "lora", "adapter_config.json")
with open(cfg_path) as f:
    saved = json.load(f)
saved["base_model_name_or_path"] = "../base"
with open(cfg_path, "w") as f:
    json.dump(saved, f, indent=2, sort_keys=True)
for extra in ["README.md"]:
    p = os.path.join(here, "lora", extra)
    if os.path.exists(p):
        os.remove(p)
# PEFT's own merge of the saved (f32) adapter into the base, in float64.
base64 = LlamaForCausalLM.from_pretrained(os.path.join(here, "base"), torch_dtype=torch.float64)
before = {k: v.clone() for k, v in base64.state_dict().items()}
merged = PeftModel.from_pretrained(base64, os.path.join(here, "lora")).merge_and_unload().state_dict()
facts = {}
for name, a in before.items():
    if name not in merged:
        continue
    d = merged[name].double() - a.double()
    changed = int((d != 0).sum())
    if changed == 0:
        continue
    flat = d.abs().flatten()
    i = int(flat.argmax())
    facts[name] = {
        "changed": changed,
        "diff_norm": float(d.norm()),
        "rel_change": float(d.norm() / a.norm()),
        "max_abs_diff": float(flat.max()),
        "max_at": [int(x) for x in torch.unravel_index(torch.tensor(i), a.shape)],
    }
with open(os.path.join(here, "lora_facts.json"), "w") as f:
    json.dump(facts, f, indent=1, sort_keys=True)
print(sorted(load_file(os.path.join(here, "lora", "adapter_model.safetensors")).keys()))
print({k: round(v["rel_change"], 5) for k, v in facts.items()})
