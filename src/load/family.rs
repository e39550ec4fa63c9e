//! Module graphs for checkpoints, which hold tensors but no ops.
//!
//! Tensors are grouped into modules by name (`model.layers.0.self_attn.q_proj.weight` → module
//! `model.layers.0.self_attn.q_proj`), one module node each. Where names follow a known family
//! (LLaMA/Mistral/Qwen `model.layers.N.{self_attn,mlp}`, GPT-2 `h.N.{attn,mlp}`, BERT
//! `encoder.layer.N`, GGUF `blk.N.*`) the modules are chained in dataflow order — embeddings, each
//! block (norm → q/k/v in parallel → output projection → norm → gate/up in parallel → down), final
//! norm, head — with a residual edge around each attention and MLP, so the structure view reads as a
//! dataflow instead of a flat list. Diffusion models (UNets, VAEs, Flux) are chained by
//! [`super::diffusion`]. Unknown families keep their modules unconnected.

use std::collections::HashMap;

use crate::model::{Model, Node, NodeKind, Tensor, Value, hierarchy_split};

/// Builds module nodes, the hierarchy and (for known families) dataflow edges from the tensors. A
/// module's kind is its class where the file names it ([`crate::model::Metadata::module_classes`]),
/// else a guess from its name and tensors.
pub(super) fn build_checkpoint_graph(model: &mut Model) {
    let mut module_of: HashMap<String, u32> = HashMap::new();
    let mut node_groups = Vec::new();
    for (tid, t) in model.tensors.iter().enumerate() {
        let (segs, leaf, sep) = hierarchy_split(&t.name);
        // A tensor kept under another one's name belongs with it (bitsandbytes' quantization
        // state, `….weight.absmax`, `….weight.quant_state.bitsandbytes__nf4`; a TF1 optimizer's
        // slots, `…/kernel/Adam`; an `…/ExponentialMovingAverage` shadow): part of the module
        // owning that tensor, not of a module named `weight` or `kernel`.
        let owner = (0..segs.len()).find(|&p| {
            model
                .tensor_index
                .contains_key(&segs[..=p].join(&sep.to_string()))
        });
        let segs = match owner {
            Some(p) if p > 0 => &segs[..p],
            _ => &segs[..],
        };
        let module_path = if segs.is_empty() {
            leaf.to_string()
        } else {
            segs.join(&sep.to_string())
        };
        let id = match module_of.get(&module_path) {
            Some(&id) => id,
            None => {
                let parent = if segs.len() > 1 {
                    model
                        .hierarchy
                        .insert_path(segs[..segs.len() - 1].iter().copied(), sep)
                } else {
                    0
                };
                let mut node = Node::new(module_path.clone(), "", NodeKind::Module);
                node.group = parent;
                let out = model.graph.add_value(Value {
                    name: module_path.clone(),
                    ..Value::default()
                });
                node.outputs.push(out);
                let id = model.graph.add_node(node);
                node_groups.push(parent);
                module_of.insert(module_path, id);
                id
            }
        };
        if let Some(n) = model.graph.nodes.get_mut(id as usize) {
            n.tensors.push(tid as u32);
        }
    }
    for node in &mut model.graph.nodes {
        node.op = match model.metadata.module_classes.get(&node.name) {
            Some(class) => class.as_str().into(),
            None => module_kind(
                &node.name,
                node.tensors
                    .iter()
                    .filter_map(|&t| model.tensors.get(t as usize)),
            )
            .into(),
        };
    }
    model.finish_hierarchy(&node_groups);
    // Diffusion models first: a VAE's names (`encoder.conv_norm_out`) would pass for an
    // encoder's final norm. What they leave (a whole pipeline's text encoder) chains as usual.
    let placed = super::diffusion::chain_diffusion_modules(model);
    chain_family_modules(model, &placed);
}

