//! Statistics against the corpus's reference facts (numpy/torch values in `facts.json`), a planted
//! NaN and dead row found by the anomaly pass, heatmap tiles and the neuron view on real files.
//!
//! The corpus is `../shared/corpus` from the repo root (`MODELMAP_CORPUS` overrides). Without it the
//! tests fail loudly unless `MODELMAP_ALLOW_NO_CORPUS=1`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions may unwrap too"
)]

use std::path::{Path, PathBuf};

use modelmap::model::{DType, Model};
use modelmap::stats::anomaly::{AnomalyKind, find_anomalies};
use modelmap::stats::heatmap::{Agg, HeatmapView, tile, value_at};
use modelmap::stats::neurons::{NeuronOptions, find_dense_chains, neuron_graph};
use modelmap::stats::{StatsOptions, model_stats, tensor_stats_with};

fn corpus() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = match std::env::var_os("MODELMAP_CORPUS") {
        Some(p) => vec![PathBuf::from(p)],
        // `../../shared` covers a git worktree one folder deeper than the main checkout.
        None => vec![
            root.join("../shared/corpus"),
            root.join("../../shared/corpus"),
        ],
    };
    if let Some(found) = candidates.iter().find(|p| p.join("facts.json").is_file()) {
        return Some(found.clone());
    }
    eprintln!("\n!!!!!!!! CORPUS NOT FOUND at {candidates:?}: set MODELMAP_CORPUS !!!!!!!!\n");
    if std::env::var("MODELMAP_ALLOW_NO_CORPUS").as_deref() == Ok("1") {
        return None;
    }
    panic!("corpus missing (set MODELMAP_ALLOW_NO_CORPUS=1 to skip)");
}

fn facts(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("facts.json")).unwrap()).unwrap()
}

