//! Neuron-level view of a chain of dense layers: one node per neuron, one edge per weight.
//!
//! How it works: [`find_dense_chains`] finds chains two ways — in checkpoints by name (an MLP's
//! `up_proj`/`down_proj`, `fc1`/`fc2`, `c_fc`/`c_proj`, GGUF `ffn_up`/`ffn_down`… under one prefix),
//! in op graphs by walking from one MatMul/Gemm with a constant 2-D weight to the next one reachable
//! within a few elementwise ops. The weight's stored orientation (`[out, in]` for PyTorch/Gemm
//! `transB=1`, `[in, out]` for ONNX MatMul and GPT-2 `Conv1D`) is settled by which way the sizes
//! connect. [`neuron_graph`] lays neurons out in columns (one per layer, centred on y = 0) and streams
//! each weight matrix row by row in parallel, producing every edge when their number is within
//! `max_edges` and, always, the top-k edges by |w| into and out of every neuron (the LOD set for low
//! zoom, so every neuron keeps its strongest links). [`fan_edges`] reads, on demand, every weight of
//! a band of neurons (what a zoomed-in view shows) without decoding the rest of the matrix. Plain
//! data: the `neuron_view` module turns it into `NodeItem`s and `EdgeItem`s.
//!
//! Rejected: sampling edges at random for low zoom (hides the strong links people look for); a
//! per-edge struct with positions (12 bytes an edge instead of 28: positions come from `positions`).

use rayon::prelude::*;
use std::collections::HashMap;
use std::ops::Range;

use super::decode::Elem;
use super::{HeatmapView, StatsError, StatsOptions, checked};
use crate::model::Quant;
use crate::model::{AttrValue, Model, NodeKind, TensorId};

/// One dense layer of a chain.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseLayer {
    /// The weight tensor.
    pub tensor: TensorId,
    /// Inputs (neurons of the layer before).
    pub in_features: u64,
    /// Outputs (neurons of this layer).
    pub out_features: u64,
    /// The 2-D view's rows are inputs (`[in, out]`, ONNX MatMul) rather than outputs.
    pub rows_are_inputs: bool,
}

/// Consecutive dense layers whose sizes connect.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseChain {
    /// A name for the picker (the common prefix or the first node's name).
    pub name: String,
    /// The layers, input side first.
    pub layers: Vec<DenseLayer>,
}

impl DenseChain {
    /// Neurons per column: inputs of the first layer, then outputs of each layer.
    pub fn sizes(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .layers
            .first()
            .map(|l| l.in_features)
            .into_iter()
            .collect();
        v.extend(self.layers.iter().map(|l| l.out_features));
        v
    }

    /// Weights (edges) in the whole chain.
    pub fn weights(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.in_features.saturating_mul(l.out_features))
            .sum()
    }
}

/// Options for [`neuron_graph`].
#[derive(Clone, Copy, Debug)]
pub struct NeuronOptions {
    /// Strongest edges kept per neuron, in and out.
    pub top_k: usize,
    /// Produce every edge only when the chain has at most this many weights.
    pub max_edges: u64,
    /// World distance between layer columns.
    pub layer_spacing: f32,
    /// World distance between neurons in a column.
    pub neuron_spacing: f32,
}

impl Default for NeuronOptions {
    fn default() -> Self {
        NeuronOptions {
            top_k: 8,
            max_edges: 20_000_000,
            layer_spacing: 400.0,
            neuron_spacing: 4.0,
        }
    }
}

/// An edge of the neuron graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NeuronEdge {
    /// Source neuron (index into [`NeuronGraph::positions`]).
    pub from: u32,
    /// Destination neuron.
    pub to: u32,
    /// The weight.
    pub weight: f32,
}

/// The neuron-level graph.
#[derive(Clone, Debug, Default)]
pub struct NeuronGraph {
    /// Neurons per column.
    pub layer_sizes: Vec<u32>,
    /// Index of each column's first neuron.
    pub layer_offsets: Vec<u32>,
    /// Neuron centres in world units, column by column.
    pub positions: Vec<[f32; 2]>,
    /// Every weight as an edge, when [`all_edges`](Self::all_edges) is true; otherwise empty.
    pub edges: Vec<NeuronEdge>,
    /// Whether `edges` holds every weight.
    pub all_edges: bool,
    /// The top-k edges by |w| into and out of every neuron (deduplicated, sorted by `(from, to)`).
    pub top_edges: Vec<NeuronEdge>,
    /// Largest |w| (for the opacity scale).
    pub abs_max: f32,
    /// Largest |w| of each layer's weight matrix (edges `layer_offsets[l]..` → `layer_offsets[l + 1]..`).
    pub layer_abs_max: Vec<f32>,
}

