//! Weights drawn in place in the structure view (`scene::weights`): zooming into a node shows its
//! weight tensor as a heatmap inside the box, down to single values — on a real corpus checkpoint.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use glam::DVec2;

use modelmap::lod::ViewState;
use modelmap::scene::weights::format_value;
use modelmap::scene::{InPlaceWeights, LayoutChoice, Scene};
use modelmap::stats::heatmap::{HeatmapView, value_at};

const TENSOR: &str = "model.layers.3.mlp.down_proj.weight";
const VIEWPORT: DVec2 = DVec2::new(1280.0, 800.0);

fn scene() -> Option<Scene> {
    let corpus = common::corpus()?;
    let model = modelmap::load::open(&corpus.join("generated/llama_tiny_st")).unwrap();
    Some(
        Scene::build(
            Arc::new(model),
            LayoutChoice::Auto,
            &modelmap::layout::Progress::new(),
        )
        .unwrap(),
    )
}

fn exact(scene: &Scene, row: u64, col: u64) -> f64 {
    let t = scene.model.tensor(TENSOR).unwrap();
    value_at(t, &HeatmapView::for_tensor(t), row, col).unwrap()
}

#[test]
fn the_whole_model_shows_no_weights_and_a_zoomed_node_does() {
    let Some(mut scene) = scene() else { return };
    let fit = scene.fit_camera(VIEWPORT);
    let list = scene.decorated_cut(&fit, &ViewState::default(), 1e9);
    assert!(list.heatmaps.is_empty(), "boxes are a few pixels at fit");
    assert!(scene.weights.placements().is_empty());

    let cam = scene
        .focus_camera("model.layers.3.mlp.down_proj", VIEWPORT)
        .unwrap();
    let list = scene.decorated_cut(&cam, &ViewState::default(), 1e9);
    assert!(
        !list.heatmaps.is_empty(),
        "a focused Linear shows its weight"
    );
    let t = scene.model.tensor_index[TENSOR];
    let placement = scene
        .weights
        .placements()
        .iter()
        .find(|p| p.tensor == t)
        .expect("down_proj's weight is placed");
    assert_eq!(
        (placement.view.rows, placement.view.cols),
        (64, 172),
        "[out, in] as rows × columns"
    );
    // The title strip names the tensor and its shape.
    assert!(
        list.labels
            .iter()
            .any(|l| l.text.contains("down_proj") && l.text.contains("64×172")),
        "title strip: {:?}",
        list.labels.iter().map(|l| &l.text).collect::<Vec<_>>()
    );
}

#[test]
fn zooming_to_one_weight_writes_its_exact_value_and_hover_reads_it() {
    let Some(mut scene) = scene() else { return };
    let (row, col) = (9, 100);
    let cam = scene
        .focus_camera(&format!("{TENSOR}[{row},{col}]"), VIEWPORT)
        .unwrap();
    let list = scene.decorated_cut(&cam, &ViewState::default(), 1e9);
    let want = exact(&scene, row, col);
    assert!(want != 0.0, "row 9 is a live row");

    // Hover at the centre of the screen reads that very value from the file.
    let hit = scene.weights.hit(&scene.model, cam.center).unwrap();
    assert_eq!((hit.row, hit.col), (row, col));
    assert_eq!(hit.value, want);

    // The value is written in its cell: the label nearest the screen centre.
    let center = (cam.center - list.origin).as_vec2();
    let nearest = list
        .labels
        .iter()
        .min_by(|a, b| a.pos.distance(center).total_cmp(&b.pos.distance(center)))
        .unwrap();
    let cell_px = cam.zoom
        * scene
            .weights
            .placements()
            .iter()
            .find(|p| p.rect.contains(cam.center))
            .map(|p| p.rect.size().x / p.view.cols as f64)
            .unwrap();
    assert_eq!(nearest.text, format_value(want as f32, cell_px));
    // About 9 cells across, all written: a neighbour's value is there too.
    let right = format_value(exact(&scene, row, col + 1) as f32, cell_px);
    assert!(list.labels.iter().any(|l| l.text == right));
}

