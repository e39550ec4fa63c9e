//! Flax checkpoints (`flax.serialization.to_bytes`) written by Flax, checked against what Flax
//! reads back from them (`tests/data/flax/facts.json`, written with the files by
//! `tests/data/flax/make_flax.py`): every array leaf's name, dtype, shape, mean and first values,
//! every other leaf as metadata; chunked arrays joined; sharded checkpoints through Hugging Face's
//! index; damaged files as errors naming the file.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::path::{Path, PathBuf};

use modelmap::model::{DType, Format, Model, TensorData};
use modelmap::stats::decode::Elem;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/flax")
}

fn open(path: &Path) -> Model {
    modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * (1.0 + a.abs().max(b.abs()))
}

/// Checks every array of `model` against Flax's facts for one file.
fn check_arrays(model: &Model, file: &str, arrays: &[serde_json::Value]) {
    for a in arrays {
        let name = a["name"].as_str().unwrap();
        let ctx = format!("{file}: {name}");
        let t = model
            .tensor(name)
            .unwrap_or_else(|| panic!("{ctx}: missing"));
        let dtype = DType::from_numpy_name(a["dtype"].as_str().unwrap()).unwrap();
        assert_eq!(t.dtype, dtype, "{ctx}");
        assert_eq!(t.shape, common::json_dims(&a["shape"]), "{ctx}");
        let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let want = a["mean"].as_f64().unwrap();
        assert!(
            close(s.mean.unwrap(), want),
            "{ctx}: mean {:?} vs {want}",
            s.mean
        );
        let bytes = t.bytes().unwrap();
        let elem = Elem::of(dtype).unwrap();
        for (i, v) in a["first"].as_array().unwrap().iter().enumerate() {
            let got = elem.value_at(bytes, i as u64).unwrap();
            assert_eq!(got as f32, v.as_f64().unwrap() as f32, "{ctx}: value {i}");
        }
    }
}

#[test]
fn every_array_and_value_matches_what_flax_reads_back() {
    let facts = facts();
    let files = facts["files"].as_object().unwrap();
    assert_eq!(files.len(), 4);
    for (file, f) in files {
        let model = open(&data_dir().join(file));
        assert_eq!(model.format, Format::Flax, "{file}");
        let arrays = f["arrays"].as_array().unwrap();
        assert_eq!(model.tensors.len(), arrays.len(), "{file}");
        check_arrays(&model, file, arrays);
        for s in f["scalars"].as_array().unwrap() {
            let key = format!("checkpoint.{}", s["name"].as_str().unwrap());
            let got = model
                .metadata
                .properties
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{file}: no {key}"));
            let want = match &s["value"] {
                serde_json::Value::String(t) => t.clone(),
                v => v.to_string(),
            };
            assert_eq!(got, want, "{file}: {key}");
        }
    }
}

#[test]
fn modules_are_grouped_and_chained_as_their_pytorch_twins() {
    let cnn = open(&data_dir().join("cnn.msgpack"));
    // Flax's conv kernels are [kh, kw, in, out].
    let k = cnn.tensor("params.Conv_1.kernel").unwrap();
    let axes = k.conv_axes.unwrap();
    assert_eq!((axes.kh, axes.kw, axes.input, axes.out), (0, 1, 2, 3));
    let kind = |m: &Model, name: &str| {
        m.graph
            .nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.op.to_string())
            .unwrap_or_else(|| panic!("no module {name}"))
    };
    assert_eq!(kind(&cnn, "params.Conv_0"), "Conv");
    assert_eq!(kind(&cnn, "params.Dense_1"), "Linear");
    assert_eq!(kind(&cnn, "params.BatchNorm_0"), "BatchNorm");
    assert_eq!(kind(&cnn, "batch_stats.BatchNorm_0"), "BatchNorm");
    // GPT-2 as transformers names it: blocks `h.0`, `h.1` chained in dataflow order.
    let gpt2 = open(&data_dir().join("gpt2_bf16.msgpack"));
    assert_eq!(kind(&gpt2, "transformer.wte"), "Embedding");
    assert_eq!(kind(&gpt2, "transformer.h.0.ln_1"), "LayerNorm");
    assert!(
        gpt2.hierarchy
            .groups
            .iter()
            .any(|g| g.path == "transformer.h.1"),
        "no group for block 1"
    );
    // Block 1's first norm reads block 0's output: the blocks are chained.
    let ln = gpt2
        .graph
        .nodes
        .iter()
        .find(|n| n.name == "transformer.h.1.ln_1")
        .unwrap();
    assert!(!ln.inputs.is_empty(), "GPT-2's blocks are not chained");
}

