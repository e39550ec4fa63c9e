//! OpenVINO IR: a model's `.xml` (IR v10 / v11, as `ov.save_model`, `ovc` and `optimum-intel`
//! write it) and the `.bin` of weights beside it.
//!
//! The XML lists `<layers>` (each an op: `id`, `name`, `type`, `version`, its `<data>`
//! attributes, its input and output `<port>`s with element type and `<dim>`s) and `<edges>`
//! (`from-layer`/`from-port` → `to-layer`/`to-port`). Every layer is a node named by its name and
//! typed by its type; `Parameter`s are the inputs, `Result`s the outputs. As in Netron, `Const`
//! layers are not drawn: each is a weight (`element_type`, `shape`, and `offset` / `size` in the
//! `.bin`, a slice of its map, checked against the file) owned by the first op that reads it, also
//! through the `Convert` that `compress_to_fp16` puts after an f16 weight (the weight keeps the
//! stored f16). Nodes are grouped by the module path in their names: PyTorch conversions name ops
//! `__module.model.layers.0.self_attn.q_proj/aten::linear/MatMul` (module
//! `model.layers.0.self_attn.q_proj`), ONNX and TensorFlow ones keep their `/` scopes. The bodies
//! of `TensorIterator` / `Loop` layers and the branches of `If` (each a `<layers>`/`<edges>` net of
//! its own) are subgraphs, boxed inside their owner's box, their `Parameter`s fed by the owner's
//! inputs as its port map says (a loop's back edges are listed on the owner).
//!
//! The XML is parsed by `roxmltree` (a read-only tree, no DTDs, no entities beyond XML's own).

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use super::LoadError;
use crate::model::{
    AttrValue, Body, DType, Dim, Format, Graph, GroupId, Model, Node, NodeId, NodeKind, OpNames,
    SubgraphBoxes, Tensor, TensorData, TensorId, TensorOrigin, Value, ValueId,
};

/// Longest chain of `Convert` layers followed back to a constant.
const MAX_CONVERT_CHAIN: usize = 8;

/// Bodies nested in bodies deeper than this are an error.
const MAX_DEPTH: usize = 16;

/// Whether a file is OpenVINO IR: XML whose root is `<net>`.
pub(super) fn sniff(path: &Path, head: &[u8]) -> bool {
    // A UTF-8 byte-order mark, as some editors and Windows tools write, may come first.
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let xml = head.starts_with(b"<?xml") || head.starts_with(b"<net");
    xml && (path.extension().is_some_and(|e| e == "xml") || head.windows(5).any(|w| w == b"<net "))
}

/// One port of a layer.
struct Port {
    id: u32,
    dtype: Option<DType>,
    dims: Vec<Dim>,
    /// Tensor names of an output port (`names="x,input.1"`).
    names: Vec<String>,
}

/// One `<layer>`.
struct Layer<'a> {
    id: u32,
    name: &'a str,
    kind: &'a str,
    data: Vec<(&'a str, &'a str)>,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
    /// Its bodies (`TensorIterator` / `Loop`: `body`; `If`: `then_body`, `else_body`).
    bodies: Vec<BodyXml<'a>>,
}

/// A layer's body and the port map that connects it.
struct BodyXml<'a> {
    /// `body`, `then_body`, `else_body`.
    tag: &'a str,
    /// The element holding its `<layers>` and `<edges>`.
    el: roxmltree::Node<'a, 'a>,
    /// `<port_map>` (`<then_port_map>`, `<else_port_map>`).
    port_map: Option<roxmltree::Node<'a, 'a>>,
    /// `<back_edges>` (loops).
    back_edges: Option<roxmltree::Node<'a, 'a>>,
}

/// Edges of a net: input (layer, port) → the output (layer, port) feeding it.
type Edges = HashMap<(u32, u32), (u32, u32)>;

/// Opens an IR `.xml` already mapped; the weights are read from the `.bin` beside it.
pub(super) fn load(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    let bin_path = path.with_extension("bin");
    let bin = if bin_path.is_file() {
        Some(super::map_file(&bin_path)?)
    } else {
        None
    };
    load_parts(path, data, bin)
}

