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
  w3a16/, w6a16/  pack-quantized 3- and 6-bit, symmetric, groups of 32 (codes packed densely,
               split across int32 words)
  w8a16/       pack-quantized int8, symmetric, groups of 128 (the W8A16 preset)
  w8a8/        int-quantized int8 weights, one scale per row (W8A8)
  fp8/         float-quantized fp8 e4m3 weights, one scale per row (FP8_DYNAMIC)
  fp8_block/   float-quantized fp8 e4m3 weights, one scale per 128 × 128 block (FP8_BLOCK; the
               64-row k/v projections hold half blocks)
  nvfp4/       nvfp4-pack-quantized FP4 codes, an fp8 scale per 16 and a global scale (NVFP4A16)
  ct_mxfp4/    mxfp4-pack-quantized FP4 codes, an E8M0 exponent per 32 (MXFP4A16)
  ct_mxfp8/    fp8 e4m3 weights, an E8M0 exponent per 32 (MXFP8A16)
and
  deepseek_fp8/  DeepSeek-V3's layout (`quant_method: fp8`, `weight_block_size: [128, 128]`):
               fp8 e4m3 weights of sizes 128 does not divide with F32 `weight_scale_inv` per
               block, quantized here by torch as DeepSeek's `weight_dequant` inverts
  gptq/, gptq_8bit/, gptq_act_order/, awq/  GPTQ (v1 zero points, `g_idx`; act-order permutes it)
               and AWQ (GEMM) checkpoints of random weights, min-max quantized in groups of 32,
               packed by AutoAWQ's own functions (`pack_exllama` for GPTQ; `WQLinear_GEMM`'s
               order for AWQ); reference values from AutoAWQ's `dequantize_gemm` and GPTQModel's
               `dequantize_weight` (AWQ_SRC names the unpacked autoawq 0.2.9 sdist)
  bnb_nf4/, bnb_fp4/, bnb_int8/  transformers' BitsAndBytesConfig (NF4 with double
               quantization, FP4, LLM.int8) on CPU with bitsandbytes 0.50, saved by
               `save_pretrained`; reference values from bitsandbytes' own dequantizers
  bnb_nf4_bf16/  NF4 with `bnb_4bit_quant_storage=torch.bfloat16` (QLoRA with FSDP): the packed
               codes stored as a bfloat16 tensor
  modelopt_nvfp4/, modelopt_fp8/  NVIDIA ModelOpt's NVFP4 and FP8 (per-tensor scales) as
               `export_hf_checkpoint` writes them, calibrated on one random batch on CPU
  mxfp4/       a tiny gpt-oss whose experts are MXFP4 as OpenAI ships them (`…_blocks` of FP4
               codes, `…_scales` of E8M0 exponents; random codes), read back by transformers' own
               loader with `Mxfp4Config(dequantize=True)`
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
    at = [(max(0, min(r, n - 1)), max(0, min(c, k - 1))) for r, c in at]
    return [[r, c, float(w[r, c])] for r, c in at]


def fact(dtype, w):
    w = w.to(torch.float64)
    return {"dtype": dtype, "shape": list(w.shape), "mean": float(w.mean()), "samples": samples(w)}


def stored_dtype(name, t):
    if name.endswith("weight_packed"):
        return None
    return {torch.float8_e4m3fn: "F8_E4M3", torch.int8: "I8"}.get(t.dtype)


