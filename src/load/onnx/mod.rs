//! ONNX loader: prost messages over the memory map, so `raw_data` borrows from the file.
//!
//! External data (`data_location = EXTERNAL`) is resolved relative to the model's folder, each data
//! file mapped once, every `offset`/`length` checked against the mapped size. Subgraphs (`If`,
//! `Loop`, `Scan` bodies) are converted recursively and kept on the graph.

pub mod proto;

use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message as _;

use super::LoadError;
use crate::model::{
    AttrValue, Body, DType, Dim, Format, Graph, GroupId, Model, Node, NodeKind, OpNames, Quant,
    Tensor, TensorData, TensorId, TensorOrigin, Value, ValueId,
};
use crate::model::{Hierarchy, NodeId, SubgraphBoxes, hierarchy_split};
use proto::{GraphProto, TensorProto, TypeProto, attribute_type as at};

/// Lazily mapped external-data files of one model.
struct External {
    model_path: PathBuf,
    dir: PathBuf,
    maps: HashMap<String, Result<Bytes, String>>,
}

impl External {
    fn file(&mut self, location: &str) -> Result<Bytes, String> {
        if let Some(m) = self.maps.get(location) {
            return m.clone();
        }
        let rel = Path::new(location);
        let result = if rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            Err(format!(
                "external data location {location:?} leaves the model's folder"
            ))
        } else {
            let p = self.dir.join(rel);
            super::map_file(&p)
                .map_err(|e| format!("external data file missing or unreadable: {e}"))
        };
        self.maps.insert(location.to_string(), result.clone());
        result
    }
}

pub(super) fn load(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    load_with(path, data, &|| false)
}

/// [`load`], polling `cancelled` after decoding and every [`CANCEL_EVERY`] nodes.
pub(super) fn load_with(
    path: &Path,
    data: Bytes,
    cancelled: &dyn Fn() -> bool,
) -> Result<Model, LoadError> {
    crate::diag::trace_memory("onnx: mapped");
    let proto = proto::LazyModelProto::decode(data)
        .map_err(|e| LoadError::corrupt(path, format!("not a valid ONNX protobuf: {e}")))?;
    crate::diag::trace_memory("onnx: decoded");
    if cancelled() {
        return Err(LoadError::Cancelled {
            path: path.to_path_buf(),
        });
    }
    if proto.graph.is_none() && proto.ir_version == 0 {
        return Err(LoadError::corrupt(
            path,
            "no ONNX graph and no IR version: not an ONNX model",
        ));
    }
    let mut model = Model::new(path, Format::Onnx);
    let md = &mut model.metadata;
    md.producer = non_empty(&proto.producer_name);
    md.producer_version = non_empty(&proto.producer_version);
    md.ir_version = Some(proto.ir_version);
    md.doc = non_empty(&proto.doc_string);
    md.shards = 1;
    for op in &proto.opset_import {
        let domain = if op.domain.is_empty() {
            "ai.onnx".to_string()
        } else {
            op.domain.clone()
        };
        md.opsets.push((domain, op.version));
    }
    for p in &proto.metadata_props {
        md.properties.push((p.key.clone(), p.value.clone()));
    }
    if !proto.domain.is_empty() {
        md.properties.push(("domain".into(), proto.domain.clone()));
    }
    if proto.model_version != 0 {
        md.properties
            .push(("model_version".into(), proto.model_version.to_string()));
    }
    let mut ext = External {
        model_path: path.to_path_buf(),
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        maps: HashMap::default(),
    };
    let (graph_proto, encoded) = proto.graph.unwrap_or_default().split();
    let functions: HashMap<(String, String), proto::FunctionProto> = proto
        .functions
        .into_iter()
        .map(|f| ((f.domain.clone(), f.name.clone()), f))
        .collect();
    let mut conv = Converter {
        model: &mut model,
        ext: &mut ext,
        cancelled,
        path,
        ops: OpNames::default(),
        functions: &functions,
        calls: 0,
    };
    let mut graph = conv.graph(graph_proto, Some(encoded), true)?;
    // A branch reads outer values by name.
    graph.inline_bodies(true);
    crate::diag::trace_memory("onnx: converted");
    model.graph = graph;
    build_hierarchy(&mut model);
    crate::diag::trace_memory("onnx: hierarchy");
    link_dequantize(&mut model);
    link_matmul_nbits(&mut model);
    Ok(model)
}