#[test]
fn the_planted_dead_row_is_white_in_place_and_a_live_row_is_coloured() {
    let Some(mut scene) = scene() else { return };
    let Some(ctx) = common::gpu() else { return };
    let mut pixel = |row: u64| {
        let cam = scene
            .focus_camera(&format!("{TENSOR}[{row},50]"), VIEWPORT)
            .unwrap();
        let img = scene.render(&ctx, &cam, &ViewState::default()).unwrap();
        // A third of a cell below the centre: inside the cell, clear of its value's text.
        let cell_h = img.height as f64 / 9.0;
        let (x, y) = (
            img.width / 2,
            (img.height as f64 / 2.0 + cell_h * 0.35) as u32,
        );
        let i = ((y * img.width + x) * 4) as usize;
        [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
    };
    let dead = pixel(5);
    let live = pixel(9);
    assert!(
        dead.iter().all(|&c| c > 235),
        "row 5 is all zeros: white, got {dead:?}"
    );
    let want = exact(&scene, 9, 50);
    let (r, b) = (i32::from(live[0]), i32::from(live[2]));
    if want > 0.0 {
        assert!(r > b + 8, "positive {want} is red, got {live:?}");
    } else {
        assert!(b > r + 8, "negative {want} is blue, got {live:?}");
    }
}

#[test]
fn the_window_mode_never_builds_on_the_frame_and_fills_in() {
    let Some(mut scene) = scene() else { return };
    scene.weights = InPlaceWeights::new(false);
    let cam = scene
        .focus_camera("model.layers.3.mlp.down_proj", VIEWPORT)
        .unwrap();
    let wait = |scene: &Scene, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while scene.weights.pending() > 0 {
            assert!(Instant::now() < deadline, "{what} never landed");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // First sight: the colour range is sampled from the file in the background, not on the frame.
    let first = scene.decorated_cut(&cam, &ViewState::default(), 1e9);
    assert!(
        first.heatmaps.is_empty(),
        "nothing cached yet: the first frame draws no tile"
    );
    assert!(scene.weights.placements().is_empty());
    assert!(scene.weights.pending() > 0, "the range is being sampled");
    wait(&scene, "the range");
    // With a range, the tiles are requested; they land in the background too.
    let second = scene.decorated_cut(&cam, &ViewState::default(), 1e9);
    assert!(!scene.weights.placements().is_empty());
    assert!(second.heatmaps.is_empty(), "tiles are built off the frame");
    wait(&scene, "tiles");
    let later = scene.decorated_cut(&cam, &ViewState::default(), 1e9);
    assert!(!later.heatmaps.is_empty(), "landed tiles are drawn");
    assert_ne!(
        later.revision, first.revision,
        "a new revision, so the renderer uploads"
    );
    // Zooming in further: the finer level is requested, the coarser one stands in meanwhile.
    let mut closer = cam;
    closer.zoom *= 8.0;
    let mid = scene.decorated_cut(&closer, &ViewState::default(), 1e9);
    if scene.weights.pending() > 0 {
        assert!(scene.weights.fallback_tiles() > 0);
        assert!(!mid.heatmaps.is_empty());
    }
}

/// A 64 MiB mapped weight: zooming into it hands its pages back to the kernel after each tile
/// (`MADV_DONTNEED`), and every value still reads the same afterwards; heap bytes are never released.
#[test]
fn released_pages_read_back_the_same_values() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.safetensors");
    let (rows, cols) = (4096usize, 4096usize);
    let value = |r: usize, c: usize| ((r * 31 + c * 17) % 1000) as f32 / 1000.0 - 0.5;
    let data: Vec<u8> = (0..rows * cols)
        .flat_map(|i| value(i / cols, i % cols).to_le_bytes())
        .collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows, cols], &data)
            .unwrap();
    safetensors::serialize_to_file(
        vec![("model.layers.0.mlp.down_proj.weight".to_string(), view)],
        None,
        &path,
    )
    .unwrap();
    drop(data);
    let model = modelmap::load::open(&path).unwrap();
    let t = &model.tensors[0];
    assert!(modelmap::load::is_file_mapped(t.bytes().unwrap()));
    assert!(!modelmap::load::is_file_mapped(&vec![0u8; 1 << 20]));

    let mut scene = Scene::build(
        Arc::new(model),
        LayoutChoice::Auto,
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    // The sampled overview and exact levels down to single values, at two places.
    for target in [
        "model.layers.0.mlp.down_proj".to_string(),
        "model.layers.0.mlp.down_proj.weight[2000,3000]".to_string(),
    ] {
        let mut cam = scene.focus_camera(&target, VIEWPORT).unwrap();
        for _ in 0..3 {
            let list = scene.decorated_cut(&cam, &ViewState::default(), 1e9);
            assert!(!list.heatmaps.is_empty(), "{target} at zoom {}", cam.zoom);
            cam.zoom *= 4.0;
        }
    }
    let t = scene
        .model
        .tensor("model.layers.0.mlp.down_proj.weight")
        .unwrap();
    let hv = HeatmapView::for_tensor(t);
    for (r, c) in [(0, 0), (2000, 3000), (4095, 4095), (1234, 17)] {
        assert_eq!(
            value_at(t, &hv, r as u64, c as u64).unwrap(),
            f64::from(value(r, c)),
            "({r}, {c}) after its pages were released"
        );
    }
}

