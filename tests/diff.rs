//! `modelmap diff`: what changed between two checkpoints, checked against torch's figures for a
//! real fine-tune (`tests/data/diff/make_diff.py`: a bf16 LLaMA saved by transformers, and an f32
//! DistributedDataParallel state dict after eight AdamW steps) and against a value planted in a
//! copy of a corpus checkpoint.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::{Path, PathBuf};

use modelmap::app::state::{AppState, TabContent};
use modelmap::model::Model;
use modelmap::stats::diff::{ModelDiff, diff_models};
use modelmap::stats::overlay::Figure;

const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/diff")
}

fn open(path: &Path) -> Model {
    modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A facts file of `tests/data/diff`, parsed.
fn facts(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

fn diff(a: &Path, b: &Path) -> ModelDiff {
    diff_models(&open(a), &open(b), &|_, _| {}, &|| false)
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1e-12),
        "{what}: {got} against torch's {want}"
    );
}

/// Checks a pair's figures against its entry in a facts file: values changed, ‖B − A‖, the
/// largest change and, where something changed, the relative change, the cosine (when the
/// entry has one) and where the largest change is.
fn assert_figures(t: &modelmap::stats::diff::TensorDiff, f: &serde_json::Value) {
    let ctx = &t.name;
    assert_eq!(t.changed, f["changed"].as_u64().unwrap(), "{ctx}");
    close(t.diff_norm, f["diff_norm"].as_f64().unwrap(), ctx);
    close(
        t.max_abs_diff,
        f["max_abs_diff"].as_f64().unwrap(),
        &format!("{ctx} max |Δ|"),
    );
    if t.changed == 0 {
        assert!(t.identical() && t.max_at.is_empty(), "{ctx}");
        assert_eq!(t.rel_change, Some(0.0));
        return;
    }
    close(
        t.rel_change.unwrap(),
        f["rel_change"].as_f64().unwrap(),
        ctx,
    );
    if let Some(c) = f["cosine"].as_f64() {
        close(t.cosine.unwrap(), c, ctx);
    }
    assert_eq!(t.max_at, common::json_dims(&f["max_at"]), "{ctx}");
}

#[test]
fn a_fine_tune_changes_what_torch_says_it_changed() {
    let d = diff(&dir().join("base"), &dir().join("tuned.pt"));
    let facts = facts("facts.json");
    let tensors = facts["tensors"].as_object().unwrap();
    // Every base name pairs with its `module.`-prefixed twin; the new head is B's alone.
    assert_eq!(d.tensors.len(), tensors.len());
    assert_eq!(d.renamed, tensors.len());
    assert!(d.only_a.is_empty() && d.shape_mismatch.is_empty() && d.errors.is_empty());
    assert_eq!(d.only_b, common::json_strings(&facts["only_b"]));
    for t in &d.tensors {
        let f = &tensors[&t.name];
        let ctx = &t.name;
        assert_eq!(t.name_b.as_deref(), Some(format!("module.{ctx}").as_str()));
        assert_eq!((t.dtype_a.as_str(), t.dtype_b.as_str()), ("BF16", "F32"));
        assert_eq!(t.count, f["count"].as_u64().unwrap(), "{ctx}");
        close(t.norm_a, f["norm_a"].as_f64().unwrap(), ctx);
        assert!(
            (t.mean_diff - f["mean_diff"].as_f64().unwrap()).abs() < 1e-15,
            "{ctx}: mean Δ {}",
            t.mean_diff
        );
        assert_figures(t, f);
    }
    // Layer 0, the embedding and lm_head were frozen; everything of layer 1 and the final norm
    // moved, and the matrices ranked above the norms.
    assert_eq!(d.identical(), 11);
    let first = &d.tensors[0].name;
    assert!(first.starts_with("model.layers.1.") && first.ends_with("_proj.weight"));
    assert!(d.tensors[..10].iter().all(|t| !t.identical()));
}

#[test]
fn the_cli_prints_the_most_changed_first_and_json_on_request() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelmap"))
            .arg("diff")
            .arg(dir().join("base/model.safetensors"))
            .arg(dir().join("tuned.pt"))
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&[]);
    assert!(
        text.contains("10 tensors changed (37056 values), 11 identical"),
        "{text}"
    );
    assert!(
        text.contains("only in B (1): module.classifier.weight"),
        "{text}"
    );
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("tensor"))
        .collect();
    assert_eq!(table.len(), 11, "{text}");
    assert!(table[1].contains("BF16→F32"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&run(&["--json", "--all"])).unwrap();
    assert_eq!(json["identical"], 11);
    assert_eq!(json["tensors"].as_array().unwrap().len(), 21);
}

