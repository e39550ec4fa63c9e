//! What changed between two checkpoints of one model: per tensor, the norm of the difference
//! relative to the first (‖B − A‖ / ‖A‖), the cosine between them, the largest change and where it
//! is, and how many values changed; tensors only one side has, and those whose shapes disagree.
//! `modelmap diff A B` prints it, and the structure view colours nodes by it (`Figure::Change`).
//!
//! How it works: tensors pair by name; names left over pair by a canonical form (`/` read as `.`,
//! a TensorFlow `:0` dropped, and wrapper prefixes that a checkpoint may or may not carry —
//! `module.` of DistributedDataParallel, `_orig_mod.` of `torch.compile`, `model.` /
//! `transformer.` / `base_model.` of a Hugging Face head around its base model — stripped), only
//! where that form is unique on both sides; tensors still left over pair by their values
//! (a fingerprint of count, sums and extremes: an exporter's `onnx::MatMul_16` holding a `Linear` weight transposed). A GGUF
//! against anything else reads llama.cpp's names as
//! the Hugging Face ones they were converted from ([`gguf_hf_name`]), its innermost-first shapes
//! turned round, and a LLaMA's attention q / k rows through the interleaving its converter applies
//! ([`RowMap`]), so what is left is what quantization lost. A pair with equal element counts and equal shapes
//! (leading or trailing 1s aside) is streamed in 64 k-element pieces in parallel: both sides are
//! decoded to reals in logical order (any dtype, quantized codes as their reals, GPTQ/AWQ layouts
//! gathered) and the sums of each piece merged, so memory stays flat and A and B may differ in
//! dtype (a bf16 base against its f32 fine-tune). Δ is B − A: what going from A to B did.
//!
//! Values count as changed when they differ as reals; NaN against NaN is unchanged, and a value
//! finite on one side only is counted apart (`nonfinite_mismatch`) and left out of the norms.
//!
//! Rejected: pairing by position or by shape (two checkpoints of one architecture list tensors in
//! different orders, and many tensors share a shape); comparing bytes (a dtype change would then
//! read as "everything changed").

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::decode::Elem;
use super::heatmap::for_logical_range;
use super::{StatsError, checked, once};
use crate::model::{Format, Model, Quant, Tensor, TensorId};

/// Elements per parallel piece.
const PIECE: u64 = 1 << 16;

/// What changed in one tensor present on both sides with the same shape.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TensorDiff {
    /// Its name in A.
    pub name: String,
    /// Its name in B, when that differs (paired by canonical name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_b: Option<String>,
    /// Index of the tensor in A's `tensors`.
    #[serde(skip)]
    pub tensor_a: TensorId,
    /// Paired by identical values rather than by name (an exporter's `onnx::MatMul_16`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub by_values: bool,
    /// B holds the matrix transposed (`[in, out]` against `[out, in]`); values are compared
    /// element for element of A.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub transposed: bool,
    /// A's dtype name.
    pub dtype_a: String,
    /// B's dtype name.
    pub dtype_b: String,
    /// A's shape.
    pub shape: Vec<u64>,
    /// Elements.
    pub count: u64,
    /// Elements whose values differ.
    pub changed: u64,
    /// Elements finite on one side and not on the other (or NaN against ±Inf).
    pub nonfinite_mismatch: u64,
    /// ‖A‖ over elements finite on both sides.
    pub norm_a: f64,
    /// ‖B‖ over the same elements.
    pub norm_b: f64,
    /// ‖B − A‖.
    pub diff_norm: f64,
    /// ‖B − A‖ / ‖A‖; `None` when A is all zeros (then any change is infinitely large).
    pub rel_change: Option<f64>,
    /// cos(A, B); `None` when either side is all zeros.
    pub cosine: Option<f64>,
    /// Mean of B − A.
    pub mean_diff: f64,
    /// Largest |B − A|.
    pub max_abs_diff: f64,
    /// Where it is, in the tensor's own shape order (empty when nothing changed).
    pub max_at: Vec<u64>,
    /// A's value there.
    pub max_a: f64,
    /// B's value there.
    pub max_b: f64,
}

impl TensorDiff {
    /// Whether every value is the same.
    pub fn identical(&self) -> bool {
        self.changed == 0 && self.nonfinite_mismatch == 0
    }

    /// The figure tensors are ranked by: relative change, an all-zero A that changed first.
    pub fn rank(&self) -> f64 {
        match self.rel_change {
            Some(r) => r,
            None if self.diff_norm > 0.0 || self.nonfinite_mismatch > 0 => f64::INFINITY,
            None => 0.0,
        }
    }
}

/// A tensor on both sides whose shapes disagree.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShapeMismatch {
    /// Its name in A.
    pub name: String,
    /// Its name in B, when that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_b: Option<String>,
    /// A's shape.
    pub shape_a: Vec<u64>,
    /// B's shape.
    pub shape_b: Vec<u64>,
}

/// A pair that could not be compared (unreadable data, a dtype without decoding).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PairError {
    /// Its name in A.
    pub name: String,
    /// Why.
    pub error: String,
}

/// Everything that differs between two models' tensors.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ModelDiff {
    /// A's file.
    pub file_a: String,
    /// B's file.
    pub file_b: String,
    /// Tensors of A.
    pub tensors_a: usize,
    /// Tensors of B.
    pub tensors_b: usize,
    /// Pairs compared, most changed first (identical ones last).
    pub tensors: Vec<TensorDiff>,
    /// Pairs made through canonical names rather than equal names.
    pub renamed: usize,
    /// Pairs made by identical values, their names having nothing in common.
    pub by_values: usize,
    /// Pairs whose shapes disagree.
    pub shape_mismatch: Vec<ShapeMismatch>,
    /// Pairs that could not be compared.
    pub errors: Vec<PairError>,
    /// Tensors only A has.
    pub only_a: Vec<String>,
    /// Tensors only B has.
    pub only_b: Vec<String>,
    /// The median ‖B − A‖ / ‖A‖ of the tensors that changed (a norm over every tensor together
    /// would be the change of a model's largest constants: an attention mask of −10⁹ outweighs
    /// every weight).
    pub median_rel_change: Option<f64>,
    /// Elements compared.
    pub compared_elements: u64,
    /// Elements that changed.
    pub changed_elements: u64,
}