#[test]
fn a_conv_node_shows_its_kernels_in_place_and_hover_names_the_4d_index() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model =
        modelmap::load::open(&corpus.join("real/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx"))
            .unwrap();
    let mut scene = Scene::build(
        Arc::new(model),
        LayoutChoice::Auto,
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    let name = "conv1_weights"; // [8, 3, 3, 3]
    let model = scene.model.clone();
    let t = model.tensor(name).unwrap();
    let view = HeatmapView::for_display(t);
    assert_eq!(
        (view.rows, view.cols),
        (24, 9),
        "8 rows of 3 kernels, 3×3 each"
    );
    // Grid cell (row 7, col 4) is output 2, input 1, kernel row 1, kernel column 1.
    let (row, col) = (7, 4);
    let cam = scene
        .focus_camera(&format!("{name}[{row},{col}]"), VIEWPORT)
        .unwrap();
    let list = scene.decorated_cut(&cam, &ViewState::default(), 1e9);
    let hit = scene.weights.hit(&scene.model, cam.center).unwrap();
    assert_eq!((hit.row, hit.col), (row, col));
    assert_eq!(hit.index, vec![2, 1, 1, 1]);
    let flat = HeatmapView::for_tensor(t);
    let want = value_at(t, &flat, 2, 9 + 3 + 1).unwrap();
    assert_eq!(hit.value, want);
    // The title strip says what the grid is.
    assert!(
        list.labels
            .iter()
            .any(|l| l.text.contains("8×3 kernels 3×3")),
        "title: {:?}",
        list.labels.iter().map(|l| &l.text).collect::<Vec<_>>()
    );
}

#[test]
fn shapes_and_indices_are_not_drawn_as_weights() {
    // The zoo's light ResNet-50: every ConstantOfShape holds its I64 target shape (`[64, 3, 7, 7]`),
    // a BatchNormalization its f32 scale, bias, mean and variance. A heatmap of four integers hid
    // the generator's name and showed nothing a reader wants; the BatchNorm's statistics are weights.
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model = modelmap::load::open(&corpus.join("real/onnx_light/light_resnet50.onnx")).unwrap();
    let scene = Scene::build(
        Arc::new(model),
        LayoutChoice::Auto,
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    let mut weights = InPlaceWeights::new(true);
    let (mut shapes, mut norms) = (0, 0);
    for (i, n) in scene.model.graph.nodes.iter().enumerate() {
        let has_tensor = !n.tensors.is_empty();
        match &*n.op {
            "ConstantOfShape" if has_tensor => {
                assert_eq!(
                    weights.main_tensor(&scene.model, i as u32),
                    None,
                    "{}",
                    n.name
                );
                shapes += 1;
            }
            "BatchNormalization" if has_tensor => {
                let t = weights
                    .main_tensor(&scene.model, i as u32)
                    .expect("BN statistics");
                assert_eq!(
                    scene.model.tensors[t as usize].dtype,
                    modelmap::model::DType::F32
                );
                norms += 1;
            }
            _ => {}
        }
    }
    assert!(
        shapes > 100 && norms >= 5,
        "{shapes} generators, {norms} batch norms"
    );
}
