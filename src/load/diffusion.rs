//! Dataflow for diffusion model checkpoints, whose names follow no transformer family: diffusers'
//! UNets (Stable Diffusion 1.x/2.x, SDXL: `down_blocks.N.resnets.M`, `mid_block`, `up_blocks`),
//! its VAEs (`AutoencoderKL`: `encoder.*`, `quant_conv`, `post_quant_conv`, `decoder.*`) and Flux
//! transformers, SD3's MMDiT, Qwen-Image and Wan's video DiT, as diffusers names them (`transformer_blocks.N`, `single_transformer_blocks.N`)
//! and as Black Forest Labs' own checkpoints do (`double_blocks.N`, `single_blocks.N`, the files
//! ComfyUI loads), and the original Stable Diffusion code's names (`model.diffusion_model.
//! input_blocks.N.M`, `first_stage_model.decoder.up.N.block.M`: the single-file checkpoints that
//! hold a UNet, a VAE and a text encoder together).
//!
//! How it works: each module gets a place in the model's forward pass, a key sorted in the order
//! the model runs — part (a VAE's encoder before its decoder), stage (conv_in, down blocks, mid
//! block, up blocks, conv_out), block, item (a block's resnets and attentions interleaved as they
//! run), sub-block, rank inside it — and consecutive places are linked, modules with the same key
//! running side by side (q/k/v, a Flux block's image and text streams). On top of the chain:
//! - residual connections around each resnet (through its `conv_shortcut` where it has one), each
//!   attention block and each of its sub-layers, and each Flux block's attention and MLP;
//! - a UNet's skip connections: every hidden state its down path keeps (after conv_in, after each
//!   resnet or resnet + attention pair, after each downsampler) feeds the up path's resnets, last
//!   kept first, as `UNet2DConditionModel.forward` pops them;
//! - the time (and Flux's guidance and pooled-text) embedding feeding each resnet's
//!   `time_emb_proj` and each Flux block's modulation, from a path of its own (not chained into
//!   the image path).
//!
//! The text encoder's states enter from outside the file (a UNet's cross-attention keys and
//! values), so nothing links them. `tests/diffusion.rs` checks every edge against the order
//! diffusers' own forward pass calls the modules in.

use crate::model::{Model, NodeKind};

/// A key component that sorts after every index.
const LAST: u32 = u32::MAX;

/// A module's place in the forward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Place {
    /// Part, stage, block, item, sub-block, rank.
    key: [u32; 6],
    /// Runs side by side with the other modules of the same key.
    parallel: bool,
    /// Which path it is on: 0 the main one; others (time embeddings) are not chained into it.
    path: u8,
    /// Which stream it belongs to where a block runs two side by side (a Flux double block's
    /// image, 1, and text, 2); 0 for both. Consecutive places link within a stream.
    stream: u8,
    /// Reads every stream of the place before it (a Flux block's joint attention).
    mixes: bool,
    /// Side branch of the residual scope it sits in (a resnet's `conv_shortcut`): it reads the
    /// scope's input, and its output joins the scope's on the way to what follows.
    side: bool,
    /// Opens a residual scope: the places before it bypass to the place that closes the scope
    /// with the same first `depth` key components.
    opens: Option<u8>,
    /// Closes a residual scope of this depth.
    closes: Option<u8>,
    /// Fed by the time embedding.
    temb_in: bool,
    /// An output of the time embedding.
    temb_out: bool,
    /// Reads the text's states (a cross-attention's keys and values).
    text_in: bool,
    /// The text's states (a DiT's own text embedding).
    text_out: bool,
    /// A hidden state the up path reads back: the pair it belongs to (a later place of the same
    /// pair replaces it: a resnet's output, then its attention's).
    skip_out: Option<[u32; 4]>,
    /// Reads a hidden state back (an up block's resnet).
    skip_in: bool,
    /// Reads the `n`-th state the down path keeps (a ControlNet's output convolutions).
    reads_kept: Option<u32>,
    /// Reads the mid block's output (a ControlNet's last output convolution).
    reads_mid: bool,
}

/// Residual scope depths: a resnet or attention block (part, stage, block, item), a sub-layer
/// inside an attention block's transformer block (… sub-block), a diffusion transformer's block
/// (part, stage, block).
/// A UNet's or VAE's blocks hold items: resnets and attention blocks (their sub-blocks: the
/// attention block's own norm and projection in, each transformer block, the projection out),
/// and down- or upsamplers.
const ITEM: u8 = 4;
const SUB: u8 = 5;
const DIT_BLOCK: u8 = 3;

fn place(key: [u32; 6]) -> Place {
    Place {
        key,
        ..Place::default()
    }
}

