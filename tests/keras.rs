//! Keras models that Keras itself wrote (`.keras`, and a legacy `.h5`) and two `.h5` files laid
//! out as Keras 2 wrote them, checked against what Keras reports for them
//! (`tests/data/keras/facts.json`, written with the files by `tests/data/keras/make_keras.py`):
//! every layer call with its class and inputs, every variable with its shape and values, nested
//! models, shared layers, and the weights file read from HDF5 as h5py writes it by default and
//! with `libver="latest"` (compact groups, and groups stored densely in a fractal heap).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::PathBuf;

use modelmap::model::{AttrValue, Format, Graph, Model, NodeKind};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/keras")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(name: &str) -> Model {
    modelmap::load::open(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * (1e-3 + a.abs().max(b.abs()))
}

/// The value name modelmap gives the output `tensor` of call `node` of `layer`.
fn value_name(h: &serde_json::Value) -> String {
    let (l, n, t) = (
        h[0].as_str().unwrap(),
        h[1].as_u64().unwrap(),
        h[2].as_u64().unwrap(),
    );
    if (n, t) == (0, 0) {
        l.to_string()
    } else {
        format!("{l}:{n}:{t}")
    }
}

fn node<'a>(g: &'a Graph, name: &str) -> &'a modelmap::model::Node {
    g.nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

/// The statistics of a tensor's values, in storage order, and its first values.
fn values(model: &Model, id: u32) -> (Vec<u64>, f64, f64, f64, f64, Vec<f64>) {
    let t = &model.tensors[id as usize];
    let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{}: {e}", t.name));
    let elem = modelmap::stats::decode::Elem::of(t.dtype).unwrap();
    let first = (0..t.elements().min(6))
        .map(|i| elem.value_at(t.bytes().unwrap(), i).unwrap())
        .collect();
    (
        t.shape.clone(),
        s.mean.unwrap(),
        s.std.unwrap(),
        s.min.unwrap(),
        s.max.unwrap(),
        first,
    )
}

