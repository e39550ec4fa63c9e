//! torch.export programs (`torch.export.save`, `.pt2`): the ATen op graph of a PyTorch 2 model,
//! with its weights.
//!
//! The archive is the same zip container as a `torch.save` checkpoint. Since PyTorch 2.6 it holds
//! `<name>/models/<model>.json`, the serialized `ExportedProgram` (graph, signature, module call
//! graph), and its weights and lifted constants as raw storages under `<name>/data/weights/` and
//! `<name>/data/constants/`, each listed by a JSON config with the tensor's dtype, size, stride and
//! storage offset. Archives written before 2.6 hold `serialized_exported_program.json` and the
//! weights as a nested `torch.save` archive, `serialized_state_dict.pt`: both read here.
//!
//! Each `call_function` node becomes an op named by its ATen op (`torch.ops.aten.linear.default`
//! → `linear`; other namespaces keep theirs: `higher_order.cond`), with its full target as the
//! `target` attribute and its non-tensor arguments as attributes. Parameters, buffers and lifted
//! constants are placeholders in the graph; like ONNX initializers they add no node, and the first
//! op reading each owns its tensor. Nodes are grouped by the module that ran them
//! (`nn_module_stack`), which is also where each module's class comes from. The branches of
//! `torch.cond` and the bodies of other higher-order ops are nested graphs.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use serde_json::Value as Json;

use super::LoadError;
use super::torch::{self, Entries};
use crate::model::{
    AttrValue, Body, DType, Dim, Format, Graph, GroupId, Model, Node, NodeKind, OpNames, Tensor,
    TensorData, TensorId, TensorOrigin, Value, ValueId, hierarchy_split,
};

/// Deepest nesting of graphs (`torch.cond` inside a `torch.cond` body…) that is followed.
const MAX_GRAPH_DEPTH: u32 = 16;

/// Where a program lies in an archive.
#[derive(Debug)]
pub(super) struct Program {
    /// The entry holding the program's JSON.
    json: String,
    /// The archive's top folder, with its `/` (`model/`), or empty.
    prefix: String,
    /// The model's name (`model` for `models/model.json`).
    name: String,
    /// Written before PyTorch 2.6 (`serialized_exported_program.json`).
    legacy: bool,
    /// The other programs of the archive, by entry.
    others: Vec<String>,
}

/// The program of an archive, when it is a torch.export one.
pub(super) fn find(entries: &Entries) -> Option<Program> {
    let top = |name: &str, file: &str| -> Option<String> {
        let p = name.strip_suffix(file)?;
        (p.is_empty() || (p.ends_with('/') && p.matches('/').count() == 1)).then(|| p.to_string())
    };
    let mut programs: Vec<(String, String, String)> = entries
        .keys()
        .filter_map(|name| {
            let (folder, file) = name.rsplit_once("models/")?;
            let model = file.strip_suffix(".json")?;
            let prefix = top(name, &format!("models/{file}"))?;
            (!model.is_empty() && !model.contains('/') && folder == prefix)
                .then(|| (prefix, model.to_string(), name.clone()))
        })
        .collect();
    // `model` first (what torch.export.save names it), then by name.
    programs.sort_by(|a, b| (a.1 != "model", &a.1).cmp(&(b.1 != "model", &b.1)));
    if let Some(((prefix, name, json), rest)) = programs.split_first() {
        return Some(Program {
            json: json.clone(),
            prefix: prefix.clone(),
            name: name.clone(),
            legacy: false,
            others: rest.iter().map(|p| p.2.clone()).collect(),
        });
    }
    let json = entries
        .keys()
        .filter(|n| top(n, "serialized_exported_program.json").is_some())
        .min()?;
    Some(Program {
        prefix: top(json, "serialized_exported_program.json").unwrap_or_default(),
        json: json.clone(),
        name: "model".into(),
        legacy: true,
        others: Vec::new(),
    })
}

