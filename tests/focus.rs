//! `--focus` names: group paths with their separators mixed, and the names offered when nothing
//! matches.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

mod common;

use std::sync::Arc;

use glam::DVec2;
use modelmap::scene::{LayoutChoice, Scene};

const VIEWPORT: DVec2 = DVec2::new(1280.0, 800.0);

#[test]
fn a_misspelt_name_is_answered_with_the_closest_ones() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keras/cnn_legacy.h5"
    );
    let model = modelmap::load::open(std::path::Path::new(path)).unwrap();
    // One edit away, and a containing name, in that order of closeness.
    assert_eq!(
        model.near_names("conv/kernal"),
        "; did you mean \"conv/kernel\"?"
    );
    let hint = model.near_names("moving_mean");
    assert!(
        hint.starts_with("; did you mean \"bn/moving_mean\""),
        "{hint}"
    );
    assert!(hint.contains("\"bn2/moving_mean\""), "{hint}");
    // Nothing near: no hint.
    assert_eq!(model.near_names("qqqqzzzzxx"), "");
}

#[test]
fn a_dotted_module_path_finds_the_onnx_group_and_a_near_miss_names_it() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model = modelmap::load::open(&corpus.join("generated/llama_tiny_4l.onnx")).unwrap();
    let scene = Scene::build(
        Arc::new(model),
        LayoutChoice::Auto,
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    // The export names the group `model/layers.0`; a PyTorch user types `model.layers.0`.
    let slash = scene.focus_camera("model/layers.0", VIEWPORT).unwrap();
    let dotted = scene.focus_camera("model.layers.0", VIEWPORT).unwrap();
    assert_eq!(slash.center, dotted.center);
    assert_eq!(slash.zoom, dotted.zoom);
    let other = scene.focus_camera("model.layers.1", VIEWPORT).unwrap();
    assert_ne!(slash.center, other.center);

    let e = scene
        .focus_camera("model.layer.1", VIEWPORT)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nothing named \"model.layer.1\"")
            && e.contains("did you mean \"model/layers.1\""),
        "{e}"
    );
}