/// Modules of an MLP whose weights chain, first then second.
const NAME_PAIRS: [(&str, &str); 6] = [
    ("up_proj", "down_proj"),
    ("fc1", "fc2"),
    ("c_fc", "c_proj"),
    ("ffn_up", "ffn_down"),
    ("w1", "w2"),
    ("dense_h_to_4h", "dense_4h_to_h"),
];

/// A dense layer's weight leaf: PyTorch's `weight` (`[out, in]`, GPT-2's `Conv1D` `[in, out]`),
/// compressed-tensors' `weight_packed` (read as `[out, in]`), GPTQ's and AWQ's `qweight` (read
/// as `[in, out]`) or a Flax / Keras `kernel` (`[in, out]`), with whether its rows are likelier the inputs.
const WEIGHT_LEAVES: [(&str, bool); 4] = [
    ("weight", false),
    ("weight_packed", false),
    ("qweight", true),
    ("kernel", true),
];

/// Orients a sequence of 2-D views `(rows, cols)` so that sizes connect; tries rows as outputs
/// first (`[out, in]`), or as inputs first when `inputs_first` (a square chain connects both ways).
fn orient(views: &[(TensorId, HeatmapView)], inputs_first: bool) -> Option<Vec<DenseLayer>> {
    for in_first in [inputs_first, !inputs_first] {
        let layers: Vec<DenseLayer> = views
            .iter()
            .map(|&(tensor, v)| {
                let (o, i) = if in_first {
                    (v.cols, v.rows)
                } else {
                    (v.rows, v.cols)
                };
                DenseLayer {
                    tensor,
                    in_features: i,
                    out_features: o,
                    rows_are_inputs: in_first,
                }
            })
            .collect();
        if layers
            .windows(2)
            .all(|w| w[0].out_features == w[1].in_features)
        {
            return Some(layers);
        }
    }
    None
}