#[test]
fn every_layer_and_variable_matches_what_keras_reports() {
    let facts = facts();
    let files = facts.as_object().unwrap();
    assert_eq!(files.len(), 8);
    for (file, f) in files {
        let model = open(file);
        assert_eq!(model.format, Format::Keras, "{file}");
        let g = &model.graph;
        assert_eq!(g.name, f["name"].as_str().unwrap(), "{file}");
        assert_eq!(
            model.parameter_count(),
            f["parameters"].as_u64().unwrap(),
            "{file}: parameters (count_params)"
        );
        let sequential = f["class"] == "Sequential";
        let nested: Vec<&str> = f["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| matches!(l["class"].as_str(), Some("Sequential" | "Functional")))
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        // A Sequential model's input layer is in its config, not in `model.layers`.
        let mut previous: Option<String> = g
            .nodes
            .iter()
            .find(|n| sequential && n.kind == NodeKind::Input)
            .map(|n| n.name.clone());
        for layer in f["layers"].as_array().unwrap() {
            let name = layer["name"].as_str().unwrap();
            let class = layer["class"].as_str().unwrap();
            let ctx = format!("{file}: {name}");
            // The calls: a Sequential model is a chain (the layers Keras rebuilt while loading
            // record extra calls, which its config does not hold).
            let calls: Vec<Vec<String>> = if sequential {
                vec![previous.iter().cloned().collect()]
            } else {
                layer["calls"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_array().unwrap().iter().map(value_name).collect())
                    .collect()
            };
            if class == "InputLayer" {
                let n = node(g, name);
                assert_eq!(n.kind, NodeKind::Input, "{ctx}");
                previous = Some(name.to_string());
                continue;
            }
            // A model used as a layer is laid out inline: a group of its layers, its inputs
            // read by them, its weights owned by them.
            if matches!(class, "Sequential" | "Functional") {
                let group = model
                    .hierarchy
                    .find(name)
                    .unwrap_or_else(|| panic!("{ctx}: no group"));
                let mut ids: Vec<u32> = g
                    .nodes
                    .iter()
                    .filter(|n| n.group == group)
                    .flat_map(|n| n.tensors.iter().copied())
                    .collect();
                ids.sort_unstable();
                assert_eq!(
                    ids.len(),
                    layer["weights"].as_array().unwrap().len(),
                    "{ctx}"
                );
                previous = Some(name.to_string());
                continue;
            }
            for (k, want) in calls.iter().enumerate() {
                let call = if k == 0 {
                    name.to_string()
                } else {
                    format!("{name} (call {k})")
                };
                let n = node(g, &call);
                assert_eq!(&*n.op, class, "{ctx}: class");
                let got: Vec<String> = n
                    .inputs
                    .iter()
                    .map(|v| g.values[v.unwrap() as usize].name.clone())
                    .collect();
                // A value a nested model computed is its last layer's output (`block/inner`).
                let same = got.len() == want.len()
                    && got.iter().zip(want).all(|(a, b)| {
                        a == b || (nested.contains(&b.as_str()) && a.starts_with(&format!("{b}/")))
                    });
                assert!(same, "{ctx}: call {k} inputs {got:?}, Keras says {want:?}");
                if k > 0 {
                    assert!(n.tensors.is_empty(), "{ctx}: a second call owns no weights");
                }
            }
            previous = Some(name.to_string());
            // Variables: the first call's node owns them (a nested model's inner layers own
            // theirs, inside its graph), with the same shapes and values as Keras's, as a set
            // (sub-layers are stored by their attribute names, not in Keras's order).
            let first = node(g, name);
            let mut ids: Vec<u32> = first.tensors.clone();
            for s in g
                .subgraphs
                .iter()
                .filter(|s| g.nodes[s.owner as usize].name == name)
            {
                let inside = &g.nodes[s.nodes.start as usize..s.nodes.end as usize];
                ids.extend(inside.iter().flat_map(|n| n.tensors.iter().copied()));
            }
            let weights = layer["weights"].as_array().unwrap();
            assert_eq!(ids.len(), weights.len(), "{ctx}: variable count");
            let mut ours: Vec<_> = ids.iter().map(|&t| values(&model, t)).collect();
            for w in weights {
                let path = w["path"].as_str().unwrap();
                let shape: Vec<u64> = w["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect();
                let first: Vec<f64> = w["first"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                let at = ours
                    .iter()
                    .position(|o| {
                        o.0 == shape
                            && close(o.1, w["mean"].as_f64().unwrap())
                            && close(o.2, w["std"].as_f64().unwrap())
                            && close(o.3, w["min"].as_f64().unwrap())
                            && close(o.4, w["max"].as_f64().unwrap())
                            && o.5.iter().zip(&first).all(|(a, b)| close(*a, *b))
                    })
                    .unwrap_or_else(|| panic!("{ctx}: no variable like {path} {shape:?}"));
                ours.remove(at);
                // Own variables of the common layers are named as Keras names them.
                if !path.contains("/query/")
                    && !path.contains("/key/")
                    && !path.contains("/value/")
                    && !path.contains("/attention_output/")
                {
                    assert!(
                        model.tensor(path).is_some(),
                        "{ctx}: no tensor named {path}"
                    );
                }
            }
        }
    }
}

#[test]
fn nested_models_shared_layers_and_conv_kernels() {
    let model = open("nested.keras");
    let g = &model.graph;
    // The Sequential block is laid out inline, a group holding its Dense, which owns its
    // weights and reads what the block was called on.
    let group = model.hierarchy.find("block").unwrap();
    let dense = node(g, "block/inner");
    assert_eq!(dense.group, group);
    assert_eq!(model.metadata.module_classes["block"], "Sequential");
    let names: Vec<&str> = dense
        .tensors
        .iter()
        .map(|&t| model.tensors[t as usize].name.as_str())
        .collect();
    assert_eq!(names, ["inner/kernel", "inner/bias"]);
    let from = |to: &str| -> Vec<&str> {
        g.edges
            .iter()
            .filter(|e| {
                let n = &g.nodes[e.to as usize];
                n.name == to && n.kind == NodeKind::Op
            })
            .map(|e| g.nodes[e.from as usize].name.as_str())
            .collect()
    };
    assert_eq!(from("block/inner"), ["cat"]);
    assert_eq!(from("mha"), ["block/inner", "block/inner"]);
    // The shared Dense: two calls, edges from both inputs.
    let cat = node(g, "cat");
    let producers = from("cat");
    assert_eq!(cat.inputs.len(), 2);
    assert!(producers.contains(&"shared") && producers.contains(&"shared (call 1)"));
    // Attention's sub-layers are named by their Keras names.
    assert!(model.tensor("mha/query/0").is_some());

    // A Conv2D kernel [kh, kw, in, out] is drawn as out × in kernels of kh × kw.
    let cnn = open("cnn.keras");
    let k = cnn.tensor("conv/kernel").unwrap();
    assert_eq!(k.shape, [3, 3, 3, 8]);
    let view = modelmap::stats::heatmap::HeatmapView::for_display(k);
    let grid = view.kernel.unwrap();
    assert_eq!((grid.inputs, grid.kh, grid.kw), (3, 3, 3));
    assert_eq!((view.rows, view.cols), (8 * 3, 3 * 3));
    // Kernel (out 5, in 2) row 1, column 2 is element [1, 2, 2, 5] of the stored array.
    let e = view.element(5 * 3 + 1, 2 * 3 + 2).unwrap();
    assert_eq!(e, ((3 + 2) * 3 + 2) * 8 + 5);
    // Layer options are attributes.
    let conv = node(&cnn.graph, "conv");
    let attr = |k: &str| conv.attributes.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    assert!(matches!(attr("activation"), Some(AttrValue::String(s)) if s == "relu"));
    assert!(matches!(attr("kernel_size"), Some(AttrValue::Ints(v)) if v == &[3, 3]));
    assert!(matches!(attr("padding"), Some(AttrValue::String(s)) if s == "same"));
    let props: std::collections::HashMap<_, _> = cnn.metadata.properties.iter().cloned().collect();
    assert!(props["keras.loss"].contains("sparse_categorical_crossentropy"));
}

#[test]
fn a_broken_keras_file_is_an_error_naming_it_never_a_panic() {
    // A weights-only HDF5 file (no architecture) shows its weights and says why.
    let dir = std::env::temp_dir().join(format!("modelmap-keras-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let h5 = std::fs::read(data_dir().join("keras2_sequential.h5")).unwrap();
    // The same file with its `model_config` attribute renamed (same length, so every offset
    // holds).
    let mut renamed = h5.clone();
    let at = renamed
        .windows(12)
        .position(|w| w == b"model_config")
        .unwrap();
    renamed[at..at + 12].copy_from_slice(b"other_config");
    let weights_only = dir.join("weights.h5");
    std::fs::write(&weights_only, &renamed).unwrap();
    // Read as weights only: the same tensors, named by their groups, and a warning that says why.
    let m = modelmap::load::open(&weights_only).unwrap();
    let w = m.metadata.warnings.join("\n");
    assert!(
        w.contains("weights.h5") && w.contains("without their architecture"),
        "{w}"
    );
    let whole = open("keras2_sequential.h5");
    assert_eq!(m.tensors.len(), whole.tensors.len());
    assert!(
        m.tensor("dense/kernel:0")
            .is_some_and(|t| t.shape == [4, 3])
    );
    // The files flipped: a model or an error, never a panic.
    let mut x = 0x1234_5678_u32;
    for file in ["cnn.keras", "cnn_legacy.h5"] {
        let bytes = std::fs::read(data_dir().join(file)).unwrap();
        let path = dir.join(format!("broken.{}", file.rsplit('.').next().unwrap()));
        for _ in 0..400 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % b.len();
                b[i] ^= (x >> 24) as u8 | 1;
            }
            std::fs::write(&path, &b).unwrap();
            match modelmap::load::open(&path) {
                Ok(m) => {
                    for t in &m.tensors {
                        let _ = modelmap::stats::tensor_stats(t);
                    }
                }
                Err(e) => assert!(e.to_string().contains("broken."), "{e}"),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cnn_legacy.h5` rewritten by h5py with every weight chunked (`make_chunked.py`): chunks that
/// straddle the far edges, an index of several B-tree nodes (81 chunks), shuffle + deflate +
/// Fletcher-32 in h5py's default format, and the v4 layouts of `libver="latest"` (a fixed array,
/// a single chunk, some unfiltered), and with every weight big-endian (half of them chunked).
/// Every tensor holds the same bytes as in the contiguous little-endian file.
#[test]
fn chunked_and_deflated_weights_read_as_the_contiguous_ones() {
    let plain = open("cnn_legacy.h5");
    for name in ["chunked_gzip.h5", "chunked_latest.h5", "cnn_bigendian.h5"] {
        let m = open(name);
        assert_eq!(m.tensors.len(), plain.tensors.len(), "{name}");
        assert_eq!(m.graph.nodes.len(), plain.graph.nodes.len(), "{name}");
        for t in &plain.tensors {
            let c = m
                .tensor(&t.name)
                .unwrap_or_else(|| panic!("{name}: {}", t.name));
            assert_eq!(
                (c.dtype, &c.shape),
                (t.dtype, &t.shape),
                "{name}: {}",
                t.name
            );
            let want = t.bytes().unwrap();
            let got = c
                .bytes()
                .unwrap_or_else(|| panic!("{name}: {} is {:?}", t.name, c.data));
            assert_eq!(got, want, "{name}: {}", t.name);
        }
    }
    // The conv kernel is not all zeros (the comparison above is not between two empty reads).
    let k = plain.tensor("conv/kernel").unwrap().bytes().unwrap();
    assert!(k.iter().filter(|&&b| b != 0).count() > k.len() / 2);
}

#[test]
fn a_filter_modelmap_does_not_decode_is_named_and_the_model_still_opens() {
    let m = open("chunked_lzf.h5");
    assert_eq!(m.graph.nodes.len(), open("cnn_legacy.h5").graph.nodes.len());
    for t in &m.tensors {
        match &t.data {
            modelmap::model::TensorData::Error(e) => assert!(e.contains("LZF"), "{}: {e}", t.name),
            other => panic!("{}: {other:?}", t.name),
        }
    }
}

#[test]
fn a_damaged_chunk_is_an_error_for_its_tensor_not_a_panic() {
    let good = std::fs::read(data_dir().join("chunked_gzip.h5")).unwrap();
    let dir = std::env::temp_dir().join(format!("modelmap-chunked-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("damaged.h5");
    // Flip one byte at 300 places through the file; every open ends in a model or an error, and
    // where a stored chunk was hit its tensor says what failed (Fletcher-32 or inflation).
    let mut chunk_errors = 0;
    for i in 0..300 {
        let at = 512 + i * (good.len() - 1024) / 300;
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        std::fs::write(&path, &bad).unwrap();
        if let Ok(m) = modelmap::load::open(&path) {
            chunk_errors += m
                .tensors
                .iter()
                .filter(|t| {
                    matches!(&t.data, modelmap::model::TensorData::Error(e)
                        if e.contains("Fletcher-32") || e.contains("inflate"))
                })
                .count();
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(chunk_errors > 10, "{chunk_errors}");
}

/// Keras 3's `model.save_weights` (`mlp.weights.h5`, `make_weights_only.py`): no architecture, so
/// each dataset is a weight named by its path, grouped by layer, with a warning; values as Keras
/// wrote them.
#[test]
fn a_weights_only_file_shows_its_weights() {
    let text = std::fs::read_to_string(data_dir().join("weights_only_facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let m = open("mlp.weights.h5");
    let datasets = facts["datasets"].as_object().unwrap();
    assert_eq!(m.tensors.len(), datasets.len());
    for (name, f) in datasets {
        let t = m
            .tensor(name)
            .unwrap_or_else(|| panic!("{name} is missing"));
        assert_eq!(t.shape, common::json_dims(&f["shape"]), "{name}");
        let got = common::le_f32s(t.bytes().unwrap());
        // As f32 (serde_json's parse of the 17-digit text can be off in the last place).
        for (g, w) in got.iter().zip(f["first"].as_array().unwrap()) {
            assert_eq!(*g as f32, w.as_f64().unwrap() as f32, "{name}");
        }
    }
    assert!(m.hierarchy.find("layers/dense").is_some());
    let w = m.metadata.warnings.join("\n");
    assert!(w.contains("without their architecture"), "{w}");
}
