"""Writes tiny diffusion models with diffusers, and the order their forward passes call their
modules in, for `tests/diffusion.rs`.

    python make_diffusion.py        # diffusers 0.42, torch

- `unet/`: an SDXL-shaped `UNet2DConditionModel` (cross-attention down and up blocks, a plain
  block at each end, the `text_time` added embedding), saved by `save_pretrained`;
- `vae/`: an `AutoencoderKL` (encoder, decoder, mid-block attention), saved by `save_pretrained`;
- `flux/`: a `FluxTransformer2DModel` with guidance, saved by `save_pretrained`;
- `sd3/`: an `SD3Transformer2DModel` (its last block reads the text without updating it);
- `controlnet/`: a `ControlNetModel` (a UNet's down half, its conditioning image's embedding, a
  zero convolution per kept state);
- `qwen_image/`: a `QwenImageTransformer2DModel` (Flux-like double blocks, its text normalized
  before it is embedded);
- `wan/`: a `WanTransformer3DModel` (Wan 2.1's video DiT), and `wan_comfy.safetensors`, the same
  weights under Wan's own names with ComfyUI's `model.diffusion_model.` prefix, checked to convert
  back exactly through diffusers' own `convert_wan_transformer_to_diffusers`;
- `flux_bfl.safetensors`: the same weights under Black Forest Labs' own names (`double_blocks`,
  `single_blocks`, fused `qkv` and `linear1`: the files ComfyUI loads), checked to convert back
  to the diffusers weights exactly through diffusers' own `convert_flux_transformer_checkpoint_to_
  diffusers` (with its hard-coded width, 3072, replaced by this model's).

- `sd_ldm.safetensors`: the UNet and the VAE under the original Stable Diffusion code's names, in
  one file with a CLIP text encoder, as the single-file checkpoints (`v1-5-pruned.safetensors`,
  civitai's) hold a whole pipeline: `model.diffusion_model.` (`input_blocks`, `middle_block`,
  `output_blocks`), `first_stage_model.` (`down.N.block.M`, `mid.attn_1`, `up.N` run last level
  first), `cond_stage_model.transformer.`; the UNet and VAE parts checked to convert back exactly
  through diffusers' own `convert_ldm_unet_checkpoint` and `convert_ldm_vae_checkpoint`.

`facts.json` holds, per file, the modules with weights in the order the model's forward pass first
calls them (forward pre-hooks; a Black Forest Labs name stands for the diffusers modules fused
into it, at the first one's place), the number of resnets in the UNet's up path (each reads one
skip connection back), and the module count.
"""
import inspect
import json
import os

import torch
from diffusers import AutoencoderKL, ControlNetModel, FluxTransformer2DModel, QwenImageTransformer2DModel, SD3Transformer2DModel, UNet2DConditionModel, WanTransformer3DModel
from diffusers.loaders import single_file_utils
from safetensors.torch import save_file

here = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)


def call_order(model, run):
    """Names of the modules holding weights of the file (parameters or saved buffers), in the
    order the forward pass enters them."""
    order, hooks = [], []
    owners = {k.rsplit(".", 1)[0] for k in model.state_dict()}
    for name, m in model.named_modules():
        if name in owners:
            hooks.append(m.register_forward_pre_hook(lambda _m, _a, name=name: order.append(name) if name not in order else None))
    with torch.no_grad():
        run()
    for h in hooks:
        h.remove()
    return order


facts = {}

unet = UNet2DConditionModel(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(16, 32),
    layers_per_block=2,
    cross_attention_dim=24,
    attention_head_dim=4,
    norm_num_groups=8,
    addition_embed_type="text_time",
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=24 + 6 * 8,
).eval()
unet.save_pretrained(os.path.join(here, "unet"))
sample = torch.randn(1, 4, 8, 8)
facts["unet/diffusion_pytorch_model.safetensors"] = {
    "call_order": call_order(
        unet,
        lambda: unet(
            sample,
            10,
            encoder_hidden_states=torch.randn(1, 5, 24),
            added_cond_kwargs={"text_embeds": torch.randn(1, 24), "time_ids": torch.randn(1, 6)},
        ),
    ),
    "up_resnets": sum(len(b.resnets) for b in unet.up_blocks),
}

