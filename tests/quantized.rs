//! Quantized weights in ONNX's QDQ form (`tests/data/onnx/qdq_linear.onnx`, written by
//! `make_qdq.py`): statistics, heatmaps and hover values are of the reals the integers stand for,
//! as onnx's reference evaluator computes them (printed by the script); and one inside an `If`
//! branch (`qdq_if.onnx`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

mod common;

use std::path::PathBuf;

use modelmap::stats::heatmap::{HeatmapView, value_at};

fn model() -> modelmap::model::Model {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx/qdq_linear.onnx");
    modelmap::load::open(&path).unwrap()
}

#[test]
fn dequantize_linear_weights_read_as_their_real_values() {
    let m = model();
    // w1: int8 per column (axis 1); w2: uint8, one scale and zero point 128.
    for (name, min, max, mean, std) in [
        ("w1_q", -18.9, 30.3, 1.3, 13.919_231),
        ("w2_q", -15.0, 60.5, 31.333_334, 24.080_883),
    ] {
        let t = m.tensor(name).unwrap();
        assert!(
            t.quant.is_some(),
            "{name}: its DequantizeLinear gives it scales"
        );
        let s = modelmap::stats::tensor_stats(t).unwrap();
        common::assert_summary(name, &s, [min, max, mean, std], 1e-5, 1.0);
    }
    // Hover: w1[1][2] = -63 in the column of scale 0.3; w2[2][0] = 98 → (98 - 128) · 0.5.
    let w1 = m.tensor("w1_q").unwrap();
    let v = value_at(w1, &HeatmapView::for_tensor(w1), 1, 2).unwrap();
    assert!((v + 18.9).abs() < 1e-5, "{v}");
    let w2 = m.tensor("w2_q").unwrap();
    assert_eq!(
        value_at(w2, &HeatmapView::for_tensor(w2), 2, 0).unwrap(),
        -15.0
    );
    // The scales and zero points themselves stay plain numbers.
    assert!(m.tensor("w1_scale").unwrap().quant.is_none());
}

/// `modelmap stats --json` names a quantized tensor's quantization; the table marks its dtype.
#[test]
fn stats_report_names_the_quantization() {
    let m = model();
    let mut args = modelmap::stats::cli::StatsArgs {
        json: true,
        no_cache: true,
        ..Default::default()
    };
    let out = modelmap::stats::cli::run(&m, &args).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entry = |name: &str| {
        doc["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(entry("w2_q")["quantization"], "scale 0.5, zero point 128");
    assert_eq!(
        entry("w1_q")["quantization"],
        "per channel along dim 1: 3 scales, 0.1 to 0.3"
    );
    assert!(entry("w1_scale").get("quantization").is_none());
    args.json = false;
    let table = modelmap::stats::cli::run(&m, &args).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("w2_q") && l.contains("U8·q")),
        "{table}"
    );
}

/// A QDQ weight inside an `If` branch (`qdq_if.onnx`, `make_qdq_if.py`): the branch's int8
/// initializer, scaled per column by the main graph's initializer, reads as the reals onnx's
/// reference evaluator gives; the other branch's float weight is untouched.
#[test]
fn a_dequantize_linear_inside_a_subgraph_scales_its_weight() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx/qdq_if.onnx");
    let m = modelmap::load::open(&path).unwrap();
    let t = m.tensor("wt_q").unwrap();
    assert!(
        t.quant.is_some(),
        "the branch's DequantizeLinear gives it scales"
    );
    let s = modelmap::stats::tensor_stats(t).unwrap();
    common::assert_summary(
        "wt_q",
        &s,
        [-90.0, 100.0, 1.666_666_6, 41.629_86],
        1e-5,
        1.0,
    );
    // wt[3][1] = -33 in the column of scale 0.5.
    let v = value_at(t, &HeatmapView::for_tensor(t), 3, 1).unwrap();
    assert!((v + 16.5).abs() < 1e-6, "{v}");
    assert!(m.tensor("we").unwrap().quant.is_none());
}

