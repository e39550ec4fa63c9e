//! Orbax checkpoints written by real Orbax (TensorStore's OCDBT store with zarr 2 and zarr 3
//! arrays, zarr folders without OCDBT, arrays sharded over two devices and by two processes (each
//! writing its own `ocdbt.process_N/`), a `CheckpointManager`'s steps, a step of two items),
//! checked against what Orbax itself restores from them (`tests/data/orbax/facts.json`, written
//! with the folders by `tests/data/orbax/make_orbax.py`); and a checkpoint in T5X's layout
//! (`make_t5x.py`: gzip zarr folders written by TensorStore beside a MessagePack `checkpoint`),
//! checked against the arrays written.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::{Path, PathBuf};

use modelmap::model::{DType, Format, Model, TensorData};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/orbax")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(path: &Path) -> Model {
    modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::I32 => "i32",
        DType::I64 => "i64",
        DType::I8 => "i8",
        other => panic!("{other:?}"),
    }
}

fn values(model: &Model, name: &str) -> Vec<f64> {
    let t = &model.tensors[model.tensor_index[name] as usize];
    t.small_numbers()
        .unwrap_or_else(|| panic!("{name}: no values ({:?})", t.data))
}

#[test]
fn every_array_matches_what_orbax_restores() {
    let facts = facts();
    let folders = facts.as_object().unwrap();
    assert_eq!(folders.len(), 8);
    for (folder, arrays) in folders {
        let model = open(&data_dir().join(folder));
        assert_eq!(model.format, Format::Orbax, "{folder}");
        let arrays = arrays.as_object().unwrap();
        let mut want: Vec<&str> = arrays.keys().map(String::as_str).collect();
        let mut got: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "{folder}");
        for (name, f) in arrays {
            let t = &model.tensors[model.tensor_index[name.as_str()] as usize];
            assert_eq!(dtype_name(t.dtype), f["dtype"], "{folder}: {name}");
            assert_eq!(t.shape, common::json_dims(&f["shape"]), "{folder}: {name}");
            common::assert_values_match(t, f, &format!("{folder}: {name}"));
        }
    }
}

#[test]
fn opening_reads_no_array_data_until_asked() {
    let model = open(&data_dir().join("gemma"));
    // A pass over every tensor (`stats --all`, the anomaly scan) decompresses each for its own
    // statistics and keeps none, so memory holds a few arrays at a time, not the checkpoint.
    let all = modelmap::stats::model_stats(&model, &|_, _| {});
    assert!(all.iter().all(Result::is_ok));
    // (The scalar `step` was read when the checkpoint opened, for the metadata.)
    for t in model.tensors.iter().filter(|t| t.name != "step") {
        let TensorData::Lazy(l) = &t.data else {
            panic!("{}: {:?}", t.name, t.data)
        };
        assert!(!l.is_ready(), "{}", t.name);
    }
    let name = "params.transformer.embedder.input_embedding";
    let t = &model.tensors[model.tensor_index[name] as usize];
    let TensorData::Lazy(lazy) = &t.data else {
        panic!("{name}: {:?}", t.data)
    };
    assert!(!lazy.is_ready());
    assert_eq!(lazy.len(), 64 * 16 * 2);
    assert!(t.has_data());
    let stats = modelmap::stats::tensor_stats(t).unwrap();
    assert!(lazy.is_ready());
    assert_eq!(stats.count, 64 * 16);
    // The scalar saved beside the tree is metadata too.
    assert_eq!(common::property(&model, "checkpoint.step"), Some("1000"));
    assert_eq!(common::property(&model, "orbax.storage"), Some("ocdbt"));
    assert_eq!(common::property(&model, "orbax.zarr"), Some("2"));
}

#[test]
fn each_layout_and_entry_point_opens() {
    let dir = data_dir();
    let zarr3 = open(&dir.join("zarr3"));
    assert_eq!(common::property(&zarr3, "orbax.zarr"), Some("3"));
    let plain = open(&dir.join("plain"));
    assert_eq!(
        common::property(&plain, "orbax.storage"),
        Some("zarr folders")
    );
    // A file of the checkpoint opens its folder.
    for file in ["_METADATA", "manifest.ocdbt"] {
        let m = open(&dir.join("gemma").join(file));
        assert_eq!(m.tensors.len(), 19, "{file}");
    }
    // Orbax before `_METADATA`: a MessagePack tree in `checkpoint` beside the zarr folders.
    let old = common::copy_folder(&dir.join("plain"));
    std::fs::remove_file(old.path().join("_METADATA")).unwrap();
    std::fs::write(old.path().join("checkpoint"), b"\x81\xa3emb\xc0").unwrap();
    let m = open(old.path());
    assert_eq!(m.format, Format::Orbax);
    assert_eq!(m.tensors.len(), 4);
    // A checkpoint folder with TensorBoard logs beside its arrays is the checkpoint, not logs.
    let logged = common::copy_folder(&dir.join("gemma"));
    let runs = logged.path().join("tb/run1");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("events.out.tfevents.1.host"), b"").unwrap();
    assert!(!modelmap::training::looks_like_logs(logged.path()));
    assert_eq!(open(logged.path()).tensors.len(), 19);
    // A manager's folder opens its latest step, and lists the others.
    let manager = open(&dir.join("manager"));
    assert_eq!(common::property(&manager, "orbax.step"), Some("2"));
    assert_eq!(common::property(&manager, "orbax.steps"), Some("1, 2"));
    assert_eq!(values(&manager, "w"), [2.0; 6]);
    // A step of two items names each item's arrays under it.
    let items = open(&dir.join("items"));
    assert_eq!(common::property(&items, "orbax.step"), Some("5"));
    assert!(items.tensor_index.contains_key("params.w"));
    assert!(items.tensor_index.contains_key("opt_state.mu"));
    let step1 = open(&dir.join("manager/1"));
    assert_eq!(common::property(&step1, "orbax.step"), Some("1"));
    assert_eq!(values(&step1, "w"), [1.0; 6]);
}

