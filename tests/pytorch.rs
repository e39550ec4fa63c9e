//! PyTorch checkpoints (`torch.save` archives) written by real PyTorch, checked against what torch
//! itself reports for them (`tests/data/pytorch/facts.json`, written with the files by
//! `tests/data/pytorch/make_fixtures.py`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::{Path, PathBuf};

use modelmap::model::{Format, Model, TensorData};
use modelmap::stats::heatmap::{HeatmapView, value_at};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/pytorch")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(name: &str) -> Model {
    modelmap::load::open(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn open_err(path: &Path) -> String {
    match modelmap::load::open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn every_tensor_matches_what_torch_reports() {
    let facts = facts();
    let files = facts["files"].as_object().unwrap();
    assert_eq!(files.len(), 6);
    for (file, tensors) in files {
        let model = open(file);
        let format = if file == "torchscript.pt" {
            Format::TorchScript
        } else {
            Format::Torch
        };
        assert_eq!(model.format, format, "{file}");
        let tensors = tensors.as_array().unwrap();
        let names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
        let want: Vec<&str> = tensors
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        let (mut a, mut b) = (names.clone(), want.clone());
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "{file}: tensor names");
        for f in tensors {
            let name = f["name"].as_str().unwrap();
            let t = model.tensor(name).unwrap();
            let ctx = format!("{file}: {name}");
            let dtype = match t.dtype.name() {
                "F64" => "float64",
                "F32" => "float32",
                "F16" => "float16",
                "BF16" => "bfloat16",
                "I64" => "int64",
                "I8" => "int8",
                "BOOL" => "bool",
                other => other,
            };
            assert_eq!(dtype, f["dtype"].as_str().unwrap(), "{ctx}: dtype");
            assert_eq!(t.shape, common::json_dims(&f["shape"]), "{ctx}: shape");
            // Strided views (a transposed weight, a slice) are copied into row-major order.
            assert!(
                matches!(t.data, TensorData::Bytes(_)),
                "{ctx}: {:?} (contiguous: {})",
                t.data,
                f["contiguous"]
            );
            if let Some(row0) = f.get("row0").and_then(|r| r.as_array()) {
                let view = HeatmapView::for_tensor(t);
                for (c, want) in row0.iter().enumerate() {
                    let got = value_at(t, &view, 0, c as u64).unwrap();
                    assert!(
                        close(got, want.as_f64().unwrap()),
                        "{ctx}: [0, {c}] = {got}, torch {want}"
                    );
                }
            }
            let Some(mean) = f.get("mean").and_then(|m| m.as_f64()) else {
                continue;
            };
            let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            for (what, ours, theirs) in [
                ("mean", s.mean.unwrap(), mean),
                ("std", s.std.unwrap(), f["std"].as_f64().unwrap()),
                ("min", s.min.unwrap(), f["min"].as_f64().unwrap()),
                ("max", s.max.unwrap(), f["max"].as_f64().unwrap()),
                ("zeros", s.zeros as f64, f["zeros"].as_f64().unwrap()),
            ] {
                assert!(
                    close(ours, theirs),
                    "{ctx}: {what} {ours} vs torch {theirs}"
                );
            }
        }
    }
}

#[test]
fn a_llama_state_dict_reads_as_its_modules() {
    for (path, layers_bytes) in [("tiny_llama.pt", None), ("sharded", Some(2))] {
        let model = open(path);
        let ids = |prefix: &str| {
            model
                .graph
                .nodes
                .iter()
                .filter(|n| n.name.starts_with(prefix))
                .count()
        };
        // Two decoder layers, each with attention and MLP modules, chained in dataflow order.
        assert!(
            ids("model.layers.0.") >= 7 && ids("model.layers.1.") >= 7,
            "{path}"
        );
        assert!(
            model.graph.edges.len() >= 20,
            "{path}: {} edges",
            model.graph.edges.len()
        );
        if let Some(shards) = layers_bytes {
            assert_eq!(model.metadata.shards, shards);
            assert_eq!(
                model.metadata.architecture.as_deref(),
                Some("LlamaForCausalLM")
            );
        }
    }
    // The tied head shares the embedding's bytes (one storage, two names).
    let model = open("tiny_llama.pt");
    let bytes = |n: &str| match &model.tensor(n).unwrap().data {
        TensorData::Bytes(b) => b.as_ptr(),
        other => panic!("{n}: {other:?}"),
    };
    assert_eq!(bytes("lm_head.weight"), bytes("model.embed_tokens.weight"));
}

#[test]
fn pickled_modules_name_their_kinds_by_class() {
    // Names alone would say Conv and Parameter for `0` and `2`; the pickle says what they are.
    let model = open("module.pt");
    let kinds: Vec<(&str, &str)> = model
        .graph
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), &*n.op))
        .collect();
    assert_eq!(
        kinds,
        [("0", "Conv1d"), ("2", "LayerNorm"), ("3", "Linear")]
    );
    // The same model scripted: its code's ops, grouped by the modules that ran them, whose
    // classes the pickle names.
    let model = open("torchscript.pt");
    let ops: Vec<(&str, &str)> = model
        .graph
        .nodes
        .iter()
        .map(|n| (&*n.op, model.hierarchy.get(n.group).unwrap().path.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("Input", ""),
            ("conv1d", "0"),
            ("relu", "1"),
            ("layer_norm", "2"),
            ("linear", "3"),
            ("Output", "")
        ]
    );
    for (path, class) in [
        ("0", "Conv1d"),
        ("1", "ReLU"),
        ("2", "LayerNorm"),
        ("3", "Linear"),
    ] {
        assert_eq!(
            model.metadata.module_classes.get(path).map(String::as_str),
            Some(class)
        );
    }
    // A state dict names no classes: kinds are guessed from names and shapes as before.
    let model = open("tiny_llama.pt");
    assert!(model.metadata.module_classes.is_empty());
    let q = model
        .graph
        .nodes
        .iter()
        .find(|n| n.name == "model.layers.0.self_attn.q_proj")
        .unwrap();
    assert_eq!(&*q.op, "Linear");
}