/// The place of module `name` in a diffusion model, if its names are one's.
fn place_of(name: &str) -> Option<Place> {
    let segs: Vec<&str> = name.split('.').collect();
    // Skip a prefix (`model.diffusion_model.`, `first_stage_model.`, `unet.`, a pipeline's
    // component) up to the first segment a known family begins with.
    let start = segs.iter().position(|s| TOP.contains(s))?;
    let segs = &segs[start..];
    match segs {
        ["encoder", rest @ ..] => unet_place(VAE_ENCODER, rest),
        ["quant_conv"] => Some(place([VAE_ENCODER + 1, 0, 0, 0, 0, 0])),
        ["post_quant_conv"] => Some(place([VAE_ENCODER + 2, 0, 0, 0, 0, 0])),
        ["decoder", rest @ ..] => unet_place(VAE_ENCODER + 3, rest),
        _ => unet_place(UNET, segs)
            .or_else(|| flux_place(segs))
            .or_else(|| wan_place(segs)),
    }
}

/// Parts (a key's first component): a VAE's encoder, `quant_conv`, `post_quant_conv` and decoder
/// (one after another), a UNet, a diffusion transformer (Flux, SD3, Qwen-Image, Wan). Parts chain
/// into one another only within the same four (a file may hold a UNet and a VAE side by side, as
/// Stable Diffusion's own do).
const VAE_ENCODER: u32 = 0;
const UNET: u32 = 4;
const DIT: u32 = 8;

/// Whether two parts chain into one another.
fn same_model(a: u32, b: u32) -> bool {
    a / 4 == b / 4
}

/// Segments a diffusion family's top-level names begin with.
const TOP: [&str; 49] = [
    // diffusers' UNets and VAEs.
    "time_embedding",
    "add_embedding",
    "conv_in",
    "down_blocks",
    "mid_block",
    "up_blocks",
    "conv_norm_out",
    "conv_out",
    "controlnet_cond_embedding",
    "controlnet_down_blocks",
    "controlnet_mid_block",
    "encoder",
    "decoder",
    "quant_conv",
    "post_quant_conv",
    // The original Stable Diffusion code's (`ldm`: the single-file checkpoints).
    "time_embed",
    "label_emb",
    "input_blocks",
    "middle_block",
    "output_blocks",
    "out",
    "down",
    "mid",
    "up",
    "norm_out",
    // diffusers' Flux.
    "x_embedder",
    "pos_embed",
    "context_embedder",
    "time_text_embed",
    "transformer_blocks",
    "single_transformer_blocks",
    "proj_out",
    // Black Forest Labs' Flux.
    "img_in",
    "txt_in",
    "txt_norm",
    "time_in",
    "guidance_in",
    "vector_in",
    "double_blocks",
    "single_blocks",
    "final_layer",
    // Wan's video DiT, as diffusers and as its own code name it.
    "patch_embedding",
    "condition_embedder",
    "blocks",
    "scale_shift_table",
    "text_embedding",
    "time_projection",
    "head",
    "modulation",
];

/// A block or layer number; none past a million (no model has that many), so the arithmetic on
/// it below cannot overflow whatever a file names.
fn index(s: &str) -> Option<u32> {
    s.parse().ok().filter(|&n: &u32| n < 1 << 20)
}

/// Stages of a UNet or a VAE's half.
const TEMB: u32 = 0;
const CONV_IN: u32 = 1;
const DOWN: u32 = 2;
const MID: u32 = 3;
const UP: u32 = 4;
const NORM_OUT: u32 = 5;
const CONV_OUT: u32 = 6;

