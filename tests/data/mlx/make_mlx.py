"""Writes MLX-quantized checkpoints as `mlx_lm.convert -q` saves them, and what MLX reads back.

Run with mlx 0.32 (`pip install "mlx[cpu]"` works on Linux):
    python make_mlx.py
Writes, beside this script:
  q4/   a two-layer LLaMA-shaped checkpoint (hidden 128, MLP 256, vocabulary 96): every Linear
        and the embedding quantized by `mx.quantize` to 4 bits in groups of 64 (U32 words,
        f16 scales and biases), the norms in f16; `config.json` with `quantization`, modules
        overridden to 8 bits (`model.layers.1.mlp.down_proj`) and to 3, 6, 2 and 5 bits (the
        second layer's q, k, v and o projections), as mlx_lm's mixed recipes write
  facts.json  per quantized weight: its real shape, and the mean and first values of
        `mx.dequantize` of it; per plain tensor, its dtype and shape
"""

import json
import os

import mlx.core as mx
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
H, F, V = 128, 256, 96
# mlx_lm's mixed recipes also write 2, 3, 5 and 6-bit modules (packed as a bitstream).
OTHER_BITS = {"q_proj": 3, "k_proj": 6, "v_proj": 2, "o_proj": 5}


def main():
    mx.random.seed(3)
    out = os.path.join(HERE, "q4")
    os.makedirs(out, exist_ok=True)
    tensors, facts = {}, {"quantized": {}, "plain": {}}
    linears = {"model.embed_tokens": (V, H), "lm_head": (V, H)}
    for i in range(2):
        p = f"model.layers.{i}"
        for n in ["q_proj", "k_proj", "v_proj", "o_proj"]:
            linears[f"{p}.self_attn.{n}"] = (H, H)
        linears[f"{p}.mlp.gate_proj"] = (F, H)
        linears[f"{p}.mlp.up_proj"] = (F, H)
        linears[f"{p}.mlp.down_proj"] = (H, F)
        for n in ["input_layernorm", "post_attention_layernorm"]:
            tensors[f"{p}.{n}.weight"] = (1 + 0.1 * mx.random.normal((H,))).astype(mx.float16)
    tensors["model.norm.weight"] = mx.ones((H,), dtype=mx.float16)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
              "num_hidden_layers": 2, "intermediate_size": F, "vocab_size": V,
              "quantization": {"group_size": 64, "bits": 4,
                               "model.layers.1.mlp.down_proj": {"group_size": 64, "bits": 8},
                               **{f"model.layers.1.self_attn.{n}": {"group_size": 64, "bits": b}
                                  for n, b in OTHER_BITS.items()}}}
    config["quantization_config"] = config["quantization"]
    for name, shape in linears.items():
        w = (0.05 * mx.random.normal(shape)).astype(mx.float16)
        bits = 8 if name == "model.layers.1.mlp.down_proj" else 4
        bits = OTHER_BITS.get(name.rsplit(".", 1)[-1], bits) if "layers.1.self_attn" in name else bits
        wq, scales, biases = mx.quantize(w, group_size=64, bits=bits)
        tensors[f"{name}.weight"] = wq
        tensors[f"{name}.scales"] = scales
        tensors[f"{name}.biases"] = biases
        real = np.array(mx.dequantize(wq, scales, biases, group_size=64, bits=bits).astype(mx.float32),
                        dtype=np.float64)
        facts["quantized"][f"{name}.weight"] = {
            "bits": bits, "shape": list(real.shape), "groups": int(np.array(scales).size),
            "mean": float(real.mean()), "first": [float(v) for v in real.reshape(-1)[:4]],
            # flat indices across bitstream blocks, rows and groups
            "samples": [[int(i), float(real.reshape(-1)[i])] for i in
                        (5, 7, 8, 13, 63, 64, 100, real.shape[1] + 3, real.size // 2 + 9, real.size - 1)]}
    for name, t in tensors.items():
        if name not in facts["quantized"]:
            facts["plain"][name] = {"dtype": str(t.dtype).replace("mlx.core.", ""), "shape": list(t.shape)}
    mx.save_safetensors(os.path.join(out, "model.safetensors"), tensors, metadata={"format": "mlx"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(HERE, "facts.json"), "w") as f:
        json.dump({"mlx": mx.__version__, **facts}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
