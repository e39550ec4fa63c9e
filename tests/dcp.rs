//! PyTorch distributed checkpoints (`torch.distributed.checkpoint`) written by real PyTorch,
//! checked against what DCP's own reader gives back for them (`tests/data/dcp/facts.json`,
//! written with the folders by `tests/data/dcp/make_dcp.py`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::{Path, PathBuf};

use modelmap::model::{DType, Format, Model, Tensor, TensorData};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dcp")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(path: &Path) -> Model {
    modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bytes(t: &Tensor) -> &[u8] {
    match &t.data {
        TensorData::Bytes(b) => b,
        other => panic!("{}: {other:?}", t.name),
    }
}

/// The tensor's values in row-major order (the fixtures hold f32 and bf16).
fn values(t: &Tensor) -> Vec<f64> {
    let b = bytes(t);
    match t.dtype {
        DType::F32 => common::le_f32s(b),
        DType::BF16 => b
            .chunks_exact(2)
            .map(|c| {
                f64::from(f32::from_bits(
                    u32::from(u16::from_le_bytes([c[0], c[1]])) << 16,
                ))
            })
            .collect(),
        other => panic!("{}: {other:?}", t.name),
    }
}

/// The name modelmap gives a state-dict key: the model's weights, saved under `model`, without it.
fn our_name(fqn: &str) -> &str {
    fqn.strip_prefix("model.").unwrap_or(fqn)
}

#[test]
fn every_tensor_matches_what_dcp_reads_back() {
    let facts = facts();
    let folders = facts.as_object().unwrap();
    assert_eq!(folders.len(), 3);
    for (folder, f) in folders {
        let model = open(&data_dir().join(folder));
        assert_eq!(model.format, Format::Torch, "{folder}");
        assert_eq!(
            model.metadata.producer.as_deref(),
            Some("pytorch (torch.distributed.checkpoint)")
        );
        let files = common::json_strings(&f["files"]);
        assert_eq!(
            model.metadata.shards,
            files.len() - 1,
            "{folder}: chunk files"
        );
        let tensors = f["tensors"].as_object().unwrap();
        let mut want: Vec<&str> = tensors.keys().map(|k| our_name(k)).collect();
        let mut got: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "{folder}: tensor names");
        for (fqn, fact) in tensors {
            let t = model.tensor(our_name(fqn)).unwrap();
            let ctx = format!("{folder}: {fqn}");
            let dtype = match t.dtype {
                DType::F32 => "float32",
                DType::BF16 => "bfloat16",
                other => panic!("{ctx}: {other:?}"),
            };
            assert_eq!(dtype, fact["dtype"].as_str().unwrap(), "{ctx}: dtype");
            assert_eq!(t.shape, common::json_dims(&fact["shape"]), "{ctx}: shape");
            let v = values(t);
            for (i, w) in fact["first"].as_array().unwrap().iter().enumerate() {
                // serde_json's parse of Python's shortest repr may differ in the last bit.
                let w = w.as_f64().unwrap();
                assert!(
                    (v[i] - w).abs() <= 1e-15 * w.abs(),
                    "{ctx}: value {i}: {} vs {w}",
                    v[i]
                );
            }
            let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let (ours, theirs) = (s.mean.unwrap(), fact["mean"].as_f64().unwrap());
            assert!(
                (ours - theirs).abs() <= 1e-9 * (1.0 + theirs.abs()),
                "{ctx}: mean {ours} vs {theirs}"
            );
        }
        for (key, value) in f["items"].as_object().unwrap() {
            let ours: f64 = common::property(&model, &format!("checkpoint.{key}"))
                .unwrap_or_else(|| panic!("{folder}: no checkpoint.{key}"))
                .parse()
                .unwrap();
            assert_eq!(ours, value.as_f64().unwrap(), "{folder}: {key}");
        }
        assert!(
            model.metadata.warnings.is_empty(),
            "{:?}",
            model.metadata.warnings
        );
    }
}

#[test]
fn one_chunk_is_a_slice_of_the_map_and_shards_are_assembled() {
    let single = open(&data_dir().join("single"));
    let sharded = open(&data_dir().join("sharded"));
    let name = "model.layers.0.self_attn.q_proj.weight";
    // Saved whole by one process: borrowed from the mapped chunk file.
    assert!(modelmap::load::is_file_mapped(bytes(
        single.tensor(name).unwrap()
    )));
    // Split by FSDP's rows (and the optimizer's state with it) or by columns: assembled.
    for name in [
        name,
        "optim.state.model.embed_tokens.weight.exp_avg",
        "extra.col",
    ] {
        assert!(
            !modelmap::load::is_file_mapped(bytes(sharded.tensor(name).unwrap())),
            "{name}"
        );
    }
    // The column-sharded tensor was arange(35) as 5 × 7, split 4 + 3 columns.
    let col = values(sharded.tensor("extra.col").unwrap());
    assert_eq!(col, (0..35).map(f64::from).collect::<Vec<_>>());
    // The optimizer's settings and the training step beside the tensors.
    assert_eq!(
        common::property(&single, "checkpoint.optim.param_groups.0.lr"),
        Some("0.001")
    );
    assert_eq!(
        common::property(&sharded, "checkpoint.optim.param_groups.0.lr"),
        Some("0.001")
    );
    assert_eq!(common::property(&sharded, "dcp.version"), Some("1.0.0"));
}

