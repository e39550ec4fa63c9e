//! TensorFlow Lite models: real ones Google published with MediaPipe and a synthetic one for what
//! they lack, checked against what Google's readers report (`tests/data/tflite/facts.json`,
//! written by `tests/data/tflite/make_facts.py`): every op with its inputs and outputs, every
//! weight with its dtype, shape, statistics and first values (a sparse weight's dense values
//! included), the subgraphs, quantization and options.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::PathBuf;

use modelmap::model::{AttrValue, Format, Graph, Model, NodeKind, TensorData, TensorOrigin};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tflite")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(name: &str) -> Model {
    modelmap::load::open(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// The name modelmap gives a builtin op, as Netron writes it: `CONV_2D` → `Conv2D`.
fn shown(op: &str) -> String {
    match op {
        "PRELU" => return "PRelu".into(),
        o if !o
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
        {
            return o.into(); // a custom op keeps its name
        }
        _ => {}
    }
    op.split('_')
        .map(|p| {
            if p.starts_with(|c: char| c.is_ascii_digit()) {
                p.to_string()
            } else {
                let mut s = p[..1].to_string();
                s.push_str(&p[1..].to_ascii_lowercase());
                s
            }
        })
        .collect()
}

fn names(g: &Graph, ids: &[Option<u32>]) -> Vec<Option<String>> {
    ids.iter()
        .map(|v| v.map(|v| g.values[v as usize].name.clone()))
        .collect()
}

fn attr<'a>(n: &'a modelmap::model::Node, key: &str) -> Option<&'a AttrValue> {
    n.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Checks one graph (the top level's or a subgraph's own `nodes`) against its facts: ops,