vae = AutoencoderKL(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    block_out_channels=(8, 16),
    latent_channels=4,
    norm_num_groups=4,
    sample_size=16,
).eval()
vae.save_pretrained(os.path.join(here, "vae"))
facts["vae/diffusion_pytorch_model.safetensors"] = {
    "call_order": call_order(vae, lambda: vae(torch.randn(1, 3, 16, 16))),
    "up_resnets": 0,
}

heads, head_dim = 2, 16
flux = FluxTransformer2DModel(
    patch_size=1,
    in_channels=8,
    num_layers=2,
    num_single_layers=2,
    attention_head_dim=head_dim,
    num_attention_heads=heads,
    joint_attention_dim=24,
    pooled_projection_dim=16,
    guidance_embeds=True,
    axes_dims_rope=(4, 6, 6),
).eval()
flux.save_pretrained(os.path.join(here, "flux"))
tokens, text = 6, 5
flux_order = call_order(
    flux,
    lambda: flux(
        hidden_states=torch.randn(1, tokens, 8),
        encoder_hidden_states=torch.randn(1, text, 24),
        pooled_projections=torch.randn(1, 16),
        timestep=torch.tensor([0.5]),
        img_ids=torch.zeros(tokens, 3),
        txt_ids=torch.zeros(text, 3),
        guidance=torch.tensor([3.5]),
    ),
)
facts["flux/diffusion_pytorch_model.safetensors"] = {"call_order": flux_order, "up_resnets": 0}

sd3 = SD3Transformer2DModel(
    sample_size=8,
    patch_size=2,
    in_channels=4,
    num_layers=2,
    attention_head_dim=8,
    num_attention_heads=2,
    joint_attention_dim=16,
    caption_projection_dim=16,
    pooled_projection_dim=12,
    out_channels=4,
    pos_embed_max_size=16,
).eval()
sd3.save_pretrained(os.path.join(here, "sd3"))
facts["sd3/diffusion_pytorch_model.safetensors"] = {
    "call_order": call_order(
        sd3,
        lambda: sd3(
            hidden_states=torch.randn(1, 4, 8, 8),
            encoder_hidden_states=torch.randn(1, 5, 16),
            pooled_projections=torch.randn(1, 12),
            timestep=torch.tensor([10]),
        ),
    ),
    "up_resnets": 0,
}

wan = WanTransformer3DModel(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=8,
    in_channels=4,
    out_channels=4,
    text_dim=16,
    freq_dim=16,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
).eval()
wan.save_pretrained(os.path.join(here, "wan"))
wan_order = call_order(
    wan,
    lambda: wan(
        hidden_states=torch.randn(1, 4, 2, 4, 4),
        timestep=torch.tensor([10]),
        encoder_hidden_states=torch.randn(1, 5, 16),
    ),
)
# The root's own modulation table (`scale_shift_table`) is no submodule a hook can see: it is read
# after the blocks, before `proj_out`.
wan_order.insert(wan_order.index("proj_out"), "scale_shift_table")
facts["wan/diffusion_pytorch_model.safetensors"] = {"call_order": wan_order, "up_resnets": 0}
# Under Wan's own names (ComfyUI's files), checked through diffusers' own conversion back.
wan_names = [
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("attn1", "self_attn"),
    ("attn2", "cross_attn"),
    ("to_out.0", "o"),
    ("to_q", "q"),
    ("to_k", "k"),
    ("to_v", "v"),
    ("ffn.net.0.proj", "ffn.0"),
    ("ffn.net.2", "ffn.2"),
    ("norm2", "norm3"),
    ("proj_out", "head.head"),
]


def wan_original(module):
    if module == "scale_shift_table":
        return "head.modulation"
    if module.startswith("blocks.") and module.count(".") == 1:
        return module + ".modulation"
    for a, b in wan_names:
        module = module.replace(a, b)
    return module


wan_sd, wan_map = {}, {}
for k, v in wan.state_dict().items():
    module, t = k.rsplit(".", 1) if "." in k else ("", k)
    if k == "scale_shift_table":
        wan_sd["head.modulation"] = v.clone()
        wan_map[k] = "head"
        continue
    if t == "scale_shift_table":
        # A tensor `modulation` of the block itself.
        wan_sd[f"{module}.modulation"] = v.clone()
        wan_map[module] = module
        continue
    wan_map[module] = wan_original(module)
    wan_sd[f"{wan_original(module)}.{t}"] = v.clone()
