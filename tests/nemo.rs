//! NVIDIA NeMo archives (`.nemo`) laid out as NeMo's SaveRestoreConnector writes them (a tar, or
//! before NeMo 1.7 a gzip of one, of `model_config.yaml`, `model_weights.ckpt` and artifacts),
//! checked against what torch reads from the weights inside (`tests/data/nemo/facts.json`, written
//! with the archives by `tests/data/nemo/make_nemo.py`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::{Path, PathBuf};

use modelmap::model::{Format, Model};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/nemo")
}

fn open(path: &Path) -> Model {
    modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_weight_matches_what_torch_reads() {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = facts.as_object().unwrap();
    assert_eq!(files.len(), 3);
    for (file, tensors) in files {
        let model = open(&data_dir().join(file));
        assert_eq!(model.format, Format::Nemo, "{file}");
        assert_eq!(model.metadata.producer.as_deref(), Some("NVIDIA NeMo"));
        let tensors = tensors.as_object().unwrap();
        assert_eq!(model.tensors.len(), tensors.len(), "{file}");
        for (name, f) in tensors {
            let t = &model.tensors[model.tensor_index[name.as_str()] as usize];
            assert_eq!(t.shape, common::json_dims(&f["shape"]), "{file}: {name}");
            let want_dtype = match f["dtype"].as_str().unwrap() {
                "float32" => "F32",
                "int64" => "I64",
                other => panic!("{other}"),
            };
            assert_eq!(format!("{:?}", t.dtype), want_dtype, "{file}: {name}");
            let v = t.small_numbers().unwrap();
            for (a, b) in v.iter().zip(f["first"].as_array().unwrap()) {
                let b = b.as_f64().unwrap();
                assert!(
                    (a - b).abs() <= 1e-15 * b.abs().max(1.0),
                    "{file}: {name}: {a} against {b}"
                );
            }
            let mean = if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            };
            let want = f["mean"].as_f64().unwrap();
            assert!(
                (mean - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{file}: {name}"
            );
            // Tensors put back together from model-parallel ranks: every value in its place.
            if let Some(want) = f["index_weighted_sum"].as_f64() {
                let got: f64 = v.iter().enumerate().map(|(i, x)| i as f64 * x).sum();
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "{file}: {name}: Σ i·v[i] {got} against {want}"
                );
            }
        }
    }
}

#[test]
fn config_artifacts_and_variants() {
    let model = open(&data_dir().join("conformer.nemo"));
    assert_eq!(
        common::property(&model, "nemo.target"),
        Some("nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE")
    );
    assert_eq!(
        common::property(&model, "nemo.encoder._target_"),
        Some("nemo.collections.asr.modules.ConformerEncoder")
    );
    assert_eq!(common::property(&model, "nemo.sample_rate"), Some("16000"));
    // The tokenizer's file, its name longer than a tar header holds (a pax record gives it).
    let artifacts = common::property(&model, "nemo.artifacts").unwrap();
    assert!(
        artifacts.ends_with("_vocabulary_of_the_sentencepiece_model.txt"),
        "{artifacts}"
    );
    assert!(artifacts.len() > 100);
    assert!(
        model.metadata.warnings.is_empty(),
        "{:?}",
        model.metadata.warnings
    );

    let gz = open(&data_dir().join("conformer_gz.nemo"));
    assert!(
        gz.metadata.warnings.iter().any(|w| w.contains("gzip")),
        "{:?}",
        gz.metadata.warnings
    );

    // A Megatron GPT saved with tensor parallelism 2: its ranks put back together.
    let tp = open(&data_dir().join("megatron_gpt_tp.nemo"));
    assert_eq!(
        common::property(&tp, "megatron.parallel"),
        Some("tensor 2 × pipeline 1 (2 ranks, put back together)")
    );
    assert_eq!(
        common::property(&tp, "nemo.tensor_model_parallel_size"),
        Some("2")
    );
    assert!(
        tp.metadata.warnings.is_empty(),
        "{:?}",
        tp.metadata.warnings
    );
    assert!(common::edge(
        &tp,
        "model.language_model.encoder.layers.0.mlp.dense_4h_to_h",
        "model.language_model.encoder.layers.1.input_layernorm"
    ));
}

#[test]
fn a_conformer_block_chains_in_its_order() {
    let model = open(&data_dir().join("conformer.nemo"));
    let l = "encoder.layers.0";
    let chain = [
        "norm_feed_forward1",
        "feed_forward1.linear1",
        "feed_forward1.linear2",
        "norm_self_att",
        "self_attn.linear_q",
        "self_attn.linear_out",
        "norm_conv",
        "conv.pointwise_conv1",
        "conv.depthwise_conv",
        "conv.batch_norm",
        "conv.pointwise_conv2",
        "norm_feed_forward2",
        "feed_forward2.linear1",
        "feed_forward2.linear2",
        "norm_out",
    ];
    for w in chain.windows(2) {
        let (a, b) = (format!("{l}.{}", w[0]), format!("{l}.{}", w[1]));
        if a.ends_with("linear_q") {
            assert!(common::edge(&model, &format!("{l}.self_attn.linear_v"), &b));
        }
        assert!(common::edge(&model, &a, &b), "{a} → {b}");
    }
    // The residual around the convolution module, and on into the next block.
    assert!(common::edge(
        &model,
        &format!("{l}.self_attn.linear_out"),
        &format!("{l}.conv.pointwise_conv2")
    ));
    assert!(common::edge(
        &model,
        &format!("{l}.norm_out"),
        "encoder.layers.1.norm_feed_forward1"
    ));
}

#[test]
fn damage_is_an_error_naming_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.nemo");
    let bytes = std::fs::read(data_dir().join("conformer.nemo")).unwrap();
    // A header's byte changed: its checksum no longer matches.
    let mut bad = bytes.clone();
    bad[10] ^= 0x20;
    std::fs::write(&path, &bad).unwrap();
    let e = modelmap::load::open(&path).unwrap_err().to_string();
    assert!(e.contains("m.nemo") && e.contains("checksum"), "{e}");
    // Cut inside the weights.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = modelmap::load::open(&path).unwrap_err().to_string();
    assert!(e.contains("m.nemo") && e.contains("runs past"), "{e}");
    // Not a tar at all.
    std::fs::write(&path, b"model_weights.ckpt is not here").unwrap();
    let e = modelmap::load::open(&path).unwrap_err().to_string();
    assert!(e.contains("m.nemo") && e.contains("tar"), "{e}");
}