#[test]
fn a_training_checkpoint_keeps_its_numbers_and_optimizer() {
    let model = open("training.pth");
    let prop = |k: &str| {
        model
            .metadata
            .properties
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(prop("checkpoint.epoch"), Some("7"));
    assert_eq!(prop("checkpoint.best_acc"), Some("0.91"));
    assert_eq!(prop("checkpoint.arch"), Some("tinynet"));
    // Weights without the "state_dict." prefix; Adam's moments under "optimizer.".
    assert!(model.tensor("0.weight").is_some());
    assert!(model.tensor("optimizer.state.0.exp_avg_sq").is_some());
}

/// Pre-1.6 `torch.save` files (`_use_new_zipfile_serialization=False`), re-saved from four zip
/// fixtures by `make_legacy.py`: every tensor, module class and checkpoint property reads as in the
/// zip twin, byte for byte.
#[test]
fn legacy_format_files_read_as_their_zip_twins() {
    for name in ["tiny_llama.pt", "training.pth", "module.pt", "views.pt"] {
        let zip = open(name);
        let legacy = open(&format!("legacy_{name}"));
        let names = |m: &Model| m.tensors.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&legacy), names(&zip), "{name}");
        assert!(!zip.tensors.is_empty(), "{name}");
        for (l, z) in legacy.tensors.iter().zip(&zip.tensors) {
            assert_eq!(
                (l.dtype, &l.shape),
                (z.dtype, &z.shape),
                "{name}: {}",
                z.name
            );
            assert_eq!(l.bytes(), z.bytes(), "{name}: {}", z.name);
            assert!(l.bytes().is_some(), "{name}: {} is {:?}", l.name, l.data);
        }
        assert_eq!(
            legacy.metadata.module_classes, zip.metadata.module_classes,
            "{name}"
        );
        assert_eq!(
            legacy.metadata.properties, zip.metadata.properties,
            "{name}"
        );
    }
    let w = open("legacy.pt");
    let t = w.tensor("w").unwrap();
    assert_eq!(
        t.bytes().unwrap(),
        [1.0f32, 1.0].map(f32::to_le_bytes).concat()
    );
}