/// onnxruntime's 4- and 8-bit weights (`com.microsoft.MatMulNBits`, as its `MatMulNBitsQuantizer`
/// and the GenAI model builder write int4 LLMs): `B` is `[N, blocks, block bytes]` of packed
/// integers, low bits first, which is the `[N, K]` weight row by row; `scales` one per block and
/// `zero_points` packed the same way, each row padded to whole bytes (absent: the middle value,
/// 8 or 128). The weight is re-read as U4 / U8 `[N, K]` and read as `(q − zero) × scale` per
/// block, the scales and zero points left in the file.
fn link_matmul_nbits(model: &mut Model) {
    use crate::model::{GroupOffset, ScaleBiasGroups};
    let mut found = Vec::new();
    for n in model.graph.nodes.iter().filter(|n| &*n.op == "MatMulNBits") {
        let int = |k: &str| {
            n.attributes
                .iter()
                .find_map(|(a, v)| match (a.as_str(), v) {
                    (a, AttrValue::Int(i)) if a == k => u64::try_from(*i).ok(),
                    _ => None,
                })
        };
        let (Some(k), Some(rows), Some(bits), Some(block)) =
            (int("K"), int("N"), int("bits"), int("block_size"))
        else {
            continue;
        };
        let tensor_of = |slot: usize| {
            let v = (*n.inputs.get(slot)?)?;
            let name = &model.graph.values.get(v as usize)?.name;
            model.tensor_index.get(name).copied()
        };
        let (Some(b), Some(sc)) = (tensor_of(1), tensor_of(2)) else {
            continue;
        };
        // An activation-order index (`g_idx`) reorders the groups: not read.
        if n.inputs.get(4).copied().flatten().is_some() || !matches!(bits, 4 | 8) || block == 0 {
            continue;
        }
        let (Some(bt), Some(st)) = (
            model.tensors.get(b as usize),
            model.tensors.get(sc as usize),
        ) else {
            continue;
        };
        let blocks = k.div_ceil(block);
        // Sizes from attributes a file can set to anything: checked, never overflowing.
        let packed = rows
            .checked_mul(k)
            .and_then(|n| n.checked_mul(bits))
            .map(|b| b / 8);
        if !k.is_multiple_of(block)
            || bt.dtype != DType::U8
            || Some(bt.elements()) != packed
            || Some(st.elements()) != rows.checked_mul(blocks)
            || bt.quant.is_some()
        {
            continue;
        }
        let (TensorData::Bytes(scales), Some(_)) = (&st.data, st.dtype.size_bytes()) else {
            continue;
        };
        let offset = match tensor_of(3).and_then(|z| model.tensors.get(z as usize)) {
            None => GroupOffset::Zero(f64::from(1u32 << (bits - 1))),
            Some(zt) => match (&zt.data, zt.dtype) {
                (TensorData::Bytes(z), DType::U8) => GroupOffset::ZeroPoints {
                    bytes: z.clone(),
                    bits: bits as u8,
                    row_groups: blocks,
                    packing: crate::model::ZeroPacking::Rows,
                    plus: 0,
                },
                _ => continue,
            },
        };
        let groups = ScaleBiasGroups::runs(block, st.dtype, scales.clone(), offset);
        if let Some(q) = Quant::scale_bias_groups(groups) {
            let dtype = if bits == 4 { DType::U4 } else { DType::U8 };
            found.push((b, dtype, vec![rows, k], q));
        }
    }
    for (b, dtype, shape, q) in found {
        if let Some(t) = model.tensors.get_mut(b as usize) {
            t.dtype = dtype;
            t.shape = shape;
            t.quant = Some(q);
        }
    }
}

