//! Every model file of the conformance corpus against `facts.json`: what `modelmap info --json`
//! reports must agree exactly with the reference libraries (onnx, safetensors, gguf).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

mod common;

use serde_json::{Value, json};

use modelmap::model::{NodeKind, Summary};

fn summary_json(path: &std::path::Path) -> Value {
    let model = modelmap::load::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_value(Summary::of(&model)).unwrap()
}

fn check_io(file: &str, what: &str, facts: &Value, ours: &Value, dtype_key: &str) {
    let f = facts.as_array().unwrap();
    let o = ours.as_array().unwrap();
    assert_eq!(f.len(), o.len(), "{file}: {what} count");
    for (a, b) in f.iter().zip(o) {
        assert_eq!(a["name"], b["name"], "{file}: {what} name");
        assert_eq!(a["shape"], b["shape"], "{file}: {what} {} shape", a["name"]);
        if dtype_key == "elem_type" {
            assert_eq!(
                a["elem_type"], b["dtype"],
                "{file}: {what} {} dtype",
                a["name"]
            );
        }
    }
}

#[test]
fn info_matches_reference_facts_for_every_model_file() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let facts = common::facts(&corpus);
    let mut checked = 0;
    for f in facts["files"].as_array().unwrap() {
        let rel = f["path"].as_str().unwrap();
        let format = f["format"].as_str().unwrap();
        if matches!(format, "csv" | "tfevents") {
            continue; // logs: tests/training.rs
        }
        let path = corpus.join(rel);
        let s = summary_json(&path);
        assert_eq!(s["format"], json!(format), "{rel}: format");
        match format {
            "onnx" => {
                for key in [
                    "nodes",
                    "nodes_with_subgraphs",
                    "op_types",
                    "parameters",
                    "producer",
                    "opset",
                    "ir_version",
                ] {
                    assert_eq!(s[key], f[key], "{rel}: {key}");
                }
                assert_eq!(s["tensors"], f["initializers"], "{rel}: initializer count");
                assert_eq!(
                    s["constant_parameters"], f["constant_node_parameters"],
                    "{rel}: Constant-node parameters"
                );
                check_io(rel, "inputs", &f["inputs"], &s["inputs"], "elem_type");
                check_io(rel, "outputs", &f["outputs"], &s["outputs"], "elem_type");
            }
            "safetensors" => {
                for key in ["shards", "parameters", "parameters_by_dtype"] {
                    assert_eq!(s[key], f[key], "{rel}: {key}");
                }
                assert_eq!(s["tensors"], f["tensor_count"], "{rel}: tensor count");
                if let Some(md) = f["metadata"].as_object() {
                    for (k, v) in md {
                        assert_eq!(&s["metadata"][k], v, "{rel}: metadata {k}");
                    }
                }
            }
            "gguf" => {
                assert_eq!(s["tensors"], f["tensor_count"], "{rel}: tensor count");
                assert_eq!(s["parameters"], f["parameters"], "{rel}: parameters");
                assert_eq!(s["architecture"], f["architecture"], "{rel}: architecture");
                assert_eq!(
                    s["metadata_keys"], f["metadata_keys"],
                    "{rel}: metadata keys"
                );
            }
            "json-layers" => {
                assert_eq!(s["nodes"], f["nodes"], "{rel}: nodes");
                assert_eq!(s["op_types"], f["op_types"], "{rel}: op_types");
                check_io(rel, "inputs", &f["inputs"], &s["inputs"], "type");
                check_io(rel, "outputs", &f["outputs"], &s["outputs"], "type");
            }
            other => panic!("{rel}: facts.json names a format this test does not know: {other}"),
        }
        // Per-tensor facts: name, dtype and shape of the listed tensors.
        if let Some(tensors) = f["tensors"].as_array() {
            let model = modelmap::load::open(&path).unwrap();
            for t in tensors {
                let name = t["name"].as_str().unwrap();
                let ours = model
                    .tensor(name)
                    .unwrap_or_else(|| panic!("{rel}: tensor {name} missing"));
                let shape: Vec<u64> = serde_json::from_value(t["shape"].clone()).unwrap();
                assert_eq!(ours.shape, shape, "{rel}: {name} shape");
                let dtype = t
                    .get("dtype")
                    .or_else(|| t.get("type"))
                    .and_then(Value::as_str)
                    .unwrap();
                let ours_dtype = if format == "onnx" {
                    ours.dtype.onnx_name()
                } else {
                    ours.dtype.name()
                };
                assert_eq!(ours_dtype, dtype, "{rel}: {name} dtype");
                if let Some(count) = t["count"].as_u64() {
                    assert_eq!(ours.elements(), count, "{rel}: {name} count");
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} corpus model files checked");
}

#[test]
fn onnx_subgraphs_are_inlined_in_boxes_of_their_owner() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    // silero-vad is one `If` on the sample rate; its two branches hold all of the model.
    let model = modelmap::load::open(&corpus.join("real/silero/silero_vad.onnx")).unwrap();
    let g = &model.graph;
    let if_node = g
        .nodes
        .iter()
        .position(|n| &*n.op == "If")
        .expect("If node") as u32;
    let subs: Vec<usize> = (0..g.subgraphs.len())
        .filter(|&k| g.subgraphs[k].owner == if_node)
        .collect();
    let attrs: Vec<&str> = subs
        .iter()
        .map(|&k| g.subgraphs[k].attribute.as_str())
        .collect();
    assert_eq!(attrs, ["else_branch", "then_branch"], "in attribute order");
    let path = |id: u32| {
        model
            .hierarchy
            .get(g.nodes[id as usize].group)
            .unwrap()
            .path
            .clone()
    };
    assert_eq!(path(if_node), "If_0", "the If sits in its own box");
    for &k in &subs {
        let s = &g.subgraphs[k];
        assert_eq!(s.parent, None);
        assert_eq!(s.name, format!("If_0_{}", s.attribute));
        // Every node of the branch, nested branches' too, is in the branch's box.
        let want = format!("If_0/{}", s.attribute);
        for i in s.nodes.clone() {
            let p = path(i);
            assert!(
                p == want || p.starts_with(&format!("{want}/")),
                "{} is in {p}",
                g.nodes[i as usize].name
            );
        }
        // The branch's modules are boxes of their own: its STFT convolution is in `stft`, with
        // the prefix every name of the branch shares (`If_0_then_branch__Inline_0__/`) dropped.
        let conv = g
            .own_nodes(k)
            .find(|n| &*n.op == "Conv" && n.name.ends_with("/stft/Conv"))
            .expect("the STFT's Conv");
        assert_eq!(
            model.hierarchy.get(conv.group).unwrap().path,
            format!("{want}/stft")
        );
    }
    // What the branches hold, which onnx's top-level count leaves out: every initializer and
    // `Constant` of every subgraph, summed with onnx 1.23's numpy_helper.
    assert_eq!(model.subgraph_tensor_count(), (545_596, 340));
    // Nested `If`s (the decoder's) are subgraphs of subgraphs.
    assert!(g.subgraphs.iter().any(|s| s.parent.is_some()));
    for s in &g.subgraphs {
        if let Some(p) = s.parent {
            let outer = &g.subgraphs[p];
            assert!(outer.nodes.start <= s.nodes.start && s.nodes.end <= outer.nodes.end);
            assert!(
                outer.nodes.contains(&s.owner),
                "the owner is in the enclosing body"
            );
        }
    }
}

#[test]
fn onnx_external_data_is_mapped_not_copied() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let path = corpus.join("generated/llama_tiny_external.onnx");
    let model = modelmap::load::open(&path).unwrap();
    assert!(
        model.metadata.warnings.is_empty(),
        "{:?}",
        model.metadata.warnings
    );
    let t = model.tensor("model.embed_tokens.weight").unwrap();
    let bytes = t.bytes().expect("external bytes located");
    assert_eq!(bytes.len(), 1000 * 64 * 4);
    // Values decode to the facts' range.
    let first = f32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert!(first.abs() < 0.1, "{first}");
}