/// A UNet's or a VAE half's module, by diffusers' names or the original code's.
fn unet_place(part: u32, segs: &[&str]) -> Option<Place> {
    let temb = |rank: u32, path: u8, sub: u32| Place {
        path,
        temb_out: rank == 1,
        ..place([part, TEMB, sub, 0, 0, rank])
    };
    let at = |stage: u32| place([part, stage, 0, 0, 0, 0]);
    let idx = |s: &str| index(s);
    Some(match segs {
        ["time_embedding", "linear_1"] | ["time_embed", "0"] => temb(0, 1, 0),
        ["time_embedding", "linear_2"] | ["time_embed", "2"] => temb(1, 1, 0),
        // SDXL's embedding of the pooled text and the size conditioning, added to the time's.
        ["add_embedding", "linear_1"] | ["label_emb", "0", "0"] => temb(0, 2, 1),
        ["add_embedding", "linear_2"] | ["label_emb", "0", "2"] => temb(1, 2, 1),
        ["conv_in"] | ["input_blocks", "0", "0"] => Place {
            skip_out: Some([part, CONV_IN, 0, 0]),
            ..at(CONV_IN)
        },
        // diffusers: a block's resnets and attentions interleave as they run.
        ["down_blocks", b, rest @ ..] => diffusers_block(part, DOWN, idx(b)?, rest)?,
        ["mid_block", rest @ ..] => diffusers_block(part, MID, 0, rest)?,
        ["up_blocks", b, rest @ ..] => diffusers_block(part, UP, idx(b)?, rest)?,
        // A ControlNet: its conditioning image's embedding (a path of its own, added to
        // conv_in's output), and a zero-initialized convolution per state the down path keeps
        // and after the mid block: its outputs, added to a UNet's.
        ["controlnet_cond_embedding", rest @ ..] => {
            let rank = match rest {
                ["conv_in"] => 0,
                ["blocks", n] => 1 + idx(n)?,
                ["conv_out"] => LAST,
                _ => return None,
            };
            Place {
                path: 4,
                ..place([part, CONV_IN, 1, 0, 0, rank])
            }
        }
        ["controlnet_down_blocks", n] => Place {
            path: 5,
            reads_kept: Some(idx(n)?),
            ..place([part, CONV_OUT + 1, idx(n)?, 0, 0, 0])
        },
        ["controlnet_mid_block"] => Place {
            path: 5,
            reads_mid: true,
            ..place([part, CONV_OUT + 2, 0, 0, 0, 0])
        },
        ["conv_norm_out"] | ["out", "0"] | ["norm_out"] => at(NORM_OUT),
        ["conv_out"] | ["out", "2"] => at(CONV_OUT),
        // The original code: each input block keeps one state, each output block reads one back.
        ["input_blocks", b, j, rel @ ..] => {
            let b = idx(b)?;
            item_place(
                [part, DOWN, b, idx(j)?],
                rel,
                Some([part, DOWN, b, 0]),
                false,
            )?
        }
        ["middle_block", j, rel @ ..] => item_place([part, MID, 0, idx(j)?], rel, None, false)?,
        ["output_blocks", b, j, rel @ ..] => {
            item_place([part, UP, idx(b)?, idx(j)?], rel, None, true)?
        }
        // The original VAE's halves: `down.N.block.M`, `mid.block_1`, `mid.attn_1`, and
        // `up.N`, run from the last level to the first.
        ["down", b, "block", m, rel @ ..] => {
            item_place([part, DOWN, idx(b)?, 2 * idx(m)?], rel, None, false)?
        }
        ["down", b, "downsample", rel @ ..] => {
            item_place([part, DOWN, idx(b)?, LAST], rel, None, false)?
        }
        ["mid", "block_1", rel @ ..] => item_place([part, MID, 0, 0], rel, None, false)?,
        ["mid", "attn_1", rel @ ..] => item_place([part, MID, 0, 1], rel, None, false)?,
        ["mid", "block_2", rel @ ..] => item_place([part, MID, 0, 2], rel, None, false)?,
        ["up", b, "block", m, rel @ ..] => item_place(
            [part, UP, LAST - 1 - idx(b)?, 2 * idx(m)?],
            rel,
            None,
            false,
        )?,
        ["up", b, "upsample", rel @ ..] => {
            item_place([part, UP, LAST - 1 - idx(b)?, LAST], rel, None, false)?
        }
        _ => return None,
    })
}

/// A module of diffusers' down, mid or up block `block` of `stage`.
fn diffusers_block(part: u32, stage: u32, block: u32, rest: &[&str]) -> Option<Place> {
    let down = stage == DOWN;
    let up = stage == UP;
    match rest {
        ["resnets", i, rel @ ..] => {
            let i = index(i)?;
            let kept = down.then_some([part, stage, block, i]);
            item_place([part, stage, block, 2 * i], rel, kept, up)
        }
        ["attentions", i, rel @ ..] => {
            let i = index(i)?;
            let kept = down.then_some([part, stage, block, i]);
            item_place([part, stage, block, 2 * i + 1], rel, kept, false)
        }
        ["downsamplers" | "upsamplers", "0", rel @ ..] => {
            let kept = down.then_some([part, stage, block, LAST]);
            item_place([part, stage, block, LAST], rel, kept, false)
        }
        _ => None,
    }
}