#[test]
fn a_damaged_legacy_file_is_an_error_or_tensors_with_errors_never_a_panic() {
    let bytes = std::fs::read(data_dir().join("legacy_tiny_llama.pt")).unwrap();
    let dir = std::env::temp_dir().join(format!("modelmap-legacy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cut = dir.join("cut.pt");
    let (mut errors, mut partial) = (0, 0);
    for len in (0..bytes.len()).step_by(61) {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        match modelmap::load::open(&cut) {
            Err(_) => errors += 1,
            Ok(m) => {
                // Cut among the storages: the pickles read, the storages past the cut are errors
                // for their tensors, the ones before it whole.
                let broken = m
                    .tensors
                    .iter()
                    .filter(|t| matches!(t.data, modelmap::model::TensorData::Error(_)))
                    .count();
                assert!(broken > 0, "{len} of {} bytes read whole", bytes.len());
                partial += 1;
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        errors > 0 && partial > 0,
        "{errors} errors, {partial} partial"
    );
}

/// `compressed.pt` is `views.pt` re-packed by Python's zipfile with deflate: its tensors read the
/// same, inflated instead of mapped, and a warning says so.
#[test]
fn a_repacked_archive_reads_as_the_original() {
    let packed = open("compressed.pt");
    let plain = open("views.pt");
    assert_eq!(packed.tensors.len(), plain.tensors.len());
    for (a, b) in packed.tensors.iter().zip(&plain.tensors) {
        assert_eq!((&a.name, a.dtype, &a.shape), (&b.name, b.dtype, &b.shape));
        assert!(a.bytes().is_some(), "{}: {:?}", a.name, a.data);
        assert_eq!(a.bytes(), b.bytes(), "{}", a.name);
    }
    let w = packed.metadata.warnings.join("\n");
    assert!(w.contains("re-packed with compression"), "{w}");
    assert!(
        plain
            .metadata
            .warnings
            .iter()
            .all(|w| !w.contains("re-packed"))
    );
}

#[test]
fn damaged_archives_are_errors() {
    let bytes = std::fs::read(data_dir().join("tiny_llama.pt")).unwrap();
    let dir = std::env::temp_dir().join(format!("modelmap-torch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Every truncation loses the zip's central directory (at the end): an error naming the file,
    // never a panic.
    let cut = dir.join("cut.pt");
    for len in (0..bytes.len()).step_by(97) {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        if let Ok(m) = modelmap::load::open(&cut) {
            panic!(
                "{len} of {} bytes opened with {} tensors",
                bytes.len(),
                m.tensors.len()
            );
        }
    }
    // Flipped bytes anywhere (pickle, headers, data): a model or an error, never a panic; and a
    // flip inside the pickle is an error or a model whose tensors each have data or an error.
    let mut x = 0x9e37_79b9_u32;
    let flip = dir.join("flip.pt");
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let i = x as usize % b.len();
            b[i] ^= (x >> 24) as u8 | 1;
        }
        std::fs::write(&flip, &b).unwrap();
        if let Ok(m) = modelmap::load::open(&flip) {
            for t in &m.tensors {
                let _ = modelmap::stats::tensor_stats(t);
            }
        }
    }
    // A zip that is not a checkpoint.
    let other = dir.join("other.zip");
    std::fs::write(&other, zip_with_one_file()).unwrap();
    let e = open_err(&other);
    assert!(e.contains("neither data.pkl"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stored zip archive holding `hello.txt` (written by hand: local header, data, central
/// directory, end record).
fn zip_with_one_file() -> Vec<u8> {
    let (name, body) = (b"hello.txt", b"hi");
    let crc = 0xd8932aac_u32; // crc32(b"hi")
    let mut z = Vec::new();
    z.extend(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    z.extend(crc.to_le_bytes());
    z.extend((body.len() as u32).to_le_bytes());
    z.extend((body.len() as u32).to_le_bytes());
    z.extend((name.len() as u16).to_le_bytes());
    z.extend(0u16.to_le_bytes());
    z.extend(name);
    z.extend(body);
    let cd = z.len() as u32;
    z.extend(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    z.extend(crc.to_le_bytes());
    z.extend((body.len() as u32).to_le_bytes());
    z.extend((body.len() as u32).to_le_bytes());
    z.extend((name.len() as u16).to_le_bytes());
    z.extend([0u8; 12]);
    z.extend(0u32.to_le_bytes());
    z.extend(name);
    let cd_len = z.len() as u32 - cd;
    z.extend(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    z.extend(cd_len.to_le_bytes());
    z.extend(cd.to_le_bytes());
    z.extend(0u16.to_le_bytes());
    z
}

/// Quantized tensors (`torch.quantize_per_tensor` / `quantize_per_channel`, pickled through
/// `_rebuild_qtensor`) read as the reals torch's `dequantize()` gives (printed by
/// `make_quantized.py`), per tensor with a zero point and per channel, with integer or float zero
/// points.
#[test]
fn quantized_tensors_read_as_what_dequantize_gives() {
    let m = modelmap::load::open(&data_dir().join("quantized.pt")).unwrap();
    for (name, want) in [
        ("fc.weight", [-1.45, 1.25, 0.15, 0.847_791_261_292_702_3]),
        (
            "head.weight",
            [-1.44, 1.24, 0.148_333_326_6, 0.848_938_865_357_616_3],
        ),
        (
            "conv.weight",
            [-1.5, 1.2, 0.141_666_677_47, 0.855_821_575_278_421_8],
        ),
        (
            "emb.weight",
            [
                -1.45,
                1.2,
                0.141_666_665_673_255_92,
                0.822_048_619_422_333_4,
            ],
        ),
    ] {
        let t = m.tensor(name).unwrap();
        assert!(t.quant.is_some(), "{name}: its quantizer is read");
        let s = modelmap::stats::tensor_stats(t).unwrap();
        common::assert_summary(name, &s, want, 1e-6, 1e-2);
    }
    // Hover on conv.weight[2][0]: its stored integer times row 2's scale, 0.3.
    let t = m.tensor("conv.weight").unwrap();
    let view = HeatmapView::for_tensor(t);
    let raw = f64::from(t.bytes().unwrap()[8] as i8);
    let v = value_at(t, &view, 2, 0).unwrap();
    assert!((v - raw * 0.3).abs() < 1e-6, "{v} vs {raw} × 0.3");
    // emb.weight has float zero points (15.5, 7.25, 4): [0][0] is (24 − 15.5) × 0.1 = 0.85.
    let t = m.tensor("emb.weight").unwrap();
    let q = t.quant.as_ref().unwrap();
    assert_eq!(q.zero_point, [15.5, 7.25, 4.0]);
    let v = value_at(t, &HeatmapView::for_tensor(t), 0, 0).unwrap();
    assert!((v - 0.85).abs() < 1e-6, "{v}");
}
