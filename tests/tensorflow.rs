//! TensorFlow frozen graphs (`.pb`) written by real TensorFlow, checked against what TensorFlow
//! itself parses from them (`tests/data/tensorflow/facts.json`, written with the files by
//! `tests/data/tensorflow/make_tensorflow.py`): every op with its inputs, every constant with its
//! values, and the constants folded into the ops that read them.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::collections::{HashMap, HashSet};
mod common;

use std::path::PathBuf;

use modelmap::model::{ConvAxes, Format, Model, NodeKind};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tensorflow")
}

fn facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open(name: &str) -> Model {
    modelmap::load::open(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A JSON array of sizes.
/// `(node, output)` of an input as TensorFlow writes it; `None` for a control input.
fn input_ref(s: &str) -> Option<(&str, usize)> {
    if s.starts_with('^') {
        return None;
    }
    match s.rsplit_once(':') {
        Some((n, k)) if k.parse::<usize>().is_ok() => Some((n, k.parse().unwrap())),
        _ => Some((s, 0)),
    }
}

/// The constant node `name` stands for: itself if a Const, or the end of an Identity chain.
fn constant_of(
    name: &str,
    op_of: &HashMap<&str, &str>,
    inputs_of: &HashMap<&str, Vec<&str>>,
) -> Option<String> {
    let mut name = name.to_string();
    loop {
        match op_of[name.as_str()] {
            "Const" => return Some(name),
            "Identity" | "Snapshot" | "StopGradient" => {
                name = inputs_of[name.as_str()]
                    .iter()
                    .find_map(|s| input_ref(s))?
                    .0
                    .to_string();
            }
            _ => return None,
        }
    }
}

#[test]
fn ops_inputs_and_constants_match_what_tensorflow_parses() {
    let facts = facts();
    let files = facts["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    for f in files {
        let file = f["file"].as_str().unwrap();
        let model = open(file);
        assert_eq!(model.format, Format::TensorFlow, "{file}");
        assert!(
            model.metadata.warnings.is_empty(),
            "{file}: {:?}",
            model.metadata.warnings
        );
        let g = &model.graph;
        let nodes = f["nodes"].as_array().unwrap();
        let op_of: HashMap<&str, &str> = nodes
            .iter()
            .map(|n| (n["name"].as_str().unwrap(), n["op"].as_str().unwrap()))
            .collect();
        let inputs_of: HashMap<&str, Vec<&str>> = nodes
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap(),
                    n["inputs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap())
                        .collect(),
                )
            })
            .collect();
        // The constant a node stands for: a Const, or an Identity chain ending in one.
        let constant = |name: &str| constant_of(name, &op_of, &inputs_of);

        // Ops: every node but constants, their Identities and NoOps, in file order.
        let want: Vec<&serde_json::Value> = nodes
            .iter()
            .filter(|n| {
                let name = n["name"].as_str().unwrap();
                n["op"] != "NoOp" && constant(name).is_none()
            })
            .collect();
        let drawn: Vec<_> = g
            .nodes
            .iter()
            .filter(|n| n.kind != NodeKind::Output)
            .collect();
        assert_eq!(drawn.len(), want.len(), "{file}: nodes");
        let mut owner_want: HashMap<String, &str> = HashMap::new();
        let mut edges = 0;
        for (n, w) in drawn.iter().zip(&want) {
            let name = w["name"].as_str().unwrap();
            let ctx = format!("{file}: {name}");
            assert_eq!(n.name, name, "{ctx}");
            let op = w["op"].as_str().unwrap();
            let is_input = op == "Placeholder" && inputs_of[name].is_empty();
            if is_input {
                assert_eq!(n.kind, NodeKind::Input, "{ctx}");
                continue;
            }
            assert_eq!(&*n.op, op, "{ctx}");
            // Data inputs in order: a constant by its name, another op's output as `name[:k]`.
            let expect: Vec<String> = inputs_of[name]
                .iter()
                .filter_map(|s| input_ref(s))
                .map(|(src, k)| match constant(src) {
                    Some(c) => {
                        owner_want.entry(c.clone()).or_insert(name);
                        c
                    }
                    None => {
                        edges += 1;
                        if k == 0 {
                            src.to_string()
                        } else {
                            format!("{src}:{k}")
                        }
                    }
                })
                .collect();
            let got: Vec<&str> = n
                .inputs
                .iter()
                .map(|v| g.values[v.unwrap() as usize].name.as_str())
                .collect();
            assert_eq!(got, expect, "{ctx}: inputs");
        }
        assert_eq!(g.edges.len(), edges + g.outputs.len(), "{file}: edges");

        // Constants: every one a weight with TensorFlow's dtype, shape and values, owned by the
        // first op that reads it.
        let consts = f["constants"].as_object().unwrap();
        assert_eq!(model.tensors.len(), consts.len(), "{file}: constants");
        for (name, c) in consts {
            let ctx = format!("{file}: {name}");
            let t = model
                .tensor(name)
                .unwrap_or_else(|| panic!("{ctx}: missing"));
            let shape = common::json_dims(&c["shape"]);
            assert_eq!(t.shape, shape, "{ctx}");
            let bytes = t.bytes().unwrap();
            for (i, v) in c["first"].as_array().unwrap().iter().enumerate() {
                let got = match c["dtype"].as_str().unwrap() {
                    "float32" => f64::from(f32::from_le_bytes(
                        bytes[4 * i..4 * i + 4].try_into().unwrap(),
                    )) as f32,
                    "int32" => {
                        i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()) as f32
                    }
                    "int64" => {
                        i64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap()) as f32
                    }
                    other => panic!("{ctx}: {other}"),
                };
                assert_eq!(got, v.as_f64().unwrap() as f32, "{ctx}[{i}]");
            }
            let id = model.tensor_index[name.as_str()];
            let owner = g
                .nodes
                .iter()
                .find(|n| n.tensors.contains(&id))
                .map(|n| n.name.as_str());
            assert_eq!(owner, owner_want.get(name).copied(), "{ctx}: owner");
        }
    }
}