/// Quantized weights in QDQ form: a `DequantizeLinear` whose input is an integer initializer and
/// whose scale (and zero point) are initializers gives that weight its [`Quant`], so statistics
/// and heatmaps show the reals it stands for. A weight read by several such nodes keeps the first.
fn link_dequantize(model: &mut Model) {
    let mut found = Vec::new();
    // Subgraphs' nodes too (`If` branches, `Loop` bodies): a subgraph's node reads its own
    // initializers and the enclosing scopes' by name.
    let graph = &model.graph;
    let nodes = graph.nodes.iter().filter(|n| &*n.op == "DequantizeLinear");
    for n in nodes {
        let tensor_of = |slot: usize| {
            let v = (*n.inputs.get(slot)?)?;
            let name = &graph.values.get(v as usize)?.name;
            model.tensor_index.get(name).copied()
        };
        let (Some(x), Some(scale)) = (tensor_of(0), tensor_of(1)) else {
            continue;
        };
        let (Some(xt), Some(st)) = (
            model.tensors.get(x as usize),
            model.tensors.get(scale as usize),
        ) else {
            continue;
        };
        if xt.dtype.is_float() || xt.quant.is_some() {
            continue;
        }
        let Some(scales) = st.small_numbers() else {
            continue;
        };
        let zeros = match tensor_of(2).and_then(|z| model.tensors.get(z as usize)) {
            Some(zt) => match zt.small_numbers() {
                Some(z) => z,
                None => continue,
            },
            None => Vec::new(),
        };
        let rank = xt.shape.len() as i64;
        let axis = n
            .attributes
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                ("axis", AttrValue::Int(a)) => Some(*a),
                _ => None,
            })
            .unwrap_or(1);
        let axis = usize::try_from(if axis < 0 { axis + rank } else { axis }).unwrap_or(0);
        if let Some(q) = Quant::new(scales, zeros, axis, &xt.shape) {
            found.push((x, q));
        }
    }
    for (x, q) in found {
        if let Some(t) = model.tensors.get_mut(x as usize)
            && t.quant.is_none()
        {
            t.quant = Some(q);
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Groups nodes by their module path and fills counts. A node's path comes from, in order:
/// 1. its name (`/model/layers.0/self_attn/q_proj/MatMul`, as current PyTorch exports write it);
/// 2. else the first parameter it consumes whose name has a path: an initializer, or the output of
///    a `Constant`/`ConstantOfShape` node (older exports name nodes `MatMul_12` but keep
///    `encoder.layer.0.attention.self.query.weight`; the ONNX zoo's light models name nodes `n10`
///    and their weights `inception_3a/1x1_w_0`), so an op sits in the box of the module its weights
///    belong to, with them (a prefix every such path shares, like the `gpu_0/` on all of ResNet-50's
///    weights, is dropped: it would only box the whole model);
/// 3. else, for a parameter-free op (`Relu`, `Add`, `Concat`), the group of its data inputs'
///    producers when they all share one, in file order (ONNX lists nodes topologically).
///
/// Graph inputs and outputs stay at the top level.
pub(super) fn build_hierarchy(model: &mut Model) {
    let graph = &model.graph;
    let hierarchy = &mut model.hierarchy;
    let mut groups: Vec<GroupId> = vec![0; graph.nodes.len()];
    let mut placer = Placer::new(graph);
    // The top level first, then each subgraph in its owner's box (see `SubgraphBoxes`), its paths
    // below that box: `If_0/then_branch/encoder/…`.
    let top = match graph.subgraphs.first() {
        // Subgraphs' nodes follow the top level's.
        Some(s) => s.nodes.start as usize,
        None => graph.nodes.len(),
    };
    placer.place(hierarchy, 0..top, 0, &mut groups);
    let mut boxes = SubgraphBoxes::default();
    for k in 0..graph.subgraphs.len() {
        let root = boxes.body(hierarchy, graph, k, &mut groups);
        let own = graph.own_node_ids(k);
        placer.place(
            hierarchy,
            own.start as usize..own.end as usize,
            root,
            &mut groups,
        );
    }
    for (node, &g) in model.graph.nodes.iter_mut().zip(&groups) {
        node.group = g;
    }
    model.finish_hierarchy(&groups);
}

/// The rules of [`build_hierarchy`], applied to one scope's nodes at a time.
struct Placer<'g> {
    graph: &'g Graph,
    producer: Vec<Option<NodeId>>,
    /// Each node's consumers, once each (rules 3a and 4).
    consumers: Vec<Vec<u32>>,
    /// Ops placed by their own name's path (rule 1).
    named: Vec<bool>,
}

impl<'g> Placer<'g> {
    fn new(graph: &'g Graph) -> Self {
        let producer = graph.producers();
        let mut consumers: Vec<Vec<u32>> = vec![Vec::new(); graph.nodes.len()];
        for (i, node) in graph.nodes.iter().enumerate() {
            for &v in node.inputs.iter().flatten() {
                if let Some(p) = producer.get(v as usize).copied().flatten()
                    && p as usize != i
                    && let Some(list) = consumers.get_mut(p as usize)
                    && list.last() != Some(&(i as u32))
                {
                    list.push(i as u32);
                }
            }
        }
        Placer {
            graph,
            producer,
            consumers,
            named: vec![false; graph.nodes.len()],
        }
    }

    /// An input is a parameter when no node produces it (an initializer: graph inputs are nodes)
    /// or a constant op does.
    fn is_parameter(&self, v: u32) -> bool {
        match self.producer.get(v as usize).copied().flatten() {
            None => true,
            Some(p) => self
                .graph
                .nodes
                .get(p as usize)
                .is_some_and(Node::is_constant_op),
        }
    }

    /// Places `nodes` (one scope's own, in file order: a subgraph's follow each other, those of
    /// subgraphs nested in it after them) below `root`.
    fn place(
        &mut self,
        hierarchy: &mut Hierarchy,
        nodes: std::ops::Range<usize>,
        root: GroupId,
        groups: &mut [GroupId],
    ) {
        let graph = self.graph;
        let is_constant_op = Node::is_constant_op;
        let node = |i: usize| &graph.nodes[i];
        for i in nodes.clone() {
            groups[i] = root;
        }
        // Rule 1, in one pass: ops whose name has a path. Constant ops come last (rule 4). In a
        // subgraph, a first segment every path shares is dropped: the subgraph is a box already
        // (silero-vad's branches name everything `If_0_then_branch__Inline_0__/…`).
        let path_of = |i: usize| {
            let n = node(i);
            if n.kind != NodeKind::Op || is_constant_op(n) {
                return None;
            }
            let (segs, _, sep) = hierarchy_split(&n.name);
            (!segs.is_empty()).then_some((segs, sep))
        };
        let skip_first = root != 0 && {
            let mut firsts = nodes.clone().filter_map(|i| Some(path_of(i)?.0[0]));
            let first = firsts.next();
            let mut rest = firsts.peekable();
            rest.peek().is_some() && rest.all(|f| Some(f) == first)
        };
        for i in nodes.clone() {
            if let Some((segs, sep)) = path_of(i) {
                let segs = &segs[usize::from(skip_first)..];
                groups[i] = hierarchy.insert_path_under(root, segs.iter().copied(), sep);
                self.named[i] = true;
            }
        }
        // Rule 2's candidates: the path of the first parameter with one, per op without a named
        // path.
        let candidates: Vec<Option<(Vec<&str>, char)>> = nodes
            .clone()
            .map(|i| {
                let n = node(i);
                if n.kind != NodeKind::Op || self.named[i] || is_constant_op(n) {
                    return None;
                }
                n.inputs.iter().flatten().find_map(|&v| {
                    if !self.is_parameter(v) {
                        return None;
                    }
                    let name = graph.values.get(v as usize).map_or("", |x| x.name.as_str());
                    let (segs, _, sep) = hierarchy_split(name);
                    (!segs.is_empty()).then_some((segs, sep))
                })
            })
            .collect();
        // A prefix every parameter path shares (`gpu_0/` on every weight of the zoo's ResNet-50)
        // would only put the whole model in one box: it is dropped.
        let mut common: Option<&[&str]> = None;
        for (segs, _) in candidates.iter().flatten() {
            common = Some(match common {
                None => segs,
                Some(c) => {
                    let n = c.iter().zip(segs).take_while(|(a, b)| a == b).count();
                    &c[..n]
                }
            });
        }
        let skip = common.map_or(0, <[&str]>::len);
        let candidate_of = |i: usize| candidates.get(i.checked_sub(nodes.start)?)?.as_ref();
        let is_op = |c: &&u32| {
            graph
                .nodes
                .get(**c as usize)
                .is_some_and(|n| n.kind == NodeKind::Op)
        };
        // Rules 2 and 3, in file order, for the ops rule 1 left at the top.
        for i in nodes.clone() {
            let n = node(i);
            if n.kind != NodeKind::Op || self.named[i] || is_constant_op(n) {
                continue;
            }
            if let Some((segs, sep)) = candidate_of(i)
                && segs.len() > skip
            {
                groups[i] = hierarchy.insert_path_under(root, segs[skip..].iter().copied(), *sep);
                continue;
            }
            // Rule 3a: a parameter-free op feeding exactly one op that has a module (by name or
            // by its weights) belongs to that one: GoogLeNet's pool branch (MaxPool →
            // `pool_proj` Conv) is part of the block it feeds, not of the block before it.
            let mut ops = self.consumers[i].iter().filter(is_op);
            if let (Some(&c), None) = (ops.next(), ops.next()) {
                let c = c as usize;
                let into = if self.named.get(c) == Some(&true) {
                    groups.get(c).copied()
                } else {
                    match candidate_of(c) {
                        Some((segs, sep)) if segs.len() > skip => Some(
                            hierarchy.insert_path_under(root, segs[skip..].iter().copied(), *sep),
                        ),
                        _ => None,
                    }
                };
                if let Some(g) = into.filter(|&g| g != root && hierarchy.is_within(g, root)) {
                    groups[i] = g;
                    continue;
                }
            }
            let mut shared: Option<GroupId> = None;
            let mut agree = true;
            for &v in n.inputs.iter().flatten() {
                if self.is_parameter(v) {
                    continue;
                }
                let g = self
                    .producer
                    .get(v as usize)
                    .copied()
                    .flatten()
                    .filter(|&p| (p as usize) < i)
                    .and_then(|p| groups.get(p as usize).copied())
                    .filter(|&g| hierarchy.is_within(g, root))
                    .unwrap_or(root);
                match shared {
                    None => shared = Some(g),
                    Some(s) if s == g => {}
                    Some(_) => agree = false,
                }
            }
            groups[i] = if agree { shared.unwrap_or(root) } else { root };
        }
        // Rule 4: a constant op (a weight generator) sits in the innermost group holding all its
        // consumers, beside what it feeds. By its own name it would gather with every other
        // generator of the model: the zoo's light models name all of them `gpu_0/…`, and one box
        // of 239 generators at the top sent a fan of edges down the whole model. A constant
        // nobody consumes keeps rule 1.
        // Backwards, so a constant feeding another constant (a shape for `ConstantOfShape`) sees
        // where that one went.
        for i in nodes.clone().rev() {
            let n = node(i);
            if !is_constant_op(n) {
                continue;
            }
            let mut shared: Option<GroupId> = None;
            for &c in &self.consumers[i] {
                let g = groups.get(c as usize).copied().unwrap_or(root);
                shared = Some(shared.map_or(g, |s| hierarchy.common_ancestor(s, g)));
            }
            groups[i] = match shared {
                // Inside this scope's box: a consumer in a branch not yet placed counts as the
                // scope's top.
                Some(g) if hierarchy.is_within(g, root) => g,
                Some(_) => root,
                None => {
                    let (segs, _, sep) = hierarchy_split(&n.name);
                    hierarchy.insert_path_under(root, segs, sep)
                }
            };
        }
    }
}

/// Nodes converted between two polls of the cancel flag.
const CANCEL_EVERY: usize = 4096;

struct Converter<'a> {
    model: &'a mut Model,
    ext: &'a mut External,
    cancelled: &'a dyn Fn() -> bool,
    path: &'a Path,
    ops: OpNames,
    /// The model's local functions by domain and name.
    functions: &'a HashMap<(String, String), proto::FunctionProto>,
    /// Function calls being expanded, one inside another.
    calls: usize,
}