impl ModelDiff {
    /// Pairs with no changed value.
    pub fn identical(&self) -> usize {
        self.tensors.iter().filter(|d| d.identical()).count()
    }

    /// Per tensor of A, its diff (`None` where it was not compared).
    pub fn by_tensor(&self, tensors_a: usize) -> Vec<Option<&TensorDiff>> {
        let mut v = vec![None; tensors_a];
        for d in &self.tensors {
            if let Some(slot) = v.get_mut(d.tensor_a as usize) {
                *slot = Some(d);
            }
        }
        v
    }
}

/// A name's canonical form for pairing tensors across checkpoints that wrap a model differently.
pub fn canonical_name(name: &str) -> String {
    let name = name.strip_suffix(":0").unwrap_or(name);
    let mut s: String = name
        .chars()
        .map(|c| if c == '/' { '.' } else { c })
        .collect();
    const WRAPPERS: [&str; 5] = [
        "module.",
        "_orig_mod.",
        "base_model.",
        "model.",
        "transformer.",
    ];
    while let Some(rest) = WRAPPERS.iter().find_map(|p| s.strip_prefix(p)) {
        if rest.is_empty() {
            break;
        }
        s = rest.to_string();
    }
    s
}

/// A llama.cpp tensor name as the Hugging Face name it was converted from, in
/// [`canonical_name`]'s form (`blk.3.attn_q.weight` → `layers.3.self_attn.q_proj.weight`), for
/// the LLaMA-style names that most GGUF architectures share (llama, mistral, qwen2, …); `None`
/// for any other.
pub fn gguf_hf_name(name: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.')?;
    if !matches!(suffix, "weight" | "bias") {
        return None;
    }
    let top = match stem {
        "token_embd" => Some("embed_tokens"),
        "output_norm" => Some("norm"),
        "output" => Some("lm_head"),
        _ => None,
    };
    if let Some(t) = top {
        return Some(format!("{t}.{suffix}"));
    }
    let rest = stem.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    layer.parse::<u64>().ok()?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        // Qwen3's and OLMo 2's per-head norms of q and k.
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("layers.{layer}.{hf}.{suffix}"))
}

/// Which tensors pair: `(a, b, by_canonical_name)`, then what is left of A, then of B.
type Pairing = (Vec<(usize, usize, bool)>, Vec<usize>, Vec<usize>);

/// Pairs A's tensors with B's.
fn pair(a: &Model, b: &Model) -> Pairing {
    let by_name: HashMap<&str, usize> = b
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut pairs = Vec::new();
    let mut b_used = vec![false; b.tensors.len()];
    let mut a_left = Vec::new();
    for (i, t) in a.tensors.iter().enumerate() {
        match by_name.get(t.name.as_str()) {
            Some(&j) if !b_used[j] => {
                b_used[j] = true;
                pairs.push((i, j, false));
            }
            _ => a_left.push(i),
        }
    }
    let b_left: Vec<usize> = (0..b.tensors.len()).filter(|&j| !b_used[j]).collect();
    // A GGUF against anything else: llama.cpp's names read as the Hugging Face ones.
    let cross = (a.format == Format::Gguf) != (b.format == Format::Gguf);
    let group = |m: &Model, idx: &[usize]| {
        let mut g: HashMap<String, Vec<usize>> = HashMap::new();
        for &i in idx {
            let name = &m.tensors[i].name;
            let key = (cross && m.format == Format::Gguf)
                .then(|| gguf_hf_name(name))
                .flatten()
                .unwrap_or_else(|| canonical_name(name));
            g.entry(key).or_default().push(i);
        }
        g
    };
    let (ga, gb) = (group(a, &a_left), group(b, &b_left));
    let mut a_paired = vec![false; a.tensors.len()];
    for (key, ia) in &ga {
        if let (&[i], Some(&[j])) = (ia.as_slice(), gb.get(key).map(Vec::as_slice)) {
            pairs.push((i, j, true));
            a_paired[i] = true;
            b_used[j] = true;
        }
    }
    pairs.sort_unstable();
    let only_a = a_left.into_iter().filter(|&i| !a_paired[i]).collect();
    let only_b = (0..b.tensors.len()).filter(|&j| !b_used[j]).collect();
    (pairs, only_a, only_b)
}

/// A shape with its leading and trailing 1s dropped (`[1, 4096]` and `[4096]` hold the same).
fn squeezed(shape: &[u64]) -> &[u64] {
    let start = shape.iter().position(|&d| d != 1).unwrap_or(shape.len());
    let end = shape.iter().rposition(|&d| d != 1).map_or(start, |e| e + 1);
    &shape[start..end]
}

/// A tensor's shape outermost dimension first (GGUF lists it innermost first; the values lie the
/// same way in memory either way).
fn outer_first(m: &Model, t: &Tensor) -> Vec<u64> {
    let mut s = t.shape.clone();
    if m.format == Format::Gguf {
        s.reverse();
    }
    s
}