#[test]
fn scopes_inputs_outputs_and_kernels() {
    let model = open("mlp_v1.pb");
    let g = &model.graph;
    let names = |ids: &[u32]| -> Vec<String> {
        ids.iter()
            .map(|&v| g.values[v as usize].name.clone())
            .collect()
    };
    assert_eq!(names(&g.inputs), ["features"]);
    // Written with add_shapes=True: values know their shapes, the batch dimension unknown.
    let features = &g.values[g.inputs[0] as usize];
    assert_eq!(
        format!("{:?}", features.shape),
        "Some([Unknown, Fixed(12)])"
    );
    let mut outs = names(&g.outputs);
    outs.sort();
    assert_eq!(outs, ["heads/box", "heads/class_logits"]);
    // `tf.split` has two outputs, each read by its head.
    let split = g.nodes.iter().find(|n| n.name == "split").unwrap();
    assert_eq!(split.outputs.len(), 2);
    for (head, value) in [("heads/MatMul", "split"), ("heads/MatMul_1", "split:1")] {
        let n = g.nodes.iter().find(|n| n.name == head).unwrap();
        assert_eq!(
            g.values[n.inputs[0].unwrap() as usize].name,
            value,
            "{head}"
        );
    }
    // Name scopes are the hierarchy.
    let h = &model.hierarchy;
    let hidden = h.find("hidden").unwrap();
    assert_eq!(h.get(hidden).unwrap().param_count, 12 * 16 + 16);

    // Conv filters are drawn by TensorFlow's axes: `[kh, kw, in, out]`, depthwise
    // `[kh, kw, in, multiplier]`.
    let model = open("cnn_frozen.pb");
    let kernel = |op: &str| {
        let n = model.graph.nodes.iter().find(|n| &*n.op == op).unwrap();
        let t = &model.tensors[n.tensors[0] as usize];
        (t.shape.clone(), t.conv_axes)
    };
    let (shape, axes) = kernel("Conv2D");
    assert_eq!(shape, [3, 3, 3, 8]);
    assert_eq!(
        axes,
        Some(ConvAxes {
            kh: 0,
            kw: 1,
            input: 2,
            out: 3
        })
    );
    let (shape, axes) = kernel("DepthwiseConv2dNative");
    assert_eq!(shape, [3, 3, 8, 1]);
    assert_eq!(axes.map(|a| (a.input, a.out)), Some((3, 2)));
    let groups: HashSet<&str> = model
        .hierarchy
        .groups
        .iter()
        .map(|g| g.path.as_str())
        .collect();
    for scope in [
        "sequential_1/conv_1",
        "sequential_1/dw_1",
        "sequential_1/bn_1/batchnorm",
    ] {
        assert!(groups.contains(scope), "{scope}: {groups:?}");
    }
}