/// Dense chains found in a model (see the module note), checkpoint MLPs first, then op-graph chains.
pub fn find_dense_chains(m: &Model) -> Vec<DenseChain> {
    let opts = StatsOptions::for_model(m);
    let view2 = |id: TensorId| -> Option<HeatmapView> {
        let t = m.tensors.get(id as usize)?;
        (t.shape.len() == 2 && checked(t).is_ok()).then(|| HeatmapView::of(t, opts.innermost_first))
    };
    // A dense op's weight may also be a group-wise quantized `[out, groups, group size]`
    // (OpenVINO's int4), whose view is `out × in` as a 2-D one's.
    let grouped_view = |id: TensorId| -> Option<HeatmapView> {
        let t = m.tensors.get(id as usize)?;
        (t.shape.len() == 3 && t.quant.is_some() && checked(t).is_ok())
            .then(|| HeatmapView::of(t, opts.innermost_first))
    };
    let mut out = Vec::new();
    for (id, t) in m.tensors.iter().enumerate() {
        for ((a, b), (leaf, inputs_first)) in NAME_PAIRS
            .into_iter()
            .flat_map(|p| WEIGHT_LEAVES.into_iter().map(move |l| (p, l)))
        {
            let Some(prefix) = t
                .name
                .strip_suffix(leaf)
                .and_then(|n| n.strip_suffix(['.', '/']))
                .and_then(|n| n.strip_suffix(a))
            else {
                continue;
            };
            let sep = &t.name[prefix.len() + a.len()..t.name.len() - leaf.len()];
            let Some(&bid) = m.tensor_index.get(&format!("{prefix}{b}{sep}{leaf}")) else {
                continue;
            };
            let (Some(va), Some(vb)) = (view2(id as TensorId), view2(bid)) else {
                continue;
            };
            if let Some(layers) = orient(&[(id as TensorId, va), (bid, vb)], inputs_first) {
                out.push(DenseChain {
                    name: prefix.trim_end_matches(['.', '/', '_']).to_string(),
                    layers,
                });
            }
        }
    }
    // Op graphs: dense nodes with one constant 2-D weight, linked through at most 4 other nodes.
    let g = &m.graph;
    let dense: Vec<(usize, TensorId, bool)> = g
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            n.kind == NodeKind::Op
                && matches!(
                    &*n.op,
                    "MatMul"
                        | "Gemm"
                        | "linear"
                        | "matmul"
                        | "FullyConnected"
                        | "Dense"
                        | "innerProduct"
                        | "MatMulNBits"
                )
        })
        .filter_map(|(i, n)| {
            let w: Vec<TensorId> = n
                .tensors
                .iter()
                .copied()
                .filter(|&t| view2(t).or_else(|| grouped_view(t)).is_some())
                .collect();
            // One weight, or (MatMulNBits: weight, per-block scales and zero points) the
            // largest, which the others quantize.
            let w = match w.as_slice() {
                [w] => w,
                many if &*n.op == "MatMulNBits" => many
                    .iter()
                    .max_by_key(|&&t| m.tensors.get(t as usize).map_or(0, |t| t.elements()))?,
                _ => return None,
            };
            // MatMul(x, W): W is [in, out]; Gemm: [out, in] when transB = 1; ATen's linear(x, W)
            // is x·Wᵀ with W [out, in] (as TFLite's FullyConnected), its matmul like MatMul.
            let trans_b = n
                .attributes
                .iter()
                .any(|(k, v)| k == "transB" && matches!(v, AttrValue::Int(1)));
            // OpenVINO's MatMul reads B transposed (`[out, in]`, as PyTorch stores it) when
            // `transpose_b` is true, as its conversions of Linear layers say.
            let transpose_b = n.attributes.iter().any(|(k, v)| {
                k == "transpose_b" && matches!(v, AttrValue::String(s) if s == "true")
            });
            let rows_are_inputs = match &*n.op {
                "MatMul" if transpose_b => false,
                // Keras's Dense kernel is [in, out], as MatMul's.
                "MatMul" | "matmul" | "Dense" => true,
                // Core ML's inner product holds `[out, in]`, as ATen's linear does.
                "linear" | "FullyConnected" | "innerProduct" | "MatMulNBits" => false,
                _ => !trans_b,
            };
            Some((i, *w, rows_are_inputs))
        })
        .collect();
    if dense.len() >= 2 {
        let mut succ: HashMap<u32, Vec<u32>> = HashMap::new();
        for e in &g.edges {
            succ.entry(e.from).or_default().push(e.to);
        }
        let reaches = |from: usize, to: usize| {
            let mut frontier = vec![from as u32];
            for _ in 0..5 {
                let mut next = Vec::new();
                for f in frontier {
                    for &s in succ.get(&f).map(Vec::as_slice).unwrap_or_default() {
                        if s as usize == to {
                            return true;
                        }
                        next.push(s);
                    }
                }
                next.sort_unstable();
                next.dedup();
                frontier = next;
            }
            false
        };
        let layer_of = |&(_, t, rows_in): &(usize, TensorId, bool)| {
            view2(t).or_else(|| grouped_view(t)).map(|v| {
                let (o, i) = if rows_in {
                    (v.cols, v.rows)
                } else {
                    (v.rows, v.cols)
                };
                DenseLayer {
                    tensor: t,
                    in_features: i,
                    out_features: o,
                    rows_are_inputs: rows_in,
                }
            })
        };
        let mut chain: Vec<DenseLayer> = Vec::new();
        let mut first_node = 0usize;
        let mut prev: Option<usize> = None;
        let mut flush = |chain: &mut Vec<DenseLayer>, first: usize| {
            if chain.len() >= 2 {
                let name = g
                    .nodes
                    .get(first)
                    .map_or_else(String::new, |n| n.name.clone());
                out.push(DenseChain {
                    name,
                    layers: std::mem::take(chain),
                });
            }
            chain.clear();
        };
        for d in &dense {
            let Some(layer) = layer_of(d) else { continue };
            let connects = match (prev, chain.last()) {
                (Some(p), Some(last)) => last.out_features == layer.in_features && reaches(p, d.0),
                _ => false,
            };
            if !connects {
                flush(&mut chain, first_node);
                first_node = d.0;
            }
            chain.push(layer);
            prev = Some(d.0);
        }
        flush(&mut chain, first_node);
    }
    out
}

