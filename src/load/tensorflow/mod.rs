//! TensorFlow graphs (`.pb`, or `.pbtxt` in protobuf text format): a `GraphDef` as frozen graphs
//! hold it (`freeze_graph`, `convert_variables_to_constants_v2`, TF1 `tf.io.write_graph`), the
//! weights inline as `Const` nodes.
//!
//! Every op is a node named by its `NodeDef` name, grouped by its name scope (`conv1/BiasAdd` in
//! `conv1`), with its attributes (`strides [1, 1, 1, 1]`, `padding SAME`, `T float32`). As Netron
//! draws them, `Const` nodes are not drawn: each constant is a weight owned by the first op that
//! reads it, also through the `Identity` ops that freezing leaves between a variable and its
//! readers (`…/ReadVariableOp`). Inputs are `name` or `name:k` (output k); control inputs (`^name`)
//! order execution and carry no value, so they are not edges, and `NoOp` nodes, which exist only
//! for them, are dropped. `Placeholder`s are the inputs; ops whose outputs nothing reads are the
//! outputs. `_output_shapes` attributes, where the writer kept them, give each value its shape.
//!
//! A SavedModel (`saved_model.pb`) is read by [`saved`]: its serving signature's functions
//! inlined, its weights from its variables bundle ([`bundle`]). A checkpoint opened on its own
//! (`model.ckpt.index`) is read by [`checkpoint`] as a checkpoint's weights.

mod bundle;
pub(super) mod checkpoint;
mod proto;
mod saved;
mod text;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use prost::Message;

use super::LoadError;
use crate::model::{
    AttrValue, ConvAxes, DType, Dim, Format, Graph, GroupId, Model, Node, NodeKind, OpNames,
    Tensor, TensorData, TensorId, TensorOrigin, Value, ValueId,
};
use proto::attr_value::Value as AV;

/// Largest constant expanded from typed fields (`float_val` repeated to fill its shape), elements.
const MAX_EXPANDED: u64 = 1 << 24;
/// Longest chain of `Identity` ops followed back to a constant.
const MAX_IDENTITY_CHAIN: usize = 64;

/// Opens a `.pb` already mapped.
pub(super) fn load(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let is_saved_model = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "saved_model.pb");
    let (graph, tf_version) = if is_saved_model {
        if let Some(model) = saved::load(path, &data).map_err(corrupt)? {
            return Ok(model);
        }
        let sm = proto::SavedModel::decode(data.clone())
            .map_err(|e| corrupt(format!("not a TensorFlow SavedModel: {e}")))?;
        let meta = sm
            .meta_graphs
            .into_iter()
            .next()
            .ok_or_else(|| corrupt("a SavedModel with no meta graph".into()))?;
        let version = meta
            .meta_info_def
            .map(|m| m.tensorflow_version)
            .filter(|v| !v.is_empty());
        let graph = meta
            .graph_def
            .ok_or_else(|| corrupt("a SavedModel meta graph with no graph".into()))?;
        // (A TF2 graph with no signature, its ops in functions, was read by `saved::load` as its
        // variables; what is left is a TF1 graph, drawn whole.)
        (graph, version)
    } else if path.extension().is_some_and(|e| e == "pbtxt") {
        let binary = text::graph_def_to_binary(&data)
            .map_err(|e| corrupt(format!("not a TensorFlow GraphDef in text format: {e}")))?;
        let graph = proto::GraphDef::decode(Bytes::from(binary))
            .map_err(|e| corrupt(format!("not a TensorFlow GraphDef: {e}")))?;
        (graph, None)
    } else {
        let graph = proto::GraphDef::decode(data.clone())
            .map_err(|e| corrupt(format!("not a TensorFlow GraphDef: {e}")))?;
        (graph, None)
    };
    if graph.node.is_empty() {
        return Err(corrupt("a TensorFlow GraphDef with no nodes".into()));
    }
    let mut model = Model::new(path, Format::TensorFlow);
    model.metadata.shards = 1;
    model.metadata.producer = Some("TensorFlow".into());
    model.metadata.producer_version = tf_version.or_else(|| {
        graph
            .versions
            .as_ref()
            .filter(|v| v.producer > 0)
            .map(|v| format!("GraphDef {}", v.producer))
    });
    let functions = graph.library.as_ref().map_or(0, |l| l.function.len());
    // A binary GraphDef's functions are control flow's bodies (a graph frozen without lowering
    // it: `While`'s `cond` and `body`, `If`'s branches).
    let library =
        if functions > 0 && !is_saved_model && path.extension().is_none_or(|e| e != "pbtxt") {
            proto::GraphLibrary::decode(data.clone())
                .ok()
                .and_then(|l| l.library)
        } else {
            None
        };
    let drawn = build(&mut model, path, &graph, library.as_ref());
    if functions > 0 && drawn == 0 {
        model.metadata.warnings.push(format!(
            "{}: the graph's {functions} function(s) are not drawn",
            path.display()
        ));
    }
    Ok(model)
}