#[test]
fn onnx_module_paths_become_the_hierarchy() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model = modelmap::load::open(&corpus.join("generated/llama_tiny_4l.onnx")).unwrap();
    let h = &model.hierarchy;
    let l2 = h.find("model/layers.2").expect("model/layers.2 group");
    let g = h.get(l2).unwrap();
    assert!(g.node_count > 30, "layer 2 holds its ops: {}", g.node_count);
    let names: Vec<&str> = g
        .children
        .iter()
        .map(|&c| h.get(c).unwrap().name.as_str())
        .collect();
    assert!(
        names.contains(&"self_attn") && names.contains(&"mlp"),
        "{names:?}"
    );
}

#[test]
fn unnamed_onnx_ops_join_the_module_of_their_weights() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    // The zoo's light GoogLeNet names its ops `n10` and their weights `inception_3a/1x1_w_0`.
    let model =
        modelmap::load::open(&corpus.join("real/onnx_light/light_inception_v1.onnx")).unwrap();
    let (g, h) = (&model.graph, &model.hierarchy);
    let block = h.find("inception_3a").expect("inception_3a group");
    let in_block = |op: &str| {
        g.nodes
            .iter()
            .filter(|n| &*n.op == op && n.group == block)
            .count()
    };
    // Six convolutions, their ReLUs, the pool branch and the Concat that joins the branches.
    assert_eq!(in_block("Conv"), 6, "the block's convolutions");
    assert_eq!(in_block("Relu"), 6, "their activations follow them in");
    assert_eq!(in_block("Concat"), 1, "the concat of the four branches");
    // A block's pool branch (MaxPool → `pool_proj` Conv) is part of the block it feeds, not of
    // the block its input comes from.
    let producers = g.producers();
    let mut pool_branches = 0;
    for n in g.nodes.iter().filter(|n| &*n.op == "Conv") {
        for &v in n.inputs.iter().flatten() {
            let Some(p) = producers[v as usize] else {
                continue;
            };
            let pool = &g.nodes[p as usize];
            let feeds = |e: &&modelmap::model::Edge| e.from == p;
            if &*pool.op == "MaxPool" && g.edges.iter().filter(feeds).count() == 1 {
                assert_eq!(pool.group, n.group, "{} feeds {}", pool.name, n.name);
                pool_branches += 1;
            }
        }
    }
    assert_eq!(pool_branches, 9, "one pool branch per inception block");
    // The first layers, whose weights are `conv1/…` and `conv2/…`, are not in the block.
    let conv1 = h.find("conv1").expect("conv1 group");
    assert!(g.nodes.iter().any(|n| &*n.op == "Conv" && n.group == conv1));
    // ResNet-50's weights all start with `gpu_0/`: that alone is no module, so its ops stay at
    // the top level instead of in one box around everything.
    let resnet = modelmap::load::open(&corpus.join("real/onnx_light/light_resnet50.onnx")).unwrap();
    let top_convs = resnet
        .graph
        .nodes
        .iter()
        .filter(|n| &*n.op == "Conv" && n.group == 0)
        .count();
    assert!(top_convs > 50, "{top_convs} convolutions at the top level");
    // Their weight generators (`ConstantOfShape` nodes named `gpu_0/…`) sit beside the op they
    // feed, not in one `gpu_0` box of 239 generators above the whole model.
    assert_eq!(resnet.hierarchy.find("gpu_0"), None, "a box of generators");
    let (rg, producers) = (&resnet.graph, resnet.graph.producers());
    let mut followed = 0;
    for n in rg.nodes.iter().filter(|n| n.group == 0 && &*n.op == "Conv") {
        for &v in n.inputs.iter().flatten() {
            if let Some(p) = producers[v as usize] {
                let p = &rg.nodes[p as usize];
                if &*p.op == "ConstantOfShape" {
                    assert_eq!(p.group, n.group, "{} feeds {}", p.name, n.name);
                    followed += 1;
                }
            }
        }
    }
    assert!(
        followed > 50,
        "{followed} generators of top-level convolutions"
    );
    // In GoogLeNet they follow their convolution into its block.
    let gens = g
        .nodes
        .iter()
        .filter(|n| &*n.op == "ConstantOfShape" && n.group == block)
        .count();
    assert!(gens >= 6, "{gens} generators in inception_3a");
}