/// Reads the program `p` of the archive `data`.
pub(super) fn load(
    path: &Path,
    data: &Bytes,
    entries: &Entries,
    p: &Program,
) -> Result<Model, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let json = entry_json(data, entries, &p.json).map_err(corrupt)?;
    let gm = json
        .get("graph_module")
        .filter(|g| g.is_object())
        .ok_or_else(|| {
            corrupt(format!(
                "{}: no graph_module, so not an exported program",
                p.json
            ))
        })?;
    let mut model = Model::new(path, Format::TorchExport);
    model.metadata.shards = 1;
    metadata(&mut model, &json, p);

    // The weights and lifted constants, by the name the signature gives them.
    let big_endian = matches!(
        entries.get(&format!("{}byteorder", p.prefix)),
        Some(Ok(r)) if data.get(r.clone()) == Some(&b"big"[..])
    );
    let mut weights: HashMap<String, TensorId> = HashMap::new();
    let sources: [(&str, &str, &str, TensorOrigin); 2] = [
        (
            "weights",
            "serialized_state_dict.pt",
            "weights",
            TensorOrigin::Initializer,
        ),
        (
            "constants",
            "serialized_constants.pt",
            "constants",
            TensorOrigin::ConstantNode,
        ),
    ];
    for (dir, legacy_file, kind, origin) in sources {
        let config = format!("{}data/{dir}/{}_{kind}_config.json", p.prefix, p.name);
        let nested = if p.legacy {
            format!("{}{legacy_file}", p.prefix)
        } else {
            format!("{}data/{dir}/{}.pt", p.prefix, p.name)
        };
        let found = if entries.contains_key(&config) && !p.legacy {
            let config = entry_json(data, entries, &config).map_err(corrupt)?;
            payloads(&config, data, entries, &p.prefix, dir, big_endian, path)
        } else if let Some(range) = entries.get(&nested) {
            nested_checkpoint(path, data, range, &nested)?
        } else {
            Vec::new()
        };
        for mut t in found {
            t.origin = origin;
            let name = t.name.clone();
            let id = model.add_tensor(t);
            weights.insert(name, id);
        }
    }

    let mut b = Builder {
        model: &mut model,
        ops: OpNames::default(),
        owned: HashSet::new(),
        placeholders: HashMap::new(),
    };
    // Placeholders that stand for weights, and how each graph output is used.
    let signature = gm.get("signature");
    let specs = |key: &str| {
        signature
            .and_then(|s| s.get(key))
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    for spec in specs("input_specs") {
        let Some((kind, body)) = spec.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let target = match kind.as_str() {
            "parameter" => body.get("parameter_name"),
            "buffer" => body.get("buffer_name"),
            "tensor_constant" => body.get("tensor_constant_name"),
            "custom_obj" => body.get("custom_obj_name"),
            _ => None,
        };
        let placeholder = body
            .get("arg")
            .and_then(|a| a.get("name"))
            .and_then(Json::as_str);
        if let (Some(ph), Some(target)) = (placeholder, target.and_then(Json::as_str)) {
            b.placeholders
                .insert(ph.to_string(), weights.get(target).copied());
        }
    }
    let outputs: Vec<String> = specs("output_specs")
        .iter()
        .map(|spec| {
            let Some((kind, body)) = spec.as_object().and_then(|o| o.iter().next()) else {
                return String::new();
            };
            let what = ["buffer_name", "parameter_name", "user_input_name"]
                .iter()
                .find_map(|k| body.get(*k).and_then(Json::as_str));
            match (kind.as_str(), what) {
                ("user_output", _) => String::new(),
                (kind, Some(what)) => format!("{what} ({})", kind.replace('_', " ")),
                (kind, None) => kind.replace('_', " "),
            }
        })
        .collect();
    let graph_json = gm
        .get("graph")
        .ok_or_else(|| corrupt(format!("{}: the program has no graph", p.json)))?;
    let (mut graph, mut groups) = b
        .graph(graph_json, 0, &outputs)
        .map_err(|e| corrupt(format!("{}: {e}", p.json)))?;
    // A branch takes its operands as inputs, by position.
    graph.inline_bodies(false);
    model.graph = graph;
    model.box_subgraphs(&mut groups);
    for (node, &g) in model.graph.nodes.iter_mut().zip(&groups) {
        node.group = g;
    }
    model.finish_hierarchy(&groups);
    Ok(model)
}