/// `(node, output)` of an input reference (`conv/BiasAdd`, `split:1`); `None` for a control input.
fn input_ref(s: &str) -> Option<(&str, usize)> {
    if s.starts_with('^') {
        return None;
    }
    match s.rsplit_once(':') {
        Some((name, k)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => {
            Some((name, k.parse().unwrap_or(0)))
        }
        _ => Some((s, 0)),
    }
}

/// Builds the op graph; returns how many of `library`'s functions it drew as control flow's
/// bodies (nested ones not counted).
fn build(
    model: &mut Model,
    path: &Path,
    g: &proto::GraphDef,
    library: Option<&proto::FullFunctionDefLibrary>,
) -> usize {
    let library = saved::functions_by_name(library);
    let mut drawn_functions: HashSet<String> = HashSet::new();
    let nodes = &g.node;
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();

    // Constants become weights; an Identity of a constant (or of such an Identity) stands for it.
    let mut const_tensor: HashMap<usize, TensorId> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.op == "Const"
            && let Some(AV::Tensor(t)) = n.attr.get("value").and_then(|a| a.value.as_ref())
        {
            let tensor = tensor_of(&n.name, t, path);
            const_tensor.insert(i, model.add_tensor(tensor));
        }
    }
    let folded = |start: usize| -> Option<TensorId> {
        let mut i = start;
        for _ in 0..MAX_IDENTITY_CHAIN {
            if let Some(&t) = const_tensor.get(&i) {
                return Some(t);
            }
            let n = &nodes[i];
            if !matches!(n.op.as_str(), "Identity" | "Snapshot" | "StopGradient") {
                return None;
            }
            let (src, _) = n.input.iter().find_map(|s| input_ref(s))?;
            i = *index.get(src)?;
        }
        None
    };
    let folded: Vec<Option<TensorId>> = (0..nodes.len()).map(folded).collect();

    let mut graph = Graph::default();
    let mut groups: Vec<GroupId> = Vec::new();
    let mut ops = OpNames::default();
    // Graph value of each (producer, output) referenced, and of each weight.
    let mut values: HashMap<(usize, usize), ValueId> = HashMap::new();
    let mut weights = super::WeightReaders::default();
    let mut consumed: HashSet<usize> = HashSet::new();
    // Graph node of each drawn NodeDef.
    let mut drawn: Vec<Option<u32>> = vec![None; nodes.len()];
    let mut pending_conv: Vec<(TensorId, ConvAxes)> = Vec::new();

    for (i, n) in nodes.iter().enumerate() {
        if folded[i].is_some() || n.op == "NoOp" {
            continue;
        }
        let group = scope_group(model, 0, &n.name);
        let (kind, op) = match n.op.as_str() {
            "Placeholder" | "PlaceholderWithDefault" if n.input.is_empty() => {
                (NodeKind::Input, "Input")
            }
            "Placeholder" | "PlaceholderWithDefault" => (NodeKind::Op, n.op.as_str()),
            other => (NodeKind::Op, other),
        };
        let mut node = Node::new(n.name.clone(), ops.get(op), kind);
        let mut keys: Vec<&String> = n.attr.keys().collect();
        keys.sort();
        for k in keys {
            if k == "value" || k == "_output_shapes" {
                continue;
            }
            if let Some(v) = attr(&n.attr[k]) {
                node.attributes.push((k.clone(), v));
            }
        }
        // Each data input's value, and the weight it is.
        let mut operands: Vec<(ValueId, Option<TensorId>)> = Vec::new();
        for (slot, s) in n.input.iter().enumerate() {
            let Some((src, k)) = input_ref(s) else {
                continue;
            };
            let Some(&j) = index.get(src) else {
                // An input no node produces: kept as a dangling value, named as written.
                let v = graph.add_value(Value {
                    name: s.clone(),
                    ..Value::default()
                });
                node.inputs.push(Some(v));
                operands.push((v, None));
                continue;
            };
            if let Some(t) = folded[j] {
                if weights.read(&mut graph, &model.tensors, &mut node, t)
                    && let Some(axes) = conv_axes(&n.op, slot)
                {
                    pending_conv.push((t, axes));
                }
                if let Some(&Some(v)) = node.inputs.last() {
                    operands.push((v, Some(t)));
                }
                continue;
            }
            consumed.insert(j);
            let v = *values.entry((j, k)).or_insert_with(|| {
                let (dtype, shape) = value_type(&nodes[j], k);
                graph.add_value(Value {
                    name: if k == 0 {
                        src.to_string()
                    } else {
                        format!("{src}:{k}")
                    },
                    dtype,
                    shape,
                })
            });
            node.inputs.push(Some(v));
            operands.push((v, None));
        }
        if kind == NodeKind::Input {
            node.inputs.clear();
        }
        let mut group = group;
        if !library.is_empty() {
            let id = graph.nodes.len() as u32;
            let (g, bodies) =
                saved::frozen_bodies(model, &library, n, &mut node, id, group, &operands);
            group = g;
            let first = graph.bodies.len();
            for (_, a) in &mut node.attributes {
                if let AttrValue::Graph(k) = a {
                    *k += first;
                }
            }
            // What a body's ops own, the op passing it in does not.
            let inside: HashSet<TensorId> = bodies
                .iter()
                .flat_map(|b| b.graph.nodes.iter().flat_map(|x| x.tensors.iter().copied()))
                .collect();
            node.tensors.retain(|t| !inside.contains(t));
            drawn_functions.extend(bodies.iter().map(|b| b.graph.name.clone()));
            graph.bodies.extend(bodies);
        }
        drawn[i] = Some(graph.add_node(node));
        groups.push(group);
    }
    for (t, axes) in pending_conv {
        if let Some(w) = model.tensors.get_mut(t as usize)
            && w.shape.len() == 4
        {
            w.conv_axes = Some(axes);
        }
    }
    // Each producer's outputs, in index order (only those something reads; at least one).
    let mut outputs: HashMap<usize, Vec<(usize, ValueId)>> = HashMap::new();
    for (&(j, k), &v) in &values {
        outputs.entry(j).or_default().push((k, v));
    }
    for (i, n) in nodes.iter().enumerate() {
        let Some(id) = drawn[i] else { continue };
        let mut outs = outputs.remove(&i).unwrap_or_default();
        outs.sort_unstable();
        let unread = outs.is_empty();
        if unread {
            let (dtype, shape) = value_type(n, 0);
            let v = graph.add_value(Value {
                name: n.name.clone(),
                dtype,
                shape,
            });
            outs.push((0, v));
        }
        let node = &mut graph.nodes[id as usize];
        node.outputs = outs.iter().map(|&(_, v)| v).collect();
        if node.kind == NodeKind::Input {
            graph.inputs.push(node.outputs[0]);
        } else if unread && !consumed.contains(&i) {
            // What nothing reads is what the graph computes.
            let v = node.outputs[0];
            graph.outputs.push(v);
            let mut out = Node::new(n.name.clone(), "Output", NodeKind::Output);
            out.inputs.push(Some(v));
            let group = groups[id as usize];
            graph.add_node(out);
            groups.push(group);
        }
    }
    graph.connect_by_values();
    for (node, &g) in graph.nodes.iter_mut().zip(&groups) {
        node.group = g;
    }
    graph.inline_bodies(false);
    let groups: Vec<GroupId> = graph.nodes.iter().map(|n| n.group).collect();
    model.graph = graph;
    model.finish_hierarchy(&groups);
    drawn_functions.len()
}

