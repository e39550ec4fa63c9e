"""Writes .nemo archives laid out as NVIDIA NeMo's SaveRestoreConnector writes them, and
facts.json with what torch reads back from the weights inside.

    python make_nemo.py

NeMo (nemo_toolkit 3.0.0, `nemo/core/connectors/save_restore_connector.py`) saves a model by
writing `model_config.yaml` (OmegaConf) and `model_weights.ckpt` (`torch.save(model.state_dict())`)
and any artifacts (a tokenizer's files, under a hashed name) into a folder, then
`tarfile.open(filename, "w:").add(folder, arcname=".")`; NeMo before 1.7 used "w:gz", which its
restore still reads. This script does the same with torch 2.14 and Python's tarfile, for a small
Conformer-style speech encoder named as NeMo's ASR models name theirs (`encoder.layers.N.…`).
"""
import gzip
import json
import os
import shutil
import tarfile
import tempfile

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)

D, FF, LAYERS, FEATS, VOCAB = 16, 32, 2, 8, 12


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm_feed_forward1 = nn.LayerNorm(D)
        self.feed_forward1 = nn.Sequential()
        self.feed_forward1.add_module("linear1", nn.Linear(D, FF))
        self.feed_forward1.add_module("linear2", nn.Linear(FF, D))
        self.norm_self_att = nn.LayerNorm(D)
        self.self_attn = nn.Module()
        for n in ("linear_q", "linear_k", "linear_v", "linear_out"):
            self.self_attn.add_module(n, nn.Linear(D, D))
        # Relative positions, as NeMo's RelPositionMultiHeadAttention holds them.
        self.self_attn.add_module("linear_pos", nn.Linear(D, D, bias=False))
        self.self_attn.pos_bias_u = nn.Parameter(torch.zeros(2, D // 2))
        self.self_attn.pos_bias_v = nn.Parameter(torch.zeros(2, D // 2))
        self.norm_conv = nn.LayerNorm(D)
        self.conv = nn.Module()
        self.conv.add_module("pointwise_conv1", nn.Conv1d(D, 2 * D, 1))
        self.conv.add_module("depthwise_conv", nn.Conv1d(D, D, 9, padding=4, groups=D))
        self.conv.add_module("batch_norm", nn.BatchNorm1d(D))
        self.conv.add_module("pointwise_conv2", nn.Conv1d(D, D, 1))
        self.norm_feed_forward2 = nn.LayerNorm(D)
        self.feed_forward2 = nn.Sequential()
        self.feed_forward2.add_module("linear1", nn.Linear(D, FF))
        self.feed_forward2.add_module("linear2", nn.Linear(FF, D))
        self.norm_out = nn.LayerNorm(D)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.add_module("pre_encode", nn.Module())
        self.encoder.pre_encode.add_module("out", nn.Linear(FEATS, D))
        self.encoder.add_module("layers", nn.ModuleList([Layer() for _ in range(LAYERS)]))
        self.decoder = nn.Module()
        self.decoder.add_module("decoder_layers", nn.Sequential(nn.Conv1d(D, VOCAB + 1, 1)))


CONFIG = """sample_rate: 16000
target: nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE
nemo_version: 3.0.0
encoder:
  _target_: nemo.collections.asr.modules.ConformerEncoder
  feat_in: 8
  n_layers: 2
  d_model: 16
decoder:
  _target_: nemo.collections.asr.modules.ConvASRDecoder
  num_classes: 12
"""


def megatron_gpt():
    """A NeMo 1 MegatronGPTModel's state dict (legacy Megatron names under `model.`)."""
    V, H, F = 32, 16, 64
    sd = {"model.language_model.embedding.word_embeddings.weight": torch.randn(V, H) * 0.02}
    for i in range(2):
        p = f"model.language_model.encoder.layers.{i}"
        sd[f"{p}.input_layernorm.weight"] = 1 + torch.randn(H) * 0.1
        sd[f"{p}.input_layernorm.bias"] = torch.randn(H) * 0.02
        sd[f"{p}.self_attention.query_key_value.weight"] = torch.randn(3 * H, H) * 0.02
        sd[f"{p}.self_attention.query_key_value.bias"] = torch.randn(3 * H) * 0.02
        sd[f"{p}.self_attention.dense.weight"] = torch.randn(H, H) * 0.02
        sd[f"{p}.self_attention.dense.bias"] = torch.randn(H) * 0.02
        sd[f"{p}.post_attention_layernorm.weight"] = 1 + torch.randn(H) * 0.1
        sd[f"{p}.post_attention_layernorm.bias"] = torch.randn(H) * 0.02
        sd[f"{p}.mlp.dense_h_to_4h.weight"] = torch.randn(F, H) * 0.02
        sd[f"{p}.mlp.dense_h_to_4h.bias"] = torch.randn(F) * 0.02
        sd[f"{p}.mlp.dense_4h_to_h.weight"] = torch.randn(H, F) * 0.02
        sd[f"{p}.mlp.dense_4h_to_h.bias"] = torch.randn(H) * 0.02
    sd["model.language_model.encoder.final_layernorm.weight"] = 1 + torch.randn(H) * 0.1
    sd["model.language_model.encoder.final_layernorm.bias"] = torch.randn(H) * 0.02
    sd["model.language_model.output_layer.weight"] = torch.randn(V, H) * 0.02
    return sd


def tp_slice(name, t, rank, tp):
    """Tensor-parallel rank `rank`'s slice, as Megatron's parallel layers partition them."""
    if name.endswith(("query_key_value.weight", "query_key_value.bias", "dense_h_to_4h.weight",
                      "dense_h_to_4h.bias", "word_embeddings.weight", "output_layer.weight")):
        return t.chunk(tp, dim=0)[rank]
    if name.endswith(("attention.dense.weight", "dense_4h_to_h.weight")):
        return t.chunk(tp, dim=1)[rank]
    return t


def build_megatron(path, tp):
    """A NeMo 1 Megatron GPT saved with tensor parallelism: `mp_rank_NN/model_weights.ckpt`, each
    the rank's slices (NeMo's `inject_model_parallel_rank`)."""
    whole = megatron_gpt()
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "model_config.yaml"), "w") as f:
            f.write(f"target: nemo.collections.nlp.models.language_modeling.megatron_gpt_model.MegatronGPTModel\n"
                    f"tensor_model_parallel_size: {tp}\npipeline_model_parallel_size: 1\nnum_layers: 2\n")
        for r in range(tp):
            os.makedirs(os.path.join(tmp, f"mp_rank_{r:02d}"))
            sd = {k: tp_slice(k, v, r, tp).clone() for k, v in whole.items()}
            torch.save(sd, os.path.join(tmp, f"mp_rank_{r:02d}", "model_weights.ckpt"))
        with tarfile.open(path, "w:") as tar:
            tar.add(tmp, arcname=".")
    return whole


def build(path, mode, with_tokenizer):
    model = Model()
    for p in model.parameters():
        with torch.no_grad():
            p.add_(torch.randn_like(p) * 0.01)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "model_config.yaml"), "w") as f:
            f.write(CONFIG)
        torch.save(model.state_dict(), os.path.join(tmp, "model_weights.ckpt"))
        if with_tokenizer:
            # An artifact under NeMo's hashed name, longer than a tar header's 100 characters.
            name = "a" * 32 + "_tokenizer" + "_" * 40 + "vocabulary_of_the_sentencepiece_model.txt"
            with open(os.path.join(tmp, name), "w") as f:
                f.write("<unk>\n▁the\n")
        with tarfile.open(path, mode) as tar:
            tar.add(tmp, arcname=".")
    return model