/// Sums over a piece of both tensors.
#[derive(Clone, Copy, Debug)]
struct Acc {
    a2: f64,
    b2: f64,
    d2: f64,
    ab: f64,
    d_sum: f64,
    n: u64,
    changed: u64,
    nonfinite: u64,
    max_abs: f64,
    max_idx: u64,
    max_a: f64,
    max_b: f64,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            a2: 0.0,
            b2: 0.0,
            d2: 0.0,
            ab: 0.0,
            d_sum: 0.0,
            n: 0,
            changed: 0,
            nonfinite: 0,
            max_abs: -1.0,
            max_idx: 0,
            max_a: 0.0,
            max_b: 0.0,
        }
    }
}

impl Acc {
    fn merge(mut self, o: Acc) -> Acc {
        self.a2 += o.a2;
        self.b2 += o.b2;
        self.d2 += o.d2;
        self.ab += o.ab;
        self.d_sum += o.d_sum;
        self.n += o.n;
        self.changed += o.changed;
        self.nonfinite += o.nonfinite;
        // Ties go to the earlier element, whichever order the pieces merge in.
        if o.max_abs > self.max_abs || (o.max_abs == self.max_abs && o.max_idx < self.max_idx) {
            self.max_abs = o.max_abs;
            self.max_idx = o.max_idx;
            self.max_a = o.max_a;
            self.max_b = o.max_b;
        }
        self
    }

    fn add(&mut self, first: u64, a: &[f64], b: &[f64]) {
        for (k, (&x, &y)) in a.iter().zip(b).enumerate() {
            if x.is_finite() && y.is_finite() {
                let d = y - x;
                self.a2 += x * x;
                self.b2 += y * y;
                self.d2 += d * d;
                self.ab += x * y;
                self.d_sum += d;
                self.n += 1;
                if d != 0.0 {
                    self.changed += 1;
                    if d.abs() > self.max_abs {
                        self.max_abs = d.abs();
                        self.max_idx = first + k as u64;
                        self.max_a = x;
                        self.max_b = y;
                    }
                }
            } else if !(x.is_nan() && y.is_nan()) && x != y {
                self.nonfinite += 1;
                self.changed += 1;
            }
        }
    }
}

/// One side of a pair while it is read: its bytes, decoder and quantization.
struct Side<'a> {
    bytes: crate::model::TensorBytes<'a>,
    elem: Elem,
    quant: Option<&'a Quant>,
    /// Values per logical row when the values are not in row-major order (GPTQ/AWQ): pieces are
    /// then read a row at a time.
    row: Option<u64>,
    /// Where the other side's rows lie in this one, when they lie elsewhere.
    rows: Option<RowMap>,
}

impl<'a> Side<'a> {
    fn of(t: &'a Tensor, rows: Option<RowMap>) -> Result<Side<'a>, StatsError> {
        let (bytes, elem) = checked(t)?;
        let quant = t.quant.as_ref();
        let row = quant
            .and_then(Quant::layout)
            .map(|_| t.shape.last().copied().unwrap_or(1).max(1))
            .or(rows.map(|m| m.cols));
        Ok(Side {
            bytes,
            elem,
            quant,
            row,
            rows,
        })
    }

    /// The reals of logical elements `lo..hi` (of the other side's order) into `out` (cleared
    /// first).
    fn read(&self, lo: u64, hi: u64, buf: &mut [f64], out: &mut Vec<f64>) {
        out.clear();
        let src = (self.elem, &self.bytes[..], self.quant);
        let mut a = lo;
        while a < hi {
            // A layout's or a row map's pieces stay inside one row.
            let b = match self.row {
                Some(r) => hi.min((a / r + 1) * r),
                None => hi,
            };
            let at = match self.rows {
                Some(m) => m.at(a),
                None => a,
            };
            for_logical_range(src, at, at + (b - a), buf, |_, v| out.extend_from_slice(v));
            a = b;
        }
    }
}

/// The rows of one side of a pair in a different order from the other's: llama.cpp's
/// `convert_hf_to_gguf.py` stores a LLaMA's attention q and k weights with the two halves of each
/// head's rows interleaved (`LlamaModel.permute`, for its rotary embedding), so row `r` of the
/// Hugging Face weight is another row of the GGUF one, or the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowMap {
    /// Values per row.
    cols: u64,
    /// Rows per head.
    head_rows: u64,
    /// Whether this side is the GGUF one (Hugging Face row → GGUF row); else the inverse.
    to_gguf: bool,
}

impl RowMap {
    /// Where logical element `e` of the other side lies in this one.
    fn at(self, e: u64) -> u64 {
        let (r, c) = (e / self.cols, e % self.cols);
        let (h, w) = (r / self.head_rows, r % self.head_rows);
        let half = self.head_rows / 2;
        let w = if self.to_gguf {
            // (s, j) of the Hugging Face row lies at (j, s) of the GGUF one.
            (w % half) * 2 + w / half
        } else {
            (w % 2) * half + w / 2
        };
        (h * self.head_rows + w) * self.cols + c
    }
}