#[test]
fn one_planted_value_in_a_corpus_checkpoint_is_found() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let file = corpus.join("generated/llama_tiny_st/model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let name = "model.layers.3.mlp.down_proj.weight";
    let entry = &header[name];
    assert_eq!(entry["dtype"], "F32");
    let cols = entry["shape"][1].as_u64().unwrap() as usize;
    let begin = entry["data_offsets"][0].as_u64().unwrap() as usize;
    let at = 8 + n + begin + 4 * (7 * cols + 11);
    let before = f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    bytes[at..at + 4].copy_from_slice(&1.5f32.to_le_bytes());
    let tmp = tempfile::tempdir().unwrap();
    let patched = tmp.path().join("model.safetensors");
    std::fs::write(&patched, &bytes).unwrap();

    let d = diff(&file, &patched);
    assert_eq!(d.renamed, 0);
    assert_eq!(d.tensors.len(), header.as_object().unwrap().len() - 1);
    assert_eq!(d.identical(), d.tensors.len() - 1);
    let t = &d.tensors[0];
    assert_eq!(t.name, name);
    assert_eq!((t.changed, t.max_at.as_slice()), (1, &[7, 11][..]));
    assert_eq!((t.max_a, t.max_b), (f64::from(before), 1.5));
    close(t.max_abs_diff, (1.5 - f64::from(before)).abs(), "max |Δ|");
    close(
        t.mean_diff,
        (1.5 - f64::from(before)) / t.count as f64,
        "mean Δ",
    );
}

#[test]
fn a_truncated_side_is_an_error_naming_its_file() {
    let tmp = common::copy_folder(&dir());
    let cut = tmp.path().join("tuned.pt");
    common::cut_in_half(&cut);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelmap"))
        .arg("diff")
        .arg(tmp.path().join("base"))
        .arg(&cut)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&cut.display().to_string()), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_window_shows_b_minus_a_in_a_new_tab_coloured_by_change() {
    let mut app = AppState::new(glam::DVec2::new(1200.0, 800.0), std::sync::Arc::new(|| {}));
    assert!(
        app.compare_with(dir().join("tuned.pt")).is_none(),
        "no model shown yet"
    );
    app.open_path(dir().join("base"));
    assert!(app.wait_idle(WAIT));
    app.compare_with(dir().join("tuned.pt")).unwrap();
    assert!(app.wait_idle(WAIT));
    assert_eq!(app.tabs.len(), 2);
    assert_eq!(app.active, 1);
    assert_eq!(app.active_tab().unwrap().title, "tuned.pt − base");
    let v = app.active_view().unwrap();
    let c = v.diff.as_ref().unwrap();
    assert_eq!(c.diff.identical(), 11);
    let (figure, overlay) = v.overlay.as_ref().unwrap();
    assert_eq!(*figure, Figure::Change);
    let node = |name: &str| common::node_id(&v.model, name) as usize;
    // Layer 0 was frozen: the bottom of the scale; layer 1's projections moved the most.
    assert_eq!(
        overlay.0.values[node("model.layers.0.self_attn.q_proj")],
        0.0
    );
    let q1 = overlay.0.values[node("model.layers.1.self_attn.q_proj")];
    let norm1 = overlay.0.values[node("model.layers.1.input_layernorm")];
    assert!(q1 > 0.9 && (0.25..0.5).contains(&norm1), "{q1} {norm1}");
    // The view's tensors hold B − A: their statistics are those of the change.
    let facts = facts("facts.json");
    let name = "model.layers.1.self_attn.q_proj.weight";
    let fact = &facts["tensors"][name];
    let t = v.model.tensor(name).unwrap();
    let s = modelmap::stats::tensor_stats(t).unwrap();
    assert_eq!(s.dtype, "F32");
    assert!(
        (s.l2 / fact["diff_norm"].as_f64().unwrap() - 1.0).abs() < 1e-6,
        "{}",
        s.l2
    );
    assert!(
        (s.abs_max.unwrap() / fact["max_abs_diff"].as_f64().unwrap() - 1.0).abs() < 1e-6,
        "{:?}",
        s.abs_max
    );
    let id = v.model.tensor_index[name];
    assert_eq!(c.tensor(id).unwrap().name, name);

    // A second checkpoint that cannot be read leaves an error tab naming it.
    let tmp = common::copy_folder(&dir());
    let cut = tmp.path().join("tuned.pt");
    common::cut_in_half(&cut);
    app.active = 0;
    app.compare_with(cut.clone()).unwrap();
    assert!(app.wait_idle(WAIT));
    match &app.active_tab().unwrap().content {
        TabContent::Failed { message } => {
            assert!(message.contains(&cut.display().to_string()), "{message}")
        }
        _ => panic!("expected an error tab"),
    }
}