/// A module of one item of a block (`base`: part, stage, block, item): a resnet, an attention
/// block, or a down- or upsampler. `kept`: the state the item leaves for the up path (items of one
/// pair share it, the last one's is kept); `up`: a resnet of the up path reads one back.
fn item_place(base: [u32; 4], rel: &[&str], kept: Option<[u32; 4]>, up: bool) -> Option<Place> {
    let [part, stage, block, item] = base;
    let at = |sub: u32, rank: u32| place([part, stage, block, item, sub, rank]);
    // A resnet (diffusers' `ResnetBlock2D`, the original `ResBlock` / `ResnetBlock`).
    let resnet = match rel {
        ["norm1"] | ["in_layers", "0"] => Some(0),
        ["conv1"] | ["in_layers", "2"] => Some(1),
        ["time_emb_proj"] | ["emb_layers", "1"] | ["temb_proj"] => Some(2),
        ["norm2"] | ["out_layers", "0"] => Some(3),
        ["conv2"] | ["out_layers", "3"] => Some(4),
        ["conv_shortcut"] | ["skip_connection"] | ["nin_shortcut"] => Some(5),
        _ => None,
    };
    if let Some(rank) = resnet {
        return Some(match rank {
            0 => Place {
                opens: Some(ITEM),
                skip_in: up,
                ..at(0, 0)
            },
            2 => Place {
                temb_in: true,
                ..at(0, 2)
            },
            4 => Place {
                closes: Some(ITEM),
                skip_out: kept,
                ..at(0, 4)
            },
            5 => Place {
                side: true,
                ..at(0, 5)
            },
            r => at(0, r),
        });
    }
    Some(match rel {
        // An attention block: diffusers' `Transformer2DModel`, the original `SpatialTransformer`,
        // or a VAE's single attention (`Attention`, the original `AttnBlock`).
        ["norm" | "group_norm"] => Place {
            opens: Some(ITEM),
            ..at(0, 0)
        },
        ["proj_in"] => at(0, 1),
        ["to_q" | "to_k" | "to_v" | "q" | "k" | "v"] => Place {
            parallel: true,
            ..at(1, 0)
        },
        ["proj_out"] | ["to_out", "0"] => Place {
            closes: Some(ITEM),
            skip_out: kept,
            ..at(LAST, 0)
        },
        ["transformer_blocks", t, sub @ ..] => {
            let (rank, parallel, opens, closes) = transformer_rank(sub)?;
            Place {
                parallel,
                opens: opens.then_some(SUB),
                closes: closes.then_some(SUB),
                ..at(1 + index(t)?, rank)
            }
        }
        // A down- or upsampler's convolution (diffusers' `conv`, the original `op` / `conv`).
        ["conv" | "op"] => Place {
            skip_out: kept,
            ..at(0, 0)
        },
        _ => return None,
    })
}

/// Rank of a module inside diffusers' `BasicTransformerBlock` (self-attention, cross-attention,
/// feed-forward, each after its norm): (rank, parallel, opens a residual, closes it).
fn transformer_rank(rel: &[&str]) -> Option<(u32, bool, bool, bool)> {
    Some(match rel {
        ["norm1"] => (10, false, true, false),
        ["attn1", "to_q" | "to_k" | "to_v"] => (12, true, false, false),
        ["attn1", "norm_q" | "norm_k"] => (13, true, false, false),
        ["attn1", "to_out", "0"] => (14, false, false, true),
        ["norm2"] => (20, false, true, false),
        ["attn2", "to_q" | "to_k" | "to_v"] => (22, true, false, false),
        ["attn2", "norm_q" | "norm_k"] => (23, true, false, false),
        ["attn2", "to_out", "0"] => (24, false, false, true),
        ["norm3"] => (30, false, true, false),
        ["ff", "net", "0", "proj"] => (32, false, false, false),
        ["ff", "net", "2"] => (34, false, false, true),
        _ => return None,
    })
}