#[test]
fn checkpoint_modules_are_chained_in_dataflow_order() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model = modelmap::load::open(&corpus.join("generated/llama_tiny_st")).unwrap();
    assert_eq!(
        model.metadata.architecture.as_deref(),
        Some("LlamaForCausalLM")
    );
    let id = |name: &str| common::node_id(&model, name);
    let has = |a: &str, b: &str| common::edge(&model, a, b);
    assert!(has("model.embed_tokens", "model.layers.0.input_layernorm"));
    assert!(has(
        "model.layers.0.input_layernorm",
        "model.layers.0.self_attn.q_proj"
    ));
    assert!(has(
        "model.layers.0.self_attn.v_proj",
        "model.layers.0.self_attn.o_proj"
    ));
    assert!(has(
        "model.layers.0.mlp.down_proj",
        "model.layers.1.input_layernorm"
    ));
    assert!(has("model.layers.3.mlp.down_proj", "model.norm"));
    assert!(has("model.norm", "lm_head"));
    let q = &model.graph.nodes[id("model.layers.0.self_attn.q_proj") as usize];
    assert_eq!(&*q.op, "Linear");
    let layer = model.hierarchy.find("model.layers.0").unwrap();
    assert_eq!(
        model.hierarchy.get(layer).unwrap().param_count,
        4 * 64 * 64 + 3 * 64 * 172 + 2 * 64
    );
}