/// Local functions called inside functions deeper than this are drawn as plain ops.
const MAX_CALLS: usize = 16;

impl Converter<'_> {
    /// Converts `g`; `encoded`: its nodes and value infos still encoded (the top level, see
    /// [`proto::LazyGraphProto`]), decoded one at a time; `None`: all in `g` (subgraphs).
    fn graph(
        &mut self,
        mut g: GraphProto,
        encoded: Option<proto::Encoded>,
        top_level: bool,
    ) -> Result<Graph, LoadError> {
        let mut graph = Graph {
            name: g.name.clone(),
            ..Graph::default()
        };
        let node_count = encoded.as_ref().map_or(g.node.len(), |e| e.nodes.len());
        graph
            .nodes
            .reserve(node_count + g.input.len() + g.output.len());
        graph
            .values
            .reserve(node_count * 2 + g.initializer.len() + g.input.len());
        let mut values = NameIndex::with_capacity(
            node_count * 2 + g.initializer.len() + g.input.len() + g.output.len(),
        );
        let mut value_of = |graph: &mut Graph, name: &str| -> ValueId {
            values.get_or_insert(name, NameIndex::hash(name), graph)
        };

        // Initializers: parameters, owned by their first consumer.
        let mut initializers: HashMap<String, TensorId> = HashMap::default();
        initializers.reserve(g.initializer.len() + g.sparse_initializer.len());
        let origin = if top_level {
            TensorOrigin::Initializer
        } else {
            TensorOrigin::Subgraph
        };
        for t in &g.initializer {
            let tensor = self.tensor(t, origin);
            let id = self.model.add_tensor(tensor);
            initializers.insert(t.name.clone(), id);
        }
        for s in &g.sparse_initializer {
            if let Some(v) = &s.values {
                let mut tensor = self.tensor(v, origin);
                tensor.shape = s.dims.iter().map(|&d| d.max(0) as u64).collect();
                // Sparse: the stored values are not the dense bytes.
                tensor.data = TensorData::Missing;
                let id = self.model.add_tensor(tensor);
                initializers.insert(v.name.clone(), id);
            }
        }

        // Type information for values (encoded ones decoded one at a time, in file order).
        let path = self.path;
        let (encoded_nodes, encoded_infos) = match encoded {
            Some(e) => (Some(e.nodes), e.value_info),
            None => (None, Vec::new()),
        };
        let mut apply_type = |graph: &mut Graph, vi: &proto::ValueInfoProto| {
            let v = value_of(graph, &vi.name);
            if let (Some(val), Some(ty)) = (graph.values.get_mut(v as usize), vi.r#type.as_ref()) {
                let (dtype, shape) = type_info(ty);
                val.dtype = val.dtype.or(dtype);
                if val.shape.is_none() {
                    val.shape = shape;
                }
            }
        };
        for vi in g.input.iter().chain(&g.output).chain(&g.value_info) {
            apply_type(&mut graph, vi);
        }
        for b in encoded_infos {
            let vi = proto::ValueInfoProto::decode(b).map_err(|e| {
                LoadError::corrupt(
                    path,
                    format!("not a valid ONNX protobuf (a value info): {e}"),
                )
            })?;
            apply_type(&mut graph, &vi);
        }

        // Graph inputs that are not initializers become input nodes.
        for vi in &g.input {
            if initializers.contains_key(vi.name.as_str()) {
                continue;
            }
            let v = value_of(&mut graph, &vi.name);
            graph.inputs.push(v);
            let mut node = Node::new(vi.name.clone(), "Input", NodeKind::Input);
            node.outputs.push(v);
            graph.add_node(node);
        }

        // What the nodes do not need is freed first: the allocator hands that memory to the nodes'
        // strings instead of fresh pages (which the kernel must zero, and which count to the peak).
        drop(std::mem::take(&mut g.initializer));
        drop(std::mem::take(&mut g.sparse_initializer));
        drop(std::mem::take(&mut g.value_info));
        let mut owned: FxHashSet<TensorId> = FxHashSet::default();
        // Nodes are decoded and consumed one by one: their strings move into the IR and each
        // node's protobuf is freed before the next is decoded.
        let nodes: Box<dyn Iterator<Item = Result<proto::NodeProto, LoadError>>> =
            match encoded_nodes {
                Some(v) => Box::new(v.into_iter().map(move |b| {
                    proto::NodeProto::decode(b).map_err(|e| {
                        LoadError::corrupt(path, format!("not a valid ONNX protobuf (a node): {e}"))
                    })
                })),
                None => Box::new(std::mem::take(&mut g.node).into_iter().map(Ok)),
            };
        for (index, np) in nodes.enumerate() {
            let mut np = np?;
            if index % CANCEL_EVERY == CANCEL_EVERY - 1 && (self.cancelled)() {
                return Err(LoadError::Cancelled {
                    path: self.path.to_path_buf(),
                });
            }
            let name = if np.name.is_empty() {
                np.output
                    .first()
                    .map_or_else(|| format!("{}_{index}", np.op_type), |o| o.clone())
            } else {
                std::mem::take(&mut np.name)
            };
            let mut node = Node::new(name, self.ops.get(&np.op_type), NodeKind::Op);
            let node_id = graph.nodes.len() as u32;
            for input in &np.input {
                if input.is_empty() {
                    node.inputs.push(None);
                    continue;
                }
                if let Some(&t) = initializers.get(input.as_str())
                    && owned.insert(t)
                {
                    node.tensors.push(t);
                }
                node.inputs.push(Some(value_of(&mut graph, input)));
            }
            for output in &np.output {
                if !output.is_empty() {
                    node.outputs.push(value_of(&mut graph, output));
                }
            }
            if !np.domain.is_empty() && np.domain != "ai.onnx" {
                node.attributes
                    .push(("domain".into(), AttrValue::String(np.domain.clone())));
            }
            for mut a in std::mem::take(&mut np.attribute) {
                let name = std::mem::take(&mut a.name);
                let value = self.attribute(a, &name, &node.op, top_level, &mut graph, node_id)?;
                if let AttrValue::Tensor(t) = value {
                    node.tensors.push(t);
                }
                node.attributes.push((name, value));
            }
            self.function_call(&np, &mut node, node_id, &mut graph)?;
            graph.add_node(node);
        }

        for vi in &g.output {
            let v = value_of(&mut graph, &vi.name);
            graph.outputs.push(v);
            let mut node = Node::new(vi.name.clone(), "Output", NodeKind::Output);
            node.inputs.push(Some(v));
            graph.add_node(node);
        }
        graph.connect_by_values();
        Ok(graph)
    }

    /// A call of one of the model's local functions (a module the exporter kept whole,
    /// `export_modules_as_functions`) gets the function's nodes as its body: the function's
    /// inputs fed by the call's, in order; a weight passed in is owned by the op inside that
    /// reads it first.
    fn function_call(
        &mut self,
        np: &proto::NodeProto,
        node: &mut Node,
        node_id: u32,
        graph: &mut Graph,
    ) -> Result<(), LoadError> {
        let domain = if np.domain == "ai.onnx" {
            ""
        } else {
            np.domain.as_str()
        };
        let Some(f) = self
            .functions
            .get(&(domain.to_string(), np.op_type.clone()))
        else {
            return Ok(());
        };
        if self.calls >= MAX_CALLS {
            return Ok(());
        }
        let io = |names: &[String]| -> Vec<proto::ValueInfoProto> {
            names
                .iter()
                .map(|n| proto::ValueInfoProto {
                    name: n.clone(),
                    ..proto::ValueInfoProto::default()
                })
                .collect()
        };
        let gp = GraphProto {
            name: f.name.clone(),
            node: f.node.clone(),
            input: io(&f.input),
            output: io(&f.output),
            ..GraphProto::default()
        };
        self.calls += 1;
        let body = self.graph(gp, None, false);
        self.calls -= 1;
        let mut body = body?;
        // The call's weights go to the ops inside that read them.
        for (j, formal) in body.inputs.clone().into_iter().enumerate() {
            let Some(Some(actual)) = node.inputs.get(j).copied() else {
                continue;
            };
            let name = graph
                .values
                .get(actual as usize)
                .map_or("", |v| v.name.as_str());
            let Some(&t) = self.model.tensor_index.get(name) else {
                continue;
            };
            if !node.tensors.contains(&t) {
                continue;
            }
            if let Some(reader) = body
                .nodes
                .iter_mut()
                .find(|n| n.inputs.contains(&Some(formal)))
            {
                reader.tensors.push(t);
                node.tensors.retain(|&x| x != t);
            }
        }
        let fed_by = (0..body.inputs.len())
            .map(|j| np.input.get(j).filter(|s| !s.is_empty()).map(|_| j))
            .collect();
        let index = graph.bodies.len();
        node.attributes
            .push(("function".into(), AttrValue::Graph(index)));
        graph.bodies.push(Body {
            owner: node_id,
            attribute: "function".into(),
            graph: body,
            fed_by,
        });
        Ok(())
    }

    fn attribute(
        &mut self,
        mut a: proto::AttributeProto,
        attr_name: &str,
        op: &str,
        top_level: bool,
        graph: &mut Graph,
        node_id: u32,
    ) -> Result<AttrValue, LoadError> {
        let ty = if a.r#type != 0 {
            a.r#type
        } else {
            infer_attr_type(&a)
        };
        Ok(match ty {
            at::FLOAT => AttrValue::Float(a.f),
            at::INT => AttrValue::Int(a.i),
            at::STRING => AttrValue::String(String::from_utf8_lossy(&a.s).into_owned()),
            at::FLOATS => AttrValue::Floats(a.floats.clone()),
            at::INTS => AttrValue::Ints(a.ints.clone()),
            at::STRINGS => AttrValue::Strings(
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            at::TENSOR => match &a.t {
                Some(t) if op == "Constant" => {
                    let origin = if top_level {
                        TensorOrigin::ConstantNode
                    } else {
                        TensorOrigin::Subgraph
                    };
                    let mut tensor = self.tensor(t, origin);
                    if tensor.name.is_empty() {
                        tensor.name = format!("{}:{}", graph.nodes.len(), attr_name);
                    }
                    AttrValue::Tensor(self.model.add_tensor(tensor))
                }
                Some(t) => AttrValue::Other(describe_small_tensor(
                    &self.tensor(t, TensorOrigin::Subgraph),
                )),
                None => AttrValue::Other("tensor (empty)".into()),
            },
            at::GRAPH => match a.g.take() {
                Some(g) => {
                    let sub = self.graph(*g, None, false)?;
                    graph.bodies.push(Body {
                        owner: node_id,
                        attribute: attr_name.to_string(),
                        graph: sub,
                        fed_by: Vec::new(),
                    });
                    AttrValue::Graph(graph.bodies.len() - 1)
                }
                None => AttrValue::Other("graph (empty)".into()),
            },
            at::GRAPHS => {
                let count = a.graphs.len();
                for g in std::mem::take(&mut a.graphs) {
                    let sub = self.graph(g, None, false)?;
                    graph.bodies.push(Body {
                        owner: node_id,
                        attribute: attr_name.to_string(),
                        graph: sub,
                        fed_by: Vec::new(),
                    });
                }
                AttrValue::Other(format!("{count} subgraphs"))
            }
            at::TENSORS => AttrValue::Other(format!("{} tensors", a.tensors.len())),
            at::SPARSE_TENSOR => AttrValue::Other("sparse tensor".into()),
            other => AttrValue::Other(format!("attribute of type {other}")),
        })
    }

    /// Converts a `TensorProto`, locating its bytes without copying `raw_data` or external data.
    fn tensor(&mut self, t: &TensorProto, origin: TensorOrigin) -> Tensor {
        let dtype = DType::from_onnx(t.data_type);
        let mut tensor = Tensor {
            name: t.name.clone(),
            dtype,
            shape: Vec::with_capacity(t.dims.len()),
            data: TensorData::Missing,
            origin,
            conv_axes: None,
            quant: None,
        };
        if let Some(bad) = t.dims.iter().find(|&&d| d < 0) {
            tensor.data = TensorData::Error(format!(
                "tensor {:?} has a negative dimension {bad}",
                t.name
            ));
            return tensor;
        }
        tensor.shape = t.dims.iter().map(|&d| d as u64).collect();
        let expected = tensor.expected_bytes();
        let Some(elements) = t
            .dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        else {
            tensor.data =
                TensorData::Error(format!("tensor {:?}: shape {:?} overflows", t.name, t.dims));
            return tensor;
        };
        let located: Result<Option<Bytes>, String> =
            if t.data_location == proto::DATA_LOCATION_EXTERNAL {
                self.external(t, expected).map(Some)
            } else if !t.raw_data.is_empty() {
                Ok(Some(t.raw_data.clone()))
            } else {
                Ok(typed_fields(t, dtype, elements))
            };
        tensor.data = match located {
            Ok(Some(bytes)) => match expected {
                Some(n) if n != bytes.len() as u64 => TensorData::Error(format!(
                    "tensor {:?}: {} bytes of data for shape {:?} of {} ({n} expected)",
                    t.name,
                    bytes.len(),
                    t.dims,
                    dtype.onnx_name()
                )),
                _ => TensorData::Bytes(bytes),
            },
            Ok(None) => TensorData::Missing,
            Err(e) => {
                let msg = format!(
                    "{}: tensor {:?}: {e}",
                    self.ext.model_path.display(),
                    t.name
                );
                self.model.metadata.warnings.push(msg.clone());
                TensorData::Error(msg)
            }
        };
        tensor
    }

    fn external(&mut self, t: &TensorProto, expected: Option<u64>) -> Result<Bytes, String> {
        let mut location = None;
        let mut offset = 0u64;
        let mut length = None;
        for kv in &t.external_data {
            match kv.key.as_str() {
                "location" => location = Some(kv.value.as_str()),
                "offset" => {
                    offset = kv
                        .value
                        .parse()
                        .map_err(|_| format!("bad external offset {:?}", kv.value))?
                }
                "length" => {
                    length = Some(
                        kv.value
                            .parse::<u64>()
                            .map_err(|_| format!("bad external length {:?}", kv.value))?,
                    )
                }
                _ => {}
            }
        }
        let location = location.ok_or("external data without a location")?;
        let file = self.ext.file(location)?;
        let len = length
            .or(expected)
            .unwrap_or((file.len() as u64).saturating_sub(offset));
        let end = offset
            .checked_add(len)
            .ok_or("external offset + length overflows")?;
        if end > file.len() as u64 {
            return Err(format!(
                "external data {location:?} bytes {offset}..{end} lie beyond its end ({} bytes)",
                file.len()
            ));
        }
        Ok(file.slice(offset as usize..end as usize))
    }
}