/// Producer, versions, opsets, symbolic ranges and the other programs of the archive.
fn metadata(model: &mut Model, json: &Json, p: &Program) {
    let md = &mut model.metadata;
    md.producer = Some("pytorch (torch.export)".into());
    md.producer_version = json
        .get("torch_version")
        .and_then(Json::as_str)
        .map(String::from);
    if let Some(opsets) = json.get("opset_version").and_then(Json::as_object) {
        for (domain, v) in opsets {
            if let Some(v) = v.as_i64() {
                md.opsets.push((domain.clone(), v));
            }
        }
    }
    if let Some(v) = json.get("schema_version") {
        let part = |k: &str| v.get(k).and_then(Json::as_i64).unwrap_or_default();
        md.properties.push((
            "export.schema_version".into(),
            format!("{}.{}", part("major"), part("minor")),
        ));
    }
    if let Some(ranges) = json.get("range_constraints").and_then(Json::as_object) {
        for (sym, r) in ranges {
            let bound = |k: &str| {
                r.get(k)
                    .map(|v| {
                        v.as_i64()
                            .map_or_else(|| "∞".to_string(), |n| n.to_string())
                    })
                    .unwrap_or_else(|| "?".into())
            };
            md.properties.push((
                format!("export.range.{sym}"),
                format!("{} ..= {}", bound("min_val"), bound("max_val")),
            ));
        }
    }
    if !p.others.is_empty() {
        md.warnings.push(format!(
            "{}: the archive holds {} more programs, not shown: {}",
            model.source.display(),
            p.others.len(),
            p.others.join(", ")
        ));
    }
}

/// An entry of the archive parsed as JSON.
fn entry_json(data: &Bytes, entries: &Entries, name: &str) -> Result<Json, String> {
    let range = match entries.get(name) {
        None => return Err(format!("{name} is missing from the archive")),
        Some(Err(e)) => return Err(format!("{name}: {e}")),
        Some(Ok(r)) => r.clone(),
    };
    let bytes = data
        .get(range)
        .ok_or(format!("{name} lies beyond the file"))?;
    serde_json::from_slice(bytes).map_err(|e| format!("{name}: invalid JSON: {e}"))
}