/// A LLaMA-architecture GGUF's attention q / k weight paired with its Hugging Face original: how
/// the GGUF's rows are ordered against it (`None` for every other pair).
fn gguf_rows(a: &Model, ta: &Tensor, b: &Model, tb: &Tensor) -> Option<(RowMap, bool)> {
    let (g, t, gguf_is_b) = match (a.format == Format::Gguf, b.format == Format::Gguf) {
        (false, true) => (b, tb, true),
        (true, false) => (a, ta, false),
        _ => return None,
    };
    if g.metadata.architecture.as_deref() != Some("llama") {
        return None;
    }
    let key = if t.name.ends_with(".attn_q.weight") {
        "llama.attention.head_count"
    } else if t.name.ends_with(".attn_k.weight") {
        "llama.attention.head_count_kv"
    } else {
        return None;
    };
    let property = |k: &str| {
        g.metadata
            .properties
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let heads = property(key).or_else(|| property("llama.attention.head_count"))?;
    // GGUF shapes list the innermost dimension first: [cols, rows].
    let (&cols, &rows) = (t.shape.first()?, t.shape.get(1)?);
    if t.shape.len() != 2 || heads == 0 || rows % (2 * heads) != 0 {
        return None;
    }
    let map = RowMap {
        cols,
        head_rows: rows / heads,
        to_gguf: gguf_is_b,
    };
    Some((map, gguf_is_b))
}

/// The row maps of a pair's two sides (A's, B's): the GGUF side's rows read through the map.
fn row_maps(a: &Model, ta: &Tensor, b: &Model, tb: &Tensor) -> (Option<RowMap>, Option<RowMap>) {
    match gguf_rows(a, ta, b, tb) {
        // B is the GGUF: A's row r is B's row perm(r).
        Some((m, true)) => (None, Some(m)),
        // A is the GGUF: the pass walks A's rows, so B (Hugging Face) is read through the inverse.
        Some((m, false)) => (
            None,
            Some(RowMap {
                to_gguf: false,
                ..m
            }),
        ),
        None => (None, None),
    }
}

/// Logical elements `lo..hi` of a tensor as reals (quantized codes as what they stand for).
pub(crate) fn values_range(t: &Tensor, lo: u64, hi: u64) -> Result<Vec<f64>, StatsError> {
    let side = Side::of(t, None)?;
    let mut buf = vec![0.0f64; 4096.max(side.elem.block().0)];
    let mut out = Vec::new();
    side.read(lo, hi, &mut buf, &mut out);
    if out.len() as u64 != hi - lo {
        return Err(StatsError::Data {
            tensor: t.name.clone(),
            message: "the values end early".into(),
        });
    }
    Ok(out)
}

/// A tensor's values as reals, in logical order (quantized codes as what they stand for).
pub(crate) fn values(t: &Tensor) -> Result<Vec<f64>, StatsError> {
    let side = Side::of(t, None)?;
    let mut buf = vec![0.0f64; 4096.max(side.elem.block().0)];
    let mut out = Vec::new();
    side.read(0, t.elements(), &mut buf, &mut out);
    if out.len() as u64 != t.elements() {
        return Err(StatsError::Data {
            tensor: t.name.clone(),
            message: "the values end early".into(),
        });
    }
    Ok(out)
}

/// Compares two tensors of equal element count, value by value (shape indices reported
/// innermost-first when `innermost_first`, as GGUF lists them).
pub fn tensor_diff(
    a: &Tensor,
    b: &Tensor,
    innermost_first: bool,
) -> Result<TensorDiff, StatsError> {
    tensor_diff_mapped(a, b, innermost_first, (None, None))
}

fn tensor_diff_mapped(
    a: &Tensor,
    b: &Tensor,
    innermost_first: bool,
    maps: (Option<RowMap>, Option<RowMap>),
) -> Result<TensorDiff, StatsError> {
    let (ta, tb) = (once(a), once(b));
    let (sa, sb) = (Side::of(&ta, maps.0)?, Side::of(&tb, maps.1)?);
    let n = a.elements();
    let buf_len = 4096.max(sa.elem.block().0).max(sb.elem.block().0);
    let acc = (0..n.div_ceil(PIECE))
        .into_par_iter()
        .map_init(
            || (vec![0.0f64; buf_len], Vec::new(), Vec::new()),
            |(buf, va, vb), p| {
                let (lo, hi) = (p * PIECE, n.min((p + 1) * PIECE));
                sa.read(lo, hi, buf, va);
                sb.read(lo, hi, buf, vb);
                let mut acc = Acc::default();
                if va.len() as u64 == hi - lo && vb.len() == va.len() {
                    acc.add(lo, va, vb);
                }
                acc
            },
        )
        .reduce(Acc::default, Acc::merge);
    for side in [&sa, &sb] {
        super::release_large(&side.bytes);
    }
    Ok(finish(a, b, acc, innermost_first))
}

/// The figures of a pair from its sums.
fn finish(a: &Tensor, b: &Tensor, acc: Acc, innermost_first: bool) -> TensorDiff {
    let (na, nb) = (acc.a2.sqrt(), acc.b2.sqrt());
    let max_at = if acc.max_abs < 0.0 {
        Vec::new()
    } else if innermost_first {
        let rev: Vec<u64> = a.shape.iter().rev().copied().collect();
        let mut idx = super::heatmap::unravel(acc.max_idx, &rev);
        idx.reverse();
        idx
    } else {
        super::heatmap::unravel(acc.max_idx, &a.shape)
    };
    let changed_any = acc.max_abs >= 0.0;
    TensorDiff {
        name: a.name.clone(),
        name_b: (a.name != b.name).then(|| b.name.clone()),
        tensor_a: 0,
        by_values: false,
        transposed: false,
        dtype_a: a.dtype.name().to_string(),
        dtype_b: b.dtype.name().to_string(),
        shape: a.shape.clone(),
        count: a.elements(),
        changed: acc.changed,
        nonfinite_mismatch: acc.nonfinite,
        norm_a: na,
        norm_b: nb,
        diff_norm: acc.d2.sqrt(),
        rel_change: (na > 0.0).then(|| acc.d2.sqrt() / na),
        cosine: (na > 0.0 && nb > 0.0).then(|| (acc.ab / (na * nb)).clamp(-1.0, 1.0)),
        mean_diff: if acc.n > 0 {
            acc.d_sum / acc.n as f64
        } else {
            0.0
        },
        max_abs_diff: acc.max_abs.max(0.0),
        max_at,
        max_a: if changed_any { acc.max_a } else { 0.0 },
        max_b: if changed_any { acc.max_b } else { 0.0 },
    }
}

/// Tensors with fewer values are not paired by their values (shape constants, scalars).
const MIN_VALUES_TO_PAIR: u64 = 16;

/// What pairs two tensors by their values, whatever their order: count, sum, sum of squares,
/// least and largest.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Fingerprint {
    n: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
}