#[test]
fn gguf_blocks_are_chained_too() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let model = modelmap::load::open(&corpus.join("generated/llama_tiny.gguf")).unwrap();
    assert!(
        model.graph.edges.len() > 10,
        "{} edges",
        model.graph.edges.len()
    );
    let t = model.tensor("token_embd.weight").unwrap();
    assert_eq!(t.bytes().unwrap().len(), 64 * 1000 * 4);
}

#[test]
fn values_used_inside_if_branches_flow_into_the_branches() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    // silero-vad reads its `input` and `state` only inside the branches of its one `If`, by name:
    // they flow to the ops inside that read them, and what a branch outputs flows into the `If`.
    let model = modelmap::load::open(&corpus.join("real/silero/silero_vad.onnx")).unwrap();
    let g = &model.graph;
    let id = |name: &str| g.nodes.iter().position(|n| n.name == name).unwrap() as u32;
    let if_node = g.nodes.iter().position(|n| &*n.op == "If").unwrap() as u32;
    let scopes = g.node_scopes();
    let within = |s: usize, k: usize| {
        std::iter::successors(Some(s), |&s| g.subgraphs[s].parent).any(|s| s == k)
    };
    for input in ["input", "state"] {
        let value = g.nodes[id(input) as usize].outputs[0];
        for branch in ["then_branch", "else_branch"] {
            let k = g
                .subgraphs
                .iter()
                .position(|s| s.owner == if_node && s.attribute == branch)
                .unwrap();
            assert!(
                g.subgraphs[k].captures.iter().any(|c| c == input),
                "{branch} reads {input} from outside: {:?}",
                g.subgraphs[k].captures
            );
            let readers: Vec<u32> = g
                .edges
                .iter()
                .filter(|e| e.from == id(input) && e.value == value)
                .map(|e| e.to)
                .filter(|&to| scopes[to as usize].is_some_and(|s| within(s, k)))
                .collect();
            assert!(!readers.is_empty(), "{input} → an op in {branch}");
            for r in readers {
                assert!(
                    g.nodes[r as usize].inputs.contains(&Some(value)),
                    "{} reads {input} itself",
                    g.nodes[r as usize].name
                );
            }
        }
    }
    // Each branch's two outputs flow into the If.
    let into_if = g
        .edges
        .iter()
        .filter(|e| e.to == if_node && g.nodes[e.from as usize].kind == NodeKind::Output)
        .count();
    assert_eq!(into_if, 4);
    // Every node is connected: no input or op stands alone.
    for (i, n) in g.nodes.iter().enumerate() {
        assert!(
            g.edges
                .iter()
                .any(|e| e.from as usize == i || e.to as usize == i),
            "{} is unconnected",
            n.name
        );
    }
}