#[test]
fn a_sharded_checkpoint_opens_through_its_index() {
    // Two shards and an index as transformers writes them (`gpt2_sharded`, make_flax.py): each
    // shard a flat map whose keys are `/`-joined paths, the index naming them the same way.
    let model = open(&data_dir().join("gpt2_sharded"));
    assert_eq!(model.format, Format::Flax);
    assert_eq!(model.metadata.shards, 2);
    assert_eq!(model.tensors.len(), 28);
    assert!(
        !model
            .metadata
            .warnings
            .iter()
            .any(|w| w.contains("in none of the shards")),
        "{:?}",
        model.metadata.warnings
    );
    // The same tensors, names and values as the unsharded file.
    let facts = facts();
    check_arrays(
        &model,
        "gpt2_sharded",
        facts["files"]["gpt2_bf16.msgpack"]["arrays"]
            .as_array()
            .unwrap(),
    );
    // And the blocks chained as in the unsharded file.
    let ln = model
        .graph
        .nodes
        .iter()
        .find(|n| n.name == "transformer.h.1.ln_1")
        .unwrap();
    assert!(!ln.inputs.is_empty());
    let whole = std::fs::read(data_dir().join("gpt2_bf16.msgpack")).unwrap();
    // A folder holding only `flax_model.msgpack` (and a config) opens it.
    let one = tempfile::tempdir().unwrap();
    std::fs::write(one.path().join("flax_model.msgpack"), &whole).unwrap();
    std::fs::write(
        one.path().join("config.json"),
        r#"{"architectures": ["FlaxGPT2LMHeadModel"], "n_layer": 2}"#,
    )
    .unwrap();
    let model = open(one.path());
    assert_eq!(model.format, Format::Flax);
    assert_eq!(
        model.metadata.architecture.as_deref(),
        Some("FlaxGPT2LMHeadModel")
    );
}

#[test]
fn damaged_files_are_errors_naming_the_file_or_the_tensor() {
    let whole = std::fs::read(data_dir().join("gpt2_bf16.msgpack")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Truncated anywhere: an error naming the file, never a panic.
    for cut in [1, 7, 100, whole.len() / 3, whole.len() - 1] {
        let p = dir.path().join(format!("cut{cut}.msgpack"));
        std::fs::write(&p, &whole[..cut]).unwrap();
        let err = modelmap::load::open(&p).unwrap_err().to_string();
        assert!(err.contains(&format!("cut{cut}.msgpack")), "{err}");
    }
    // An array's dtype renamed to one NumPy does not have: an error for that tensor only.
    let at = whole.windows(8).position(|w| w == b"bfloat16").unwrap();
    let mut bad = whole.clone();
    bad[at..at + 8].copy_from_slice(b"bfloat99");
    let p = dir.path().join("dtype.msgpack");
    std::fs::write(&p, &bad).unwrap();
    let model = open(&p);
    let broken: Vec<_> = model
        .tensors
        .iter()
        .filter(|t| matches!(&t.data, TensorData::Error(e) if e.contains("bfloat99") && e.contains("dtype.msgpack")))
        .collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].name, "transformer.wte.embedding");
    assert_eq!(model.tensors.len(), 28);
}

mod common;