#[test]
fn the_weights_read_as_the_llama_they_are() {
    // Named without `model.`, the weights follow transformers' LLaMA names, so the checkpoint is
    // drawn as its decoder's dataflow, the same sharded as whole.
    for folder in ["single", "sharded"] {
        let model = open(&data_dir().join(folder));
        let embed = model
            .graph
            .nodes
            .iter()
            .find(|n| n.name == "model.embed_tokens")
            .unwrap_or_else(|| panic!("{folder}: no embedding node"));
        assert_eq!(&*embed.op, "Embedding", "{folder}");
        let q = model
            .graph
            .nodes
            .iter()
            .position(|n| n.name == "model.layers.1.self_attn.q_proj")
            .unwrap();
        assert!(
            model.graph.edges.iter().any(|e| e.to as usize == q),
            "{folder}: nothing flows into layer 1's q_proj"
        );
    }
}

#[test]
fn the_folder_opens_from_its_metadata_or_any_chunk_file() {
    let dir = data_dir().join("sharded");
    for path in [dir.join(".metadata"), dir.join("__1_0.distcp")] {
        let model = open(&path);
        assert_eq!(model.source, dir, "{}", path.display());
        assert_eq!(model.tensors.len(), 86);
    }
}

/// A copy of fixture folder `name` in a temporary folder.
fn copy(name: &str) -> tempfile::TempDir {
    common::copy_folder(&data_dir().join(name))
}

fn error_of(t: &Tensor) -> &str {
    match &t.data {
        TensorData::Error(e) => e,
        other => panic!("{}: {other:?}", t.name),
    }
}

#[test]
fn damaged_checkpoints_are_errors_that_name_the_file() {
    // A truncated rank file: the chunks past its end are errors naming it, the rest still read.
    let tmp = copy("sharded");
    let rank1 = tmp.path().join("__1_0.distcp");
    common::cut_in_half(&rank1);
    let model = open(tmp.path());
    let broken: Vec<&Tensor> = model
        .tensors
        .iter()
        .filter(|t| matches!(t.data, TensorData::Error(_)))
        .collect();
    assert!(!broken.is_empty() && broken.len() < model.tensors.len());
    assert!(broken.iter().all(|t| error_of(t).contains("__1_0.distcp")));

    // A missing rank file.
    std::fs::remove_file(&rank1).unwrap();
    let model = open(tmp.path());
    let t = model.tensor("model.embed_tokens.weight").unwrap();
    assert!(error_of(t).contains("__1_0.distcp"), "{}", error_of(t));

    // A chunk file without its metadata.
    let lone = tempfile::tempdir().unwrap();
    std::fs::copy(
        data_dir().join("sharded/__0_0.distcp"),
        lone.path().join("__0_0.distcp"),
    )
    .unwrap();
    let e = modelmap::load::open(&lone.path().join("__0_0.distcp")).unwrap_err();
    assert!(e.to_string().contains("no .metadata"), "{e}");

    // Metadata that names a file outside its folder (same length, so the pickle stays whole).
    let tmp = copy("single");
    let meta = tmp.path().join(".metadata");
    let text = std::fs::read(&meta).unwrap();
    let from = b"__0_0.distcp";
    let at = text.windows(from.len()).position(|w| w == from).unwrap();
    let mut bad = text.clone();
    bad[at..at + from.len()].copy_from_slice(b"../etc/pass0");
    std::fs::write(&meta, &bad).unwrap();
    let model = open(tmp.path());
    let t = model.tensor("lm_head.weight").unwrap();
    assert!(
        error_of(t).contains("not a file in its folder"),
        "{}",
        error_of(t)
    );

    // Truncated metadata is an error naming it; so is a pickle of something else.
    for cut in [text.len() / 3, 1] {
        std::fs::write(&meta, &text[..cut]).unwrap();
        let e = modelmap::load::open(tmp.path()).unwrap_err().to_string();
        assert!(e.contains(".metadata"), "{e}");
    }
    std::fs::write(&meta, b"\x80\x04K\x07.").unwrap();
    let e = modelmap::load::open(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("not the Metadata"), "{e}");
}

#[test]
fn a_checkpoint_folder_that_keeps_its_run_logs_opens_as_the_checkpoint() {
    // torchtitan and torchtune write TensorBoard logs beside their checkpoints.
    let tmp = copy("single");
    let runs = tmp.path().join("tb/run1");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("events.out.tfevents.1.host"), b"").unwrap();
    assert!(!modelmap::training::looks_like_logs(tmp.path()));
    assert_eq!(open(tmp.path()).tensors.len(), 84);
}