/// A module of a transformer built like Flux (double blocks of an image and a text stream, then
/// single blocks), as diffusers or Black Forest Labs name it: Flux, SD3, Qwen-Image.
fn flux_place(segs: &[&str]) -> Option<Place> {
    let at = |stage: u32, block: u32, rank: u32| place([DIT, stage, block, 0, 0, rank]);
    // The time, guidance and pooled-text embeddings: three paths of their own, summed.
    let temb = |path: u8, rank: u32| Place {
        path,
        temb_out: rank == 1,
        ..at(0, u32::from(path), rank)
    };
    let both = |p: Place| Place {
        parallel: true,
        ..p
    };
    // A double block's image (1) and text (2) streams.
    let stream = |p: Place, img: bool| Place {
        stream: if img { 1 } else { 2 },
        ..p
    };
    Some(match segs {
        ["time_text_embed", embedder, layer]
        | [embedder @ ("time_in" | "guidance_in" | "vector_in"), layer] => {
            let path = match *embedder {
                "timestep_embedder" | "time_in" => 1,
                "guidance_embedder" | "guidance_in" => 2,
                "text_embedder" | "vector_in" => 3,
                _ => return None,
            };
            let rank = match *layer {
                "linear_1" | "in_layer" => 0,
                "linear_2" | "out_layer" => 1,
                _ => return None,
            };
            temb(path, rank)
        }
        // The image and the text enter side by side.
        // SD3's patch embedding and the position table added to it.
        ["x_embedder" | "img_in" | "pos_embed"] | ["pos_embed", "proj"] => {
            stream(both(at(1, 0, 1)), true)
        }
        ["context_embedder" | "txt_in"] => stream(both(at(1, 0, 1)), false),
        // Qwen-Image normalizes the text before embedding it.
        ["txt_norm"] => stream(at(1, 0, 0), false),
        ["transformer_blocks" | "double_blocks", b, rel @ ..] => {
            let b = index(b)?;
            let img = matches!(
                rel,
                ["norm1", ..]
                    | ["img_mod" | "img_attn" | "img_mlp" | "ff", ..]
                    | [
                        "attn",
                        "to_q" | "to_k" | "to_v" | "norm_q" | "norm_k" | "to_out",
                        ..
                    ]
            );
            let r = |rank: u32| stream(both(at(2, b, rank)), img);
            match rel {
                // The modulation from the time embedding, per stream.
                ["norm1" | "norm1_context", "linear"] | ["img_mod" | "txt_mod", "lin" | "1"] => {
                    Place {
                        temb_in: true,
                        opens: Some(DIT_BLOCK),
                        ..r(0)
                    }
                }
                [
                    "attn",
                    "to_q" | "to_k" | "to_v" | "add_q_proj" | "add_k_proj" | "add_v_proj",
                ]
                | ["img_attn" | "txt_attn", "qkv"] => r(1),
                [
                    "attn",
                    "norm_q" | "norm_k" | "norm_added_q" | "norm_added_k",
                ]
                | ["img_attn" | "txt_attn", "norm", "query_norm" | "key_norm"] => r(2),
                // The joint attention: both streams' queries, keys and values meet here.
                ["attn", "to_out", "0"]
                | ["attn", "to_add_out"]
                | ["img_attn" | "txt_attn", "proj"] => Place {
                    closes: Some(DIT_BLOCK),
                    mixes: true,
                    ..r(3)
                },
                [
                    "ff" | "ff_context" | "img_mlp" | "txt_mlp",
                    "net",
                    "0",
                    "proj",
                ]
                | ["img_mlp" | "txt_mlp", "0"] => Place {
                    opens: Some(DIT_BLOCK),
                    ..r(4)
                },
                ["ff" | "ff_context" | "img_mlp" | "txt_mlp", "net", "2"]
                | ["img_mlp" | "txt_mlp", "2"] => Place {
                    closes: Some(DIT_BLOCK),
                    ..r(5)
                },
                _ => return None,
            }
        }
        ["single_transformer_blocks" | "single_blocks", b, rel @ ..] => {
            let b = index(b)?;
            let r = |rank: u32| both(at(3, b, rank));
            match rel {
                ["norm", "linear"] | ["modulation", "lin"] => Place {
                    temb_in: true,
                    opens: Some(DIT_BLOCK),
                    ..r(0)
                },
                // Attention and MLP input in one (`linear1` in Black Forest Labs' files).
                ["attn", "to_q" | "to_k" | "to_v"] | ["proj_mlp"] | ["linear1"] => r(1),
                ["attn", "norm_q" | "norm_k"] | ["norm", "query_norm" | "key_norm"] => r(2),
                ["proj_out"] | ["linear2"] => Place {
                    closes: Some(DIT_BLOCK),
                    ..r(3)
                },
                _ => return None,
            }
        }
        ["norm_out", "linear"] | ["final_layer", "adaLN_modulation", "1"] => Place {
            temb_in: true,
            ..at(4, 0, 0)
        },
        ["proj_out"] | ["final_layer", "linear"] => at(5, 0, 0),
        _ => return None,
    })
}

/// A Wan video DiT's module, as diffusers (`condition_embedder`, `blocks.N.attn1`, `attn2`,
/// `ffn.net`) or Wan's own code (`time_embedding`, `blocks.N.self_attn`, `cross_attn`, `ffn.0`,
/// `head`: the files ComfyUI loads) names it. Each block: self-attention, cross-attention over the
/// text (after its norm), feed-forward, each with a residual, modulated by the time.
fn wan_place(segs: &[&str]) -> Option<Place> {
    let at = |stage: u32, block: u32, rank: u32| place([DIT, stage, block, 0, 0, rank]);
    let path = |path: u8, rank: u32| Place {
        path,
        ..at(0, u32::from(path), rank)
    };
    Some(match segs {
        ["patch_embedding"] => at(1, 0, 0),
        ["condition_embedder", "time_embedder", "linear_1"] | ["time_embedding", "0"] => path(1, 0),
        ["condition_embedder", "time_embedder", "linear_2"] | ["time_embedding", "2"] => path(1, 1),
        ["condition_embedder", "time_proj"] | ["time_projection", "1"] => Place {
            temb_out: true,
            ..path(1, 2)
        },
        ["condition_embedder", "text_embedder", "linear_1"] | ["text_embedding", "0"] => path(2, 0),
        ["condition_embedder", "text_embedder", "linear_2"] | ["text_embedding", "2"] => Place {
            text_out: true,
            ..path(2, 1)
        },
        ["blocks", b, rel @ ..] => {
            let b = index(b)?;
            let r = |rank: u32| at(2, b, rank);
            let par = |p: Place| Place {
                parallel: true,
                ..p
            };
            match rel {
                // The block's own modulation table, added to the time's projection.
                [] | ["modulation"] => Place {
                    temb_in: true,
                    opens: Some(DIT_BLOCK),
                    ..r(0)
                },
                [
                    "attn1" | "self_attn",
                    "to_q" | "to_k" | "to_v" | "q" | "k" | "v",
                ] => par(r(1)),
                ["attn1" | "self_attn", "norm_q" | "norm_k"] => par(r(2)),
                ["attn1", "to_out", "0"] | ["self_attn", "o"] => Place {
                    closes: Some(DIT_BLOCK),
                    ..r(3)
                },
                // The cross-attention's norm (`norm2` in diffusers, `norm3` in Wan's code).
                ["norm2"] | ["norm3"] => Place {
                    opens: Some(DIT_BLOCK),
                    ..r(4)
                },
                ["attn2" | "cross_attn", "to_q" | "q"] => par(r(5)),
                [
                    "attn2" | "cross_attn",
                    "to_k" | "to_v" | "add_k_proj" | "add_v_proj" | "k" | "v" | "k_img" | "v_img",
                ] => Place {
                    text_in: true,
                    ..par(r(5))
                },
                [
                    "attn2" | "cross_attn",
                    "norm_q" | "norm_k" | "norm_added_k" | "norm_k_img",
                ] => par(r(6)),
                ["attn2", "to_out", "0"] | ["cross_attn", "o"] => Place {
                    closes: Some(DIT_BLOCK),
                    ..r(7)
                },
                ["ffn", "net", "0", "proj"] | ["ffn", "0"] => Place {
                    opens: Some(DIT_BLOCK),
                    ..r(8)
                },
                ["ffn", "net", "2"] | ["ffn", "2"] => Place {
                    closes: Some(DIT_BLOCK),
                    ..r(9)
                },
                _ => return None,
            }
        }
        // The output's modulation table (`head.modulation`: a tensor of the `head` module).
        ["scale_shift_table"] | ["head"] | ["head", "modulation"] => Place {
            temb_in: true,
            ..at(4, 0, 0)
        },
        ["head", "head"] => at(5, 0, 0),
        _ => return None,
    })
}