#[derive(Clone, Default)]
struct TopK {
    items: Vec<(f32, u32, f32)>, // (|w|, other neuron, w)
    // Smallest |w| kept once full: most candidates lose to it without scanning the k items.
    floor: f32,
}

impl TopK {
    fn push(&mut self, k: usize, other: u32, w: f32) {
        let a = w.abs();
        if a.is_nan() || k == 0 {
            return;
        }
        if self.items.len() < k {
            self.items.push((a, other, w));
            if self.items.len() == k {
                self.floor = self.min_abs();
            }
            return;
        }
        if a <= self.floor {
            return;
        }
        if let Some(min) = self.items.iter_mut().min_by(|x, y| x.0.total_cmp(&y.0)) {
            *min = (a, other, w);
        }
        self.floor = self.min_abs();
    }

    fn min_abs(&self) -> f32 {
        self.items.iter().map(|x| x.0).fold(f32::INFINITY, f32::min)
    }
}

/// Builds the neuron graph of a chain.
pub fn neuron_graph(
    m: &Model,
    chain: &DenseChain,
    opts: &NeuronOptions,
) -> Result<NeuronGraph, StatsError> {
    let sizes = chain.sizes();
    let total: u64 = sizes.iter().sum();
    if total > u64::from(u32::MAX) || sizes.len() < 2 {
        return Err(StatsError::Chain(format!(
            "{}: {total} neurons in {} columns",
            chain.name,
            sizes.len()
        )));
    }
    if chain
        .layers
        .windows(2)
        .any(|w| w[0].out_features != w[1].in_features)
    {
        return Err(StatsError::Chain(format!(
            "{}: layer sizes do not connect",
            chain.name
        )));
    }
    let mut g = NeuronGraph::default();
    let mut off = 0u32;
    for (l, &n) in sizes.iter().enumerate() {
        g.layer_sizes.push(n as u32);
        g.layer_offsets.push(off);
        let x = l as f32 * opts.layer_spacing;
        for j in 0..n {
            g.positions
                .push([x, (j as f32 - (n as f32 - 1.0) / 2.0) * opts.neuron_spacing]);
        }
        off += n as u32;
    }
    g.all_edges = chain.weights() <= opts.max_edges;
    let innermost_first = StatsOptions::for_model(m).innermost_first;
    for (l, layer) in chain.layers.iter().enumerate() {
        let t = m.tensors.get(layer.tensor as usize).ok_or_else(|| {
            StatsError::Chain(format!("{}: no tensor #{}", chain.name, layer.tensor))
        })?;
        let (bytes, elem) = checked(t)?;
        let bytes: &[u8] = &bytes;
        let view = HeatmapView::of(t, innermost_first);
        let (src_off, dst_off) = (
            g.layer_offsets.get(l).copied().unwrap_or(0),
            g.layer_offsets.get(l + 1).copied().unwrap_or(0),
        );
        let part = layer_edges(
            (elem, bytes, t.quant.as_ref()),
            view,
            layer.rows_are_inputs,
            src_off,
            dst_off,
            opts,
            g.all_edges,
        )?;
        g.edges.extend(part.0);
        g.top_edges.extend(part.1);
        g.abs_max = g.abs_max.max(part.2);
        g.layer_abs_max.push(part.2);
    }
    g.top_edges.sort_by_key(|e| (e.from, e.to));
    g.top_edges.dedup_by_key(|e| (e.from, e.to));
    Ok(g)
}

/// Row `r` of a matrix whose rows are `row_bytes` long into `out` (one row of values), as real
/// values and in logical order (values stored in a GPTQ or AWQ layout are gathered).
fn read_row(
    (elem, bytes, quant): (Elem, &[u8], Option<&Quant>),
    r: usize,
    row_bytes: usize,
    out: &mut [f64],
) {
    if quant.and_then(Quant::layout).is_some() {
        let mut buf = vec![0.0f64; 4096.max(elem.block().0)];
        if !super::heatmap::logical_row((elem, bytes, quant), r as u64, out, &mut buf) {
            out.fill(f64::NAN);
        }
        return;
    }
    let row = r
        .checked_mul(row_bytes)
        .and_then(|s| bytes.get(s..s.checked_add(row_bytes)?))
        .unwrap_or_default();
    elem.decode_into(row, out);
    if let Some(q) = quant {
        q.apply((r * out.len()) as u64, out);
    }
}

