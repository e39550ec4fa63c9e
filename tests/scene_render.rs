//! Whole-pipeline renders of real models (load → layout → LOD → render), asserted on pixels.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

mod common;

use std::sync::Arc;

use glam::DVec2;

use modelmap::lod::ViewState;
use modelmap::scene::{LayoutChoice, Scene};

#[test]
fn heatmap_shows_the_planted_dead_row_as_zero() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let Some(_) = common::gpu() else { return };
    let model = modelmap::load::open(&corpus.join("generated/llama_tiny_st")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("heat.png");
    // 64 rows × 172 columns drawn 4 px per value: row r spans y = 8 + 4r .. 8 + 4r + 4 after the fit.
    modelmap::scene::render_tensor_png(
        &model,
        "model.layers.3.mlp.down_proj.weight",
        704,
        272,
        &out,
    )
    .unwrap();
    let img = modelmap::render::load_png(&out).unwrap();
    let px = |x: u32, y: u32| {
        let i = ((y * img.width + x) * 4) as usize;
        [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
    };
    let is_white = |p: [u8; 3]| p.iter().all(|&c| c > 235);
    let row_y = |r: u32| 8 + 4 * r + 2;
    let white_in_row = |r: u32| {
        (20..680)
            .step_by(7)
            .filter(|&x| is_white(px(x, row_y(r))))
            .count()
    };
    let dead = white_in_row(5);
    let alive = white_in_row(9);
    assert!(
        dead >= 90,
        "row 5 is all zeros and must be white: {dead} white samples"
    );
    assert!(
        alive < 30,
        "a normal row is mostly coloured: {alive} white samples"
    );
}

#[test]
fn structure_of_a_real_model_renders_nodes_and_labels() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let Some(ctx) = common::gpu() else { return };
    let model = Arc::new(
        modelmap::load::open(&corpus.join("real/onnx_light/light_inception_v1.onnx")).unwrap(),
    );
    let mut scene = Scene::build(
        model,
        LayoutChoice::Dataflow,
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    let cam = scene.fit_camera(DVec2::new(640.0, 480.0));
    let img = scene.render(&ctx, &cam, &ViewState::default()).unwrap();
    let bg = [250u8, 250, 252];
    let mut non_bg = 0;
    let mut saturated = 0;
    for p in img.pixels.chunks_exact(4) {
        if (0..3).any(|i| p[i].abs_diff(bg[i]) > 12) {
            non_bg += 1;
        }
        let (mx, mn) = (p[0].max(p[1]).max(p[2]), p[0].min(p[1]).min(p[2]));
        if mx - mn > 60 {
            saturated += 1;
        }
    }
    let total = (img.width * img.height) as usize;
    assert!(
        non_bg > total / 100,
        "the model is drawn: {non_bg} of {total} pixels differ from the background"
    );
    assert!(
        saturated > 200,
        "op colours are visible: {saturated} saturated pixels"
    );
    // Zoomed into one inception block the nodes open up: more items than clusters.
    let block = scene
        .find_box("inception_3a")
        .or_else(|| scene.layout.clusters.clusters.get(1).map(|c| c.bbox))
        .unwrap();
    let mut cam2 = cam;
    cam2.fit(block, 10.0);
    scene.render(&ctx, &cam2, &ViewState::default()).unwrap();
    assert!(scene.lod.stats.nodes_drawn > 5, "{:?}", scene.lod.stats);
}
