"""Writes quantized Hugging Face checkpoints as their own tools save them, and what those tools
read back.

Run with llm-compressor 0.14 (compressed-tensors 0.19), transformers 5.17 and torch 2.14 (CPU):
    python make_hfquant.py
Writes, beside this script, one folder per checkpoint (`model.safetensors` + `config.json`), all
of one tiny LLaMA (hidden 128, MLP 256, vocabulary 128, one layer, bf16, seed 0) quantized by
llm-compressor's `oneshot` with a weight-only `QuantizationModifier` (every Linear but
`lm_head`), saved compressed by `save_pretrained(save_compressed=True)`:
  w4a16/       pack-quantized int4, symmetric, groups of 128 (the W4A16 preset)
  w4a16_asym/  pack-quantized int4, asymmetric, groups of 32 (zero points packed down the rows)
  w8a16/       pack-quantized int8, symmetric, groups of 128 (the W8A16 preset)
  w8a8/        int-quantized int8 weights, one scale per row (W8A8)
  fp8/         float-quantized fp8 e4m3 weights, one scale per row (FP8_DYNAMIC)
  fp8_block/   float-quantized fp8 e4m3 weights, one scale per 128 × 128 block (FP8_BLOCK; the
               64-row k/v projections hold half blocks)
and
  deepseek_fp8/  DeepSeek-V3's layout (`quant_method: fp8`, `weight_block_size: [128, 128]`):
               fp8 e4m3 weights of sizes 128 does not divide with F32 `weight_scale_inv` per
               block, quantized here by torch as DeepSeek's `weight_dequant` inverts
facts.json   per checkpoint and quantized weight: stored dtype, real shape, the mean of the
             dequantized weight and values at a few (row, column) places; the dequantized weights
             are what transformers' compressed-tensors integration decompresses (float32), and
             for deepseek_fp8 what DeepSeek's `weight_dequant` computes (fp8 × scale per block)
"""

import json
import os
import shutil
import tempfile

import torch
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import QuantizationModifier
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
from transformers.utils.quantization_config import CompressedTensorsConfig

HERE = os.path.dirname(os.path.abspath(__file__))


def samples(w):
    n, k = w.shape
    at = [(0, 0), (0, 1), (1, 0), (n // 2, k // 2), (n - 1, k - 1), (min(n - 1, 127), min(k - 1, 128)),
          (n - 1, 0), (7, 33), (9, k - 33)]
    return [[r, c, float(w[r, c])] for r, c in at]


def fact(dtype, w):
    w = w.to(torch.float64)
    return {"dtype": dtype, "shape": list(w.shape), "mean": float(w.mean()), "samples": samples(w)}


def stored_dtype(name, t):
    if name.endswith("weight_packed"):
        return None
    return {torch.float8_e4m3fn: "F8_E4M3", torch.int8: "I8"}.get(t.dtype)


def llm_compressor(base, name, modifier, facts):
    out = os.path.join(HERE, name)
    shutil.rmtree(out, ignore_errors=True)
    m = LlamaForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    oneshot(model=m, recipe=modifier)
    m.save_pretrained(out, save_compressed=True)
    from safetensors import safe_open
    with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    dense = AutoModelForCausalLM.from_pretrained(
        out, dtype=torch.float32, quantization_config=CompressedTensorsConfig(run_compressed=False)
    ).state_dict()
    q = {}
    for k, t in stored.items():
        if k.endswith("weight_packed"):
            w = k[: -len("_packed")]
            bits = t.shape[1] * 32 // dense[w].shape[1]
            q[k] = fact("U4" if bits == 4 else "U8", dense[w])
        elif k.endswith(".weight") and (d := stored_dtype(k, t)) and k + "_scale" in stored:
            q[k] = fact(d, dense[k])
    facts[name] = {"quantized": q, "tensors": len(stored)}
    for f in os.listdir(out):
        if f not in ("model.safetensors", "config.json"):
            os.remove(os.path.join(out, f))


def deepseek(facts):
    out = os.path.join(HERE, "deepseek_fp8")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    g = torch.Generator().manual_seed(1)
    shapes = {"model.layers.0.self_attn.kv_a_proj_with_mqa": (200, 300),
              "model.layers.0.self_attn.o_proj": (256, 128),
              "model.layers.0.mlp.experts.0.down_proj": (96, 200)}
    tensors, q = {}, {}
    for name, (n, k) in shapes.items():
        w = torch.randn(n, k, generator=g) * 0.02
        w[:, : min(k, 64)] *= 8  # blocks of different scales
        sn, sk = -(-n // 128), -(-k // 128)
        scale = torch.zeros(sn, sk)
        wq = torch.zeros(n, k, dtype=torch.float8_e4m3fn)
        for i in range(sn):
            for j in range(sk):
                blk = w[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128]
                s = blk.abs().max() / 448.0
                scale[i, j] = s
                wq[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = (blk / s).to(torch.float8_e4m3fn)
        tensors[f"{name}.weight"] = wq
        tensors[f"{name}.weight_scale_inv"] = scale
        # DeepSeek's weight_dequant: y = x * s, s repeated over its 128 x 128 block.
        s_full = scale.repeat_interleave(128, 0)[:n].repeat_interleave(128, 1)[:, :k]
        q[f"{name}.weight"] = fact("F8_E4M3", wq.to(torch.float32) * s_full)
    tensors["model.layers.0.input_layernorm.weight"] = torch.ones(200, dtype=torch.bfloat16)
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
              "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3",
                                      "quant_method": "fp8", "weight_block_size": [128, 128]}}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    facts["deepseek_fp8"] = {"quantized": q, "tensors": len(tensors)}


def main():
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=128, max_position_embeddings=64)
    base = tempfile.mkdtemp()
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(base)
    facts = {}
    presets = {"w4a16": "W4A16", "w8a16": "W8A16", "w8a8": "W8A8", "fp8": "FP8_DYNAMIC",
               "fp8_block": "FP8_BLOCK"}
    for name, scheme in presets.items():
        llm_compressor(base, name, QuantizationModifier(targets="Linear", scheme=scheme, ignore=["lm_head"]),
                       facts)
    asym = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=4, type="int", symmetric=False, strategy="group", group_size=32))
    llm_compressor(base, "w4a16_asym",
                   QuantizationModifier(config_groups={"group_0": asym}, ignore=["lm_head"]), facts)
    deepseek(facts)
    shutil.rmtree(base)
    import compressed_tensors
    import llmcompressor
    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump({"llmcompressor": llmcompressor.__version__,
                   "compressed_tensors": compressed_tensors.__version__,
                   "torch": torch.__version__, **facts}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