facts = {}
for name, mode, tok in (
    ("conformer.nemo", "w:", True),
    ("conformer_gz.nemo", "w:gz", False),
):
    path = os.path.join(HERE, name)
    build(path, mode, tok)
    # What torch reads back from the weights inside.
    with tarfile.open(path, "r:*") as tar:
        member = tar.extractfile("./model_weights.ckpt")
        sd = torch.load(member, map_location="cpu")
    facts[name] = {
        k: {
            "dtype": str(v.dtype).replace("torch.", ""),
            "shape": list(v.shape),
            "mean": float(v.double().mean()) if v.numel() else 0.0,
            "first": [float(x) for x in v.double().flatten()[:3]],
        }
        for k, v in sd.items()
    }
# What Megatron's tools/checkpoint/loader_megatron.py reassembles from the ranks: the whole tensors.
whole = build_megatron(os.path.join(HERE, "megatron_gpt_tp.nemo"), 2)
facts["megatron_gpt_tp.nemo"] = {
    k: {
        "dtype": str(v.dtype).replace("torch.", ""),
        "shape": list(v.shape),
        "mean": float(v.double().mean()),
        "first": [float(x) for x in v.double().flatten()[:3]],
        "last": float(v.double().flatten()[-1]),
        "index_weighted_sum": float((torch.arange(v.numel(), dtype=torch.float64) * v.double().flatten()).sum()),
    }
    for k, v in whole.items()
}
with open(os.path.join(HERE, "facts.json"), "w") as f:
    json.dump(facts, f, indent=1, sort_keys=True)
