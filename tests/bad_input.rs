//! Truncated, corrupt and hostile files give errors that name the file, never a panic or a hang.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::path::{Path, PathBuf};

use modelmap::load::{self, LoadError};

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn expect_err(path: &Path) -> String {
    match load::open(path) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => {
            let msg = e.to_string();
            let name = path.file_name().unwrap().to_string_lossy();
            assert!(msg.contains(&*name), "error does not name the file: {msg}");
            msg
        }
    }
}

fn safetensors_bytes(header: &str, data_len: usize) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend(std::iter::repeat_n(0u8, data_len));
    v
}

#[test]
fn every_truncation_of_an_onnx_file_is_an_error_or_a_smaller_model() {
    let bytes = std::fs::read(demo_dir().join("demo_decoder.onnx")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut errors = 0;
    // 257 cut points spread over the file, plus the first bytes.
    let cuts: Vec<usize> = (1..64)
        .chain((0..=256).map(|i| i * (bytes.len() - 1) / 256))
        .collect();
    for cut in cuts {
        let p = write(tmp.path(), "cut.onnx", &bytes[..cut]);
        match load::open(&p) {
            Err(e) => {
                errors += 1;
                assert!(e.to_string().contains("cut.onnx"), "{e}");
            }
            // Protobuf has no length prefix: a cut exactly between two fields is a valid smaller message.
            Ok(m) => assert!(m.graph.nodes.len() <= 200),
        }
    }
    assert!(
        errors > 200,
        "only {errors} truncations were reported as errors"
    );
}

#[test]
fn every_truncation_of_a_safetensors_file_is_an_error() {
    let bytes = std::fs::read(demo_dir().join("demo/model.safetensors")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..200 {
        let cut = 1 + i * (bytes.len() - 2) / 199;
        let p = write(tmp.path(), "cut.safetensors", &bytes[..cut]);
        expect_err(&p);
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let files = [
        demo_dir().join("demo_decoder.onnx"),
        demo_dir().join("demo/model.safetensors"),
        data.join("flax/chunked.msgpack"),
        data.join("openvino/tiny_gpt_int4.xml"),
        data.join("coreml/cnn_nn.mlmodel"),
        data.join("coreml/mlp_int8.mlpackage/Data/com.apple.CoreML/model.mlmodel"),
        data.join("coreml/mlp_lut4.mlpackage/Data/com.apple.CoreML/model.mlmodel"),
        // Quantized weights are read with their scales without a config too.
        data.join("hfquant/w4a16_asym/model.safetensors"),
        data.join("hfquant/deepseek_fp8/model.safetensors"),
        data.join("hfquant/gptq_act_order/model.safetensors"),
        data.join("hfquant/awq/model.safetensors"),
        data.join("hfquant/bnb_nf4/model.safetensors"),
    ];
    let mut rng = modelmap::bench::synth_model::SplitMix(42);
    for f in files {
        let orig = std::fs::read(&f).unwrap();
        let ext = f.extension().unwrap().to_string_lossy().to_string();
        for _ in 0..150 {
            let mut b = orig.clone();
            // Corrupt the first KiB more often: that is where headers and tags are.
            for _ in 0..1 + rng.next_u64() % 8 {
                let span = if rng.next_u64().is_multiple_of(2) {
                    1024.min(b.len())
                } else {
                    b.len()
                };
                let at = (rng.next_u64() % span as u64) as usize;
                b[at] = rng.next_u64() as u8;
            }
            let p = write(tmp.path(), &format!("flip.{ext}"), &b);
            // Ok or Err, but no panic, hang or huge allocation, nor in the statistics.
            if let Ok(m) = load::open(&p) {
                for t in &m.tensors {
                    let _ = modelmap::stats::tensor_stats(t);
                }
            }
        }
    }
}

#[test]
fn wrong_magic_and_empty_files_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = expect_err(&write(tmp.path(), "empty.onnx", b""));
    assert!(msg.contains("empty"), "{msg}");
    let msg = expect_err(&write(
        tmp.path(),
        "noise.bin",
        &[0xff, 0xfe, 0x00, 0x13, 0x37, 0x42, 0x00, 0x01],
    ));
    assert!(msg.contains("not a model"), "{msg}");
    expect_err(&write(tmp.path(), "bad.json", b"{ this is not json"));
    let msg = expect_err(&write(tmp.path(), "other.json", b"{\"hello\": 1}"));
    assert!(msg.contains("layers"), "{msg}");
}

#[test]
fn safetensors_header_longer_than_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut b = safetensors_bytes(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    b[..8].copy_from_slice(&(1_000_000u64).to_le_bytes());
    let msg = expect_err(&write(tmp.path(), "long_header.safetensors", &b));
    assert!(msg.contains("header"), "{msg}");
}

#[test]
fn safetensors_out_of_bounds_and_overlapping_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let oob = safetensors_bytes(
        r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}  "#,
        8,
    );
    expect_err(&write(tmp.path(), "oob.safetensors", &oob));
    let overlap = safetensors_bytes(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}      "#,
        12,
    );
    expect_err(&write(tmp.path(), "overlap.safetensors", &overlap));
    let overflow = safetensors_bytes(
        r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#,
        8,
    );
    expect_err(&write(tmp.path(), "overflow.safetensors", &overflow));
}

#[test]
fn missing_shard_named_by_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let good = safetensors_bytes(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    write(tmp.path(), "model-00001-of-00002.safetensors", &good);
    let index = r#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#;
    let p = write(tmp.path(), "model.safetensors.index.json", index.as_bytes());
    let msg = expect_err(&p);
    assert!(
        msg.contains("model-00002-of-00002.safetensors") && msg.contains("missing"),
        "{msg}"
    );
    // Opening the folder says the same.
    let err = load::open(tmp.path()).err().unwrap();
    assert!(matches!(err, LoadError::Corrupt { .. }), "{err}");
}

