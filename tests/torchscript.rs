//! TorchScript archives (`torch.jit.save`) written by real PyTorch, checked against what torch
//! itself reports for them (`tests/data/torchscript/facts.json`, written with the files by
//! `tests/data/torchscript/make_torchscript.py`): the ATen ops of the module's graph, every edge
//! between them, the inputs and outputs, and every weight with the op that reads it.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use modelmap::model::{AttrValue, Format, Model, Node, NodeKind, TensorOrigin};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/torchscript")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(name: &str) -> Model {
    modelmap::load::open(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The full target of an op node (`aten::linear`).
fn target(n: &Node) -> Option<&str> {
    n.attributes.iter().find_map(|(k, v)| match v {
        AttrValue::String(s) if k == "target" => Some(s.as_str()),
        _ => None,
    })
}

#[test]
fn ops_edges_and_weights_match_what_torch_reports() {
    let facts = facts();
    let files = facts["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    for f in files {
        let file = f["file"].as_str().unwrap();
        let model = open(file);
        assert_eq!(model.format, Format::TorchScript, "{file}");
        assert!(
            model.metadata.warnings.is_empty(),
            "{file}: {:?}",
            model.metadata.warnings
        );
        let g = &model.graph;

        // The ATen ops, by kind.
        let mut ops: BTreeMap<String, u64> = BTreeMap::new();
        for n in &g.nodes {
            if let Some(t) = target(n).filter(|t| t.starts_with("aten::")) {
                *ops.entry(t.to_string()).or_default() += 1;
                assert_eq!(&*n.op, &t[6..], "{file}: {}", n.name);
            }
        }
        // nn.LSTM has no plain `forward` for torch to freeze: its ops are not recorded.
        if let Some(want) = f["ops"].as_object() {
            let want: BTreeMap<String, u64> = want
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect();
            assert_eq!(ops, want, "{file}: ops");
        }

        // Every edge into an ATen op from another or from a graph input, by kinds.
        let kind = |i: u32| {
            let n = &g.nodes[i as usize];
            match n.kind {
                NodeKind::Input => Some("input".to_string()),
                _ => target(n)
                    .filter(|t| t.starts_with("aten::"))
                    .map(String::from),
            }
        };
        let mut edges: BTreeMap<(String, String), u64> = BTreeMap::new();
        for e in &g.edges {
            if let (Some(a), Some(b)) = (kind(e.from), kind(e.to))
                && b != "input"
            {
                *edges.entry((a, b)).or_default() += 1;
            }
        }
        let want: BTreeMap<(String, String), u64> = f["edges"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|e| {
                (
                    (
                        e[0].as_str().unwrap().to_string(),
                        e[1].as_str().unwrap().to_string(),
                    ),
                    e[2].as_u64().unwrap(),
                )
            })
            .collect();
        if !f["edges"].is_null() {
            assert_eq!(edges, want, "{file}: edges");
        }

        // Inputs by name, and outputs.
        let inputs: Vec<&str> = g
            .inputs
            .iter()
            .map(|&v| g.values[v as usize].name.as_str())
            .collect();
        let want: Vec<&str> = f["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(inputs, want, "{file}: inputs");
        assert_eq!(
            g.outputs.len() as u64,
            f["outputs"].as_u64().unwrap(),
            "{file}: outputs"
        );
        assert!(
            g.nodes
                .iter()
                .filter(|n| n.kind == NodeKind::Output)
                .count()
                == g.outputs.len(),
            "{file}"
        );

        // Weights: named as the state_dict, with their shapes and values, and owned by the op that
        // first reads them, in the group of the module that holds them.
        let weights = f["weights"].as_array().unwrap();
        let checkpoint = model
            .tensors
            .iter()
            .filter(|t| t.origin == TensorOrigin::Checkpoint)
            .count();
        assert_eq!(checkpoint, weights.len(), "{file}: weights");
        // The code's constant tensors (`CONSTANTS.c0`), read by the ops that use them.
        let constants = f["constants"].as_object().unwrap();
        assert_eq!(
            model.tensors.len(),
            weights.len() + constants.len(),
            "{file}"
        );
        for (k, c) in constants {
            let name = format!("CONSTANTS.{k}");
            let t = model
                .tensor(&name)
                .unwrap_or_else(|| panic!("{file}: {name}"));
            assert_eq!(t.origin, TensorOrigin::ConstantNode, "{name}");
            assert_eq!(
                t.shape.len(),
                c["shape"].as_array().unwrap().len(),
                "{name}"
            );
            let bytes = t.bytes().unwrap();
            let value = match c["dtype"].as_str().unwrap() {
                "int64" => i64::from_le_bytes(bytes[..8].try_into().unwrap()) as f64,
                "float64" => f64::from_le_bytes(bytes[..8].try_into().unwrap()),
                other => panic!("{name}: {other}"),
            };
            assert_eq!(value, c["values"][0].as_f64().unwrap(), "{name}");
            let id = model.tensor_index[&name];
            assert!(
                g.nodes.iter().any(|n| n.tensors.contains(&id)),
                "{file}: no op reads {name}"
            );
        }
        for w in weights {
            let name = w["name"].as_str().unwrap();
            let ctx = format!("{file}: {name}");
            let t = model
                .tensor(name)
                .unwrap_or_else(|| panic!("{ctx}: missing"));
            let shape: Vec<u64> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(t.shape, shape, "{ctx}");
            if w["dtype"] == "float32" {
                let bytes = t.bytes().unwrap();
                for (i, v) in w["first"].as_array().unwrap().iter().enumerate() {
                    let x = f32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
                    // serde_json may parse the last digit 1 ulp off in f64: compare as f32.
                    assert_eq!(x, v.as_f64().unwrap() as f32, "{ctx}[{i}]");
                }
            }
            let id = model.tensor_index[name];
            let owner = g.nodes.iter().find(|n| n.tensors.contains(&id));
            match w["read_by"].as_str() {
                Some(reader) => {
                    let owner = owner.unwrap_or_else(|| panic!("{ctx}: no op owns it"));
                    assert_eq!(target(owner), Some(reader), "{ctx}: owner {}", owner.name);
                    let module = name.rsplit_once('.').map_or("", |(m, _)| m);
                    let group = model.hierarchy.get(owner.group).unwrap();
                    assert_eq!(group.path, module, "{ctx}: group of {}", owner.name);
                }
                // Buffers the forward pass never reads (BatchNorm's `num_batches_tracked`).
                None => assert!(
                    owner.is_none(),
                    "{ctx}: read by {:?}",
                    owner.map(|n| &n.name)
                ),
            }
        }
    }
}

#[test]
fn modules_are_the_hierarchy_with_their_classes() {
    let model = open("cnn_traced.pt");
    let h = &model.hierarchy;
    for (path, class) in [
        ("stem", "Conv2d"),
        ("blocks.0", "Block"),
        ("blocks.0.conv", "Conv2d"),
        ("blocks.1.bn", "BatchNorm2d"),
        ("fc", "Linear"),
    ] {
        let g = h.find(path).unwrap_or_else(|| panic!("{path}: no group"));
        assert!(h.get(g).unwrap().node_count >= 1, "{path}");
        assert_eq!(
            model.metadata.module_classes.get(path).map(String::as_str),
            Some(class),
            "{path}"
        );
    }
    // A residual block: its add reads the conv branch and the block's own input.
    let g = &model.graph;
    let add = g
        .nodes
        .iter()
        .position(|n| target(n) == Some("aten::add") && h.get(n.group).unwrap().path == "blocks.1")
        .unwrap() as u32;
    let mut from: Vec<String> = g
        .edges
        .iter()
        .filter(|e| e.to == add)
        .map(|e| {
            let n = &g.nodes[e.from as usize];
            format!("{} in {}", n.op, h.get(n.group).unwrap().path)
        })
        .collect();
    from.sort();
    assert_eq!(from, ["batch_norm in blocks.1.bn", "relu in blocks.0"]);
    // Convolution options are named attributes.
    let conv = g
        .nodes
        .iter()
        .find(|n| &*n.op == "_convolution" && h.get(n.group).unwrap().path == "stem")
        .unwrap();
    let attr = |k: &str| conv.attributes.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    assert!(matches!(attr("stride"), Some(AttrValue::Ints(v)) if v == &[2, 2]));
    assert!(matches!(attr("groups"), Some(AttrValue::Int(1))));
}

#[test]
fn scripted_control_flow_is_folded_where_known_and_merged_where_not() {
    let model = open("gated_scripted.pt");
    let g = &model.graph;
    // `if extra is not None` and `if bool(x.sum() > 0)` depend on data: both branches are drawn
    // and meet in an If node; `if self.use_norm` is a pickled True and runs alone.
    let ifs: Vec<&Node> = g.nodes.iter().filter(|n| &*n.op == "If").collect();
    assert_eq!(ifs.len(), 2);
    let count = |op: &str| g.nodes.iter().filter(|n| &*n.op == op).count();
    assert_eq!(count("layer_norm"), 1);
    assert_eq!(count("neg"), 1);
    // F.relu(x, inplace=False) is inlined from the archive's code with its branch folded.
    assert_eq!(count("relu"), 1);
    assert_eq!(count("relu_"), 0);
    // `for i in range(self.depth)` with depth 2 unrolls.
    assert_eq!(count("tanh"), 2);
}

#[test]
fn corrupt_archives_are_errors_or_warnings_never_panics() {
    for file in [
        "cnn_traced.pt",
        "gated_scripted.pt",
        "gpt_traced.pt",
        "lstm_scripted.pt",
    ] {
        let data = std::fs::read(data_dir().join(file)).unwrap();
        let path = PathBuf::from(file);
        for cut in [0, 10, data.len() / 3, data.len() / 2, data.len() - 30] {
            let _ = modelmap::load::open_bytes(&path, bytes::Bytes::from(data[..cut].to_vec()));
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..300 {
            let mut d = data.clone();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state % d.len() as u64) as usize;
                d[i] ^= (state >> 32) as u8 | 1;
            }
            let _ = modelmap::load::open_bytes(&path, bytes::Bytes::from(d));
        }
    }
}

#[test]
fn unreadable_code_keeps_the_weights_and_says_why() {
    // `broken_code.pt` is `cnn_traced.pt` with one code file replaced by text that is not Python.
    let model = open("broken_code.pt");
    assert_eq!(model.format, Format::TorchScript);
    assert_eq!(model.tensors.len(), 18);
    let w = model.metadata.warnings.join("\n");
    assert!(
        w.contains("TorchScript code was not read") && w.contains("linear.py: line 9"),
        "{w}"
    );
    // The weights-only graph: one node per module with weights.
    assert!(model.graph.nodes.iter().any(|n| n.kind == NodeKind::Module));
}

#[test]
fn runaway_code_is_cut_short_and_says_so() {
    // `recursive.pt`: a forward that calls itself twice per branch, 2^64 calls if followed.
    let model = open("recursive.pt");
    let w = model.metadata.warnings.join("\n");
    assert!(w.contains("cut short: calls nest deeper than 64"), "{w}");
    // What was made up to the cut is kept, and the weights are all there.
    assert!(model.graph.op_node_count() > 0);
    assert_eq!(model.tensors.len(), 18);
}

#[test]
fn blocks_are_named_by_what_they_compute_not_by_their_size_arithmetic() {
    // A traced attention computes its view shapes with `size` → `NumToTensor` → `Int` chains,
    // twelve Ints a block against four linears and two matmuls: it read "mostly Int".
    let model = open("gpt_traced.pt");
    let l = modelmap::layout::dataflow(
        &model.graph,
        &model.hierarchy,
        &modelmap::layout::DataflowOptions::default(),
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    for (name, want) in [
        ("h.0.attn", ["linear", "matmul"]),
        ("h.1", ["linear", "matmul"]),
    ] {
        let g = model.hierarchy.find(name).unwrap();
        let c = l
            .clusters
            .clusters
            .iter()
            .find(|c| c.group == Some(g))
            .unwrap();
        assert!(
            want.contains(&&*c.dominant_op),
            "{name}: mostly {}",
            c.dominant_op
        );
    }
}

#[test]
fn quantized_ops_own_their_int8_weights() {
    // Post-training-quantized conv and linear keep their weights in packed-params objects that
    // `__setstate__` rebuilds; the pickled state's int8 tensors stand for them.
    let facts = facts();
    let q = &facts["quantized"];
    let model = open(q["file"].as_str().unwrap());
    let g = &model.graph;
    for (target, key) in [
        ("quantized::conv2d", "conv"),
        ("quantized::linear", "linear"),
    ] {
        let node = g
            .nodes
            .iter()
            .find(|n| self::target(n) == Some(target))
            .unwrap_or_else(|| panic!("no {target}"));
        let w = node
            .tensors
            .iter()
            .map(|&t| &model.tensors[t as usize])
            .find(|t| t.shape.len() >= 2)
            .unwrap_or_else(|| panic!("{target} owns no weight"));
        assert_eq!(w.dtype, modelmap::model::DType::I8, "{target}");
        let shape: Vec<u64> = q[key]["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(w.shape, shape, "{target}");
        let got: Vec<i64> = w.bytes().unwrap()[..6]
            .iter()
            .map(|&b| i64::from(b as i8))
            .collect();
        let want: Vec<i64> = q[key]["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(got, want, "{target}: int8 values");
        // The float bias rides along.
        assert!(
            node.tensors
                .iter()
                .any(|&t| model.tensors[t as usize].dtype == modelmap::model::DType::F32),
            "{target}: no bias"
        );
    }
}
