//! Core ML ML programs (`.mlpackage`) written by coremltools, checked against what coremltools
//! reads back (`tests/data/coreml/facts.json`, written with the packages by `make_coreml.py`):
//! every operation a node of its type, every edge between operations, every stored constant a
//! weight with its type, shape, mean and first values (weight-file data as coremltools' own blob
//! reader reads it), int8 weights read as their real values, palettized weights as coremltools'
//! `decompress_weights` expands them; damaged packages as errors.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use modelmap::model::{DType, Format, Model, NodeKind, TensorData};
use modelmap::stats::decode::Elem;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/coreml")
}

fn open(path: &Path) -> Model {
    modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What coremltools read back from the packages (`facts.json`).
fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The node owning tensor `name`.
fn owner<'a>(m: &'a Model, name: &str) -> &'a modelmap::model::Node {
    m.graph
        .nodes
        .iter()
        .find(|n| n.tensors.contains(&m.tensor_index[name]))
        .unwrap_or_else(|| panic!("{name}: no owner"))
}

/// A MIL data type code (MIL.proto `DataType`).
fn dtype(code: u64) -> DType {
    match code {
        10 => DType::F16,
        11 => DType::F32,
        21 => DType::I8,
        23 => DType::I32,
        24 => DType::I64,
        31 => DType::U8,
        25 => DType::I4,
        35 => DType::U4,
        other => panic!("data type {other} not in the fixtures"),
    }
}

#[test]
fn every_operation_edge_and_constant_matches_what_coremltools_reads_back() {
    let facts = facts();
    let packages = facts["packages"].as_object().unwrap();
    assert_eq!(packages.len(), 4);
    for (pkg, f) in packages {
        let m = open(&data_dir().join(pkg));
        assert_eq!(m.format, Format::CoreMl, "{pkg}");
        let ops = f["ops"].as_array().unwrap();
        let drawn: Vec<&serde_json::Value> = ops
            .iter()
            .filter(|o| !o["type"].as_str().unwrap().starts_with("constexpr_"))
            .collect();
        let op_nodes: Vec<&modelmap::model::Node> = m
            .graph
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Op)
            .collect();
        let types: Vec<&str> = op_nodes.iter().map(|n| &*n.op).collect();
        let want: Vec<&str> = drawn.iter().map(|o| o["type"].as_str().unwrap()).collect();
        assert_eq!(types, want, "{pkg}: operations in order");
        // The node producing each value, and every edge between operations and inputs.
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in m.graph.nodes.iter().enumerate() {
            for &v in &n.outputs {
                producer.insert(m.graph.values[v as usize].name.as_str(), i);
            }
        }
        let edges: HashSet<(usize, usize)> = m
            .graph
            .edges
            .iter()
            .map(|e| (e.from as usize, e.to as usize))
            .collect();
        let node_of: HashMap<&str, usize> = op_nodes
            .iter()
            .map(|n| {
                let out = n.outputs[0];
                let i = producer[m.graph.values[out as usize].name.as_str()];
                (m.graph.values[out as usize].name.as_str(), i)
            })
            .collect();
        let mut want_edges = HashSet::new();
        for o in &drawn {
            let to = node_of[o["outputs"][0].as_str().unwrap()];
            for names in o["inputs"].as_object().unwrap().values() {
                for n in names.as_array().unwrap() {
                    if let Some(&from) = producer.get(n.as_str().unwrap()) {
                        want_edges.insert((from, to));
                    }
                }
            }
        }
        // Plus the edges into the outputs.
        for out in f["outputs"].as_array().unwrap() {
            let out = out.as_str().unwrap();
            let to = m
                .graph
                .nodes
                .iter()
                .position(|n| n.kind == NodeKind::Output && n.name == out)
                .unwrap();
            want_edges.insert((producer[out], to));
        }
        assert_eq!(edges, want_edges, "{pkg}: edges");
        // Constants: stored weights with coremltools' values; small integer ones are attributes.
        let deq: HashMap<&str, &serde_json::Value> = f["dequantized"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["weight"].as_str().unwrap(), d))
            .collect();
        for c in f["consts"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let ctx = format!("{pkg}: {name}");
            let dt = dtype(c["data_type"].as_u64().unwrap());
            let shape = common::json_dims(&c["shape"]);
            let Some(t) = m.tensor(name) else {
                assert!(
                    !dt.is_float() || shape.is_empty(),
                    "{ctx}: a float tensor not read as a weight"
                );
                continue;
            };
            assert_eq!(t.dtype, dt, "{ctx}");
            assert_eq!(t.shape, shape, "{ctx}");
            let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let want = c["mean"].as_f64().unwrap();
            assert!(
                (s.mean.unwrap() - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{ctx}: mean"
            );
            let elem = Elem::of(dt).unwrap();
            for (i, v) in c["first"].as_array().unwrap().iter().enumerate() {
                let got = elem.value_at(t.bytes().unwrap(), i as u64).unwrap();
                assert_eq!(got as f32, v.as_f64().unwrap() as f32, "{ctx}: value {i}");
            }
            let owners = m
                .graph
                .nodes
                .iter()
                .filter(|n| n.tensors.contains(&m.tensor_index[name]));
            assert_eq!(owners.count(), 1, "{ctx}: owners");
        }
        assert_eq!(
            m.tensors.iter().filter(|t| t.quant.is_some()).count(),
            deq.len(),
            "{pkg}"
        );
        for (name, d) in deq {
            let ctx = format!("{pkg}: {name}");
            let t = m.tensor(name).unwrap_or_else(|| panic!("{ctx}: missing"));
            let q = t.quant.as_ref().unwrap();
            assert_eq!(q.scale.len() as u64, d["scales"].as_u64().unwrap(), "{ctx}");
            let s = modelmap::stats::tensor_stats(t).unwrap();
            let want = d["mean"].as_f64().unwrap();
            assert!(
                (s.mean.unwrap() - want).abs() <= 1e-9,
                "{ctx}: mean {:?} vs {want}",
                s.mean
            );
            let elem = Elem::of(t.dtype).unwrap();
            for (i, v) in d["first"].as_array().unwrap().iter().enumerate() {
                let mut r = [elem.value_at(t.bytes().unwrap(), i as u64).unwrap()];
                q.apply(i as u64, &mut r);
                assert_eq!(r[0] as f32, v.as_f64().unwrap() as f32, "{ctx}: value {i}");
            }
            // The linear reading it owns it.
            let owner = owner(&m, name);
            assert_eq!(&*owner.op, "linear", "{ctx}");
        }
    }
}