#[test]
fn index_pointing_outside_the_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "model.safetensors.index.json",
        br#"{"weight_map":{"a":"../../etc/passwd"}}"#,
    );
    let msg = expect_err(&p);
    assert!(msg.contains("outside"), "{msg}");
}

#[test]
fn onnx_missing_external_data_names_the_data_file() {
    use modelmap::load::onnx_proto as p;
    use prost::Message as _;
    let tmp = tempfile::tempdir().unwrap();
    let ext = |k: &str, v: &str| p::StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    };
    let model = p::ModelProto {
        ir_version: 8,
        graph: Some(p::GraphProto {
            name: "g".into(),
            initializer: vec![
                p::TensorProto {
                    name: "w".into(),
                    dims: vec![4, 4],
                    data_type: 1,
                    data_location: p::DATA_LOCATION_EXTERNAL,
                    external_data: vec![
                        ext("location", "weights.bin"),
                        ext("offset", "0"),
                        ext("length", "64"),
                    ],
                    ..Default::default()
                },
                p::TensorProto {
                    name: "huge".into(),
                    dims: vec![1 << 40, 1 << 40],
                    data_type: 1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = write(tmp.path(), "ext.onnx", &model.encode_to_vec());
    let m = load::open(&path).unwrap();
    let w = m.tensor("w").unwrap();
    match &w.data {
        modelmap::model::TensorData::Error(e) => {
            assert!(e.contains("weights.bin") && e.contains("ext.onnx"), "{e}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(
        m.metadata
            .warnings
            .iter()
            .any(|w| w.contains("weights.bin"))
    );
    // Now present but too short: the offsets are checked against the data file.
    write(tmp.path(), "weights.bin", &[0u8; 32]);
    let m = load::open(&path).unwrap();
    let modelmap::model::TensorData::Error(e) = &m.tensor("w").unwrap().data else {
        panic!("short file accepted")
    };
    assert!(e.contains("beyond"), "{e}");
    // Overflowing dims are an error for that tensor only.
    let huge = m.tensor("huge").unwrap();
    assert!(huge.expected_bytes().is_none());
}

#[test]
fn gguf_truncations_and_hostile_counts() {
    let tmp = tempfile::tempdir().unwrap();
    // A small valid GGUF: one KV, one F32 tensor of 4 elements.
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes()); // tensors
    b.extend_from_slice(&1u64.to_le_bytes()); // kvs
    let key = b"general.architecture";
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key);
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&5u64.to_le_bytes());
    b.extend_from_slice(b"llama");
    let name = b"w";
    b.extend_from_slice(&(name.len() as u64).to_le_bytes());
    b.extend_from_slice(name);
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&4u64.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    while !b.len().is_multiple_of(32) {
        b.push(0);
    }
    b.extend_from_slice(&[0u8; 16]);
    let ok = write(tmp.path(), "ok.gguf", &b);
    let m = load::open(&ok).unwrap();
    assert_eq!(m.parameter_count(), 4);
    for cut in 4..b.len() - 1 {
        expect_err(&write(tmp.path(), "cut.gguf", &b[..cut]));
    }
    let mut hostile = b.clone();
    hostile[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let msg = expect_err(&write(tmp.path(), "hostile.gguf", &hostile));
    assert!(msg.contains("cannot fit"), "{msg}");
    // A dim whose elements fit in u64 but whose bytes do not (found by fuzzing: the parameter
    // sums overflowed): an error, not a tensor.
    let mut huge = b.clone();
    let dims_at = 24 + 8 + key.len() + 4 + 8 + 5 + 8 + name.len() + 4;
    huge[dims_at..dims_at + 8].copy_from_slice(&(u64::MAX - 70).to_le_bytes());
    let msg = expect_err(&write(tmp.path(), "huge.gguf", &huge));
    assert!(msg.contains("larger than the file could hold"), "{msg}");
}

/// A cancelled load stops: before decoding, after decoding, and inside the conversion of a large
/// graph (every 4096 nodes), with an error naming the file; an uncancelled one is unaffected.
#[test]
fn a_cancelled_onnx_load_stops_at_its_next_checkpoint() {
    use std::cell::Cell;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("decoder.onnx");
    // 70 layers of ~68 nodes: past the first in-conversion checkpoint.
    let (nodes, _) = modelmap::bench::synth_model::write_onnx_decoder(70, 64, &path).unwrap();
    assert!(nodes > 4096, "{nodes} nodes");
    // Never cancelled: the same model as `open`, and the flag was polled at each stage.
    let polls = Cell::new(0);
    let m = load::open_with(&path, &|| {
        polls.set(polls.get() + 1);
        false
    })
    .unwrap();
    assert_eq!(
        m.graph.nodes.len(),
        load::open(&path).unwrap().graph.nodes.len()
    );
    let total = polls.get();
    assert!(total >= 4, "polled {total} times");
    // Cancelled at each successive poll: every one stops the load.
    for at in 1..=total {
        let n = Cell::new(0);
        let r = load::open_with(&path, &|| {
            n.set(n.get() + 1);
            n.get() >= at
        });
        match r {
            Err(e @ LoadError::Cancelled { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("decoder.onnx") && msg.contains("cancelled"),
                    "{msg}"
                );
            }
            other => panic!(
                "cancel at poll {at}: {:?}",
                other.map(|m| m.graph.nodes.len())
            ),
        }
        assert_eq!(
            n.get(),
            at,
            "the load went on polling after it was cancelled"
        );
    }
}
