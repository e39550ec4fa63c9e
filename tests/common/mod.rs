//! Shared helpers for integration tests.
#![allow(dead_code, reason = "each test binary uses a subset")]

use std::path::PathBuf;

/// The conformance corpus: `$MODELMAP_CORPUS`, else `../shared/corpus` beside the repo.
/// Missing corpus fails the test loudly unless `MODELMAP_ALLOW_NO_CORPUS=1`.
pub fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("MODELMAP_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if dir.join("facts.json").exists() {
        return Some(dir);
    }
    let msg = format!(
        "CORPUS MISSING: no facts.json under {} (set MODELMAP_CORPUS)",
        dir.display()
    );
    if std::env::var("MODELMAP_ALLOW_NO_CORPUS").is_ok_and(|v| v == "1") {
        eprintln!("NOTE: {msg}; corpus checks skipped because MODELMAP_ALLOW_NO_CORPUS=1");
        None
    } else {
        panic!("{msg}");
    }
}

/// facts.json parsed.
pub fn facts(corpus: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(corpus.join("facts.json")).expect("read facts.json");
    serde_json::from_str(&text).expect("parse facts.json")
}

/// A headless GPU context for rendering tests: lavapipe where there is no GPU. Missing adapter fails
/// the test unless `MODELMAP_SKIP_GPU_TESTS=1` (then `None`, with a note).
pub fn gpu() -> Option<modelmap::render::RenderContext> {
    match modelmap::render::RenderContext::headless() {
        Ok(c) => Some(c),
        Err(e) if std::env::var("MODELMAP_SKIP_GPU_TESTS").is_ok_and(|v| v == "1") => {
            eprintln!("NOTE: GPU test skipped (MODELMAP_SKIP_GPU_TESTS=1): {e}");
            None
        }
        Err(e) => panic!("no GPU adapter for a rendering test: {e}"),
    }
}

/// A heatmap item of `w`×`h` row-major `values`, one world unit per value with its top-left at
/// `min`, diverging colours over -1..1.
pub fn heatmap_item(
    key: u64,
    min: glam::Vec2,
    w: u32,
    h: u32,
    values: Vec<f32>,
) -> modelmap::lod::HeatmapItem {
    modelmap::lod::HeatmapItem {
        key,
        min,
        max: min + glam::Vec2::new(w as f32, h as f32),
        width: w,
        height: h,
        values: std::sync::Arc::from(values),
        lo: -1.0,
        hi: 1.0,
        colormap: modelmap::lod::ColorMap::Diverging,
    }
}

/// Asserts a tensor's minimum, maximum, mean and standard deviation, each within `rel` of the
/// expected value (relative to at least `floor`).
pub fn assert_summary(
    name: &str,
    s: &modelmap::stats::TensorStats,
    [min, max, mean, std]: [f64; 4],
    rel: f64,
    floor: f64,
) {
    for (what, ours, want) in [
        ("min", s.min, min),
        ("max", s.max, max),
        ("mean", s.mean, mean),
        ("std", s.std, std),
    ] {
        let ours = ours.unwrap_or(f64::NAN);
        assert!(
            (ours - want).abs() <= rel * want.abs().max(floor),
            "{name}: {what} {ours} vs {want}"
        );
    }
}

/// A JSON array of non-negative integers (a shape in a facts file).
pub fn json_dims(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|d| d.as_u64().expect("a non-negative integer"))
        .collect()
}

/// A JSON array of strings (names in a facts file).
pub fn json_strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// Little-endian f32 values as f64.
pub fn le_f32s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// The op types of subgraph `k`'s own op nodes, in order.
pub fn subgraph_ops(g: &modelmap::model::Graph, k: usize) -> Vec<String> {
    g.own_nodes(k)
        .filter(|n| n.kind == modelmap::model::NodeKind::Op)
        .map(|n| n.op.to_string())
        .collect()
}

/// The names of subgraph `k`'s own nodes of `kind` (its inputs, its outputs), in order.
pub fn subgraph_names(
    g: &modelmap::model::Graph,
    k: usize,
    kind: modelmap::model::NodeKind,
) -> Vec<String> {
    g.own_nodes(k)
        .filter(|n| n.kind == kind)
        .map(|n| n.name.clone())
        .collect()
}

/// The id of the node named `name` (it must exist).
pub fn node_id(model: &modelmap::model::Model, name: &str) -> u32 {
    model
        .graph
        .nodes
        .iter()
        .position(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}")) as u32
}

/// Whether an edge runs from the node named `from` to the node named `to` (both must exist).
pub fn edge(model: &modelmap::model::Model, from: &str, to: &str) -> bool {
    let (a, b) = (node_id(model, from), node_id(model, to));
    model.graph.edges.iter().any(|e| e.from == a && e.to == b)
}

/// The metadata property `key` of a model (`checkpoint.step`).
pub fn property<'a>(model: &'a modelmap::model::Model, key: &str) -> Option<&'a str> {
    model
        .metadata
        .properties
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A copy of folder `dir` (its files and, below it, its folders) in a new temporary folder.
pub fn copy_folder(dir: &std::path::Path) -> tempfile::TempDir {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        for e in std::fs::read_dir(from).expect("the folder") {
            let e = e.expect("an entry");
            let target = to.join(e.file_name());
            if e.path().is_dir() {
                std::fs::create_dir(&target).expect("a folder");
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).expect("a copy");
            }
        }
    }
    let tmp = tempfile::tempdir().expect("a temporary folder");
    copy(dir, tmp.path());
    tmp
}

/// Cuts the file at `path` to half its length.
pub fn cut_in_half(path: &std::path::Path) {
    let len = std::fs::metadata(path).expect("the file").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len / 2))
        .expect("a truncation");
}

/// Checks a tensor's values against a facts entry written by Python: its `first` values, its
/// `last` one when given, and its `mean`; exact up to serde_json's last-digit rounding of Python's
/// floats (the mean to 1e-12 relative, as its sum's order differs).
pub fn assert_values_match(t: &modelmap::model::Tensor, fact: &serde_json::Value, ctx: &str) {
    let v = t
        .small_numbers()
        .unwrap_or_else(|| panic!("{ctx}: no values ({:?})", t.data));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-15 * b.abs().max(1.0);
    for (a, b) in v
        .iter()
        .zip(fact["first"].as_array().expect("first values"))
    {
        let b = b.as_f64().expect("a number");
        assert!(close(*a, b), "{ctx}: {a} against {b}");
    }
    if let Some(last) = fact["last"].as_f64() {
        let got = *v.last().expect("a value");
        assert!(close(got, last), "{ctx}: last {got} against {last}");
    }
    let mean = if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    };
    let want = fact["mean"].as_f64().expect("a mean");
    assert!(
        (mean - want).abs() <= 1e-12 * want.abs().max(1.0),
        "{ctx}: mean {mean} against {want}"
    );
}
