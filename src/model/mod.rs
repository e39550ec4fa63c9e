//! The in-memory representation every loader produces and every view reads.
//!
//! A [`Model`] holds one op graph ([`Graph`], with ONNX `If`/`Loop` bodies inlined as subgraphs), the module
//! [`Hierarchy`] (a tree of named groups), the [`Tensor`]s with byte handles that borrow from a memory
//! map (never a copy of the weights), and [`Metadata`].
//!
//! Nodes and edges are flat vectors indexed by `u32` ids rather than a `petgraph::Graph`: a node costs
//! its strings plus ~40 bytes and an edge 12 bytes, so a million nodes and several million edges stay
//! far under 1 GB; algorithms build a compact CSR over them (`graph::Csr`).

mod dtype;
mod hierarchy;
mod lazy;
pub mod mapped;
mod summary;

pub use dtype::{DType, E2M1, GgmlType};
mod names;
mod subgraph;
pub use hierarchy::{Group, GroupId, Hierarchy, split_path as hierarchy_split};
pub use lazy::{LAZY_BUDGET, LazyBytes, TensorBytes, key_of};
pub use subgraph::SubgraphBoxes;
pub use summary::{Summary, group_digits, human_bytes};

use rustc_hash::FxHashMap as HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Index of a node in [`Graph::nodes`].
pub type NodeId = u32;
/// Index of a value in [`Graph::values`].
pub type ValueId = u32;
/// Index of a tensor in [`Model::tensors`].
pub type TensorId = u32;

/// Which loader produced a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ONNX protobuf (`.onnx`).
    Onnx,
    /// Hugging Face safetensors, single file or sharded.
    Safetensors,
    /// llama.cpp GGUF.
    Gguf,
    /// A JSON layer list (`{"inputs", "layers", "outputs"}`).
    JsonLayers,
    /// A PyTorch checkpoint (`torch.save` zip archive: `.pt`, `.pth`, `pytorch_model.bin`).
    Torch,
    /// A TorchScript archive (`torch.jit.save`): its code's op graph and its weights.
    TorchScript,
    /// A torch.export program (`torch.export.save`, `.pt2`): an ATen op graph and its weights.
    TorchExport,
    /// A TensorFlow Lite flatbuffer (`.tflite`).
    Tflite,
    /// A Keras 3 model (`.keras`: config and HDF5 weights in a zip).
    Keras,
    /// A TensorFlow graph (`.pb`: a frozen `GraphDef`).
    TensorFlow,
    /// NumPy arrays (`.npy`, `.npz`).
    Numpy,
    /// A Flax checkpoint (`flax.serialization.to_bytes`: `flax_model.msgpack`).
    Flax,
    /// OpenVINO IR (`.xml` and its `.bin` of weights).
    OpenVino,
    /// A Core ML ML program (`.mlpackage`, or its `.mlmodel` and weight file).
    CoreMl,
    /// An ExecuTorch program (`.pte`).
    ExecuTorch,
    /// An Orbax checkpoint (JAX): zarr arrays in a TensorStore OCDBT store or in folders.
    Orbax,
    /// An NVIDIA NeMo model (`.nemo`: a tar of its config and `torch.save` weights).
    Nemo,
}

impl Format {
    /// The lower-case name used by `info --json` and facts.json.
    pub fn name(self) -> &'static str {
        match self {
            Format::Onnx => "onnx",
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
            Format::JsonLayers => "json-layers",
            Format::Torch => "pytorch",
            Format::TorchExport => "torch-export",
            Format::TorchScript => "torchscript",
            Format::Tflite => "tflite",
            Format::Keras => "keras",
            Format::TensorFlow => "tensorflow",
            Format::Numpy => "numpy",
            Format::Flax => "flax",
            Format::OpenVino => "openvino",
            Format::CoreMl => "coreml",
            Format::ExecuTorch => "executorch",
            Format::Orbax => "orbax",
            Format::Nemo => "nemo",
        }
    }
}

/// One dimension of a shape: a number, a symbolic name (`batch`), or unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size (ONNX allows -1 for "dynamic" in some exporters; kept as written).
    Fixed(i64),
    /// A named symbolic dimension.
    Symbol(String),
    /// Nothing known.
    Unknown,
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbol(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// Formats a shape as `[batch, 3, 224, 224]`.
pub fn format_shape(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// A named value (tensor) that flows on edges: graph inputs, node outputs.
#[derive(Clone, Debug, Default)]
pub struct Value {
    /// The value's name in the file.
    pub name: String,
    /// Element type where known.
    pub dtype: Option<DType>,
    /// Shape where known (`None`: no shape information at all; `Some(vec![])`: a scalar).
    pub shape: Option<Vec<Dim>>,
}

impl Value {
    /// The value a weight feeds into the ops that read it: its name, dtype and shape.
    pub fn of_tensor(t: &Tensor) -> Value {
        Value {
            name: t.name.clone(),
            dtype: Some(t.dtype),
            shape: Some(
                t.shape
                    .iter()
                    .map(|&d| Dim::Fixed(i64::try_from(d).unwrap_or(i64::MAX)))
                    .collect(),
            ),
        }
    }
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// An operator (ONNX node, JSON layer).
    Op,
    /// A module of a checkpoint that has no ops (e.g. `model.layers.3.mlp`), owning tensors.
    Module,
    /// A graph input (not an initializer).
    Input,
    /// A graph output.
    Output,
}

/// An attribute value of a node.
#[derive(Clone, Debug)]
pub enum AttrValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f32),
    /// A string (lossily decoded to UTF-8).
    String(String),
    /// Integers.
    Ints(Vec<i64>),
    /// Floats.
    Floats(Vec<f32>),
    /// Strings.
    Strings(Vec<String>),
    /// A tensor constant, as an id into [`Model::tensors`].
    Tensor(TensorId),
    /// A subgraph, as an index into [`Graph::subgraphs`].
    Graph(usize),
    /// Anything else, described in words (e.g. JSON config values).
    Other(String),
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn list<T: std::fmt::Display>(
            f: &mut std::fmt::Formatter<'_>,
            v: &[T],
        ) -> std::fmt::Result {
            f.write_str("[")?;
            for (i, x) in v.iter().take(16).enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{x}")?;
            }
            if v.len() > 16 {
                write!(f, ", … {} more", v.len() - 16)?;
            }
            f.write_str("]")
        }
        match self {
            AttrValue::Int(v) => write!(f, "{v}"),
            AttrValue::Float(v) => write!(f, "{v}"),
            AttrValue::String(v) => write!(f, "{v:?}"),
            AttrValue::Ints(v) => list(f, v),
            AttrValue::Floats(v) => list(f, v),
            AttrValue::Strings(v) => list(f, v),
            AttrValue::Tensor(t) => write!(f, "tensor #{t}"),
            AttrValue::Graph(g) => write!(f, "subgraph #{g}"),
            AttrValue::Other(s) => f.write_str(s),
        }
    }
}

/// Shares op strings among nodes: every node of one op gets the same [`Node::op`] allocation.
#[derive(Debug, Default)]
pub struct OpNames(rustc_hash::FxHashSet<Arc<str>>);

impl OpNames {
    /// The shared string for `op`.
    pub fn get(&mut self, op: &str) -> Arc<str> {
        if let Some(a) = self.0.get(op) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(op);
        self.0.insert(a.clone());
        a
    }
}

/// A node of the graph: an op, a module, or a graph input/output.
#[derive(Clone, Debug)]
pub struct Node {
    /// Name in the file (may be empty in ONNX; loaders fill a stable synthetic one).
    pub name: String,
    /// Op type (`MatMul`, `Conv2D`), or for modules the module kind (`Linear`, `Attention`…).
    /// Shared: loaders hand every node of one op the same string (a 10 M-node graph has a handful
    /// of distinct ops, and 10 M copies cost ~400 MB).
    pub op: Arc<str>,
    /// What kind of node this is.
    pub kind: NodeKind,
    /// Attributes in file order.
    pub attributes: Vec<(String, AttrValue)>,
    /// Values consumed, in input order (`None` for an omitted optional input).
    pub inputs: Vec<Option<ValueId>>,
    /// Values produced.
    pub outputs: Vec<ValueId>,
    /// Parameter tensors this node owns (initializers it consumes, a module's weights).
    pub tensors: Vec<TensorId>,
    /// The innermost hierarchy group holding this node.
    pub group: GroupId,
}

