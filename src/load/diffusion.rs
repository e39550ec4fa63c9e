//! Dataflow for diffusion model checkpoints, whose names follow no transformer family: diffusers'
//! UNets (Stable Diffusion 1.x/2.x, SDXL: `down_blocks.N.resnets.M`, `mid_block`, `up_blocks`),
//! its VAEs (`AutoencoderKL`: `encoder.*`, `quant_conv`, `post_quant_conv`, `decoder.*`) and Flux
//! transformers, as diffusers names them (`transformer_blocks.N`, `single_transformer_blocks.N`)
//! and as Black Forest Labs' own checkpoints do (`double_blocks.N`, `single_blocks.N`, the files
//! ComfyUI loads).
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
    /// A hidden state the up path reads back: the pair it belongs to (a later place of the same
    /// pair replaces it: a resnet's output, then its attention's).
    skip_out: Option<[u32; 4]>,
    /// Reads a hidden state back (an up block's resnet).
    skip_in: bool,
}

/// Residual scope depths: a resnet or attention block (part, stage, block, item), a sub-layer
/// inside an attention block's transformer block (… sub-block), a Flux block (part, stage, block).
const ITEM: u8 = 4;
const SUB: u8 = 5;
const FLUX_BLOCK: u8 = 3;

fn place(key: [u32; 6]) -> Place {
    Place {
        key,
        ..Place::default()
    }
}

/// The place of module `name` in a diffusion model, if its names are one's.
fn place_of(name: &str) -> Option<Place> {
    let segs: Vec<&str> = name.split('.').collect();
    // Skip a prefix (`model.diffusion_model.`, `unet.`, a pipeline's component) up to the first
    // segment a known family begins with.
    let start = segs.iter().position(|s| TOP.contains(s))?;
    let segs = &segs[start..];
    let (part, segs) = match segs {
        ["encoder", rest @ ..] => (0, rest),
        ["quant_conv"] => return Some(place([1, 0, 0, 0, 0, 0])),
        ["post_quant_conv"] => return Some(place([2, 0, 0, 0, 0, 0])),
        ["decoder", rest @ ..] => (3, rest),
        _ => (0, segs),
    };
    unet_place(part, segs).or_else(|| flux_place(segs))
}

/// Segments a diffusion family's top-level names begin with.
const TOP: [&str; 27] = [
    // diffusers' UNets and VAEs.
    "time_embedding",
    "add_embedding",
    "conv_in",
    "down_blocks",
    "mid_block",
    "up_blocks",
    "conv_norm_out",
    "conv_out",
    "encoder",
    "decoder",
    "quant_conv",
    "post_quant_conv",
    // diffusers' Flux.
    "x_embedder",
    "context_embedder",
    "time_text_embed",
    "transformer_blocks",
    "single_transformer_blocks",
    "norm_out",
    "proj_out",
    // Black Forest Labs' Flux.
    "img_in",
    "txt_in",
    "time_in",
    "guidance_in",
    "vector_in",
    "double_blocks",
    "single_blocks",
    "final_layer",
];

fn index(s: &str) -> Option<u32> {
    s.parse().ok()
}

/// A diffusers UNet's or VAE's module (`segs` after any `encoder.` / `decoder.`).
fn unet_place(part: u32, segs: &[&str]) -> Option<Place> {
    let temb = |rank: u32, path: u8, sub: u32| {
        let mut p = place([part, 0, sub, 0, 0, rank]);
        p.path = path;
        p.temb_out = rank == 1;
        p
    };
    Some(match segs {
        ["time_embedding", "linear_1"] => temb(0, 1, 0),
        ["time_embedding", "linear_2"] => temb(1, 1, 0),
        // SDXL's embedding of the pooled text and the size conditioning, added to the time's.
        ["add_embedding", "linear_1"] => temb(0, 2, 1),
        ["add_embedding", "linear_2"] => temb(1, 2, 1),
        ["conv_in"] => Place {
            skip_out: Some([part, 1, 0, 0]),
            ..place([part, 1, 0, 0, 0, 0])
        },
        ["down_blocks", b, rest @ ..] => block_place([part, 2, index(b)?], rest, false)?,
        ["mid_block", rest @ ..] => block_place([part, 3, 0], rest, false)?,
        ["up_blocks", b, rest @ ..] => block_place([part, 4, index(b)?], rest, true)?,
        ["conv_norm_out"] => place([part, 5, 0, 0, 0, 0]),
        ["conv_out"] => place([part, 6, 0, 0, 0, 0]),
        _ => return None,
    })
}