type LayerEdges = (Vec<NeuronEdge>, Vec<NeuronEdge>, f32);

#[allow(
    clippy::too_many_arguments,
    reason = "one private helper; a struct would only rename them"
)]
fn layer_edges(
    (elem, bytes, quant): (Elem, &[u8], Option<&Quant>),
    view: HeatmapView,
    rows_are_inputs: bool,
    src_off: u32,
    dst_off: u32,
    opts: &NeuronOptions,
    all: bool,
) -> Result<LayerEdges, StatsError> {
    let (be, bb) = elem.block();
    let cols =
        usize::try_from(view.cols).map_err(|_| StatsError::Chain("too many columns".into()))?;
    if cols == 0 || !cols.is_multiple_of(be) {
        return Err(StatsError::Chain(format!(
            "{cols} columns are not whole blocks"
        )));
    }
    let row_bytes = cols / be * bb;
    let k = opts.top_k;
    let edge = |r: usize, c: usize, w: f32| {
        let (s, d) = if rows_are_inputs { (r, c) } else { (c, r) };
        NeuronEdge {
            from: src_off + s as u32,
            to: dst_off + d as u32,
            weight: w,
        }
    };
    // Per row: the row's own top-k, all its edges if wanted, and per-column top-k candidates.
    let rows = bytes.len() / row_bytes.max(1);
    let (edges, row_top, col_top, abs_max) = (0..rows)
        .into_par_iter()
        .fold(
            || {
                (
                    Vec::new(),
                    Vec::new(),
                    vec![TopK::default(); cols],
                    0.0f32,
                    vec![0.0f64; cols],
                )
            },
            |(mut edges, mut row_top, mut col_top, mut amax, mut buf), r| {
                read_row((elem, bytes, quant), r, row_bytes, &mut buf);
                let mut mine = TopK::default();
                for (c, &x) in buf.iter().enumerate() {
                    let w = x as f32;
                    if all {
                        edges.push(edge(r, c, w));
                    }
                    if w.abs() > amax {
                        amax = w.abs();
                    }
                    mine.push(k, c as u32, w);
                    if let Some(t) = col_top.get_mut(c) {
                        t.push(k, r as u32, w);
                    }
                }
                row_top.extend(mine.items.iter().map(|&(_, c, w)| edge(r, c as usize, w)));
                (edges, row_top, col_top, amax, buf)
            },
        )
        .map(|(e, rt, ct, a, _)| (e, rt, ct, a))
        .reduce(
            || (Vec::new(), Vec::new(), vec![TopK::default(); cols], 0.0f32),
            |(mut e1, mut r1, mut c1, a1), (e2, r2, c2, a2)| {
                e1.extend(e2);
                r1.extend(r2);
                for (a, b) in c1.iter_mut().zip(c2) {
                    for (_, o, w) in b.items {
                        a.push(k, o, w);
                    }
                }
                (e1, r1, c1, a1.max(a2))
            },
        );
    let mut top = row_top;
    for (c, t) in col_top.into_iter().enumerate() {
        top.extend(t.items.into_iter().map(|(_, r, w)| edge(r as usize, c, w)));
    }
    let mut edges = edges;
    edges.sort_by_key(|e| (e.from, e.to));
    Ok((edges, top, abs_max))
}

/// Number of edges [`fan_edges`] produces for these bands: every edge out of `src` plus every edge
/// into `dst` (each counted once). Sizes come from the chain, so nothing is read.
pub fn fan_count(chain: &DenseChain, layer: usize, src: &Range<u32>, dst: &Range<u32>) -> u64 {
    let Some(l) = chain.layers.get(layer) else {
        return 0;
    };
    let band = |r: &Range<u32>, n: u64| u64::from(r.end).min(n).saturating_sub(u64::from(r.start));
    let s = band(src, l.in_features);
    let d = band(dst, l.out_features);
    // |S|·out + |D|·in − |S|·|D| (the edges from S to D are in both sets).
    s * l.out_features + d * l.in_features - s * d
}