#[test]
fn a_neural_network_model_reads_as_protobuf_reads_it() {
    let facts = facts();
    let f = &facts["neural_networks"]["cnn_nn.mlmodel"];
    let m = open(&data_dir().join("cnn_nn.mlmodel"));
    assert_eq!(m.format, Format::CoreMl);
    // Every layer, in order, typed as coremltools names it (an activation by its function).
    let layers: Vec<(&str, &str)> = m
        .graph
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Op)
        .map(|n| (n.name.as_str(), &*n.op))
        .collect();
    let want: Vec<(&str, &str)> = f["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["type"].as_str().unwrap()))
        .collect();
    assert_eq!(layers, want);
    // Each layer reads its inputs from the layer that wrote them: a chain from x to the output.
    let chain = f["layers"].as_array().unwrap().len() + 2;
    assert_eq!(m.graph.edges.len(), chain - 1);
    // Every weight, with protobuf's values and the layer's shape.
    let weights = f["weights"].as_array().unwrap();
    assert_eq!(m.tensors.len(), weights.len());
    for w in weights {
        let name = w["name"].as_str().unwrap();
        let t = m.tensor(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(t.elements(), w["count"].as_u64().unwrap(), "{name}");
        let s = modelmap::stats::tensor_stats(t).unwrap();
        let want = w["mean"].as_f64().unwrap();
        assert!((s.mean.unwrap() - want).abs() < 1e-7, "{name}: mean");
        for (i, v) in w["first"].as_array().unwrap().iter().enumerate() {
            let got = Elem::of(t.dtype)
                .unwrap()
                .value_at(t.bytes().unwrap(), i as u64)
                .unwrap();
            assert_eq!(got as f32, v.as_f64().unwrap() as f32, "{name}: value {i}");
        }
    }
    assert_eq!(m.tensor("24.weights").unwrap().shape, [8, 3, 3, 3]);
    assert_eq!(m.tensor("linear_0.weights").unwrap().shape, [10, 512]);
    let conv = m
        .graph
        .nodes
        .iter()
        .find(|n| &*n.op == "convolution")
        .unwrap();
    let ks = conv
        .attributes
        .iter()
        .find(|(k, _)| k == "kernelSize")
        .unwrap();
    assert_eq!(ks.1.to_string(), "[3, 3]");
}

/// Calls `f(package, model, tensor, its facts, context)` for each weight of `section` of the
/// facts (`packages` packages of two weights each, coremltools' expansions of them), after
/// checking the weight is there with its shape and owned by the `linear` reading it.
fn each_expanded_weight(
    section: &str,
    packages: usize,
    mut f: impl FnMut(&str, &Model, &modelmap::model::Tensor, &serde_json::Value, &str),
) {
    let facts = facts();
    let all = facts[section].as_object().unwrap();
    assert_eq!(all.len(), packages, "{section}");
    for (pkg, weights) in all {
        let m = open(&data_dir().join(pkg));
        let weights = weights.as_array().unwrap();
        assert_eq!(weights.len(), 2, "{pkg}");
        for w in weights {
            let name = w["weight"].as_str().unwrap();
            let ctx = format!("{pkg}: {name}");
            let t = m.tensor(name).unwrap_or_else(|| panic!("{ctx}: missing"));
            assert_eq!(t.shape, common::json_dims(&w["shape"]), "{ctx}");
            assert_eq!(&*owner(&m, name).op, "linear", "{ctx}");
            f(pkg, &m, t, w, &ctx);
        }
    }
}

/// Palettized weights (`palettize_weights`: k-means tables of 2⁴, 2⁶, 2³ values, one per weight
/// or one per group of 16 output channels, with and without per-channel scales) read as the
/// values coremltools' own `decompress_weights` expands them to.
#[test]
fn palettized_weights_read_as_coremltools_expands_them() {
    let mut per_group = 0;
    each_expanded_weight("palettized", 4, |pkg, m, t, w, ctx| {
        // iOS 16's packed bytes are retyped to the palette's index width.
        let want = match (pkg, w["indices_type"].as_u64().unwrap()) {
            ("mlp_lut6.mlpackage", 31) => DType::UBits(6),
            (_, 31 | 35) => DType::U4,
            (_, 39) => DType::UBits(3),
            (_, other) => panic!("{ctx}: indices type {other}"),
        };
        assert_eq!(t.dtype, want, "{ctx}");
        let q = t
            .quant
            .as_ref()
            .unwrap_or_else(|| panic!("{ctx}: not read as reals"));
        let g = q.scale_bias().unwrap();
        per_group += usize::from(g.book_stride > 0 && g.len() > 1);
        // coremltools expands (and scales) in FP16; ours are the exact products.
        let elem = Elem::of(t.dtype).unwrap();
        let value = |i: u64| {
            let mut r = [elem.value_at(t.bytes().unwrap(), i).unwrap()];
            q.apply(i, &mut r);
            r[0]
        };
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-3 * want.abs().max(1e-2);
        for (i, v) in w["first"].as_array().unwrap().iter().enumerate() {
            let (got, want) = (value(i as u64), v.as_f64().unwrap());
            assert!(close(got, want), "{ctx}: value {i}: {got} vs {want}");
        }
        for (i, v) in w["every_97th"].as_array().unwrap().iter().enumerate() {
            let (got, want) = (value(97 * i as u64), v.as_f64().unwrap());
            assert!(close(got, want), "{ctx}: value {}: {got} vs {want}", 97 * i);
        }
        let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let want = w["mean"].as_f64().unwrap();
        assert!(
            (s.mean.unwrap() - want).abs() <= 1e-5,
            "{ctx}: mean {:?} vs {want}",
            s.mean
        );
        assert_eq!(
            (s.nan, s.count),
            (0, t.elements()),
            "{ctx}: every index in its palette"
        );
        // The scaled palette is owned beside the weight.
        let owner = owner(m, &t.name);
        let owned = if pkg.contains("scaled") { 2 } else { 1 };
        assert_eq!(
            owner.tensors.len() - 1,
            owned,
            "{ctx}: weight, palette, bias"
        );
    });
    // The grouped packages' fc1 (64 rows) has four tables; their fc2 (16 rows) one.
    assert_eq!(per_group, 3, "grouped palettes");
}

/// Pruned weights (`prune_weights`, half of each weight zero; iOS 16's packed mask and iOS 18's
/// `uint1` one) read as the dense values coremltools' own `decompress_weights` expands them to.
#[test]
fn pruned_weights_read_as_coremltools_expands_them() {
    each_expanded_weight("sparse", 2, |_, _, t, w, ctx| {
        assert_eq!(t.dtype, DType::F16, "{ctx}");
        let elem = Elem::of(t.dtype).unwrap();
        let value = |i: u64| elem.value_at(t.bytes().unwrap(), i).unwrap();
        for (i, v) in w["first"].as_array().unwrap().iter().enumerate() {
            assert_eq!(value(i as u64), v.as_f64().unwrap(), "{ctx}: value {i}");
        }
        for (i, v) in w["every_97th"].as_array().unwrap().iter().enumerate() {
            let at = 97 * i as u64;
            assert_eq!(value(at), v.as_f64().unwrap(), "{ctx}: value {at}");
        }
        let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let want = w["mean"].as_f64().unwrap();
        assert!((s.mean.unwrap() - want).abs() <= 1e-6, "{ctx}: mean");
        assert!((s.sparsity - 0.5).abs() < 0.01, "{ctx}: {}", s.sparsity);
    });
}

#[test]
fn the_neuron_view_draws_a_quantized_mlp_with_its_sizes() {
    // `linear` holds its weight `[out, in]`; the int8 weights read as reals.
    let m = open(&data_dir().join("mlp_int8.mlpackage"));
    let chains = modelmap::stats::neurons::find_dense_chains(&m);
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0].sizes(), vec![32, 64, 16]);
}