/// The tensors listed by a payload config (`model_weights_config.json`): raw storages viewed by
/// size, stride and offset.
fn payloads(
    config: &Json,
    data: &Bytes,
    entries: &Entries,
    prefix: &str,
    dir: &str,
    big_endian: bool,
    path: &Path,
) -> Vec<Tensor> {
    let Some(items) = config.get("config").and_then(Json::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (name, payload) in items {
        let file = payload
            .get("path_name")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let meta = payload.get("tensor_meta");
        let dtype = meta
            .and_then(|m| m.get("dtype"))
            .and_then(Json::as_i64)
            .map_or(DType::Unknown("torch.export dtype"), scalar_type);
        let ints = |key: &str| -> Option<Vec<u64>> {
            meta?
                .get(key)?
                .as_array()?
                .iter()
                .map(|d| d.get("as_int")?.as_u64())
                .collect()
        };
        let shape = ints("sizes");
        let data = if payload.get("use_pickle").and_then(Json::as_bool) == Some(true) {
            let entry = format!("{prefix}data/{dir}/{file}");
            match entries.get(&entry) {
                Some(range) => match nested_checkpoint(path, data, range, &entry) {
                    Ok(mut ts) if ts.len() == 1 => {
                        let t = ts.remove(0);
                        out.push(Tensor {
                            name: name.clone(),
                            origin: TensorOrigin::Initializer,
                            conv_axes: None,
                            quant: None,
                            ..t
                        });
                        continue;
                    }
                    Ok(_) => TensorData::Error(format!(
                        "{}: {entry}: a pickled object that is not one tensor (a tensor subclass?)",
                        path.display()
                    )),
                    Err(e) => TensorData::Error(e.to_string()),
                },
                None => TensorData::Error(format!("{}: {entry} is missing", path.display())),
            }
        } else {
            let offset = meta
                .and_then(|m| m.get("storage_offset"))
                .and_then(|o| o.get("as_int"))
                .and_then(Json::as_u64);
            match (&shape, ints("strides"), offset) {
                (Some(size), Some(stride), Some(offset)) => torch::tensor_bytes(
                    data,
                    entries,
                    &format!("{prefix}data/"),
                    Some(&format!("{dir}/{file}")),
                    dtype,
                    offset,
                    size,
                    &stride,
                    big_endian,
                )
                .unwrap_or_else(|why| TensorData::Error(format!("{}: {why}", path.display()))),
                _ => TensorData::Error(format!(
                    "{}: {name}: its size, stride or offset is not a plain number",
                    path.display()
                )),
            }
        };
        out.push(Tensor {
            name: name.clone(),
            dtype,
            shape: shape.unwrap_or_default(),
            data,
            origin: TensorOrigin::Initializer,
            conv_axes: None,
            quant: None,
        });
    }
    out
}

/// The tensors of a `torch.save` archive stored inside the program's archive.
fn nested_checkpoint(
    path: &Path,
    data: &Bytes,
    range: &Result<std::ops::Range<usize>, String>,
    entry: &str,
) -> Result<Vec<Tensor>, LoadError> {
    let range = range
        .clone()
        .map_err(|e| LoadError::corrupt(path, format!("{entry}: {e}")))?;
    if range.end > data.len() {
        return Err(LoadError::corrupt(
            path,
            format!("{entry} lies beyond the file"),
        ));
    }
    let inner = path.join(entry);
    let mut sub = Model::new(&inner, Format::Torch);
    torch::add_archive(&mut sub, &inner, data.slice(range))?;
    Ok(sub.tensors)
}

/// A torch.export `ScalarType` number as a dtype (`torch/_export/serde/schema.py`).
fn scalar_type(n: i64) -> DType {
    match n {
        1 => DType::U8,
        2 => DType::I8,
        3 => DType::I16,
        4 => DType::I32,
        5 => DType::I64,
        6 => DType::F16,
        7 => DType::F32,
        8 => DType::F64,
        10 => DType::Complex64,
        11 => DType::Complex128,
        12 => DType::Bool,
        13 => DType::BF16,
        28 => DType::U16,
        29 => DType::F8E4M3FN,
        30 => DType::F8E5M2,
        31 => DType::F8E4M3FNUZ,
        32 => DType::F8E5M2FNUZ,
        34 => DType::U32,
        35 => DType::U64,
        _ => DType::Unknown("torch.export dtype"),
    }
}

/// The op name shown for a node's target: `torch.ops.aten.linear.default` → `linear`,
/// `torch.ops.higher_order.cond` → `higher_order.cond`, `torch.ops.mylib.rms.default` →
/// `mylib.rms`; anything else (`_operator.getitem`) as written.
fn op_name(target: &str) -> &str {
    let Some(rest) = target.strip_prefix("torch.ops.") else {
        return target;
    };
    let mut parts = rest.splitn(3, '.');
    let (ns, op) = (parts.next().unwrap_or(rest), parts.next());
    match op {
        Some(op) if ns == "aten" => op,
        Some(op) => &rest[..ns.len() + 1 + op.len()],
        None => rest,
    }
}

/// The innermost module of an `nn_module_stack` (`key,path,class;key,path,class…`), and every
/// `(path, class)` on the way.
fn module_stack(stack: &str) -> Vec<(&str, &str)> {
    stack
        .split(';')
        .filter_map(|entry| {
            let (key, rest) = entry.split_once(',')?;
            // What torch writes for an op no module ran (a `sym_size` of an input).
            if key.starts_with("_empty_nn_module_stack") {
                return None;
            }
            let (path, class) = rest.rsplit_once(',')?;
            Some((path, class))
        })
        .collect()
}

/// What the graph builder keeps across nested graphs.
struct Builder<'m> {
    model: &'m mut Model,
    ops: OpNames,
    /// Tensors some node already owns.
    owned: HashSet<TensorId>,
    /// Top-level placeholders that stand for a weight (its tensor, if the archive has it).
    placeholders: HashMap<String, Option<TensorId>>,
}