/// Tensor data stored in the typed repeated fields rather than `raw_data`, converted to little-endian
/// bytes of the dtype's width (these are small in practice: exporters use `raw_data` for weights).
fn typed_fields(t: &TensorProto, dtype: DType, elements: u64) -> Option<Bytes> {
    let mut out: Vec<u8> = Vec::new();
    match dtype {
        DType::F32 if !t.float_data.is_empty() => {
            out.extend(t.float_data.iter().flat_map(|v| v.to_le_bytes()));
        }
        DType::Complex64 if !t.float_data.is_empty() => {
            out.extend(t.float_data.iter().flat_map(|v| v.to_le_bytes()));
        }
        DType::F64 | DType::Complex128 if !t.double_data.is_empty() => {
            out.extend(t.double_data.iter().flat_map(|v| v.to_le_bytes()));
        }
        DType::I64 if !t.int64_data.is_empty() => {
            out.extend(t.int64_data.iter().flat_map(|v| v.to_le_bytes()));
        }
        DType::U64 | DType::U32 if !t.uint64_data.is_empty() => {
            for &v in &t.uint64_data {
                if dtype == DType::U64 {
                    out.extend(v.to_le_bytes());
                } else {
                    out.extend((v as u32).to_le_bytes());
                }
            }
        }
        DType::I32
        | DType::I16
        | DType::I8
        | DType::U16
        | DType::U8
        | DType::Bool
        | DType::F16
        | DType::BF16
        | DType::F8E4M3FN
        | DType::F8E4M3FNUZ
        | DType::F8E5M2
        | DType::F8E5M2FNUZ
        | DType::F8E8M0
        | DType::U4
        | DType::I4
        | DType::F4E2M1
            if !t.int32_data.is_empty() =>
        {
            // 4-bit types keep one packed byte (two values) in each int32.
            let width = dtype.size_bytes().unwrap_or(1) as usize;
            for &v in &t.int32_data {
                out.extend_from_slice(&v.to_le_bytes()[..width]);
            }
        }
        DType::String if !t.string_data.is_empty() => {
            return None;
        }
        _ => {
            let _ = elements;
            return None;
        }
    }
    Some(Bytes::from(out))
}