#[test]
fn small_parameters_are_attributes_of_the_operation_reading_them() {
    let m = open(&data_dir().join("cnn.mlpackage"));
    let conv = m.graph.nodes.iter().find(|n| &*n.op == "conv").unwrap();
    let attr = |k: &str| {
        conv.attributes
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("no {k} in {:?}", conv.attributes))
    };
    assert_eq!(attr("strides"), "[1, 1]");
    assert_eq!(attr("pad_type"), "\"custom\"");
    // The weight and bias (folded from the batch norm) are weights of the conv.
    let mut shapes: Vec<&[u64]> = conv
        .tensors
        .iter()
        .map(|&t| m.tensors[t as usize].shape.as_slice())
        .collect();
    shapes.sort();
    assert_eq!(shapes, [&[8u64][..], &[8, 3, 3, 3][..]]);
}

#[test]
fn damaged_packages_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let to = dir.path().join(name);
        let from = data_dir().join("cnn.mlpackage");
        for rel in [
            "Manifest.json",
            "Data/com.apple.CoreML/model.mlmodel",
            "Data/com.apple.CoreML/weights/weight.bin",
        ] {
            std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
            std::fs::copy(from.join(rel), to.join(rel)).unwrap();
        }
        to
    };
    // A truncated weight file: the weights past its end are errors naming it; the graph opens.
    let p = copy("short.mlpackage");
    let w = p.join("Data/com.apple.CoreML/weights/weight.bin");
    let bin = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bin[..bin.len() / 2]).unwrap();
    let m = open(&p);
    assert!(
        m.tensors
            .iter()
            .any(|t| matches!(&t.data, TensorData::Error(e) if e.contains("weight.bin")))
    );
    assert!(
        m.tensors
            .iter()
            .any(|t| matches!(t.data, TensorData::Bytes(_)))
    );
    // A truncated model protobuf: an error naming it.
    let p = copy("cut.mlpackage");
    let mf = p.join("Data/com.apple.CoreML/model.mlmodel");
    let spec = std::fs::read(&mf).unwrap();
    std::fs::write(&mf, &spec[..spec.len() - 7]).unwrap();
    let err = modelmap::load::open(&p).unwrap_err().to_string();
    assert!(err.contains("model.mlmodel"), "{err}");
    // A manifest pointing outside the package.
    let p = copy("escape.mlpackage");
    let manifest = std::fs::read_to_string(p.join("Manifest.json")).unwrap();
    std::fs::write(
        p.join("Manifest.json"),
        manifest.replace("com.apple.CoreML/model.mlmodel", "../../model.mlmodel"),
    )
    .unwrap();
    let err = modelmap::load::open(&p).unwrap_err().to_string();
    assert!(err.contains("outside the package"), "{err}");
    // A protobuf that sets no model kind: an error saying what is read.
    let p = dir.path().join("empty.mlmodel");
    std::fs::write(&p, [0x08, 0x04]).unwrap();
    let err = modelmap::load::open(&p).unwrap_err().to_string();
    assert!(err.contains("ML programs"), "{err}");
    // A neuralNetwork model cut short: an error naming it, never a panic.
    let nn = std::fs::read(data_dir().join("cnn_nn.mlmodel")).unwrap();
    for cut in [3, nn.len() / 2, nn.len() - 5] {
        let p = dir.path().join(format!("nn{cut}.mlmodel"));
        std::fs::write(&p, &nn[..cut]).unwrap();
        if let Err(e) = modelmap::load::open(&p) {
            assert!(e.to_string().contains(&format!("nn{cut}.mlmodel")), "{e}");
        }
    }
}