/// Every weight of one layer that leaves a source neuron in `src` or enters a destination neuron in
/// `dst` (indices local to their columns), as edges with the graph's global neuron ids: what the
/// neuron view draws when zoomed in. Read on demand from the mapped tensor — whole stored rows for
/// the band on the row side, and for every other row only the block-aligned run of columns in the
/// band on the column side — so a 4096 × 11008 matrix is never decoded whole for a small view.
/// Fails (without allocating) when the fan would exceed `max_edges`.
pub fn fan_edges(
    m: &Model,
    chain: &DenseChain,
    g: &NeuronGraph,
    layer: usize,
    src: Range<u32>,
    dst: Range<u32>,
    max_edges: u64,
) -> Result<Vec<NeuronEdge>, StatsError> {
    let err = |what: String| StatsError::Chain(format!("{}: {what}", chain.name));
    let l = chain
        .layers
        .get(layer)
        .ok_or_else(|| err(format!("no layer {layer}")))?;
    let count = fan_count(chain, layer, &src, &dst);
    if count > max_edges {
        return Err(err(format!(
            "layer {layer}: {count} edges in view, over the limit of {max_edges}"
        )));
    }
    let t = m
        .tensors
        .get(l.tensor as usize)
        .ok_or_else(|| err(format!("no tensor #{}", l.tensor)))?;
    let (bytes, elem) = checked(t)?;
    let bytes: &[u8] = &bytes;
    let view = HeatmapView::of(t, StatsOptions::for_model(m).innermost_first);
    let (rows, cols) = if l.rows_are_inputs {
        (l.in_features, l.out_features)
    } else {
        (l.out_features, l.in_features)
    };
    if view.rows != rows || view.cols != cols {
        return Err(err(format!(
            "{}: stored {}×{}, expected {rows}×{cols}",
            t.name, view.rows, view.cols
        )));
    }
    let (be, bb) = elem.block();
    let cols_us = usize::try_from(cols).map_err(|_| err("too many columns".into()))?;
    if cols_us == 0 || !cols_us.is_multiple_of(be) {
        return Err(err(format!(
            "{}: {cols} columns are not whole blocks",
            t.name
        )));
    }
    let row_bytes = cols_us / be * bb;
    let clamp = |r: &Range<u32>, n: u64| {
        let end = u64::from(r.end).min(n) as usize;
        (r.start as usize).min(end)..end
    };
    // The band on the row side and on the column side of the stored matrix.
    let (row_band, col_band) = if l.rows_are_inputs {
        (clamp(&src, rows), clamp(&dst, cols))
    } else {
        (clamp(&dst, rows), clamp(&src, cols))
    };
    let src_off = g.layer_offsets.get(layer).copied().unwrap_or(0);
    let dst_off = g.layer_offsets.get(layer + 1).copied().unwrap_or(0);
    let edge = |r: usize, c: usize, w: f64| {
        let (s, d) = if l.rows_are_inputs { (r, c) } else { (c, r) };
        NeuronEdge {
            from: src_off + s as u32,
            to: dst_off + d as u32,
            weight: w as f32,
        }
    };
    // Block-aligned column run covering the column band.
    let c0 = col_band.start / be * be;
    let c1 = col_band.end.div_ceil(be) * be;
    let mut out = Vec::with_capacity(count as usize);
    let mut buf = vec![0.0f64; cols_us];
    let gathered = t.quant.as_ref().and_then(Quant::layout).is_some();
    for (r, row) in bytes.chunks_exact(row_bytes).enumerate() {
        if row_band.contains(&r) || (gathered && c1 > c0) {
            // Values not stored row-major are gathered a whole row at a time.
            read_row((elem, bytes, t.quant.as_ref()), r, row_bytes, &mut buf);
            if row_band.contains(&r) {
                out.extend(buf.iter().enumerate().map(|(c, &w)| edge(r, c, w)));
            } else {
                out.extend(
                    col_band
                        .clone()
                        .filter_map(|c| Some(edge(r, c, *buf.get(c)?))),
                );
            }
        } else if c1 > c0 {
            let part = row.get(c0 / be * bb..c1 / be * bb).unwrap_or_default();
            let Some(dec) = buf.get_mut(..c1 - c0) else {
                continue;
            };
            elem.decode_into(part, dec);
            if let Some(q) = &t.quant {
                q.apply((r * cols_us + c0) as u64, dec);
            }
            out.extend(col_band.clone().filter_map(|c| {
                let w = *dec.get(c - c0)?;
                Some(edge(r, c, w))
            }));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::model::{Format, Node, Value};

    #[test]
    fn checkpoint_mlp_becomes_a_neuron_graph() {
        let mut m = Model::new("m.safetensors", Format::Safetensors);
        // up: [3 out, 2 in], down: [2 out, 3 in] (PyTorch [out, in]).
        m.add_tensor(f32_tensor(
            "model.layers.0.mlp.up_proj.weight",
            &[3, 2],
            &[1.0, -2.0, 3.0, 0.5, 0.0, 9.0],
        ));
        m.add_tensor(f32_tensor(
            "model.layers.0.mlp.down_proj.weight",
            &[2, 3],
            &[1.0, 2.0, 3.0, 4.0, 5.0, -6.0],
        ));
        let chains = find_dense_chains(&m);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].name, "model.layers.0.mlp");
        assert_eq!(chains[0].sizes(), vec![2, 3, 2]);
        let g = neuron_graph(
            &m,
            &chains[0],
            &NeuronOptions {
                top_k: 1,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(g.layer_offsets, vec![0, 2, 5]);
        assert_eq!(g.positions.len(), 7);
        assert!(g.all_edges);
        assert_eq!(g.edges.len(), 12);
        // up_proj[2][1] = 9 is input 1 → hidden 2: neurons 1 → 4.
        assert!(g.edges.contains(&NeuronEdge {
            from: 1,
            to: 4,
            weight: 9.0
        }));
        // down_proj[1][2] = -6 is hidden 2 → output 1: neurons 4 → 6.
        assert!(g.edges.contains(&NeuronEdge {
            from: 4,
            to: 6,
            weight: -6.0
        }));
        assert_eq!(g.abs_max, 9.0);
        // Top-1 in and out: every neuron keeps its strongest link.
        assert!(g.top_edges.contains(&NeuronEdge {
            from: 1,
            to: 4,
            weight: 9.0
        }));
        assert!(g.top_edges.contains(&NeuronEdge {
            from: 0,
            to: 3,
            weight: 3.0
        }));
        for n in 0..7u32 {
            assert!(
                g.top_edges.iter().any(|e| e.from == n || e.to == n),
                "neuron {n} has no edge"
            );
        }
        assert!(g.top_edges.len() < g.edges.len());
        // Over the edge budget only the top edges are produced.
        let g = neuron_graph(
            &m,
            &chains[0],
            &NeuronOptions {
                max_edges: 5,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(!g.all_edges && g.edges.is_empty() && !g.top_edges.is_empty());
    }

    #[test]
    fn a_flax_kernel_chain_reads_rows_as_inputs_even_when_square() {
        // Flax / Keras Dense kernels are [in, out]; a square chain connects either way, so the
        // leaf decides: `kernel` rows are inputs, `weight` rows outputs.
        for (leaf, rows_are_inputs) in [("kernel", true), ("weight", false)] {
            let mut m = Model::new("m.msgpack", Format::Flax);
            m.add_tensor(f32_tensor(&format!("mlp.fc1.{leaf}"), &[2, 2], &[1.0; 4]));
            m.add_tensor(f32_tensor(&format!("mlp.fc2.{leaf}"), &[2, 2], &[1.0; 4]));
            let chains = find_dense_chains(&m);
            assert_eq!(chains.len(), 1, "{leaf}");
            assert_eq!(chains[0].name, "mlp");
            assert!(
                chains[0]
                    .layers
                    .iter()
                    .all(|l| l.rows_are_inputs == rows_are_inputs),
                "{leaf}"
            );
        }
        // Not square: the sizes decide, [16, 32] then [32, 8] is 16 → 32 → 8.
        let mut m = Model::new("m.msgpack", Format::Flax);
        m.add_tensor(f32_tensor("params/fc1/kernel", &[16, 32], &[0.5; 512]));
        m.add_tensor(f32_tensor("params/fc2/kernel", &[32, 8], &[0.5; 256]));
        let chains = find_dense_chains(&m);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].name, "params");
        assert_eq!(chains[0].sizes(), vec![16, 32, 8]);
    }

    #[test]
    fn onnx_matmul_chain_through_relu() {
        let mut m = Model::new("m.onnx", Format::Onnx);
        // MatMul weights are [in, out]: 4 → 3 → 2.
        let w1 = m.add_tensor(f32_tensor("W1", &[4, 3], &[0.0; 12]));
        let w2 = m.add_tensor(f32_tensor("W2", &[3, 2], &[1.0; 6]));
        let g = &mut m.graph;
        let vals: Vec<u32> = (0..4)
            .map(|i| {
                g.add_value(Value {
                    name: format!("v{i}"),
                    ..Default::default()
                })
            })
            .collect();
        let mut a = Node::new("mm1", "MatMul", NodeKind::Op);
        a.inputs = vec![Some(vals[0])];
        a.outputs = vec![vals[1]];
        a.tensors = vec![w1];
        let mut r = Node::new("relu", "Relu", NodeKind::Op);
        r.inputs = vec![Some(vals[1])];
        r.outputs = vec![vals[2]];
        let mut b = Node::new("mm2", "MatMul", NodeKind::Op);
        b.inputs = vec![Some(vals[2])];
        b.outputs = vec![vals[3]];
        b.tensors = vec![w2];
        g.add_node(a);
        g.add_node(r);
        g.add_node(b);
        g.connect_by_values();
        let chains = find_dense_chains(&m);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].sizes(), vec![4, 3, 2]);
        assert!(chains[0].layers.iter().all(|l| l.rows_are_inputs));
        let ng = neuron_graph(&m, &chains[0], &NeuronOptions::default()).unwrap();
        assert_eq!(ng.edges.len(), 18);
        assert!(ng.edges.contains(&NeuronEdge {
            from: 4 + 2,
            to: 7 + 1,
            weight: 1.0
        }));
    }
    #[test]
    fn fan_edges_are_the_band_of_all_edges() {
        for rows_in in [false, true] {
            let mut m = Model::new("m.safetensors", Format::Safetensors);
            let v1: Vec<f32> = (0..5 * 7).map(|i| (i as f32 * 0.37).sin()).collect();
            let v2: Vec<f32> = (0..7 * 3).map(|i| (i as f32 * 0.71).cos()).collect();
            // [out, in] unless rows are inputs.
            let (s1, s2) = if rows_in {
                ([5, 7], [7, 3])
            } else {
                ([7, 5], [3, 7])
            };
            m.add_tensor(f32_tensor("a.fc1.weight", &s1, &v1));
            m.add_tensor(f32_tensor("a.fc2.weight", &s2, &v2));
            // 5·7 and 7·3 connect only one way round, so `orient` settles the orientation.
            let chain = find_dense_chains(&m).remove(0);
            assert!(chain.layers.iter().all(|l| l.rows_are_inputs == rows_in));
            assert_eq!(chain.sizes(), vec![5, 7, 3]);
            let g = neuron_graph(&m, &chain, &NeuronOptions::default()).unwrap();
            assert_eq!(g.layer_abs_max.len(), 2);
            for (layer, src, dst) in [
                (0, 1..3, 2..4),
                (1, 0..0, 1..2),
                (1, 6..9, 0..0),
                (0, 0..5, 0..7),
            ] {
                let fan = fan_edges(&m, &chain, &g, layer, src.clone(), dst.clone(), 1000).unwrap();
                let (so, dof) = (g.layer_offsets[layer], g.layer_offsets[layer + 1]);
                let mut want: Vec<NeuronEdge> = g
                    .edges
                    .iter()
                    .copied()
                    .filter(|e| {
                        (e.from >= so && e.to >= dof && e.to < dof + g.layer_sizes[layer + 1])
                            && (src.contains(&(e.from - so)) || dst.contains(&(e.to - dof)))
                    })
                    .collect();
                let mut got = fan.clone();
                want.sort_by_key(|e| (e.from, e.to));
                got.sort_by_key(|e| (e.from, e.to));
                assert_eq!(got, want, "layer {layer} {src:?} {dst:?} rows_in {rows_in}");
                assert_eq!(fan.len() as u64, fan_count(&chain, layer, &src, &dst));
            }
            assert!(fan_edges(&m, &chain, &g, 0, 0..5, 0..7, 10).is_err());
            assert!(fan_edges(&m, &chain, &g, 9, 0..5, 0..7, 100).is_err());
        }
    }
}