/// Value type and shape from a `TypeProto` (tensor types only; sequences/maps describe their element).
fn type_info(ty: &TypeProto) -> (Option<DType>, Option<Vec<Dim>>) {
    use proto::tensor_shape_proto::dimension::Value as D;
    use proto::type_proto::Value as V;
    match &ty.value {
        Some(V::TensorType(t)) | Some(V::SparseTensorType(t)) => {
            let dtype = (t.elem_type != 0).then(|| DType::from_onnx(t.elem_type));
            let shape = t.shape.as_ref().map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(D::DimValue(v)) => Dim::Fixed(*v),
                        Some(D::DimParam(p)) => Dim::Symbol(p.clone()),
                        None => Dim::Unknown,
                    })
                    .collect()
            });
            (dtype, shape)
        }
        Some(V::SequenceType(w)) | Some(V::OptionalType(w)) => match &w.elem_type {
            Some(inner) => type_info(inner),
            None => (None, None),
        },
        Some(V::MapType(_)) | None => (None, None),
    }
}

/// Value ids by the hash of their name: the name itself lives once, in `graph.values`, and a hit
/// is confirmed against it (no second copy of every name as a map key). Names whose hash another
/// name already took go to `collided`.
struct NameIndex {
    by_hash: HashMap<u64, ValueId>,
    collided: HashMap<String, ValueId>,
}

