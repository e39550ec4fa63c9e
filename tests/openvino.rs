//! OpenVINO IR written by OpenVINO, checked against what OpenVINO reads back from it
//! (`tests/data/openvino/facts.json`, written with the files by `make_openvino.py`): every op a
//! node of the same type and name, every op-to-op edge, every constant a weight with OpenVINO's
//! element type, shape, mean and first values, owned by an op that reads it (also through the
//! decompression `Convert` of an FP16-compressed weight); damaged IR as errors or warnings.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use modelmap::model::{DType, Format, Model, NodeKind, TensorData};
use modelmap::stats::decode::Elem;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/openvino")
}

fn open(path: &Path) -> Model {
    modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// OpenVINO's op class name as the IR's XML writes the layer type.
fn xml_type(api: &str) -> &str {
    match api {
        "Relu" => "ReLU",
        "Softmax" => "SoftMax",
        "Parameter" => "Input",
        "Result" => "Output",
        other => other,
    }
}

fn dtype(element_type: &str) -> DType {
    match element_type {
        "f32" => DType::F32,
        "f16" => DType::F16,
        "i64" => DType::I64,
        "i32" => DType::I32,
        "u8" => DType::U8,
        "i8" => DType::I8,
        "u4" => DType::U4,
        "i4" => DType::I4,
        "nf4" => DType::NF4,
        "f4e2m1" => DType::F4E2M1,
        "f8e8m0" => DType::F8E8M0,
        "f8e4m3" => DType::F8E4M3FN,
        other => panic!("element type {other} not in the fixtures"),
    }
}

#[test]
fn every_op_edge_and_constant_matches_what_openvino_reads_back() {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = facts["files"].as_object().unwrap();
    assert_eq!(files.len(), 7);
    for (file, f) in files {
        let model = open(&data_dir().join(file));
        assert_eq!(model.format, Format::OpenVino, "{file}");
        let ops = f["ops"].as_array().unwrap();
        // Constants, and the Converts of constants, are weights: which constant each stands for.
        // So are a compressed weight's `Subtract` of its zero point and `Multiply` by its scale.
        let element_type: HashMap<&str, &str> = f["consts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap(),
                    c["element_type"].as_str().unwrap(),
                )
            })
            .collect();
        // Stored codes a decompression subgraph turns into reals.
        let integer = |c: &str| {
            matches!(
                element_type[c],
                "u8" | "i8" | "u4" | "i4" | "nf4" | "f4e2m1" | "f8e4m3"
            )
        };
        let mut weight_of: HashMap<&str, &str> = HashMap::new();
        let mut pending_sub: HashMap<&str, &str> = HashMap::new();
        for op in ops {
            let name = op["name"].as_str().unwrap();
            let inputs: Vec<&str> = op["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap())
                .collect();
            match op["type"].as_str().unwrap() {
                "Constant" => {
                    weight_of.insert(name, name);
                }
                "Convert" if inputs.len() == 1 && weight_of.contains_key(inputs[0]) => {
                    let c = weight_of[inputs[0]];
                    weight_of.insert(name, c);
                }
                // A Reshape of a weight to a constant shape (group-wise int4 `[out, groups,
                // size]` to `[out, in]`) stands for it too.
                "Reshape"
                    if inputs.len() == 2 && inputs.iter().all(|i| weight_of.contains_key(i)) =>
                {
                    let c = weight_of[inputs[0]];
                    weight_of.insert(name, c);
                }
                "Subtract"
                    if inputs.iter().all(|i| weight_of.contains_key(i))
                        && integer(weight_of[inputs[0]]) =>
                {
                    pending_sub.insert(name, weight_of[inputs[0]]);
                }
                "Multiply" if inputs.len() == 2 => {
                    for (x, sc) in [(inputs[0], inputs[1]), (inputs[1], inputs[0])] {
                        let Some(&sc) = weight_of.get(sc) else {
                            continue;
                        };
                        if integer(sc) {
                            continue;
                        }
                        let w = match (weight_of.get(x), pending_sub.get(x)) {
                            (Some(&w), _) if integer(w) => w,
                            (_, Some(&w)) => {
                                weight_of.insert(x, w);
                                w
                            }
                            _ => continue,
                        };
                        weight_of.insert(name, w);
                        break;
                    }
                }
                _ => {}
            }
        }
        let id: HashMap<&str, usize> = model
            .graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        let edges: HashSet<(usize, usize)> = model
            .graph
            .edges
            .iter()
            .map(|e| (e.from as usize, e.to as usize))
            .collect();
        let mut want_edges = HashSet::new();
        let mut drawn = 0;
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for op in ops {
            let name = op["name"].as_str().unwrap();
            if weight_of.contains_key(name) {
                continue;
            }
            drawn += 1;
            let ctx = format!("{file}: {name}");
            let &n = id.get(name).unwrap_or_else(|| panic!("{ctx}: no node"));
            let node = &model.graph.nodes[n];
            assert_eq!(&*node.op, xml_type(op["type"].as_str().unwrap()), "{ctx}");
            let inputs = op["inputs"].as_array().unwrap();
            if node.kind != NodeKind::Input {
                assert_eq!(node.inputs.len(), inputs.len(), "{ctx}: inputs");
            }
            for src in inputs {
                let src = src.as_str().unwrap();
                if let Some(c) = weight_of.get(src) {
                    readers.entry(c).or_default().push(n);
                } else {
                    want_edges.insert((id[src], n));
                }
            }
        }
        assert_eq!(model.graph.nodes.len(), drawn, "{file}: nodes");
        assert_eq!(edges, want_edges, "{file}: edges");
        let consts = f["consts"].as_array().unwrap();
        assert_eq!(model.tensors.len(), consts.len(), "{file}");
        // Compressed weights read as their real values.
        let deq: HashMap<&str, &serde_json::Value> = f["dequantized"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["weight"].as_str().unwrap(), d))
            .collect();
        assert_eq!(
            model.tensors.iter().filter(|t| t.quant.is_some()).count(),
            deq.len(),
            "{file}: dequantized weights"
        );
        for c in consts {
            let name = c["name"].as_str().unwrap();
            let ctx = format!("{file}: {name}");
            let tid = model.tensor_index[name];
            let t = &model.tensors[tid as usize];
            let dt = dtype(c["element_type"].as_str().unwrap());
            assert_eq!(t.dtype, dt, "{ctx}");
            assert_eq!(t.shape, common::json_dims(&c["shape"]), "{ctx}");
            let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let real = deq.get(name);
            let want = real.unwrap_or(&c)["mean"].as_f64().unwrap();
            let got = s.mean.unwrap();
            // OpenVINO computes a compressed weight's real values in f16 (its scales' type).
            let tol = if real.is_some() {
                1e-4
            } else {
                1e-5 * (1.0 + want.abs())
            };
            assert!((got - want).abs() <= tol, "{ctx}: mean {got} vs {want}");
            let elem = Elem::of(dt).unwrap();
            for (i, v) in c["first"].as_array().unwrap().iter().enumerate() {
                let got = elem.value_at(t.bytes().unwrap(), i as u64).unwrap();
                if let Some(d) = real {
                    let q = t.quant.as_ref().unwrap();
                    assert_eq!(q.scale.len() as u64, d["scales"].as_u64().unwrap(), "{ctx}");
                    let mut r = [got];
                    q.apply(i as u64, &mut r);
                    let want = d["first"][i].as_f64().unwrap();
                    assert!(
                        (r[0] - want).abs() <= 1e-3 * want.abs() + 1e-6,
                        "{ctx}: {r:?} vs {want}"
                    );
                }
                // (JSON's last digit can differ from the f32 it printed.)
                assert_eq!(got as f32, v.as_f64().unwrap() as f32, "{ctx}: value {i}");
            }
            // Owned by one node, which reads it.
            let owners: Vec<usize> = model
                .graph
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.tensors.contains(&tid))
                .map(|(i, _)| i)
                .collect();
            if let Some(r) = readers.get(name) {
                assert_eq!(owners.len(), 1, "{ctx}: owners {owners:?}");
                assert!(r.contains(&owners[0]), "{ctx}");
            }
        }
    }
}