impl Node {
    /// An op that makes a constant from nothing but attributes or initializers (ONNX `Constant`
    /// and `ConstantOfShape`, TensorFlow's `Const`): a parameter's generator, not computation.
    pub fn is_constant_op(&self) -> bool {
        self.kind == NodeKind::Op && matches!(&*self.op, "Constant" | "ConstantOfShape" | "Const")
    }

    /// A node with just a name, op and kind.
    pub fn new(name: impl Into<String>, op: impl Into<Arc<str>>, kind: NodeKind) -> Self {
        Node {
            name: name.into(),
            op: op.into(),
            kind,
            attributes: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            tensors: Vec::new(),
            group: 0,
        }
    }
}

/// A directed edge: `value` produced by `from` flows into `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Producer node.
    pub from: NodeId,
    /// Consumer node.
    pub to: NodeId,
    /// The value carried.
    pub value: ValueId,
}

/// A graph a loader nests in a node's attribute (an ONNX `If` branch, a `Loop`/`Scan` body, a TFLite
/// `WHILE` body, a `torch.cond` branch) while it builds the enclosing one. [`Graph::inline_bodies`]
/// moves every body into the enclosing graph's `nodes` and records it as a [`Subgraph`]; a loaded
/// [`Model`] has none left.
#[derive(Clone, Debug)]
pub struct Body {
    /// The node owning it.
    pub owner: NodeId,
    /// The attribute name (`then_branch`, `body`…).
    pub attribute: String,
    /// The body.
    pub graph: Graph,
    /// For each of the body's graph inputs, the owner's input (by position in its `inputs`) that
    /// feeds it, as an OpenVINO port map says; empty: matched from the last (see
    /// [`Graph::inline_bodies`]).
    pub fed_by: Vec<Option<usize>>,
}

/// A subgraph owned by a node attribute, inlined into the graph: its nodes and values are
/// contiguous ranges of [`Graph::nodes`] and [`Graph::values`], its own first and then those of the
/// subgraphs nested in it, so the structure view draws what is inside an `If` like any module.
#[derive(Clone, Debug)]
pub struct Subgraph {
    /// The node owning it.
    pub owner: NodeId,
    /// The attribute name (`then_branch`, `body`…).
    pub attribute: String,
    /// The graph's own name in the file.
    pub name: String,
    /// Its nodes, nested subgraphs' included.
    pub nodes: std::ops::Range<NodeId>,
    /// Its values, nested subgraphs' included.
    pub values: std::ops::Range<ValueId>,
    /// The subgraph it is nested in (`None`: the top level's).
    pub parent: Option<usize>,
    /// Its graph inputs (a `Loop` body's iteration number, condition and carried values).
    pub inputs: Vec<ValueId>,
    /// For each of `inputs`, the owner's input (by position) that feeds it, if one does.
    pub fed_by: Vec<Option<usize>>,
    /// Its graph outputs.
    pub outputs: Vec<ValueId>,
    /// Names it (or a subgraph in it) reads from an enclosing scope without defining them (an ONNX
    /// `If` branch or `Loop` body uses outer values by name).
    pub captures: Vec<String>,
}

/// A dataflow graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// The graph's name in the file.
    pub name: String,
    /// Nodes; graph inputs and outputs are nodes of kind `Input`/`Output`. Subgraphs' nodes follow
    /// the top level's.
    pub nodes: Vec<Node>,
    /// Edges, from producer to consumer.
    pub edges: Vec<Edge>,
    /// Values flowing on edges.
    pub values: Vec<Value>,
    /// Graph inputs (not initializers), by value id.
    pub inputs: Vec<ValueId>,
    /// Graph outputs, by value id.
    pub outputs: Vec<ValueId>,
    /// Subgraphs inlined into `nodes`, each before those nested in it.
    pub subgraphs: Vec<Subgraph>,
    /// Bodies still nested, while a loader builds the graph (see [`Body`]).
    pub bodies: Vec<Body>,
}

impl Graph {
    /// Number of op/module nodes (not counting input/output pseudo-nodes), subgraphs' included.
    pub fn op_node_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Op | NodeKind::Module))
            .count()
    }

    /// Number of op/module nodes of the top level, outside every subgraph.
    pub fn top_level_op_node_count(&self) -> usize {
        self.top_level_nodes()
            .filter(|n| matches!(n.kind, NodeKind::Op | NodeKind::Module))
            .count()
    }

    /// Adds a value and returns its id.
    pub fn add_value(&mut self, value: Value) -> ValueId {
        self.values.push(value);
        (self.values.len() - 1) as ValueId
    }

    /// Adds a node and returns its id.
    pub fn add_node(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        (self.nodes.len() - 1) as NodeId
    }

    /// The node producing each value (index = value id), the first one where several claim it;
    /// `None` for initializers and dangling values.
    pub fn producers(&self) -> Vec<Option<NodeId>> {
        let mut producer: Vec<Option<NodeId>> = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.outputs {
                if let Some(slot) = producer.get_mut(v as usize) {
                    slot.get_or_insert(i as NodeId);
                }
            }
        }
        producer
    }

    /// Builds `edges` from node inputs/outputs: every consumer of a value gets an edge from its producer.
    pub fn connect_by_values(&mut self) {
        let producer = self.producers();
        let mut edges = Vec::with_capacity(self.nodes.iter().map(|n| n.inputs.len()).sum());
        for (i, n) in self.nodes.iter().enumerate() {
            for v in n.inputs.iter().flatten() {
                if let Some(Some(p)) = producer.get(*v as usize) {
                    edges.push(Edge {
                        from: *p,
                        to: i as NodeId,
                        value: *v,
                    });
                }
            }
        }
        self.edges = edges;
    }
}

/// Where a tensor's bytes are.
#[derive(Clone, Debug)]
pub enum TensorData {
    /// The bytes, borrowed from a memory map (or, for ONNX typed fields, decoded once into an owned buffer).
    Bytes(bytes::Bytes),
    /// The file has no data for this tensor (stripped weights, an empty external file).
    Missing,
    /// The data could not be located; the message names the file and the problem.
    Error(String),
    /// Bytes produced on first use (decompressed from a compressed store) and kept from then on.
    Lazy(Arc<LazyBytes>),
}