/// 4-bit weights (`tests/data/onnx/int4.onnx`, `make_int4.py`): INT4 in `int32_data` and UINT4 in
/// `raw_data`, two to a byte, read as onnx reads them, and their DequantizeLinear applied as
/// onnx's reference evaluator runs it.
#[test]
fn int4_weights_read_as_onnx_reads_them() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx");
    let m = modelmap::load::open(&dir.join("int4.onnx")).unwrap();
    let text = std::fs::read_to_string(dir.join("int4_facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (name, f) in facts["tensors"].as_object().unwrap() {
        let t = m.tensor(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(t.dtype.onnx_name(), f["dtype"].as_str().unwrap(), "{name}");
        assert_eq!(t.shape, common::json_dims(&f["shape"]), "{name}");
        let elem = modelmap::stats::decode::Elem::of(t.dtype).unwrap();
        let q = t
            .quant
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no quantization"));
        let bytes = t.bytes().unwrap();
        let ints = f["ints"].as_array().unwrap();
        let real = f["real"].as_array().unwrap();
        for (i, (v, r)) in ints.iter().zip(real).enumerate() {
            let got = elem.value_at(bytes, i as u64).unwrap();
            assert_eq!(got, v.as_f64().unwrap(), "{name}[{i}]");
            let mut x = [got];
            q.apply(i as u64, &mut x);
            assert_eq!(x[0] as f32, r.as_f64().unwrap() as f32, "{name}[{i}] real");
        }
        let s = modelmap::stats::tensor_stats(t).unwrap();
        let mean = real.iter().map(|r| r.as_f64().unwrap()).sum::<f64>() / real.len() as f64;
        assert!((s.mean.unwrap() - mean).abs() < 1e-6, "{name}: mean");
    }
}

/// onnxruntime's 4-bit `MatMulNBits` weights (`tests/data/onnx/nbits_*.onnx`, `make_nbits.py`):
/// the packed `[N, blocks, bytes]` initializer read as U4 `[N, K]`, and its values, with per-block
/// scales and packed zero points (or the default 8), as onnxruntime itself dequantizes them.
#[test]
fn matmul_nbits_weights_read_as_onnxruntime_dequantizes_them() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx");
    let text = std::fs::read_to_string(dir.join("nbits_facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (file, weights) in facts["files"].as_object().unwrap() {
        let m = modelmap::load::open(&dir.join(file)).unwrap();
        for (name, f) in weights.as_object().unwrap() {
            let ctx = format!("{file}: {name}");
            let t = m.tensor(name).unwrap_or_else(|| panic!("{ctx}"));
            assert_eq!(t.dtype, modelmap::model::DType::U4, "{ctx}");
            assert_eq!(t.shape, common::json_dims(&f["shape"]), "{ctx}");
            let q = t
                .quant
                .as_ref()
                .unwrap_or_else(|| panic!("{ctx}: not dequantized"));
            let s = modelmap::stats::tensor_stats(t).unwrap();
            let want = f["mean"].as_f64().unwrap();
            assert!(
                (s.mean.unwrap() - want).abs() < 1e-7,
                "{ctx}: mean {:?} vs {want}",
                s.mean
            );
            let elem = modelmap::stats::decode::Elem::of(t.dtype).unwrap();
            for (i, v) in f["first"].as_array().unwrap().iter().enumerate() {
                let mut r = [elem.value_at(t.bytes().unwrap(), i as u64).unwrap()];
                q.apply(i as u64, &mut r);
                assert_eq!(r[0] as f32, v.as_f64().unwrap() as f32, "{ctx}[{i}]");
            }
        }
        // The neuron view reads the two layers as 96 → 64 → 40.
        let chains = modelmap::stats::neurons::find_dense_chains(&m);
        assert_eq!(chains[0].sizes(), vec![96, 64, 40], "{file}");
    }
}

/// OCP microscaling types (`tests/data/onnx/fp4.onnx`, `make_fp4.py`): FLOAT4E2M1 typed (packed
/// into `int32_data`) and raw, FLOAT8E8M0 raw, every value as onnx's `numpy_helper` reads it
/// (the sign of −0 included).
#[test]
fn fp4_and_e8m0_initializers_read_as_onnx_reads_them() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx");
    let m = modelmap::load::open(&dir.join("fp4.onnx")).unwrap();
    let text = std::fs::read_to_string(dir.join("fp4_facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensors = facts["tensors"].as_object().unwrap();
    assert_eq!(tensors.len(), 3);
    for (name, f) in tensors {
        let t = m.tensor(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(t.dtype.onnx_name(), f["dtype"].as_str().unwrap(), "{name}");
        assert_eq!(t.shape, common::json_dims(&f["shape"]), "{name}");
        let elem = modelmap::stats::decode::Elem::of(t.dtype).unwrap();
        let bytes = t.bytes().unwrap();
        for (i, v) in f["values"].as_array().unwrap().iter().enumerate() {
            let (got, want) = (elem.value_at(bytes, i as u64).unwrap(), v.as_f64().unwrap());
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{name}[{i}]: {got} vs {want}"
            );
        }
        let s = modelmap::stats::tensor_stats(t).unwrap();
        assert_eq!(s.count, t.elements(), "{name}");
    }
}