/// Checks the owners of bodies among `scope`'s own nodes (`None`: the top level) against what
/// OpenVINO says of them (`control_facts.json`), and recursively those nested in their bodies.
fn check_owners(model: &Model, scope: Option<usize>, owners: &[serde_json::Value]) {
    let g = &model.graph;
    let own: Vec<u32> = match scope {
        Some(k) => g.own_node_ids(k).collect(),
        None => (0..g.top_level_nodes().count() as u32).collect(),
    };
    let path = |id: u32| {
        model.hierarchy.groups[g.nodes[id as usize].group as usize]
            .path
            .clone()
    };
    let producer = g.producers();
    for o in owners {
        let name = o["name"].as_str().unwrap();
        let &id = own
            .iter()
            .find(|&&i| g.nodes[i as usize].name == name)
            .unwrap_or_else(|| panic!("{name}: no such node in {scope:?}"));
        let owner = &g.nodes[id as usize];
        assert_eq!(&*owner.op, o["type"].as_str().unwrap(), "{name}");
        let bodies = o["bodies"].as_array().unwrap();
        let subs: Vec<usize> = (0..g.subgraphs.len())
            .filter(|&k| g.subgraphs[k].owner == id)
            .collect();
        assert_eq!(subs.len(), bodies.len(), "{name}: bodies");
        // The owner sits in a box of its own, holding one box per body.
        let owner_box = path(id);
        assert!(owner_box.ends_with(name), "{name} is in {owner_box}");
        for b in bodies {
            let tag = b["tag"].as_str().unwrap();
            let ctx = format!("{name}: {tag}");
            let &k = subs
                .iter()
                .find(|&&k| g.subgraphs[k].attribute == tag)
                .unwrap_or_else(|| panic!("{ctx}: no such subgraph"));
            let s = &g.subgraphs[k];
            assert_eq!(s.parent, scope, "{ctx}: nested in");
            for i in s.nodes.clone() {
                let p = path(i);
                assert!(p.starts_with(&format!("{owner_box}/{tag}")), "{ctx}: {p}");
            }
            // The same ops (constants are weights, not nodes).
            let mut ops: Vec<[String; 2]> = g
                .own_nodes(k)
                .filter(|n| n.kind == NodeKind::Op)
                .map(|n| [n.name.clone(), xml_type(&n.op).to_string()])
                .collect();
            ops.sort();
            let want: Vec<[String; 2]> = b["ops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let api = p[1].as_str().unwrap();
                    [
                        p[0].as_str().unwrap().to_string(),
                        xml_type(api).to_string(),
                    ]
                })
                .collect();
            let ours: Vec<[String; 2]> = ops
                .iter()
                .map(|[n, t]| [n.clone(), xml_type(t).to_string()])
                .collect();
            assert_eq!(ours, want, "{ctx}: ops");
            // Its parameters, each fed by the owner's input the port map names.
            let param = |p: &str| {
                g.own_node_ids(k)
                    .find(|&i| {
                        g.nodes[i as usize].kind == NodeKind::Input && g.nodes[i as usize].name == p
                    })
                    .unwrap_or_else(|| panic!("{ctx}: no parameter {p}"))
            };
            for p in b["parameters"].as_array().unwrap() {
                param(p.as_str().unwrap());
            }
            for d in b["inputs"].as_array().unwrap() {
                let p = param(d["parameter"].as_str().unwrap());
                let slot = d["input_index"].as_u64().unwrap() as usize;
                let v = g.nodes[p as usize].outputs[0];
                let at = s.inputs.iter().position(|&x| x == v).unwrap();
                assert_eq!(
                    s.fed_by[at],
                    Some(slot),
                    "{ctx}: {} fed by",
                    g.nodes[p as usize].name
                );
                let outer = owner.inputs[slot].unwrap();
                let from = producer[outer as usize].unwrap();
                assert!(
                    g.edges
                        .iter()
                        .any(|e| e.from == from && e.to == p && e.value == outer),
                    "{ctx}: {} → {}",
                    g.nodes[from as usize].name,
                    g.nodes[p as usize].name
                );
            }
            // What the body gives flows into the owner.
            let results = b["results"].as_array().unwrap();
            for r in results {
                let r = r.as_str().unwrap();
                let n = g
                    .own_node_ids(k)
                    .find(|&i| {
                        g.nodes[i as usize].kind == NodeKind::Output
                            && g.nodes[i as usize].name == r
                    })
                    .unwrap_or_else(|| panic!("{ctx}: no result {r}"));
                assert!(
                    g.edges.iter().any(|e| e.from == n && e.to == id),
                    "{ctx}: {r} → owner"
                );
            }
            // A loop's back edges are listed on it.
            for e in b["back_edges"].as_array().unwrap() {
                let text = format!(
                    "{} → {}",
                    e["from"].as_str().unwrap(),
                    e["to"].as_str().unwrap()
                );
                let listed = owner.attributes.iter().any(|(key, v)| {
                    key == "back_edges"
                        && matches!(v, modelmap::model::AttrValue::Strings(l) if l.contains(&text))
                });
                assert!(listed, "{ctx}: back edge {text} in {:?}", owner.attributes);
            }
            check_owners(model, Some(k), b["owners"].as_array().unwrap());
        }
    }
}