/// The group of a node's name scope (`model/conv1/BiasAdd` → `model/conv1`).
fn scope_group(model: &mut Model, root: GroupId, name: &str) -> GroupId {
    let Some((scope, _)) = name.rsplit_once('/') else {
        return root;
    };
    model
        .hierarchy
        .insert_path_under(root, scope.split('/').filter(|s| !s.is_empty()), '/')
}

/// Which axes of a conv's filter hold what, for the filter input of TensorFlow's conv ops.
fn conv_axes(op: &str, slot: usize) -> Option<ConvAxes> {
    match (op, slot) {
        // `[kh, kw, in, out]`.
        ("Conv2D" | "FusedConv2D" | "_FusedConv2D" | "QuantizedConv2D", 1) => Some(ConvAxes {
            kh: 0,
            kw: 1,
            input: 2,
            out: 3,
        }),
        // `[kh, kw, in, multiplier]`: one kernel per input channel.
        ("DepthwiseConv2dNative" | "_FusedDepthwiseConv2dNative", 1) => Some(ConvAxes {
            kh: 0,
            kw: 1,
            input: 3,
            out: 2,
        }),
        // `[kh, kw, out, in]`.
        ("Conv2DBackpropInput", 1) => Some(ConvAxes {
            kh: 0,
            kw: 1,
            out: 2,
            input: 3,
        }),
        _ => None,
    }
}

