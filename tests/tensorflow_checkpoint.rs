//! TensorFlow checkpoints opened on their own (`model.ckpt-3.index` and its data shard), written
//! by TensorFlow 2.21 and checked against what its own reader (`tf.train.load_checkpoint`) gives
//! (`tests/data/tensorflow/ckpt/facts.json`, written with them by `make_ckpt.py`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::{Path, PathBuf};

use modelmap::model::{DType, Format, Model, Tensor, TensorData, TensorOrigin};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tensorflow/ckpt")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(path: &Path) -> Model {
    modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The tensors read from the checkpoint (not the constants of a TF1 graph drawn beside it).
fn entries(model: &Model) -> Vec<&Tensor> {
    model
        .tensors
        .iter()
        .filter(|t| t.origin == TensorOrigin::Checkpoint)
        .collect()
}

#[test]
fn every_variable_matches_what_tensorflow_reads() {
    let facts = facts();
    for (folder, f) in facts.as_object().unwrap() {
        let model = open(&data_dir().join(folder));
        let ctx = folder.as_str();
        assert_eq!(model.format, Format::TensorFlow, "{ctx}");
        assert_eq!(model.metadata.shards, 1, "{ctx}");
        let tensors = f["tensors"].as_object().unwrap();
        let name = |key: &str| {
            key.trim_end_matches("/.ATTRIBUTES/VARIABLE_VALUE")
                .to_string()
        };
        let mut want: Vec<String> = tensors.keys().map(|k| name(k)).collect();
        let mut got: Vec<String> = entries(&model).iter().map(|t| t.name.clone()).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{ctx}: names");
        for (key, fact) in tensors {
            let t = model.tensor(&name(key)).unwrap();
            let dtype = match t.dtype {
                DType::F32 => "float32",
                DType::I64 => "int64",
                other => panic!("{ctx}: {key}: {other:?}"),
            };
            assert_eq!(dtype, fact["dtype"].as_str().unwrap(), "{ctx}: {key}");
            assert_eq!(t.shape, common::json_dims(&fact["shape"]), "{ctx}: {key}");
            let TensorData::Bytes(b) = &t.data else {
                panic!("{ctx}: {key}: {:?}", t.data)
            };
            let values: Vec<f64> = match t.dtype {
                DType::F32 => common::le_f32s(b),
                _ => b
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
            };
            for (i, w) in fact["first"].as_array().unwrap().iter().enumerate() {
                let w = w.as_f64().unwrap();
                assert!(
                    (values[i] - w).abs() <= 1e-15 * w.abs(),
                    "{ctx}: {key}[{i}]"
                );
            }
            let s = modelmap::stats::tensor_stats(t).unwrap();
            let (ours, theirs) = (s.mean.unwrap(), fact["mean"].as_f64().unwrap());
            assert!(
                (ours - theirs).abs() <= 1e-9 * (1.0 + theirs.abs()),
                "{ctx}: {key}: mean {ours} vs {theirs}"
            );
        }
    }
}

#[test]
fn the_checkpoint_opens_from_its_folder_and_from_each_of_its_files() {
    let dir = data_dir().join("tf1");
    let index = dir.join("model.ckpt-3.index");
    for path in [
        dir.clone(),
        index.clone(),
        dir.join("model.ckpt-3.data-00000-of-00001"),
        dir.join("model.ckpt-3.meta"),
    ] {
        let model = open(&path);
        assert_eq!(model.source, index, "{}", path.display());
        assert_eq!(entries(&model).len(), 66);
    }
    // The step counters are metadata too.
    let tf1 = open(&dir);
    assert_eq!(common::property(&tf1, "checkpoint.global_step"), Some("3"));
    assert!(
        tf1.metadata.warnings.is_empty(),
        "{:?}",
        tf1.metadata.warnings
    );
    let tf2 = open(&data_dir().join("tf2"));
    assert_eq!(common::property(&tf2, "checkpoint.save_counter"), Some("1"));
    assert_eq!(
        common::property(&tf2, "checkpoint.optimizer/_iterations"),
        Some("1")
    );
    assert!(
        tf2.metadata.warnings.is_empty(),
        "{:?}",
        tf2.metadata.warnings
    );
    // A folder without its `checkpoint` file (as Google's BERT releases ship): its one index.
    let tmp = tempfile::tempdir().unwrap();
    for name in ["ckpt-1.index", "ckpt-1.data-00000-of-00001"] {
        std::fs::copy(data_dir().join("tf2").join(name), tmp.path().join(name)).unwrap();
    }
    let moved = open(tmp.path());
    assert_eq!(moved.source, tmp.path().join("ckpt-1.index"));
    assert_eq!(moved.tensors.len(), 15);
}