impl NameIndex {
    fn with_capacity(n: usize) -> Self {
        let mut by_hash = HashMap::default();
        by_hash.reserve(n);
        NameIndex {
            by_hash,
            collided: HashMap::default(),
        }
    }

    fn hash(name: &str) -> u64 {
        use std::hash::BuildHasher as _;
        rustc_hash::FxBuildHasher.hash_one(name)
    }

    /// The value named `name` (whose hash is `h`), added to `graph` if new.
    fn get_or_insert(&mut self, name: &str, h: u64, graph: &mut Graph) -> ValueId {
        let new_value = |graph: &mut Graph| {
            graph.add_value(Value {
                name: name.to_string(),
                dtype: None,
                shape: None,
            })
        };
        match self.by_hash.get(&h) {
            Some(&v) if graph.values.get(v as usize).is_some_and(|x| x.name == name) => v,
            Some(_) => {
                if let Some(&v) = self.collided.get(name) {
                    return v;
                }
                let v = new_value(graph);
                self.collided.insert(name.to_string(), v);
                v
            }
            None => {
                let v = new_value(graph);
                self.by_hash.insert(h, v);
                v
            }
        }
    }
}

fn infer_attr_type(a: &proto::AttributeProto) -> i32 {
    // Old exporters omit `type`; infer it from which field is set (as onnx.helper does).
    if a.g.is_some() {
        at::GRAPH
    } else if a.t.is_some() {
        at::TENSOR
    } else if !a.floats.is_empty() {
        at::FLOATS
    } else if !a.ints.is_empty() {
        at::INTS
    } else if !a.strings.is_empty() {
        at::STRINGS
    } else if !a.graphs.is_empty() {
        at::GRAPHS
    } else if !a.s.is_empty() {
        at::STRING
    } else if a.f != 0.0 {
        at::FLOAT
    } else {
        at::INT
    }
}

