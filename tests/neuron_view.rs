//! The neuron view on real checkpoints: one circle per neuron, top-k edges at fit zoom, every weight
//! of the neurons in view when zoomed in, colours that follow the tensor's actual signs, and clear
//! errors. GPU tests run on lavapipe (`WGPU_BACKEND=vulkan`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use glam::DVec2;

use modelmap::lod::{DrawList, NodeShape};
use modelmap::model::Model;
use modelmap::neuron_view::{
    EdgeMode, NEGATIVE, NeuronScene, NeuronViewError, NeuronViewOptions, POSITIVE,
    render_neurons_png,
};
use modelmap::stats::neurons::NeuronGraph;
use modelmap::view::Camera;

/// A 400×300 camera centred on a neuron position, zoomed in to 4 px per unit (16 px between
/// neurons: the view that draws every weight of the neurons in it).
fn close_on(p: [f32; 2]) -> Camera {
    Camera {
        center: DVec2::new(f64::from(p[0]), f64::from(p[1])),
        zoom: 4.0,
        viewport: DVec2::new(400.0, 300.0),
    }
}

fn llama_tiny(corpus: &Path) -> Arc<Model> {
    Arc::new(
        modelmap::load::open(&corpus.join("generated/llama_tiny_st/model.safetensors")).unwrap(),
    )
}

/// The neuron whose centre is at a world point (column by x, row by y).
fn neuron_at(g: &NeuronGraph, p: DVec2) -> u32 {
    for (c, (&off, &n)) in g.layer_offsets.iter().zip(&g.layer_sizes).enumerate() {
        let first = g.positions[off as usize];
        if (f64::from(first[0]) - p.x).abs() > 0.01 {
            continue;
        }
        let sp = f64::from(g.positions[off as usize + 1][1] - first[1]);
        let j = ((p.y - f64::from(first[1])) / sp).round();
        assert!(j >= 0.0 && j < f64::from(n), "column {c}: row {j} outside");
        return off + j as u32;
    }
    panic!("no column at x = {}", p.x);
}

/// (from, to, colour) of every edge of a list, as neuron ids.
fn edges_as_neurons(g: &NeuronGraph, list: &DrawList) -> Vec<(u32, u32, [u8; 4])> {
    list.edges
        .iter()
        .map(|e| {
            let a = neuron_at(g, list.origin + e.from.as_dvec2());
            let b = neuron_at(g, list.origin + e.to.as_dvec2());
            (a, b, e.color)
        })
        .collect()
}

/// The stored f32 value of the weight from neuron `a` to neuron `b` of the llama MLP chain
/// (`up_proj` [172 out, 64 in], `down_proj` [64 out, 172 in], row-major), read from the file's bytes.
fn weight(m: &Model, chain: &str, g: &NeuronGraph, a: u32, b: u32) -> f32 {
    let (layer, name) = if b < g.layer_offsets[2] {
        (0, "up_proj")
    } else {
        (1, "down_proj")
    };
    let t = m.tensor(&format!("{chain}.{name}.weight")).unwrap();
    let (row, col) = (b - g.layer_offsets[layer + 1], a - g.layer_offsets[layer]);
    let cols = t.shape[1] as usize;
    let i = (row as usize * cols + col as usize) * 4;
    f32::from_le_bytes(t.bytes().unwrap()[i..i + 4].try_into().unwrap())
}

/// Every edge's colour is red for a positive stored weight and blue for a negative one; returns how
/// many edges had each sign.
fn assert_colours_follow_signs(m: &Model, scene: &NeuronScene, list: &DrawList) -> (usize, usize) {
    let g = scene.graph();
    let (mut pos, mut neg) = (0, 0);
    for (a, b, color) in edges_as_neurons(g, list) {
        let w = weight(m, &scene.chain().name, g, a, b);
        let rgb = [color[0], color[1], color[2]];
        if w > 0.0 {
            assert_eq!(rgb, POSITIVE, "edge {a}→{b} has w = {w}");
            pos += 1;
        } else if w < 0.0 {
            assert_eq!(rgb, NEGATIVE, "edge {a}→{b} has w = {w}");
            neg += 1;
        }
    }
    (pos, neg)
}