back = single_file_utils.convert_wan_transformer_to_diffusers({f"model.diffusion_model.{k}": v.clone() for k, v in wan_sd.items()})
assert back.keys() == wan.state_dict().keys(), set(back) ^ set(wan.state_dict())
assert all(torch.equal(back[k], v) for k, v in wan.state_dict().items())
save_file({f"model.diffusion_model.{k}": v.contiguous() for k, v in wan_sd.items()}, os.path.join(here, "wan_comfy.safetensors"))
facts["wan_comfy.safetensors"] = {"call_order": [f"model.diffusion_model.{wan_map[m]}" for m in wan_order], "up_resnets": 0}

qwen = QwenImageTransformer2DModel(
    patch_size=2,
    in_channels=16,
    out_channels=4,
    num_layers=2,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=16,
    axes_dims_rope=(4, 6, 6),
).eval()
qwen.save_pretrained(os.path.join(here, "qwen_image"))
facts["qwen_image/diffusion_pytorch_model.safetensors"] = {
    "call_order": call_order(
        qwen,
        lambda: qwen(
            hidden_states=torch.randn(1, 4, 16),
            encoder_hidden_states=torch.randn(1, 5, 16),
            encoder_hidden_states_mask=torch.ones(1, 5),
            timestep=torch.tensor([0.5]),
            img_shapes=[(1, 2, 2)],
        ),
    ),
    "up_resnets": 0,
}

controlnet = ControlNetModel(
    block_out_channels=(16, 32),
    layers_per_block=1,
    cross_attention_dim=24,
    attention_head_dim=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    norm_num_groups=8,
    conditioning_embedding_out_channels=(8, 16),
).eval()
controlnet.save_pretrained(os.path.join(here, "controlnet"))
facts["controlnet/diffusion_pytorch_model.safetensors"] = {
    "call_order": call_order(
        controlnet,
        lambda: controlnet(
            torch.randn(1, 4, 8, 8),
            10,
            encoder_hidden_states=torch.randn(1, 5, 24),
            controlnet_cond=torch.randn(1, 3, 16, 16),
        ),
    ),
    "up_resnets": 0,
}

# The same weights under Black Forest Labs' names.
sd = {k: v.clone() for k, v in flux.state_dict().items()}
bfl, names = {}, {}


def put(new, old_modules, tensor_suffix, tensors):
    bfl[f"{new}.{tensor_suffix}"] = torch.cat(tensors) if len(tensors) > 1 else tensors[0]
    for m in old_modules:
        names[m] = new


def rename(new, old, suffixes=("weight", "bias"), scale=False):
    for s in suffixes:
        key = f"{old}.{s}"
        if key in sd:
            put(new, [old], "scale" if scale else s, [sd[key]])


def swap(w):
    a, b = w.chunk(2, dim=0)
    return torch.cat([b, a], dim=0)


for new, old in [
    ("time_in.in_layer", "time_text_embed.timestep_embedder.linear_1"),
    ("time_in.out_layer", "time_text_embed.timestep_embedder.linear_2"),
    ("vector_in.in_layer", "time_text_embed.text_embedder.linear_1"),
    ("vector_in.out_layer", "time_text_embed.text_embedder.linear_2"),
    ("guidance_in.in_layer", "time_text_embed.guidance_embedder.linear_1"),
    ("guidance_in.out_layer", "time_text_embed.guidance_embedder.linear_2"),
    ("txt_in", "context_embedder"),
    ("img_in", "x_embedder"),
    ("final_layer.linear", "proj_out"),
]:
    rename(new, old)
for s in ("weight", "bias"):
    put("final_layer.adaLN_modulation.1", ["norm_out.linear"], s, [swap(sd[f"norm_out.linear.{s}"])])