impl Fingerprint {
    fn of(t: &Tensor) -> Option<Fingerprint> {
        let n = t.elements();
        if n < MIN_VALUES_TO_PAIR {
            return None;
        }
        let t = once(t);
        let side = Side::of(&t, None).ok()?;
        let mut buf = vec![0.0f64; 4096.max(side.elem.block().0)];
        let mut piece = Vec::new();
        let mut f = Fingerprint {
            n: 0,
            sum: 0.0,
            sum_sq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        };
        // Streamed in pieces: a leftover embedding is not copied whole.
        let mut lo = 0;
        while lo < n {
            let hi = n.min(lo + PIECE);
            side.read(lo, hi, &mut buf, &mut piece);
            if piece.len() as u64 != hi - lo || piece.iter().any(|x| !x.is_finite()) {
                return None;
            }
            f.n += piece.len() as u64;
            f.sum += piece.iter().sum::<f64>();
            f.sum_sq += piece.iter().map(|x| x * x).sum::<f64>();
            f.min = piece.iter().copied().fold(f.min, f64::min);
            f.max = piece.iter().copied().fold(f.max, f64::max);
            lo = hi;
        }
        super::release_large(&side.bytes);
        // An all-equal tensor (zeros, ones) matches every other of its size.
        (f.max > f.min).then_some(f)
    }

    /// The same values, up to the order the sums were taken in.
    fn matches(&self, o: &Fingerprint) -> bool {
        let close =
            |x: f64, y: f64, scale: f64| (x - y).abs() <= 1e-9 * scale.max(f64::MIN_POSITIVE);
        self.n == o.n
            && self.min == o.min
            && self.max == o.max
            && close(self.sum_sq, o.sum_sq, self.sum_sq)
            && close(self.sum, o.sum, (self.sum_sq * self.n as f64).sqrt())
    }
}

/// Pairs the tensors left over after names by identical values: `(a, b, transposed)` for each A
/// tensor whose values exactly one B tensor holds (and the other way round), in the same shape or
/// as the transposed matrix (how `torch.onnx.export` stores a `Linear` weight for a `MatMul`).
fn pair_by_values(
    a: &Model,
    b: &Model,
    only_a: &[usize],
    only_b: &[usize],
) -> Vec<(usize, usize, bool)> {
    if only_a.is_empty() || only_b.is_empty() {
        return Vec::new();
    }
    let prints = |m: &Model, idx: &[usize]| -> Vec<(usize, Fingerprint)> {
        idx.par_iter()
            .filter_map(|&i| Fingerprint::of(&m.tensors[i]).map(|f| (i, f)))
            .collect()
    };
    let (fa, fb) = (prints(a, only_a), prints(b, only_b));
    let mut out = Vec::new();
    for &(i, f) in &fa {
        let mut hits = fb.iter().filter(|(_, g)| f.matches(g));
        let (Some(&(j, g)), None) = (hits.next(), hits.next()) else {
            continue;
        };
        if fa.iter().filter(|(_, h)| h.matches(&g)).count() != 1 {
            continue;
        }
        let (sa, sb) = (outer_first(a, &a.tensors[i]), outer_first(b, &b.tensors[j]));
        let (sa, sb) = (squeezed(&sa), squeezed(&sb));
        if sa == sb {
            out.push((i, j, false));
        } else if sa.len() == 2 && sb.len() == 2 && sa[0] == sb[1] && sa[1] == sb[0] {
            out.push((i, j, true));
        }
    }
    out
}

/// B's values in A's order for a pair whose B holds the transpose of A's `[rows, cols]` matrix.
fn transposed_values(b: &Tensor, rows: usize, cols: usize) -> Result<Vec<f64>, StatsError> {
    let v = values(&once(b))?;
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = v[c * rows + r];
        }
    }
    Ok(out)
}

/// `(rows, cols)` of a 2-D tensor with its 1s dropped.
fn matrix_dims(m: &Model, t: &Tensor) -> (usize, usize) {
    let s = outer_first(m, t);
    let s = squeezed(&s);
    match s {
        [r, c] => (*r as usize, *c as usize),
        _ => (0, 0),
    }
}

/// Most values of a transposed pair (both sides are read whole, as f64).
const MAX_TRANSPOSED: u64 = 1 << 26;

/// Compares a pair whose B holds A's matrix transposed (in memory: both are read whole).
fn transposed_diff(a: &Model, ta: &Tensor, tb: &Tensor) -> Result<TensorDiff, StatsError> {
    if ta.elements() > MAX_TRANSPOSED {
        return Err(StatsError::Data {
            tensor: ta.name.clone(),
            message: format!(
                "{} values held transposed by {}: more than the {MAX_TRANSPOSED} compared that way",
                ta.elements(),
                tb.name
            ),
        });
    }
    let (rows, cols) = matrix_dims(a, ta);
    let va = values(&once(ta))?;
    let vb = transposed_values(tb, rows, cols)?;
    let mut acc = Acc::default();
    acc.add(0, &va, &vb);
    let mut d = finish(ta, tb, acc, a.format == Format::Gguf);
    d.transposed = true;
    Ok(d)
}

