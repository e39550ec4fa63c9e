//! Checkpoints of model families written by transformers' own `save_pretrained`
//! (`tests/data/families/make_families.py`), chained in the order the models run: GPT-NeoX
//! (Pythia's names), and the encoder-decoders Whisper and T5, whose decoder blocks follow the
//! encoder and whose cross-attention reads the encoder's output.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::PathBuf;

use modelmap::model::Model;

fn open(name: &str) -> Model {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/families")
        .join(name);
    modelmap::load::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_chain(model: &Model, chain: &[&str]) {
    for w in chain.windows(2) {
        assert!(common::edge(model, w[0], w[1]), "{} → {}", w[0], w[1]);
    }
}

#[test]
fn gpt_neox_chains_its_fused_attention_and_mlp() {
    let model = open("neox");
    assert_chain(
        &model,
        &[
            "gpt_neox.embed_in",
            "gpt_neox.layers.0.input_layernorm",
            "gpt_neox.layers.0.attention.query_key_value",
            "gpt_neox.layers.0.attention.dense",
            "gpt_neox.layers.0.post_attention_layernorm",
            "gpt_neox.layers.0.mlp.dense_h_to_4h",
            "gpt_neox.layers.0.mlp.dense_4h_to_h",
            "gpt_neox.layers.1.input_layernorm",
        ],
    );
    assert_chain(
        &model,
        &[
            "gpt_neox.layers.1.mlp.dense_4h_to_h",
            "gpt_neox.final_layer_norm",
            "embed_out",
        ],
    );
}

#[test]
fn whisper_runs_its_encoder_then_its_decoder() {
    let model = open("whisper");
    let (e, d) = ("model.encoder.layers", "model.decoder.layers");
    assert_chain(
        &model,
        &[
            &format!("{e}.0.self_attn_layer_norm"),
            &format!("{e}.0.self_attn.k_proj"),
            &format!("{e}.0.self_attn.out_proj"),
            &format!("{e}.0.final_layer_norm"),
            &format!("{e}.0.fc1"),
            &format!("{e}.0.fc2"),
            &format!("{e}.1.self_attn_layer_norm"),
        ],
    );
    assert_chain(
        &model,
        &[
            &format!("{e}.1.fc2"),
            "model.encoder.layer_norm",
            "model.decoder.embed_positions",
        ],
    );
    assert_chain(
        &model,
        &[
            &format!("{d}.0.self_attn_layer_norm"),
            &format!("{d}.0.self_attn.q_proj"),
            &format!("{d}.0.self_attn.out_proj"),
            &format!("{d}.0.encoder_attn_layer_norm"),
            &format!("{d}.0.encoder_attn.q_proj"),
            &format!("{d}.0.encoder_attn.out_proj"),
            &format!("{d}.0.final_layer_norm"),
            &format!("{d}.0.fc1"),
        ],
    );
    for layer in 0..2 {
        assert!(common::edge(
            &model,
            "model.encoder.layer_norm",
            &format!("{d}.{layer}.encoder_attn.k_proj")
        ));
    }
}

#[test]
fn t5_chains_its_sub_layers_and_cross_attention() {
    let model = open("t5");
    let (e, d) = ("encoder.block", "decoder.block");
    assert_chain(
        &model,
        &[
            "shared",
            &format!("{e}.0.layer.0.layer_norm"),
            &format!("{e}.0.layer.0.SelfAttention.q"),
            &format!("{e}.0.layer.0.SelfAttention.o"),
            &format!("{e}.0.layer.1.layer_norm"),
            &format!("{e}.0.layer.1.DenseReluDense.wi"),
            &format!("{e}.0.layer.1.DenseReluDense.wo"),
            &format!("{e}.1.layer.0.layer_norm"),
        ],
    );
    assert_chain(
        &model,
        &[
            &format!("{e}.1.layer.1.DenseReluDense.wo"),
            "encoder.final_layer_norm",
            &format!("{d}.0.layer.0.layer_norm"),
            &format!("{d}.0.layer.0.SelfAttention.v"),
            &format!("{d}.0.layer.0.SelfAttention.o"),
            &format!("{d}.0.layer.1.layer_norm"),
            &format!("{d}.0.layer.1.EncDecAttention.q"),
            &format!("{d}.0.layer.1.EncDecAttention.o"),
            &format!("{d}.0.layer.2.layer_norm"),
            &format!("{d}.0.layer.2.DenseReluDense.wi"),
            &format!("{d}.0.layer.2.DenseReluDense.wo"),
            &format!("{d}.1.layer.0.layer_norm"),
        ],
    );
    assert!(common::edge(
        &model,
        "encoder.final_layer_norm",
        &format!("{d}.1.layer.1.EncDecAttention.k")
    ));
    assert_chain(
        &model,
        &[
            &format!("{d}.1.layer.2.DenseReluDense.wo"),
            "decoder.final_layer_norm",
        ],
    );
}
