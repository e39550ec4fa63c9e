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
        false,
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

/// Screen position of view cell (`r`, `c`) in a `size` picture of `view` fitted with 8 px margins.
fn cell_px(
    view: &modelmap::stats::heatmap::HeatmapView,
    (w, h): (u32, u32),
    r: u64,
    c: u64,
) -> (u32, u32) {
    let mut cam = modelmap::view::Camera::new(DVec2::new(w as f64, h as f64));
    cam.fit(modelmap::scene::view_rect(view), 8.0);
    let p = cam.screen_from_world(DVec2::new(c as f64 + 0.5, r as f64 + 0.5));
    (p.x as u32, p.y as u32)
}

/// The RGB of pixel (`x`, `y`).
fn px(img: &modelmap::render::RgbaImage, (x, y): (u32, u32)) -> [u8; 3] {
    let i = ((y * img.width + x) * 4) as usize;
    [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
}

/// PP-OCR's real direction classifier, when the corpus and a GPU are there.
fn ppocr_cls() -> Option<modelmap::model::Model> {
    let corpus = common::corpus()?;
    common::gpu()?;
    Some(
        modelmap::load::open(&corpus.join("real/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx"))
            .unwrap(),
    )
}

/// Tensor `name` rendered `w`×`h` flat and as its grid of kernels, and the grid's message.
fn flat_and_grid(
    model: &modelmap::model::Model,
    name: &str,
    (w, h): (u32, u32),
) -> (
    modelmap::render::RgbaImage,
    modelmap::render::RgbaImage,
    String,
) {
    let tmp = tempfile::tempdir().unwrap();
    let render = |kernels: bool, file: &str| {
        let out = tmp.path().join(file);
        let msg = modelmap::scene::render_tensor_png(model, name, w, h, &out, kernels).unwrap();
        (modelmap::render::load_png(&out).unwrap(), msg)
    };
    let (flat, _) = render(false, "flat.png");
    let (grid, msg) = render(true, "grid.png");
    (flat, grid, msg)
}

#[test]
fn conv_weight_as_a_grid_of_kernels() {
    let Some(model) = ppocr_cls() else { return };
    use modelmap::stats::heatmap::HeatmapView;
    let name = "conv1_weights"; // [8, 3, 3, 3]: 8 rows of 3 kernels, each 3×3
    let t = model.tensor(name).unwrap();
    let (w, h) = (368u32, 784u32);
    let (flat, grid, msg) = flat_and_grid(&model, name, (w, h));
    assert!(msg.contains("grid of kernels"), "{msg}");
    let at = |view: &HeatmapView, r: u64, c: u64| cell_px(view, (w, h), r, c);
    let fv = HeatmapView::for_tensor(t);
    let gv = HeatmapView::kernel_grid(t).unwrap();
    assert_eq!((gv.rows, gv.cols), (24, 9));
    // Every value (o, i, y, x) shows the same colour in both pictures, at its place in each.
    let mut distinct = std::collections::HashSet::new();
    for (o, i, y, x) in [
        (0, 0, 0, 0),
        (0, 1, 2, 1),
        (3, 2, 1, 2),
        (7, 2, 2, 0),
        (5, 0, 1, 1),
    ] {
        let a = px(&flat, at(&fv, o, i * 9 + y * 3 + x));
        let b = px(&grid, at(&gv, o * 3 + y, i * 3 + x));
        let close = a.iter().zip(&b).all(|(p, q)| p.abs_diff(*q) <= 2);
        assert!(close, "value ({o},{i},{y},{x}): flat {a:?} vs grid {b:?}");
        distinct.insert(a);
    }
    assert!(distinct.len() >= 3, "the samples differ: {distinct:?}");
    // Kernels are separated by dark lines (a 3×3 kernel is ~96 px here).
    let (lx, ly) = at(&gv, 4, 3);
    let mut cam = modelmap::view::Camera::new(DVec2::new(w as f64, h as f64));
    cam.fit(modelmap::scene::view_rect(&gv), 8.0);
    let edge_x = cam.screen_from_world(DVec2::new(3.0, 0.0)).x.round() as u32;
    let dark = (edge_x.saturating_sub(1)..=edge_x + 1)
        .map(|x| px(&grid, (x, ly)))
        .any(|p| p.iter().all(|&c| c < 90));
    assert!(dark, "a separator line at x = {edge_x} (cell at {lx},{ly})");
}

/// A depthwise conv weight (`[32, 1, 3, 3]` in the real PP-OCR classifier) would be a single
/// column of 32 kernels; it wraps into 4 rows of 8, every value at its place.
#[test]
fn depthwise_conv_kernels_wrap_into_a_square_grid() {
    let Some(model) = ppocr_cls() else { return };
    use modelmap::stats::heatmap::HeatmapView;
    let name = "conv4_depthwise_weights";
    let t = model.tensor(name).unwrap();
    assert_eq!(t.shape, [32, 1, 3, 3]);
    let gv = HeatmapView::kernel_grid(t).unwrap();
    let k = gv.kernel.unwrap();
    assert!(k.wrapped());
    assert_eq!((gv.rows, gv.cols, k.per_row), (12, 24, 8));
    let (w, h) = (720u32, 400u32);
    let (flat, img, msg) = flat_and_grid(&model, name, (w, h));
    assert!(msg.contains("grid of kernels"), "{msg}");
    let fv = HeatmapView::for_tensor(t);
    let at = |view: &HeatmapView, r: u64, c: u64| cell_px(view, (w, h), r, c);
    let mut distinct = std::collections::HashSet::new();
    // Channel q's value (y, x) is flat row q, column 3y + x; in the grid, block (q / 8, q % 8).
    for (q, y, x) in [
        (0u64, 0u64, 0u64),
        (7, 1, 2),
        (8, 0, 1),
        (19, 2, 2),
        (31, 2, 0),
    ] {
        let a = px(&flat, at(&fv, q, y * 3 + x));
        let b = px(&img, at(&gv, (q / 8) * 3 + y, (q % 8) * 3 + x));
        let close = a.iter().zip(&b).all(|(p, q)| p.abs_diff(*q) <= 2);
        assert!(close, "channel {q} ({y},{x}): flat {a:?} vs grid {b:?}");
        // The element the grid shows there is that value's memory index.
        assert_eq!(
            gv.element((q / 8) * 3 + y, (q % 8) * 3 + x),
            Some((q * 3 + y) * 3 + x)
        );
        distinct.insert(a);
    }
    assert!(distinct.len() >= 3, "the samples differ: {distinct:?}");
}

#[test]
fn an_aggregated_overview_is_coloured_by_what_it_draws() {
    let item =
        |values: Vec<f32>, w: u32, h: u32| common::heatmap_item(1, glam::Vec2::ZERO, w, h, values);
    // Means of blocks of a ±1 tensor: small values. 100 of 10 000 values shown.
    let means: Vec<f32> = (0..100).map(|i| ((i % 21) as f32 - 10.0) * 0.01).collect();
    let (lo, hi) = modelmap::scene::overview_range(&[item(means, 10, 10)], 10_000, (-1.0, 1.0));
    assert!(
        (hi - 0.1).abs() < 1e-6 && lo == -hi,
        "range follows the drawn means: {lo}..{hi}"
    );
    // Every value drawn: the tensor's own range stays.
    let all: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) * 0.001).collect();
    assert_eq!(
        modelmap::scene::overview_range(&[item(all, 10, 10)], 100, (-1.0, 1.0)),
        (-1.0, 1.0)
    );
    // Never wider than the tensor's range.
    let big = vec![5.0f32; 100];
    assert_eq!(
        modelmap::scene::overview_range(&[item(big, 10, 10)], 10_000, (-1.0, 1.0)),
        (-1.0, 1.0)
    );
}