/// Dtype and shape of output `k` of a node, from its attributes where they say.
fn value_type(n: &proto::NodeDef, k: usize) -> (Option<DType>, Option<Vec<Dim>>) {
    let dtype = ["T", "dtype", "out_type", "DstT"].iter().find_map(|key| {
        match n.attr.get(*key).and_then(|a| a.value.as_ref()) {
            Some(AV::Type(t)) => Some(dtype_of(*t)),
            _ => None,
        }
    });
    let shape = match n.attr.get("_output_shapes").and_then(|a| a.value.as_ref()) {
        Some(AV::List(l)) => l.shape.get(k).and_then(dims),
        _ => match (k, n.attr.get("shape").and_then(|a| a.value.as_ref())) {
            (0, Some(AV::Shape(s))) => dims(s),
            _ => None,
        },
    };
    (dtype, shape)
}

fn dims(s: &proto::TensorShapeProto) -> Option<Vec<Dim>> {
    if s.unknown_rank {
        return None;
    }
    Some(
        s.dim
            .iter()
            .map(|d| match (d.size, d.name.is_empty()) {
                (n, _) if n >= 0 => Dim::Fixed(n),
                (_, false) => Dim::Symbol(d.name.clone()),
                _ => Dim::Unknown,
            })
            .collect(),
    )
}

/// The text of a `DataType` (`DT_FLOAT` → `float32`).
fn type_name(t: i32) -> String {
    match t {
        1 => "float32",
        2 => "float64",
        3 => "int32",
        4 => "uint8",
        5 => "int16",
        6 => "int8",
        7 => "string",
        8 => "complex64",
        9 => "int64",
        10 => "bool",
        11 => "qint8",
        12 => "quint8",
        13 => "qint32",
        14 => "bfloat16",
        15 => "qint16",
        16 => "quint16",
        17 => "uint16",
        18 => "complex128",
        19 => "float16",
        20 => "resource",
        21 => "variant",
        22 => "uint32",
        23 => "uint64",
        24 => "float8_e5m2",
        25 => "float8_e4m3fn",
        _ => return format!("type {t}"),
    }
    .to_string()
}