#[test]
fn gemma_names_chain_as_a_transformer() {
    let model = open(&data_dir().join("gemma"));
    let l0 = "params.transformer.layer_0";
    assert!(common::edge(
        &model,
        "params.transformer.embedder",
        &format!("{l0}.pre_attention_norm")
    ));
    assert!(common::edge(
        &model,
        &format!("{l0}.pre_attention_norm"),
        &format!("{l0}.attn.q_einsum")
    ));
    assert!(common::edge(
        &model,
        &format!("{l0}.attn.kv_einsum"),
        &format!("{l0}.attn.attn_vec_einsum")
    ));
    assert!(common::edge(
        &model,
        &format!("{l0}.pre_ffw_norm"),
        &format!("{l0}.mlp.gating_einsum")
    ));
    assert!(common::edge(
        &model,
        &format!("{l0}.mlp.linear"),
        "params.transformer.layer_1.pre_attention_norm"
    ));
    assert!(common::edge(
        &model,
        "params.transformer.layer_1.mlp.linear",
        "params.transformer.final_norm"
    ));
    // The optimizer's state is no stage of the dataflow.
    let mu = common::node_id(&model, "opt_state.mu");
    assert!(!model.graph.edges.iter().any(|e| e.from == mu || e.to == mu));
    let kind = |name: &str| {
        model.graph.nodes[common::node_id(&model, name) as usize]
            .op
            .to_string()
    };
    assert_eq!(kind(&format!("{l0}.attn.q_einsum")), "Einsum");
    // An einsum weight's heatmap stacks one matrix per gate (or head), not one row each.
    let gating = &model.tensors[model.tensor_index[&format!("{l0}.mlp.gating_einsum.w")] as usize];
    let view = modelmap::stats::heatmap::HeatmapView::for_tensor(gating);
    assert_eq!((view.rows, view.cols), (2 * 32, 16));
}

#[test]
fn a_t5x_checkpoint_chains_encoder_then_decoder() {
    // T5X's layout (a MessagePack `checkpoint` beside gzip-compressed zarr folders), opened from
    // the folder of its steps.
    let model = open(&data_dir().join("t5x"));
    assert_eq!(common::property(&model, "orbax.step"), Some("1000"));
    assert_eq!(
        common::property(&model, "orbax.storage"),
        Some("zarr folders")
    );
    let (enc, dec) = ("target.encoder.layers_0", "target.decoder.layers_0");
    let chain = [
        "target.token_embedder".to_string(),
        format!("{enc}.pre_attention_layer_norm"),
        format!("{enc}.attention.query"),
        format!("{enc}.attention.out"),
        format!("{enc}.pre_mlp_layer_norm"),
        format!("{enc}.mlp.wi_0"),
        format!("{enc}.mlp.wo"),
        "target.encoder.encoder_norm".to_string(),
        format!("{dec}.pre_self_attention_layer_norm"),
        format!("{dec}.self_attention.value"),
        format!("{dec}.self_attention.out"),
        format!("{dec}.pre_cross_attention_layer_norm"),
        format!("{dec}.encoder_decoder_attention.key"),
        format!("{dec}.encoder_decoder_attention.out"),
        format!("{dec}.pre_mlp_layer_norm"),
        format!("{dec}.mlp.wi_1"),
        format!("{dec}.mlp.wo"),
        "target.decoder.decoder_norm".to_string(),
        "target.decoder.logits_dense".to_string(),
    ];
    for w in chain.windows(2) {
        assert!(common::edge(&model, &w[0], &w[1]), "{} → {}", w[0], w[1]);
    }
    // The cross-attention reads the encoder's output.
    assert!(common::edge(
        &model,
        "target.encoder.encoder_norm",
        &format!("{dec}.encoder_decoder_attention.value")
    ));
}

#[test]
fn damage_is_an_error_naming_the_file() {
    // A flipped byte in the manifest fails its checksum.
    let tmp = common::copy_folder(&data_dir().join("gemma"));
    let manifest = tmp.path().join("manifest.ocdbt");
    let mut bytes = std::fs::read(&manifest).unwrap();
    bytes[20] ^= 0x55;
    std::fs::write(&manifest, bytes).unwrap();
    let e = modelmap::load::open(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains("manifest.ocdbt") && e.contains("checksum"),
        "{e}"
    );

    // The root B+tree node cut short.
    let tmp = common::copy_folder(&data_dir().join("gemma"));
    let root = std::fs::read_dir(tmp.path().join("d"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    common::cut_in_half(&root);
    let e = modelmap::load::open(tmp.path()).unwrap_err().to_string();
    let file = root.file_name().unwrap().to_str().unwrap();
    assert!(e.contains(file) && e.contains("runs past"), "{e}");

    // A chunk cut short is an error for its array alone; a chunk never written is the fill value.
    let tmp = common::copy_folder(&data_dir().join("plain"));
    common::cut_in_half(&tmp.path().join("emb/0.0"));
    std::fs::remove_file(tmp.path().join("mask/0")).unwrap();
    let model = open(tmp.path());
    let emb = &model.tensors[model.tensor_index["emb"] as usize];
    assert!(emb.data().is_none());
    assert!(!emb.has_data(), "known to fail once tried");
    let e = modelmap::stats::tensor_stats(emb).unwrap_err().to_string();
    assert!(e.contains("emb/0.0") && e.contains("zstd"), "{e}");
    assert_eq!(values(&model, "mask"), [0.0; 5]);
    assert_eq!(values(&model, "Dense_0.bias"), [1.0; 4]);
}
