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


def build(path, mode, with_tokenizer, ranks=0):
    model = Model()
    for p in model.parameters():
        with torch.no_grad():
            p.add_(torch.randn_like(p) * 0.01)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "model_config.yaml"), "w") as f:
            f.write(CONFIG)
        if ranks:
            # Model parallelism: one `mp_rank_NN/model_weights.ckpt` per rank (NeMo's
            # inject_model_parallel_rank), here rank 0 the model and the others zeros.
            for r in range(ranks):
                os.makedirs(os.path.join(tmp, f"mp_rank_{r:02d}"))
                sd = model.state_dict() if r == 0 else {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
                torch.save(sd, os.path.join(tmp, f"mp_rank_{r:02d}", "model_weights.ckpt"))
        else:
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
for name, mode, tok, ranks in (
    ("conformer.nemo", "w:", True, 0),
    ("conformer_gz.nemo", "w:gz", False, 0),
    ("conformer_tp.nemo", "w:", False, 2),
):
    path = os.path.join(HERE, name)
    build(path, mode, tok, ranks)
    # What torch reads back from the weights inside (rank 0's, for model parallelism).
    with tarfile.open(path, "r:*") as tar:
        member = tar.extractfile("./mp_rank_00/model_weights.ckpt" if ranks else "./model_weights.ckpt")
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
with open(os.path.join(HERE, "facts.json"), "w") as f:
    json.dump(facts, f, indent=1, sort_keys=True)