/// ONNX local functions (torch's `export_modules_as_functions`: each residual block a call of
/// the function `Block`) are drawn as the call's body: the function's nodes in order, its inputs
/// fed by the call's arguments, the block's Gemm owning that call's weight
/// (`tests/data/onnx/functions.onnx`, written with its facts by `make_functions.py`).
#[test]
fn onnx_local_functions_are_drawn_inside_their_calls() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx");
    let text = std::fs::read_to_string(dir.join("functions_facts.json")).unwrap();
    let facts: Value = serde_json::from_str(&text).unwrap();
    let model = modelmap::load::open(&dir.join("functions.onnx")).unwrap();
    let g = &model.graph;
    let function = &facts["functions"][0];
    let calls = facts["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    for call in calls {
        let name = call["name"].as_str().unwrap();
        let id = g.top_level_nodes().position(|n| n.name == name).unwrap() as u32;
        let owner = &g.nodes[id as usize];
        assert_eq!(&*owner.op, call["function"].as_str().unwrap());
        let k = g
            .subgraphs
            .iter()
            .position(|s| s.owner == id)
            .unwrap_or_else(|| panic!("{name}: no body"));
        assert_eq!(
            common::subgraph_ops(g, k),
            common::json_strings(&function["ops"]),
            "{name}: the function's nodes"
        );
        assert_eq!(
            common::subgraph_names(g, k, NodeKind::Input),
            common::json_strings(&function["inputs"]),
            "{name}: its inputs"
        );
        // The call's arguments feed the function's inputs: the data from the op before it.
        let s = &g.subgraphs[k];
        assert_eq!(s.fed_by, [Some(0), Some(1), Some(2)]);
        let producer = g.producers();
        let data = owner.inputs[0].unwrap();
        let first_input = g.own_node_ids(k).next().unwrap();
        if let Some(p) = producer[data as usize] {
            assert!(g.edges.iter().any(|e| e.from == p && e.to == first_input));
        }
        // Its output flows into the call.
        let out = g
            .own_node_ids(k)
            .find(|&i| g.nodes[i as usize].kind == NodeKind::Output)
            .unwrap();
        assert!(g.edges.iter().any(|e| e.from == out && e.to == id));
        // The Gemm inside owns the weight this call passes, with torch's values.
        let weight = call["inputs"][1].as_str().unwrap();
        let t = model.tensor_index[weight];
        let gemm = g.own_nodes(k).find(|n| &*n.op == "Gemm").unwrap();
        assert!(gemm.tensors.contains(&t), "{name}: the Gemm owns {weight}");
        assert!(!owner.tensors.contains(&t), "{name}: not the call");
        let b = model.tensors[t as usize].bytes().unwrap();
        for (i, x) in facts["weights"][weight]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let ours = f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
            assert_eq!(ours, x.as_f64().unwrap() as f32, "{weight}[{i}]");
        }
    }
    let summary = modelmap::model::Summary::of(&model);
    assert_eq!(summary.nodes, 3, "the top level: two calls and the head");
    assert_eq!(
        summary.nodes_with_subgraphs,
        3 + 2 * function["ops"].as_array().unwrap().len()
    );
}
