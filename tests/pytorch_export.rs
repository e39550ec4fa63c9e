//! torch.export programs (`.pt2`) written by real PyTorch, checked against what torch itself
//! reports for them (`tests/data/pytorch/export/facts.json`, written with the files by
//! `tests/data/pytorch/export/make_export.py`): every op node with its target, inputs and module,
//! and every weight with its statistics.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use modelmap::model::{AttrValue, Format, Model, NodeKind, TensorData};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/pytorch/export")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(name: &str) -> Model {
    modelmap::load::open(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn strs(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// The op modelmap shows for a target as torch prints it (`aten.linear.default` → `linear`,
/// `cond` → `higher_order.cond`).
fn op_of(target: &str) -> String {
    match target.strip_prefix("aten.") {
        Some(rest) => rest.split('.').next().unwrap().to_string(),
        None => format!("higher_order.{target}"),
    }
}

#[test]
fn every_op_and_weight_matches_what_torch_reports() {
    let facts = facts();
    let files = facts["files"].as_object().unwrap();
    assert_eq!(files.len(), 3);
    for (file, f) in files {
        let model = open(file);
        assert_eq!(model.format, Format::TorchExport, "{file}");
        let g = &model.graph;
        let value = |v: &Option<u32>| g.values[v.unwrap() as usize].name.as_str();

        // Ops: the same nodes, in the same order, with the same targets, inputs and modules.
        let ops: Vec<_> = g
            .top_level_nodes()
            .filter(|n| n.kind == NodeKind::Op)
            .collect();
        // torch's `getitem` nodes that pick one result of a multi-result op are not serialized:
        // the op's outputs carry their names.
        let all = f["nodes"].as_array().unwrap();
        let want: Vec<&serde_json::Value> = all
            .iter()
            .filter(|w| !w["target"].as_str().unwrap().contains("getitem"))
            .collect();
        assert_eq!(ops.len(), want.len(), "{file}: op count");
        for (n, w) in ops.iter().zip(&want) {
            let ctx = format!("{file}: {}", n.name);
            assert_eq!(n.name, w["name"].as_str().unwrap(), "{ctx}");
            let target = w["target"].as_str().unwrap();
            assert_eq!(&*n.op, op_of(target), "{ctx}: op");
            let full = n.attributes.iter().find(|(k, _)| k == "target").unwrap();
            assert!(
                matches!(&full.1, AttrValue::String(s) if s.ends_with(target)),
                "{ctx}: target {:?}",
                full.1
            );
            let inputs: Vec<&str> = n.inputs.iter().map(value).collect();
            assert_eq!(inputs, strs(&w["inputs"]), "{ctx}: inputs");
            // Each higher-order op's branches are subgraphs, in a box of the op's own (named
            // after it) inside its module.
            let subgraphs = strs(&w["subgraphs"]);
            let id = g.nodes.iter().position(|m| std::ptr::eq(m, *n)).unwrap() as u32;
            let mut group = model.hierarchy.get(n.group).unwrap();
            if !subgraphs.is_empty() {
                assert_eq!(group.name, n.name, "{ctx}: the box of its branches");
                group = model.hierarchy.get(group.parent.unwrap()).unwrap();
            }
            assert_eq!(group.path, w["module"].as_str().unwrap(), "{ctx}: module");
            let owned: Vec<&str> = g
                .subgraphs
                .iter()
                .filter(|s| s.owner == id)
                .map(|s| s.attribute.as_str())
                .collect();
            assert_eq!(owned, subgraphs, "{ctx}: subgraphs");
            for (k, s) in g
                .subgraphs
                .iter()
                .enumerate()
                .filter(|(_, s)| s.owner == id)
            {
                let ops = g.own_nodes(k).filter(|n| n.kind == NodeKind::Op).count();
                assert!(ops >= 1, "{ctx}: {} is empty", s.attribute);
                for b in g.own_nodes(k) {
                    let path = &model.hierarchy.get(b.group).unwrap().path;
                    assert!(
                        path.ends_with(&format!("{}/{}", n.name, s.attribute)),
                        "{ctx}: {} is in {path}",
                        b.name
                    );
                }
            }
        }

        // Edges: one per input that another op or a user input produces; weights add none.
        let weights = f["inputs_to_weights"].as_object().unwrap();
        let produced: HashSet<&str> = all
            .iter()
            .map(|w| w["name"].as_str().unwrap())
            .chain(strs(&f["user_inputs"]))
            .collect();
        let inner: usize = want
            .iter()
            .flat_map(|w| strs(&w["inputs"]))
            .filter(|i| produced.contains(i))
            .count();
        let outputs = strs(&f["user_outputs"]).len();
        // Those of the top level (a branch's edges, and those into and out of it, are the
        // subgraph tests' business).
        let scopes = g.node_scopes();
        let top_edges = g
            .edges
            .iter()
            .filter(|e| scopes[e.from as usize].is_none() && scopes[e.to as usize].is_none())
            .count();
        assert_eq!(top_edges, inner + outputs, "{file}: edges");
        let inputs: Vec<&str> = g
            .top_level_nodes()
            .filter(|n| n.kind == NodeKind::Input)
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(inputs, strs(&f["user_inputs"]), "{file}: inputs");

        // Each weight is owned by the first op that reads its placeholder.
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for w in &want {
            for i in strs(&w["inputs"]) {
                if let Some(t) = weights.get(i) {
                    owner
                        .entry(t.as_str().unwrap())
                        .or_insert(w["name"].as_str().unwrap());
                }
            }
        }
        for (tensor, node) in owner {
            let n = g.nodes.iter().find(|n| n.name == node).unwrap();
            let names: Vec<&str> = n
                .tensors
                .iter()
                .map(|&t| model.tensors[t as usize].name.as_str())
                .collect();
            assert!(
                names.contains(&tensor),
                "{file}: {node} owns {names:?}, not {tensor}"
            );
        }

        // Weights and constants: names, dtypes, shapes and statistics.
        let tensors = f["tensors"].as_array().unwrap();
        let mut names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
        let mut expect: Vec<&str> = tensors
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        expect.sort_unstable();
        assert_eq!(names, expect, "{file}: tensors");
        for w in tensors {
            let name = w["name"].as_str().unwrap();
            let t = model.tensor(name).unwrap();
            let ctx = format!("{file}: {name}");
            let dtype = match t.dtype.name() {
                "F32" => "float32",
                "I64" => "int64",
                other => other,
            };
            assert_eq!(dtype, w["dtype"].as_str().unwrap(), "{ctx}: dtype");
            let shape: Vec<u64> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            assert_eq!(t.shape, shape, "{ctx}: shape");
            assert!(
                matches!(t.data, TensorData::Bytes(_)),
                "{ctx}: {:?}",
                t.data
            );
            let s = modelmap::stats::tensor_stats(t).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            for (what, ours, theirs) in [
                ("mean", s.mean.unwrap(), &w["mean"]),
                ("std", s.std.unwrap(), &w["std"]),
                ("min", s.min.unwrap(), &w["min"]),
                ("max", s.max.unwrap(), &w["max"]),
            ] {
                let theirs = theirs.as_f64().unwrap();
                assert!(
                    close(ours, theirs),
                    "{ctx}: {what} {ours} vs torch {theirs}"
                );
            }
        }
        assert_eq!(
            model.parameter_count(),
            f["parameters"].as_u64().unwrap(),
            "{file}: parameters (the state dict; lifted constants are not parameters)"
        );
    }
}

#[test]
fn a_program_names_its_modules_shapes_and_ranges() {
    let model = open("transformer.pt2");
    // Modules by the path that ran each op, each with its class.
    let classes = &model.metadata.module_classes;
    assert_eq!(
        classes.get("model.layers.0.mlp").map(String::as_str),
        Some("Mlp")
    );
    assert_eq!(
        classes
            .get("model.layers.1.self_attn.q_proj")
            .map(String::as_str),
        Some("Linear")
    );
    let layer = model.hierarchy.find("model.layers.1").unwrap();
    let layer = model.hierarchy.get(layer).unwrap();
    // q, k, v, o, gate, up, down and two norms: 4·16² + 3·16·32 + 2·16 parameters.
    assert_eq!(layer.param_count, 4 * 256 + 3 * 512 + 32);
    // The batch dimension is symbolic, with the range export was told.
    let input = model
        .graph
        .nodes
        .iter()
        .find(|n| n.kind == NodeKind::Input)
        .unwrap();
    let v = &model.graph.values[input.outputs[0] as usize];
    let shape: Vec<String> = v
        .shape
        .as_ref()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(shape.len(), 2);
    assert_eq!(shape[1], "5");
    let sym = &shape[0];
    assert!(sym.starts_with('s'), "{shape:?}");
    let range = model
        .metadata
        .properties
        .iter()
        .find(|(k, _)| *k == format!("export.range.{sym}"))
        .map(|(_, v)| v.as_str());
    assert_eq!(range, Some("1 ..= 64"));
    assert_eq!(model.metadata.opsets, [("aten".to_string(), 10)]);
    // Non-tensor arguments are attributes: layer norm's eps is a Python float in the code.
    let view = model.graph.nodes.iter().find(|n| n.name == "view").unwrap();
    let size = view.attributes.iter().find(|(k, _)| k == "size").unwrap();
    assert_eq!(size.1.to_string(), format!("[sym_size_int_1, 5, 2, 8]"));
    // And the op graph draws the way the model computes: a dense chain for the neuron view.
    let chains = modelmap::stats::neurons::find_dense_chains(&model);
    assert!(!chains.is_empty(), "no dense chain in the exported LLaMA");
}

#[test]
fn broken_programs_are_errors_naming_the_file() {
    let src = std::fs::read(data_dir().join("cnn.pt2")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Truncated anywhere: an error (or, past the central directory, a model), never a panic.
    for cut in [
        0usize,
        10,
        100,
        src.len() / 3,
        src.len() / 2,
        src.len() - 30,
    ] {
        let p = dir.path().join(format!("cut{cut}.pt2"));
        std::fs::write(&p, &src[..cut]).unwrap();
        if let Err(e) = modelmap::load::open(&p) {
            assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        }
    }
    // The program's JSON garbled in place (same length, so the archive still reads).
    let json_at = src
        .windows(b"\"graph_module\"".len())
        .position(|w| w == b"\"graph_module\"")
        .unwrap();
    let mut bad = src.clone();
    bad[json_at] = b'#';
    let p = dir.path().join("garbled.pt2");
    std::fs::write(&p, &bad).unwrap();
    let e = modelmap::load::open(&p).err().unwrap().to_string();
    assert!(
        e.contains("garbled.pt2") && e.contains("models/model.json"),
        "{e}"
    );
    assert!(e.contains("invalid JSON"), "{e}");
}