#[test]
fn render_diff_colours_changed_layers_red_and_frozen_ones_blue() {
    if common::gpu().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let render = |out: &str, extra: &[&str]| {
        let path = tmp.path().join(out);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_modelmap"))
            .arg("render")
            .arg(dir().join("base"))
            .args(["--width", "600", "--height", "400", "-o"])
            .arg(&path)
            .args(extra)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let img = modelmap::render::load_png(&path).unwrap();
        // Pixels of the overlay's two ends: red (most changed) and blue (unchanged).
        let (mut red, mut blue) = (0, 0);
        for p in img.pixels.chunks_exact(4) {
            red += usize::from(p[0] > 200 && p[1] < 60 && p[2] < 60);
            blue += usize::from(p[2] > 200 && p[0] < 60 && p[1] < 120);
        }
        (red, blue, String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let (red, blue, _) = render("plain.png", &[]);
    assert_eq!(red, 0, "op colours alone have no overlay red");
    let tuned = dir().join("tuned.pt");
    let (red, blue_diff, said) = render("diff.png", &["--diff", tuned.to_str().unwrap()]);
    assert!(said.contains("10 of 21 compared tensors changed"), "{said}");
    // Layer 1's two blocks are red, layer 0's blue: about as much of each.
    assert!(red > 5_000, "{red} red pixels");
    assert!(
        blue_diff > blue + 5_000,
        "{blue_diff} blue pixels (without --diff {blue})"
    );
}

#[test]
fn a_gguf_conversion_is_compared_with_its_original_tensor_by_tensor() {
    // llama.cpp's names, innermost-first shapes and interleaved q/k rows all read as the
    // Hugging Face original's: what is left is the quantization error, as gguf-py measures it.
    let (hf, q) = (dir().join("hf"), dir().join("llama_q.gguf"));
    let facts = facts("gguf_facts.json");
    let facts = facts.as_object().unwrap();
    let d = diff(&hf, &q);
    assert_eq!(d.tensors.len(), facts.len());
    assert!(d.only_a.is_empty() && d.only_b.is_empty() && d.shape_mismatch.is_empty());
    assert_eq!(d.identical(), 3);
    for t in &d.tensors {
        let f = &facts[&t.name];
        let ctx = &t.name;
        assert_eq!(t.name_b.as_deref(), f["gguf"].as_str(), "{ctx}");
        assert_figures(t, f);
    }
    // Q4_0 loses about 17× what Q8_0 does.
    assert!(d.tensors[0].name.contains(".mlp."));
    // The other way round: the same differences, indexed in the GGUF's own order.
    let back = diff(&q, &hf);
    for t in &back.tensors {
        let name_b = t.name_b.as_deref().unwrap();
        close(
            t.diff_norm,
            facts[name_b]["diff_norm"].as_f64().unwrap(),
            name_b,
        );
        assert_eq!(t.changed, facts[name_b]["changed"].as_u64().unwrap());
    }
    // The tab of B − A reads q's rows through the same map: its largest value is torch's.
    let (a, b) = (open(&hf), open(&q));
    let m = modelmap::stats::diff::delta_model(&a, &b, &d);
    let name = "model.layers.0.self_attn.k_proj.weight";
    let s = modelmap::stats::tensor_stats(m.tensor(name).unwrap()).unwrap();
    let want = facts[name]["max_abs_diff"].as_f64().unwrap();
    assert!((s.abs_max.unwrap() / want - 1.0).abs() < 1e-6);
    assert!((s.l2 / facts[name]["diff_norm"].as_f64().unwrap() - 1.0).abs() < 1e-6);
}

#[test]
fn a_lora_adapter_is_merged_into_its_base_as_peft_merges_it() {
    let (base, lora) = (dir().join("base"), dir().join("lora"));
    let facts = facts("lora_facts.json");
    let facts = facts.as_object().unwrap();
    let adapter = open(&lora);
    assert_eq!(common::property(&adapter, "peft.peft_type"), Some("LORA"));
    assert_eq!(
        common::property(&adapter, "peft.rank_pattern"),
        Some(r#"{"down_proj":2}"#)
    );
    let a = open(&base);
    let b = modelmap::stats::diff::counterpart(&a, adapter).unwrap();
    assert!(b.metadata.warnings.is_empty(), "{:?}", b.metadata.warnings);
    let d = diff_models(&a, &b, &|_, _| {}, &|| false);
    // q_proj, v_proj (alpha 4 by alpha_pattern) and down_proj (rank 2 by rank_pattern) of both
    // layers, and lm_head saved whole (modules_to_save); nothing else moves.
    let changed: Vec<&str> = d
        .tensors
        .iter()
        .filter(|t| !t.identical())
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(changed.len(), facts.len(), "{changed:?}");
    for t in d.tensors.iter().filter(|t| !t.identical()) {
        assert_figures(t, &facts[&t.name]);
    }
    // The window takes an adapter as the checkpoint to compare with, too.
    let mut app = AppState::new(glam::DVec2::new(1200.0, 800.0), std::sync::Arc::new(|| {}));
    app.open_path(base);
    assert!(app.wait_idle(WAIT));
    app.compare_with(lora).unwrap();
    assert!(app.wait_idle(WAIT));
    assert_eq!(app.active_tab().unwrap().title, "lora − base");
    let c = app.active_view().unwrap().diff.as_ref().unwrap();
    assert_eq!(c.diff.tensors.len() - c.diff.identical(), facts.len());
}

#[test]
fn fail_above_checks_that_a_conversion_kept_the_weights() {
    let run = |limit: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_modelmap"))
            .arg("diff")
            .arg(dir().join("hf"))
            .arg(dir().join("llama_q.gguf"))
            .args(["--fail-above", limit])
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap()
    };
    // Q8_0 loses 0.5 %, Q4_0 8.6 %: the three Q4_0 MLP weights are over 1 %.
    let out = run("0.01");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("3 tensors changed by more than 1e-2 relative, the most model.layers.0.mlp.up_proj.weight"),
        "{err}"
    );
    let out = run("0.1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("9 tensors changed"));
}

#[test]
fn hovering_a_change_whose_bytes_are_not_made_yet_never_makes_them_on_the_frame() {
    use modelmap::scene::{InPlaceWeights, LayoutChoice, Scene};
    let (a, b) = (open(&dir().join("base")), open(&dir().join("tuned.pt")));
    let d = diff_models(&a, &b, &|_, _| {}, &|| false);
    let delta = modelmap::stats::diff::delta_model(&a, &b, &d);
    let name = "model.layers.1.mlp.down_proj.weight";
    let mut scene = Scene::build(
        std::sync::Arc::new(delta),
        LayoutChoice::Auto,
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    scene.weights = InPlaceWeights::new(false);
    let cam = scene
        .focus_camera(&format!("{name}[5,7]"), glam::DVec2::new(1280.0, 800.0))
        .unwrap();
    let want = b
        .tensor(&format!("module.{name}"))
        .unwrap()
        .small_numbers()
        .unwrap()[5 * 128 + 7]
        - a.tensor(name).unwrap().small_numbers().unwrap()[5 * 128 + 7];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        scene.decorated_cut(&cam, &modelmap::lod::ViewState::default(), 1e9);
        assert!(matches!(
            scene.model.tensor(name).unwrap().data,
            modelmap::model::TensorData::Lazy(_)
        ));
        match scene.weights.hit(&scene.model, cam.center) {
            // Read once the tile threads have made B − A.
            Some(hit) => {
                assert_eq!((hit.row, hit.col), (5, 7));
                assert!(
                    (hit.value - want).abs() <= 1e-7 * want.abs().max(1e-3),
                    "{}",
                    hit.value
                );
                break;
            }
            None => assert!(std::time::Instant::now() < deadline, "the value never came"),
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn an_onnx_exports_renamed_transposed_weights_pair_by_their_values() {
    // torch.onnx.export stores each Linear weight a MatMul reads as `onnx::MatMul_N`, transposed.
    let dir = dir().join("export");
    let facts = facts("export/facts.json");
    let held = facts["initializers"].as_object().unwrap();
    let (a, b) = (
        open(&dir.join("model.safetensors")),
        open(&dir.join("model.onnx")),
    );
    let d = diff_models(&a, &b, &|_, _| {}, &|| false);
    assert!(
        d.only_a.is_empty() && d.only_b.is_empty(),
        "{:?} {:?}",
        d.only_a,
        d.only_b
    );
    assert_eq!(d.tensors.len(), held.len());
    assert_eq!(d.by_values, 2);
    for (init, f) in held {
        let weight = f["weight"].as_str().unwrap();
        let t = d.tensors.iter().find(|t| t.name == weight).unwrap();
        assert_eq!(t.name_b.as_deref().unwrap_or(weight), init.as_str());
        assert_eq!(t.transposed, f["transposed"].as_bool().unwrap(), "{weight}");
        // Element for element the same, through the transposition.
        assert!(t.identical(), "{t:?}");
    }
    // The tab of B − A reads the transposed pair the same way: all zeros.
    let m = modelmap::stats::diff::delta_model(&a, &b, &d);
    let s = modelmap::stats::tensor_stats(m.tensor("fc1.weight").unwrap()).unwrap();
    assert_eq!((s.zeros, s.count), (2048, 2048));
}