/// Adds dataflow edges between a diffusion model's module nodes; returns, per node, whether it
/// was given a place (all `false` when the names are no diffusion model's), so the modules left
/// (a checkpoint's text encoder) can be chained as what they are.
pub fn chain_diffusion_modules(model: &mut Model) -> Vec<bool> {
    let mut mask = vec![false; model.graph.nodes.len()];
    let mut placed: Vec<(Place, u32)> = model
        .graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.kind == NodeKind::Module)
        .filter_map(|(i, n)| place_of(&n.name).map(|p| (p, i as u32)))
        .collect();
    // A diffusion model has blocks (stage 2 and up in some part), not only a stray `conv_in`,
    // and most of its modules have a place (a model that merely shares a few names is not one).
    let modules = model
        .graph
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Module)
        .count();
    if !placed.iter().any(|(p, _)| p.key[1] >= 2 && p.path == 0) || placed.len() * 5 < modules * 3 {
        return mask;
    }
    for &(_, n) in &placed {
        mask[n as usize] = true;
    }
    placed.sort_by_key(|(p, _)| (p.key, p.path));
    let (sides, chain): (Vec<_>, Vec<_>) = placed.into_iter().partition(|(p, _)| p.side);
    // Consecutive sets: equal keys that run side by side form one set.
    let mut sets: Vec<(Place, Vec<u32>)> = Vec::new();
    for (p, n) in chain {
        match sets.last_mut() {
            Some((q, members)) if q.key == p.key && q.path == p.path && p.parallel => {
                members.push(n);
                // A set opens, closes or feeds what any of its members does.
                q.temb_in |= p.temb_in;
                q.temb_out |= p.temb_out;
            }
            _ => sets.push((p, vec![n])),
        }
    }
    let mut edges: Vec<(u32, u32)> = Vec::new();
    let link = |edges: &mut Vec<(u32, u32)>, from: &[u32], to: &[u32]| {
        for &a in from {
            for &b in to {
                edges.push((a, b));
            }
        }
    };
    // Within a stream, unless the target reads them all.
    let stream_of: std::collections::HashMap<u32, u8> = sets
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .filter_map(|n| {
            let name = &model.graph.nodes.get(n as usize)?.name;
            Some((n, place_of(name)?.stream))
        })
        .collect();
    let linked = |edges: &mut Vec<(u32, u32)>, from: &[u32], to: &[u32]| {
        for &a in from {
            for &b in to {
                let (sa, sb) = (stream_of.get(&a), stream_of.get(&b));
                if sa == sb || sa == Some(&0) || sb == Some(&0) {
                    edges.push((a, b));
                }
            }
        }
    };
    // The chain, path by path: each module feeds the next set that holds its stream (a stream
    // may skip a set: SD3's last block updates only the image).
    let compatible = |a: u32, b: u32, mixes: bool| {
        let (sa, sb) = (stream_of.get(&a), stream_of.get(&b));
        mixes || sa == sb || sa == Some(&0) || sb == Some(&0)
    };
    for path in 0..=4u8 {
        let on: Vec<&(Place, Vec<u32>)> = sets.iter().filter(|(p, _)| p.path == path).collect();
        for (i, (p, members)) in on.iter().enumerate() {
            for &a in members {
                let next = on[i + 1..]
                    .iter()
                    .take_while(|(q, _)| same_model(p.key[0], q.key[0]))
                    .find(|(q, m)| m.iter().any(|&b| compatible(a, b, q.mixes)));
                if let Some((q, m)) = next {
                    for &b in m.iter().filter(|&&b| compatible(a, b, q.mixes)) {
                        edges.push((a, b));
                    }
                }
            }
        }
    }
    let main: Vec<&(Place, Vec<u32>)> = sets.iter().filter(|(p, _)| p.path == 0).collect();
    // Residual connections, through a scope's side branch where it has one.
    for (i, (p, _)) in main.iter().enumerate() {
        let Some(depth) = p.opens else { continue };
        let Some(before) = i.checked_sub(1).map(|b| &main[b].1) else {
            continue;
        };
        let d = usize::from(depth);
        let Some(close) = main[i..]
            .iter()
            .take_while(|(q, _)| q.key[..d] == p.key[..d])
            .position(|(q, _)| q.closes == Some(depth))
            .map(|c| i + c)
        else {
            continue;
        };
        let side: Vec<u32> = sides
            .iter()
            .filter(|(s, _)| s.key[..d] == p.key[..d])
            .map(|&(_, n)| n)
            .collect();
        if side.is_empty() {
            linked(&mut edges, before, &main[close].1);
        } else {
            // The shortcut runs last; the sum goes on to what follows the scope.
            let after = main.get(close + 1).map_or(&main[close].1, |(_, m)| m);
            link(&mut edges, before, &side);
            link(&mut edges, &side, after);
        }
    }
    // A UNet's skip connections: what the down path keeps, read back last first.
    let mut kept: Vec<([u32; 4], &[u32])> = Vec::new();
    let mut all_kept: Vec<([u32; 4], &[u32])> = Vec::new();
    for (p, members) in &main {
        if let Some(pair) = p.skip_out {
            for list in [&mut kept, &mut all_kept] {
                match list.last_mut() {
                    Some((q, m)) if *q == pair => *m = members,
                    _ => list.push((pair, members)),
                }
            }
        }
        if p.skip_in
            && kept.last().is_some_and(|(q, _)| q[0] == p.key[0])
            && let Some((_, from)) = kept.pop()
        {
            link(&mut edges, from, members);
            let side: Vec<u32> = sides
                .iter()
                .filter(|(s, _)| s.key[..usize::from(ITEM)] == p.key[..usize::from(ITEM)])
                .map(|&(_, n)| n)
                .collect();
            link(&mut edges, from, &side);
        }
    }
    // A ControlNet's outputs read what the down path kept and the mid block made; its
    // conditioning joins conv_in's output.
    for (p, members) in sets.iter().filter(|(p, _)| p.path == 5) {
        let from = match p.reads_kept {
            Some(n) => all_kept
                .iter()
                .filter(|(q, _)| q[0] == p.key[0])
                .nth(n as usize)
                .map(|(_, m)| *m),
            None if p.reads_mid => main
                .iter()
                .rev()
                .find(|(q, _)| q.key[0] == p.key[0] && q.key[1] == MID)
                .map(|(_, m)| m.as_slice()),
            None => None,
        };
        if let Some(from) = from {
            link(&mut edges, from, members);
        }
    }
    if let Some((p, cond)) = sets.iter().rev().find(|(p, _)| p.path == 4)
        && let Some(at) = main
            .iter()
            .position(|(q, _)| q.key[0] == p.key[0] && q.key[1] == CONV_IN)
        && let Some((_, after)) = main.get(at + 1)
    {
        link(&mut edges, cond, after);
    }
    // The time embedding feeds every resnet and every Flux block's modulation.
    let temb: Vec<u32> = sets
        .iter()
        .filter(|(p, _)| p.temb_out)
        .flat_map(|(_, m)| m.iter().copied())
        .collect();
    for (p, members) in &main {
        if p.temb_in {
            link(&mut edges, &temb, members);
        }
    }
    // A file holding a whole pipeline (the original Stable Diffusion checkpoints): the text
    // encoder's output is every cross-attention's keys and values, and the UNet's output is what
    // the VAE decodes.
    let mut text_out: Vec<u32> = model
        .graph
        .nodes
        .iter()
        .enumerate()
        .filter(|&(i, n)| {
            n.kind == NodeKind::Module
                && !mask[i]
                && (n.name.ends_with("final_layer_norm") || n.name.ends_with("ln_final"))
        })
        .map(|(i, _)| i as u32)
        .collect();
    // A DiT's own text embedding.
    text_out.extend(
        sets.iter()
            .filter(|(p, _)| p.text_out)
            .flat_map(|(_, m)| m.iter().copied()),
    );
    let cross_kv: Vec<u32> = main
        .iter()
        .flat_map(|(_, m)| m.iter().copied())
        .filter(|&n| {
            model.graph.nodes.get(n as usize).is_some_and(|node| {
                node.name.ends_with("attn2.to_k")
                    || node.name.ends_with("attn2.to_v")
                    || place_of(&node.name).is_some_and(|p| p.text_in)
            })
        })
        .collect();
    link(&mut edges, &text_out, &cross_kv);
    let unet_out = main
        .iter()
        .rev()
        .find(|(p, _)| p.key[0] == UNET)
        .map(|(_, m)| m);
    let decode = main
        .iter()
        .find(|(p, _)| p.key[0] == VAE_ENCODER + 2)
        .map(|(_, m)| m);
    if let (Some(from), Some(to)) = (unet_out, decode) {
        link(&mut edges, from, to);
    }
    for (from, to) in edges {
        let value = model
            .graph
            .nodes
            .get(from as usize)
            .and_then(|n| n.outputs.first().copied());
        if let (Some(v), Some(node)) = (value, model.graph.nodes.get_mut(to as usize))
            && !node.inputs.contains(&Some(v))
        {
            node.inputs.push(Some(v));
        }
    }
    model.graph.connect_by_values();
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unet_modules_sort_in_forward_order() {
        let key = |n: &str| place_of(n).map(|p| p.key);
        let order = [
            "conv_in",
            "down_blocks.0.resnets.0.norm1",
            "down_blocks.0.resnets.0.conv2",
            "down_blocks.0.attentions.0.norm",
            "down_blocks.0.attentions.0.transformer_blocks.0.norm1",
            "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
            "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2",
            "down_blocks.0.attentions.0.proj_out",
            "down_blocks.0.resnets.1.norm1",
            "down_blocks.0.downsamplers.0.conv",
            "down_blocks.1.resnets.0.norm1",
            "mid_block.resnets.0.conv2",
            "mid_block.attentions.0.proj_in",
            "mid_block.resnets.1.norm1",
            "up_blocks.0.resnets.0.norm1",
            "up_blocks.0.upsamplers.0.conv",
            "conv_norm_out",
            "conv_out",
        ];
        for w in order.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} before {}", w[0], w[1]);
        }
        // A pipeline's prefix is skipped; a VAE's encoder runs before its decoder.
        assert_eq!(key("model.unet.conv_in"), key("conv_in"), "prefix skipped");
        assert!(key("encoder.conv_out") < key("quant_conv"));
        assert!(key("post_quant_conv") < key("decoder.conv_in"));
        // The original code's names: input blocks keep states, a VAE decoder's levels run down.
        assert_eq!(
            key("model.diffusion_model.input_blocks.0.0"),
            key("conv_in")
        );
        assert!(key("input_blocks.1.0.out_layers.3") < key("input_blocks.1.1.proj_in"));
        assert!(key("input_blocks.3.0.op") < key("middle_block.0.in_layers.0"));
        assert!(key("output_blocks.0.0.in_layers.0") < key("out.2"));
        assert!(key("decoder.up.3.block.0.norm1") < key("decoder.up.2.block.0.norm1"));
        assert!(key("decoder.mid.attn_1.q") < key("decoder.mid.block_2.conv1"));
        assert_eq!(key("down_blocks.0.attentions.0.bogus"), None);
        // Numbers no model has are no place, not an overflow.
        assert_eq!(key("decoder.up.4294967295.block.4294967295.norm1"), None);
        assert_eq!(key("down_blocks.0.attentions.2147483648.norm"), None);
        assert_eq!(key("transformer_blocks.99999999999.attn.to_q"), None);
        assert_eq!(key("model.layers.0.mlp"), None);
    }

    #[test]
    fn flux_names_of_both_kinds_sort_alike() {
        let key = |n: &str| place_of(n).map(|p| p.key);
        for (diffusers, bfl) in [
            ("x_embedder", "img_in"),
            (
                "transformer_blocks.3.norm1.linear",
                "double_blocks.3.img_mod.lin",
            ),
            (
                "transformer_blocks.3.attn.to_q",
                "double_blocks.3.img_attn.qkv",
            ),
            (
                "transformer_blocks.3.attn.to_add_out",
                "double_blocks.3.txt_attn.proj",
            ),
            (
                "transformer_blocks.3.ff_context.net.2",
                "double_blocks.3.txt_mlp.2",
            ),
            (
                "single_transformer_blocks.1.proj_mlp",
                "single_blocks.1.linear1",
            ),
            (
                "single_transformer_blocks.1.proj_out",
                "single_blocks.1.linear2",
            ),
            ("norm_out.linear", "final_layer.adaLN_modulation.1"),
            ("proj_out", "final_layer.linear"),
        ] {
            assert_eq!(key(diffusers), key(bfl), "{diffusers} ~ {bfl}");
            assert!(key(diffusers).is_some(), "{diffusers}");
        }
        assert!(
            key("transformer_blocks.18.ff.net.2") < key("single_transformer_blocks.0.norm.linear")
        );
        assert!(key("single_blocks.37.linear2") < key("final_layer.linear"));
    }
}