#[test]
fn fit_zoom_draws_every_neuron_and_at_most_top_k_edges_per_neuron() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let m = llama_tiny(&corpus);
    let mut scene = NeuronScene::new(m.clone(), Some("model.layers.3.mlp")).unwrap();
    assert_eq!(scene.chain().sizes(), vec![64, 172, 64]);
    let k = 8;
    let cam = scene.fit_camera(DVec2::new(800.0, 500.0));
    let list = scene.draw_list(&cam).clone();
    assert_eq!(scene.stats.mode, EdgeMode::TopK);
    // One circle per neuron of the chain.
    assert_eq!(list.nodes.len(), 64 + 172 + 64);
    assert!(list.nodes.iter().all(|n| n.shape == NodeShape::Circle));
    // Edges per layer ≤ k out of every source plus k into every destination.
    let g = scene.graph().clone();
    let pairs = edges_as_neurons(&g, &list);
    let layer0 = pairs.iter().filter(|p| p.1 < g.layer_offsets[2]).count();
    let layer1 = pairs.len() - layer0;
    assert!(layer0 <= k * (64 + 172), "{layer0}");
    assert!(layer1 <= k * (172 + 64), "{layer1}");
    assert!(pairs.len() < 2 * 64 * 172 / 4, "{} edges", pairs.len());
    let mut degree: HashMap<u32, usize> = HashMap::new();
    for (a, b, _) in &pairs {
        *degree.entry(*a).or_default() += 1;
        *degree.entry(*b).or_default() += 1;
    }
    // Every neuron keeps its strongest links, in and out.
    assert_eq!(degree.len(), 300);
    let hidden = g.layer_offsets[1]..g.layer_offsets[2];
    assert!(hidden.clone().all(|h| degree[&h] >= 2 * k));
    // Column labels name the layer and its width.
    let texts: Vec<&str> = list.labels.iter().map(|l| l.text.as_str()).collect();
    for want in ["input (64)", "up_proj (172)", "down_proj (64)"] {
        assert!(texts.contains(&want), "{texts:?}");
    }
    let (pos, neg) = assert_colours_follow_signs(&m, &scene, &list);
    assert!(pos > 100 && neg > 100, "{pos} positive, {neg} negative");

    // Over the overview budget only the strongest edges (relative to their layer) are drawn.
    let opts = NeuronViewOptions {
        overview_budget: 500,
        ..Default::default()
    };
    let mut small = NeuronScene::with_options(m.clone(), Some("model.layers.3.mlp"), opts).unwrap();
    let list = small.draw_list(&cam).clone();
    assert_eq!(list.edges.len(), 500);
    let rel = |a: u32, b: u32| {
        let layer = usize::from(b >= g.layer_offsets[2]);
        weight(&m, "model.layers.3.mlp", &g, a, b).abs() / g.layer_abs_max[layer]
    };
    let drawn: Vec<(u32, u32)> = edges_as_neurons(&g, &list)
        .into_iter()
        .map(|(a, b, _)| (a, b))
        .collect();
    let weakest_drawn = drawn.iter().map(|&(a, b)| rel(a, b)).fold(1.0, f32::min);
    let strongest_left = g
        .top_edges
        .iter()
        .filter(|e| !drawn.contains(&(e.from, e.to)))
        .map(|e| rel(e.from, e.to))
        .fold(0.0, f32::max);
    assert!(
        weakest_drawn >= strongest_left,
        "{weakest_drawn} < {strongest_left}"
    );
}

#[test]
fn zoomed_in_draws_every_weight_of_the_neurons_in_view() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let m = llama_tiny(&corpus);
    let mut scene = NeuronScene::new(m.clone(), Some("model.layers.3.mlp")).unwrap();
    let g = scene.graph().clone();
    // Centre on hidden neuron 86, 16 px between neurons.
    let h = g.layer_offsets[1] + 86;
    let p = g.positions[h as usize];
    let cam = close_on(p);
    let list = scene.draw_list(&cam).clone();
    assert_eq!(scene.stats.mode, EdgeMode::Full);
    // Picking: the neuron under the camera centre, and nothing between columns.
    assert_eq!(
        scene.neuron_at(cam.center + DVec2::new(0.5, 0.5), 2.0),
        Some((1, h))
    );
    assert_eq!(
        scene.neuron_at(cam.center + DVec2::new(50.0, 0.0), 2.0),
        None
    );
    let pairs = edges_as_neurons(&g, &list);
    // All 64 weights into and all 64 out of the neuron in view.
    assert_eq!(pairs.iter().filter(|e| e.1 == h).count(), 64);
    assert_eq!(pairs.iter().filter(|e| e.0 == h).count(), 64);
    // More than the top-k set, far less than the whole chain.
    assert!(pairs.len() > g.top_edges.len(), "{}", pairs.len());
    assert!(pairs.len() < 2 * 64 * 172);
    // Only the neurons near the view are drawn.
    assert!(list.nodes.len() < 300 && !list.nodes.is_empty());
    let (pos, neg) = assert_colours_follow_signs(&m, &scene, &list);
    assert!(pos > 100 && neg > 100);
    // The planted dead row: output neuron 5 of layer 3's down_proj receives only zero weights, so
    // its edges are the faintest.
    let out5 = g.layer_offsets[2] + 5;
    let cam5 = Camera {
        center: DVec2::new(
            f64::from(g.positions[out5 as usize][0]),
            f64::from(g.positions[out5 as usize][1]),
        ),
        ..cam
    };
    let list5 = scene.draw_list(&cam5).clone();
    let into5: Vec<_> = edges_as_neurons(&g, &list5)
        .into_iter()
        .filter(|e| e.1 == out5)
        .collect();
    assert_eq!(into5.len(), 172);
    let faintest = into5.iter().map(|e| e.2[3]).max().unwrap();
    assert!(list5.edges.iter().all(|e| e.color[3] >= faintest));

    // A small pan keeps the list (no re-upload); a big zoom out rebuilds it as the top-k overview.
    let rev = list5.revision;
    let mut panned = cam5;
    panned.center.y += 10.0;
    assert_eq!(scene.draw_list(&panned).revision, rev);
    assert!(!scene.stats.rebuilt);
    let fit = scene.fit_camera(cam.viewport);
    assert!(scene.draw_list(&fit).revision > rev);
    assert_eq!(scene.stats.mode, EdgeMode::TopK);
}