/// Opens an IR from its XML and its weights (`None`: no `.bin` was found).
pub(super) fn load_parts(path: &Path, data: Bytes, bin: Option<Bytes>) -> Result<Model, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let text = std::str::from_utf8(&data).map_err(|e| corrupt(format!("not UTF-8 text: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| corrupt(format!("not well-formed XML: {e}")))?;
    let net = doc.root_element();
    if !net.has_tag_name("net") {
        return Err(corrupt(format!(
            "an XML document whose root is <{}>, not OpenVINO's <net>",
            net.tag_name().name()
        )));
    }
    let version = net.attribute("version").unwrap_or("");
    let mut model = Model::new(path, Format::OpenVino);
    model.metadata.shards = 1;
    model.metadata.producer = Some("OpenVINO".into());
    if !matches!(version, "10" | "11") {
        model.metadata.warnings.push(format!(
            "{}: IR version {version:?}; versions 10 and 11 are read",
            path.display()
        ));
    }
    if let Some(name) = net.attribute("name") {
        model
            .metadata
            .properties
            .push(("net.name".into(), name.to_string()));
    }
    let (layers, edges) = net_of(net).map_err(&corrupt)?;
    if layers.is_empty() {
        return Err(corrupt("an IR with no layers".into()));
    }
    if let Some(rt) = child(net, "rt_info") {
        runtime_info(&mut model, rt);
    }
    let bin_path = path.with_extension("bin");
    let files = Files {
        path,
        bin_path: &bin_path,
        bin: bin.as_ref(),
    };
    let (mut graph, _) = build(&mut model, &files, &layers, &edges, 0, 0)?;
    graph.inline_bodies(false);
    let groups: Vec<GroupId> = graph.nodes.iter().map(|n| n.group).collect();
    model.graph = graph;
    model.finish_hierarchy(&groups);
    Ok(model)
}

/// The layers and edges of a net: the IR's `<net>`, or a body.
fn net_of<'a>(net: roxmltree::Node<'a, 'a>) -> Result<(Vec<Layer<'a>>, Edges), String> {
    let layers_el = child(net, "layers").ok_or("no <layers>")?;
    let mut layers = Vec::new();
    for l in layers_el.children().filter(|c| c.has_tag_name("layer")) {
        layers.push(layer(l)?);
    }
    let mut edges: Edges = HashMap::new();
    if let Some(e) = child(net, "edges") {
        for edge in e.children().filter(|c| c.has_tag_name("edge")) {
            let num = |k: &str| -> Result<u32, String> {
                edge.attribute(k)
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| format!("an <edge> without a numeric {k}"))
            };
            let from = (num("from-layer")?, num("from-port")?);
            let to = (num("to-layer")?, num("to-port")?);
            if edges.insert(to, from).is_some() {
                return Err(format!("two edges into port {} of layer {}", to.1, to.0));
            }
        }
    }
    Ok((layers, edges))
}

/// The files a net's layers read.
struct Files<'a> {
    path: &'a Path,
    bin_path: &'a Path,
    bin: Option<&'a Bytes>,
}

/// The first child element of `node` named `tag`.
fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(tag))
}

