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
fn tensor_and_pipeline_parallel_ranks_are_put_back_together() {
    let model = open(&dir());
    assert_eq!(model.metadata.producer.as_deref(), Some("Megatron-LM"));
    assert_eq!(common::property(&model, "megatron.iteration"), Some("20"));
    assert_eq!(common::property(&model, "checkpoint.iteration"), Some("20"));
    assert_eq!(
        common::property(&model, "megatron.parallel"),
        Some("tensor 2 × pipeline 2 (4 ranks, put back together)")
    );
    assert!(
        model.metadata.warnings.is_empty(),
        "{:?}",
        model.metadata.warnings
    );
    // Every tensor whole, under its global layer number, as Megatron's own loader reassembles
    // them: qkv and the embedding by rows, linear_proj and fc2 by columns, fc1's gates of both
    // ranks before their ups, norms and row-parallel biases from rank 0.
    let text = std::fs::read_to_string(dir().parent().unwrap().join("facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (name, f) in facts.as_object().unwrap() {
        let id = *model
            .tensor_index
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no {name}"));
        let t = &model.tensors[id as usize];
        assert_eq!(t.shape, common::json_dims(&f["shape"]), "{name}");
        common::assert_values_match(t, f, name);
        // Every value in its place, not only the first, the last and the mean.
        let v = t.small_numbers().unwrap();
        let weighted: f64 = v.iter().enumerate().map(|(i, x)| i as f64 * x).sum();
        let want = f["index_weighted_sum"].as_f64().unwrap();
        assert!(
            (weighted - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{name}: Σ i·v[i] {weighted} against {want}"
        );
    }
    // An iteration's folder opens on its own; one rank is read as it is.
    let ten = open(&dir().join("iter_0000010"));
    assert_eq!(common::property(&ten, "checkpoint.iteration"), Some("10"));
    assert!(
        ten.metadata.warnings.is_empty(),
        "{:?}",
        ten.metadata.warnings
    );
}

#[test]
fn a_missing_rank_leaves_the_first_ranks_slices_with_a_warning() {
    let tmp = common::copy_folder(&dir());
    std::fs::remove_dir_all(tmp.path().join("iter_0000020/mp_rank_01_001")).unwrap();
    let model = open(tmp.path());
    assert!(
        model
            .metadata
            .warnings
            .iter()
            .any(|w| w.contains("3 rank folders") && w.contains("mp_rank_00_000")),
        "{:?}",
        model.metadata.warnings
    );
    // Rank 0 of stage 0 holds half of layer 0's qkv rows.
    let qkv = model
        .tensor("decoder.layers.0.self_attention.linear_qkv.weight")
        .unwrap();
    assert_eq!(qkv.shape, [24, 16]);
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
        "decoder.layers.1.self_attention.linear_proj",
        "decoder.layers.1.mlp.linear_fc1",
        "decoder.layers.1.mlp.linear_fc2",
        // The second pipeline stage's layers follow the first's.
        "decoder.layers.2.self_attention.linear_qkv",
        "decoder.layers.2.self_attention.linear_proj",
        "decoder.layers.2.mlp.linear_fc1",
        "decoder.layers.2.mlp.linear_fc2",
        "decoder.layers.3.self_attention.linear_qkv",
        "decoder.layers.3.self_attention.linear_proj",
        "decoder.layers.3.mlp.linear_fc1",
        "decoder.layers.3.mlp.linear_fc2",
    ];
    for w in chain.windows(2) {
        assert!(common::edge(&model, w[0], w[1]), "{} → {}", w[0], w[1]);
    }
    assert!(common::edge(
        &model,
        "decoder.layers.3.mlp.linear_fc2",
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