#[test]
fn bodies_of_if_loop_and_tensor_iterator_match_what_openvino_reads_back() {
    let text = std::fs::read_to_string(data_dir().join("control_facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let model = open(&data_dir().join("control.xml"));
    let owners = facts["owners"].as_array().unwrap();
    assert_eq!(owners.len(), 3, "If, Loop, TensorIterator");
    check_owners(&model, None, owners);
    // The If nested in an If's branch is a subgraph of a subgraph.
    assert!(model.graph.subgraphs.iter().any(|s| s.parent.is_some()));
    assert!(
        model.metadata.warnings.is_empty(),
        "{:?}",
        model.metadata.warnings
    );
    // Every node is connected, the bodies' parameters fed from outside.
    let g = &model.graph;
    for (i, n) in g.nodes.iter().enumerate() {
        let connected = g
            .edges
            .iter()
            .any(|e| e.from as usize == i || e.to as usize == i);
        // A loop's iteration counter is fed by the loop itself, not by an input.
        assert!(connected || n.name == "i", "{} is unconnected", n.name);
    }
}

#[test]
fn a_pytorch_conversion_groups_ops_by_module_path() {
    let model = open(&data_dir().join("tiny_gpt.xml"));
    let group_of = |name: &str| {
        let n = model.graph.nodes.iter().find(|n| n.name == name).unwrap();
        model.hierarchy.groups[n.group as usize].path.clone()
    };
    assert_eq!(
        group_of("__module.blocks.1.attn.qkv/aten::linear/MatMul"),
        "blocks.1.attn.qkv"
    );
    assert_eq!(
        group_of("__module.blocks.0.mlp.2/aten::linear/MatMul"),
        "blocks.0.mlp.2"
    );
    // `blocks.0` is one group holding its modules, as a checkpoint's module list reads (a
    // `Sequential`'s members `mlp.0`, `mlp.2` as `layers.0` is one).
    let b0 = model
        .hierarchy
        .groups
        .iter()
        .find(|g| g.path == "blocks.0")
        .unwrap();
    let names: Vec<&str> = b0
        .children
        .iter()
        .map(|&c| model.hierarchy.groups[c as usize].name.as_str())
        .collect();
    for m in ["ln1", "attn", "ln2", "mlp.0", "mlp.2"] {
        assert!(names.contains(&m), "{names:?}");
    }
    // The conv's weight is [out, in, k] and is owned by the convolution.
    let conv = model
        .graph
        .nodes
        .iter()
        .find(|n| &*n.op == "Convolution")
        .unwrap();
    let w = &model.tensors[conv.tensors[0] as usize];
    assert_eq!(w.shape, [32, 32, 3]);
}

#[test]
fn the_neuron_view_reads_a_transposed_matmul_weight_as_out_by_in() {
    // A Linear converted from PyTorch is MatMul(x, W, transpose_b=true) with W [out, in]: the
    // MLP is 32 → 128 → 32, not the other way round.
    let model = open(&data_dir().join("tiny_gpt.xml"));
    let chains = modelmap::stats::neurons::find_dense_chains(&model);
    let up = model.tensor_index["self.blocks.0.mlp.0.weight"];
    let down = model.tensor_index["self.blocks.0.mlp.2.weight"];
    let chain = chains
        .iter()
        .find(|c| c.layers.iter().any(|l| l.tensor == up))
        .unwrap();
    let layer = |t| chain.layers.iter().find(|l| l.tensor == t).unwrap();
    assert_eq!((layer(up).in_features, layer(up).out_features), (32, 128));
    assert_eq!(
        (layer(down).in_features, layer(down).out_features),
        (128, 32)
    );
    assert!(!layer(up).rows_are_inputs);
}

#[test]
fn an_optimum_intel_folder_opens_its_model() {
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("tiny_gpt_int8.xml", "openvino_model.xml"),
        ("tiny_gpt_int8.bin", "openvino_model.bin"),
        ("ppocr_cls.xml", "openvino_tokenizer.xml"),
    ] {
        std::fs::copy(data_dir().join(from), dir.path().join(to)).unwrap();
    }
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architectures": ["GPT2LMHeadModel"], "n_layer": 2}"#,
    )
    .unwrap();
    let m = open(dir.path());
    assert_eq!(m.format, Format::OpenVino);
    assert!(m.source.ends_with("openvino_model.xml"));
    assert_eq!(m.metadata.architecture.as_deref(), Some("GPT2LMHeadModel"));
    assert!(m.tensors.iter().any(|t| t.quant.is_some()));
}