impl Builder<'_> {
    /// Builds a graph and, for the top level, each node's group. `output_roles[i]` names what the
    /// i-th output updates (empty for a user output).
    fn graph(
        &mut self,
        g: &Json,
        depth: u32,
        output_roles: &[String],
    ) -> Result<(Graph, Vec<GroupId>), String> {
        if depth > MAX_GRAPH_DEPTH {
            return Err(format!("graphs nested deeper than {MAX_GRAPH_DEPTH}"));
        }
        let top = depth == 0;
        let metas = |key: &str| g.get(key).and_then(Json::as_object);
        let (tensor_meta, sym_meta) = (metas("tensor_values"), metas("sym_int_values"));
        let mut graph = Graph::default();
        let mut values: HashMap<String, ValueId> = HashMap::new();
        let mut value_of = |graph: &mut Graph, name: &str| -> ValueId {
            if let Some(&v) = values.get(name) {
                return v;
            }
            let (dtype, shape) = match (
                tensor_meta.and_then(|m| m.get(name)),
                sym_meta.and_then(|m| m.get(name)),
            ) {
                (Some(m), _) => (
                    m.get("dtype").and_then(Json::as_i64).map(scalar_type),
                    m.get("sizes").and_then(Json::as_array).map(|d| dims(d)),
                ),
                (None, Some(_)) => (Some(DType::I64), Some(Vec::new())),
                _ => (None, None),
            };
            let v = graph.add_value(Value {
                name: name.to_string(),
                dtype,
                shape,
            });
            values.insert(name.to_string(), v);
            v
        };
        let mut groups: Vec<GroupId> = Vec::new();
        let list = |key: &str| g.get(key).and_then(Json::as_array).map(Vec::as_slice);

        for arg in list("inputs").unwrap_or_default() {
            for name in refs(arg) {
                if top && self.placeholders.contains_key(name) {
                    continue;
                }
                let v = value_of(&mut graph, name);
                graph.inputs.push(v);
                let mut node = Node::new(name, "Input", NodeKind::Input);
                node.outputs.push(v);
                graph.add_node(node);
                groups.push(0);
            }
        }

        let nodes = list("nodes").ok_or("the graph has no node list")?;
        for (i, n) in nodes.iter().enumerate() {
            let target = n.get("target").and_then(Json::as_str).unwrap_or("?");
            let name = n
                .get("name")
                .and_then(Json::as_str)
                .map_or_else(|| format!("{}_{i}", op_name(target)), String::from);
            let mut node = Node::new(name, self.ops.get(op_name(target)), NodeKind::Op);
            node.attributes
                .push(("target".into(), AttrValue::String(target.to_string())));
            let node_id = graph.nodes.len() as u32;
            for (j, input) in n
                .get("inputs")
                .and_then(Json::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let arg_name = input
                    .get("name")
                    .and_then(Json::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or_else(|| format!("arg{j}"), String::from);
                let Some(arg) = input.get("arg") else {
                    continue;
                };
                if let Some(sub) = arg.get("as_graph") {
                    let body = sub
                        .get("graph")
                        .ok_or("an as_graph argument with no graph")?;
                    let (sub_graph, _) = self.graph(body, depth + 1, &[])?;
                    let label = sub
                        .get("name")
                        .and_then(Json::as_str)
                        .map_or(arg_name.clone(), String::from);
                    graph.bodies.push(Body {
                        owner: node_id,
                        attribute: label.clone(),
                        graph: sub_graph,
                        fed_by: Vec::new(),
                    });
                    let index = graph.bodies.len() - 1;
                    node.attributes.push((label, AttrValue::Graph(index)));
                    continue;
                }
                let names = refs(arg);
                for name in &names {
                    if top
                        && let Some(&Some(t)) = self.placeholders.get(*name)
                        && self.owned.insert(t)
                    {
                        node.tensors.push(t);
                    }
                    node.inputs.push(Some(value_of(&mut graph, name)));
                }
                if !is_tensor_arg(arg)
                    && let Some(value) = attribute(arg)
                {
                    node.attributes.push((arg_name, value));
                }
            }
            for out in n
                .get("outputs")
                .and_then(Json::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                for name in refs(out) {
                    node.outputs.push(value_of(&mut graph, name));
                }
            }
            let meta = n.get("metadata");
            let text = |k: &str| meta.and_then(|m| m.get(k)).and_then(Json::as_str);
            if let Some(source) = text("stack_trace").and_then(source_line) {
                node.attributes
                    .push(("source".into(), AttrValue::Other(source)));
            }
            let mut group = 0;
            if top && let Some(stack) = text("nn_module_stack") {
                let h = &mut self.model.hierarchy;
                for (path, class) in module_stack(stack) {
                    if path.is_empty() {
                        continue;
                    }
                    let (mut segs, leaf, _) = hierarchy_split(path);
                    segs.push(leaf);
                    group = h.insert_path(segs, '.');
                    let short = class.rsplit('.').next().unwrap_or(class);
                    self.model
                        .metadata
                        .module_classes
                        .entry(path.to_string())
                        .or_insert_with(|| short.to_string());
                }
            }
            graph.add_node(node);
            groups.push(group);
        }

        for (i, arg) in list("outputs").unwrap_or_default().iter().enumerate() {
            let role = output_roles.get(i).map(String::as_str).unwrap_or_default();
            for name in refs(arg) {
                let v = value_of(&mut graph, name);
                graph.outputs.push(v);
                let label = if role.is_empty() { name } else { role };
                let mut node = Node::new(label, "Output", NodeKind::Output);
                node.inputs.push(Some(v));
                graph.add_node(node);
                groups.push(0);
            }
        }
        graph.connect_by_values();
        Ok((graph, groups))
    }
}