fn dtype_of(t: i32) -> DType {
    match t {
        1 => DType::F32,
        2 => DType::F64,
        3 | 13 => DType::I32,
        4 | 12 => DType::U8,
        5 | 15 => DType::I16,
        6 | 11 => DType::I8,
        7 => DType::String,
        8 => DType::Complex64,
        9 => DType::I64,
        10 => DType::Bool,
        14 => DType::BF16,
        16 | 17 => DType::U16,
        18 => DType::Complex128,
        19 => DType::F16,
        22 => DType::U32,
        23 => DType::U64,
        24 => DType::F8E5M2,
        25 => DType::F8E4M3FN,
        _ => DType::Unknown("TensorFlow DataType"),
    }
}

/// A node attribute as the model shows it.
fn attr(a: &proto::AttrValue) -> Option<AttrValue> {
    Some(match a.value.as_ref()? {
        AV::S(s) => AttrValue::String(String::from_utf8_lossy(s).into_owned()),
        AV::I(i) => AttrValue::Int(*i),
        AV::F(f) => AttrValue::Float(*f),
        AV::B(b) => AttrValue::Other(b.to_string()),
        AV::Type(t) => AttrValue::String(type_name(*t)),
        AV::Shape(s) => AttrValue::Other(shape_text(s)),
        AV::Tensor(t) => AttrValue::Other(format!(
            "tensor {} {}",
            type_name(t.dtype),
            t.tensor_shape.as_ref().map_or("[]".into(), shape_text)
        )),
        AV::Placeholder(p) => AttrValue::String(format!("${p}")),
        AV::Func(f) => AttrValue::String(f.name.clone()),
        AV::List(l) => {
            if !l.i.is_empty() {
                AttrValue::Ints(l.i.clone())
            } else if !l.f.is_empty() {
                AttrValue::Floats(l.f.clone())
            } else if !l.s.is_empty() {
                AttrValue::Strings(
                    l.s.iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect(),
                )
            } else if !l.r#type.is_empty() {
                AttrValue::Strings(l.r#type.iter().map(|&t| type_name(t)).collect())
            } else if !l.shape.is_empty() {
                AttrValue::Strings(l.shape.iter().map(shape_text).collect())
            } else if !l.b.is_empty() {
                AttrValue::Strings(l.b.iter().map(bool::to_string).collect())
            } else if !l.func.is_empty() {
                AttrValue::Strings(l.func.iter().map(|f| f.name.clone()).collect())
            } else {
                AttrValue::Other("[]".into())
            }
        }
    })
}

fn shape_text(s: &proto::TensorShapeProto) -> String {
    if s.unknown_rank {
        return "?".into();
    }
    let d: Vec<String> = s
        .dim
        .iter()
        .map(|d| {
            if d.size >= 0 {
                d.size.to_string()
            } else {
                "?".into()
            }
        })
        .collect();
    format!("[{}]", d.join(", "))
}