for i in range(len(flux.transformer_blocks)):
    d, t = f"double_blocks.{i}", f"transformer_blocks.{i}"
    rename(f"{d}.img_mod.lin", f"{t}.norm1.linear")
    rename(f"{d}.txt_mod.lin", f"{t}.norm1_context.linear")
    for s in ("weight", "bias"):
        img = [f"{t}.attn.to_{x}" for x in "qkv"]
        txt = [f"{t}.attn.add_{x}_proj" for x in "qkv"]
        put(f"{d}.img_attn.qkv", img, s, [sd[f"{m}.{s}"] for m in img])
        put(f"{d}.txt_attn.qkv", txt, s, [sd[f"{m}.{s}"] for m in txt])
    rename(f"{d}.img_attn.norm.query_norm", f"{t}.attn.norm_q", ("weight",), scale=True)
    rename(f"{d}.img_attn.norm.key_norm", f"{t}.attn.norm_k", ("weight",), scale=True)
    rename(f"{d}.txt_attn.norm.query_norm", f"{t}.attn.norm_added_q", ("weight",), scale=True)
    rename(f"{d}.txt_attn.norm.key_norm", f"{t}.attn.norm_added_k", ("weight",), scale=True)
    rename(f"{d}.img_mlp.0", f"{t}.ff.net.0.proj")
    rename(f"{d}.img_mlp.2", f"{t}.ff.net.2")
    rename(f"{d}.txt_mlp.0", f"{t}.ff_context.net.0.proj")
    rename(f"{d}.txt_mlp.2", f"{t}.ff_context.net.2")
    rename(f"{d}.img_attn.proj", f"{t}.attn.to_out.0")
    rename(f"{d}.txt_attn.proj", f"{t}.attn.to_add_out")
for i in range(len(flux.single_transformer_blocks)):
    b, t = f"single_blocks.{i}", f"single_transformer_blocks.{i}"
    rename(f"{b}.modulation.lin", f"{t}.norm.linear")
    for s in ("weight", "bias"):
        fused = [f"{t}.attn.to_{x}" for x in "qkv"] + [f"{t}.proj_mlp"]
        put(f"{b}.linear1", fused, s, [sd[f"{m}.{s}"] for m in fused])
    rename(f"{b}.norm.query_norm", f"{t}.attn.norm_q", ("weight",), scale=True)
    rename(f"{b}.norm.key_norm", f"{t}.attn.norm_k", ("weight",), scale=True)
    rename(f"{b}.linear2", f"{t}.proj_out")

# diffusers' own conversion, its width set to this model's, reads them back exactly.
src = inspect.getsource(single_file_utils.convert_flux_transformer_checkpoint_to_diffusers)
src = src.replace("inner_dim = 3072", f"inner_dim = {heads * head_dim}")
scope = dict(vars(single_file_utils))
exec(src, scope)
back = scope["convert_flux_transformer_checkpoint_to_diffusers"]({k: v.clone() for k, v in bfl.items()})
assert back.keys() == sd.keys(), set(back) ^ set(sd)
assert all(torch.equal(back[k], sd[k]) for k in sd)
save_file({k: v.contiguous() for k, v in bfl.items()}, os.path.join(here, "flux_bfl.safetensors"))
bfl_order = []
for m in flux_order:
    if names[m] not in bfl_order:
        bfl_order.append(names[m])
facts["flux_bfl.safetensors"] = {"call_order": bfl_order, "up_resnets": 0}

# The whole pipeline under the original code's names.
from transformers import CLIPTextConfig, CLIPTextModel

clip = CLIPTextModel(
    CLIPTextConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2, vocab_size=100, max_position_embeddings=16)
).eval()
L = unet.config.layers_per_block
resnet_names = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def ldm_unet(module):
    p = module.split(".")
    top = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2", "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    if module in top:
        return top[module]
    kind, rest = p[0], p[1:]
    if kind == "mid_block":
        what, j, tail = rest[0], int(rest[1]), rest[2:]
        if what == "resnets":
            return f"middle_block.{2 * j}.{resnet_names[tail[0]]}"
        return ".".join(["middle_block.1", *tail])
    i, what = int(rest[0]), rest[1]
    if what in ("downsamplers", "upsamplers"):
        if kind == "down_blocks":
            return f"input_blocks.{(L + 1) * (i + 1)}.0.op"
        has_attn = hasattr(unet.up_blocks[i], "attentions")
        return f"output_blocks.{(L + 1) * i + L}.{2 if has_attn else 1}.conv"
    j, tail = int(rest[2]), rest[3:]
    index = (L + 1) * i + j + 1 if kind == "down_blocks" else (L + 1) * i + j
    block = "input_blocks" if kind == "down_blocks" else "output_blocks"
    if what == "resnets":
        return f"{block}.{index}.0.{resnet_names[tail[0]]}"
    return ".".join([f"{block}.{index}.1", *tail])