/// A parameter tensor (initializer, checkpoint entry, constant).
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Full name (`model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape (GGUF shapes are given in the file's order, innermost first, as `gguf` reports them).
    pub shape: Vec<u64>,
    /// The bytes.
    pub data: TensorData,
    /// Where the tensor came from (decides what counts as a parameter).
    pub origin: TensorOrigin,
    /// For a 4-D conv weight whose format does not order it `[out, in, kh, kw]` (TFLite's
    /// channels-last kernels), which dimension holds what; `None`: the usual order.
    pub conv_axes: Option<ConvAxes>,
    /// For integers that stand for reals (a TFLite or ONNX quantized weight): how to read them.
    /// Statistics, heatmaps and hover values are of the real values.
    pub quant: Option<Quant>,
}

/// Affine quantization: the real value of a stored integer `q` of channel `c` is
/// `(q - zero_point[c]) * scale[c]`, one channel per index along `axis` (one scale for all when
/// there is one).
#[derive(Clone, Debug, PartialEq)]
pub struct Quant {
    /// Scales, one, or one per channel.
    pub scale: Vec<f64>,
    /// Zero points, as many as scales.
    pub zero_point: Vec<f64>,
    /// The channel dimension (0 for one scale).
    pub axis: usize,
    /// Elements per step along `axis` (the product of the dimensions after it).
    inner: u64,
    /// Whether the scales run over every dimension up to `axis` (one per group of `inner`
    /// elements, as group-wise int4 weights hold them), not along `axis` alone.
    grouped: bool,
    /// Scales and biases read from the file as needed rather than held as `f64`s (MLX: one pair
    /// per 64 weights, too many to copy for a large model); `scale` and `zero_point` are then
    /// empty.
    groups: Option<std::sync::Arc<ScaleBiasGroups>>,
    /// Where the values lie in memory when not in row-major order of the shape (GPTQ and AWQ
    /// weights); scales and channels are of the logical order.
    layout: Option<Layout>,
}

/// AWQ's order of the eight 4-bit values in a 32-bit word: position `i` holds value `AWQ_ORDER[i]`.
const AWQ_ORDER: [u64; 8] = [0, 2, 4, 6, 1, 3, 5, 7];
/// Where value `j` of a word lies: the inverse of [`AWQ_ORDER`].
const AWQ_REVERSE_ORDER: [u64; 8] = [0, 4, 1, 5, 2, 6, 3, 7];

/// How the elements of a 2-D `[rows, cols]` tensor lie in memory when not row-major: the
/// packings of GPTQ and AWQ, whose words hold values of neighbouring rows or out of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// GPTQ's `qweight`: `[rows, cols]` (`[in, out]`) stored as `[rows / per, cols, per]`, the
    /// `per` values of one 32-bit word from `per` consecutive rows of one column.
    Gptq {
        /// Columns of the matrix.
        cols: u64,
        /// Values per word (8 for 4-bit, 4 for 8-bit).
        per: u64,
    },
    /// AWQ's `qweight` (GEMM): row-major, but each run of eight values (one word) stored in the
    /// order 0, 2, 4, 6, 1, 3, 5, 7.
    AwqOrder,
    /// bitsandbytes' 4-bit codes: row-major, the first of each pair in the byte's high nibble.
    HighNibbleFirst,
}

impl Layout {
    /// The memory index of logical (row-major) element `l`.
    pub fn memory_of(self, l: u64) -> u64 {
        match self {
            Layout::Gptq { cols, per } => {
                let (cols, per) = (cols.max(1), per.max(1));
                let (r, c) = (l / cols, l % cols);
                ((r / per) * cols + c) * per + r % per
            }
            Layout::AwqOrder => l / 8 * 8 + AWQ_REVERSE_ORDER[(l % 8) as usize],
            Layout::HighNibbleFirst => l ^ 1,
        }
    }

    /// The logical (row-major) index of the element at memory index `m`.
    pub fn logical_of(self, m: u64) -> u64 {
        match self {
            Layout::Gptq { cols, per } => {
                let (cols, per) = (cols.max(1), per.max(1));
                let (w, j) = (m / per, m % per);
                let (rb, c) = (w / cols, w % cols);
                (rb * per + j) * cols + c
            }
            Layout::AwqOrder => m / 8 * 8 + AWQ_ORDER[(m % 8) as usize],
            Layout::HighNibbleFirst => m ^ 1,
        }
    }

    /// The memory range holding logical elements `lo..hi`, which lie in one row.
    pub fn span(self, lo: u64, hi: u64) -> (u64, u64) {
        if hi <= lo {
            return (0, 0);
        }
        match self {
            Layout::Gptq { cols, per } => {
                let (cols, per) = (cols.max(1), per.max(1));
                let (r, c0) = (lo / cols, lo % cols);
                let word0 = (r / per) * cols + c0;
                (word0 * per, (word0 + (hi - lo)) * per)
            }
            Layout::AwqOrder => (lo / 8 * 8, hi.div_ceil(8) * 8),
            Layout::HighNibbleFirst => (lo / 2 * 2, hi.div_ceil(2) * 2),
        }
    }
}

/// Per-group scales and offsets kept as the file's bytes: the real value of a stored integer `q`
/// of group `g` is `q × scale[g] + bias[g]` (MLX's `dequantize`) or `(q − zero[g]) × scale[g]`
/// (onnxruntime's `MatMulNBits`, compressed-tensors, DeepSeek's FP8 blocks).
///
/// Groups run `size` consecutive elements (`cols` 0), or tile a row-major matrix of `cols`
/// columns in blocks of `rows × size`, the last block of a row or column cut short (DeepSeek's
/// 128 × 128 FP8 blocks; groups along rows whose length `size` does not divide): element `i` lies
/// in row `i / cols`, column `i % cols`, and group `(row / rows) · ⌈cols / size⌉ + column / size`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleBiasGroups {
    /// Elements per group (columns, for a tiled matrix).
    pub size: u64,
    /// Rows of a tiled matrix a group spans (1 for groups along rows).
    pub rows: u64,
    /// Columns of the matrix the groups tile; 0: groups run `size` consecutive elements.
    pub cols: u64,
    /// For a tiled matrix, each row's group row as a little-endian `i32` (GPTQ's `g_idx`, which
    /// act-order quantization permutes) instead of `row / rows`.
    pub row_map: Option<bytes::Bytes>,
    /// The scales' (and biases') element type (F16, BF16, F32, fp8 e4m3 or E8M0).
    pub dtype: DType,
    /// One scale per group.
    pub scales: bytes::Bytes,
    /// What each group's values are offset by.
    pub offset: GroupOffset,
    /// The values the stored codes stand for, before scaling (bitsandbytes' `quant_map`: NF4 or
    /// FP4; Core ML's palettes); `None`: the codes are the integers themselves.
    pub codebook: Option<std::sync::Arc<[f64]>>,
    /// Codes in each group's own part of `codebook` (group `g`'s code `q` stands for entry
    /// `g × book_stride + q`: Core ML's per-group palettes); 0: one codebook for every group.
    pub book_stride: u64,
    /// Scales stored quantized themselves (bitsandbytes' double quantization): `scales` are then
    /// one byte per group, read through [`NestedScales`].
    pub nested: Option<std::sync::Arc<NestedScales>>,
    /// Multiplies every scale (1 for most; NVFP4's per-tensor `1 / global_scale`).
    pub scale_factor: f64,
}

/// An fp8 e4m3 (OCP `E4M3FN`) value: 4 exponent bits with bias 7, 3 mantissa bits, NaN at
/// `S.1111.111`, no infinities (NVFP4's block scales).
fn e4m3fn(b: u8) -> f64 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let (e, m) = (i32::from((b >> 3) & 0x0f), f64::from(b & 0x07));
    if e == 0x0f && m == 7.0 {
        return f64::NAN;
    }
    sign * if e == 0 {
        m / 8.0 * 2f64.powi(-6)
    } else {
        (1.0 + m / 8.0) * 2f64.powi(e - 7)
    }
}

/// Quantized scales: the scale of group `g` is `map[code[g]] × absmax[g / block] + offset`
/// (bitsandbytes' `nested_quant_map`, `nested_absmax`, `nested_blocksize`, `nested_offset`).
#[derive(Clone, Debug, PartialEq)]
pub struct NestedScales {
    /// The value of each of the 256 codes.
    pub map: Vec<f64>,
    /// One F32 absolute maximum per block of codes.
    pub absmax: bytes::Bytes,
    /// Codes per block.
    pub block: u64,
    /// Added after scaling.
    pub offset: f64,
}

impl NestedScales {
    fn scale(&self, code: u8, g: usize) -> Option<f64> {
        let at = (g as u64 / self.block.max(1)).checked_mul(4)?;
        let at = usize::try_from(at).ok()?;
        let a = self.absmax.get(at..at.checked_add(4)?)?;
        let absmax = f32::from_le_bytes([a[0], a[1], a[2], a[3]]);
        Some(self.map.get(usize::from(code))? * f64::from(absmax) + self.offset)
    }
}

/// The offsets of [`ScaleBiasGroups`].
#[derive(Clone, Debug, PartialEq)]
pub enum GroupOffset {
    /// One bias per group, of the scales' type, added after scaling.
    Bias(bytes::Bytes),
    /// Zero points `bits` wide (4 or 8) for the groups, seen as rows of `row_groups`; subtracted
    /// before scaling.
    ZeroPoints {
        /// The zero points.
        bytes: bytes::Bytes,
        /// Bits per zero point.
        bits: u8,
        /// Groups per row.
        row_groups: u64,
        /// How they are stored.
        packing: ZeroPacking,
        /// Added to each stored zero point (GPTQ's checkpoints store the zero point less one).
        plus: u8,
    },
    /// One zero point for every group.
    Zero(f64),
    /// One bias for every group, added after scaling (bitsandbytes' `nested_offset`).
    Add(f64),
}

/// How [`GroupOffset::ZeroPoints`] are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroPacking {
    /// Unsigned, each row of groups packed low bits first and padded to whole bytes
    /// (onnxruntime's `MatMulNBits`).
    Rows,
    /// Unsigned, packed into little-endian 32-bit words down the rows, low bits first: the zero
    /// point of group row `r`, column `c` in word `(r / (32 / bits), c)` (compressed-tensors'
    /// `pack_to_int32` along dimension 0).
    DownWords,
    /// One signed byte per group (compressed-tensors' unpacked `int8` zero points).
    SignedBytes,
    /// 4-bit, each row of groups packed into 32-bit words in AWQ's order (see [`Layout::AwqOrder`]).
    AwqRows,
}

impl ScaleBiasGroups {
    /// Groups of `size` consecutive values, one scale each of `dtype` in `scales`, offset by
    /// `offset` (MLX, `MatMulNBits`, bitsandbytes).
    pub fn runs(size: u64, dtype: DType, scales: bytes::Bytes, offset: GroupOffset) -> Self {
        Self::tiles(size, 1, 0, dtype, scales, offset)
    }

    /// Groups tiling a matrix of `cols` columns in blocks of `rows × size` (see the type's note;
    /// `cols` 0: runs of `size`), one scale each of `dtype` in `scales`, offset by `offset`.
    pub fn tiles(
        size: u64,
        rows: u64,
        cols: u64,
        dtype: DType,
        scales: bytes::Bytes,
        offset: GroupOffset,
    ) -> Self {
        ScaleBiasGroups {
            size,
            rows,
            cols,
            row_map: None,
            dtype,
            scales,
            offset,
            codebook: None,
            book_stride: 0,
            nested: None,
            scale_factor: 1.0,
        }
    }

    /// The scale and the bias (`q × scale + bias`) of group `g`.
    /// Value `g` of `b` (the scales, or the biases), of the scales' type.
    #[inline]
    fn read_value(&self, b: &[u8], g: usize) -> Option<f64> {
        let width = match self.dtype {
            DType::F32 => 4,
            DType::F8E4M3FN | DType::F8E8M0 => 1,
            _ => 2,
        };
        let at = g.checked_mul(width)?;
        let c = b.get(at..at.checked_add(width)?)?;
        Some(match (self.dtype, c) {
            (DType::F16, &[x, y]) => f64::from(half::f16::from_le_bytes([x, y])),
            (DType::BF16, &[x, y]) => f64::from(half::bf16::from_le_bytes([x, y])),
            (DType::F32, &[a, b, c, d]) => f64::from(f32::from_le_bytes([a, b, c, d])),
            (DType::F8E4M3FN, &[x]) => e4m3fn(x),
            // MXFP4's power-of-two block scales.
            (DType::F8E8M0, &[x]) => match x {
                0xff => f64::NAN,
                e => 2f64.powi(i32::from(e) - 127),
            },
            _ => return None,
        })
    }

    fn get(&self, g: usize) -> Option<(f64, f64)> {
        let read = |b: &[u8]| self.read_value(b, g);
        let scale = self.scale_factor
            * match &self.nested {
                Some(n) => n.scale(*self.scales.get(g)?, g)?,
                None => read(&self.scales)?,
            };
        let bias = match &self.offset {
            GroupOffset::Bias(b) => read(b)?,
            GroupOffset::Zero(z) => -z * scale,
            GroupOffset::Add(b) => *b,
            GroupOffset::ZeroPoints {
                bytes,
                bits,
                row_groups,
                packing,
                plus,
            } => {
                let rg = usize::try_from(*row_groups).ok()?.max(1);
                let (row, col) = (g / rg, g % rg);
                let z = f64::from(*plus)
                    + match (packing, bits) {
                        (ZeroPacking::SignedBytes, _) => f64::from(*bytes.get(g)? as i8),
                        (ZeroPacking::Rows, 8) => f64::from(*bytes.get(g)?),
                        // 4-bit, each row's groups padded to whole bytes.
                        (ZeroPacking::Rows, _) => {
                            let at = row.checked_mul(rg.div_ceil(2))?.checked_add(col / 2)?;
                            let byte = *bytes.get(at)?;
                            f64::from((byte >> (4 * (col % 2))) & 0x0f)
                        }
                        (ZeroPacking::AwqRows, _) => {
                            let at = row.checked_mul(rg.div_ceil(8) * 8)?.checked_add(
                                usize::try_from(Layout::AwqOrder.memory_of(col as u64)).ok()?,
                            )?;
                            let byte = *bytes.get(at / 2)?;
                            f64::from((byte >> (4 * (at % 2))) & 0x0f)
                        }
                        (ZeroPacking::DownWords, _) => {
                            let bits = usize::from(*bits).clamp(1, 32);
                            let per_word = 32 / bits;
                            let word = (row / per_word).checked_mul(rg)?.checked_add(col)?;
                            let at = word.checked_mul(4)?;
                            let w = bytes.get(at..at.checked_add(4)?)?;
                            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                            let shift = bits * (row % per_word);
                            f64::from((w >> shift) & (u32::MAX >> (32 - bits)))
                        }
                    };
                -z * scale
            }
        };
        Some((scale, bias))
    }

    /// The group of element `i` of the logical (row-major) order.
    pub fn group_of(&self, i: u64) -> u64 {
        let size = self.size.max(1);
        if self.cols == 0 {
            return i / size;
        }
        let (r, c) = (i / self.cols, i % self.cols);
        let group_row = match &self.row_map {
            Some(map) => {
                let at = usize::try_from(r).unwrap_or(usize::MAX).saturating_mul(4);
                match map.get(at..at.saturating_add(4)) {
                    Some(&[w, x, y, z]) => u64::try_from(i32::from_le_bytes([w, x, y, z])).ok(),
                    _ => None,
                }
                .unwrap_or(u64::MAX)
            }
            None => r / self.rows.max(1),
        };
        group_row
            .saturating_mul(self.cols.div_ceil(size))
            .saturating_add(c / size)
    }

    /// The code `q` of group `g`, whose scale is `s` and bias `b`, as a real value.
    #[inline]
    pub fn real(&self, q: f64, g: u64, s: f64, b: f64) -> f64 {
        let q = match &self.codebook {
            Some(book) => {
                let at = g.saturating_mul(self.book_stride).saturating_add(q as u64);
                usize::try_from(at)
                    .ok()
                    .and_then(|at| book.get(at))
                    .copied()
                    .unwrap_or(f64::NAN)
            }
            None => q,
        };
        q * s + b
    }

    /// The scale and bias of group `g`, NaN where the file holds none.
    pub fn get_or_nan(&self, g: u64) -> (f64, f64) {
        usize::try_from(g)
            .ok()
            .and_then(|g| self.get(g))
            .unwrap_or((f64::NAN, f64::NAN))
    }

    /// The group of element `i` (logical order) and how many elements from it on share it.
    pub fn segment(&self, i: u64) -> (u64, u64) {
        let size = self.size.max(1);
        if self.cols == 0 {
            return (i / size, size - i % size);
        }
        let c = i % self.cols;
        let len = (size - c % size).min(self.cols - c);
        (self.group_of(i), len)
    }

    /// Values stored in logical order: one group lookup per run of a group.
    fn apply_runs(&self, first: u64, vals: &mut [f64]) {
        let (mut i, mut rest) = (first, vals);
        while !rest.is_empty() {
            let (g, len) = self.segment(i);
            let take = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .clamp(1, rest.len());
            let (head, tail) = rest.split_at_mut(take);
            let (s, b) = self.get_or_nan(g);
            head.iter_mut().for_each(|v| *v = self.real(*v, g, s, b));
            i += take as u64;
            rest = tail;
        }
    }

    /// Values in GPTQ's layout (`per` rows of one column a word) with one group per column and
    /// group row: the indices walked, not divided, and the group looked up when it changes.
    fn apply_gptq(&self, cols: u64, per: u64, first: u64, vals: &mut [f64]) {
        let (cols, per) = (cols.max(1), per.max(1));
        let (w, mut j) = (first / per, first % per);
        let (mut kb, mut n) = (w / cols, w % cols);
        let group_row = |r: u64| self.group_of(r * self.cols) / self.cols.max(1);
        let mut rows: Vec<u64> = (0..per).map(|j| group_row(kb * per + j)).collect();
        let (mut current, mut s, mut b) = (u64::MAX, f64::NAN, f64::NAN);
        for v in vals.iter_mut() {
            let g = rows.get(j as usize).copied().unwrap_or(u64::MAX);
            let g = g.saturating_mul(cols).saturating_add(n);
            if g != current {
                current = g;
                (s, b) = self.get_or_nan(g);
            }
            *v = self.real(*v, g, s, b);
            j += 1;
            if j == per {
                j = 0;
                n += 1;
                if n == cols {
                    n = 0;
                    kb += 1;
                    for (jj, r) in rows.iter_mut().enumerate() {
                        *r = group_row(kb * per + jj as u64);
                    }
                }
            }
        }
    }

    /// Values in AWQ's layout (row-major, eight to a word out of order) with one group per
    /// column and group row.
    fn apply_awq(&self, first: u64, vals: &mut [f64]) {
        let cols = self.cols.max(1);
        let word = first / 8 * 8;
        let (mut r, mut c0, mut p) = (word / cols, word % cols, first % 8);
        let group_row = |r: u64| self.group_of(r * cols) / cols;
        let mut gr = group_row(r);
        // AWQ's own zero points (a word of eight in the weights' order): one word read per word
        // of values, their scales directly, rather than a group lookup per value.
        let awq_zeros = match &self.offset {
            GroupOffset::ZeroPoints {
                bytes,
                bits: 4,
                row_groups,
                packing: ZeroPacking::AwqRows,
                plus,
            } if self.nested.is_none()
                && self.codebook.is_none()
                && *row_groups == cols
                && cols.is_multiple_of(8) =>
            {
                Some((bytes, f64::from(*plus)))
            }
            _ => None,
        };
        let mut word_sb = [(f64::NAN, f64::NAN); 8];
        let mut word_at = u64::MAX;
        for v in vals.iter_mut() {
            let g0 = gr.saturating_mul(cols).saturating_add(c0);
            if let Some((zeros, plus)) = awq_zeros {
                if word_at != g0 {
                    word_at = g0;
                    let zw = usize::try_from(g0 / 8 * 4)
                        .ok()
                        .and_then(|at| zeros.get(at..at.checked_add(4)?))
                        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
                    for (j, sb) in word_sb.iter_mut().enumerate() {
                        let g = usize::try_from(g0 + AWQ_ORDER[j]).unwrap_or(usize::MAX);
                        let s = self
                            .read_value(&self.scales, g)
                            .map(|s| s * self.scale_factor);
                        *sb = match (zw, s) {
                            (Some(zw), Some(s)) => {
                                let z = f64::from((zw >> (4 * j)) & 0x0f) + plus;
                                (s, -z * s)
                            }
                            _ => (f64::NAN, f64::NAN),
                        };
                    }
                }
                let (s, b) = word_sb[p as usize];
                *v = *v * s + b;
            } else {
                let c = c0 + AWQ_ORDER[p as usize];
                let g = gr.saturating_mul(cols).saturating_add(c);
                let (s, b) = self.get_or_nan(g);
                *v = self.real(*v, g, s, b);
            }
            p += 1;
            if p == 8 {
                p = 0;
                c0 += 8;
                if c0 >= cols {
                    c0 = 0;
                    r += 1;
                    gr = group_row(r);
                }
            }
        }
    }

    /// The general case: each element's group from its logical index.
    fn apply_each(&self, layout: Option<Layout>, first: u64, vals: &mut [f64]) {
        let mut current = u64::MAX;
        let (mut s, mut b) = (f64::NAN, f64::NAN);
        for (i, v) in (first..).zip(vals.iter_mut()) {
            let g = self.group_of(layout.map_or(i, |l| l.logical_of(i)));
            if g != current {
                current = g;
                (s, b) = self.get_or_nan(g);
            }
            *v = self.real(*v, g, s, b);
        }
    }

    /// Groups held.
    pub fn len(&self) -> usize {
        self.scales.len() / self.dtype.size_bytes().unwrap_or(1).max(1) as usize
    }

    /// Whether no group is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Zero points for `scale`: as many as scales (none given: zeros), every value finite.
fn zero_points(scale: &[f64], zero_point: Vec<f64>) -> Option<Vec<f64>> {
    let zero_point = match zero_point.len() {
        0 => vec![0.0; scale.len()],
        n if n == scale.len() => zero_point,
        _ => return None,
    };
    scale
        .iter()
        .chain(&zero_point)
        .all(|v| v.is_finite())
        .then_some(zero_point)
}

impl Quant {
    /// Affine quantization of a tensor of `shape`; `None` when the scales do not fit it (not one,
    /// nor one per index along `axis`), a zero-point list has another length, or a scale is not
    /// finite.
    pub fn new(scale: Vec<f64>, zero_point: Vec<f64>, axis: usize, shape: &[u64]) -> Option<Quant> {
        let zero_point = zero_points(&scale, zero_point)?;
        if scale.is_empty() || (scale.len() > 1 && shape.get(axis) != Some(&(scale.len() as u64))) {
            return None;
        }
        let (axis, inner) = if scale.len() == 1 {
            (0, 1)
        } else {
            let inner = shape
                .get(axis + 1..)
                .unwrap_or_default()
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))?;
            (axis, inner)
        };
        Some(Quant {
            scale,
            zero_point,
            axis,
            inner,
            grouped: false,
            groups: None,
            layout: None,
        })
    }

    /// Block-wise quantization of a tensor of `shape` by scales of `scale_shape` (broadcast:
    /// each scale dimension divides the tensor's), as Core ML's `constexpr_blockwise_shift_scale`
    /// holds it: blocks may run along one dimension, the dimensions before it taken whole and
    /// those after it with one scale each (`[out, in]` weights with `[out, in / 32]` scales), or
    /// one scale per index of one dimension, broadcast over the others. `None` for other layouts.
    pub fn blocks(
        scale: Vec<f64>,
        zero_point: Vec<f64>,
        shape: &[u64],
        scale_shape: &[u64],
    ) -> Option<Quant> {
        if scale_shape.len() != shape.len()
            || scale.len() as u64
                != scale_shape
                    .iter()
                    .try_fold(1u64, |a, &d| a.checked_mul(d))
                    .unwrap_or(u64::MAX)
        {
            return None;
        }
        let Some(k) = scale_shape.iter().rposition(|&s| s != 1) else {
            return Quant::new(scale, zero_point, 0, shape);
        };
        let whole_before = (0..k).all(|j| scale_shape[j] == shape[j]);
        if !whole_before && scale_shape[..k].iter().all(|&s| s == 1) && scale_shape[k] == shape[k] {
            // One scale per index along `k`, the same for every index before it (the per-channel
            // scales of Core ML's palettes, `[1, C, 1, 1]` over `[G, C, 16, 1]` tables).
            return Quant::new(scale, zero_point, k, shape);
        }
        if !whole_before || scale_shape[k] == 0 || !shape[k].is_multiple_of(scale_shape[k]) {
            return None;
        }
        let zero_point = zero_points(&scale, zero_point)?;
        let inner = shape[k + 1..]
            .iter()
            .try_fold(shape[k] / scale_shape[k], |a, &d| a.checked_mul(d))?;
        Some(Quant {
            scale,
            zero_point,
            axis: k,
            inner,
            grouped: true,
            groups: None,
            layout: None,
        })
    }

    /// Group-wise quantization of a tensor of `shape`: one scale (and zero point) per index of
    /// the dimensions up to `axis` taken together, each covering the elements of the dimensions
    /// after it (`[out, groups, 128]` weights with `[out, groups, 1]` scales: `axis` 1).
    pub fn grouped(
        scale: Vec<f64>,
        zero_point: Vec<f64>,
        axis: usize,
        shape: &[u64],
    ) -> Option<Quant> {
        let groups = shape
            .get(..=axis)?
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))?;
        if axis == 0 || groups != scale.len() as u64 {
            return Quant::new(scale, zero_point, axis, shape);
        }
        let zero_point = zero_points(&scale, zero_point)?;
        let inner = shape
            .get(axis + 1..)
            .unwrap_or_default()
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))?;
        Some(Quant {
            scale,
            zero_point,
            axis,
            inner,
            grouped: true,
            groups: None,
            layout: None,
        })
    }

    /// Quantization by per-group scales and offsets kept in the file (MLX's `q × scale + bias`,
    /// onnxruntime's `(q − zero) × scale`, `size` elements a group); `None` unless the scales are
    /// F16, BF16 or F32 and the biases as many.
    pub fn scale_bias_groups(groups: ScaleBiasGroups) -> Option<Quant> {
        let width = match (groups.dtype, &groups.nested) {
            (DType::U8, Some(n)) if n.map.len() == 256 => 1,
            (DType::F16 | DType::BF16, None) => 2,
            (DType::F32, None) => 4,
            (DType::F8E4M3FN | DType::F8E8M0, None) => 1,
            _ => return None,
        };
        let biases_fit = match &groups.offset {
            GroupOffset::Bias(b) => b.len() == groups.scales.len(),
            GroupOffset::ZeroPoints { bits, packing, .. } => match packing {
                ZeroPacking::SignedBytes => *bits == 8,
                ZeroPacking::AwqRows => *bits == 4,
                _ => matches!(bits, 4 | 8),
            },
            GroupOffset::Zero(z) | GroupOffset::Add(z) => z.is_finite(),
        };
        if groups.size == 0
            || groups.rows == 0
            || !groups.scale_factor.is_finite()
            || !biases_fit
            || !groups.scales.len().is_multiple_of(width)
        {
            return None;
        }
        Some(Quant {
            scale: Vec::new(),
            zero_point: Vec::new(),
            axis: 0,
            inner: groups.size,
            grouped: true,
            groups: Some(std::sync::Arc::new(groups)),
            layout: None,
        })
    }

    /// Whether a real value is zero exactly when its stored code reads zero: no zero point, bias
    /// or codebook, and every scale non-zero and finite (then dead rows show in the raw bytes).
    pub fn zero_is_code_zero(&self) -> bool {
        if let Some(g) = &self.groups {
            let plain = matches!(g.offset, GroupOffset::Zero(z) if z == 0.0)
                && g.codebook.is_none()
                && g.nested.is_none()
                && self.layout.is_none();
            return plain
                && (0..g.len() as u64).all(|i| {
                    let (s, _) = g.get_or_nan(i);
                    s.is_finite() && s != 0.0
                });
        }
        self.zero_point.iter().all(|&z| z == 0.0)
            && self.scale.iter().all(|&s| s.is_finite() && s != 0.0)
    }

    /// The same quantization of values stored in `layout` rather than row-major.
    pub fn with_layout(mut self, layout: Layout) -> Quant {
        self.layout = Some(layout);
        self
    }

    /// Where the values lie in memory, when not row-major.
    pub fn layout(&self) -> Option<Layout> {
        self.layout
    }

    /// The per-group scales and biases read from the file, for a [`Quant::scale_bias_groups`].
    pub fn scale_bias(&self) -> Option<&ScaleBiasGroups> {
        self.groups.as_deref()
    }

    /// Replaces the stored integers `vals` (elements `first..` in memory order) by real values.
    pub fn apply(&self, first: u64, vals: &mut [f64]) {
        let Some(g) = &self.groups else {
            self.apply_channels(first, vals);
            return;
        };
        match self.layout {
            // Pairs never straddle a group of even size: the order within them does not matter.
            None => g.apply_runs(first, vals),
            Some(Layout::HighNibbleFirst)
                if g.size.is_multiple_of(2) && g.cols.is_multiple_of(2) =>
            {
                g.apply_runs(first, vals)
            }
            Some(Layout::Gptq { cols, per }) if cols == g.cols && g.size == 1 => {
                g.apply_gptq(cols, per, first, vals)
            }
            Some(Layout::AwqOrder) if g.size == 1 && g.cols > 0 => g.apply_awq(first, vals),
            Some(layout) => g.apply_each(Some(layout), first, vals),
        }
    }

    /// [`Quant::apply`] of one scale and zero point per channel (or one for all).
    fn apply_channels(&self, first: u64, vals: &mut [f64]) {
        if let ([s], [z]) = (self.scale.as_slice(), self.zero_point.as_slice()) {
            vals.iter_mut().for_each(|v| *v = (*v - z) * s);
            return;
        }
        let channels = self.scale.len() as u64;
        let inner = self.inner.max(1);
        let logical = |i: u64| self.layout.map_or(i, |l| l.logical_of(i));
        if self.layout.is_none() {
            // A channel holds `inner` consecutive elements: one division per run.
            let (mut i, mut rest) = (first, vals);
            while !rest.is_empty() {
                let take = ((inner - i % inner) as usize).min(rest.len());
                let (head, tail) = rest.split_at_mut(take);
                let c = ((i / inner) % channels) as usize;
                if let (Some(s), Some(z)) = (self.scale.get(c), self.zero_point.get(c)) {
                    head.iter_mut().for_each(|v| *v = (*v - z) * s);
                }
                i += take as u64;
                rest = tail;
            }
            return;
        }
        for (i, v) in (first..).zip(vals.iter_mut()) {
            let c = ((logical(i) / inner) % channels) as usize;
            if let (Some(s), Some(z)) = (self.scale.get(c), self.zero_point.get(c)) {
                *v = (*v - z) * s;
            }
        }
    }

    /// A one-line description (`scale 0.0235, zero point -128`; `per channel along dim 0: …`),
    /// numbers to f32's shortest round trip (scales are f32 in most files).
    pub fn describe(&self) -> String {
        if let Some(g) = &self.groups {
            let how = match g.offset {
                GroupOffset::Bias(_) | GroupOffset::Add(_) => "scales and biases",
                GroupOffset::Zero(0.0) => "scales",
                _ => "scales and zero points",
            };
            let per = if g.rows == 1 && g.cols > 0 && g.size >= g.cols {
                "per row".to_string()
            } else if g.size == 1 && g.rows > 1 {
                let order = if g.row_map.is_some() {
                    ", rows by g_idx"
                } else {
                    ""
                };
                format!("per column and group of {} rows{order}", g.rows)
            } else if g.rows > 1 {
                format!("per block of {} × {}", g.rows, g.size)
            } else {
                format!("per group of {} elements", g.size)
            };
            if g.book_stride > 0 {
                // Core ML's palettes: a table per group, the scales all one.
                let tables = if g.len() == 1 {
                    "one palette".to_string()
                } else {
                    format!("{per}: {} palettes", g.len())
                };
                return format!("{tables} of {} values", g.book_stride);
            }
            return format!("{per}: {} {how} ({})", g.len(), g.dtype);
        }
        match (self.scale.as_slice(), self.zero_point.as_slice()) {
            ([s], [z]) => format!("scale {}, zero point {z}", *s as f32),
            (many, _) => {
                let lo = many.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = many.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if self.grouped {
                    return format!(
                        "per group of {} elements: {} scales, {} to {}",
                        self.inner,
                        many.len(),
                        lo as f32,
                        hi as f32
                    );
                }
                format!(
                    "per channel along dim {}: {} scales, {} to {}",
                    self.axis,
                    many.len(),
                    lo as f32,
                    hi as f32
                )
            }
        }
    }
}

/// Which dimension of a 4-D conv weight holds the output channels, the input channels, the
/// kernel rows and the kernel columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvAxes {
    /// The output channels' dimension.
    pub out: u8,
    /// The input channels' dimension.
    pub input: u8,
    /// The kernel rows' dimension.
    pub kh: u8,
    /// The kernel columns' dimension.
    pub kw: u8,
}

impl ConvAxes {
    /// `[out, in, kh, kw]`: ONNX, PyTorch.
    pub const OIHW: ConvAxes = ConvAxes {
        out: 0,
        input: 1,
        kh: 2,
        kw: 3,
    };
    /// `[out, kh, kw, in]`: TFLite `CONV_2D` and `TRANSPOSE_CONV`.
    pub const OHWI: ConvAxes = ConvAxes {
        out: 0,
        input: 3,
        kh: 1,
        kw: 2,
    };
    /// `[1, kh, kw, out]`: TFLite `DEPTHWISE_CONV_2D`, one kernel per output channel.
    pub const IHWO: ConvAxes = ConvAxes {
        out: 3,
        input: 0,
        kh: 1,
        kw: 2,
    };
}

/// Where a tensor came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TensorOrigin {
    /// An ONNX initializer of the top-level graph.
    #[default]
    Initializer,
    /// An entry of a checkpoint (safetensors, GGUF).
    Checkpoint,
    /// The value of a top-level ONNX `Constant` node.
    ConstantNode,
    /// An initializer or constant inside a subgraph (`If`/`Loop` body).
    Subgraph,
}

impl Tensor {
    /// A checkpoint tensor over `bytes` (little-endian), with no quantization.
    pub fn from_bytes(name: &str, dtype: DType, shape: &[u64], bytes: Vec<u8>) -> Tensor {
        Tensor {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
            data: TensorData::Bytes(bytes.into()),
            origin: TensorOrigin::Checkpoint,
            conv_axes: None,
            quant: None,
        }
    }

    /// Number of elements (saturating; loaders reject overflowing shapes).
    pub fn elements(&self) -> u64 {
        self.shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// Bytes the shape and dtype call for, `None` when unknown or overflowing.
    pub fn expected_bytes(&self) -> Option<u64> {
        let n = self
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
        self.dtype.bytes_for(n)
    }

    /// The values of a small (at most 4 M elements) float or integer tensor, such as a
    /// quantizer's scales and zero points; `None` for other types, missing data or a length that
    /// does not match.
    pub fn small_numbers(&self) -> Option<Vec<f64>> {
        let n = usize::try_from(self.elements())
            .ok()
            .filter(|&n| n <= 1 << 22)?;
        let bytes = self.data()?;
        let bytes: &[u8] = &bytes;
        if matches!(self.dtype, DType::U4 | DType::I4) {
            // Two to a byte, the low nibble first; an odd count leaves the last high nibble.
            if bytes.len() != n.div_ceil(2) {
                return None;
            }
            let signed = self.dtype == DType::I4;
            return Some(
                (0..n)
                    .map(|i| {
                        let nib = (bytes[i / 2] >> (4 * (i % 2))) & 0x0f;
                        if signed {
                            f64::from(((nib << 4) as i8) >> 4)
                        } else {
                            f64::from(nib)
                        }
                    })
                    .collect(),
            );
        }
        let width = usize::try_from(self.dtype.bytes_for(1)?).ok()?;
        if bytes.len() != n.checked_mul(width)? {
            return None;
        }
        let one = |c: &[u8]| -> Option<f64> {
            Some(match (self.dtype, c) {
                (DType::F64, _) => f64::from_le_bytes(c.try_into().ok()?),
                (DType::F32, &[a, b, c, d]) => f64::from(f32::from_le_bytes([a, b, c, d])),
                (DType::F16, &[a, b]) => f64::from(half::f16::from_le_bytes([a, b])),
                (DType::BF16, &[a, b]) => f64::from(half::bf16::from_le_bytes([a, b])),
                (DType::I64, _) => i64::from_le_bytes(c.try_into().ok()?) as f64,
                (DType::I32, &[a, b, c, d]) => f64::from(i32::from_le_bytes([a, b, c, d])),
                (DType::U32, &[a, b, c, d]) => f64::from(u32::from_le_bytes([a, b, c, d])),
                (DType::I16, &[a, b]) => f64::from(i16::from_le_bytes([a, b])),
                (DType::U16, &[a, b]) => f64::from(u16::from_le_bytes([a, b])),
                (DType::I8, &[a]) => f64::from(a as i8),
                (DType::U8, &[a]) => f64::from(a),
                // MX scales: powers of two.
                (DType::F8E8M0, &[a]) => match a {
                    0xff => f64::NAN,
                    e => 2f64.powi(i32::from(e) - 127),
                },
                _ => return None,
            })
        };
        bytes.chunks_exact(width).map(one).collect()
    }

    /// The data bytes when the tensor holds them (a slice of a map, or owned); `None` for bytes
    /// made on first use ([`TensorData::Lazy`]): read those through [`Tensor::data`].
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            TensorData::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The data bytes for reading now: the tensor's own, or those made on first use (made now
    /// if they are not cached); `None` when there are none or making them failed.
    pub fn data(&self) -> Option<TensorBytes<'_>> {
        match &self.data {
            TensorData::Bytes(b) => Some(TensorBytes::Borrowed(b)),
            TensorData::Lazy(l) => l.get().ok().map(TensorBytes::Shared),
            _ => None,
        }
    }

    /// Whether the tensor has data (or can make it on first use), without making it.
    pub fn has_data(&self) -> bool {
        match &self.data {
            TensorData::Bytes(_) => true,
            TensorData::Lazy(l) => l.failed().is_none(),
            _ => false,
        }
    }

    /// An address that tells this tensor's data apart from others' while the model lives,
    /// without making data made on first use; 0 when there is none.
    pub fn data_addr(&self) -> usize {
        match &self.data {
            TensorData::Bytes(b) => b.as_ptr() as usize,
            TensorData::Lazy(l) => Arc::as_ptr(l) as usize,
            _ => 0,
        }
    }
}

/// Facts about the model as a whole.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    /// Producer name (`pytorch`, `onnx-caffe2`…).
    pub producer: Option<String>,
    /// Producer version.
    pub producer_version: Option<String>,
    /// ONNX IR version or GGUF version.
    pub ir_version: Option<i64>,
    /// Operator set imports: domain (`ai.onnx` for the default) → version.
    pub opsets: Vec<(String, i64)>,
    /// Doc string.
    pub doc: Option<String>,
    /// Architecture name (`llama`, `LlamaForCausalLM`).
    pub architecture: Option<String>,
    /// Other key/values: ONNX metadata_props, safetensors `__metadata__`, GGUF KVs, HF `config.json`.
    pub properties: Vec<(String, String)>,
    /// Number of shards the model was read from.
    pub shards: usize,
    /// The class of each module path where the file names it (a pickled `nn.Module` or a
    /// TorchScript archive: `0` → `Conv1d`); checkpoints without it get a kind guessed from names.
    pub module_classes: std::collections::HashMap<String, String>,
    /// Warnings gathered while loading that did not stop it (e.g. a cycle broken).
    pub warnings: Vec<String>,
}

/// A loaded model.
#[derive(Clone, Debug)]
pub struct Model {
    /// The file (or index file) it was read from.
    pub source: PathBuf,
    /// Format.
    pub format: Format,
    /// The op graph (for checkpoints, a graph of module nodes).
    pub graph: Graph,
    /// The tree of named groups.
    pub hierarchy: Hierarchy,
    /// All tensors: initializers, checkpoint entries, constants.
    pub tensors: Vec<Tensor>,
    /// Tensor name → id.
    pub tensor_index: HashMap<String, TensorId>,
    /// Model-wide facts.
    pub metadata: Metadata,
}

impl Model {
    /// An empty model of a format, read from `source`.
    pub fn new(source: impl Into<PathBuf>, format: Format) -> Self {
        Model {
            source: source.into(),
            format,
            graph: Graph::default(),
            hierarchy: Hierarchy::new(),
            tensors: Vec::new(),
            tensor_index: HashMap::default(),
            metadata: Metadata::default(),
        }
    }

    /// Adds a tensor (indexed by name) and returns its id.
    pub fn add_tensor(&mut self, tensor: Tensor) -> TensorId {
        let id = self.tensors.len() as TensorId;
        self.tensor_index.entry(tensor.name.clone()).or_insert(id);
        self.tensors.push(tensor);
        id
    }

    /// "; did you mean …?" with up to three group paths, tensor or node names close to `name`, or
    /// "" when none is: for errors about a name that matched nothing.
    pub fn near_names(&self, name: &str) -> String {
        names::near_names(self, name)
    }

    /// Looks a tensor up by name.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensor_index
            .get(name)
            .and_then(|&i| self.tensors.get(i as usize))
    }

    /// Fills the hierarchy's node lists and recursive node/parameter counts from each node's group
    /// (`groups[i]` for node `i`) and the tensors it owns.
    pub fn finish_hierarchy(&mut self, groups: &[GroupId]) {
        let tensors = &self.tensors;
        let nodes = &self.graph.nodes;
        self.hierarchy.finish(groups, |i| {
            nodes.get(i).map_or(0, |n| {
                n.tensors
                    .iter()
                    .filter_map(|&t| tensors.get(t as usize))
                    .map(Tensor::elements)
                    .fold(0u64, u64::saturating_add)
            })
        });
    }

    /// Total parameters: elements of top-level initializers and checkpoint tensors (as `onnx`,
    /// `safetensors` and `gguf` count them).
    pub fn parameter_count(&self) -> u64 {
        self.tensors
            .iter()
            .filter(|t| {
                matches!(
                    t.origin,
                    TensorOrigin::Initializer | TensorOrigin::Checkpoint
                )
            })
            .map(Tensor::elements)
            .fold(0u64, u64::saturating_add)
    }

    /// Elements and tensors held in subgraphs (an ONNX `If` branch's initializers and constants,
    /// a TFLite body's constant tensors), which the file's own counts leave out.
    pub fn subgraph_tensor_count(&self) -> (u64, usize) {
        self.tensors
            .iter()
            .filter(|t| t.origin == TensorOrigin::Subgraph)
            .fold((0u64, 0usize), |(e, n), t| {
                (e.saturating_add(t.elements()), n + 1)
            })
    }

    /// Elements held in top-level `Constant` nodes.
    pub fn constant_parameter_count(&self) -> u64 {
        self.tensors
            .iter()
            .filter(|t| t.origin == TensorOrigin::ConstantNode)
            .map(Tensor::elements)
            .fold(0u64, u64::saturating_add)
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    fn groups(size: u64, rows: u64, cols: u64, n: usize, row_map: Option<Vec<i32>>) -> Quant {
        let scales: Vec<u8> = (0..n)
            .flat_map(|g| (0.5 + g as f32 * 0.25).to_le_bytes())
            .collect();
        let zeros: Vec<u8> = (0..4 * n).map(|i| (i * 37 % 256) as u8).collect();
        let offset = GroupOffset::ZeroPoints {
            bytes: zeros.into(),
            bits: 4,
            row_groups: if cols == 0 {
                n as u64
            } else {
                cols.div_ceil(size)
            },
            packing: ZeroPacking::Rows,
            plus: 1,
        };
        let plain = ScaleBiasGroups::tiles(size, rows, cols, DType::F32, scales.into(), offset);
        Quant::scale_bias_groups(ScaleBiasGroups {
            row_map: row_map.map(|m| m.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..plain
        })
        .unwrap()
    }

    /// AWQ's own groups: F16 scales, zero points packed eight to a word in AWQ's order.
    fn awq_groups(rows: u64, cols: u64, n: usize) -> Quant {
        let scales: Vec<u8> = (0..n)
            .flat_map(|g| half::f16::from_f32(0.5 + g as f32 * 0.25).to_le_bytes())
            .collect();
        let zeros: Vec<u8> = (0..n / 2).map(|i| (i * 37 % 256) as u8).collect();
        let offset = GroupOffset::ZeroPoints {
            bytes: zeros.into(),
            bits: 4,
            row_groups: cols,
            packing: ZeroPacking::AwqRows,
            plus: 0,
        };
        Quant::scale_bias_groups(ScaleBiasGroups::tiles(
            1,
            rows,
            cols,
            DType::F16,
            scales.into(),
            offset,
        ))
        .unwrap()
    }

    /// The fast paths of `Quant::apply` agree with the per-element reading everywhere, whatever
    /// the first element and the length of the piece.
    #[test]
    fn fast_group_paths_match_the_per_element_reading() {
        let (rows, cols) = (48u64, 24u64);
        let total = rows * cols;
        let cases = [
            (groups(16, 1, 0, 72, None), None),
            (groups(5, 1, cols, 48 * 5, None), None),
            (groups(8, 16, cols, 9, None), None),
            (groups(16, 1, 0, 72, None), Some(Layout::HighNibbleFirst)),
            (
                groups(1, 16, cols, 3 * 24, None),
                Some(Layout::Gptq { cols, per: 8 }),
            ),
            (
                groups(1, 12, cols, 4 * 24, None),
                Some(Layout::Gptq { cols, per: 8 }),
            ),
            (
                groups(1, 16, cols, 3 * 24, None),
                Some(Layout::Gptq { cols, per: 4 }),
            ),
            (
                groups(
                    1,
                    16,
                    cols,
                    3 * 24,
                    Some((0..48).map(|r| r * 7 % 3).collect()),
                ),
                Some(Layout::Gptq { cols, per: 8 }),
            ),
            (groups(1, 16, cols, 3 * 24, None), Some(Layout::AwqOrder)),
            (awq_groups(16, cols, 3 * 24), Some(Layout::AwqOrder)),
        ];
        for (case, (q, layout)) in cases.into_iter().enumerate() {
            let q = match layout {
                Some(l) => q.with_layout(l),
                None => q,
            };
            let g = q.scale_bias().unwrap();
            let codes: Vec<f64> = (0..total).map(|i| (i * 5 % 16) as f64).collect();
            for (first, len) in [(0, total), (3, 50), (8, 200), (17, 1), (100, 900), (0, 7)] {
                let len = (len as usize).min(total as usize - first);
                let mut fast = codes[first..first + len].to_vec();
                q.apply(first as u64, &mut fast);
                let mut slow = codes[first..first + len].to_vec();
                g.apply_each(layout, first as u64, &mut slow);
                let diff = fast.iter().zip(&slow).position(|(a, b)| a != b);
                assert_eq!(diff, None, "case {case}, {first}+{len}");
                assert!(fast.iter().all(|v| v.is_finite()), "case {case}");
            }
        }
    }

    #[test]
    fn per_channel_runs_match_the_per_element_reading() {
        let shape = [6u64, 5, 4];
        let q = Quant::new(
            vec![0.5, 1.0, 2.0, 4.0, 8.0],
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
            1,
            &shape,
        )
        .unwrap();
        let mut v: Vec<f64> = (0..120).map(f64::from).collect();
        q.apply(7, &mut v[7..]);
        for (i, x) in v.iter().enumerate().skip(7) {
            let c = (i / 4) % 5;
            let want = (i as f64 - (c + 1) as f64) * [0.5, 1.0, 2.0, 4.0, 8.0][c];
            assert_eq!(*x, want, "{i}");
        }
    }

    #[test]
    fn layouts_map_memory_and_logical_indices_both_ways() {
        // GPTQ, 4-bit: [16, 3] stored as [2, 3, 8]: inputs 0..8 of output 1 are word 1.
        let gptq = Layout::Gptq { cols: 3, per: 8 };
        assert_eq!(gptq.memory_of(1), 8);
        assert_eq!(gptq.memory_of(3), 1);
        assert_eq!(gptq.memory_of(8 * 3 + 2), 3 * 8 + 2 * 8);
        assert_eq!(gptq.span(3 * 9, 3 * 9 + 2), (3 * 8, 5 * 8));
        // AWQ: each word's values in the order 0, 2, 4, 6, 1, 3, 5, 7.
        assert_eq!(Layout::AwqOrder.logical_of(1), 2);
        assert_eq!(Layout::AwqOrder.memory_of(2), 1);
        assert_eq!(Layout::AwqOrder.logical_of(12), 9);
        assert_eq!(Layout::HighNibbleFirst.memory_of(4), 5);
        for layout in [gptq, Layout::AwqOrder, Layout::HighNibbleFirst] {
            let mut seen = [false; 48];
            for l in 0..48 {
                let m = layout.memory_of(l);
                assert_eq!(layout.logical_of(m), l, "{layout:?}");
                seen[m as usize] = true;
            }
            assert!(seen.iter().all(|&s| s), "{layout:?} is a permutation");
        }
    }
}