/// The weight a `Const` holds: its `tensor_content` borrowed from the map, or its typed values
/// (the last one repeated to fill the shape, as TensorFlow does) decoded once.
fn tensor_of(name: &str, t: &proto::TensorProto, path: &Path) -> Tensor {
    let dtype = dtype_of(t.dtype);
    let shape_dims: Vec<i64> = t
        .tensor_shape
        .as_ref()
        .map(|s| s.dim.iter().map(|d| d.size).collect())
        .unwrap_or_default();
    let err = |why: String| TensorData::Error(format!("{}: {name}: {why}", path.display()));
    let mut tensor = Tensor {
        name: name.to_string(),
        dtype,
        shape: shape_dims.iter().map(|&d| d.max(0) as u64).collect(),
        data: TensorData::Missing,
        origin: TensorOrigin::Initializer,
        conv_axes: None,
        quant: None,
    };
    if shape_dims.iter().any(|&d| d < 0) {
        tensor.data = err(format!("its shape {shape_dims:?} has an unknown size"));
        return tensor;
    }
    let Some(numel) = tensor.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)) else {
        tensor.data = err("its element count overflows".into());
        return tensor;
    };
    let Some(es) = dtype.size_bytes() else {
        tensor.data = err(format!("{} values are not read", type_name(t.dtype)));
        return tensor;
    };
    if !t.tensor_content.is_empty() {
        tensor.data = if numel.checked_mul(es) == Some(t.tensor_content.len() as u64) {
            TensorData::Bytes(t.tensor_content.clone())
        } else {
            err(format!(
                "{} bytes of content for {numel} elements of {es} bytes",
                t.tensor_content.len()
            ))
        };
        return tensor;
    }
    if numel > MAX_EXPANDED {
        tensor.data = err(format!(
            "{numel} elements from typed values, more than the {MAX_EXPANDED} expanded"
        ));
        return tensor;
    }
    let n = numel as usize;
    let mut out: Vec<u8> = Vec::with_capacity(n * es as usize);
    fn fill<T: Copy>(vals: &[T], n: usize, mut put: impl FnMut(T)) {
        let Some(&last) = vals.last() else { return };
        for i in 0..n {
            put(vals.get(i).copied().unwrap_or(last));
        }
    }
    match dtype {
        DType::F32 => fill(&t.float_val, n, |v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F64 => fill(&t.double_val, n, |v| {
            out.extend_from_slice(&v.to_le_bytes())
        }),
        DType::I64 => fill(&t.int64_val, n, |v| out.extend_from_slice(&v.to_le_bytes())),
        DType::I32 => fill(&t.int_val, n, |v| out.extend_from_slice(&v.to_le_bytes())),
        DType::I16 | DType::U16 => fill(&t.int_val, n, |v| {
            out.extend_from_slice(&(v as u16).to_le_bytes())
        }),
        DType::I8 | DType::U8 => fill(&t.int_val, n, |v| out.push(v as u8)),
        DType::Bool => fill(&t.bool_val, n, |v| out.push(u8::from(v))),
        DType::F16 | DType::BF16 => fill(&t.half_val, n, |v| {
            out.extend_from_slice(&(v as u16).to_le_bytes())
        }),
        DType::U32 => fill(&t.uint32_val, n, |v| {
            out.extend_from_slice(&v.to_le_bytes())
        }),
        DType::U64 => fill(&t.uint64_val, n, |v| {
            out.extend_from_slice(&v.to_le_bytes())
        }),
        _ => {}
    }
    if out.is_empty() && n > 0 {
        // No values at all: TensorFlow fills with zeros.
        out.resize(n * es as usize, 0);
    }
    tensor.data = TensorData::Bytes(Bytes::from(out));
    tensor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_references() {
        assert_eq!(input_ref("conv/BiasAdd"), Some(("conv/BiasAdd", 0)));
        assert_eq!(input_ref("split:2"), Some(("split", 2)));
        assert_eq!(input_ref("^NoOp"), None);
        assert_eq!(input_ref("a:b"), Some(("a:b", 0)));
    }

    #[test]
    fn typed_values_fill_their_shape() {
        let t = proto::TensorProto {
            dtype: 1,
            tensor_shape: Some(proto::TensorShapeProto {
                dim: vec![proto::Dim {
                    size: 4,
                    name: String::new(),
                }],
                unknown_rank: false,
            }),
            float_val: vec![1.5, 2.0],
            ..Default::default()
        };
        let w = tensor_of("c", &t, Path::new("x.pb"));
        let TensorData::Bytes(b) = &w.data else {
            panic!("{:?}", w.data)
        };
        let v: Vec<f32> = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(v, [1.5, 2.0, 2.0, 2.0]);
        // Too large to expand: an error for that tensor only.
        let mut big = t.clone();
        big.tensor_shape = Some(proto::TensorShapeProto {
            dim: vec![proto::Dim {
                size: 1 << 40,
                name: String::new(),
            }],
            unknown_rank: false,
        });
        assert!(matches!(
            tensor_of("c", &big, Path::new("x.pb")).data,
            TensorData::Error(_)
        ));
    }
}