/// Opens a corpus file with the real loaders.
fn open(path: &Path) -> Option<Model> {
    Some(modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn close(ours: f64, want: f64, tol: f64) -> bool {
    (ours - want).abs() <= tol
}

#[test]
fn corpus_tensor_stats_match_reference_facts() {
    let Some(dir) = corpus() else { return };
    let facts = facts(&dir);
    let mut checked = 0;
    let mut skipped_files = Vec::new();
    for file in facts["files"].as_array().unwrap() {
        let entries: Vec<&serde_json::Value> = file["tensors"]
            .as_array()
            .map(|a| a.iter().filter(|t| t.get("count").is_some()).collect())
            .unwrap_or_default();
        if entries.is_empty() {
            continue;
        }
        let path = dir.join(file["path"].as_str().unwrap());
        let Some(m) = open(&path) else {
            skipped_files.push(path);
            continue;
        };
        let opts = StatsOptions::for_model(&m);
        for e in entries {
            let name = e["name"].as_str().unwrap();
            let t = m
                .tensor(name)
                .unwrap_or_else(|| panic!("{}: no tensor {name}", path.display()));
            let s = tensor_stats_with(t, &opts).unwrap();
            let ctx = format!("{}: {name}", path.display());
            for key in ["count", "nan", "inf", "zeros"] {
                assert_eq!(serde_json::json!(s_get(&s, key)), e[key], "{ctx}: {key}");
            }
            let (min, max, mean, std) = (
                e["min"].as_f64().unwrap(),
                e["max"].as_f64().unwrap(),
                e["mean"].as_f64().unwrap(),
                e["std"].as_f64().unwrap(),
            );
            // Min/max are single stored values: equal up to the last digit the JSON writer printed.
            // Mean/std are sums: float rounding of a float32 reduction.
            assert!(
                close(s.min.unwrap(), min, 1e-15 * min.abs()),
                "{ctx}: min {:?} vs {min}",
                s.min
            );
            assert!(
                close(s.max.unwrap(), max, 1e-15 * max.abs()),
                "{ctx}: max {:?} vs {max}",
                s.max
            );
            let tol = 1e-6 * std.max(mean.abs()) + 1e-12;
            assert!(
                close(s.mean.unwrap(), mean, tol),
                "{ctx}: mean {:?} vs {mean}",
                s.mean
            );
            assert!(
                close(s.std.unwrap(), std, tol),
                "{ctx}: std {:?} vs {std}",
                s.std
            );
            if let Some(z) = e.get("zero_rows") {
                assert_eq!(serde_json::json!(s.zero_rows), *z, "{ctx}: zero_rows");
            }
            checked += 1;
        }
    }
    eprintln!("checked {checked} tensors; files needing the loaders, skipped: {skipped_files:?}");
    assert!(checked >= 6, "only {checked} reference tensors checked");
}

fn s_get(s: &modelmap::stats::TensorStats, key: &str) -> u64 {
    match key {
        "count" => s.count,
        "nan" => s.nan,
        "inf" => s.inf,
        _ => s.zeros,
    }
}

#[test]
fn llama_tiny_dead_row_is_an_anomaly_and_mlp_draws_as_neurons() {
    let Some(dir) = corpus() else { return };
    let m = open(&dir.join("generated/llama_tiny_st/model.safetensors")).unwrap();
    let stats = model_stats(&m, &|_, _| {});
    assert!(stats.iter().all(Result::is_ok));
    let a = find_anomalies(&m, &stats);
    let dead: Vec<_> = a
        .iter()
        .filter(|x| x.kind == AnomalyKind::DeadRows)
        .collect();
    assert_eq!(dead.len(), 1, "{a:#?}");
    assert_eq!(dead[0].tensor, "model.layers.3.mlp.down_proj.weight");
    assert!(!a.iter().any(|x| x.kind == AnomalyKind::NonFinite));
    // The real MLPs become neuron graphs: 64 → 172 → 64 with every weight an edge.
    let chains = find_dense_chains(&m);
    let c = chains
        .iter()
        .find(|c| c.name == "model.layers.3.mlp")
        .expect("layer 3 MLP chain");
    assert_eq!(c.sizes(), vec![64, 172, 64]);
    let g = neuron_graph(&m, c, &NeuronOptions::default()).unwrap();
    assert_eq!(g.positions.len(), 300);
    assert_eq!(g.edges.len(), 2 * 64 * 172);
    // Hidden neuron 5 feeds nothing: down_proj is stored [out=64, in=172], so its *column* 5… and the
    // planted dead row 5 of down_proj is output neuron 5, which receives only zero weights.
    let out5 = g.layer_offsets[2] + 5;
    assert!(
        g.edges
            .iter()
            .filter(|e| e.to == out5)
            .all(|e| e.weight == 0.0)
    );
    assert!(
        g.edges
            .iter()
            .filter(|e| e.to == out5 + 1)
            .any(|e| e.weight != 0.0)
    );
}

#[test]
fn planted_nan_and_dead_row_in_a_checkpoint_file_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planted.safetensors");
    let mut tensors = Vec::new();
    let mut datas = Vec::new();
    for l in 0..4 {
        let mut v: Vec<f32> = (0..16 * 8)
            .map(|i| ((i * 31 + l * 7) % 17) as f32 / 17.0 - 0.5)
            .collect();
        if l == 1 {
            v[5] = f32::NAN;
        }
        if l == 2 {
            v[3 * 8..4 * 8].fill(0.0);
        }
        datas.push((
            format!("model.layers.{l}.mlp.up_proj.weight"),
            v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
        ));
    }
    for (name, d) in &datas {
        tensors.push((
            name.clone(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![16, 8], d).unwrap(),
        ));
    }
    safetensors::serialize_to_file(tensors, None, &path).unwrap();
    let m = open(&path).unwrap();
    let stats = model_stats(&m, &|_, _| {});
    let a = find_anomalies(&m, &stats);
    let nan = a
        .iter()
        .find(|x| x.kind == AnomalyKind::NonFinite)
        .expect("NaN found");
    assert_eq!(nan.tensor, "model.layers.1.mlp.up_proj.weight");
    let dead = a
        .iter()
        .find(|x| x.kind == AnomalyKind::DeadRows)
        .expect("dead row found");
    assert_eq!(dead.tensor, "model.layers.2.mlp.up_proj.weight");
    let s = stats[2].as_ref().unwrap();
    assert_eq!(s.zero_rows, vec![3]);
}

#[test]
fn every_corpus_checkpoint_tensor_renders_as_tiles() {
    let Some(dir) = corpus() else { return };
    for rel in [
        "generated/llama_tiny_st/model.safetensors",
        "real/silero/silero_vad_16k.safetensors",
    ] {
        let m = open(&dir.join(rel)).unwrap();
        for t in &m.tensors {
            if t.dtype == DType::String {
                continue;
            }
            let v = HeatmapView::of(t, false);
            let top = v.levels() - 1;
            let tl = tile(t, &v, top, 0, 0, Agg::Mean).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert!(tl.width > 0 && tl.height > 0);
            assert_eq!(tl.values.len(), (tl.width * tl.height) as usize);
            // Level 0 tile (0,0) shows the raw values; hover agrees.
            let l0 = tile(t, &v, 0, 0, 0, Agg::Mean).unwrap();
            assert_eq!(
                f64::from(l0.values[0]),
                value_at(t, &v, 0, 0).unwrap() as f32 as f64,
                "{rel}: {}",
                t.name
            );
        }
    }
}

/// Writes the top-level tile of every tensor in the safetensors corpus files as a PNG (blue–white–red,
/// symmetric 1st/99th-percentile clipping) to look at: `MODELMAP_TILE_PNG_DIR=/tmp/tiles cargo test
/// --test stats -- --ignored`.
#[test]
#[ignore = "writes pictures for a person to look at"]
fn dump_tiles_as_png() {
    use modelmap::stats::heatmap::{Clip, color_range};
    let Some(dir) = corpus() else { return };
    let out = PathBuf::from(
        std::env::var_os("MODELMAP_TILE_PNG_DIR").unwrap_or_else(|| "/tmp/modelmap-tiles".into()),
    );
    std::fs::create_dir_all(&out).unwrap();
    for rel in [
        "generated/llama_tiny_st/model.safetensors",
        "real/silero/silero_vad_16k.safetensors",
    ] {
        let m = open(&dir.join(rel)).unwrap();
        for t in &m.tensors {
            let Ok(s) = modelmap::stats::tensor_stats(t) else {
                continue;
            };
            let v = HeatmapView::of(t, false);
            let tl = tile(t, &v, v.levels() - 1, 0, 0, Agg::Mean).unwrap();
            let (lo, hi) = color_range(&s, Clip::SymmetricPercentile(0.01));
            let mut rgb = Vec::new();
            for &x in tl.values.iter() {
                let u = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
                let px = if x.is_nan() {
                    [255, 0, 255]
                } else if u < 0.5 {
                    let k = (u * 2.0 * 255.0) as u8;
                    [k, k, 255]
                } else {
                    let k = ((1.0 - u) * 2.0 * 255.0) as u8;
                    [255, k, k]
                };
                rgb.extend(px);
            }
            let name = format!("{}.png", t.name.replace(['/', ':'], "_"));
            let f = std::fs::File::create(out.join(name)).unwrap();
            let mut enc = png::Encoder::new(std::io::BufWriter::new(f), tl.width, tl.height);
            enc.set_color(png::ColorType::Rgb);
            enc.write_header().unwrap().write_image_data(&rgb).unwrap();
        }
    }
}