/// Reads one `<layer>`.
fn layer<'a>(l: roxmltree::Node<'a, 'a>) -> Result<Layer<'a>, String> {
    let id = l
        .attribute("id")
        .and_then(|v| v.trim().parse().ok())
        .ok_or("a <layer> without a numeric id")?;
    let name = l.attribute("name").unwrap_or("");
    let kind = l.attribute("type").unwrap_or("");
    let mut out = Layer {
        id,
        name,
        kind,
        data: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        bodies: Vec::new(),
    };
    for c in l.children().filter(|c| c.is_element()) {
        match c.tag_name().name() {
            "data" => out.data = c.attributes().map(|a| (a.name(), a.value())).collect(),
            "input" => out.inputs = ports(c)?,
            "output" => out.outputs = ports(c)?,
            tag @ ("body" | "then_body" | "else_body") => {
                let map = match tag {
                    "then_body" => "then_port_map",
                    "else_body" => "else_port_map",
                    _ => "port_map",
                };
                out.bodies.push(BodyXml {
                    tag,
                    el: c,
                    port_map: child(l, map),
                    back_edges: child(l, "back_edges"),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

fn ports(el: roxmltree::Node<'_, '_>) -> Result<Vec<Port>, String> {
    let mut out = Vec::new();
    for p in el.children().filter(|c| c.has_tag_name("port")) {
        let id = p
            .attribute("id")
            .and_then(|v| v.trim().parse().ok())
            .ok_or("a <port> without a numeric id")?;
        let dims = p
            .children()
            .filter(|c| c.has_tag_name("dim"))
            .map(
                |d| match d.text().map(str::trim).and_then(|t| t.parse::<i64>().ok()) {
                    Some(v) if v >= 0 => Dim::Fixed(v),
                    _ => Dim::Unknown,
                },
            )
            .collect();
        out.push(Port {
            id,
            dtype: p.attribute("precision").and_then(precision),
            dims,
            names: p.attribute("names").map(split_names).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A port's `names` list: comma-separated, a comma inside a name escaped as `\,`.
fn split_names(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// A port's `precision` (`FP32`, `I64`).
fn precision(p: &str) -> Option<DType> {
    Some(match p {
        "FP64" => DType::F64,
        "FP32" => DType::F32,
        "FP16" => DType::F16,
        "BF16" => DType::BF16,
        "I64" => DType::I64,
        "I32" => DType::I32,
        "I16" => DType::I16,
        "I8" => DType::I8,
        "U64" => DType::U64,
        "U32" => DType::U32,
        "U16" => DType::U16,
        "U8" => DType::U8,
        "BOOL" => DType::Bool,
        "F8E4M3" => DType::F8E4M3FN,
        "F8E5M2" => DType::F8E5M2,
        _ => return None,
    })
}

/// A `Const`'s `element_type` and the bits an element takes.
fn element_type(t: &str) -> (DType, u64) {
    let d = match t {
        "f64" => DType::F64,
        "f32" => DType::F32,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        "i64" => DType::I64,
        "i32" => DType::I32,
        "i16" => DType::I16,
        "i8" => DType::I8,
        "u64" => DType::U64,
        "u32" => DType::U32,
        "u16" => DType::U16,
        "u8" => DType::U8,
        "boolean" => DType::Bool,
        "f8e4m3" => DType::F8E4M3FN,
        "f8e5m2" => DType::F8E5M2,
        "u1" => return (DType::Unknown("u1"), 1),
        "u2" => return (DType::Unknown("u2"), 2),
        "u3" => return (DType::Unknown("u3"), 3),
        "u4" => return (DType::U4, 4),
        "i4" => return (DType::I4, 4),
        "nf4" => return (DType::NF4, 4),
        "f4e2m1" => return (DType::F4E2M1, 4),
        "u6" => return (DType::Unknown("u6"), 6),
        "f8e8m0" => DType::F8E8M0,
        _ => return (DType::Unknown("openvino"), 0),
    };
    let bits = d.size_bytes().unwrap_or(0) * 8;
    (d, bits)
}

/// A `<data>` attribute's value: integers, a list of them, a float, or text.
fn attr_value(v: &str) -> AttrValue {
    let v = v.trim();
    if let Ok(i) = v.parse::<i64>() {
        return AttrValue::Int(i);
    }
    if v.contains(',') {
        let ints: Option<Vec<i64>> = v.split(',').map(|s| s.trim().parse().ok()).collect();
        if let Some(ints) = ints {
            return AttrValue::Ints(ints);
        }
    }
    if v.contains('.')
        && let Ok(f) = v.parse::<f32>()
    {
        return AttrValue::Float(f);
    }
    AttrValue::String(v.to_string())
}

/// The producer's version and conversion parameters from the net's `<rt_info>`.
fn runtime_info(model: &mut Model, rt: roxmltree::Node<'_, '_>) {
    for c in rt.children().filter(|c| c.is_element()) {
        let tag = c.tag_name().name();
        if tag == "Runtime_version" {
            model.metadata.producer_version = c.attribute("value").map(String::from);
        } else if tag == "conversion_parameters" || tag == "framework" {
            for p in c.children().filter(|c| c.is_element()) {
                if let Some(v) = p.attribute("value") {
                    model
                        .metadata
                        .properties
                        .push((format!("{tag}.{}", p.tag_name().name()), v.to_string()));
                }
            }
        }
    }
}

/// A `Const` layer's tensor, its bytes a slice of the `.bin`.
fn const_tensor(l: &Layer<'_>, bin_path: &Path, bin: Option<&Bytes>) -> Tensor {
    let get = |k: &str| l.data.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let (dtype, bits) = element_type(get("element_type").unwrap_or(""));
    let shape: Option<Vec<u64>> = match get("shape").map(str::trim) {
        None | Some("") => Some(Vec::new()),
        Some(s) => s.split(',').map(|d| d.trim().parse().ok()).collect(),
    };
    let mut t = Tensor {
        name: l.name.to_string(),
        dtype,
        shape: shape.clone().unwrap_or_default(),
        data: TensorData::Missing,
        origin: TensorOrigin::Initializer,
        conv_axes: None,
        quant: None,
    };
    let err = |why: String| TensorData::Error(format!("{}: {}: {why}", bin_path.display(), l.name));
    let Some(shape) = shape else {
        t.data = err(format!(
            "shape {:?} is not a list of sizes",
            get("shape").unwrap_or("")
        ));
        return t;
    };
    let num = |k: &str| get(k).and_then(|v| v.trim().parse::<u64>().ok());
    let (Some(offset), Some(size)) = (num("offset"), num("size")) else {
        t.data = err("no offset and size in the .bin".into());
        return t;
    };
    let Some(bin) = bin else {
        return t;
    };
    let end = offset.checked_add(size);
    let Some(range) = end
        .filter(|&e| e <= bin.len() as u64)
        .map(|e| offset as usize..e as usize)
    else {
        t.data = err(format!(
            "bytes {offset}..{} lie beyond the .bin ({} bytes)",
            offset.saturating_add(size),
            bin.len()
        ));
        return t;
    };
    let need = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .and_then(|n| n.checked_mul(bits))
        .map(|b| b.div_ceil(8));
    t.data = match need {
        _ if bits == 0 => err(format!(
            "element type {:?} is not read",
            get("element_type").unwrap_or("")
        )),
        Some(n) if n == size => TensorData::Bytes(bin.slice(range)),
        Some(n) => err(format!(
            "{n} bytes expected for its shape and element type, the layer says {size}"
        )),
        None => err("its size overflows".into()),
    };
    t
}

/// The group of a layer by the module path or scope in its name, below `root`.
fn group_of(model: &mut Model, root: GroupId, name: &str) -> GroupId {
    if let Some(rest) = name.strip_prefix("__module.") {
        // `__module.model.layers.0.mlp.up_proj/aten::linear/MatMul`: the module path.
        let module = rest.split('/').next().unwrap_or(rest);
        let (segs, leaf, _) = crate::model::hierarchy_split(module);
        let mut path: Vec<&str> = segs;
        if !leaf.is_empty() {
            path.push(leaf);
        }
        return model.hierarchy.insert_path_under(root, path, '.');
    }
    let Some((scope, _)) = name.rsplit_once('/') else {
        return root;
    };
    model
        .hierarchy
        .insert_path_under(root, scope.split('/').filter(|s| !s.is_empty()), '/')
}

/// The graph of a net's layers, its nodes placed below `root`, its layers' bodies nested in it
/// (see [`crate::model::Body`]); also each drawn layer's node by layer id.
fn build(
    model: &mut Model,
    files: &Files<'_>,
    layers: &[Layer<'_>],
    edges: &Edges,
    root: GroupId,
    depth: usize,
) -> Result<(Graph, HashMap<u32, NodeId>), LoadError> {
    let Files {
        path,
        bin_path,
        bin,
    } = *files;
    let mut index: HashMap<u32, usize> = HashMap::new();
    for (i, l) in layers.iter().enumerate() {
        if index.insert(l.id, i).is_some() {
            return Err(LoadError::corrupt(
                path,
                format!("two layers with id {}", l.id),
            ));
        }
    }
    // Constants become weights; a Convert of a constant stands for it.
    let mut consts: HashMap<usize, TensorId> = HashMap::new();
    for (i, l) in layers.iter().enumerate() {
        if l.kind == "Const" {
            consts.insert(i, model.add_tensor(const_tensor(l, bin_path, bin)));
        }
    }
    if bin.is_none() && !consts.is_empty() {
        model.metadata.warnings.push(format!(
            "{}: the weights file {} is missing; the graph is drawn without its {} constants",
            path.display(),
            bin_path.display(),
            consts.len()
        ));
    }
    // The layer and port feeding input port `port` of layer `id`.
    let source = |id: u32, port: u32| -> Option<(usize, u32)> {
        let &(from, from_port) = edges.get(&(id, port))?;
        Some((*index.get(&from)?, from_port))
    };
    // The weight a layer stands for: a constant, or a Convert chain back to one.
    let resolve = |consts: &HashMap<usize, TensorId>, start: usize| -> Option<TensorId> {
        let mut i = start;
        for _ in 0..MAX_CONVERT_CHAIN {
            if let Some(&t) = consts.get(&i) {
                return Some(t);
            }
            let l = &layers[i];
            // A Convert of a weight, or a Reshape of one to a constant shape (group-wise
            // compressed weights are `[out, groups, size]`, reshaped to `[out, in]` for MatMul).
            let reshape = l.kind == "Reshape"
                && l.inputs.len() == 2
                && source(l.id, l.inputs[1].id).is_some_and(|(j, _)| consts.contains_key(&j));
            if l.kind != "Convert" && !reshape {
                return None;
            }
            let p = l.inputs.first()?;
            i = source(l.id, p.id)?.0;
        }
        None
    };
    // Compressed weights (NNCF's `compress_weights`, `optimum-cli export openvino --weight-format
    // int8`): `Multiply(Subtract(Convert(W), Convert(zero point)), scale)` or, symmetric,
    // `Multiply(Convert(W), scale)`, with an integer W and a scale per output channel. The
    // integers keep their bytes and read as `(q - zero point) * scale`; the Subtract and Multiply
    // stand for the weight, so the op reading them owns it, as it owns a float weight.
    let mut dequantized = 0;
    for (i, l) in layers.iter().enumerate() {
        if l.kind != "Multiply" || l.inputs.len() != 2 {
            continue;
        }
        let src: Vec<Option<usize>> = l
            .inputs
            .iter()
            .map(|p| source(l.id, p.id).map(|(j, _)| j))
            .collect();
        let [Some(a), Some(b)] = src[..] else {
            continue;
        };
        for (x, s) in [(a, b), (b, a)] {
            let Some(scale) = resolve(&consts, s) else {
                continue;
            };
            // `x` is the integer weight, or a Subtract of its zero point.
            let (weight, zero, sub) = if let Some(w) = resolve(&consts, x) {
                (w, None, None)
            } else if layers[x].kind == "Subtract" && layers[x].inputs.len() == 2 {
                let sx = &layers[x];
                let w = source(sx.id, sx.inputs[0].id).and_then(|(j, _)| resolve(&consts, j));
                let z = source(sx.id, sx.inputs[1].id).and_then(|(j, _)| resolve(&consts, j));
                match (w, z) {
                    (Some(w), Some(z)) => (w, Some(z), Some(x)),
                    _ => continue,
                }
            } else {
                continue;
            };
            if let Some(q) = dequantization(&model.tensors, weight, scale, zero) {
                model.tensors[weight as usize].quant = Some(q);
                consts.insert(i, weight);
                if let Some(sub) = sub {
                    consts.insert(sub, weight);
                }
                dequantized += 1;
                break;
            }
        }
    }
    if dequantized > 0 {
        model.metadata.properties.push((
            "openvino.compressed_weights".into(),
            dequantized.to_string(),
        ));
    }
    let folded: Vec<Option<TensorId>> = (0..layers.len()).map(|i| resolve(&consts, i)).collect();
    let mut graph = Graph::default();
    let mut ops = OpNames::default();
    let mut ids: HashMap<u32, NodeId> = HashMap::new();
    let mut boxes = SubgraphBoxes::default();
    let mut values: HashMap<(usize, u32), ValueId> = HashMap::new();
    let mut weights = super::WeightReaders::default();
    let mut drawn: Vec<Option<u32>> = vec![None; layers.len()];
    for (i, l) in layers.iter().enumerate() {
        if folded[i].is_some() {
            continue;
        }
        let (kind, op) = match l.kind {
            "Parameter" => (NodeKind::Input, "Input"),
            "Result" => (NodeKind::Output, "Output"),
            other => (NodeKind::Op, other),
        };
        // Inputs and outputs stay at the top of their net: a `Result` is named after the value it
        // gives (`logits/sink_port_0`), which is no module.
        let group = if kind == NodeKind::Op {
            group_of(model, root, l.name)
        } else {
            root
        };
        let mut node = Node::new(l.name.to_string(), ops.get(op), kind);
        for &(k, v) in &l.data {
            node.attributes.push((k.to_string(), attr_value(v)));
        }
        for p in &l.inputs {
            let Some((j, from_port)) = source(l.id, p.id) else {
                node.inputs.push(None);
                continue;
            };
            if let Some(t) = folded[j] {
                weights.read(&mut graph, &model.tensors, &mut node, t);
                continue;
            }
            let v = *values.entry((j, from_port)).or_insert_with(|| {
                let src = &layers[j];
                let port = src.outputs.iter().find(|o| o.id == from_port);
                let name = match port.and_then(|o| o.names.first()) {
                    Some(n) => n.clone(),
                    None if src.outputs.len() <= 1 => src.name.to_string(),
                    None => format!("{}:{from_port}", src.name),
                };
                graph.add_value(Value {
                    name,
                    dtype: port.and_then(|o| o.dtype),
                    shape: port.map(|o| o.dims.clone()),
                })
            });
            node.inputs.push(Some(v));
        }
        node.group = group;
        let id = graph.nodes.len() as NodeId;
        for b in &l.bodies {
            body(
                model, files, l, b, id, &mut node, &mut graph, &mut boxes, depth,
            )?;
        }
        drawn[i] = Some(graph.add_node(node));
        ids.insert(l.id, id);
    }
    // Each producer's outputs, in port order (those something reads; at least one).
    let mut outputs: HashMap<usize, Vec<(u32, ValueId)>> = HashMap::new();
    for (&(j, k), &v) in &values {
        outputs.entry(j).or_default().push((k, v));
    }
    for (i, l) in layers.iter().enumerate() {
        let Some(id) = drawn[i] else { continue };
        let mut outs = outputs.remove(&i).unwrap_or_default();
        outs.sort_unstable();
        let is_output = graph.nodes[id as usize].kind == NodeKind::Output;
        if outs.is_empty() && !l.outputs.is_empty() && !is_output {
            let port = &l.outputs[0];
            let v = graph.add_value(Value {
                name: port
                    .names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| l.name.to_string()),
                dtype: port.dtype,
                shape: Some(port.dims.clone()),
            });
            outs.push((port.id, v));
        }
        let node = &mut graph.nodes[id as usize];
        node.outputs = outs.iter().map(|&(_, v)| v).collect();
        match node.kind {
            NodeKind::Input => graph.inputs.extend(node.outputs.first().copied()),
            NodeKind::Output => graph.outputs.extend(node.inputs.first().copied().flatten()),
            _ => {}
        }
    }
    graph.connect_by_values();
    Ok((graph, ids))
}

/// Builds body `b` of layer `l` (node `id`, not yet added to `graph`) into `graph.bodies`, boxed
/// inside the owner's box, and lists the loop's back edges on the owner.
#[allow(clippy::too_many_arguments)]
fn body(
    model: &mut Model,
    files: &Files<'_>,
    l: &Layer<'_>,
    b: &BodyXml<'_>,
    id: NodeId,
    node: &mut Node,
    graph: &mut Graph,
    boxes: &mut SubgraphBoxes,
    depth: usize,
) -> Result<(), LoadError> {
    let corrupt = |why: String| {
        LoadError::corrupt(
            files.path,
            format!("layer {} ({}): {}: {why}", l.id, l.name, b.tag),
        )
    };
    if depth + 1 > MAX_DEPTH {
        return Err(corrupt(format!("bodies nested deeper than {MAX_DEPTH}")));
    }
    let (layers, edges) = net_of(b.el).map_err(corrupt)?;
    let (owner_box, root) = boxes.boxes(&mut model.hierarchy, node.group, id, &node.name, b.tag);
    node.group = owner_box;
    let (inner, inner_ids) = build(model, files, &layers, &edges, root, depth + 1)?;
    // The port map: which of the owner's inputs feeds which `Parameter`.
    let mut fed_by = vec![None; inner.inputs.len()];
    for m in b.port_map.iter().flat_map(|m| m.children()) {
        if !m.has_tag_name("input") {
            continue;
        }
        let num = |k: &str| m.attribute(k).and_then(|v| v.trim().parse::<i64>().ok());
        let (Some(port), Some(layer)) = (num("external_port_id"), num("internal_layer_id")) else {
            continue;
        };
        let slot = l.inputs.iter().position(|p| i64::from(p.id) == port);
        let value = u32::try_from(layer)
            .ok()
            .and_then(|k| inner_ids.get(&k))
            .and_then(|&n| inner.nodes.get(n as usize)?.outputs.first().copied());
        let at = value.and_then(|v| inner.inputs.iter().position(|&x| x == v));
        if let (Some(slot), Some(at)) = (slot, at) {
            fed_by[at] = Some(slot);
        }
    }
    // Back edges: a loop's next iteration reads what this one's `Result` gave.
    let name_of = |k: Option<&str>| {
        let k: u32 = k?.trim().parse().ok()?;
        layers.iter().find(|x| x.id == k).map(|x| x.name)
    };
    let back: Vec<String> = b
        .back_edges
        .iter()
        .flat_map(|e| e.children())
        .filter(|e| e.has_tag_name("edge"))
        .filter_map(|e| {
            let from = name_of(e.attribute("from-layer"))?;
            let to = name_of(e.attribute("to-layer"))?;
            Some(format!("{from} → {to}"))
        })
        .collect();
    if !back.is_empty() && !node.attributes.iter().any(|(k, _)| k == "back_edges") {
        node.attributes
            .push(("back_edges".into(), AttrValue::Strings(back)));
    }
    let index = graph.bodies.len();
    node.attributes
        .push((b.tag.to_string(), AttrValue::Graph(index)));
    graph.bodies.push(Body {
        owner: id,
        attribute: b.tag.to_string(),
        graph: inner,
        fed_by,
    });
    Ok(())
}

/// The quantization of integer weight `w` by `scale` and `zero` (constants broadcast against
/// it: one value, or one per index of a single axis), if they fit it.
fn dequantization(
    tensors: &[Tensor],
    w: TensorId,
    scale: TensorId,
    zero: Option<TensorId>,
) -> Option<crate::model::Quant> {
    let wt = tensors.get(w as usize)?;
    if !matches!(
        wt.dtype,
        DType::U8
            | DType::I8
            | DType::U4
            | DType::I4
            | DType::NF4
            | DType::F4E2M1
            | DType::F8E4M3FN
            | DType::F8E5M2
    ) || wt.quant.is_some()
    {
        return None;
    }
    // The axis of a broadcast scale: the one dimension it varies along (per channel), or the
    // last of a run of leading dimensions equal to the weight's (per group); 0 for one value.
    let axis_of = |t: &Tensor| -> Option<usize> {
        let n = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        if n == 1 {
            return Some(0);
        }
        if t.shape.len() != wt.shape.len() {
            return None;
        }
        let last = t.shape.iter().rposition(|&d| d != 1)?;
        let varying = t.shape.iter().filter(|&&d| d != 1).count();
        if varying == 1 {
            return (wt.shape.get(last) == t.shape.get(last)).then_some(last);
        }
        (t.shape[..=last] == wt.shape[..=last]).then_some(last)
    };
    let st = tensors.get(scale as usize)?;
    let axis = axis_of(st)?;
    let scales = st.small_numbers()?;
    let zeros = match zero {
        None => Vec::new(),
        Some(z) => {
            let zt = tensors.get(z as usize)?;
            let za = axis_of(zt)?;
            let v = zt.small_numbers()?;
            if v.len() != scales.len() || (v.len() > 1 && za != axis) {
                return None;
            }
            v
        }
    };
    crate::model::Quant::grouped(scales, zeros, axis, &wt.shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_split_on_unescaped_commas() {
        assert_eq!(split_names("x,input.1"), ["x", "input.1"]);
        assert_eq!(split_names(r"a\,b,c"), ["a,b", "c"]);
        assert!(split_names("").is_empty());
    }

    #[test]
    fn data_attributes_read_as_numbers_where_they_are() {
        assert!(matches!(attr_value("2, 2"), AttrValue::Ints(v) if v == [2, 2]));
        assert!(matches!(attr_value("-1"), AttrValue::Int(-1)));
        assert!(matches!(attr_value("0.5"), AttrValue::Float(f) if f == 0.5));
        assert!(matches!(attr_value("explicit"), AttrValue::String(s) if s == "explicit"));
    }

    #[test]
    fn sniffs_the_net_root() {
        assert!(sniff(
            Path::new("m.xml"),
            b"<?xml version=\"1.0\"?>\n<net name"
        ));
        assert!(sniff(
            Path::new("m"),
            b"<?xml version=\"1.0\"?>\n<net name=\"x\""
        ));
        assert!(!sniff(Path::new("m"), b"<?xml version=\"1.0\"?>\n<svg"));
        assert!(sniff(
            Path::new("m.xml"),
            b"\xEF\xBB\xBF<?xml version=\"1.0\"?>"
        ));
    }
}