/// Where in the model's code an op was called, from its stack trace: the innermost frame outside
/// PyTorch itself (`model.py:105 in forward: x = self.fc(x)`), else the innermost one.
fn source_line(trace: &str) -> Option<String> {
    let lines: Vec<&str> = trace.lines().collect();
    let frames: Vec<(&str, &str, &str, &str)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            // `File "/path/model.py", line 105, in forward` and the code on the next line.
            let rest = l.trim().strip_prefix("File \"")?;
            let (file, rest) = rest.split_once("\", line ")?;
            let (line, func) = rest.split_once(", in ").unwrap_or((rest, "?"));
            let code = lines.get(i + 1).map_or("", |c| c.trim());
            Some((file, line, func, code))
        })
        .collect();
    let in_torch = |f: &str| f.contains("/torch/") || f.starts_with("<eval_with_key>");
    let (file, line, func, code) = frames
        .iter()
        .rev()
        .find(|f| !in_torch(f.0))
        .or(frames.last())?;
    let file = file.rsplit('/').next().unwrap_or(file);
    let mut text = format!("{file}:{line} in {func}");
    if !code.is_empty() && !code.starts_with("File \"") {
        text.push_str(": ");
        text.push_str(code);
    }
    if text.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    Some(text)
}

/// Whether an argument is only references to tensors (shown as inputs, not attributes).
fn is_tensor_arg(arg: &Json) -> bool {
    arg.as_object().is_some_and(|o| {
        o.keys().all(|k| {
            matches!(
                k.as_str(),
                "as_tensor" | "as_tensors" | "as_optional_tensor" | "as_optional_tensors"
            )
        })
    })
}

/// The names an argument refers to: tensors (`{"as_tensor": {"name": …}}` and lists of them) and
/// symbolic numbers (`{"as_sym_int": {"as_name": …}}`).
fn refs(arg: &Json) -> Vec<&str> {
    let mut out = Vec::new();
    collect_refs(arg, 0, &mut out);
    out
}