/// inputs, outputs, weights and their owners.
fn check_graph(
    model: &Model,
    nodes: &[&modelmap::model::Node],
    f: &serde_json::Value,
    ctx: &str,
    top: bool,
) {
    let g = &model.graph;
    let str_list = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let io = |kind: NodeKind| -> Vec<String> {
        nodes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| n.name.clone())
            .collect()
    };
    assert_eq!(io(NodeKind::Input), str_list(&f["inputs"]), "{ctx}: inputs");
    assert_eq!(
        io(NodeKind::Output),
        str_list(&f["outputs"]),
        "{ctx}: outputs"
    );

    let ops: Vec<_> = nodes.iter().filter(|n| n.kind == NodeKind::Op).collect();
    let want = f["ops"].as_array().unwrap();
    assert_eq!(ops.len(), want.len(), "{ctx}: op count (after folding)");
    let mut owner_of = std::collections::HashMap::new();
    for (n, w) in ops.iter().zip(want) {
        let c = format!("{ctx}: {}", n.name);
        assert_eq!(n.name, w["name"].as_str().unwrap(), "{c}: name");
        assert_eq!(&*n.op, shown(w["op"].as_str().unwrap()), "{c}: op");
        let want_in: Vec<Option<String>> = w["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().map(String::from))
            .collect();
        assert_eq!(names(g, &n.inputs), want_in, "{c}: inputs");
        let outs: Vec<Option<u32>> = n.outputs.iter().map(|&v| Some(v)).collect();
        let want_out: Vec<Option<String>> = w["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().map(String::from))
            .collect();
        assert_eq!(names(g, &outs), want_out, "{c}: outputs");
        if let Some(opts) = w.get("options").and_then(|o| o.as_object()) {
            for (k, v) in opts {
                let ours = attr(n, k).unwrap_or_else(|| panic!("{c}: no option {k}"));
                match (ours, v) {
                    (AttrValue::Int(i), serde_json::Value::Number(x)) => {
                        assert_eq!(*i, x.as_i64().unwrap(), "{c}: {k}")
                    }
                    (AttrValue::String(s), serde_json::Value::String(x)) => {
                        assert_eq!(s, x, "{c}: {k}")
                    }
                    other => panic!("{c}: {k} is {other:?}"),
                }
            }
        }
        // The first op reading a weight owns it.
        for input in want_in.iter().flatten() {
            owner_of
                .entry(input.clone())
                .or_insert_with(|| n.name.clone());
        }
    }

    let origin = if top {
        TensorOrigin::Initializer
    } else {
        TensorOrigin::Subgraph
    };
    for w in f["weights"].as_array().unwrap() {
        let name = w["name"].as_str().unwrap();
        let c = format!("{ctx}: {name}");
        let t = model
            .tensor(name)
            .unwrap_or_else(|| panic!("{c}: no such tensor"));
        assert_eq!(t.origin, origin, "{c}: origin");
        let dtype = match t.dtype.name() {
            "F32" => "FLOAT32",
            "F16" => "FLOAT16",
            "I32" => "INT32",
            "I8" => "INT8",
            "U8" => "UINT8",
            other => other,
        };
        assert_eq!(dtype, w["dtype"].as_str().unwrap(), "{c}: dtype");
        let shape: Vec<u64> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.shape, shape, "{c}: shape");
        let TensorData::Bytes(bytes) = &t.data else {
            panic!("{c}: {:?}", t.data);
        };
        // The readers report the stored integers; modelmap's statistics are of the real values
        // (`quantized_weights_read_as_their_real_values`), so compare without the scales here.
        let stored = modelmap::model::Tensor {
            quant: None,
            ..t.clone()
        };
        let s = modelmap::stats::tensor_stats(&stored).unwrap_or_else(|e| panic!("{c}: {e}"));
        for (what, ours, theirs) in [
            ("mean", s.mean.unwrap(), &w["mean"]),
            ("std", s.std.unwrap(), &w["std"]),
            ("min", s.min.unwrap(), &w["min"]),
            ("max", s.max.unwrap(), &w["max"]),
        ] {
            let theirs = theirs.as_f64().unwrap();
            assert!(close(ours, theirs), "{c}: {what} {ours} vs {theirs}");
        }
        assert_eq!(s.zeros, w["zeros"].as_u64().unwrap(), "{c}: zeros");
        // Element order, which statistics cannot see (a sparse weight's placement).
        let first: Vec<f64> = w["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let elem = modelmap::stats::decode::Elem::of(t.dtype).unwrap();
        let width = t.dtype.bytes_for(1).unwrap() as usize;
        let mut ours = vec![0.0; first.len()];
        elem.decode_into(&bytes[..first.len() * width], &mut ours);
        for (i, (a, b)) in ours.iter().zip(&first).enumerate() {
            assert!(close(*a, *b), "{c}: value {i}: {a} vs {b}");
        }
        // Owned by the first op that reads it.
        if let Some(owner) = owner_of.get(name) {
            let id = model.tensor_index[name];
            let holders: Vec<_> = g
                .nodes
                .iter()
                .filter(|n| n.tensors.contains(&id))
                .map(|n| n.name.as_str())
                .collect();
            assert_eq!(holders, [owner.as_str()], "{c}: owner");
        }
    }
}

#[test]
fn every_op_and_weight_matches_what_googles_readers_report() {
    let facts = facts();
    let files = facts["files"].as_object().unwrap();
    assert_eq!(files.len(), 5);
    for (file, f) in files {
        let model = open(file);
        assert_eq!(model.format, Format::Tflite, "{file}");
        assert_eq!(
            model.metadata.producer.as_deref(),
            f["description"].as_str(),
            "{file}: description"
        );
        assert_eq!(model.graph.name, f["subgraphs"][0].as_str().unwrap());
        let top: Vec<_> = model.graph.top_level_nodes().collect();
        check_graph(&model, &top, f, file, true);
        // Every weight the file holds is in the model, once.
        let mut want = f["weights"].as_array().unwrap().len();
        for nested in f
            .get("nested")
            .and_then(|n| n.as_array())
            .unwrap_or(&vec![])
        {
            want += nested["weights"].as_array().unwrap().len();
        }
        assert_eq!(model.tensors.len(), want, "{file}: tensors");
    }
}

#[test]
fn subgraphs_quantization_and_metadata_of_the_synthetic_model() {
    let facts = facts();
    let f = &facts["files"]["synthetic.tflite"];
    let model = open("synthetic.tflite");
    let g = &model.graph;
    // WHILE: its cond and body are nested graphs, checked against their facts.
    let w = g.nodes.iter().find(|n| &*n.op == "While").unwrap();
    let nested = f["nested"].as_array().unwrap();
    for (key, fact) in [
        ("cond_subgraph_index", &nested[0]),
        ("body_subgraph_index", &nested[1]),
    ] {
        let Some(AttrValue::Graph(i)) = w
            .attributes
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .find(|v| matches!(v, AttrValue::Graph(_)))
        else {
            panic!("{key}: no subgraph in {:?}", w.attributes);
        };
        assert_eq!(g.subgraphs[*i].name, fact["name"].as_str().unwrap());
        let own: Vec<_> = g.own_nodes(*i).collect();
        check_graph(&model, &own, fact, key, false);
        // The body is boxed inside the While's box, named `cond` / `body`.
        let path = &model.hierarchy.get(own[0].group).unwrap().path;
        let short = key.strip_suffix("_subgraph_index").unwrap();
        assert_eq!(*path, format!("{}/{short}", w.name));
        assert_eq!(g.subgraphs[*i].attribute, short);
    }
    // Quantization, per channel and per tensor, on the ops that read the weights.
    let fc = g.nodes.iter().find(|n| n.name == "dense/MatMul").unwrap();
    let Some(AttrValue::String(q)) = attr(fc, "kernel quantization") else {
        panic!("{:?}", fc.attributes);
    };
    assert_eq!(q, "per channel along dim 0: 3 scales, 0.1 to 0.3");
    assert!(
        matches!(attr(fc, "fused_activation_function"), Some(AttrValue::String(s)) if s == "RELU")
    );
    let head = g.nodes.iter().find(|n| n.name == "head/MatMul").unwrap();
    assert!(
        matches!(attr(head, "kernel quantization"), Some(AttrValue::String(s)) if s == "scale 0.5, zero point 128"),
        "{:?}",
        head.attributes
    );
    assert!(matches!(attr(head, "keep_num_dims"), Some(AttrValue::String(s)) if s == "true"));
    // The custom op keeps its name and says what its options are.
    let custom = g
        .nodes
        .iter()
        .find(|n| &*n.op == "MyCustomPostprocess")
        .unwrap();
    assert!(
        matches!(attr(custom, "custom_options"), Some(AttrValue::String(s)) if s.starts_with("<5 bytes"))
    );
    // Metadata: the signature and the runtime version, as text.
    let props: std::collections::HashMap<_, _> =
        model.metadata.properties.iter().cloned().collect();
    assert_eq!(
        props["signature.serving_default"],
        "(x, counter) → (out, count)"
    );
    assert_eq!(props["metadata.min_runtime_version"], "1.14.0");
    assert_eq!(props["tflite.subgraphs"], "3");
    // The weights were read from after the flatbuffer (offset and size, the >2 GB layout).
    let k = model.tensor("dense/kernel").unwrap().bytes().unwrap();
    let file = std::fs::read(data_dir().join("synthetic.tflite")).unwrap();
    assert!(
        file.len() - k.len() > 1500,
        "the kernel lies after the flatbuffer"
    );
}

/// Integers with scales are read as the reals they stand for: per channel (`dense/kernel`,
/// scales 0.1, 0.2, 0.3 along dim 0), with a zero point (`head/kernel`, 0.5 and 128) and an int32
/// bias (0.001). Expected values: numpy on the arrays `make_synthetic.py` writes (seed 7):
/// `W8 * [[.1], [.2], [.3]]`, `(U8 - 128) * .5`, `BIAS * .001`.
#[test]
fn quantized_weights_read_as_their_real_values() {
    let model = modelmap::load::open(&data_dir().join("synthetic.tflite")).unwrap();
    for (name, min, max, mean, std) in [
        (
            "dense/kernel",
            -27.0,
            14.1,
            -1.541_666_666_666_666,
            13.244_272_871_278_7,
        ),
        (
            "dense/bias",
            -0.007,
            0.005,
            -0.000_666_666_666_666_666_6,
            0.004_921_607_686_744_467,
        ),
        (
            "head/kernel",
            -15.0,
            60.5,
            31.333_333_333_333_332,
            24.080_882_228_209_347,
        ),
    ] {
        let t = model.tensor(name).unwrap();
        assert!(t.quant.is_some(), "{name} has scales");
        let s = modelmap::stats::tensor_stats(t).unwrap();
        common::assert_summary(name, &s, [min, max, mean, std], 1e-6, 1e-3);
    }
    // The hover value of one weight: W8[2][3] = 47 in the channel of scale 0.3.
    let t = model.tensor("dense/kernel").unwrap();
    let view = modelmap::stats::heatmap::HeatmapView::for_tensor(t);
    let v = modelmap::stats::heatmap::value_at(t, &view, 2, 3).unwrap();
    assert!((v - 14.1).abs() < 1e-6, "{v}"); // the scale is the f32 nearest 0.3
    // A heatmap tile of it holds the same real values.
    let tile =
        modelmap::stats::heatmap::tile(t, &view, 0, 0, 0, modelmap::stats::heatmap::Agg::Mean)
            .unwrap();
    assert!((f64::from(tile.values[2 * 4 + 3]) - 14.1).abs() < 1e-5);
    // U8[0][0] = 188: (188 - 128) * 0.5.
    let h = model.tensor("head/kernel").unwrap();
    let hv = modelmap::stats::heatmap::HeatmapView::for_tensor(h);
    assert_eq!(
        modelmap::stats::heatmap::value_at(h, &hv, 0, 0).unwrap(),
        30.0
    );
}

#[test]
fn float16_and_sparse_weights_are_folded_into_the_ops_that_read_them() {
    let facts = facts();
    for (file, folded) in [
        ("face_detection_short_range.tflite", "74 DEQUANTIZE"),
        (
            "face_detection_full_range_sparse.tflite",
            "46 DENSIFY, 182 DEQUANTIZE",
        ),
    ] {
        let f = &facts["files"][file];
        let model = open(file);
        let props: std::collections::HashMap<_, _> =
            model.metadata.properties.iter().cloned().collect();
        assert_eq!(props["tflite.folded_into_weights"], folded, "{file}");
        // The file's op count less the folded ones.
        let n: usize = folded
            .split(", ")
            .map(|p| p.split(' ').next().unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(
            model.graph.op_node_count(),
            f["file_ops"].as_u64().unwrap() as usize - n,
            "{file}"
        );
        // A conv owns its float16 kernel and says which ops it folded: a sparse file's
        // DENSIFY as well as the DEQUANTIZE.
        let wrap = if file.contains("sparse") {
            "DEQUANTIZE(DENSIFY("
        } else {
            "DEQUANTIZE("
        };
        let found = model.graph.nodes.iter().any(|n| {
            let Some(AttrValue::Strings(folded)) = attr(n, "folded ops") else {
                return false;
            };
            &*n.op == "Conv2D"
                && n.tensors.iter().any(|&t| {
                    let kernel = &model.tensors[t as usize].name;
                    folded
                        .iter()
                        .any(|f| f.starts_with(wrap) && f.contains(kernel.as_str()))
                })
        });
        assert!(found, "{file}: no Conv2D owning a {wrap}…) kernel");
    }
    // The sparse model's weights are mostly zeros once expanded, as the interpreter's are.
    let model = open("face_detection_full_range_sparse.tflite");
    let sparse = model
        .tensors
        .iter()
        .filter(|t| t.dtype.name() == "F16")
        .map(|t| modelmap::stats::tensor_stats(t).unwrap())
        .filter(|s| s.zeros * 2 > s.count)
        .count();
    assert!(sparse >= 40, "{sparse} mostly-zero weights");
}

#[test]
fn a_broken_tflite_file_is_an_error_naming_it_never_a_panic() {
    let dir = std::env::temp_dir().join(format!("modelmap-tflite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["synthetic.tflite", "face_detection_short_range.tflite"] {
        let bytes = std::fs::read(data_dir().join(name)).unwrap();
        let cut = dir.join("cut.tflite");
        // Truncations: the flatbuffer's offsets or the buffers after it run past the end.
        let step = (bytes.len() / 150).max(1);
        for n in (8..bytes.len()).step_by(step) {
            std::fs::write(&cut, &bytes[..n]).unwrap();
            match modelmap::load::open(&cut) {
                Err(e) => assert!(e.to_string().contains("cut.tflite"), "{e}"),
                Ok(m) => {
                    // A cut can only spare a file whose tail is padding nothing reads.
                    assert!(
                        n + 64 > bytes.len(),
                        "{name} cut at {n} opened: {}",
                        m.tensors.len()
                    );
                }
            }
        }
        // Random flips: a model or an error, never a panic.
        let mut x = 0x2545_f491_u32;
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = 8 + x as usize % (b.len() - 8);
                b[i] ^= (x >> 24) as u8 | 1;
            }
            std::fs::write(&cut, &b).unwrap();
            if let Ok(m) = modelmap::load::open(&cut) {
                for t in &m.tensors {
                    let _ = modelmap::stats::tensor_stats(t);
                }
            }
        }
    }
    // A buffer whose offset points past the end names the buffer.
    let mut b = std::fs::read(data_dir().join("synthetic.tflite")).unwrap();
    let len = b.len();
    b.truncate(len - 16);
    let cut = dir.join("short.tflite");
    std::fs::write(&cut, &b).unwrap();
    let e = modelmap::load::open(&cut).unwrap_err().to_string();
    assert!(e.contains("short.tflite") && e.contains("buffer"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