/// Every collapsed Inception block has its name at fit: a name too long for its box is set in a
/// smaller font (inception_3a–3c were left blank when only the 12 px size was tried).
#[test]
fn collapsed_groups_are_titled_at_fit() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model =
        modelmap::load::open(&corpus.join("real/onnx_light/light_inception_v2.onnx")).unwrap();
    let mut scene = Scene::build(
        Arc::new(model),
        LayoutChoice::Auto,
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    let cam = scene.fit_camera(DVec2::new(1400.0, 900.0));
    let list = scene.decorated_cut(&cam, &ViewState::default(), 1e9);
    let texts: Vec<&str> = list.labels.iter().map(|l| l.text.as_str()).collect();
    for block in [
        "inception_3a",
        "inception_3b",
        "inception_3c",
        "inception_4a",
        "inception_5b",
    ] {
        assert!(
            texts.iter().any(|t| t.starts_with(block)),
            "{block} has no title at fit: {texts:?}"
        );
    }
    assert!(list.labels.iter().all(|l| l.size_px >= 7.0));
}

/// silero-vad is one `If`: its branches are boxes inside the `If`'s box, titled at fit, and
/// zoomed in, the ops of a branch are drawn like any module's.
#[test]
fn the_branches_of_an_if_are_drawn_inside_it() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model = modelmap::load::open(&corpus.join("real/silero/silero_vad.onnx")).unwrap();
    let mut scene = Scene::build(
        Arc::new(model),
        LayoutChoice::Auto,
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    let size = DVec2::new(1400.0, 900.0);
    let cam = scene.fit_camera(size);
    let list = scene.decorated_cut(&cam, &ViewState::default(), 1e9);
    let texts: Vec<&str> = list.labels.iter().map(|l| l.text.as_str()).collect();
    for title in ["If_0", "then_branch", "decoder"] {
        assert!(
            texts.iter().any(|t| t.starts_with(title)),
            "{title} has no title at fit: {texts:?}"
        );
    }
    let outer = scene.find_box("If_0").unwrap();
    for branch in ["If_0/then_branch", "If_0/else_branch"] {
        let b = scene.find_box(branch).unwrap();
        assert!(
            outer.min.x <= b.min.x
                && outer.min.y <= b.min.y
                && b.max.x <= outer.max.x
                && b.max.y <= outer.max.y,
            "{branch} {b:?} lies inside If_0 {outer:?}"
        );
    }
    let stft = scene.find_box("If_0/then_branch/stft").unwrap();
    let mut cam2 = cam;
    cam2.fit(stft, 10.0);
    let list = scene.decorated_cut(&cam2, &ViewState::default(), 1e9);
    let texts: Vec<&str> = list.labels.iter().map(|l| l.text.as_str()).collect();
    assert!(
        texts.contains(&"Conv"),
        "the STFT's Conv is drawn in the branch: {texts:?}"
    );
}