#[test]
fn an_int4_mlp_is_a_neuron_chain_of_its_real_sizes() {
    // Group-wise int4 weights are `[out, groups, 16]`: read as `out × in` with their reals.
    let model = open(&data_dir().join("tiny_gpt_int4.xml"));
    let up = model.tensor_index["self.blocks.0.mlp.0.weight"];
    assert_eq!(model.tensors[up as usize].shape, [128, 2, 16]);
    let chains = modelmap::stats::neurons::find_dense_chains(&model);
    let chain = chains
        .iter()
        .find(|c| c.layers.iter().any(|l| l.tensor == up))
        .unwrap();
    let layer = chain.layers.iter().find(|l| l.tensor == up).unwrap();
    assert_eq!((layer.in_features, layer.out_features), (32, 128));
}

#[test]
fn opening_the_weights_opens_their_model() {
    let m = open(&data_dir().join("tiny_gpt.bin"));
    assert_eq!(m.format, Format::OpenVino);
    assert!(m.source.ends_with("tiny_gpt.xml"));
    assert_eq!(m.tensors.len(), 50);
}

#[test]
fn damaged_ir_is_an_error_or_a_warning_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let xml = std::fs::read_to_string(data_dir().join("tiny_gpt.xml")).unwrap();
    let bin = std::fs::read(data_dir().join("tiny_gpt.bin")).unwrap();
    // Truncated XML: not well-formed, an error naming the file.
    let p = dir.path().join("cut.xml");
    std::fs::write(&p, &xml[..xml.len() / 2]).unwrap();
    let err = modelmap::load::open(&p).unwrap_err().to_string();
    assert!(err.contains("cut.xml") && err.contains("XML"), "{err}");
    // No .bin: the graph without weights, and a warning naming the missing file.
    let p = dir.path().join("nobin.xml");
    std::fs::write(&p, &xml).unwrap();
    let m = open(&p);
    assert!(m.graph.nodes.len() > 30);
    assert!(
        m.metadata.warnings.iter().any(|w| w.contains("nobin.bin")),
        "{:?}",
        m.metadata.warnings
    );
    assert!(
        m.tensors
            .iter()
            .all(|t| matches!(t.data, TensorData::Missing))
    );
    // A truncated .bin: the weights past its end are errors naming it, the rest load.
    let p = dir.path().join("short.xml");
    std::fs::write(&p, &xml).unwrap();
    std::fs::write(dir.path().join("short.bin"), &bin[..bin.len() / 2]).unwrap();
    let m = open(&p);
    let errors = m
        .tensors
        .iter()
        .filter(|t| matches!(&t.data, TensorData::Error(e) if e.contains("short.bin") && e.contains("beyond")))
        .count();
    let ok = m
        .tensors
        .iter()
        .filter(|t| matches!(t.data, TensorData::Bytes(_)))
        .count();
    assert!(errors > 0 && ok > 0, "{errors} {ok}");
    // A byte-order mark before the XML, as some tools write it, is read past.
    let p = dir.path().join("bom.xml");
    std::fs::write(&p, [&b"\xEF\xBB\xBF"[..], xml.as_bytes()].concat()).unwrap();
    std::fs::write(dir.path().join("bom.bin"), &bin).unwrap();
    assert_eq!(open(&p).tensors.len(), 50);
    // A port fed by two edges is an error.
    let twice = xml.replacen(
        "<edge from-layer=\"0\"",
        "<edge from-layer=\"0\" from-port=\"0\" to-layer=\"2\" to-port=\"0\" />\n<edge from-layer=\"0\"",
        1,
    );
    let p = dir.path().join("twice.xml");
    std::fs::write(&p, twice).unwrap();
    let err = modelmap::load::open(&p).unwrap_err().to_string();
    assert!(err.contains("twice.xml"), "{err}");
}

mod common;