fn describe_small_tensor(t: &Tensor) -> String {
    let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
    let mut s = format!("{}[{}]", t.dtype.onnx_name(), shape.join(","));
    if let (Some(bytes), DType::F32) = (t.bytes(), t.dtype) {
        let vals: Vec<String> = bytes
            .chunks_exact(4)
            .take(8)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
            .collect();
        s.push_str(&format!(" {{{}}}", vals.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_names_that_share_a_hash_stay_distinct() {
        let mut graph = Graph::default();
        let mut index = NameIndex::with_capacity(4);
        // Force a collision: every name gets hash 7.
        let a = index.get_or_insert("a", 7, &mut graph);
        let b = index.get_or_insert("b", 7, &mut graph);
        let c = index.get_or_insert("c", 7, &mut graph);
        assert_eq!(graph.values.len(), 3);
        assert!(a != b && b != c && a != c);
        assert_eq!(index.get_or_insert("a", 7, &mut graph), a);
        assert_eq!(index.get_or_insert("b", 7, &mut graph), b);
        assert_eq!(index.get_or_insert("c", 7, &mut graph), c);
        assert_eq!(graph.values.len(), 3);
        // The real hash: a name found again is the same value.
        let x = index.get_or_insert("x", NameIndex::hash("x"), &mut graph);
        assert_eq!(
            index.get_or_insert("x", NameIndex::hash("x"), &mut graph),
            x
        );
        assert_eq!(graph.values[x as usize].name, "x");
    }

    fn model_with_nodes(nodes: Vec<proto::NodeProto>) -> Vec<u8> {
        proto::ModelProto {
            ir_version: 8,
            graph: Some(proto::GraphProto {
                node: nodes,
                name: "g".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> proto::NodeProto {
        proto::NodeProto {
            name: name.into(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn nodes_decoded_lazily_keep_their_order_and_edges() {
        let bytes = model_with_nodes(vec![
            node("a", "Relu", &["x"], &["y"]),
            node("b", "MatMul", &["y", "w"], &["z"]),
            node("c", "Relu", &["z"], &["out"]),
        ]);
        let m = load(Path::new("t.onnx"), Bytes::from(bytes)).unwrap();
        let names: Vec<&str> = m.graph.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(m.graph.edges.len(), 2);
        // One shared string per op.
        assert!(std::sync::Arc::ptr_eq(
            &m.graph.nodes[0].op,
            &m.graph.nodes[2].op
        ));
    }

    #[test]
    fn value_infos_decoded_lazily_give_types_and_shapes() {
        use proto::tensor_shape_proto::{Dimension, dimension};
        let dim = |v: dimension::Value| Dimension {
            value: Some(v),
            ..Default::default()
        };
        let info = proto::ValueInfoProto {
            name: "y".into(),
            r#type: Some(proto::TypeProto {
                value: Some(proto::type_proto::Value::TensorType(
                    proto::type_proto::Tensor {
                        elem_type: 1,
                        shape: Some(proto::TensorShapeProto {
                            dim: vec![
                                dim(dimension::Value::DimParam("batch".into())),
                                dim(dimension::Value::DimValue(3)),
                            ],
                        }),
                    },
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = proto::ModelProto {
            ir_version: 8,
            graph: Some(proto::GraphProto {
                node: vec![node("a", "Relu", &["x"], &["y"])],
                value_info: vec![info],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec();
        let m = load(Path::new("t.onnx"), Bytes::from(bytes)).unwrap();
        let y = m.graph.values.iter().find(|v| v.name == "y").unwrap();
        assert_eq!(y.dtype, Some(DType::F32));
        assert_eq!(
            y.shape,
            Some(vec![Dim::Symbol("batch".into()), Dim::Fixed(3)])
        );
    }

    #[test]
    fn a_corrupt_node_is_an_error_naming_the_file() {
        // The graph's node field holds bytes that are not a NodeProto (a field with an invalid
        // wire type); the outer message is well-formed, so only the lazy node decode sees it.
        let graph = {
            let mut g = Vec::new();
            prost::encoding::bytes::encode(1, &vec![0x0f, 0xff, 0xff], &mut g);
            g
        };
        let mut model = Vec::new();
        prost::encoding::int64::encode(1, &8, &mut model);
        prost::encoding::bytes::encode(7, &graph, &mut model);
        let e = load(Path::new("bad.onnx"), Bytes::from(model)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("bad.onnx") && msg.contains("a node"), "{msg}");
    }
}