levels = len(vae.config.block_out_channels)
vae_resnet = {"conv_shortcut": "nin_shortcut"}
vae_attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def ldm_vae(module):
    p = module.split(".")
    if p[0] in ("quant_conv", "post_quant_conv"):
        return module
    half, rest = p[0], p[1:]
    tail = ".".join(rest)
    if tail == "conv_norm_out":
        return f"{half}.norm_out"
    if rest[0] == "mid_block":
        if rest[1] == "resnets":
            return f"{half}.mid.block_{int(rest[2]) + 1}.{vae_resnet.get(rest[3], rest[3])}"
        return f"{half}.mid.attn_1.{vae_attn['.'.join(rest[3:])]}"
    if rest[0] in ("down_blocks", "up_blocks"):
        i = int(rest[1])
        level = i if rest[0] == "down_blocks" else levels - 1 - i
        name = "down" if rest[0] == "down_blocks" else "up"
        if rest[2] in ("downsamplers", "upsamplers"):
            return f"{half}.{name}.{level}.{name}sample.conv"
        return f"{half}.{name}.{level}.block.{rest[3]}.{vae_resnet.get(rest[4], rest[4])}"
    return module


def moved(model, rename, prefix, reshape=lambda k, v: v):
    out, names = {}, {}
    for k, v in model.state_dict().items():
        module, t = k.rsplit(".", 1)
        new = rename(module)
        names[module] = prefix + new
        out[f"{prefix}{new}.{t}"] = reshape(new, v.clone())
    return out, names


unet_ldm, unet_names = moved(unet, ldm_unet, "model.diffusion_model.")
# The original VAE's attention projections are 1×1 convolutions.
vae_ldm, vae_names = moved(vae, ldm_vae, "first_stage_model.", lambda k, v: v[:, :, None, None] if ".mid.attn_1." in k and k.rsplit(".", 1)[1] in "qkv proj_out" and v.dim() == 2 else v)
back = single_file_utils.convert_ldm_unet_checkpoint(dict(unet_ldm), dict(unet.config))
assert back.keys() == unet.state_dict().keys(), set(back) ^ set(unet.state_dict())
assert all(torch.equal(back[k], v) for k, v in unet.state_dict().items())
back = single_file_utils.convert_ldm_vae_checkpoint(dict(vae_ldm), dict(vae.config))
assert back.keys() == vae.state_dict().keys(), set(back) ^ set(vae.state_dict())
assert all(torch.equal(back[k], v) for k, v in vae.state_dict().items())
# Named as transformers 4 named them when Stable Diffusion's checkpoints were saved (`text_model.`).
clip_prefix = "cond_stage_model.transformer." + ("" if any(k.startswith("text_model.") for k in clip.state_dict()) else "text_model.")
clip_sd = {f"{clip_prefix}{k}": v.clone() for k, v in clip.state_dict().items() if "position_ids" not in k}
save_file({k: v.contiguous() for k, v in {**unet_ldm, **vae_ldm, **clip_sd}.items()}, os.path.join(here, "sd_ldm.safetensors"))
ids = torch.tensor([[1, 2, 3, 4, 5]])
clip_order = [f"{clip_prefix}{n}" for n in call_order(clip, lambda: clip(ids))]
unet_order = [unet_names[n] for n in facts["unet/diffusion_pytorch_model.safetensors"]["call_order"]]
vae_order = [vae_names[n] for n in facts["vae/diffusion_pytorch_model.safetensors"]["call_order"]]
facts["sd_ldm.safetensors"] = {"call_order": clip_order + unet_order + vae_order, "up_resnets": facts["unet/diffusion_pytorch_model.safetensors"]["up_resnets"]}

for f in facts.values():
    f["modules"] = len(f["call_order"])
with open(os.path.join(here, "facts.json"), "w") as out:
    json.dump(facts, out, indent=1)
for k, f in facts.items():
    print(k, f["modules"], "modules,", f["up_resnets"], "skips")
