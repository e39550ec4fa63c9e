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
    let overlay = d.overlay().values;
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
    assert_eq!(
        values.0.values.iter().filter(|x| x.is_finite()).count(),
        258
    );
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

/// `#rrggbb` as opaque RGBA.
fn hex(c: &str) -> [u8; 4] {
    let n = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap();
    [(n >> 16) as u8, (n >> 8) as u8, n as u8, 255]
}

/// Files that choose their own colours (written by Model Explorer's `node_data_builder`,
/// `make_node_colours.py`) colour every node as Model Explorer's own web app code does.
#[test]
fn a_files_own_colours_are_drawn_as_model_explorer_draws_them() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model =
        modelmap::load::open(&corpus.join("real/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx"))
            .unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("colours.json")).unwrap()).unwrap();
    for (file, colours) in expected["colours"].as_object().unwrap() {
        let text = std::fs::read_to_string(data(file)).unwrap();
        let d = modelmap::stats::node_data::parse(&text, file, &model).unwrap();
        assert!(d.notes.is_empty(), "{file}: {:?}", d.notes);
        let overlay = d.overlay();
        let mut transparent = 0;
        for (key, c) in colours.as_object().unwrap() {
            let node = common::node_id(&model, key) as usize;
            let c = c.as_str().unwrap();
            let want = if c == "transparent" {
                transparent += 1;
                modelmap::lod::NO_BAND
            } else {
                hex(c)
            };
            assert_eq!(overlay.fill(node), Some(want), "{file}: {key}");
        }
        assert_eq!(colours.as_object().unwrap().len(), 258, "{file}");
        match file.as_str() {
            "ppocr_thresholds.json" => {
                // The slowest nodes lie above the last threshold.
                assert_eq!(transparent, 13);
                let slowest = common::node_id(&model, expected["slowest"].as_str().unwrap());
                assert_eq!(overlay.fill(slowest as usize), Some(modelmap::lod::NO_BAND));
                assert!(matches!(
                    d.legend,
                    Some(modelmap::stats::node_data::Legend::Thresholds(ref t)) if t.len() == 3
                ));
            }
            _ => {
                let own = common::node_id(&model, expected["own_colour_key"].as_str().unwrap());
                assert_eq!(overlay.fill(own as usize), Some(hex("#8a2be2")));
                let Some(modelmap::stats::node_data::Legend::Gradient(stops)) = &d.legend else {
                    panic!("{file}: {:?}", d.legend);
                };
                // Sorted by stop, from the smallest value to the largest.
                assert_eq!(stops.first().unwrap().0, d.range.0);
                assert_eq!(stops.last().unwrap(), &(d.range.1, Some(hex("#d32f2f"))));
            }
        }
    }
}

/// `render --node-data` with a file's own colours: the band holding the slowest convolution in
/// the gradient's last colour, or, past the last threshold, in none of the threshold colours.
#[test]
fn render_draws_a_files_own_colours() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    if common::gpu().is_none() {
        return;
    }
    let model_path = corpus.join("real/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx");
    let tmp = tempfile::tempdir().unwrap();
    let render = |file: &str| {
        let out = tmp.path().join(format!("{file}.png"));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_modelmap"))
            .arg("render")
            .arg(&model_path)
            .arg("--node-data")
            .arg(data(file))
            .args(["--width", "800", "--height", "600", "-o"])
            .arg(&out)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        modelmap::render::load_png(&out).unwrap()
    };
    let count = |img: &modelmap::render::RgbaImage, colour: [u8; 4]| {
        let near = |p: &[u8]| (0..3).all(|i| p[i].abs_diff(colour[i]) <= 2);
        img.pixels.chunks_exact(4).filter(|p| near(p)).count()
    };
    let red = count(&render("ppocr_gradient.json"), hex("#d32f2f"));
    assert!(red > 500, "{red} pixels of the gradient's last colour");
    // The threshold file's top band is red too (#e53935), but every closed band holds a node
    // past it, so each is drawn in the neutral fill, its nodes' bands in the strip along its
    // bottom edge (the middle band, orange, in every one).
    let thresholds = render("ppocr_thresholds.json");
    let top_band = count(&thresholds, hex("#e53935"));
    let orange = count(&thresholds, hex("#ffa500"));
    let neutral = count(&thresholds, modelmap::lod::NO_BAND);
    assert!(orange > 100, "{orange} orange pixels");
    assert!(top_band < orange, "{top_band} vs {orange}");
    assert!(neutral > 10 * orange, "{neutral} neutral pixels");
}