/// Guesses a module's kind from its name and tensors (`Linear`, `Embedding`, `RMSNorm`…).
fn module_kind<'a>(name: &str, tensors: impl Iterator<Item = &'a Tensor>) -> String {
    let last = name
        .rsplit(['.', '/'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    let lower = name.to_ascii_lowercase();
    let tensors: Vec<&Tensor> = tensors.collect();
    let has_bias = tensors.iter().any(|t| t.name.ends_with("bias"));
    let max_rank = tensors.iter().map(|t| t.shape.len()).max().unwrap_or(0);
    let batch_norm = last.contains("batchnorm")
        || last.contains("batch_norm")
        || tensors.iter().any(|t| {
            let leaf = t.name.rsplit(['.', '/']).next().unwrap_or("");
            matches!(leaf, "running_mean" | "moving_mean")
        });
    let kind = if last.contains("einsum") {
        // Gemma's and other JAX models' projections, stored by the einsum that applies them
        // (`attn.q_einsum.w` of `[heads, d_model, head_dim]`): not convolutions.
        "Einsum"
    } else if last.contains("emb") || last == "wte" || last == "wpe" || last == "token_embd" {
        "Embedding"
    } else if batch_norm {
        "BatchNorm"
    } else if last.contains("norm") || last.starts_with("ln") || last == "layernorm" {
        if has_bias { "LayerNorm" } else { "RMSNorm" }
    } else if lower.contains("lstm") || lower.contains("gru") || lower.contains("rnn") {
        "Recurrent"
    } else if max_rank >= 3 {
        "Conv"
    } else if max_rank == 2 {
        "Linear"
    } else {
        "Parameter"
    };
    kind.to_string()
}

/// Where a module sits in a known family's dataflow: (stage, block, rank). Modules with equal keys
/// and a parallel rank run side by side (q/k/v; gate/up).
fn order_key(name: &str) -> Option<(u8, u64, u8)> {
    // An optimizer's state mirrors the weights' names (`optim.state.model.embed_tokens.weight`,
    // as FSDP's state dicts key it) but is no stage of the dataflow.
    if name.split(['.', '/']).any(|s| {
        let s = s.to_ascii_lowercase();
        s.starts_with("optim") || s == "opt_state" || s == "param_states"
    }) {
        return None;
    }
    let full = if name.contains('/') {
        format!("{name}/x")
    } else {
        format!("{name}.x")
    };
    let (segs, _, _) = hierarchy_split(&full);
    // `layers.3`, or TensorFlow's `layer_3` (`bert/encoder/layer_3/attention/self/query`).
    let block = segs.iter().enumerate().find_map(|(i, s)| {
        let (head, idx) = s.rsplit_once('.').or_else(|| s.rsplit_once('_'))?;
        let n: u64 = idx.parse().ok()?;
        matches!(head, "layers" | "h" | "layer" | "blocks" | "blk" | "block").then_some((i, n))
    });
    let lower = name.to_ascii_lowercase();
    // An encoder-decoder model (T5, BART, Whisper) numbers both stacks' blocks from 0: the
    // decoder's come after the encoder's, its embedding after the encoder's final norm.
    let in_decoder = |segs: &[&str]| {
        segs.iter()
            .any(|s| s.to_ascii_lowercase().contains("decoder"))
    };
    if let Some((i, n)) = block {
        let rel = segs[i + 1..].join(".");
        let decoder = in_decoder(&segs[..i]);
        let rank = block_rank(&rel, decoder)?;
        let n = if decoder {
            n.saturating_add(DECODER_BLOCKS)
        } else {
            n
        };
        return Some((1, n, rank));
    }
    let last = lower.rsplit(['.', '/']).next().unwrap_or(&lower);
    // GPT-NeoX's output projection is `embed_out`: the head, not an embedding.
    let emb = (lower.contains("emb")
        || last == "wte"
        || last == "wpe"
        || last == "token_embd"
        // Hugging Face T5's embedding, shared by its encoder and decoder.
        || lower == "shared")
        && last != "embed_out";
    let norm = last.contains("norm") || last == "ln_f";
    if norm
        && !emb
        && segs
            .iter()
            .any(|s| s.to_ascii_lowercase().contains("encoder"))
    {
        // The encoder's final norm (`encoder.final_layer_norm`, T5X's `encoder.encoder_norm`).
        return Some((1, DECODER_BLOCKS - 1, 0));
    }
    if emb && in_decoder(&segs) {
        return Some((1, DECODER_BLOCKS - 1, 5));
    }
    let stage = if emb {
        0
    } else if norm {
        2
    } else if last.contains("head")
        || last == "output"
        || last.contains("pooler")
        || last.contains("classifier")
        || last == "logits_dense"
        || last == "embed_out"
        || last == "output_layer"
    {
        3
    } else {
        return None;
    };
    Some((stage, 0, 0))
}

/// Added to a decoder's block numbers, so its blocks follow the encoder's.
const DECODER_BLOCKS: u64 = 1 << 32;

/// Ranks inside a transformer block: the input norm, q/k/v (parallel), the attention output, the
/// MLP's norm, a mixture of experts' router, gate/up (parallel), down (the MLP's output), a norm
/// after the MLP. A Conformer block (NeMo's speech encoders) adds a first, half-step feed-forward
/// before the attention and a convolution module after it.
const FF1_NORM: u8 = 1;
const FF1_IN: u8 = 2;
const FF1_OUT: u8 = 3;
const INPUT_NORM: u8 = 10;
const QKV: u8 = 12;
const ATTN_OUT: u8 = 14;
const POST_ATTN_NORM: u8 = 15;
const CONV_NORM: u8 = 16;
const CONV_IN: u8 = 17;
const CONV_DEPTHWISE: u8 = 18;
const CONV_NORM_INNER: u8 = 19;
const CONV_OUT: u8 = 20;
const CROSS_NORM: u8 = 22;
const CROSS_QKV: u8 = 23;
const CROSS_OUT: u8 = 24;
const MLP_NORM: u8 = 26;
const ROUTER: u8 = 27;
const GATE_UP: u8 = 28;
const MLP_OUT: u8 = 30;
const POST_NORM: u8 = 32;

/// Sub-blocks with a residual connection: (the rank of their input norm, of their output).
const RESIDUALS: [(u8, u8); 5] = [
    (FF1_NORM, FF1_OUT),
    (INPUT_NORM, ATTN_OUT),
    (CONV_NORM, CONV_OUT),
    (CROSS_NORM, CROSS_OUT),
    (MLP_NORM, MLP_OUT),
];

/// Rank of a module inside a transformer block by the names the common families use (`decoder`:
/// the block is a decoder's, of an encoder-decoder model).
fn block_rank(rel: &str, decoder: bool) -> Option<u8> {
    let r = rel.to_ascii_lowercase();
    let last = r.rsplit('.').next().unwrap_or(&r);
    let in_attn = r.contains("attn") || r.contains("attention");
    let in_moe = r.contains("moe") || r.contains("mlp");
    let in_ff1 = r.contains("feed_forward1");
    let in_conv = r.starts_with("conv.");
    // A decoder's attention over the encoder's output (T5X's `encoder_decoder_attention`,
    // BART's and Whisper's `encoder_attn`, Hugging Face T5's `EncDecAttention`).
    let in_cross = r.contains("encoder_decoder_attention")
        || r.contains("encoder_attn")
        || r.contains("encdecattention")
        || r.contains("cross_attn");
    if in_cross {
        return match last {
            "pre_cross_attention_layer_norm" | "encoder_attn_layer_norm" => Some(CROSS_NORM),
            "query" | "key" | "value" | "q_proj" | "k_proj" | "v_proj" | "q" | "k" | "v" => {
                Some(CROSS_QKV)
            }
            "out" | "out_proj" | "o" | "o_proj" => Some(CROSS_OUT),
            _ => None,
        };
    }
    // Hugging Face T5's sub-layers, each with its norm: self-attention, then (in the decoder)
    // cross-attention, then the feed-forward.
    if last == "layer_norm"
        && let Some(j) = r.strip_prefix("layer.").and_then(|t| t.split('.').next())
    {
        return match (j, decoder) {
            ("0", _) => Some(INPUT_NORM),
            ("1", true) => Some(CROSS_NORM),
            ("1", false) | ("2", _) => Some(MLP_NORM),
            _ => None,
        };
    }
    Some(match last {
        // T5X's names (`pre_attention_layer_norm`, `attention.out`, `mlp.wi_0`, `mlp.wo`).
        "pre_attention_layer_norm" | "pre_self_attention_layer_norm" => INPUT_NORM,
        "pre_cross_attention_layer_norm" => CROSS_NORM,
        "out" if in_attn => ATTN_OUT,
        "pre_mlp_layer_norm" => MLP_NORM,
        "wi" | "wi_0" | "wi_1" => GATE_UP,
        "wo" if !in_attn => MLP_OUT,
        // A Conformer block's first feed-forward and its convolution module.
        "norm_feed_forward1" => FF1_NORM,
        "linear1" if in_ff1 => FF1_IN,
        "linear2" if in_ff1 => FF1_OUT,
        "norm_conv" => CONV_NORM,
        "pointwise_conv1" if in_conv => CONV_IN,
        "depthwise_conv" if in_conv => CONV_DEPTHWISE,
        "batch_norm" | "conv_norm" if in_conv => CONV_NORM_INNER,
        "pointwise_conv2" if in_conv => CONV_OUT,
        "norm_self_att" => INPUT_NORM,
        "linear_q" | "linear_k" | "linear_v" | "linear_pos" => QKV,
        "linear_out" if in_attn => ATTN_OUT,
        "norm_feed_forward2" => MLP_NORM,
        "norm_out" => POST_NORM,
        // PyTorch's `nn.TransformerEncoderLayer` (and the second feed-forward of a Conformer).
        "linear1" => GATE_UP,
        "linear2" => MLP_OUT,
        "input_layernorm" | "ln_1" | "attention_norm" | "attn_norm" | "ln_attn" | "norm1"
        // CLIP's (every Stable Diffusion checkpoint's text encoder).
        | "layer_norm1"
        | "pre_attention_norm" => INPUT_NORM,
        "q_proj" | "k_proj" | "v_proj" | "c_attn" | "query" | "key" | "value" | "attn_q"
        | "attn_k" | "attn_v" | "qkv_proj" | "wqkv" | "query_key_value" | "wq" | "wk" | "wv"
        | "attn_qkv" | "q_einsum" | "kv_einsum" | "qkv_einsum" => QKV,
        // The attention module's own parameters (gpt-oss's `self_attn.sinks`) beside q/k/v.
        "self_attn" | "attn" | "attention" => QKV,
        // Hugging Face T5's `SelfAttention.q` / `.o`.
        "q" | "k" | "v" if in_attn => QKV,
        "o_proj" | "attn_output" | "wo" | "out_proj" | "dense" | "o" if in_attn => ATTN_OUT,
        // OPT's, BART's and Whisper's norm before the attention.
        "self_attn_layer_norm" => INPUT_NORM,
        "c_proj" | "attn_vec_einsum" if in_attn => ATTN_OUT,
        // Gemma 2's norm of the attention's output, before the residual sum.
        "post_attention_norm" => POST_ATTN_NORM,
        "layernorm" if r.contains("attention.output") => MLP_NORM,
        "post_attention_layernorm"
        | "ln_2"
        | "ffn_norm"
        | "norm2"
        | "pre_feedforward_layernorm"
        | "pre_ffw_norm"
        | "layer_norm2"
        // OPT's and Whisper's norm before the MLP.
        | "final_layer_norm" => MLP_NORM,
        // A mixture of experts: the router (`mlp.router`, Mixtral's `block_sparse_moe.gate`,
        // Qwen-MoE's and DeepSeek's `mlp.gate`), then the experts.
        "router" | "gate" if in_moe => ROUTER,
        "gate_proj" | "up_proj" | "c_fc" | "ffn_gate" | "ffn_up" | "w1" | "w3" | "fc1"
        | "gate_up_proj" | "gating_einsum" => GATE_UP,
        // Megatron-LM's, GPT-NeoX's (Pythia), BLOOM's and Falcon's MLP; GPT-J's.
        "dense_h_to_4h" | "fc_in" => GATE_UP,
        "dense_4h_to_h" | "fc_out" => MLP_OUT,
        // Megatron Core's (and NeMo 2's) names.
        "linear_qkv" => QKV,
        "linear_proj" if in_attn => ATTN_OUT,
        "linear_fc1" => GATE_UP,
        "linear_fc2" => MLP_OUT,
        // Gemma's MLP output (`mlp.linear`).
        "linear" if in_moe => MLP_OUT,
        "dense" if r.contains("intermediate") => GATE_UP,
        "down_proj" | "c_proj" | "ffn_down" | "w2" | "fc2" | "dense" => MLP_OUT,
        // Stacked experts in one module (gpt-oss's `mlp.experts`: gate_up and down together).
        "experts" => MLP_OUT,
        "layernorm" | "post_feedforward_layernorm" | "post_ffw_norm" => POST_NORM,
        _ => return None,
    })
}

fn parallel_rank(rank: u8) -> bool {
    rank == QKV || rank == GATE_UP || rank == CROSS_QKV
}

/// Adds dataflow edges between checkpoint module nodes where the names follow a known family.
/// Returns the number of edges added (0 for unknown families).
pub fn chain_checkpoint_modules(model: &mut Model) -> usize {
    chain_family_modules(model, &[])
}

/// [`chain_checkpoint_modules`], leaving out the nodes `skip` marks.
fn chain_family_modules(model: &mut Model, skip: &[bool]) -> usize {
    let mut keyed: Vec<((u8, u64, u8), u32)> = model
        .graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| n.kind == NodeKind::Module && !skip.get(*i).copied().unwrap_or(false))
        .filter_map(|(i, n)| order_key(&n.name).map(|k| (k, i as u32)))
        .collect();
    if !keyed.iter().any(|(k, _)| k.0 == 1) {
        return 0;
    }
    keyed.sort();
    // Consecutive sets: equal keys with a parallel rank form one set.
    let mut sets: Vec<((u8, u64, u8), Vec<u32>)> = Vec::new();
    for (k, n) in keyed {
        match sets.last_mut() {
            // Embeddings are summed (token, position, token type), side by side.
            Some((lk, members)) if *lk == k && (parallel_rank(k.2) || k.0 == 0) => members.push(n),
            _ => sets.push((k, vec![n])),
        }
    }
    let mut added = 0;
    let mut link = |model: &mut Model, from: u32, to: u32| {
        let value = model
            .graph
            .nodes
            .get(from as usize)
            .and_then(|n| n.outputs.first().copied());
        if let (Some(v), Some(node)) = (value, model.graph.nodes.get_mut(to as usize)) {
            node.inputs.push(Some(v));
            added += 1;
        }
    };
    for w in sets.windows(2) {
        let [(_, a), (_, b)] = w else { continue };
        for &from in a {
            for &to in b {
                link(model, from, to);
            }
        }
    }
    // Residual connections: the input of each attention (its input norm) and MLP (its norm) joins
    // the output of the same sub-block.
    for (i, (k, members)) in sets.iter().enumerate() {
        let Some(&(_, target_rank)) = RESIDUALS.iter().find(|(norm, _)| *norm == k.2) else {
            continue;
        };
        if k.0 != 1 {
            continue;
        }
        let Some(prev) = i.checked_sub(1).and_then(|p| sets.get(p)) else {
            continue;
        };
        let Some((_, tail)) = sets[i..]
            .iter()
            .take_while(|(kk, _)| kk.1 == k.1 && kk.0 == 1)
            .find(|(kk, _)| kk.2 == target_rank)
        else {
            continue;
        };
        let _ = members;
        for &from in &prev.1 {
            for &to in tail {
                link(model, from, to);
            }
        }
    }
    // A decoder's cross-attention reads the encoder's output (its final norm).
    if let Some((_, encoder_out)) = sets.iter().find(|(k, _)| *k == (1, DECODER_BLOCKS - 1, 0)) {
        for (k, members) in &sets {
            if k.0 == 1 && k.2 == CROSS_QKV {
                for &from in encoder_out {
                    for &to in members {
                        link(model, from, to);
                    }
                }
            }
        }
    }
    model.graph.connect_by_values();
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_block_order() {
        assert_eq!(order_key("model.embed_tokens"), Some((0, 0, 0)));
        assert_eq!(
            order_key("model.layers.3.self_attn.q_proj"),
            Some((1, 3, QKV))
        );
        assert_eq!(
            order_key("model.layers.3.self_attn.o_proj"),
            Some((1, 3, ATTN_OUT))
        );
        assert_eq!(
            order_key("model.layers.3.mlp.down_proj"),
            Some((1, 3, MLP_OUT))
        );
        assert_eq!(
            order_key("model.layers.10.input_layernorm"),
            Some((1, 10, INPUT_NORM))
        );
        assert_eq!(order_key("model.norm"), Some((2, 0, 0)));
        assert_eq!(order_key("optim.state.model.embed_tokens.weight"), None);
        // TensorFlow's BERT names.
        assert_eq!(order_key("bert/embeddings"), Some((0, 0, 0)));
        let tf = |rel: &str| order_key(&format!("bert/encoder/layer_3/{rel}"));
        assert_eq!(tf("attention/self/query"), Some((1, 3, QKV)));
        assert_eq!(tf("attention/output/dense"), Some((1, 3, ATTN_OUT)));
        assert_eq!(tf("attention/output/LayerNorm"), Some((1, 3, MLP_NORM)));
        assert_eq!(tf("intermediate/dense"), Some((1, 3, GATE_UP)));
        assert_eq!(tf("output/dense"), Some((1, 3, MLP_OUT)));
        assert_eq!(tf("output/LayerNorm"), Some((1, 3, POST_NORM)));
        assert_eq!(order_key("model/layer_with_weights-0"), None);
        assert_eq!(
            order_key("optimizer.state.model.layers.0.mlp.up_proj"),
            None
        );
        assert_eq!(order_key("lm_head"), Some((3, 0, 0)));
        // A Conformer block (NeMo's speech encoders) and PyTorch's nn.TransformerEncoderLayer.
        let conformer = |rel: &str| order_key(&format!("encoder.layers.2.{rel}"));
        assert_eq!(conformer("norm_feed_forward1"), Some((1, 2, FF1_NORM)));
        assert_eq!(conformer("feed_forward1.linear2"), Some((1, 2, FF1_OUT)));
        assert_eq!(
            conformer("conv.depthwise_conv"),
            Some((1, 2, CONV_DEPTHWISE))
        );
        assert_eq!(conformer("feed_forward2.linear1"), Some((1, 2, GATE_UP)));
        assert_eq!(order_key("layers.0.linear2"), Some((1, 0, MLP_OUT)));
        // GPT-NeoX (Pythia), Falcon, BLOOM, Megatron-LM, GPT-J, OPT, Hugging Face T5.
        let neox = |rel: &str| order_key(&format!("gpt_neox.layers.1.{rel}"));
        assert_eq!(neox("attention.query_key_value"), Some((1, 1, QKV)));
        assert_eq!(neox("attention.dense"), Some((1, 1, ATTN_OUT)));
        assert_eq!(neox("mlp.dense_h_to_4h"), Some((1, 1, GATE_UP)));
        assert_eq!(neox("mlp.dense_4h_to_h"), Some((1, 1, MLP_OUT)));
        assert_eq!(order_key("embed_out"), Some((3, 0, 0)));
        assert_eq!(order_key("gpt_neox.embed_in"), Some((0, 0, 0)));
        assert_eq!(order_key("shared"), Some((0, 0, 0)));
        assert_eq!(
            order_key("transformer.h.0.mlp.fc_out"),
            Some((1, 0, MLP_OUT))
        );
        let opt = |rel: &str| order_key(&format!("model.decoder.layers.3.{rel}"));
        assert_eq!(
            opt("self_attn_layer_norm"),
            Some((1, DECODER_BLOCKS + 3, INPUT_NORM))
        );
        assert_eq!(
            opt("final_layer_norm"),
            Some((1, DECODER_BLOCKS + 3, MLP_NORM))
        );
        assert_eq!(order_key("model.decoder.final_layer_norm"), Some((2, 0, 0)));
        let t5 = |rel: &str| order_key(&format!("encoder.block.0.{rel}"));
        assert_eq!(t5("layer.0.SelfAttention.q"), Some((1, 0, QKV)));
        assert_eq!(t5("layer.0.SelfAttention.o"), Some((1, 0, ATTN_OUT)));
        assert_eq!(
            order_key("decoder.block.0.layer.1.EncDecAttention.k"),
            Some((1, DECODER_BLOCKS, CROSS_QKV))
        );
        // Encoder-decoder models: the decoder's blocks after the encoder's.
        assert_eq!(
            order_key("model.decoder.layers.0.encoder_attn.k_proj"),
            Some((1, DECODER_BLOCKS, CROSS_QKV))
        );
        assert_eq!(
            order_key("model.decoder.layers.2.encoder_attn_layer_norm"),
            Some((1, DECODER_BLOCKS + 2, CROSS_NORM))
        );
        assert_eq!(
            order_key("model.encoder.layer_norm"),
            Some((1, DECODER_BLOCKS - 1, 0))
        );
        assert_eq!(
            order_key("model.decoder.embed_tokens"),
            Some((1, DECODER_BLOCKS - 1, 5))
        );
        assert_eq!(
            order_key("target.decoder.layers_0.mlp.wo"),
            Some((1, DECODER_BLOCKS, MLP_OUT))
        );
        // Gemma's Flax names, as Orbax saves them.
        let gemma = |rel: &str| order_key(&format!("params.transformer.layer_5.{rel}"));
        assert_eq!(gemma("pre_attention_norm"), Some((1, 5, INPUT_NORM)));
        assert_eq!(gemma("attn.kv_einsum"), Some((1, 5, QKV)));
        assert_eq!(gemma("attn.attn_vec_einsum"), Some((1, 5, ATTN_OUT)));
        assert_eq!(gemma("post_attention_norm"), Some((1, 5, POST_ATTN_NORM)));
        assert_eq!(gemma("mlp.gating_einsum"), Some((1, 5, GATE_UP)));
        assert_eq!(gemma("mlp.linear"), Some((1, 5, MLP_OUT)));
        assert_eq!(order_key("params.transformer.embedder"), Some((0, 0, 0)));
        assert_eq!(order_key("opt_state.mu.transformer.final_norm"), None);
        assert_eq!(order_key("h.2.attn.c_proj"), Some((1, 2, ATTN_OUT)));
        assert_eq!(order_key("h.2.mlp.c_proj"), Some((1, 2, MLP_OUT)));
        assert_eq!(order_key("blk.1.attn_q"), Some((1, 1, QKV)));
        assert_eq!(
            order_key("encoder.layer.4.attention.self.query"),
            Some((1, 4, QKV))
        );
        assert_eq!(
            order_key("encoder.layer.4.attention.output.dense"),
            Some((1, 4, ATTN_OUT))
        );
        assert_eq!(
            order_key("encoder.layer.4.intermediate.dense"),
            Some((1, 4, GATE_UP))
        );
        assert_eq!(
            order_key("encoder.layer.4.output.dense"),
            Some((1, 4, MLP_OUT))
        );
        // Mixtures of experts: the router between the MLP's norm and the experts.
        assert_eq!(order_key("model.layers.0.mlp.router"), Some((1, 0, ROUTER)));
        assert_eq!(
            order_key("model.layers.0.block_sparse_moe.gate"),
            Some((1, 0, ROUTER))
        );
        assert_eq!(
            order_key("model.layers.0.block_sparse_moe.experts.3.w2"),
            Some((1, 0, MLP_OUT))
        );
        assert_eq!(
            order_key("model.layers.0.mlp.experts"),
            Some((1, 0, MLP_OUT))
        );
    }

    /// gpt-oss: norm → q/k/v and the attention's sinks → o_proj → norm → router → experts, with
    /// the residuals around attention and the experts.
    #[test]
    fn a_mixture_of_experts_chains_through_its_router() {
        let names = [
            "model.embed_tokens.weight",
            "model.layers.0.input_layernorm.weight",
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.0.self_attn.k_proj.weight",
            "model.layers.0.self_attn.v_proj.weight",
            "model.layers.0.self_attn.sinks",
            "model.layers.0.self_attn.o_proj.weight",
            "model.layers.0.post_attention_layernorm.weight",
            "model.layers.0.mlp.router.weight",
            "model.layers.0.mlp.experts.gate_up_proj",
            "model.layers.0.mlp.experts.down_proj",
            "model.norm.weight",
            "lm_head.weight",
        ];
        let mut model = Model::new("gpt-oss", crate::model::Format::Safetensors);
        for n in names {
            let t = Tensor::from_bytes(n, crate::model::DType::F32, &[2, 2], vec![0; 16]);
            model.add_tensor(t);
        }
        build_checkpoint_graph(&mut model);
        let id = |n: &str| {
            model
                .graph
                .nodes
                .iter()
                .position(|x| x.name == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        let edge = |a: &str, b: &str| {
            let (a, b) = (id(a), id(b));
            model
                .graph
                .edges
                .iter()
                .any(|e| e.from as usize == a && e.to as usize == b)
        };
        let l = "model.layers.0";
        assert!(edge(
            &format!("{l}.input_layernorm"),
            &format!("{l}.self_attn")
        ));
        assert!(edge(
            &format!("{l}.self_attn"),
            &format!("{l}.self_attn.o_proj")
        ));
        assert!(edge(
            &format!("{l}.post_attention_layernorm"),
            &format!("{l}.mlp.router")
        ));
        assert!(edge(
            &format!("{l}.mlp.router"),
            &format!("{l}.mlp.experts")
        ));
        assert!(edge(&format!("{l}.mlp.experts"), "model.norm"));
        // The residual around the experts, from the MLP's input.
        assert!(edge(
            &format!("{l}.self_attn.o_proj"),
            &format!("{l}.mlp.experts")
        ));
    }
}
