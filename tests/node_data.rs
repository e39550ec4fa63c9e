//! Colouring the graph by a Model Explorer node data file: a real onnxruntime profile of the
//! corpus's PP-OCR direction classifier (`tests/data/node_data/make_node_data.py`: each node's mean
//! kernel time over 20 runs, keyed by node name) laid over the model, headless and in the window.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::PathBuf;

use modelmap::app::state::AppState;
use modelmap::stats::overlay::Figure;

const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/node_data")
        .join(name)
}

fn facts() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data("facts.json")).unwrap()).unwrap()
}

#[test]
fn a_profile_colours_the_nodes_it_timed() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model =
        modelmap::load::open(&corpus.join("real/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx"))
            .unwrap();
    let text = std::fs::read_to_string(data("ppocr_latency.json")).unwrap();
    let d = modelmap::stats::node_data::parse(&text, "ppocr_latency.json", &model).unwrap();
    let f = facts();
    // Every timed node is in the model (the 308 Constant nodes run no kernel and have no value).
    assert_eq!(d.matched as u64, f["nodes"].as_u64().unwrap());
    assert_eq!(d.unmatched, 0);
    assert_eq!(
        d.values.iter().flatten().count() as u64,
        f["nodes"].as_u64().unwrap()
    );
    let slowest = common::node_id(&model, f["slowest"].as_str().unwrap()) as usize;
    assert_eq!(d.values[slowest], f["slowest_us"].as_f64());
    let overlay = d.overlay();
    assert_eq!(overlay[slowest], 1.0);
    let constant = model
        .graph
        .nodes
        .iter()
        .position(|n| &*n.op == "Constant")
        .unwrap();
    assert!(overlay[constant].is_nan());
}

#[test]
fn the_window_and_render_take_a_node_data_file() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model_path = corpus.join("real/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let mut app = AppState::new(glam::DVec2::new(1200.0, 800.0), std::sync::Arc::new(|| {}));
    // As `modelmap FILE --node-data D` does: applied once the tab has loaded.
    let tab = app.open_path(model_path.clone());
    app.pending_node_data = Some((tab, data("ppocr_latency.json")));
    assert!(app.wait_idle(WAIT));
    let v = app.active_view().unwrap();
    let (figure, values) = v.overlay.as_ref().unwrap();
    assert_eq!(*figure, Figure::NodeData);
    assert_eq!(values.0.iter().filter(|x| x.is_finite()).count(), 258);
    assert_eq!(v.node_data.as_ref().unwrap().0, "ppocr_latency.json");
    // A file that names nothing in the model: the status line says so, naming it.
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other.json");
    std::fs::write(&other, r#"{"results": {"nope": {"value": 1}}}"#).unwrap();
    app.apply_node_data(&other);
    let last = app.messages.last().unwrap();
    assert!(
        last.contains("other.json") && last.contains("none of its 1 keys"),
        "{last}"
    );
    // The overlay chosen before stays.
    assert_eq!(
        app.active_view().unwrap().overlay.as_ref().unwrap().0,
        Figure::NodeData
    );

    if common::gpu().is_none() {
        return;
    }
    let out = tmp.path().join("latency.png");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_modelmap"))
        .arg("render")
        .arg(&model_path)
        .arg("--node-data")
        .arg(data("ppocr_latency.json"))
        .arg("-o")
        .arg(&out)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("258 of the file's keys matched nodes"),
        "{said}"
    );
    // The band holding the slowest convolution is drawn at the red end of the scale.
    let img = modelmap::render::load_png(&out).unwrap();
    let red = img
        .pixels
        .chunks_exact(4)
        .filter(|p| p[0] > 200 && p[1] < 60 && p[2] < 60)
        .count();
    assert!(red > 1000, "{red} red pixels");
}
