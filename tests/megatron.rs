//! Megatron-LM checkpoint folders (`latest_checkpointed_iteration.txt`, `iter_NNNNNNN/mp_rank_NN/
//! model_optim_rng.pt`) laid out as Megatron's `save_checkpoint` lays them out, checked against
//! what torch reads from them (`tests/data/megatron/make_megatron.py`, `facts.json`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::{Path, PathBuf};

use modelmap::model::Model;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/megatron/checkpoints")
}

fn open(path: &Path) -> Model {
    modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_latest_iteration_first_rank_is_read() {
    let model = open(&dir());
    assert_eq!(model.metadata.producer.as_deref(), Some("Megatron-LM"));
    assert_eq!(common::property(&model, "megatron.iteration"), Some("20"));
    assert_eq!(common::property(&model, "checkpoint.iteration"), Some("20"));
    assert!(
        model
            .metadata
            .warnings
            .iter()
            .any(|w| w.contains("2 ranks") && w.contains("mp_rank_00")),
        "{:?}",
        model.metadata.warnings
    );
    let text = std::fs::read_to_string(dir().parent().unwrap().join("facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (name, f) in facts.as_object().unwrap() {
        let t = &model.tensors[model.tensor_index[name.as_str()] as usize];
        assert_eq!(t.shape, common::json_dims(&f["shape"]), "{name}");
        common::assert_values_match(t, f, name);
    }
    // An iteration's folder opens on its own.
    let ten = open(&dir().join("iter_0000010"));
    assert_eq!(common::property(&ten, "checkpoint.iteration"), Some("10"));
    assert!(
        ten.metadata.warnings.is_empty(),
        "{:?}",
        ten.metadata.warnings
    );
}

#[test]
fn megatron_core_names_chain_as_a_decoder() {
    let model = open(&dir());
    let chain = [
        "embedding.word_embeddings",
        "decoder.layers.0.self_attention.linear_qkv",
        "decoder.layers.0.self_attention.linear_proj",
        "decoder.layers.0.mlp.linear_fc1",
        "decoder.layers.0.mlp.linear_fc2",
        "decoder.layers.1.self_attention.linear_qkv",
    ];
    for w in chain.windows(2) {
        assert!(common::edge(&model, w[0], w[1]), "{} → {}", w[0], w[1]);
    }
    assert!(common::edge(
        &model,
        "decoder.layers.1.mlp.linear_fc2",
        "decoder.final_layernorm"
    ));
    assert!(common::edge(
        &model,
        "decoder.final_layernorm",
        "output_layer"
    ));
}

#[test]
fn a_damaged_tracker_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("latest_checkpointed_iteration.txt"), "soon").unwrap();
    let e = modelmap::load::open(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains("latest_checkpointed_iteration.txt") && e.contains("soon"),
        "{e}"
    );
    std::fs::write(tmp.path().join("latest_checkpointed_iteration.txt"), "7").unwrap();
    let e = modelmap::load::open(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("iter_0000007") && e.contains("mp_rank"), "{e}");
}