#[test]
fn a_large_layer_never_builds_all_its_edges() {
    // 512 → 2048 → 512, 2 M weights: the graph keeps only the top-k set and a zoomed view reads a band.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mlp.safetensors");
    let data = |rows: usize, cols: usize, seed: u32| -> Vec<u8> {
        (0..rows * cols)
            .flat_map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                (x as f32 / 16_777_216.0 - 0.5).to_le_bytes()
            })
            .collect()
    };
    let (up, down) = (data(2048, 512, 1), data(512, 2048, 2));
    let tensors = vec![
        (
            "mlp.fc1.weight".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2048, 512], &up)
                .unwrap(),
        ),
        (
            "mlp.fc2.weight".to_string(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![512, 2048], &down)
                .unwrap(),
        ),
    ];
    safetensors::serialize_to_file(tensors, None, &path).unwrap();
    let m = Arc::new(modelmap::load::open(&path).unwrap());
    let mut scene = NeuronScene::new(m, None).unwrap();
    let g = scene.graph();
    assert!(!g.all_edges && g.edges.is_empty());
    assert!(g.top_edges.len() <= 8 * 2 * (512 + 2048 + 2048 + 512));
    let fit = scene.fit_camera(DVec2::new(640.0, 400.0));
    scene.draw_list(&fit);
    assert_eq!(scene.stats.mode, EdgeMode::TopK);
    assert_eq!(scene.stats.nodes, 512 + 2048 + 512);
    let p = scene.graph().positions[512 + 1024];
    let cam = close_on(p);
    let list = scene.draw_list(&cam).clone();
    assert_eq!(scene.stats.mode, EdgeMode::Full);
    // The band: the neurons whose rows are in or near the view, with all their weights — about 44
    // hidden and 44 input/output neurons, within the budget, not the 2 M of the whole chain.
    assert!(
        scene.stats.edges > 40 * 2 * 512 && scene.stats.edges <= 300_000,
        "{:?}",
        scene.stats
    );
    let g = scene.graph();
    let h = 512 + 1024;
    let pairs = edges_as_neurons(g, &list);
    assert_eq!(pairs.iter().filter(|e| e.1 == h).count(), 512);
    assert_eq!(pairs.iter().filter(|e| e.0 == h).count(), 512);
}

#[test]
fn rendered_neuron_view_has_red_and_blue_edges() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let Some(_) = common::gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("neurons.png");
    let msg = render_neurons_png(llama_tiny(&corpus), None, 320, 200, &out).unwrap();
    assert!(msg.contains("model.layers.0.mlp"), "{msg}");
    let img = modelmap::render::load_png(&out).unwrap();
    let (mut red, mut blue) = (0, 0);
    for p in img.pixels.chunks_exact(4) {
        let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
        if r > g + 60 && r > b + 60 {
            red += 1;
        }
        if b > r + 60 && b > g + 40 {
            blue += 1;
        }
    }
    assert!(red > 500 && blue > 500, "{red} red, {blue} blue pixels");
}

#[test]
fn models_without_a_chain_and_unknown_chains_are_clear_errors() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    for f in [
        "generated/seed_cnn_layers.json",
        "real/onnx_light/light_squeezenet.onnx",
    ] {
        let m = Arc::new(modelmap::load::open(&corpus.join(f)).unwrap());
        let Err(e) = NeuronScene::new(m, None) else {
            panic!("{f}: a neuron view without dense layers");
        };
        assert!(matches!(e, NeuronViewError::NoChain { .. }), "{e}");
        assert!(e.to_string().contains(f), "{e}");
    }
    let m = llama_tiny(&corpus);
    let Err(e) = NeuronScene::new(m.clone(), Some("model.layers.9.mlp")) else {
        panic!("unknown chain accepted");
    };
    let text = e.to_string();
    assert!(
        text.contains("\"model.layers.9.mlp\"") && text.contains("3: model.layers.3.mlp"),
        "{text}"
    );
    assert!(NeuronScene::new(m.clone(), Some("4")).is_err());
    // By index, and by default the chain with the most weights (the first of equals).
    let by_index = NeuronScene::new(m.clone(), Some("2")).unwrap();
    assert_eq!(by_index.chain().name, "model.layers.2.mlp");
    assert_eq!(
        NeuronScene::new(m, None).unwrap().chain().name,
        "model.layers.0.mlp"
    );
}

#[test]
fn the_cli_reports_a_bad_chain_without_panicking() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = corpus.join("generated/llama_tiny_st/model.safetensors");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_modelmap"))
            .arg("render")
            .arg(&file)
            .arg("-o")
            .arg(dir.path().join("x.png"))
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    };
    let out = run(&["--view", "neurons", "--chain", "nope"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no dense chain \"nope\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = run(&["--chain", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--view neurons"));
    assert!(!dir.path().join("x.png").exists());
}