/// Checks the owners of blocks among `scope`'s own nodes (`None`: `main`'s) against coremltools'
/// reading of them (`control_facts.json`), and those nested in their blocks.
fn check_blocks(model: &Model, scope: Option<usize>, owners: &[serde_json::Value]) {
    let g = &model.graph;
    let own: Vec<u32> = match scope {
        Some(k) => g.own_node_ids(k).collect(),
        None => (0..g.top_level_nodes().count() as u32).collect(),
    };
    let out_names = |i: u32| -> Vec<String> {
        g.nodes[i as usize]
            .outputs
            .iter()
            .map(|&v| g.values[v as usize].name.clone())
            .collect()
    };
    for o in owners {
        let outputs: Vec<String> = o["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let &id = own
            .iter()
            .find(|&&i| out_names(i) == outputs)
            .unwrap_or_else(|| panic!("no operation giving {outputs:?}"));
        assert_eq!(&*g.nodes[id as usize].op, o["type"].as_str().unwrap());
        let subs: Vec<usize> = (0..g.subgraphs.len())
            .filter(|&k| g.subgraphs[k].owner == id)
            .collect();
        let blocks = o["blocks"].as_array().unwrap();
        assert_eq!(subs.len(), blocks.len(), "{outputs:?}: blocks");
        for (&k, b) in subs.iter().zip(blocks) {
            let ctx = format!("{outputs:?}: {}", g.subgraphs[k].attribute);
            let kinds = |kind: NodeKind| common::subgraph_names(g, k, kind);
            assert_eq!(
                kinds(NodeKind::Input),
                common::json_strings(&b["inputs"]),
                "{ctx}: inputs"
            );
            assert_eq!(
                kinds(NodeKind::Output),
                common::json_strings(&b["outputs"]),
                "{ctx}: outputs"
            );
            assert_eq!(
                common::subgraph_ops(g, k),
                common::json_strings(&b["operations"]),
                "{ctx}: operations"
            );
            // What the block gives flows into its operation.
            for i in g.own_node_ids(k) {
                if g.nodes[i as usize].kind == NodeKind::Output {
                    assert!(g.edges.iter().any(|e| e.from == i && e.to == id), "{ctx}");
                }
            }
            check_blocks(model, Some(k), b["owners"].as_array().unwrap());
        }
    }
}

/// A `cond` and a `while_loop` built with coremltools' MIL builder: their blocks are drawn inside
/// them, reading outer values by name (the loop's condition reads the input `n`), the loop's body
/// fed its loop variables, each `linear` in a block owning its weight.
#[test]
fn cond_and_while_loop_blocks_match_what_coremltools_reads_back() {
    let text = std::fs::read_to_string(data_dir().join("control_facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let model = open(&data_dir().join("control.mlpackage"));
    assert!(
        model.metadata.warnings.is_empty(),
        "{:?}",
        model.metadata.warnings
    );
    check_blocks(&model, None, facts["owners"].as_array().unwrap());
    let g = &model.graph;
    let id = |name: &str| g.nodes.iter().position(|n| n.name == name).unwrap() as u32;
    assert!(
        g.edges
            .iter()
            .any(|e| e.from == id("n") && e.to == id("more")),
        "n → the loop's condition"
    );
    // The loop's carried value starts as the cond's result: both blocks' second input is fed by
    // the cond.
    let carried: Vec<u32> = (0..g.nodes.len() as u32)
        .filter(|&i| g.nodes[i as usize].name == "branch_x0_1_1_1")
        .collect();
    assert_eq!(carried.len(), 2);
    for c in carried {
        assert!(
            g.edges.iter().any(|e| e.from == id("branch") && e.to == c),
            "cond → the loop's carried value"
        );
    }
    for (linear, weights) in [
        ("then_linear", "then"),
        ("else_linear", "else"),
        ("loop_linear", "loop"),
    ] {
        let n = &g.nodes[id(linear) as usize];
        let first: Vec<f64> = facts["weights"][weights]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let owned = n.tensors.iter().any(|&t| {
            let t = &model.tensors[t as usize];
            let TensorData::Bytes(b) = &t.data else {
                return false;
            };
            let elem = Elem::of(t.dtype).unwrap();
            let mut got = vec![0.0; first.len()];
            elem.decode_into(
                &b[..first.len() * t.dtype.bytes_for(1).unwrap() as usize],
                &mut got,
            );
            got.iter().zip(&first).all(|(a, b)| (a - b).abs() < 1e-6)
        });
        assert!(owned, "{linear} owns its weight");
    }
}

/// A pipeline as Ultralytics exports a detector with `nms=True` (an ML program, then Core ML's
/// `nonMaximumSuppression`), and one as Create ML ends an image classifier (features, then a
/// `glmClassifier`, in a `pipelineClassifier`): one node per model, each reading the features the
/// one before gives, the program's operations its body, the other kinds' parameters on their node
/// (`pipeline_facts.json`, written with the packages by `make_pipeline.py`).
#[test]
fn a_pipeline_draws_each_model_reading_the_features_before_it() {
    let text = std::fs::read_to_string(data_dir().join("pipeline_facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (package, f) in [
        ("pipeline.mlpackage", &facts["detector"]),
        ("classifier.mlpackage", &facts["classifier"]),
    ] {
        check_pipeline(&open(&data_dir().join(package)), f, package);
    }
}

/// A model of a kind without ops (here the classifier's GLM saved on its own) is drawn as its
/// inputs, one node of its kind owning its weights, and its outputs, as a pipeline of one.
#[test]
fn a_model_of_another_kind_is_one_node_of_its_kind() {
    let text = std::fs::read_to_string(data_dir().join("pipeline_facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let glm = &facts["classifier"]["models"][1];
    let one = serde_json::json!({
        "inputs": glm["inputs"],
        "outputs": glm["outputs"],
        "models": [glm],
    });
    check_pipeline(&open(&data_dir().join("glm.mlmodel")), &one, "glm.mlmodel");
}

fn check_pipeline(model: &Model, facts: &serde_json::Value, ctx: &str) {
    let g = &model.graph;
    let names = |vs: &[Option<u32>]| -> Vec<String> {
        vs.iter()
            .map(|v| g.values[v.unwrap() as usize].name.clone())
            .collect()
    };
    let top: Vec<&modelmap::model::Node> = g.top_level_nodes().collect();
    let io = |kind: NodeKind| -> Vec<String> {
        top.iter()
            .filter(|n| n.kind == kind)
            .map(|n| n.name.clone())
            .collect()
    };
    assert_eq!(
        io(NodeKind::Input),
        common::json_strings(&facts["inputs"]),
        "{ctx}"
    );
    assert_eq!(
        io(NodeKind::Output),
        common::json_strings(&facts["outputs"]),
        "{ctx}"
    );
    let ops: Vec<&&modelmap::model::Node> = top.iter().filter(|n| n.kind == NodeKind::Op).collect();
    let models = facts["models"].as_array().unwrap();
    assert_eq!(ops.len(), models.len(), "{ctx}");
    let attr = |n: &modelmap::model::Node, k: &str| {
        n.attributes
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut previous: Option<u32> = None;
    for (n, m) in ops.iter().zip(models) {
        let kind = m["kind"].as_str().unwrap();
        let ctx = format!("{ctx}: {kind}");
        assert_eq!(&*n.op, kind, "{ctx}");
        assert_eq!(
            names(&n.inputs),
            common::json_strings(&m["inputs"]),
            "{ctx}: inputs"
        );
        let outs: Vec<Option<u32>> = n.outputs.iter().map(|&v| Some(v)).collect();
        assert_eq!(
            names(&outs),
            common::json_strings(&m["outputs"]),
            "{ctx}: outputs"
        );
        let id = g.nodes.iter().position(|x| std::ptr::eq(x, **n)).unwrap() as u32;
        // Each model reads what the one before gives.
        if let Some(p) = previous {
            assert!(g.edges.iter().any(|e| e.from == p && e.to == id), "{ctx}");
        }
        previous = Some(id);
        let k = g.subgraphs.iter().position(|s| s.owner == id);
        if let Some(want) = m.get("operations") {
            let k = k.unwrap_or_else(|| panic!("{ctx}: no body"));
            let body = common::subgraph_ops(g, k);
            assert_eq!(body, common::json_strings(want), "{ctx}: operations");
            // Its input is fed by the pipeline's.
            let input = g
                .own_node_ids(k)
                .find(|&i| g.nodes[i as usize].kind == NodeKind::Input)
                .unwrap();
            let from = g
                .nodes
                .iter()
                .position(|x| x.name == facts["inputs"][0])
                .unwrap() as u32;
            assert!(
                g.edges.iter().any(|e| e.from == from && e.to == input),
                "{ctx}"
            );
            continue;
        }
        assert!(k.is_none(), "{ctx} is drawn as the node alone");
        let labels = Some(modelmap::model::AttrValue::Strings(common::json_strings(
            &m["classLabels"],
        )));
        assert_eq!(
            format!("{:?}", attr(n, "classLabels")),
            format!("{labels:?}"),
            "{ctx}"
        );
        if kind == "nonMaximumSuppression" {
            for key in ["iouThreshold", "confidenceThreshold"] {
                let Some(modelmap::model::AttrValue::Float(x)) = attr(n, key) else {
                    panic!("{ctx}: {key}");
                };
                assert_eq!(x, m[key].as_f64().unwrap() as f32, "{ctx}: {key}");
            }
        }
        if kind == "glmClassifier" {
            // Its weights and offsets, tensors the node owns: classes × features.
            let rows = m["weights"].as_array().unwrap();
            let want: Vec<f64> = rows
                .iter()
                .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
                .collect();
            let w = &model.tensors[n.tensors[0] as usize];
            assert_eq!(w.dtype, DType::F64);
            assert_eq!(
                w.shape,
                [rows.len() as u64, (want.len() / rows.len()) as u64]
            );
            let got: Vec<f64> = w
                .bytes()
                .unwrap()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            // (serde_json reads a double to within an ulp or two.)
            let close = |a: &[f64], b: &[f64]| {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| (x - y).abs() <= 1e-14 * y.abs().max(1.0))
            };
            assert!(close(&got, &want), "{ctx}: weights {got:?} vs {want:?}");
            let o = &model.tensors[n.tensors[1] as usize];
            let offsets: Vec<f64> = o
                .bytes()
                .unwrap()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let want: Vec<f64> = m["offset"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert!(
                close(&offsets, &want),
                "{ctx}: offsets {offsets:?} vs {want:?}"
            );
        }
    }
}

mod common;