def saved_tensors(out):
    """Keeps only the weights and config.json of a saved checkpoint; returns its tensors."""
    from safetensors import safe_open
    for f in os.listdir(out):
        if f not in ("model.safetensors", "config.json"):
            os.remove(os.path.join(out, f))
    with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


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
            # int32 words of 4 or 8-bit integers; NVFP4's bytes of two FP4 codes
            bits = t.shape[1] * t.element_size() * 8 // dense[w].shape[1]
            real = dense[w]
            if w + "_global_scale" in stored:
                # transformers decompresses NVFP4 in bf16: the same values from compressed-tensors'
                # own unpacking in f32, scaled as its forward pass does (scale / global_scale).
                from compressed_tensors.compressors.nvfp4.helpers import unpack_fp4_from_uint8
                n, k2 = t.shape
                codes = unpack_fp4_from_uint8(t, n, k2 * 2, dtype=torch.float32).double()
                scale = stored[w + "_scale"].double() / stored[w + "_global_scale"].double()
                real = codes * scale.repeat_interleave(k2 * 2 // scale.shape[1], dim=1)
            q[k] = fact({4: "U4", 8: "U8"}.get(bits, f"U{bits}"), real)
        elif k.endswith(".weight") and (d := stored_dtype(k, t)) and k + "_scale" in stored:
            q[k] = fact(d, dense[k])
        elif k.endswith("weight_zero_point") and t.dtype == torch.int32:
            # packed zero points, shown unpacked: what the decompression leaves in their place
            bits = 4 if k.replace("_zero_point", "_packed") in stored and \
                stored[k.replace("_zero_point", "_packed")].shape[1] * 8 == dense[k.replace("_zero_point", "")].shape[1] else 8
            q[k] = fact("U4" if bits == 4 else "U8", dense[k].double())
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


def gpt_oss_mxfp4(facts):
    """A two-expert-layer gpt-oss checkpoint whose experts are MXFP4 as OpenAI ships them
    (`…_blocks` of FP4 codes, `…_scales` of E8M0 exponents; random codes, scales 2^-9..2^0), read
    back by transformers' own loader with `Mxfp4Config(dequantize=True)`."""
    from transformers import GptOssConfig, GptOssForCausalLM, Mxfp4Config
    from safetensors.torch import load_file
    out = os.path.join(HERE, "mxfp4")
    shutil.rmtree(out, ignore_errors=True)
    cfg = GptOssConfig(hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16, num_local_experts=4, num_experts_per_tok=2,
                       vocab_size=128, layer_types=["full_attention"])
    base = tempfile.mkdtemp()
    torch.manual_seed(3)  # the same file whatever ran before
    GptOssForCausalLM(cfg).to(torch.bfloat16).save_pretrained(base)
    g = torch.Generator().manual_seed(3)
    tensors = {}
    for k, v in load_file(os.path.join(base, "model.safetensors")).items():
        if k.endswith("experts.gate_up_proj") or k.endswith("experts.down_proj"):
            e, inp, outd = v.shape  # the model's [in, out]; stored as [out, in / 32, 16] per expert
            tensors[k + "_blocks"] = torch.randint(0, 256, (e, outd, inp // 32, 16), dtype=torch.uint8,
                                                   generator=g)
            tensors[k + "_scales"] = torch.randint(118, 128, (e, outd, inp // 32), dtype=torch.uint8,
                                                   generator=g)
        else:
            tensors[k] = v
    os.makedirs(out)
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(base, "config.json")) as f:
        config = json.load(f)
    config["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    shutil.rmtree(base)
    m = GptOssForCausalLM.from_pretrained(out, quantization_config=Mxfp4Config(dequantize=True),
                                          dtype=torch.bfloat16, device_map="cpu")
    params = dict(m.named_parameters())
    q = {}
    for name in ("model.layers.0.mlp.experts.gate_up_proj", "model.layers.0.mlp.experts.down_proj"):
        p = params[name].detach().to(torch.float64).transpose(1, 2)  # back to the stored [out, in]
        e, n, k = p.shape
        # modelmap shows stacked experts one matrix under the other: [experts · out, in].
        q[name + "_blocks"] = {"dtype": "U4", "shape": [e, n, k], "mean": float(p.mean()),
                               "samples": samples(p.reshape(e * n, k))}
    facts["mxfp4"] = {"quantized": q, "tensors": len(tensors)}


def load_packing_utils():
    """AutoAWQ's own packing and dequantizing functions (awq/utils/packing_utils.py, plain torch:
    the package itself needs CUDA to install). AWQ_SRC names the unpacked autoawq 0.2.9 sdist."""
    import importlib.util
    path = os.path.join(os.environ.get("AWQ_SRC", "/tmp/pipdl/autoawq-0.2.9"), "awq/utils/packing_utils.py")
    spec = importlib.util.spec_from_file_location("packing_utils", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def gptq_dequant(qweight, qzeros, scales, g_idx, bits, v1):
    """GPTQModel's TorchQuantLinear.dequantize_weight (bits 2, 4, 8), after its v1 -> v2 zero
    conversion (+1) for checkpoint_format gptq."""
    per = 32 // bits
    maxq = 2 ** bits - 1
    wf = torch.arange(0, 32, bits, dtype=torch.int32)
    zeros = torch.bitwise_right_shift(qzeros.unsqueeze(2).expand(-1, -1, per), wf.unsqueeze(0)) & maxq
    zeros = zeros.reshape(qzeros.shape[0], -1)[:, : scales.shape[1]]
    if v1:
        zeros = zeros + 1
    weight = torch.bitwise_right_shift(qweight.unsqueeze(1).expand(-1, per, -1), wf.unsqueeze(-1)) & maxq
    weight = weight.reshape(weight.shape[0] * weight.shape[1], weight.shape[2])
    g = g_idx.long()
    return scales.float()[g] * (weight - zeros[g]).float()


LINEARS = {"self_attn.q_proj": (128, 128), "self_attn.k_proj": (64, 128), "self_attn.v_proj": (64, 128),
           "self_attn.o_proj": (128, 128), "mlp.gate_proj": (256, 128), "mlp.up_proj": (256, 128),
           "mlp.down_proj": (128, 256)}


def minmax_quant(w, bits, g_idx, groups):
    """Asymmetric min-max quantization of w [out, in] per group of input rows: the integer
    [in, out] codes, scales [groups, out] (f16) and zero points [groups, out]."""
    maxq = 2 ** bits - 1
    wt = w.t()  # [in, out]
    scales = torch.zeros(groups, wt.shape[1])
    zeros = torch.zeros(groups, wt.shape[1], dtype=torch.int32)
    for gi in range(groups):
        rows = wt[g_idx == gi]
        lo, hi = rows.min(0).values.clamp(max=0), rows.max(0).values.clamp(min=0)
        s = ((hi - lo) / maxq).clamp(min=1e-8)
        scales[gi] = s
        zeros[gi] = torch.round(-lo / s).clamp(0, maxq).to(torch.int32)
    scales = scales.half()
    codes = torch.round(wt / scales.float()[g_idx] + zeros[g_idx]).clamp(0, maxq).to(torch.int32)
    return codes, scales, zeros


def gptq_awq(facts):
    pu = load_packing_utils()
    g = torch.Generator().manual_seed(2)
    weights = {n: torch.randn(o, i, generator=g) * 0.02 for n, (o, i) in LINEARS.items()}
    variants = {"gptq": ("gptq", 4, False), "gptq_8bit": ("gptq", 8, False),
                "gptq_act_order": ("gptq", 4, True), "awq": ("awq", 4, False)}
    group = 32
    for name, (method, bits, act_order) in variants.items():
        out = os.path.join(HERE, name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        tensors, q = {}, {}
        for lin, w in weights.items():
            k, n = w.shape[1], w.shape[0]
            groups = k // group
            g_idx = torch.arange(k, dtype=torch.int32) // group
            if act_order:
                g_idx = g_idx[torch.randperm(k, generator=g)]
            codes, scales, zeros = minmax_quant(w, bits, g_idx, groups)
            p = f"model.layers.0.{lin}"
            if method == "gptq":
                # AutoAWQ's exllama (GPTQ) packing: inputs packed down the rows, zero points
                # less one packed along the outputs, as GPTQ's v1 checkpoints store them.
                qweight, qzeros = pu.pack_exllama(codes, zeros - 1, bits)
                tensors[f"{p}.g_idx"] = g_idx
                real = gptq_dequant(qweight, qzeros, scales, g_idx, bits, v1=True)
            else:
                # AutoAWQ's WQLinear_GEMM.from_linear packing: eight outputs a word, AWQ's order.
                order = [0, 2, 4, 6, 1, 3, 5, 7]
                qweight = torch.zeros(k, n // 8, dtype=torch.int32)
                qzeros = torch.zeros(groups, n // 8, dtype=torch.int32)
                for col in range(n // 8):
                    for i in range(8):
                        qweight[:, col] |= codes[:, col * 8 + order[i]] << (i * 4)
                        qzeros[:, col] |= zeros[:, col * 8 + order[i]] << (i * 4)
                real = pu.dequantize_gemm(qweight, qzeros, scales.float(), 4, group)
            tensors[f"{p}.qweight"] = qweight
            tensors[f"{p}.qzeros"] = qzeros
            tensors[f"{p}.scales"] = scales
            q[f"{p}.qweight"] = fact("U4" if bits == 4 else "U8", real)
            # the zero points, unpacked (GPTQ's stored less one)
            q[f"{p}.qzeros"] = fact("U4" if bits == 4 else "U8", zeros.double())
        tensors["model.embed_tokens.weight"] = (torch.randn(64, 128, generator=g) * 0.02).to(torch.bfloat16)
        tensors["model.layers.0.input_layernorm.weight"] = torch.ones(128, dtype=torch.float16)
        save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
        qc = {"quant_method": method, "bits": bits, "group_size": group}
        if method == "gptq":
            qc.update({"desc_act": act_order, "sym": False, "checkpoint_format": "gptq"})
        else:
            qc.update({"version": "gemm", "zero_point": True})
        config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 128,
                  "intermediate_size": 256, "num_hidden_layers": 1, "quantization_config": qc}
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        facts[name] = {"quantized": q, "tensors": len(tensors)}


def bitsandbytes_checkpoints(base, facts):
    """transformers' BitsAndBytesConfig on CPU (bitsandbytes 0.50), saved by save_pretrained;
    the reference values are bitsandbytes' own dequantize_4bit (QuantState.from_dict of the
    saved tensors) and int8_vectorwise_dequant."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import QuantState, dequantize_4bit, int8_vectorwise_dequant
    from transformers import BitsAndBytesConfig
    configs = {
        "bnb_nf4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16),
        "bnb_fp4": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4",
                                      bnb_4bit_compute_dtype=torch.bfloat16),
        "bnb_int8": BitsAndBytesConfig(load_in_8bit=True),
        # As QLoRA with FSDP stores them: the packed codes in a bfloat16 tensor.
        "bnb_nf4_bf16": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                           bnb_4bit_quant_storage=torch.bfloat16,
                                           bnb_4bit_compute_dtype=torch.bfloat16),
    }
    for name, qc in configs.items():
        out = os.path.join(HERE, name)
        shutil.rmtree(out, ignore_errors=True)
        m = AutoModelForCausalLM.from_pretrained(base, quantization_config=qc, device_map="cpu",
                                                 dtype=torch.bfloat16)
        m.save_pretrained(out)
        stored = saved_tensors(out)
        q = {}
        for k, t in stored.items():
            state = [s for s in stored if s.startswith(k + ".quant_state.")]
            if state:
                qs = QuantState.from_dict({s[len(k) + 1:]: v for s, v in stored.items()
                                           if s.startswith(k + ".")}, device=torch.device("cpu"))
                qs.dtype = torch.float32  # the values in f32, not rounded to the compute dtype
                q[k] = fact("U4", dequantize_4bit(t, qs))
                if qs.nested:
                    # the double-quantized block scales, as bitsandbytes reads them back
                    from bitsandbytes.functional import dequantize_blockwise
                    absmax = (dequantize_blockwise(qs.absmax, qs.state2) + qs.offset).double()
                    f = fact("U8", absmax.reshape(1, -1))
                    f["shape"] = [absmax.numel()]
                    q[k + ".absmax"] = f
            elif k.endswith(".weight") and k[: -len(".weight")] + ".SCB" in stored:
                scb = stored[k[: -len(".weight")] + ".SCB"]
                q[k] = fact("I8", int8_vectorwise_dequant(t, scb).float())
        facts[name] = {"quantized": q, "tensors": len(stored), "bitsandbytes": bnb.__version__}


def modelopt_checkpoints(base, facts):
    """NVIDIA ModelOpt 0.47 on CPU: mtq.quantize (NVFP4_DEFAULT_CFG, FP8_DEFAULT_CFG; one random
    batch to calibrate) and export_hf_checkpoint. Reference values: ModelOpt's own
    NVFP4QTensor.dequantize in f32, and fp8 × weight_scale for FP8."""
    import modelopt
    import modelopt.torch.quantization as mtq
    from modelopt.torch.export import export_hf_checkpoint
    from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor
    for name, cfg in {"modelopt_nvfp4": mtq.NVFP4_DEFAULT_CFG, "modelopt_fp8": mtq.FP8_DEFAULT_CFG}.items():
        out = os.path.join(HERE, name)
        shutil.rmtree(out, ignore_errors=True)
        torch.manual_seed(0)
        m = LlamaForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
        mtq.quantize(m, cfg, forward_loop=lambda mm: mm(torch.randint(0, 128, (1, 16))))
        export_hf_checkpoint(m, export_dir=out)
        stored = saved_tensors(out)
        q = {}
        for k, t in stored.items():
            if not k.endswith(".weight") or k + "_scale" not in stored:
                continue
            if t.dtype == torch.uint8:
                n, k2 = t.shape
                qt = NVFP4QTensor(torch.Size([n, k2 * 2]), torch.float32, t)
                real = qt.dequantize(dtype=torch.float32, scale=stored[k + "_scale"],
                                     double_scale=stored[k + "_scale_2"], block_sizes={-1: 16})
                q[k] = fact("U4", real)
            else:
                q[k] = fact("F8_E4M3", t.double() * stored[k + "_scale"].double())
        facts[name] = {"quantized": q, "tensors": len(stored), "modelopt": modelopt.__version__}


def main():
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=128, max_position_embeddings=64)
    base = tempfile.mkdtemp()
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(base)
    facts = {}
    presets = {"w4a16": "W4A16", "w8a16": "W8A16", "w8a8": "W8A8", "fp8": "FP8_DYNAMIC",
               "fp8_block": "FP8_BLOCK", "nvfp4": "NVFP4A16", "ct_mxfp4": "MXFP4A16",
               "ct_mxfp8": "MXFP8A16"}
    for name, scheme in presets.items():
        llm_compressor(base, name, QuantizationModifier(targets="Linear", scheme=scheme, ignore=["lm_head"]),
                       facts)
    asym = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=4, type="int", symmetric=False, strategy="group", group_size=32))
    llm_compressor(base, "w4a16_asym",
                   QuantizationModifier(config_groups={"group_0": asym}, ignore=["lm_head"]), facts)
    for bits in (3, 6):
        # Other widths pack densely, codes split across int32 words.
        odd = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
            num_bits=bits, type="int", symmetric=True, strategy="group", group_size=32))
        llm_compressor(base, f"w{bits}a16",
                       QuantizationModifier(config_groups={"group_0": odd}, ignore=["lm_head"]), facts)
    deepseek(facts)
    gptq_awq(facts)
    bitsandbytes_checkpoints(base, facts)
    modelopt_checkpoints(base, facts)
    gpt_oss_mxfp4(facts)
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