/// A module inside a down, mid or up block (`prefix`: part, stage, block).
fn block_place(prefix: [u32; 3], rest: &[&str], up: bool) -> Option<Place> {
    let [part, stage, block] = prefix;
    let down = stage == 2;
    Some(match rest {
        ["resnets", i, rel @ ..] => {
            let i = index(i)?;
            let at = |rank: u32| place([part, stage, block, 2 * i, 0, rank]);
            match rel {
                ["norm1"] => Place {
                    opens: Some(ITEM),
                    skip_in: up,
                    ..at(0)
                },
                ["conv1"] => at(1),
                ["time_emb_proj"] => Place {
                    temb_in: true,
                    ..at(2)
                },
                ["norm2"] => at(3),
                ["conv2"] => Place {
                    closes: Some(ITEM),
                    skip_out: down.then_some([part, stage, block, i]),
                    ..at(4)
                },
                ["conv_shortcut"] => Place {
                    side: true,
                    ..at(5)
                },
                _ => return None,
            }
        }
        ["attentions", i, rel @ ..] => {
            let i = index(i)?;
            let at = |sub: u32, rank: u32| place([part, stage, block, 2 * i + 1, sub, rank]);
            match rel {
                ["norm" | "group_norm"] => Place {
                    opens: Some(ITEM),
                    ..at(0, 0)
                },
                ["proj_in"] => at(0, 1),
                // A VAE's attention is one `Attention`: its q/k/v and output directly.
                ["to_q" | "to_k" | "to_v"] => Place {
                    parallel: true,
                    ..at(1, 0)
                },
                ["proj_out"] | ["to_out", "0"] => Place {
                    closes: Some(ITEM),
                    skip_out: down.then_some([part, stage, block, i]),
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
                _ => return None,
            }
        }
        ["downsamplers" | "upsamplers", "0", "conv"] => Place {
            skip_out: down.then_some([part, stage, block, LAST]),
            ..place([part, stage, block, LAST, 0, 0])
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

/// A Flux transformer's module, as diffusers or Black Forest Labs name it.
fn flux_place(segs: &[&str]) -> Option<Place> {
    let at = |stage: u32, block: u32, rank: u32| place([0, stage, block, 0, 0, rank]);
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
        ["x_embedder" | "img_in"] => stream(both(at(1, 0, 0)), true),
        ["context_embedder" | "txt_in"] => stream(both(at(1, 0, 0)), false),
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
                ["norm1" | "norm1_context", "linear"] | ["img_mod" | "txt_mod", "lin"] => Place {
                    temb_in: true,
                    opens: Some(FLUX_BLOCK),
                    ..r(0)
                },
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
                    closes: Some(FLUX_BLOCK),
                    mixes: true,
                    ..r(3)
                },
                ["ff" | "ff_context", "net", "0", "proj"] | ["img_mlp" | "txt_mlp", "0"] => Place {
                    opens: Some(FLUX_BLOCK),
                    ..r(4)
                },
                ["ff" | "ff_context", "net", "2"] | ["img_mlp" | "txt_mlp", "2"] => Place {
                    closes: Some(FLUX_BLOCK),
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
                    opens: Some(FLUX_BLOCK),
                    ..r(0)
                },
                // Attention and MLP input in one (`linear1` in Black Forest Labs' files).
                ["attn", "to_q" | "to_k" | "to_v"] | ["proj_mlp"] | ["linear1"] => r(1),
                ["attn", "norm_q" | "norm_k"] | ["norm", "query_norm" | "key_norm"] => r(2),
                ["proj_out"] | ["linear2"] => Place {
                    closes: Some(FLUX_BLOCK),
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

/// Adds dataflow edges between a diffusion model's module nodes; returns how many (0 when the
/// names are no diffusion model's).
pub fn chain_diffusion_modules(model: &mut Model) -> usize {
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
        return 0;
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
    let linked = |edges: &mut Vec<(u32, u32)>, from: &[u32], to: &[u32], mixes: bool| {
        for &a in from {
            for &b in to {
                let (sa, sb) = (stream_of.get(&a), stream_of.get(&b));
                if mixes || sa == sb || sa == Some(&0) || sb == Some(&0) {
                    edges.push((a, b));
                }
            }
        }
    };
    // The chain, path by path.
    for path in 0..=3u8 {
        let on: Vec<&(Place, Vec<u32>)> = sets.iter().filter(|(p, _)| p.path == path).collect();
        for w in on.windows(2) {
            linked(&mut edges, &w[0].1, &w[1].1, w[1].0.mixes);
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
            linked(&mut edges, before, &main[close].1, false);
        } else {
            // The shortcut runs last; the sum goes on to what follows the scope.
            let after = main.get(close + 1).map_or(&main[close].1, |(_, m)| m);
            link(&mut edges, before, &side);
            link(&mut edges, &side, after);
        }
    }
    // A UNet's skip connections: what the down path keeps, read back last first.
    let mut kept: Vec<([u32; 4], &[u32])> = Vec::new();
    for (p, members) in &main {
        if let Some(pair) = p.skip_out {
            match kept.last_mut() {
                Some((q, m)) if *q == pair => *m = members,
                _ => kept.push((pair, members)),
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
    let mut added = 0;
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
            added += 1;
        }
    }
    model.graph.connect_by_values();
    added
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
        assert_eq!(key("down_blocks.0.attentions.0.bogus"), None);
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