#[test]
fn bad_graphs_are_errors_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("modelmap-tf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = std::fs::read(data_dir().join("attention_frozen.pb")).unwrap();
    for cut in [1, 7, data.len() / 3, data.len() - 3] {
        let p = dir.join(format!("cut{cut}.pb"));
        std::fs::write(&p, &data[..cut]).unwrap();
        let e = modelmap::load::open(&p).err().map(|e| e.to_string());
        // A protobuf cut between messages can still parse as a shorter graph; never a panic.
        if let Some(e) = e {
            assert!(e.contains(&format!("cut{cut}.pb")), "{e}");
        }
    }
    let p = dir.join("empty_graph.pb");
    std::fs::write(&p, b"").unwrap();
    assert!(modelmap::load::open(&p).is_err());
    let p = dir.join("text.pb");
    std::fs::write(&p, b"node { name: \"x\" op: \"Placeholder\" }").unwrap();
    let e = modelmap::load::open(&p).unwrap_err().to_string();
    assert!(e.contains("text.pb") && e.contains("TensorFlow"), "{e}");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..300 {
        let mut d = data.clone();
        for _ in 0..6 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state % d.len() as u64) as usize;
            d[i] ^= (state >> 40) as u8 | 1;
        }
        let _ = modelmap::load::open_bytes(dir.join("flip.pb"), bytes::Bytes::from(d));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn saved_models_draw_their_serving_function_with_the_checkpoint_weights() {
    let facts = facts();
    let saved = facts["saved_models"].as_array().unwrap();
    assert_eq!(saved.len(), 3);
    // What modelmap folds, as TensorFlow's own freezing does.
    let folded = [
        "Const",
        "NoOp",
        "Placeholder",
        "Identity",
        "IdentityN",
        "ReadVariableOp",
    ];
    for f in saved {
        let dir = f["dir"].as_str().unwrap();
        // Opened by its folder, as a user names it.
        let model = open(dir);
        assert_eq!(model.format, Format::TensorFlow, "{dir}");
        assert!(
            model.metadata.warnings.is_empty(),
            "{dir}: {:?}",
            model.metadata.warnings
        );
        let g = &model.graph;
        let mut ops: HashMap<&str, u64> = HashMap::new();
        for n in g.nodes.iter().filter(|n| n.kind == NodeKind::Op) {
            if !folded.contains(&&*n.op) {
                *ops.entry(&*n.op).or_default() += 1;
            }
        }
        let want: HashMap<&str, u64> = f["ops"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(ops, want, "{dir}: ops");
        let names = |ids: &[u32]| -> Vec<String> {
            let mut v: Vec<String> = ids
                .iter()
                .map(|&v| g.values[v as usize].name.clone())
                .collect();
            v.sort();
            v
        };
        let inputs: Vec<&str> = f["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(names(&g.inputs), inputs, "{dir}: inputs");
        let outputs: Vec<String> = g
            .nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Output)
            .map(|n| n.name.clone())
            .collect();
        let want_out: Vec<&str> = f["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(outputs, want_out, "{dir}: outputs");
        // Every variable: its checkpoint values, read by some op of the graph.
        for (name, w) in f["weights"].as_object().unwrap() {
            let ctx = format!("{dir}: {name}");
            let t = model
                .tensor(name)
                .unwrap_or_else(|| panic!("{ctx}: missing"));
            let shape = common::json_dims(&w["shape"]);
            assert_eq!(t.shape, shape, "{ctx}");
            let b = t.bytes().unwrap_or_else(|| panic!("{ctx}: {:?}", t.data));
            for (i, v) in w["first"].as_array().unwrap().iter().enumerate() {
                let x = f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
                assert_eq!(x, v.as_f64().unwrap() as f32, "{ctx}[{i}]");
            }
            let id = model.tensor_index[name.as_str()];
            assert!(
                g.nodes.iter().any(|n| n.tensors.contains(&id)),
                "{ctx}: no op reads it"
            );
        }
    }
    // The CNN's conv kernel is drawn by TensorFlow's axes, owned by the Conv2D.
    let model = open("cnn_saved");
    let conv = model
        .graph
        .nodes
        .iter()
        .find(|n| &*n.op == "Conv2D")
        .unwrap();
    let k = &model.tensors[conv.tensors[0] as usize];
    assert_eq!(k.name, "sequential/conv/kernel");
    assert_eq!(k.conv_axes.map(|a| (a.input, a.out)), Some((2, 3)));
}

/// A TF2 SavedModel with no signature (`make_unsigned.py`: a `tf.Module` whose function was never
/// traced with an input signature): no op graph can be drawn, so its variables are shown as a
/// checkpoint's weights, named as TensorFlow names them, with a warning that says why.
#[test]
fn a_saved_model_without_a_signature_shows_its_variables() {
    let text = std::fs::read_to_string(data_dir().join("unsigned_facts.json")).unwrap();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let m = open("unsigned_saved");
    let vars = facts["variables"].as_object().unwrap();
    assert_eq!(m.tensors.len(), vars.len());
    for (name, f) in vars {
        let t = m
            .tensor(name)
            .unwrap_or_else(|| panic!("{name} is missing"));
        assert_eq!(t.shape, common::json_dims(&f["shape"]), "{name}");
        let stats = modelmap::stats::tensor_stats(t).unwrap();
        let first: Vec<f64> = f["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let bytes = t.bytes().unwrap();
        let got: Vec<f64> = match f["dtype"].as_str().unwrap() {
            "float32" => common::le_f32s(bytes),
            "int64" => bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            d => panic!("{name}: {d}"),
        };
        assert_eq!(&got[..first.len()], &first[..], "{name}");
        assert_eq!(stats.count, got.len() as u64, "{name}");
    }
    let w = m.metadata.warnings.join("\n");
    assert!(w.contains("no serving signature"), "{w}");
    // One module node per variable scope, owning its kernel and bias, as a checkpoint's weights.
    for module in ["encoder", "head"] {
        let node = m.graph.nodes.iter().find(|n| n.name == module);
        let owned: Vec<&str> = node
            .unwrap_or_else(|| panic!("no node {module}"))
            .tensors
            .iter()
            .map(|&t| m.tensors[t as usize].name.as_str())
            .collect();
        assert_eq!(owned.len(), 2, "{module}: {owned:?}");
        assert!(owned.iter().all(|n| n.starts_with(module)), "{owned:?}");
    }
}

#[test]
fn a_saved_model_without_a_signature_says_so() {
    // A SavedModel whose graph calls a function no signature names.
    let dir = std::env::temp_dir().join(format!("modelmap-sm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // SavedModel { meta_graphs { graph_def { node { name: "call" op: "StatefulPartitionedCall" } } } }
    let field = |tag: u8, body: &[u8]| [&[tag, body.len() as u8][..], body].concat();
    let node = [
        field(0x0a, b"call"),
        field(0x12, b"StatefulPartitionedCall"),
    ]
    .concat();
    let meta = field(0x12, &field(0x0a, &node));
    let sm = [&[0x08, 0x01][..], &field(0x12, &meta)].concat();
    std::fs::write(dir.join("saved_model.pb"), sm).unwrap();
    let e = modelmap::load::open(&dir).unwrap_err().to_string();
    assert!(
        e.contains("saved_model.pb") && e.contains("no serving signature"),
        "{e}"
    );
    // A SavedModel whose variables are missing still draws its graph, and says why it has no
    // weights.
    let copy = std::env::temp_dir().join(format!("modelmap-sm2-{}", std::process::id()));
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(
        data_dir().join("cnn_saved/saved_model.pb"),
        copy.join("saved_model.pb"),
    )
    .unwrap();
    let m = modelmap::load::open(&copy).unwrap();
    assert!(m.graph.op_node_count() > 10);
    let w = m.metadata.warnings.join("\n");
    assert!(w.contains("variables are not read"), "{w}");
    // Damaged checkpoint indexes and object graphs: the graph still opens, or an error; no panic.
    let vars = copy.join("variables");
    std::fs::create_dir_all(&vars).unwrap();
    let src = data_dir().join("cnn_saved/variables");
    std::fs::copy(
        src.join("variables.data-00000-of-00001"),
        vars.join("variables.data-00000-of-00001"),
    )
    .unwrap();
    let index = std::fs::read(src.join("variables.index")).unwrap();
    let mut state = 0x51ed_2701_9e37_79b9u64;
    for round in 0..200 {
        let mut d = index.clone();
        if round % 10 == 0 {
            d.truncate((state % d.len() as u64) as usize);
        }
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if !d.is_empty() {
                let i = (state % d.len() as u64) as usize;
                d[i] ^= (state >> 40) as u8 | 1;
            }
        }
        std::fs::write(vars.join("variables.index"), &d).unwrap();
        if let Ok(m) = modelmap::load::open(&copy) {
            for t in &m.tensors {
                let _ = modelmap::stats::tensor_stats(t);
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&copy).ok();
}

#[test]
fn a_text_graph_reads_as_its_binary_twin() {
    // `mlp_v1.pbtxt` is `mlp_v1.pb` written by tf.io.write_graph(as_text=True).
    let bin = open("mlp_v1.pb");
    let text = open("mlp_v1.pbtxt");
    assert_eq!(text.format, Format::TensorFlow);
    let view = |m: &Model| -> Vec<(String, String, Vec<String>)> {
        m.graph
            .nodes
            .iter()
            .map(|n| {
                let inputs = n
                    .inputs
                    .iter()
                    .map(|v| m.graph.values[v.unwrap() as usize].name.clone())
                    .collect();
                (n.name.clone(), n.op.to_string(), inputs)
            })
            .collect()
    };
    assert_eq!(view(&text), view(&bin));
    assert_eq!(text.tensors.len(), bin.tensors.len());
    for (a, b) in text.tensors.iter().zip(&bin.tensors) {
        assert_eq!((&a.name, &a.shape, a.dtype), (&b.name, &b.shape, b.dtype));
        assert_eq!(a.bytes(), b.bytes(), "{}", a.name);
    }
    let shape = |m: &Model| format!("{:?}", m.graph.values[m.graph.inputs[0] as usize].shape);
    assert_eq!(shape(&text), shape(&bin));
}

fn control_facts() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("control_facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A Keras LSTM's recurrence is a `While` op whose `cond` and `body` are library functions:
/// they are drawn inside its box, fed by its operands, and the LSTM cell in the body owns the
/// layer's weights (`control_facts.json`, written with the models by `make_control.py`).
#[test]
fn an_lstm_while_loop_is_drawn_with_its_cond_and_body() {
    let facts = control_facts();
    let model = open("lstm_saved");
    check_while(&model, &facts["whiles"][0], &facts["lstm_variables"], true);
}

/// The same LSTM frozen without lowering its control flow: the While's functions are in the
/// GraphDef's library, the kernels constants it carries through the loop unchanged.
#[test]
fn a_frozen_lstm_while_loop_is_drawn_with_its_cond_and_body() {
    let facts = control_facts();
    let model = open("lstm_frozen.pb");
    check_while(
        &model,
        &facts["frozen_whiles"][0],
        &facts["lstm_variables"],
        false,
    );
}

/// Checks a While against TensorFlow's facts of it, and that the cell in its body owns the LSTM's
/// variables (found by name, or else by shape and values, as freezing renames them).
fn check_while(model: &Model, w: &serde_json::Value, vars: &serde_json::Value, by_name: bool) {
    let g = &model.graph;
    let name = w["name"].as_str().unwrap();
    let id = g
        .top_level_nodes()
        .position(|n| n.name == name)
        .unwrap_or_else(|| panic!("no {name}")) as u32;
    let owner = &g.nodes[id as usize];
    assert_eq!(&*owner.op, w["op"].as_str().unwrap());
    let path = |i: u32| {
        model.hierarchy.groups[g.nodes[i as usize].group as usize]
            .path
            .clone()
    };
    let owner_box = path(id);
    assert!(owner_box.ends_with("lstm_1/while"), "{owner_box}");
    let producer = g.producers();
    for key in ["cond", "body"] {
        let f = &w["functions"][key];
        let k = g
            .subgraphs
            .iter()
            .position(|s| s.owner == id && s.attribute == key)
            .unwrap_or_else(|| panic!("{key}: no subgraph"));
        let s = &g.subgraphs[k];
        assert_eq!(s.name, f["name"].as_str().unwrap(), "{key}");
        // The function's ops, as TensorFlow lists them (those it does not fold away).
        let mut ops: HashMap<String, u64> = HashMap::new();
        for n in g.own_nodes(k).filter(|n| n.kind == NodeKind::Op) {
            if !matches!(&*n.op, "Identity" | "Const" | "ReadVariableOp" | "NoOp") {
                *ops.entry(n.op.to_string()).or_default() += 1;
            }
        }
        let want: HashMap<String, u64> = f["ops"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(ops, want, "{key}: ops");
        // Each argument is an input fed by the While's operand at its place, except the
        // variables (the kernels), which stay the weights they are (a constant operand is just
        // where a carried value starts: an input too).
        let args: Vec<&str> = f["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let inputs: Vec<u32> = g
            .own_node_ids(k)
            .filter(|&i| g.nodes[i as usize].kind == NodeKind::Input)
            .collect();
        let types = w["operand_types"].as_array().unwrap();
        assert_eq!(types.len(), args.len());
        // Arguments without an input node: variables, and (frozen) constants the loop carries
        // unchanged, the kernels.
        let names: HashSet<&str> = inputs
            .iter()
            .map(|&p| g.nodes[p as usize].name.as_str())
            .collect();
        for (j, arg) in args.iter().enumerate() {
            if names.contains(arg) {
                continue;
            }
            let operand = owner.inputs[j].unwrap();
            let weight = model.tensor(&g.values[operand as usize].name).is_some();
            assert!(
                types[j] == "resource" || weight,
                "{key}: {arg} has no input node"
            );
        }
        if key == "body" {
            assert_eq!(
                args.len() - inputs.len(),
                3,
                "{key}: the cell's three variables"
            );
        }
        for &p in &inputs {
            let arg = &g.nodes[p as usize].name;
            let j = args.iter().position(|a| a == arg).unwrap();
            let at = s
                .inputs
                .iter()
                .position(|&v| v == g.nodes[p as usize].outputs[0]);
            assert_ne!(types[j], "resource", "{key}: {arg}");
            let slot = s.fed_by[at.unwrap()].unwrap_or_else(|| panic!("{key}: {arg} unfed"));
            let outer = owner.inputs[slot].unwrap();
            // From the op computing it; a constant operand is a weight, which no op produces.
            match producer[outer as usize] {
                Some(from) => assert!(
                    g.edges.iter().any(|e| e.from == from && e.to == p),
                    "{key}: {arg} (argument {j}) is fed from outside"
                ),
                None => assert!(model.tensor(&g.values[outer as usize].name).is_some()),
            }
            assert!(path(p).starts_with(&format!("{owner_box}/{key}")));
        }
        // What it returns flows into the While.
        let results = g
            .own_node_ids(k)
            .filter(|&i| g.nodes[i as usize].kind == NodeKind::Output)
            .filter(|&i| g.edges.iter().any(|e| e.from == i && e.to == id))
            .count();
        assert!(results >= 1 && results <= f["results"].as_array().unwrap().len());
    }
    // The cell's MatMuls and BiasAdd, in the body, own the layer's variables, with Keras's values.
    let body = g
        .subgraphs
        .iter()
        .position(|s| s.owner == id && s.attribute == "body")
        .unwrap();
    for (var, v) in vars.as_object().unwrap() {
        let shape: Vec<u64> = v["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        let first: Vec<f32> = v["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let starts = |t: &modelmap::model::Tensor| {
            t.shape == shape
                && t.bytes().is_some_and(|b| {
                    first.iter().enumerate().all(|(i, x)| {
                        f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) == *x
                    })
                })
        };
        let t = if by_name {
            model.tensor_index[var.as_str()]
        } else {
            model
                .tensors
                .iter()
                .position(starts)
                .unwrap_or_else(|| panic!("{var}: not found")) as u32
        };
        let holders: Vec<&str> = g
            .nodes
            .iter()
            .filter(|n| n.tensors.contains(&t))
            .map(|n| &*n.op)
            .collect();
        assert_eq!(holders.len(), 1, "{var}: {holders:?}");
        let holder = g.nodes.iter().position(|n| n.tensors.contains(&t)).unwrap() as u32;
        assert!(
            g.own_node_ids(body).contains(&holder),
            "{var} is owned in the body"
        );
        assert!(
            matches!(holders[0], "MatMul" | "BiasAdd"),
            "{var}: {holders:?}"
        );
        assert!(
            starts(&model.tensors[t as usize]),
            "{var}: shape and values"
        );
    }
    assert!(
        model.metadata.warnings.is_empty(),
        "{:?}",
        model.metadata.warnings
    );
}
