//! Diffusion model checkpoints read as a dataflow: an SDXL-shaped UNet, a VAE and a Flux
//! transformer (by diffusers' names and by Black Forest Labs' own), written by diffusers
//! (`tests/data/diffusion/make_diffusion.py`), checked against the order diffusers' own forward
//! passes call their modules in.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use modelmap::model::{Model, NodeKind};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/diffusion")
        .join(name)
}

fn facts() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data("facts.json")).unwrap()).unwrap()
}

/// Module edges (from, to) by module name.
fn module_edges(m: &Model) -> Vec<(&str, &str)> {
    let module = |i: u32| {
        m.graph
            .nodes
            .get(i as usize)
            .filter(|n| n.kind == NodeKind::Module)
            .map(|n| n.name.as_str())
    };
    let mut out: Vec<(&str, &str)> = m
        .graph
        .edges
        .iter()
        .filter_map(|e| Some((module(e.from)?, module(e.to)?)))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Checks `file`'s module graph against the call order, and that exactly `entries` have no input
/// and everything reaches the output, the last module called.
fn check(file: &str, entries: &[&str]) -> (Model, Vec<(String, String)>) {
    check_to(file, entries, &[])
}

/// [`check`] for a model with several outputs (none: the last module called).
fn check_to(file: &str, entries: &[&str], outputs: &[&str]) -> (Model, Vec<(String, String)>) {
    let f = &facts()[file];
    let order: Vec<&str> = f["call_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let m = modelmap::load::open(&data(file)).unwrap();
    let modules: HashSet<&str> = m
        .graph
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Module)
        .map(|n| n.name.as_str())
        .collect();
    // One module node per module with weights, named as the model names it.
    assert_eq!(modules.len(), order.len(), "{file}");
    for name in &order {
        assert!(modules.contains(name), "{file}: no module {name}");
    }
    let at: HashMap<&str, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let edges = module_edges(&m);
    assert!(edges.len() >= order.len(), "{file}: {} edges", edges.len());
    // Every edge runs forward: its source is called before its target.
    for &(a, b) in &edges {
        assert!(at[a] < at[b], "{file}: {a} → {b} runs backwards");
    }
    // Everything but the model's entry points reads something.
    let fed: HashSet<&str> = edges.iter().map(|&(_, b)| b).collect();
    let mut sources: Vec<&str> = order.iter().copied().filter(|n| !fed.contains(n)).collect();
    sources.sort_unstable();
    let mut want = entries.to_vec();
    want.sort_unstable();
    assert_eq!(sources, want, "{file}");
    // And everything reaches an output: the last module called, or those given.
    let last = *order.last().unwrap();
    let outputs: Vec<&str> = if outputs.is_empty() {
        vec![last]
    } else {
        outputs.to_vec()
    };
    let feeds: HashSet<&str> = edges.iter().map(|&(a, _)| a).collect();
    for name in &order {
        assert!(
            feeds.contains(name) || outputs.contains(name),
            "{file}: {name} feeds nothing"
        );
    }
    let mut reaches: HashSet<&str> = outputs.iter().copied().collect();
    loop {
        let before = reaches.len();
        for &(a, b) in &edges {
            if reaches.contains(b) {
                reaches.insert(a);
            }
        }
        if reaches.len() == before {
            break;
        }
    }
    for name in &order {
        assert!(reaches.contains(name), "{file}: {name} reaches no output");
    }
    let owned = edges
        .iter()
        .map(|&(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    (m, owned)
}

#[test]
fn a_unet_runs_down_the_u_and_back_up_through_its_skip_connections() {
    let file = "unet/diffusion_pytorch_model.safetensors";
    let (m, edges) = check(
        file,
        &[
            "time_embedding.linear_1",
            "add_embedding.linear_1",
            "conv_in",
        ],
    );
    // diffusers' config beside it names the class.
    assert_eq!(
        m.metadata.architecture.as_deref(),
        Some("UNet2DConditionModel")
    );
    // Each resnet of the up path reads back one hidden state the down path kept.
    let resnet = |name: &str| -> String {
        let parts: Vec<&str> = name.split('.').collect();
        parts[..4].join(".")
    };
    let skipped: HashSet<String> = edges
        .iter()
        .filter(|(a, b)| {
            (a.starts_with("down_blocks.") || a == "conv_in")
                && b.starts_with("up_blocks.")
                && b.contains(".resnets.")
        })
        .map(|(_, b)| resnet(b))
        .collect();
    assert_eq!(
        skipped.len() as u64,
        facts()[file]["up_resnets"].as_u64().unwrap()
    );
    // The last up resnet reads what conv_in made; the first, what the last down block kept.
    assert!(edges.contains(&("conv_in".into(), "up_blocks.1.resnets.2.norm1".into())));
    // The time embedding (and SDXL's added one) feeds every resnet.
    let fed = edges
        .iter()
        .filter(|(a, b)| a == "add_embedding.linear_2" && b.ends_with("time_emb_proj"))
        .count();
    assert_eq!(fed, 2 * 2 + 2 + 2 * 3, "every resnet's time projection");
    // A resnet's input reaches what follows it through its shortcut (run last, as diffusers'
    // ResnetBlock2D adds it to conv2's output), the skip connection too.
    for from in [
        "mid_block.resnets.1.conv2",
        "down_blocks.1.attentions.1.proj_out",
    ] {
        assert!(
            edges.contains(&(from.into(), "up_blocks.0.resnets.0.conv_shortcut".into())),
            "{from}"
        );
    }
    assert!(edges.contains(&(
        "up_blocks.0.resnets.0.conv_shortcut".into(),
        "up_blocks.0.attentions.0.norm".into()
    )));
}

#[test]
fn a_vae_encodes_then_decodes() {
    let (_, edges) = check(
        "vae/diffusion_pytorch_model.safetensors",
        &["encoder.conv_in"],
    );
    assert!(edges.contains(&("encoder.conv_out".into(), "quant_conv".into())));
    assert!(edges.contains(&("post_quant_conv".into(), "decoder.conv_in".into())));
    // No skip connections from the encoder into the decoder.
    assert!(
        !edges
            .iter()
            .any(|(a, b)| a.starts_with("encoder.down_blocks") && b.starts_with("decoder.")),
        "{edges:?}"
    );
}

#[test]
fn flux_runs_its_double_then_single_blocks_by_either_naming() {
    let diffusers = [
        "x_embedder",
        "context_embedder",
        "time_text_embed.timestep_embedder.linear_1",
        "time_text_embed.guidance_embedder.linear_1",
        "time_text_embed.text_embedder.linear_1",
    ];
    let (_, edges) = check("flux/diffusion_pytorch_model.safetensors", &diffusers);
    assert!(edges.contains(&(
        "transformer_blocks.1.ff.net.2".into(),
        "single_transformer_blocks.0.norm.linear".into()
    )));
    let bfl = [
        "img_in",
        "txt_in",
        "time_in.in_layer",
        "guidance_in.in_layer",
        "vector_in.in_layer",
    ];
    let (m, edges) = check("flux_bfl.safetensors", &bfl);
    assert!(edges.contains(&(
        "double_blocks.1.img_mlp.2".into(),
        "single_blocks.0.modulation.lin".into()
    )));
    // The time embeddings modulate every block.
    let modulated = edges
        .iter()
        .filter(|(a, b)| {
            a == "time_in.out_layer" && (b.ends_with("_mod.lin") || b.ends_with("modulation.lin"))
        })
        .count();
    assert_eq!(modulated, 2 * 2 + 2);
    // The image and text streams of a double block meet only in its joint attention.
    assert!(edges.contains(&(
        "double_blocks.0.txt_attn.norm.key_norm".into(),
        "double_blocks.0.img_attn.proj".into()
    )));
    assert!(edges.contains(&(
        "double_blocks.0.img_mlp.2".into(),
        "double_blocks.1.img_mod.lin".into()
    )));
    for (a, b) in &edges {
        let txt_into_img = a.contains(".txt_") && b.contains(".img_") && !b.ends_with("attn.proj");
        assert!(!txt_into_img, "{a} → {b}");
    }
    assert_eq!(m.graph.nodes.len(), 48);
}

/// A whole pipeline in one file under the original Stable Diffusion code's names (the
/// single-file checkpoints): the text encoder feeds every cross-attention, the UNet runs its U
/// with its skip connections, and the VAE decodes what it made.
#[test]
fn an_original_stable_diffusion_checkpoint_runs_text_encoder_unet_and_vae() {
    let file = "sd_ldm.safetensors";
    let (_, edges) = check(
        file,
        &[
            "cond_stage_model.transformer.text_model.embeddings.token_embedding",
            "cond_stage_model.transformer.text_model.embeddings.position_embedding",
            "model.diffusion_model.time_embed.0",
            "model.diffusion_model.label_emb.0.0",
            "model.diffusion_model.input_blocks.0.0",
            "first_stage_model.encoder.conv_in",
        ],
    );
    let has = |a: &str, b: &str| edges.contains(&(a.to_owned(), b.to_owned()));
    let unet = "model.diffusion_model.";
    // The text encoder's output is every cross-attention's keys and values.
    let text = "cond_stage_model.transformer.text_model.final_layer_norm";
    let cross = edges
        .iter()
        .filter(|(a, b)| a == text && (b.ends_with("attn2.to_k") || b.ends_with("attn2.to_v")))
        .count();
    let blocks = facts()[file]["call_order"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n.as_str().unwrap().ends_with("attn2.to_k"))
        .count();
    assert_eq!(cross, 2 * blocks, "two per transformer block");
    assert_eq!(blocks, 6);
    // Each output block's resnet reads one input block's state back, the last first.
    let skipped: HashSet<&str> = edges
        .iter()
        .filter(|(a, b)| {
            a.starts_with(&format!("{unet}input_blocks"))
                && b.starts_with(&format!("{unet}output_blocks"))
        })
        .map(|(_, b)| b.split('.').nth(3).unwrap())
        .collect();
    assert_eq!(
        skipped.len() as u64,
        facts()[file]["up_resnets"].as_u64().unwrap()
    );
    assert!(has(
        &format!("{unet}input_blocks.0.0"),
        &format!("{unet}output_blocks.5.0.in_layers.0")
    ));
    // The UNet's output is what the VAE decodes; its decoder runs its last level first.
    assert!(has(
        &format!("{unet}out.2"),
        "first_stage_model.post_quant_conv"
    ));
    assert!(has(
        "first_stage_model.decoder.mid.block_2.conv2",
        "first_stage_model.decoder.up.1.block.0.norm1"
    ));
}

/// SD3's MMDiT: image patches (with their position table) and text in two streams that meet in
/// each block's joint attention; its last block reads the text without updating it.
#[test]
fn sd3_runs_its_two_streams_through_joint_attention() {
    let (_, edges) = check(
        "sd3/diffusion_pytorch_model.safetensors",
        &[
            "pos_embed.proj",
            "pos_embed",
            "context_embedder",
            "time_text_embed.timestep_embedder.linear_1",
            "time_text_embed.text_embedder.linear_1",
        ],
    );
    let has = |a: &str, b: &str| edges.contains(&(a.to_owned(), b.to_owned()));
    // The patches (with their position table) and the text enter side by side, each its stream.
    for from in ["pos_embed.proj", "pos_embed"] {
        assert!(has(from, "transformer_blocks.0.norm1.linear"), "{from}");
        assert!(
            !has(from, "transformer_blocks.0.norm1_context.linear"),
            "{from}"
        );
    }
    assert!(has(
        "context_embedder",
        "transformer_blocks.0.norm1_context.linear"
    ));
    // The last block updates only the image: its text stream ends in the joint attention, and
    // the first block's text output skips to it.
    assert!(has(
        "transformer_blocks.0.ff_context.net.2",
        "transformer_blocks.1.norm1_context.linear"
    ));
    // The last block's text projections feed only its joint attention.
    assert!(has(
        "transformer_blocks.1.attn.add_v_proj",
        "transformer_blocks.1.attn.to_out.0"
    ));
}

/// Wan's video DiT by diffusers' names and by its own (ComfyUI's files): self-attention,
/// cross-attention over its own text embedding, feed-forward, modulated by the time.
#[test]
fn wan_runs_self_attention_then_cross_attention_over_its_text_by_either_naming() {
    let entries = [
        "patch_embedding",
        "condition_embedder.time_embedder.linear_1",
        "condition_embedder.text_embedder.linear_1",
    ];
    let (_, edges) = check("wan/diffusion_pytorch_model.safetensors", &entries);
    let has = |e: &[(String, String)], a: &str, b: &str| e.contains(&(a.to_owned(), b.to_owned()));
    // The text reaches each block's cross-attention keys and values, not its queries.
    let text = "condition_embedder.text_embedder.linear_2";
    assert!(has(&edges, text, "blocks.1.attn2.to_k"));
    assert!(has(&edges, text, "blocks.1.attn2.to_v"));
    assert!(!has(&edges, text, "blocks.1.attn2.to_q"));
    // The time's projection modulates each block.
    assert!(has(&edges, "condition_embedder.time_proj", "blocks.0"));
    let p = "model.diffusion_model.";
    let entries: Vec<String> = ["patch_embedding", "time_embedding.0", "text_embedding.0"]
        .iter()
        .map(|e| format!("{p}{e}"))
        .collect();
    let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
    let (_, edges) = check("wan_comfy.safetensors", &entries);
    assert!(has(
        &edges,
        &format!("{p}text_embedding.2"),
        &format!("{p}blocks.0.cross_attn.k")
    ));
    // Wan's own `norm3` is its cross-attention's norm.
    assert!(has(
        &edges,
        &format!("{p}blocks.0.self_attn.o"),
        &format!("{p}blocks.0.norm3")
    ));
}

/// Qwen-Image: Flux-like double blocks (`img_mod` / `txt_mod`, `img_mlp` / `txt_mlp`), its text
/// normalized before it is embedded.
#[test]
fn qwen_image_runs_its_double_blocks() {
    let (_, edges) = check(
        "qwen_image/diffusion_pytorch_model.safetensors",
        &[
            "img_in",
            "txt_norm",
            "time_text_embed.timestep_embedder.linear_1",
        ],
    );
    let has = |a: &str, b: &str| edges.contains(&(a.to_owned(), b.to_owned()));
    assert!(has("txt_norm", "txt_in"));
    assert!(!has("txt_norm", "img_in"));
    assert!(has("txt_in", "transformer_blocks.0.txt_mod.1"));
    assert!(has(
        "transformer_blocks.0.img_mlp.net.2",
        "transformer_blocks.1.img_mod.1"
    ));
    assert!(has(
        "time_text_embed.timestep_embedder.linear_2",
        "transformer_blocks.1.txt_mod.1"
    ));
}

/// A ControlNet: a UNet's down half, its conditioning image's embedding joining after conv_in,
/// and a zero convolution reading each state the down path keeps and the mid block's output.
#[test]
fn a_controlnet_reads_each_kept_state_into_its_outputs() {
    let outputs = [
        "controlnet_down_blocks.0",
        "controlnet_down_blocks.1",
        "controlnet_down_blocks.2",
        "controlnet_down_blocks.3",
        "controlnet_mid_block",
    ];
    let (_, edges) = check_to(
        "controlnet/diffusion_pytorch_model.safetensors",
        &[
            "time_embedding.linear_1",
            "conv_in",
            "controlnet_cond_embedding.conv_in",
        ],
        &outputs,
    );
    let has = |a: &str, b: &str| edges.contains(&(a.to_owned(), b.to_owned()));
    // As diffusers' ControlNetModel keeps them: conv_in, each resnet (with its attention), each
    // downsampler.
    assert!(has("conv_in", "controlnet_down_blocks.0"));
    assert!(has(
        "down_blocks.0.resnets.0.conv2",
        "controlnet_down_blocks.1"
    ));
    assert!(has(
        "down_blocks.0.downsamplers.0.conv",
        "controlnet_down_blocks.2"
    ));
    assert!(has(
        "down_blocks.1.attentions.0.proj_out",
        "controlnet_down_blocks.3"
    ));
    assert!(has("mid_block.resnets.1.conv2", "controlnet_mid_block"));
    assert!(has(
        "controlnet_cond_embedding.conv_out",
        "down_blocks.0.resnets.0.norm1"
    ));
}
