//! Quantized Hugging Face checkpoints (`tests/data/hfquant`, `make_hfquant.py`): one tiny LLaMA
//! quantized by llm-compressor as compressed-tensors saves it (int4 and int8 packed into words,
//! symmetric and asymmetric; int8 and fp8 weights with per-row and 128 × 128 block scales), and a
//! DeepSeek-V3-style fp8 checkpoint with blocks cut short at the edges. Every quantized weight is
//! read at its real shape and its values are what transformers' compressed-tensors integration
//! (or DeepSeek's `weight_dequant`) computes from the file.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::path::PathBuf;

use modelmap::stats::heatmap::{self, HeatmapView};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hfquant")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn check(checkpoint: &str) {
    let facts = facts();
    let f = &facts[checkpoint];
    let m = modelmap::load::open(&data_dir().join(checkpoint)).unwrap();
    assert_eq!(
        m.tensors.len() as u64,
        f["tensors"].as_u64().unwrap(),
        "{checkpoint}"
    );
    let quantized = f["quantized"].as_object().unwrap();
    assert_eq!(
        m.tensors.iter().filter(|t| t.quant.is_some()).count(),
        quantized.len(),
        "{checkpoint}: {:?}",
        m.metadata.warnings
    );
    for (name, w) in quantized {
        let t = m
            .tensor(name)
            .unwrap_or_else(|| panic!("{checkpoint}: {name}"));
        assert_eq!(t.dtype.name(), w["dtype"].as_str().unwrap(), "{name}");
        assert_eq!(t.shape, common::json_dims(&w["shape"]), "{name}");
        let s = modelmap::stats::tensor_stats(t).unwrap();
        let want = w["mean"].as_f64().unwrap();
        assert!(
            (s.mean.unwrap() - want).abs() < 1e-7,
            "{checkpoint} {name}: mean {:?} vs {want}",
            s.mean
        );
        // Values where groups and blocks begin and end, through the heatmap's reading.
        let view = HeatmapView::for_display(t);
        for sample in w["samples"].as_array().unwrap() {
            let [r, c, v] = sample.as_array().unwrap().as_slice() else {
                panic!("{sample}");
            };
            let (r, c, want) = (
                r.as_u64().unwrap(),
                c.as_u64().unwrap(),
                v.as_f64().unwrap(),
            );
            let got = heatmap::value_at(t, &view, r, c).unwrap();
            assert!(
                (got - want).abs() <= 1e-6 * want.abs() + 1e-9,
                "{checkpoint} {name}[{r}, {c}]: {got} vs {want}"
            );
        }
    }
    assert!(m.metadata.warnings.is_empty(), "{:?}", m.metadata.warnings);
}

#[test]
fn compressed_tensors_int4_packed_weights_read_as_reals() {
    check("w4a16");
}

#[test]
fn compressed_tensors_asymmetric_int4_reads_zero_points_packed_down_the_rows() {
    check("w4a16_asym");
}

#[test]
fn compressed_tensors_int8_packed_weights_read_as_reals() {
    check("w8a16");
}

#[test]
fn int8_weights_with_per_row_scales_read_as_reals() {
    check("w8a8");
}

#[test]
fn fp8_weights_with_per_row_scales_read_as_reals() {
    check("fp8");
}

#[test]
fn fp8_weights_with_block_scales_read_as_reals() {
    check("fp8_block");
}

#[test]
fn deepseek_fp8_blocks_cut_short_at_the_edges_read_as_reals() {
    check("deepseek_fp8");
    // The scale of the last, short block (rows 128..200, columns 256..300) is its own.
    let m = modelmap::load::open(&data_dir().join("deepseek_fp8")).unwrap();
    let t = m
        .tensor("model.layers.0.self_attn.kv_a_proj_with_mqa.weight")
        .unwrap();
    let g = t.quant.as_ref().unwrap().scale_bias().unwrap();
    assert_eq!((g.rows, g.size, g.cols, g.len()), (128, 128, 300, 6));
}

#[test]
fn packed_mlp_weights_chain_in_the_neuron_view() {
    let m = modelmap::load::open(&data_dir().join("w4a16_asym")).unwrap();
    let chains = modelmap::stats::neurons::find_dense_chains(&m);
    let mlp = chains
        .iter()
        .find(|c| c.name == "model.layers.0.mlp")
        .unwrap();
    assert_eq!(mlp.sizes(), vec![128, 256, 128]);
    assert!(!m.graph.edges.is_empty());
}

#[test]
fn a_packed_weight_whose_shape_disagrees_is_shown_as_stored_with_a_warning() {
    // `weight_shape` says 100 columns: 16 words a row cannot hold 100 4-bit values evenly.
    let dir = tempfile::tempdir().unwrap();
    let src = data_dir().join("w4a16");
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let mut bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let name = "model.layers.0.self_attn.q_proj.weight_shape";
    let [start, _] = header[name]["data_offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect::<Vec<_>>()[..]
    else {
        panic!()
    };
    let at = 8 + header_len + start + 8;
    bytes[at..at + 8].copy_from_slice(&100i64.to_le_bytes());
    std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    let m = modelmap::load::open(dir.path()).unwrap();
    let t = m
        .tensor("model.layers.0.self_attn.q_proj.weight_packed")
        .unwrap();
    assert!(t.quant.is_none());
    assert_eq!(t.dtype.name(), "I32");
    assert!(
        m.metadata.warnings.iter().any(|w| w.contains("q_proj")),
        "{:?}",
        m.metadata.warnings
    );
}

mod common;
