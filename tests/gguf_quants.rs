//! GGML block types in a GGUF file (the legacy `Q4_0` … `Q8_0`, the k-quants `Q2_K` … `Q6_K`
//! that llama.cpp's `Q4_K_M` and friends store, `IQ4_NL` / `IQ4_XS`, the ternary `TQ1_0` / `TQ2_0`
//! and `MXFP4`), decoded by modelmap and by gguf-py's reference
//! dequantizer (`tests/data/gguf/make_quants.py` wrote both the file and `quants.json`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::path::PathBuf;

use modelmap::model::TensorData;
use modelmap::stats::decode::Elem;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf")
}

/// gguf-py computes in float32, modelmap in float64: values agree to float32's precision.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 2e-6 * (1e-3 + a.abs().max(b.abs()))
}

#[test]
fn every_block_type_decodes_as_gguf_py_dequantizes_it() {
    let text = std::fs::read_to_string(data_dir().join("quants.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let facts = facts.as_object().unwrap();
    let model = modelmap::load::open(&data_dir().join("quants.gguf")).unwrap();
    assert_eq!(facts.len(), 22);
    for (name, f) in facts {
        let t = model
            .tensor(name)
            .unwrap_or_else(|| panic!("{name}: missing"));
        let ctx = format!("{name} ({})", f["type"].as_str().unwrap());
        assert_eq!(t.dtype.name(), f["type"].as_str().unwrap(), "{ctx}");
        let TensorData::Bytes(bytes) = &t.data else {
            panic!("{ctx}: {:?}", t.data);
        };
        let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(s.count, 1536, "{ctx}");
        for (what, ours, theirs) in [
            ("mean", s.mean.unwrap(), &f["mean"]),
            ("std", s.std.unwrap(), &f["std"]),
            ("min", s.min.unwrap(), &f["min"]),
            ("max", s.max.unwrap(), &f["max"]),
        ] {
            let theirs = theirs.as_f64().unwrap();
            assert!(
                close(ours, theirs),
                "{ctx}: {what} {ours} vs gguf-py {theirs}"
            );
        }
        assert_eq!(s.zeros, f["zeros"].as_u64().unwrap(), "{ctx}: zeros");
        // Single values, across blocks and sub-blocks (the hover readout's path).
        let elem = Elem::of(t.dtype).unwrap();
        for (i, v) in f["values"].as_object().unwrap() {
            let i: u64 = i.parse().unwrap();
            let ours = elem.value_at(bytes, i).unwrap();
            let theirs = v.as_f64().unwrap();
            assert!(
                close(ours, theirs),
                "{ctx}: element {i}: {ours} vs gguf-py {theirs}"
            );
        }
        assert_eq!(elem.value_at(bytes, 1536), None, "{ctx}: past the end");
    }
}

#[test]
fn a_k_quant_tensor_draws_as_a_heatmap_of_its_rows() {
    let model = modelmap::load::open(&data_dir().join("quants.gguf")).unwrap();
    let t = model.tensor("blk.0.q4_k.weight").unwrap();
    let view = modelmap::stats::heatmap::HeatmapView::for_display(t);
    // GGUF lists [512, 3] innermost first: 3 rows of 512.
    assert_eq!((view.rows, view.cols), (3, 512));
    let tile = |tx: u64| {
        modelmap::stats::heatmap::tile(t, &view, 0, tx, 0, modelmap::stats::heatmap::Agg::Mean)
            .unwrap()
    };
    let elem = Elem::of(t.dtype).unwrap();
    let bytes = t.bytes().unwrap();
    // Tiles are 256 texels wide: row 2, column 300 is texel (2, 44) of the second tile, and
    // element 2·512 + 300 of the tensor.
    let (t0, t1) = (tile(0), tile(1));
    assert_eq!(t1.width, 256);
    let want = elem.value_at(bytes, 2 * 512 + 300).unwrap() as f32;
    assert_eq!(t1.values[2 * 256 + 44], want);
    let want = elem.value_at(bytes, 512 + 7).unwrap() as f32;
    assert_eq!(t0.values[256 + 7], want);
}
