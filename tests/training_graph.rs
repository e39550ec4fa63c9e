//! A model graph logged into a TensorBoard event file (`SummaryWriter.add_graph`: a traced
//! CNN), found by the training stage and opened by the TensorFlow loader where it lies, against
//! the GraphDef TensorBoard's EventAccumulator reads back (`tests/data/training/graphs/`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns may unwrap too"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use modelmap::training::load_runs;

mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/training/graphs")
}

#[test]
fn pytorch_add_graph_opens_as_a_model() {
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("facts_torch.json")).unwrap())
            .unwrap();
    let runs = load_runs(root()).unwrap();
    let run = runs.get(facts["run"].as_str().unwrap()).unwrap();
    assert!(run.issues.is_empty(), "{:?}", run.issues);
    assert_eq!(run.scalars["loss"].len(), 3, "the scalars beside the graph");
    let graph = run.graph.as_ref().expect("the run's graph");
    let model = modelmap::load::open_graph_in(&graph.file, graph.offset, graph.len).unwrap();
    let nodes = facts["nodes"].as_array().unwrap();
    let names: BTreeSet<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    // Every node of the GraphDef is an op node (the loader adds an `Output` node for the graph's
    // output beside them).
    let ops = model
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, modelmap::model::NodeKind::Op))
        .count();
    assert_eq!(ops, nodes.len());
    let mut edges = 0;
    for n in nodes {
        let name = n["name"].as_str().unwrap();
        let id = model
            .graph
            .nodes
            .iter()
            .position(|m| m.name == name && matches!(m.kind, modelmap::model::NodeKind::Op))
            .unwrap();
        assert_eq!(
            &*model.graph.nodes[id].op,
            n["op"].as_str().unwrap(),
            "{name}"
        );
        // Every input that names a node is an edge (PyTorch's graphs also name a module's
        // attribute holder, `…/weight/conv1`, which is no node).
        for input in n["inputs"].as_array().unwrap() {
            let input = input.as_str().unwrap();
            if names.contains(input) {
                assert!(common::edge(&model, input, name), "{input} → {name}");
                edges += 1;
            }
        }
    }
    assert!(edges > 40, "{edges} edges checked");
    // The scopes group the nodes: the conv and linear modules are boxes.
    let groups: BTreeSet<&str> = model
        .graph
        .nodes
        .iter()
        .filter_map(|n| model.hierarchy.get(n.group))
        .map(|g| g.path.as_str())
        .collect();
    for module in [
        "Net/Conv2d[conv1]",
        "Net/Conv2d[conv2]",
        "Net/Linear[fc1]",
        "Net/Linear[fc2]",
    ] {
        assert!(groups.contains(module), "{module} in {groups:?}");
    }
}

/// A graph whose bytes the file no longer holds is an error naming the file, not a panic.
#[test]
fn graph_past_the_end_is_an_error() {
    let runs = load_runs(root()).unwrap();
    let graph = runs.runs[0].graph.clone().unwrap();
    let e = modelmap::load::open_graph_in(&graph.file, graph.offset + 1_000_000, graph.len)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("events.out.tfevents") && e.contains("shorter"),
        "{e}"
    );
}

/// Keras 3's TensorBoard callback logs the model's JSON config (the `keras` summary); it opens as
/// the layer graph, without weights.
#[test]
fn keras_callback_config_opens_as_a_model() {
    let facts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("facts_keras.json")).unwrap())
            .unwrap();
    let runs = load_runs(root()).unwrap();
    let run = runs.get(facts["run"].as_str().unwrap()).unwrap();
    let graph = run.graph.as_ref().expect("the run's model config");
    assert_eq!(graph.kind, modelmap::training::GraphKind::KerasConfig);
    let model = modelmap::load::open_keras_config_in(&graph.file, graph.offset, graph.len).unwrap();
    assert_eq!(model.format, modelmap::model::Format::Keras);
    assert_eq!(model.graph.name, facts["name"].as_str().unwrap());
    let layers = facts["layers"].as_array().unwrap();
    for l in layers {
        let name = l["name"].as_str().unwrap();
        let class = l["class"].as_str().unwrap();
        if class == "InputLayer" {
            continue;
        }
        let node = model
            .graph
            .nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no layer {name}"));
        assert_eq!(&*node.op, class, "{name}");
    }
    assert!(common::edge(&model, "hidden", "drop") && common::edge(&model, "drop", "score"));
    assert!(model.tensors.is_empty(), "a config has no weights");
}