fn collect_refs<'a>(arg: &'a Json, depth: u32, out: &mut Vec<&'a str>) {
    if depth > 8 {
        return;
    }
    match arg {
        Json::Object(o) => {
            for (k, v) in o {
                match k.as_str() {
                    "as_tensor" | "as_optional_tensor" => {
                        if let Some(n) = v.get("name").and_then(Json::as_str) {
                            out.push(n);
                        } else {
                            collect_refs(v, depth + 1, out);
                        }
                    }
                    "as_tensors"
                    | "as_optional_tensors"
                    | "as_sym_ints"
                    | "as_sym_bools"
                    | "as_sym_floats" => collect_refs(v, depth + 1, out),
                    "as_sym_int" | "as_sym_bool" | "as_sym_float" => {
                        if let Some(n) = v.get("as_name").and_then(Json::as_str) {
                            out.push(n);
                        }
                    }
                    "as_name" => {
                        if let Some(n) = v.as_str() {
                            out.push(n);
                        }
                    }
                    "name" if depth > 0 => {
                        if let Some(n) = v.as_str() {
                            out.push(n);
                        }
                    }
                    _ => {}
                }
            }
        }
        Json::Array(items) => {
            for item in items {
                collect_refs(item, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// A non-tensor argument as an attribute value.
fn attribute(arg: &Json) -> Option<AttrValue> {
    let (kind, v) = arg.as_object()?.iter().next()?;
    Some(match kind.as_str() {
        "as_none" => return None,
        "as_int" => AttrValue::Int(v.as_i64()?),
        "as_float" => AttrValue::Float(v.as_f64()? as f32),
        "as_bool" => AttrValue::String(v.as_bool()?.to_string()),
        "as_string" => AttrValue::String(v.as_str()?.to_string()),
        "as_ints" => AttrValue::Ints(v.as_array()?.iter().filter_map(Json::as_i64).collect()),
        "as_floats" => AttrValue::Floats(
            v.as_array()?
                .iter()
                .filter_map(|x| x.as_f64().map(|f| f as f32))
                .collect(),
        ),
        "as_strings" => AttrValue::Strings(
            v.as_array()?
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
        ),
        "as_scalar_type" => AttrValue::String(scalar_type(v.as_i64()?).name().to_lowercase()),
        "as_device" => {
            let ty = v.get("type").and_then(Json::as_str).unwrap_or("?");
            match v.get("index").and_then(Json::as_i64) {
                Some(i) => AttrValue::String(format!("{ty}:{i}")),
                None => AttrValue::String(ty.to_string()),
            }
        }
        "as_sym_int" | "as_sym_bool" | "as_sym_float" => AttrValue::Other(sym_text(v)),
        "as_sym_ints" | "as_sym_bools" | "as_sym_floats" => AttrValue::Other(format!(
            "[{}]",
            v.as_array()?
                .iter()
                .map(sym_text)
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => {
            let mut text = v.to_string();
            if text.len() > 200 {
                let cut = (0..=200)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                text.truncate(cut);
                text.push('…');
            }
            AttrValue::Other(text)
        }
    })
}

/// A symbolic number as text: its name, or its value.
fn sym_text(v: &Json) -> String {
    if let Some(n) = v.get("as_name").and_then(Json::as_str) {
        return n.to_string();
    }
    ["as_int", "as_float", "as_bool"]
        .iter()
        .find_map(|k| v.get(*k).map(Json::to_string))
        .unwrap_or_else(|| "?".into())
}

/// A shape from serialized sizes: `{"as_int": 5}` or a symbol `{"as_expr": {"expr_str": …}}`.
fn dims(sizes: &[Json]) -> Vec<Dim> {
    sizes
        .iter()
        .map(|d| {
            if let Some(n) = d.get("as_int").and_then(Json::as_i64) {
                return Dim::Fixed(n);
            }
            match d
                .get("as_expr")
                .and_then(|e| e.get("expr_str"))
                .and_then(Json::as_str)
            {
                // sympy's repr: `Symbol('s23', positive=True, integer=True)` → `s23`.
                Some(e) => Dim::Symbol(
                    e.strip_prefix("Symbol('")
                        .and_then(|r| r.split_once('\''))
                        .map_or(e, |(name, _)| name)
                        .to_string(),
                ),
                None => Dim::Unknown,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_names_drop_the_aten_namespace_and_the_overload() {
        assert_eq!(op_name("torch.ops.aten.linear.default"), "linear");
        assert_eq!(op_name("torch.ops.aten.add.Tensor"), "add");
        assert_eq!(op_name("torch.ops.higher_order.cond"), "higher_order.cond");
        assert_eq!(op_name("torch.ops.mylib.rms.default"), "mylib.rms");
        assert_eq!(op_name("_operator.getitem"), "_operator.getitem");
    }

    #[test]
    fn the_source_is_the_innermost_frame_of_the_models_code() {
        let trace = "File \"/home/me/model.py\", line 12, in forward\n    return self.fc(x)\n  \
                     File \"/usr/lib/python3/site-packages/torch/nn/modules/linear.py\", line 134, \
                     in forward\n    return F.linear(input, self.weight, self.bias)";
        assert_eq!(
            source_line(trace).as_deref(),
            Some("model.py:12 in forward: return self.fc(x)")
        );
        let torch_only = "File \"/x/torch/nn/modules/linear.py\", line 134, in forward\n    y";
        assert_eq!(
            source_line(torch_only).as_deref(),
            Some("linear.py:134 in forward: y")
        );
        assert_eq!(source_line("no frames here"), None);
    }

    #[test]
    fn module_stacks_give_paths_and_classes() {
        let s = "L__self__,,__main__.M;L__self__layers.0,layers.0,torch.nn.modules.linear.Linear";
        assert_eq!(
            module_stack(s),
            [
                ("", "__main__.M"),
                ("layers.0", "torch.nn.modules.linear.Linear")
            ]
        );
    }

    #[test]
    fn symbolic_sizes_keep_their_names() {
        let sizes: Vec<Json> = serde_json::from_str(
            r#"[{"as_expr": {"expr_str": "Symbol('s23', positive=True, integer=True)"}},
                {"as_int": 5}, {"as_expr": {"expr_str": "2*s23"}}, {}]"#,
        )
        .unwrap_or_default();
        assert_eq!(
            dims(&sizes),
            [
                Dim::Symbol("s23".into()),
                Dim::Fixed(5),
                Dim::Symbol("2*s23".into()),
                Dim::Unknown
            ]
        );
    }
}