/// Compares every tensor of `a` with its counterpart in `b`, in parallel. `progress(done, total)`
/// is called after each pair; once `stop()` is true no further pair is started (those come back
/// as errors saying so).
pub fn diff_models(
    a: &Model,
    b: &Model,
    progress: &(dyn Fn(usize, usize) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> ModelDiff {
    let (mut pairs, mut only_a, mut only_b) = pair(a, b);
    let by_values = pair_by_values(a, b, &only_a, &only_b);
    let transposed: std::collections::HashSet<usize> =
        by_values.iter().filter(|p| p.2).map(|p| p.0).collect();
    let valued: std::collections::HashSet<usize> = by_values.iter().map(|p| p.0).collect();
    only_a.retain(|i| !valued.contains(i));
    only_b.retain(|j| !by_values.iter().any(|p| p.1 == *j));
    let renamed = pairs.iter().filter(|p| p.2).count();
    pairs.extend(by_values.iter().map(|&(i, j, _)| (i, j, true)));
    let innermost_first = a.format == Format::Gguf;
    let total = pairs.len();
    let done = AtomicUsize::new(0);
    enum Outcome {
        Diff(TensorDiff),
        Shape(ShapeMismatch),
        Error(PairError),
    }
    let outcomes: Vec<Outcome> = pairs
        .par_iter()
        .map(|&(i, j, _)| {
            let (ta, tb) = (&a.tensors[i], &b.tensors[j]);
            let name_b = (ta.name != tb.name).then(|| tb.name.clone());
            let (sa, sb) = (outer_first(a, ta), outer_first(b, tb));
            let out = if transposed.contains(&i) {
                match transposed_diff(a, ta, tb) {
                    Ok(mut d) => {
                        d.tensor_a = i as TensorId;
                        d.by_values = true;
                        Outcome::Diff(d)
                    }
                    Err(e) => Outcome::Error(PairError {
                        name: ta.name.clone(),
                        error: e.to_string(),
                    }),
                }
            } else if squeezed(&sa) != squeezed(&sb) {
                Outcome::Shape(ShapeMismatch {
                    name: ta.name.clone(),
                    name_b,
                    shape_a: ta.shape.clone(),
                    shape_b: tb.shape.clone(),
                })
            } else if stop() {
                Outcome::Error(PairError {
                    name: ta.name.clone(),
                    error: "comparison cancelled".into(),
                })
            } else {
                match tensor_diff_mapped(ta, tb, innermost_first, row_maps(a, ta, b, tb)) {
                    Ok(mut d) => {
                        d.tensor_a = i as TensorId;
                        d.by_values = valued.contains(&i);
                        Outcome::Diff(d)
                    }
                    Err(e) => Outcome::Error(PairError {
                        name: ta.name.clone(),
                        error: e.to_string(),
                    }),
                }
            };
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            out
        })
        .collect();
    let mut out = ModelDiff {
        file_a: a.source.display().to_string(),
        file_b: b.source.display().to_string(),
        tensors_a: a.tensors.len(),
        tensors_b: b.tensors.len(),
        renamed,
        by_values: by_values.len(),
        only_a: only_a.iter().map(|&i| a.tensors[i].name.clone()).collect(),
        only_b: only_b.iter().map(|&j| b.tensors[j].name.clone()).collect(),
        ..Default::default()
    };
    for o in outcomes {
        match o {
            Outcome::Diff(d) => {
                out.compared_elements += d.count;
                out.changed_elements += d.changed;
                out.tensors.push(d);
            }
            Outcome::Shape(s) => out.shape_mismatch.push(s),
            Outcome::Error(e) => out.errors.push(e),
        }
    }
    let mut changed: Vec<f64> = out
        .tensors
        .iter()
        .filter(|d| !d.identical())
        .map(TensorDiff::rank)
        .collect();
    changed.sort_by(f64::total_cmp);
    out.median_rel_change = changed.get(changed.len() / 2).copied();
    // Most changed first; equal figures keep A's order.
    out.tensors.sort_by(|x, y| {
        y.rank()
            .total_cmp(&x.rank())
            .then(x.tensor_a.cmp(&y.tensor_a))
    });
    out
}

/// B − A as f32 values, element by element in A's logical order (NaN where either side is NaN,
/// ±Inf where it is infinite).
fn delta_bytes(
    a: &Tensor,
    b: &Tensor,
    maps: (Option<RowMap>, Option<RowMap>),
) -> Result<bytes::Bytes, String> {
    let (ta, tb) = (once(a), once(b));
    let (sa, sb) = (
        Side::of(&ta, maps.0).map_err(|e| e.to_string())?,
        Side::of(&tb, maps.1).map_err(|e| e.to_string())?,
    );
    let n = a.elements();
    let len = n
        .checked_mul(4)
        .and_then(|l| usize::try_from(l).ok())
        .ok_or_else(|| format!("tensor {}: {n} values do not fit in memory", a.name))?;
    let mut out = vec![0u8; len];
    let buf_len = 4096.max(sa.elem.block().0).max(sb.elem.block().0);
    out.par_chunks_mut(PIECE as usize * 4)
        .enumerate()
        .for_each_init(
            || (vec![0.0f64; buf_len], Vec::new(), Vec::new()),
            |(buf, va, vb), (p, chunk)| {
                let lo = p as u64 * PIECE;
                let hi = lo + chunk.len() as u64 / 4;
                sa.read(lo, hi, buf, va);
                sb.read(lo, hi, buf, vb);
                for (k, o) in chunk.chunks_exact_mut(4).enumerate() {
                    let d = match (va.get(k), vb.get(k)) {
                        (Some(x), Some(y)) => (y - x) as f32,
                        _ => f32::NAN,
                    };
                    o.copy_from_slice(&d.to_le_bytes());
                }
            },
        );
    Ok(bytes::Bytes::from(out))
}

/// B − A as f32 for a pair whose B holds A's `[rows, cols]` matrix transposed.
fn transposed_delta(
    a: &Tensor,
    b: &Tensor,
    rows: usize,
    cols: usize,
) -> Result<bytes::Bytes, String> {
    if a.elements() > MAX_TRANSPOSED {
        return Err(format!("{}: too large to compare transposed", a.name));
    }
    let va = values(&once(a)).map_err(|e| e.to_string())?;
    let vb = transposed_values(b, rows, cols).map_err(|e| e.to_string())?;
    Ok(va
        .iter()
        .zip(&vb)
        .flat_map(|(x, y)| ((y - x) as f32).to_le_bytes())
        .collect::<Vec<u8>>()
        .into())
}

/// A model to look at what changed: A's graph, groups and names, each compared tensor holding
/// B − A as f32 (made on first use, as a compressed checkpoint's arrays are, so opening it reads
/// nothing); tensors not compared hold no data. Heatmaps, statistics, hover values and the anomaly
/// finder then all show the change. Its `source` names both files (`B − A`), a path that does not
/// exist, so nothing about it is cached on disk under A's name.
pub fn delta_model(a: &Model, b: &Model, d: &ModelDiff) -> Model {
    let mut m = a.clone();
    m.source = std::path::PathBuf::from(format!("{} − {}", b.source.display(), a.source.display()));
    let by_a: HashMap<TensorId, &TensorDiff> = d.tensors.iter().map(|t| (t.tensor_a, t)).collect();
    let b_index: HashMap<&str, usize> = b
        .tensors
        .iter()
        .enumerate()
        .map(|(j, t)| (t.name.as_str(), j))
        .collect();
    for (i, t) in m.tensors.iter_mut().enumerate() {
        let pair = by_a.get(&(i as TensorId)).and_then(|diff| {
            let name_b = diff.name_b.as_deref().unwrap_or(&diff.name);
            b_index.get(name_b).map(|&j| (diff, &b.tensors[j]))
        });
        let Some((diff, tb)) = pair else {
            t.data = crate::model::TensorData::Missing;
            continue;
        };
        let maps = row_maps(a, t, b, tb);
        let transposed = diff.transposed.then(|| matrix_dims(a, t));
        let (ta, tb) = (t.clone(), tb.clone());
        let key = crate::model::key_of(&(&m.source, &ta.name, ta.data_addr(), tb.data_addr()));
        let len = diff.count.saturating_mul(4);
        t.data = crate::model::TensorData::Lazy(std::sync::Arc::new(crate::model::LazyBytes::new(
            len,
            key,
            move || match transposed {
                Some((rows, cols)) => transposed_delta(&ta, &tb, rows, cols),
                None => delta_bytes(&ta, &tb, maps),
            },
        )));
        t.dtype = crate::model::DType::F32;
        t.quant = None;
    }
    m.metadata.properties.insert(
        0,
        (
            "diff".to_string(),
            format!(
                "{} − {}: {} of {} compared tensors changed",
                b.source.display(),
                a.source.display(),
                d.tensors.len() - d.identical(),
                d.tensors.len()
            ),
        ),
    );
    if !d.only_a.is_empty() || !d.shape_mismatch.is_empty() {
        m.metadata.warnings.push(format!(
            "{} tensors of {} have no counterpart of the same shape in {}; they show no data",
            d.only_a.len() + d.shape_mismatch.len(),
            a.source.display(),
            b.source.display()
        ));
    }
    m
}

/// What A is compared with when B was opened from `b`: B itself, or, when B is a LoRA adapter,
/// A with the adapter merged in ([`super::lora::apply_adapter`]).
pub fn counterpart(a: &Model, b: Model) -> Result<Model, String> {
    if super::lora::is_adapter(&b) {
        super::lora::apply_adapter(a, &b)
    } else {
        Ok(b)
    }
}

/// Per node of `m` (compared as A), its change mapped to 0..=1 for the colour-by overlay (NaN
/// where none of its tensors was compared).
pub fn change_overlay(m: &Model, d: &ModelDiff) -> Vec<f32> {
    use super::overlay::{Figure, NodeFigures, overlay_values, set_change};
    let mut figs = vec![NodeFigures::default(); m.graph.nodes.len()];
    set_change(&mut figs, m, d);
    overlay_values(&figs, Figure::Change)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::model::{DType, TensorData};

    fn model(name: &str, tensors: Vec<Tensor>) -> Model {
        let mut m = Model::new(name, Format::Safetensors);
        for t in tensors {
            m.add_tensor(t);
        }
        m
    }

    fn bf16(v: &[f32]) -> Vec<u8> {
        v.iter()
            .flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes())
            .collect()
    }

    #[test]
    fn figures_of_a_changed_tensor() {
        let a = f32_tensor("w", &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let b = f32_tensor("w", &[2, 2], &[1.0, 2.0, 3.0, 1.0]);
        let d = tensor_diff(&a, &b, false).unwrap();
        assert_eq!(d.changed, 1);
        assert_eq!(d.max_abs_diff, 3.0);
        assert_eq!(d.max_at, vec![1, 1]);
        assert_eq!((d.max_a, d.max_b), (4.0, 1.0));
        assert!((d.norm_a - 30f64.sqrt()).abs() < 1e-12);
        assert!((d.rel_change.unwrap() - 3.0 / 30f64.sqrt()).abs() < 1e-12);
        assert!((d.cosine.unwrap() - 18.0 / (30f64.sqrt() * 15f64.sqrt())).abs() < 1e-12);
        assert!((d.mean_diff + 0.75).abs() < 1e-12);
    }

    #[test]
    fn dtypes_may_differ_and_equal_values_are_unchanged() {
        let vals: Vec<f32> = (0..300_000).map(|i| (i as f32 * 0.37).sin()).collect();
        // bf16 values are exact in f32: an f32 copy of a bf16 tensor is unchanged.
        let a = tensor("w", DType::BF16, &[600, 500], bf16(&vals));
        let widened: Vec<f32> = vals
            .iter()
            .map(|x| f32::from_bits(x.to_bits() & 0xffff_0000))
            .collect();
        let mut changed = widened.clone();
        changed[123_456] += 0.5;
        let b = f32_tensor("w", &[600, 500], &widened);
        let c = f32_tensor("w", &[600, 500], &changed);
        let same = tensor_diff(&a, &b, false).unwrap();
        assert!(same.identical(), "{same:?}");
        assert_eq!(same.rel_change, Some(0.0));
        let one = tensor_diff(&a, &c, false).unwrap();
        assert_eq!(one.changed, 1);
        assert_eq!(one.max_at, vec![246, 456]);
        assert!((one.max_abs_diff - 0.5).abs() < 1e-6);
    }

    #[test]
    fn nonfinite_values_are_counted_apart() {
        let a = f32_tensor("w", &[3], &[f32::NAN, 1.0, 2.0]);
        let b = f32_tensor("w", &[3], &[f32::NAN, f32::INFINITY, 2.0]);
        let d = tensor_diff(&a, &b, false).unwrap();
        assert_eq!((d.changed, d.nonfinite_mismatch), (1, 1));
        assert_eq!(d.diff_norm, 0.0);
        assert!(!d.identical());
    }

    #[test]
    fn tensors_pair_by_name_then_by_canonical_name() {
        let a = model(
            "a.safetensors",
            vec![
                f32_tensor("model.layers.0.w", &[2], &[1.0, 1.0]),
                f32_tensor("model.norm", &[1, 2], &[1.0, 1.0]),
                f32_tensor("lm_head", &[2], &[0.0, 0.0]),
                f32_tensor("gone", &[2], &[0.0, 0.0]),
                f32_tensor("wide", &[2, 3], &[0.0; 6]),
            ],
        );
        let b = model(
            "b.pt",
            vec![
                f32_tensor("module.layers.0.w", &[2], &[1.0, 2.0]),
                f32_tensor("model.norm", &[2], &[1.0, 1.0]),
                f32_tensor("lm_head", &[2], &[0.0, 1.0]),
                f32_tensor("new", &[2], &[0.0, 0.0]),
                f32_tensor("wide", &[3, 2], &[0.0; 6]),
            ],
        );
        let d = diff_models(&a, &b, &|_, _| {}, &|| false);
        assert_eq!(d.renamed, 1);
        assert_eq!(d.only_a, vec!["gone"]);
        assert_eq!(d.only_b, vec!["new"]);
        assert_eq!(d.shape_mismatch.len(), 1);
        assert_eq!(d.shape_mismatch[0].shape_b, vec![3, 2]);
        let names: Vec<&str> = d.tensors.iter().map(|t| t.name.as_str()).collect();
        // An all-zero A that changed ranks first, then by relative change, identical last.
        assert_eq!(names, ["lm_head", "model.layers.0.w", "model.norm"]);
        assert_eq!(d.tensors[1].name_b.as_deref(), Some("module.layers.0.w"));
        assert_eq!(d.identical(), 1);
        assert_eq!(d.changed_elements, 2);
        assert_eq!(d.compared_elements, 6);
    }

    #[test]
    fn the_delta_model_holds_b_minus_a() {
        let a = model(
            "a.safetensors",
            vec![
                tensor("w", DType::BF16, &[2, 2], bf16(&[1.0, 2.0, 3.0, 4.0])),
                f32_tensor("gone", &[1], &[1.0]),
            ],
        );
        let b = model(
            "b.safetensors",
            vec![f32_tensor("module.w", &[2, 2], &[1.5, 2.0, 3.0, -4.0])],
        );
        let d = diff_models(&a, &b, &|_, _| {}, &|| false);
        let m = delta_model(&a, &b, &d);
        assert_eq!(
            m.source.display().to_string(),
            "b.safetensors − a.safetensors"
        );
        let w = m.tensor("w").unwrap();
        assert_eq!(w.dtype, DType::F32);
        let (bytes, _) = checked(w).unwrap();
        let v: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(v, [0.5, 0.0, 0.0, -8.0]);
        assert!(matches!(
            m.tensor("gone").unwrap().data,
            TensorData::Missing
        ));
        assert!(m.metadata.warnings.iter().any(|w| w.contains("1 tensors")));
    }

    #[test]
    fn gguf_rows_interleave_each_heads_halves_as_llama_cpp_permutes_them() {
        // permute(w, n_head=2) on 8 rows of one value: rows (h, s, j) -> (h, j, s).
        let to = RowMap {
            cols: 1,
            head_rows: 4,
            to_gguf: true,
        };
        let back = RowMap {
            to_gguf: false,
            ..to
        };
        let got: Vec<u64> = (0..8).map(|r| to.at(r)).collect();
        assert_eq!(got, [0, 2, 1, 3, 4, 6, 5, 7]);
        let wide = RowMap { cols: 3, ..to };
        for e in 0..24 {
            let w = RowMap { cols: 3, ..back };
            assert_eq!(w.at(wide.at(e)), e);
        }
        assert_eq!(
            gguf_hf_name("blk.12.attn_k.weight").as_deref(),
            Some("layers.12.self_attn.k_proj.weight")
        );
        assert_eq!(
            gguf_hf_name("output.weight").as_deref(),
            Some("lm_head.weight")
        );
        assert_eq!(gguf_hf_name("blk.x.attn_k.weight"), None);
        assert_eq!(gguf_hf_name("rope_freqs.weight"), None);
    }

    #[test]
    fn canonical_names_drop_wrappers_and_separators() {
        assert_eq!(canonical_name("module._orig_mod.fc.weight"), "fc.weight");
        assert_eq!(canonical_name("model/dense/kernel:0"), "dense.kernel");
        assert_eq!(canonical_name("transformer.h.0.attn"), "h.0.attn");
        assert_eq!(canonical_name("model."), "model.");
    }
}