#[test]
fn a_tf1_checkpoint_draws_the_forward_ops_of_its_meta_graph() {
    let model = open(&data_dir().join("tf1"));
    assert_eq!(
        model.metadata.producer.as_deref(),
        Some("TensorFlow (TF1 checkpoint and training graph)")
    );
    // The forward graph only: the loss is its output; no gradient, optimizer or saver op.
    let outputs: Vec<&str> = model
        .graph
        .nodes
        .iter()
        .filter(|n| n.kind == modelmap::model::NodeKind::Output)
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(outputs, ["Mean"]);
    assert!(model.graph.nodes.iter().all(|n| {
        !n.name.starts_with("gradients/")
            && !n.name.starts_with("save/")
            && !n.name.contains("Adam")
    }));
    // Each dense layer's MatMul owns its kernel, read from the checkpoint.
    let kernel = "bert/encoder/layer_1/intermediate/dense/kernel";
    let id = model.tensor_index[kernel];
    let owner = model
        .graph
        .nodes
        .iter()
        .find(|n| n.tensors.contains(&id))
        .unwrap_or_else(|| panic!("no op reads {kernel}"));
    assert_eq!(owner.op.to_string(), "MatMul");
    assert!(
        owner.name.starts_with("bert/encoder/layer_1/intermediate/"),
        "{}",
        owner.name
    );
    assert!(model.tensors[id as usize].bytes().is_some());
    // Layer 0's output reaches layer 1.
    let ids = |prefix: &str| -> Vec<u32> {
        (0..model.graph.nodes.len() as u32)
            .filter(|&i| model.graph.nodes[i as usize].name.starts_with(prefix))
            .collect()
    };
    let (l0, l1) = (ids("bert/encoder/layer_0/"), ids("bert/encoder/layer_1/"));
    assert!(
        model
            .graph
            .edges
            .iter()
            .any(|e| l0.contains(&e.from) && l1.contains(&e.to))
    );
}

#[test]
fn a_tf1_bert_reads_as_its_encoder_with_adam_slots_beside_their_weights() {
    // Without its .meta graph, the checkpoint's weights are grouped by their names.
    let tmp = common::copy_folder(&data_dir().join("tf1"));
    std::fs::remove_file(tmp.path().join("model.ckpt-3.meta")).unwrap();
    let model = open(tmp.path());
    let node = |name: &str| {
        model
            .graph
            .nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    };
    // Adam's slots sit in the module of the weight they belong to.
    let query = &model.graph.nodes[node("bert/encoder/layer_0/attention/self/query")];
    let names: Vec<&str> = query
        .tensors
        .iter()
        .map(|&t| model.tensors[t as usize].name.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["bias", "Adam", "Adam_1", "kernel", "Adam", "Adam_1"]
    );
    // Layer 0's output feeds layer 1's attention: BERT's order, found through `layer_N`.
    let out0 = node("bert/encoder/layer_0/output/dense") as u32;
    for qkv in ["query", "key"] {
        let to = node(&format!("bert/encoder/layer_1/attention/self/{qkv}")) as u32;
        assert!(
            model
                .graph
                .edges
                .iter()
                .any(|e| e.from == out0 && e.to == to),
            "layer_0 output → layer_1 {qkv}"
        );
    }
    let embeddings = node("bert/embeddings") as u32;
    assert!(model.graph.edges.iter().any(|e| e.from == embeddings));
}

#[test]
fn damaged_checkpoints_are_errors_that_name_the_file() {
    let tmp = common::copy_folder(&data_dir().join("tf1"));
    // A damaged .meta graph: the weights are shown as a checkpoint's, with a warning naming it.
    let meta = tmp.path().join("model.ckpt-3.meta");
    let whole = std::fs::read(&meta).unwrap();
    common::cut_in_half(&meta);
    let model = open(tmp.path());
    assert_eq!(entries(&model).len(), 66);
    assert!(
        model
            .metadata
            .warnings
            .iter()
            .any(|w| w.contains("model.ckpt-3.meta") && w.contains("not drawn")),
        "{:?}",
        model.metadata.warnings
    );
    std::fs::write(&meta, whole).unwrap();
    // A truncated data shard: the variables past its end are errors naming it.
    let shard = tmp.path().join("model.ckpt-3.data-00000-of-00001");
    common::cut_in_half(&shard);
    let model = open(tmp.path());
    let broken: Vec<&str> = model
        .tensors
        .iter()
        .filter_map(|t| match &t.data {
            TensorData::Error(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    assert!(!broken.is_empty() && broken.len() < model.tensors.len());
    assert!(
        broken.iter().all(|e| e.contains("run past its shard")),
        "{broken:?}"
    );
    // A missing shard.
    std::fs::remove_file(&shard).unwrap();
    let model = open(tmp.path());
    assert!(entries(&model).iter().all(|t| matches!(&t.data,
        TensorData::Error(e) if e.contains("data-00000-of-00001"))));
    // A truncated index is no longer a checkpoint's; opened by name it is an error naming it.
    let index = tmp.path().join("model.ckpt-3.index");
    let text = std::fs::read(&index).unwrap();
    std::fs::write(&index, &text[..text.len() - 20]).unwrap();
    let e = modelmap::load::open(&index).unwrap_err().to_string();
    assert!(e.contains("model.ckpt-3.index"), "{e}");
    // An index whose blocks are cut short, its footer whole.
    let mut cut = text[..100].to_vec();
    cut.extend_from_slice(&text[text.len() - 48..]);
    std::fs::write(&index, &cut).unwrap();
    let e = modelmap::load::open(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("model.ckpt-3.index"), "{e}");
}
