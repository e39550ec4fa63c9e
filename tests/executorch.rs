//! ExecuTorch programs (`.pte`) written by ExecuTorch 1.5, checked against what its own
//! deserializer reads from them (`tests/data/executorch/facts.json`, written with the files by
//! `tests/data/executorch/make_executorch.py`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::PathBuf;

use modelmap::model::{AttrValue, Format, Model, NodeKind, TensorData};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/executorch")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(name: &str) -> Model {
    modelmap::load::open(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The plan's own op nodes (not those inside a delegate's graph).
fn ops(model: &Model) -> Vec<&modelmap::model::Node> {
    model
        .graph
        .top_level_nodes()
        .filter(|n| n.kind == NodeKind::Op)
        .collect()
}

/// Attribute `key` of `node`, as its debug text (`Ints([1, 1])`).
fn attr(node: &modelmap::model::Node, key: &str) -> Option<String> {
    node.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| format!("{v:?}"))
}

/// A weight of `shape` whose first values and mean are the fact's.
fn assert_weight(model: &Model, shape: Vec<u64>, fact: &serde_json::Value) {
    let first: Vec<f64> = fact["first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let t = model
        .tensors
        .iter()
        .find(|t| {
            t.shape == shape
                && matches!(&t.data, TensorData::Bytes(b)
                    if common::le_f32s(b).iter().zip(&first).all(|(a, b)| (a - b).abs() <= 1e-15))
        })
        .unwrap_or_else(|| panic!("no weight of shape {shape:?} starting {first:?}"));
    let s = modelmap::stats::tensor_stats(t).unwrap();
    let mean = fact["mean"].as_f64().unwrap();
    assert!(
        (s.mean.unwrap() - mean).abs() <= 1e-9 * (1.0 + mean.abs()),
        "{}",
        t.name
    );
}

#[test]
fn every_instruction_is_a_node_of_its_operator_in_order() {
    let facts = facts();
    for (file, f) in facts.as_object().unwrap() {
        let model = open(file);
        assert_eq!(model.format, Format::ExecuTorch, "{file}");
        assert_eq!(model.graph.name, f["plan"].as_str().unwrap());
        let nodes = ops(&model);
        let instructions = f["instructions"].as_array().unwrap();
        assert_eq!(nodes.len(), instructions.len(), "{file}");
        let values = f["values"].as_array().unwrap();
        for (n, ins) in nodes.iter().zip(instructions) {
            let target = attr(n, "target");
            if ins["kind"] == "KernelCall" {
                let op = ins["op"].as_str().unwrap();
                let full = format!("{op}.{}", ins["overload"].as_str().unwrap());
                assert_eq!(
                    target,
                    Some(format!("{:?}", AttrValue::String(full))),
                    "{file}"
                );
                assert_eq!(&*n.op, op.strip_prefix("aten::").unwrap(), "{file}");
                // Its inputs: every tensor argument but the last (what it returns) and the out
                // arguments it writes.
                let args: Vec<usize> = ins["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_u64().unwrap() as usize)
                    .collect();
                let (ret, rest) = args.split_last().unwrap();
                let outs: Vec<usize> = match values[*ret]["kind"].as_str().unwrap() {
                    "Tensor" => vec![*ret],
                    "TensorList" => values[*ret]["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_u64().unwrap() as usize)
                        .collect(),
                    _ => vec![],
                };
                let read = rest
                    .iter()
                    .filter(|a| values[**a]["kind"] == "Tensor" && !outs.contains(a))
                    .count();
                assert_eq!(n.inputs.len(), read, "{file}: {} inputs", n.name);
                assert_eq!(n.outputs.len(), outs.len(), "{file}: {} outputs", n.name);
            } else {
                assert_eq!(&*n.op, ins["delegate"].as_str().unwrap(), "{file}");
            }
        }
        // The constant methods beside `forward` are metadata.
        for (name, values) in f["methods"].as_object().unwrap() {
            let text: Vec<String> = values
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.to_string())
                .collect();
            assert_eq!(
                common::property(&model, &format!("executorch.method.{name}")),
                Some(text.join(", ").as_str()),
                "{file}: {name}"
            );
        }
        assert!(
            model.metadata.warnings.is_empty(),
            "{:?}",
            model.metadata.warnings
        );
        assert_eq!(
            model.graph.inputs.len(),
            f["inputs"].as_array().unwrap().len()
        );
        assert_eq!(
            model.graph.outputs.len(),
            f["outputs"].as_array().unwrap().len()
        );
    }
}

#[test]
fn the_cnn_flows_through_its_kernels_and_a_view_planned_away() {
    let model = open("cnn.pte");
    for (a, b) in [
        ("input_0", "convolution_0"),
        ("convolution_0", "_native_batch_norm_legit_no_training_0"),
        ("_native_batch_norm_legit_no_training_0", "relu_0"),
        ("relu_0", "mean_0"),
        // `flatten` became a view of mean's output with no instruction of its own.
        ("mean_0", "addmm_0"),
        ("permute_copy_0", "addmm_0"),
        ("addmm_0", "output_0"),
    ] {
        assert!(common::edge(&model, a, b), "{a} → {b}");
    }
    // Scalars and lists are attributes, named from the op's schema.
    let conv = model
        .graph
        .nodes
        .iter()
        .find(|n| n.name == "convolution_0")
        .unwrap();
    assert_eq!(attr(conv, "stride").as_deref(), Some("Ints([1, 1])"));
    assert_eq!(attr(conv, "padding").as_deref(), Some("Ints([1, 1])"));
    assert_eq!(attr(conv, "groups").as_deref(), Some("Int(1)"));
    assert_eq!(
        conv.tensors
            .iter()
            .map(|&t| model.tensors[t as usize].name.as_str())
            .collect::<Vec<_>>(),
        ["convolution_0.weight", "convolution_0.bias"]
    );
}

#[test]
fn every_constant_read_is_a_weight_with_its_values() {
    let facts = facts();
    let model = open("cnn.pte");
    let f = &facts["cnn.pte"];
    let values = f["values"].as_array().unwrap();
    // The constants some instruction reads.
    let read: std::collections::HashSet<usize> = f["instructions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["args"].as_array().unwrap().iter())
        .map(|a| a.as_u64().unwrap() as usize)
        .collect();
    let constants: Vec<&serde_json::Value> = values
        .iter()
        .enumerate()
        .filter(|(i, v)| v["buffer"].as_u64().unwrap_or(0) > 0 && read.contains(i))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(model.tensors.len(), constants.len());
    for c in constants {
        assert_weight(&model, common::json_dims(&c["sizes"]), c);
    }
}

#[test]
fn a_delegated_program_is_its_backend_call() {
    let facts = facts();
    let model = open("cnn_xnnpack.pte");
    let nodes = ops(&model);
    assert_eq!(&*nodes[0].op, "XnnpackBackend");
    let size = facts["cnn_xnnpack.pte"]["delegates"][0]["size"]
        .as_i64()
        .unwrap();
    assert_eq!(
        attr(nodes[0], "processed bytes"),
        Some(format!("Int({size})"))
    );
    assert!(common::edge(&model, "input_0", "XnnpackBackend_0"));
    assert!(common::edge(&model, "XnnpackBackend_0", "output_0"));
}

#[test]
fn damaged_programs_are_errors_that_name_the_file() {
    let data = std::fs::read(data_dir().join("cnn.pte")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("cut.pte");
    // Cut inside the constant segment: the program opens, its weights are errors.
    std::fs::write(&path, &data[..data.len() - 64]).unwrap();
    let m = modelmap::load::open(&path).unwrap();
    let errors = m
        .tensors
        .iter()
        .filter(|t| matches!(&t.data, TensorData::Error(e) if e.contains("cut.pte")))
        .count();
    assert!(errors > 0 && errors < m.tensors.len(), "{errors}");
    // Cut inside the flatbuffer.
    for cut in [12, 100, 600, 1500] {
        std::fs::write(&path, &data[..cut]).unwrap();
        let e = modelmap::load::open(&path).unwrap_err().to_string();
        assert!(e.contains("cut.pte"), "{cut}: {e}");
    }
}

#[test]
fn an_xnnpack_delegate_shows_its_own_graph_inside_its_box() {
    let facts = facts();
    let g = &facts["cnn_xnnpack.pte"]["delegates"][0]["graph"];
    let model = open("cnn_xnnpack.pte");
    // The delegate's nodes, in order, after the one node of the plan.
    let inner = common::subgraph_ops(&model.graph, 0);
    let want: Vec<String> = common::json_strings(&g["nodes"])
        .into_iter()
        .map(|n| n.trim_start_matches("XNN").to_string())
        .collect();
    assert_eq!(inner, want);
    assert_eq!(model.graph.subgraphs.len(), 1);
    assert_eq!(model.graph.subgraphs[0].attribute, "xnnpack");
    // The plan's input flows through the delegate's graph and back out of its node.
    for (a, b) in [
        ("input_0", "xnnpack_input_0"),
        ("xnnpack_input_0", "StaticTranspose_0"),
        ("StaticTranspose_0", "Conv2d_0"),
        ("Conv2d_0", "GlobalAvgPooling2d_0"),
        ("StaticReshape_0", "FullyConnected_0"),
        ("FullyConnected_0", "xnnpack_output_0"),
        ("xnnpack_output_0", "XnnpackBackend_0"),
        ("XnnpackBackend_0", "output_0"),
    ] {
        assert!(common::edge(&model, a, b), "{a} → {b}");
    }
    // Its constants, stored by key in the program's named data, are the nodes' weights.
    let constants: Vec<&serde_json::Value> = g["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["constant"].as_u64().unwrap() > 0)
        .collect();
    assert_eq!(model.tensors.len(), constants.len());
    for c in constants {
        assert_weight(&model, common::json_dims(&c["dims"]), c);
    }
    let conv = model.tensor("Conv2d_0.filter").unwrap();
    assert!(conv.conv_axes.is_some(), "channels-last filter");
}

#[test]
fn weights_kept_in_a_ptd_file_beside_the_program_are_read_from_it() {
    let facts = facts();
    let f = &facts["external/linear.pte"];
    let model = open("external/linear.pte");
    assert_eq!(model.metadata.shards, 2, "the program and its data file");
    let tensors = f["external"]["tensors"].as_object().unwrap();
    assert_eq!(model.tensors.len(), tensors.len());
    for (key, fact) in tensors {
        // Named by their fully qualified names, as the data file keys them.
        let t = model
            .tensor(key)
            .unwrap_or_else(|| panic!("no weight {key}"));
        assert!(modelmap::load::is_file_mapped(match &t.data {
            TensorData::Bytes(b) => b,
            other => panic!("{key}: {other:?}"),
        }));
        assert_weight(&model, common::json_dims(&fact["sizes"]), fact);
    }
    // Without its data file the program still opens, its weights without data, and says why.
    let tmp = tempfile::tempdir().unwrap();
    let alone = tmp.path().join("linear.pte");
    std::fs::copy(data_dir().join("external/linear.pte"), &alone).unwrap();
    let model = modelmap::load::open(&alone).unwrap();
    assert!(
        model
            .tensors
            .iter()
            .all(|t| matches!(t.data, TensorData::Missing))
    );
    assert!(
        model.metadata.warnings.iter().any(|w| w.contains(".ptd")),
        "{:?}",
        model.metadata.warnings
    );
}
