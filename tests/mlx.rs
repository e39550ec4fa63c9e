//! MLX-quantized checkpoints (`tests/data/mlx/q4`, written by MLX's own `mx.quantize`, as
//! `mlx_lm.convert -q` saves them; `make_mlx.py`): each packed U32 weight re-read as 4-bit (or,
//! where the config overrides a module, 8, 2, 3, 5 or 6-bit) integers of its real shape, and its
//! values as `mx.dequantize` computes them.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::path::PathBuf;

use modelmap::model::DType;
use modelmap::stats::decode::Elem;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mlx")
}

#[test]
fn quantized_weights_read_as_mlx_dequantizes_them() {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let m = modelmap::load::open(&data_dir().join("q4")).unwrap();
    let quantized = facts["quantized"].as_object().unwrap();
    assert_eq!(
        m.tensors.iter().filter(|t| t.quant.is_some()).count(),
        quantized.len()
    );
    for (name, f) in quantized {
        let t = m.tensor(name).unwrap_or_else(|| panic!("{name}"));
        let want_dtype = match f["bits"].as_u64().unwrap() {
            8 => DType::U8,
            4 => DType::U4,
            b => DType::UBits(b as u8),
        };
        assert_eq!(t.dtype, want_dtype, "{name}");
        assert_eq!(t.shape, common::json_dims(&f["shape"]), "{name}");
        let q = t.quant.as_ref().unwrap();
        assert_eq!(
            q.scale_bias().unwrap().len() as u64,
            f["groups"].as_u64().unwrap(),
            "{name}"
        );
        // MLX computes in f16 (the scales' type); ours in f64.
        let s = modelmap::stats::tensor_stats(t).unwrap();
        let want = f["mean"].as_f64().unwrap();
        assert!(
            (s.mean.unwrap() - want).abs() < 1e-5,
            "{name}: mean {:?} vs {want}",
            s.mean
        );
        let elem = Elem::of(t.dtype).unwrap();
        let first = f["first"].as_array().unwrap().iter().enumerate();
        let samples = f["samples"].as_array().unwrap().iter().map(|p| {
            let p = p.as_array().unwrap();
            (p[0].as_u64().unwrap() as usize, &p[1])
        });
        for (i, v) in first.chain(samples) {
            let mut r = [elem.value_at(t.bytes().unwrap(), i as u64).unwrap()];
            q.apply(i as u64, &mut r);
            let want = v.as_f64().unwrap();
            assert!(
                (r[0] - want).abs() <= 1e-3 * want.abs() + 1e-4,
                "{name}[{i}]: {} vs {want}",
                r[0]
            );
        }
    }
    // The other tensors (norms, and the scales and biases themselves) are as stored.
    for (name, f) in facts["plain"].as_object().unwrap() {
        let t = m.tensor(name).unwrap_or_else(|| panic!("{name}"));
        assert!(t.quant.is_none(), "{name}");
        assert_eq!(t.shape, common::json_dims(&f["shape"]), "{name}");
    }
    // The module graph is the LLaMA chain, the MLP's weights drawn as their real 256 × 128.
    assert!(!m.graph.edges.is_empty());
    let chains = modelmap::stats::neurons::find_dense_chains(&m);
    let mlp = chains
        .iter()
        .find(|c| c.name == "model.layers.0.mlp")
        .unwrap();
    assert_eq!(mlp.sizes(), vec![128, 256, 128]);
}

mod common;
