//! Heatmap tiles: any tensor as a 2-D picture, with a mip pyramid built on demand.
//!
//! How it works: [`HeatmapView::of`] folds a tensor to `rows × cols` (2-D as is; `[out, in, kh, kw]`
//! as `out × in·kh·kw`; 1-D as a `1 × N` strip; higher ranks fold all but the first dimension; GGUF
//! shapes, innermost first, fold the other way). Level `k` of the pyramid has one texel per
//! `2^k × 2^k` block of values; a tile is 256 × 256 texels. [`tile`] computes one tile straight from
//! the mapped bytes: rayon over the tile's texel rows, each worker decoding one source row segment at a
//! time into a small buffer and folding it into the texels' aggregates (mean, abs-max or min/max pair),
//! so nothing larger than a tile row is ever held. [`tile_preview`] reads only a sample of rows and
//! columns per texel, for a first picture of a huge tensor within milliseconds, to be replaced by the
//! exact tile when it arrives. [`TileCache`] keeps computed tiles under a byte budget (LRU).
//!
//! Aggregates over a block: NaN anywhere in the block makes the texel NaN (so a single NaN stays
//! visible at every zoom level); infinities take part as values.
//!
//! Rejected: building level k+1 from level k (needs all of level 0 first: seconds for a 1 GB
//! embedding before anything shows) and precomputing the whole pyramid (memory ~ 1/3 of the
//! tensor as f32).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::decode::Elem;
use super::{StatsError, TensorStats, checked};
use crate::model::{DType, Tensor};
use crate::model::{Layout, Quant};

/// Texels along each side of a tile.
pub const TILE: u64 = 256;

/// How a tensor is seen as a matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeatmapView {
    /// Rows (the outermost dimension: output units).
    pub rows: u64,
    /// Columns (all other dimensions folded: the contiguous run in memory).
    pub cols: u64,
    /// Set for a conv weight seen as a grid of kernels ([`HeatmapView::kernel_grid`]); `None`
    /// for the flat row-major fold.
    pub kernel: Option<KernelGrid>,
}

/// A conv weight `[out, in, kh, kw]` drawn as a grid of its kernels, each a small `kh × kw`
/// picture instead of a `kh·kw` run smeared along a row. Kernel `q = o·in + i` (memory order) sits
/// in block row `q / per_row`, block column `q % per_row`; value `(o, i, y, x)` at view row
/// `(q / per_row)·kh + y`, column `(q % per_row)·kw + x`.
///
/// A full conv has `per_row = in`: a row of blocks per output channel, a column per input channel.
/// A depthwise conv (`in = 1`) would be a single column of `out` kernels, so its kernels wrap into
/// rows of `per_row`, a divisor of `out` chosen to make the picture closest to square.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelGrid {
    /// Input channels (`in`).
    pub inputs: u64,
    /// Kernel height.
    pub kh: u64,
    /// Kernel width.
    pub kw: u64,
    /// Kernels per block row (`in`, or the wrap width of a depthwise conv).
    pub per_row: u64,
    /// Memory strides of the output channel, input channel, kernel row and kernel column
    /// (`[in·kh·kw, kh·kw, kw, 1]` for `[out, in, kh, kw]`; channels-last kernels differ).
    pub strides: [u64; 4],
}

impl KernelGrid {
    /// Whether the kernels wrap (a depthwise conv) rather than lie one output channel per row.
    pub fn wrapped(&self) -> bool {
        self.per_row != self.inputs
    }

    /// Memory offset of the first value of view row `y` of the block at (`block_row`, `block_col`).
    fn row_base(&self, block_row: u64, block_col: u64, y: u64) -> Option<u64> {
        let q = block_row
            .checked_mul(self.per_row)?
            .checked_add(block_col)?;
        let inputs = self.inputs.max(1);
        let [so, si, sy, _] = self.strides;
        (q / inputs)
            .checked_mul(so)?
            .checked_add((q % inputs).checked_mul(si)?)?
            .checked_add(y.checked_mul(sy)?)
    }
}

/// Kernels per row for `count` kernels of `kh × kw` laid out as near a square as whole rows allow:
/// the divisor `d` of `count` minimising `|ln((count/d)·kh / (d·kw))|` (no partial row, so no empty
/// cells that would read as missing values).
pub fn square_wrap(count: u64, kh: u64, kw: u64) -> u64 {
    let mut best = (f64::INFINITY, count.max(1));
    let mut d = 1u64;
    while d.saturating_mul(d) <= count {
        if count.is_multiple_of(d) {
            for per_row in [d, count / d] {
                let h = (count / per_row) as f64 * kh.max(1) as f64;
                let w = per_row as f64 * kw.max(1) as f64;
                let score = (h / w).ln().abs();
                // Ties go to the wider picture (screens are wider than tall).
                if score < best.0 - 1e-12 || ((score - best.0).abs() <= 1e-12 && per_row > best.1) {
                    best = (score, per_row);
                }
            }
        }
        d += 1;
    }
    best.1
}

/// How a texel aggregates the block of values it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Agg {
    /// Mean of the block.
    #[default]
    Mean,
    /// Largest |x| in the block.
    AbsMax,
    /// Minimum in `values`, maximum in `values_max`.
    MinMax,
}

/// One tile of the pyramid: row-major `width × height` values, ready for `lod::HeatmapItem`.
#[derive(Clone, Debug)]
pub struct Tile {
    /// Texels across.
    pub width: u32,
    /// Texels down.
    pub height: u32,
    /// The aggregate per texel (the minimum for [`Agg::MinMax`]).
    pub values: Arc<[f32]>,
    /// The maximum per texel for [`Agg::MinMax`].
    pub values_max: Option<Arc<[f32]>>,
    /// False for a [`tile_preview`] (sampled) tile.
    pub exact: bool,
    /// First source row covered.
    pub row0: u64,
    /// First source column covered.
    pub col0: u64,
    /// One past the last source row covered.
    pub row1: u64,
    /// One past the last source column covered.
    pub col1: u64,
}

impl Tile {
    /// Bytes held.
    pub fn byte_size(&self) -> usize {
        (self.values.len() + self.values_max.as_ref().map_or(0, |v| v.len())) * 4
    }
}

impl HeatmapView {
    /// The 2-D view of a tensor. `innermost_first`: the shape lists the contiguous dimension first (GGUF).
    pub fn of(t: &Tensor, innermost_first: bool) -> Self {
        let prod = |d: &[u64]| {
            d.iter()
                .try_fold(1u64, |a, &x| a.checked_mul(x))
                .unwrap_or(0)
        };
        match t.shape.len() {
            0 => HeatmapView {
                rows: 1,
                cols: 1,
                kernel: None,
            },
            1 => HeatmapView {
                rows: 1,
                cols: t.shape.first().copied().unwrap_or(0),
                kernel: None,
            },
            _ if innermost_first => {
                let (inner, rest) = t.shape.split_at(1);
                HeatmapView {
                    rows: prod(rest),
                    cols: prod(inner),
                    kernel: None,
                }
            }
            // Stacked experts (`…experts.down_proj` `[experts, out, in]`, gpt-oss, Mixtral-style
            // fused checkpoints): each expert's matrix under the one before, not one row each.
            // Likewise JAX's einsum weights (Gemma's `attn.q_einsum.w` `[heads, d_model,
            // head_dim]`, `mlp.gating_einsum.w` `[2, ffw, d_model]`): one matrix per head or
            // per gate, stacked.
            3 if is_stacked_experts(&t.name) || is_einsum(&t.name) => HeatmapView {
                rows: prod(&t.shape[..2]),
                cols: prod(&t.shape[2..]),
                kernel: None,
            },
            _ => {
                let (outer, rest) = t.shape.split_at(1);
                HeatmapView {
                    rows: prod(outer),
                    cols: prod(rest),
                    kernel: None,
                }
            }
        }
    }

    /// How modelmap shows a tensor by default: a conv weight as its grid of kernels, anything
    /// else as [`HeatmapView::for_tensor`].
    pub fn for_display(t: &Tensor) -> Self {
        Self::kernel_grid(t).unwrap_or_else(|| Self::for_tensor(t))
    }

    /// The element (in memory order) shown at view cell `(row, col)`, if inside the view.
    pub fn element(&self, row: u64, col: u64) -> Option<u64> {
        if row >= self.rows || col >= self.cols {
            return None;
        }
        match self.kernel {
            None => row.checked_mul(self.cols)?.checked_add(col),
            Some(k) => {
                let (br, y) = (row / k.kh.max(1), row % k.kh.max(1));
                let (bc, x) = (col / k.kw.max(1), col % k.kw.max(1));
                k.row_base(br, bc, y)?
                    .checked_add(x.checked_mul(k.strides[3])?)
            }
        }
    }

    /// A flat `rows × cols` view.
    pub fn flat(rows: u64, cols: u64) -> Self {
        HeatmapView {
            rows,
            cols,
            kernel: None,
        }
    }

    /// A 4-D conv weight `[out, in, kh, kw]` (outermost first, or in the order its
    /// [`Tensor::conv_axes`] say; kernels larger than 1×1) as a grid of kernels ([`KernelGrid`]);
    /// `None` for any other tensor.
    pub fn kernel_grid(t: &Tensor) -> Option<Self> {
        if matches!(t.dtype, DType::Ggml(_)) {
            return None;
        }
        let dims = <[u64; 4]>::try_from(t.shape.as_slice()).ok()?;
        // Row-major strides of the stored order, then picked by role.
        let stored = [
            dims[1].checked_mul(dims[2])?.checked_mul(dims[3])?,
            dims[2].checked_mul(dims[3])?,
            dims[3],
            1,
        ];
        let axes = t.conv_axes.unwrap_or(crate::model::ConvAxes::OIHW);
        let role = [axes.out, axes.input, axes.kh, axes.kw].map(|a| usize::from(a).min(3));
        let [out, inputs, kh, kw] = role.map(|a| dims[a]);
        let strides = role.map(|a| stored[a]);
        if kh.checked_mul(kw)? <= 1 || out == 0 || inputs == 0 {
            return None;
        }
        let per_row = if inputs == 1 {
            square_wrap(out, kh, kw)
        } else {
            inputs
        };
        let block_rows = out.checked_mul(inputs)? / per_row;
        Some(HeatmapView {
            rows: block_rows.checked_mul(kh)?,
            cols: per_row.checked_mul(kw)?,
            kernel: Some(KernelGrid {
                inputs,
                kh,
                kw,
                per_row,
                strides,
            }),
        })
    }

    /// The view GGML dtypes imply (innermost first for them, outermost first otherwise).
    pub fn for_tensor(t: &Tensor) -> Self {
        Self::of(t, matches!(t.dtype, DType::Ggml(_)))
    }

    /// Texels of level `level`: `(rows, cols)`.
    pub fn level_size(&self, level: u32) -> (u64, u64) {
        let s = 1u64.checked_shl(level).unwrap_or(u64::MAX);
        (self.rows.div_ceil(s), self.cols.div_ceil(s))
    }

    /// Number of levels: the last one fits in a single tile.
    pub fn levels(&self) -> u32 {
        let mut k = 0;
        while k < 63 {
            let (r, c) = self.level_size(k);
            if r <= TILE && c <= TILE {
                break;
            }
            k += 1;
        }
        k + 1
    }

    /// Tiles across and down at `level`.
    pub fn tiles(&self, level: u32) -> (u64, u64) {
        let (r, c) = self.level_size(level);
        (c.div_ceil(TILE), r.div_ceil(TILE))
    }
}

/// Whether a tensor of rank 3 holds a mixture of experts' matrices stacked along its first
/// dimension: a module path with an `experts` part (`model.layers.0.mlp.experts.gate_up_proj`).
fn is_stacked_experts(name: &str) -> bool {
    name.split(['.', '/'])
        .any(|p| p == "experts" || p.ends_with("_experts"))
}

/// Whether a tensor of rank 3 is a JAX einsum's weight (`…q_einsum.w`): matrices stacked along
/// its first dimension, one per head (or per gate).
fn is_einsum(name: &str) -> bool {
    name.split(['.', '/']).any(|p| p.ends_with("einsum"))
}

#[derive(Clone, Copy)]
struct Acc {
    sum: f64,
    n: u64,
    min: f64,
    max: f64,
    nan: bool,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            sum: 0.0,
            n: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            nan: false,
        }
    }
}

impl Acc {
    /// Folds in a run of values (a NaN poisons the texel, so it may pollute the sum freely).
    #[inline]
    fn add_slice(&mut self, v: &[f64]) {
        const L: usize = 4;
        let (mut sum, mut lo, mut hi, mut nan) = (
            [0.0f64; L],
            [f64::INFINITY; L],
            [f64::NEG_INFINITY; L],
            false,
        );
        let chunks = v.chunks_exact(L);
        let rest = chunks.remainder();
        for c in chunks {
            for i in 0..L {
                let x = c[i];
                nan |= x.is_nan();
                sum[i] += x;
                lo[i] = lo[i].min(x);
                hi[i] = hi[i].max(x);
            }
        }
        for &x in rest {
            nan |= x.is_nan();
            sum[0] += x;
            lo[0] = lo[0].min(x);
            hi[0] = hi[0].max(x);
        }
        self.nan |= nan;
        self.sum += sum.iter().sum::<f64>();
        self.n += v.len() as u64;
        self.min = lo.iter().fold(self.min, |a, &b| a.min(b));
        self.max = hi.iter().fold(self.max, |a, &b| a.max(b));
    }

    fn value(&self, agg: Agg) -> (f32, f32) {
        if self.nan || self.n == 0 {
            return (f32::NAN, f32::NAN);
        }
        match agg {
            Agg::Mean => ((self.sum / self.n as f64) as f32, 0.0),
            Agg::AbsMax => (self.min.abs().max(self.max.abs()) as f32, 0.0),
            Agg::MinMax => (self.min as f32, self.max as f32),
        }
    }
}

/// Calls `f(first_col, values)` for the values of view row `r`, columns `c0..c1`, in contiguous
/// pieces, decoding whole blocks through `buf` (which must hold at least one block).
fn for_row_segment(
    (elem, bytes, quant, view): (Elem, &[u8], Option<&Quant>, &HeatmapView),
    r: u64,
    c0: u64,
    c1: u64,
    buf: &mut [f64],
    mut f: impl FnMut(u64, &[f64]),
) {
    if let Some(k) = view.kernel {
        // Row r = block_row·kh + y: for each kernel crossed, its row y is a run of up to kw values.
        let (br, y) = (r / k.kh.max(1), r % k.kh.max(1));
        let mut c = c0;
        while c < c1 {
            let (i, x0) = (c / k.kw.max(1), c % k.kw.max(1));
            let x1 = k.kw.min(x0 + (c1 - c));
            let Some(base) = k.row_base(br, i, y) else {
                return;
            };
            let sx = k.strides[3];
            if sx == 1 {
                for_flat_range(
                    (elem, bytes, quant),
                    base + x0,
                    base + x1,
                    buf,
                    |off, vals| f(i * k.kw + (off - base), vals),
                );
            } else {
                // Channels-last: a kernel row's values are `sx` apart, read one at a time.
                for x in x0..x1 {
                    let at = base + x * sx;
                    for_flat_range((elem, bytes, quant), at, at + 1, buf, |_, vals| {
                        f(i * k.kw + x, vals)
                    });
                }
            }
            c += (x1 - x0).max(1);
        }
        return;
    }
    let Some(row_start) = r.checked_mul(view.cols) else {
        return;
    };
    for_logical_range(
        (elem, bytes, quant),
        row_start + c0,
        row_start + c1,
        buf,
        |off, vals| f(off - row_start, vals),
    );
}

/// The values of logical row `r` of a `[rows, cols]` matrix into `out` (`cols` long), in logical
/// order whatever the layout; `buf` as for [`for_flat_range`]. False if the bytes end early.
pub(crate) fn logical_row(
    src: (Elem, &[u8], Option<&Quant>),
    r: u64,
    out: &mut [f64],
    buf: &mut [f64],
) -> bool {
    let cols = out.len() as u64;
    let Some(lo) = r.checked_mul(cols) else {
        return false;
    };
    let mut filled = 0usize;
    for_logical_range(src, lo, lo + cols, buf, |at, vals| {
        let from = (at - lo) as usize;
        if let Some(dst) = out.get_mut(from..from + vals.len()) {
            dst.copy_from_slice(vals);
            filled += vals.len();
        }
    });
    filled == out.len()
}

/// [`for_flat_range`] over logical (row-major) elements `lo..hi` of one row: the same where the
/// values lie row-major; for a [`Layout`] (GPTQ, AWQ), pieces of the memory holding them decoded
/// and gathered into logical order.
pub(crate) fn for_logical_range(
    (elem, bytes, quant): (Elem, &[u8], Option<&Quant>),
    lo: u64,
    hi: u64,
    buf: &mut [f64],
    mut f: impl FnMut(u64, &[f64]),
) {
    let Some(layout) = quant.and_then(Quant::layout) else {
        for_flat_range((elem, bytes, quant), lo, hi, buf, f);
        return;
    };
    const PIECE: u64 = 512;
    let mut memory = Vec::new();
    let mut gathered = Vec::with_capacity(PIECE as usize);
    let mut a = lo;
    while a < hi {
        let b = hi.min(a + PIECE);
        let (m0, m1) = layout.span(a, b);
        memory.clear();
        for_flat_range((elem, bytes, quant), m0, m1, buf, |_, v| {
            memory.extend_from_slice(v)
        });
        gathered.clear();
        for l in a..b {
            let at = layout.memory_of(l).wrapping_sub(m0);
            match usize::try_from(at).ok().and_then(|i| memory.get(i)) {
                Some(&v) => gathered.push(v),
                None => return,
            }
        }
        f(a, &gathered);
        a = b;
    }
}

/// Calls `f(row, first_col, values)` for rows `r0..r1`, columns `c0..c1` of a `[rows, cols]`
/// matrix in logical order, in pieces, as [`for_logical_range`] row by row. GPTQ's words hold
/// `per` rows of one column: the memory of a block of `per` rows is decoded once for all of them
/// rather than once per row (8× for 4-bit), which is what an exact coarse tile reads.
pub(crate) fn for_logical_rows(
    (elem, bytes, quant): (Elem, &[u8], Option<&Quant>),
    cols: u64,
    (r0, r1): (u64, u64),
    (c0, c1): (u64, u64),
    buf: &mut [f64],
    mut f: impl FnMut(u64, u64, &[f64]),
) {
    let src = (elem, bytes, quant);
    let gptq = match quant.and_then(Quant::layout) {
        Some(Layout::Gptq { cols: lc, per }) if lc == cols && per > 1 => Some(per),
        _ => None,
    };
    let Some(per) = gptq.filter(|_| r1 > r0 && c1 > c0) else {
        for r in r0..r1 {
            let Some(start) = r.checked_mul(cols) else {
                return;
            };
            for_logical_range(src, start + c0, start + c1, buf, |off, vals| {
                f(r, off - start, vals)
            });
        }
        return;
    };
    const PIECE: u64 = 512;
    let mut memory = Vec::new();
    let mut gathered = Vec::with_capacity(PIECE as usize);
    for rb in r0 / per..=(r1 - 1) / per {
        let mut a = c0;
        while a < c1 {
            let b = c1.min(a + PIECE);
            // Words `rb · cols + a .. rb · cols + b`, `per` values each.
            let (Some(w0), Some(w1)) = (
                rb.checked_mul(cols).and_then(|w| w.checked_add(a)),
                rb.checked_mul(cols).and_then(|w| w.checked_add(b)),
            ) else {
                return;
            };
            memory.clear();
            for_flat_range(src, w0 * per, w1 * per, buf, |_, v| {
                memory.extend_from_slice(v)
            });
            if memory.len() as u64 != (b - a) * per {
                return;
            }
            for j in 0..per {
                let r = rb * per + j;
                if !(r0..r1).contains(&r) {
                    continue;
                }
                gathered.clear();
                gathered.extend((0..b - a).map(|c| memory[(c * per + j) as usize]));
                f(r, a, &gathered);
            }
            a = b;
        }
    }
}

/// Calls `f(first_offset, values)` for the elements `lo..hi` of the tensor in memory order, in
/// contiguous pieces, decoding whole blocks through `buf`.
fn for_flat_range(
    (elem, bytes, quant): (Elem, &[u8], Option<&Quant>),
    lo: u64,
    hi: u64,
    buf: &mut [f64],
    mut f: impl FnMut(u64, &[f64]),
) {
    let (be, bb) = elem.block();
    let (be64, bb64) = (be as u64, bb as u64);
    let first = lo / be64;
    let last = hi.div_ceil(be64);
    let blocks_per_buf = (buf.len() / be).max(1) as u64;
    let mut b = first;
    while b < last {
        let nb = blocks_per_buf.min(last - b);
        let (Ok(s), Ok(e)) = (usize::try_from(b * bb64), usize::try_from((b + nb) * bb64)) else {
            return;
        };
        let Some(src) = bytes.get(s..e) else { return };
        let n = nb as usize * be;
        let Some(out) = buf.get_mut(..n) else { return };
        elem.decode_into(src, out);
        let base = b * be64;
        if let Some(q) = quant {
            q.apply(base, out);
        }
        // Trim the partial blocks at either end.
        let from = lo.saturating_sub(base) as usize;
        let to = (hi.min(base + n as u64) - base) as usize;
        if let Some(piece) = out.get(from..to) {
            f(base + from as u64, piece);
        }
        b += nb;
    }
}

/// Which rows/columns of a block a texel reads: all, or an evenly spaced sample.
#[derive(Clone, Copy)]
struct Sampling {
    rows: u64,
    cols: u64,
}

fn build(
    t: &Tensor,
    view: &HeatmapView,
    level: u32,
    tx: u64,
    ty: u64,
    agg: Agg,
    sample: Option<Sampling>,
) -> Result<Tile, StatsError> {
    let (bytes, elem) = checked(t)?;
    let bytes: &[u8] = &bytes;
    let out_of_range = |what: String| StatsError::OutOfRange {
        tensor: t.name.clone(),
        what,
        rows: view.rows,
        cols: view.cols,
    };
    if view.rows.checked_mul(view.cols) != Some(t.elements()) {
        return Err(out_of_range("the view's size".into()));
    }
    if level >= view.levels() {
        return Err(out_of_range(format!("level {level}")));
    }
    let (ntx, nty) = view.tiles(level);
    if tx >= ntx || ty >= nty {
        return Err(out_of_range(format!("tile ({tx}, {ty}) of level {level}")));
    }
    let (lr, lc) = view.level_size(level);
    let x0 = tx * TILE;
    let y0 = ty * TILE;
    let width = (lc - x0).min(TILE);
    let height = (lr - y0).min(TILE);
    let s = 1u64 << level;
    let c0 = x0 * s;
    let c1 = ((x0 + width) * s).min(view.cols);
    let (be, _) = elem.block();
    let rows_out: Vec<(Vec<f32>, Vec<f32>)> = (0..height)
        .into_par_iter()
        .map_init(
            || vec![0.0f64; 4096.max(be)],
            |buf, i| {
                let mut acc = vec![Acc::default(); width as usize];
                let r0 = (y0 + i) * s;
                let r1 = (r0 + s).min(view.rows);
                match sample {
                    None => {
                        // Split a piece at texel boundaries and reduce each part at once.
                        let mut add = |col: u64, vals: &[f64]| {
                            let (mut c, mut rest) = (col, vals);
                            while !rest.is_empty() {
                                let j = (c - c0) >> level;
                                let take = ((c0 + (j + 1) * s - c) as usize).min(rest.len());
                                let (part, tail) = rest.split_at(take);
                                if let Some(a) = acc.get_mut(j as usize) {
                                    a.add_slice(part);
                                }
                                c += take as u64;
                                rest = tail;
                            }
                        };
                        if view.kernel.is_some() {
                            for r in r0..r1 {
                                let src = (elem, bytes, t.quant.as_ref(), view);
                                for_row_segment(src, r, c0, c1, buf, &mut add);
                            }
                        } else {
                            let src = (elem, bytes, t.quant.as_ref());
                            for_logical_rows(src, view.cols, (r0, r1), (c0, c1), buf, |_, c, v| {
                                add(c, v)
                            });
                        }
                    }
                    Some(smp) => {
                        let nr = (r1 - r0).min(smp.rows).max(1);
                        for k in 0..nr {
                            let r = r0 + k * (r1 - r0) / nr;
                            for (j, a) in acc.iter_mut().enumerate() {
                                let b0 = c0 + j as u64 * s;
                                let b1 = (b0 + s).min(view.cols).min(b0 + smp.cols);
                                for_row_segment(
                                    (elem, bytes, t.quant.as_ref(), view),
                                    r,
                                    b0,
                                    b1,
                                    buf,
                                    |_, v| a.add_slice(v),
                                );
                            }
                        }
                    }
                }
                let lo: Vec<f32> = acc.iter().map(|a| a.value(agg).0).collect();
                let hi: Vec<f32> = if agg == Agg::MinMax {
                    acc.iter().map(|a| a.value(agg).1).collect()
                } else {
                    Vec::new()
                };
                (lo, hi)
            },
        )
        .collect();
    let mut values = Vec::with_capacity((width * height) as usize);
    let mut values_max = Vec::new();
    for (lo, hi) in rows_out {
        values.extend(lo);
        values_max.extend(hi);
    }
    Ok(Tile {
        width: width as u32,
        height: height as u32,
        values: values.into(),
        values_max: (agg == Agg::MinMax).then(|| values_max.into()),
        exact: sample.is_none(),
        row0: y0 * s,
        col0: c0,
        row1: ((y0 + height) * s).min(view.rows),
        col1: c1,
    })
}

/// The exact tile `(tx, ty)` of `level` (texel = aggregate of a `2^level`-square block).
pub fn tile(
    t: &Tensor,
    view: &HeatmapView,
    level: u32,
    tx: u64,
    ty: u64,
    agg: Agg,
) -> Result<Tile, StatsError> {
    build(t, view, level, tx, ty, agg, None)
}

/// A quick approximation of [`tile`]: each texel reads at most 4 rows × 16 columns of its block.
/// Exact (and marked so) at levels 0–2 where blocks are that small anyway.
pub fn tile_preview(
    t: &Tensor,
    view: &HeatmapView,
    level: u32,
    tx: u64,
    ty: u64,
    agg: Agg,
) -> Result<Tile, StatsError> {
    if level <= 2 {
        return tile(t, view, level, tx, ty, agg);
    }
    build(
        t,
        view,
        level,
        tx,
        ty,
        agg,
        Some(Sampling { rows: 4, cols: 16 }),
    )
}

/// The exact value at `(row, col)` of the view, for hover readouts.
pub fn value_at(t: &Tensor, view: &HeatmapView, row: u64, col: u64) -> Result<f64, StatsError> {
    let (bytes, elem) = checked(t)?;
    let bytes: &[u8] = &bytes;
    let oor = || StatsError::OutOfRange {
        tensor: t.name.clone(),
        what: format!("cell ({row}, {col})"),
        rows: view.rows,
        cols: view.cols,
    };
    let idx = view.element(row, col).ok_or_else(oor)?;
    let idx = match t.quant.as_ref().and_then(Quant::layout) {
        Some(layout) => layout.memory_of(idx),
        None => idx,
    };
    let mut v = [elem.value_at(bytes, idx).ok_or_else(oor)?];
    if let Some(q) = &t.quant {
        q.apply(idx, &mut v);
    }
    Ok(v[0])
}

/// The multi-index of element `flat` (memory order) of a tensor of `shape` (outermost first), e.g.
/// `[o, i, y, x]` of a conv weight; `[flat]` for a scalar or an inconsistent shape.
pub fn unravel(flat: u64, shape: &[u64]) -> Vec<u64> {
    if shape.is_empty() || shape.contains(&0) {
        return vec![flat];
    }
    let mut idx = vec![0u64; shape.len()];
    let mut rest = flat;
    for (d, &n) in shape.iter().enumerate().rev() {
        idx[d] = rest % n;
        rest /= n;
    }
    idx
}

/// How the colour range is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    /// Exact min..max.
    MinMax,
    /// ±abs-max (diverging maps centred on zero).
    Symmetric,
    /// Percentiles `p..1−p` (e.g. 0.01), robust to a few outliers.
    Percentile(f64),
    /// ±max(|p-th|, |(1−p)-th|) percentile: robust and centred on zero.
    SymmetricPercentile(f64),
}

/// The `(lo, hi)` colour range for a tensor's statistics (`(0, 1)` when it has no finite values).
pub fn color_range(s: &TensorStats, clip: Clip) -> (f32, f32) {
    let (Some(min), Some(max)) = (s.min, s.max) else {
        return (0.0, 1.0);
    };
    let (lo, hi) = match clip {
        Clip::MinMax => (min, max),
        Clip::Symmetric => {
            let a = min.abs().max(max.abs());
            (-a, a)
        }
        Clip::Percentile(p) => (
            s.percentile(p).unwrap_or(min),
            s.percentile(1.0 - p).unwrap_or(max),
        ),
        Clip::SymmetricPercentile(p) => {
            let a = s
                .percentile(p)
                .unwrap_or(min)
                .abs()
                .max(s.percentile(1.0 - p).unwrap_or(max).abs());
            (-a, a)
        }
    };
    if hi > lo {
        (lo as f32, hi as f32)
    } else {
        (lo as f32 - 0.5, hi as f32 + 0.5)
    }
}

/// Identifies a cached tile.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TileKey {
    /// Tensor name.
    pub tensor: String,
    /// Address of the tensor's bytes (tells two models' same-named tensors apart).
    pub data_addr: usize,
    /// The view.
    pub view: HeatmapView,
    /// Pyramid level.
    pub level: u32,
    /// Tile column.
    pub tx: u64,
    /// Tile row.
    pub ty: u64,
    /// Aggregate.
    pub agg: Agg,
}

impl TileKey {
    /// A stable 64-bit key for `lod::HeatmapItem::key` (FNV-1a of the fields).
    pub fn hash64(&self) -> u64 {
        let mut h = super::cache::Fnv::new();
        h.write(self.tensor.as_bytes());
        for x in [
            self.data_addr as u64,
            self.view.rows,
            self.view.cols,
            u64::from(self.level),
            self.tx,
            self.ty,
            self.agg as u64,
        ] {
            h.write(&x.to_le_bytes());
        }
        h.finish()
    }
}

struct CacheInner {
    map: HashMap<TileKey, (Arc<Tile>, u64)>,
    tick: u64,
    bytes: usize,
}

/// Computed exact tiles under a byte budget, least recently used evicted first. Thread-safe.
pub struct TileCache {
    budget: usize,
    inner: Mutex<CacheInner>,
}

impl TileCache {
    /// A cache holding at most `budget_bytes` of tile values.
    pub fn new(budget_bytes: usize) -> Self {
        TileCache {
            budget: budget_bytes,
            inner: Mutex::new(CacheInner {
                map: HashMap::new(),
                tick: 0,
                bytes: 0,
            }),
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map_or(0, |g| g.bytes)
    }

    /// Tiles held now.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |g| g.map.len())
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached tile, if any (marks it recently used).
    pub fn get(&self, key: &TileKey) -> Option<Arc<Tile>> {
        let mut g = self.inner.lock().ok()?;
        g.tick += 1;
        let tick = g.tick;
        g.map.get_mut(key).map(|e| {
            e.1 = tick;
            e.0.clone()
        })
    }

    /// The exact tile, from the cache or computed (outside the lock) and inserted.
    pub fn get_or_build(
        &self,
        t: &Tensor,
        view: &HeatmapView,
        level: u32,
        tx: u64,
        ty: u64,
        agg: Agg,
    ) -> Result<Arc<Tile>, StatsError> {
        let key = TileKey {
            tensor: t.name.clone(),
            data_addr: t.data_addr(),
            view: *view,
            level,
            tx,
            ty,
            agg,
        };
        if let Some(hit) = self.get(&key) {
            return Ok(hit);
        }
        let tile = Arc::new(tile(t, view, level, tx, ty, agg)?);
        self.insert(key, tile.clone());
        Ok(tile)
    }

    /// Inserts a tile, evicting least recently used ones beyond the budget.
    pub fn insert(&self, key: TileKey, tile: Arc<Tile>) {
        let Ok(mut g) = self.inner.lock() else { return };
        g.tick += 1;
        let tick = g.tick;
        g.bytes += tile.byte_size();
        if let Some((old, _)) = g.map.insert(key, (tile, tick)) {
            g.bytes -= old.byte_size();
        }
        while g.bytes > self.budget && g.map.len() > 1 {
            let Some(oldest) = g
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((old, _)) = g.map.remove(&oldest) {
                g.bytes -= old.byte_size();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::model::GgmlType;

    fn ramp(rows: u64, cols: u64) -> Tensor {
        let v: Vec<f32> = (0..rows * cols)
            .map(|i| (i / cols) as f32 * 1000.0 + (i % cols) as f32)
            .collect();
        f32_tensor("ramp", &[rows, cols], &v)
    }

    /// A GPTQ weight's exact tiles, read a block of rows at a time, at every level, against the
    /// same values stored row-major as F32 (more columns than one piece of 512).
    #[test]
    fn gptq_row_blocks_give_the_tiles_of_the_values_they_hold() {
        use crate::model::{GroupOffset, ScaleBiasGroups};
        let (rows, cols, per) = (72u64, 600u64, 8u64);
        let n = rows * cols;
        let codes: Vec<u8> = (0..n).map(|i| ((i * 7 + i / 13) % 16) as u8).collect();
        let packed: Vec<u8> = codes.chunks(2).map(|p| p[0] | (p[1] << 4)).collect();
        let scales: Vec<u8> = (0..(rows / 24) * cols)
            .flat_map(|g| (0.01 + (g % 11) as f32 * 0.002).to_le_bytes())
            .collect();
        let groups = ScaleBiasGroups::tiles(
            1,
            24,
            cols,
            DType::F32,
            scales.into(),
            GroupOffset::Zero(8.0),
        );
        let layout = Layout::Gptq { cols, per };
        let q = Quant::scale_bias_groups(groups)
            .unwrap()
            .with_layout(layout);
        let mut t = Tensor::from_bytes("q", DType::U4, &[rows, cols], packed);
        t.quant = Some(q.clone());
        let mut vals: Vec<f64> = codes.iter().map(|&c| f64::from(c)).collect();
        q.apply(0, &mut vals);
        let mut logical = vec![0f32; n as usize];
        for (m, v) in vals.iter().enumerate() {
            logical[layout.logical_of(m as u64) as usize] = *v as f32;
        }
        let plain = f32_tensor("p", &[rows, cols], &logical);
        let view = HeatmapView::flat(rows, cols);
        for level in 0..view.levels() {
            let (ntx, nty) = view.tiles(level);
            for (tx, ty) in (0..ntx).flat_map(|x| (0..nty).map(move |y| (x, y))) {
                for agg in [Agg::Mean, Agg::MinMax] {
                    let a = tile(&t, &view, level, tx, ty, agg).unwrap();
                    let b = tile(&plain, &view, level, tx, ty, agg).unwrap();
                    assert_eq!((a.width, a.height), (b.width, b.height));
                    for (x, y) in a.values.iter().zip(b.values.iter()) {
                        assert!((x - y).abs() <= 1e-6 * y.abs().max(1e-3), "level {level}");
                    }
                    assert_eq!(a.values_max, b.values_max, "level {level}");
                }
            }
        }
    }

    #[test]
    fn views_fold_the_way_people_expect() {
        let t = f32_tensor("c", &[8, 3, 3, 3], &[0.0; 216]);
        assert_eq!(HeatmapView::of(&t, false), HeatmapView::flat(8, 27));
        let t = f32_tensor("b", &[5], &[0.0; 5]);
        assert_eq!(HeatmapView::of(&t, false), HeatmapView::flat(1, 5));
        // GGUF: [64, 1000] innermost first is 1000 rows of 64.
        let t = f32_tensor("e", &[64, 1000], &[0.0; 64000]);
        assert_eq!(HeatmapView::of(&t, true), HeatmapView::flat(1000, 64));
        let v = HeatmapView::flat(128_256, 4096);
        assert_eq!(v.levels(), 10);
        assert_eq!(v.level_size(9), (251, 8));
        assert_eq!(v.tiles(0), (16, 501));
    }

    #[test]
    fn channels_last_kernels_are_read_by_their_axes() {
        // TFLite's CONV_2D filter [out 2, kh 2, kw 3, in 3]: value = its memory index. The grid
        // is the same as for [out, in, kh, kw]: a row of kernels per output channel.
        let v: Vec<f32> = (0..36).map(|i| i as f32).collect();
        let mut t = f32_tensor("conv", &[2, 2, 3, 3], &v);
        t.conv_axes = Some(crate::model::ConvAxes::OHWI);
        let view = HeatmapView::kernel_grid(&t).unwrap();
        assert_eq!((view.rows, view.cols), (4, 9));
        let tl = tile(&t, &view, 0, 0, 0, Agg::Mean).unwrap();
        for o in 0..2u64 {
            for i in 0..3u64 {
                for y in 0..2u64 {
                    for x in 0..3u64 {
                        let mem = ((o * 2 + y) * 3 + x) * 3 + i;
                        let (r, c) = (o * 2 + y, i * 3 + x);
                        assert_eq!(tl.values[(r * 9 + c) as usize], mem as f32);
                        assert_eq!(view.element(r, c), Some(mem), "({o},{i},{y},{x})");
                    }
                }
            }
        }
        // DEPTHWISE_CONV_2D [1, kh 2, kw 2, out 6]: six 2×2 kernels, wrapped 3 to a row.
        let v: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let mut t = f32_tensor("dw", &[1, 2, 2, 6], &v);
        t.conv_axes = Some(crate::model::ConvAxes::IHWO);
        let view = HeatmapView::kernel_grid(&t).unwrap();
        let k = view.kernel.unwrap();
        assert!(k.wrapped());
        let tl = tile(&t, &view, 0, 0, 0, Agg::Mean).unwrap();
        for o in 0..6u64 {
            for y in 0..2u64 {
                for x in 0..2u64 {
                    let mem = (y * 2 + x) * 6 + o;
                    let (r, c) = ((o / k.per_row) * 2 + y, (o % k.per_row) * 2 + x);
                    let at = (r * view.cols + c) as usize;
                    assert_eq!(tl.values[at], mem as f32, "kernel {o} ({y},{x})");
                }
            }
        }
    }

    #[test]
    fn kernel_grid_puts_each_kernel_in_its_own_square() {
        // [out 2, in 3, kh 2, kw 3]: value = its memory index.
        let v: Vec<f32> = (0..36).map(|i| i as f32).collect();
        let t = f32_tensor("conv", &[2, 3, 2, 3], &v);
        let view = HeatmapView::kernel_grid(&t).unwrap();
        assert_eq!((view.rows, view.cols), (4, 9));
        let tl = tile(&t, &view, 0, 0, 0, Agg::Mean).unwrap();
        for o in 0..2u64 {
            for i in 0..3u64 {
                for y in 0..2u64 {
                    for x in 0..3u64 {
                        let mem = ((o * 3 + i) * 2 + y) * 3 + x;
                        let (r, c) = (o * 2 + y, i * 3 + x);
                        assert_eq!(
                            tl.values[(r * 9 + c) as usize],
                            mem as f32,
                            "({o},{i},{y},{x})"
                        );
                    }
                }
            }
        }
        // Level 1 blocks 2×2 view cells: with 100 inputs (300 columns) there is one; its first
        // texel averages kernel (0, 0)'s x 0..2 of both its rows.
        let v: Vec<f32> = (0..1200).map(|i| i as f32).collect();
        let wide = f32_tensor("wide", &[2, 100, 2, 3], &v);
        let wv = HeatmapView::kernel_grid(&wide).unwrap();
        assert_eq!((wv.rows, wv.cols, wv.levels()), (4, 300, 2));
        let l1 = tile(&wide, &wv, 1, 0, 0, Agg::Mean).unwrap();
        assert_eq!(l1.values[0], (0.0 + 1.0 + 3.0 + 4.0) / 4.0);
        // Texel 2 covers columns 4..6: kernel 1's x = 1, 2 (memory 7, 8 and 10, 11).
        assert_eq!(l1.values[2], (7.0 + 8.0 + 10.0 + 11.0) / 4.0);
        // Not a conv weight: no grid.
        assert!(HeatmapView::kernel_grid(&ramp(4, 4)).is_none());
        let pointwise = f32_tensor("pw", &[4, 2, 1, 1], &[0.0; 8]);
        assert!(HeatmapView::kernel_grid(&pointwise).is_none());
    }

    #[test]
    fn depthwise_kernels_wrap_into_whole_rows() {
        // [out 6, in 1, 2, 2]: 2 rows of 3 kernels (4×6 cells) is squarer than 3 rows of 2.
        let v: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let t = f32_tensor("dw", &[6, 1, 2, 2], &v);
        let view = HeatmapView::kernel_grid(&t).unwrap();
        assert_eq!((view.rows, view.cols), (4, 6));
        assert_eq!(view.kernel.map(|k| k.per_row), Some(3));
        let tl = tile(&t, &view, 0, 0, 0, Agg::Mean).unwrap();
        for q in 0..6u64 {
            for y in 0..2u64 {
                for x in 0..2u64 {
                    let mem = (q * 2 + y) * 2 + x;
                    let (r, c) = ((q / 3) * 2 + y, (q % 3) * 2 + x);
                    assert_eq!(tl.values[(r * 6 + c) as usize], mem as f32, "({q},{y},{x})");
                    assert_eq!(view.element(r, c), Some(mem));
                }
            }
        }
        // A full conv keeps one block row per output channel.
        let full = f32_tensor("full", &[2, 3, 2, 2], &[0.0; 24]);
        let k = HeatmapView::kernel_grid(&full)
            .and_then(|v| v.kernel)
            .unwrap();
        assert_eq!(k.per_row, 3);
        assert!(!k.wrapped());
        // Whole rows only; a prime count stays one row.
        assert_eq!(square_wrap(32, 3, 3), 8);
        assert_eq!(square_wrap(200, 3, 3), 20);
        assert_eq!(square_wrap(7, 3, 3), 7);
        assert_eq!(square_wrap(1, 5, 5), 1);
        for n in 1..200u64 {
            assert!(n.is_multiple_of(square_wrap(n, 3, 3)));
        }
    }

    #[test]
    fn level0_tile_is_the_raw_values() {
        let t = ramp(300, 270);
        let v = HeatmapView::of(&t, false);
        let tl = tile(&t, &v, 0, 1, 1, Agg::Mean).unwrap();
        assert_eq!((tl.width, tl.height), (14, 44));
        assert_eq!(tl.values[0], 256.0 * 1000.0 + 256.0);
        assert_eq!(tl.values[(tl.width + 2) as usize], 257.0 * 1000.0 + 258.0);
        assert_eq!((tl.row0, tl.col0, tl.row1, tl.col1), (256, 256, 300, 270));
        assert!(tile(&t, &v, 0, 2, 0, Agg::Mean).is_err());
        assert_eq!(value_at(&t, &v, 299, 269).unwrap(), 299_269.0);
        assert!(value_at(&t, &v, 300, 0).is_err());
    }

    #[test]
    fn coarse_levels_aggregate_blocks() {
        let t = ramp(300, 270);
        let v = HeatmapView::of(&t, false);
        let top = v.levels() - 1;
        assert_eq!(top, 1);
        let tl = tile(&t, &v, 1, 0, 0, Agg::Mean).unwrap();
        assert_eq!((tl.width, tl.height), (135, 150));
        // Texel (0,0) = mean of rows 0..2, cols 0..2 = (0+1+1000+1001)/4.
        assert_eq!(tl.values[0], 500.5);
        let mm = tile(&t, &v, 1, 0, 0, Agg::MinMax).unwrap();
        assert_eq!(
            (mm.values[1], mm.values_max.as_ref().unwrap()[1]),
            (2.0, 1003.0)
        );
        let am = tile(&t, &v, 1, 0, 0, Agg::AbsMax).unwrap();
        assert_eq!(am.values[0], 1001.0);
    }

    #[test]
    fn nan_survives_aggregation_and_preview_is_close() {
        let mut v: Vec<f32> = (0..1024 * 1024)
            .map(|i| ((i % 1024) as f32 / 1024.0) - 0.5)
            .collect();
        v[700 * 1024 + 3] = f32::NAN;
        let t = f32_tensor("n", &[1024, 1024], &v);
        let view = HeatmapView::of(&t, false);
        let top = view.levels() - 1;
        assert_eq!(top, 2);
        let tl = tile(&t, &view, top, 0, 0, Agg::Mean).unwrap();
        assert!(tl.values[(700 / 4) * 256].is_nan());
        assert_eq!(tl.values.iter().filter(|x| x.is_nan()).count(), 1);
        // 4096 columns at level 4: the preview samples 16 of 16 columns but 4 of 16 rows.
        let v2: Vec<f32> = (0..64 * 4096)
            .map(|i| ((i % 4096) as f32 / 4096.0) - 0.5)
            .collect();
        let t2 = f32_tensor("p", &[64, 4096], &v2);
        let view2 = HeatmapView::of(&t2, false);
        let exact = tile(&t2, &view2, 4, 0, 0, Agg::Mean).unwrap();
        let prev = tile_preview(&t2, &view2, 4, 0, 0, Agg::Mean).unwrap();
        assert!(!prev.exact && exact.exact);
        for (a, b) in exact.values.iter().zip(prev.values.iter()) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn quantized_rows_decode_across_blocks() {
        // Two rows of 64 Q8_0 values (2 blocks a row), scale 1, q = column index − 32.
        let mut b = Vec::new();
        for _ in 0..2 {
            for blk in 0..2 {
                b.extend(0x3C00u16.to_le_bytes());
                b.extend((0..32).map(|i| (blk * 32 + i - 32) as i8 as u8));
            }
        }
        let t = tensor("q", DType::Ggml(GgmlType(8)), &[64, 2], b);
        let v = HeatmapView::for_tensor(&t);
        assert_eq!(v, HeatmapView::flat(2, 64));
        let tl = tile(&t, &v, 0, 0, 0, Agg::Mean).unwrap();
        assert_eq!(tl.values[64 + 40], 8.0);
        assert_eq!(value_at(&t, &v, 1, 33).unwrap(), 1.0);
    }

    #[test]
    fn cache_evicts_least_recently_used() {
        let t = ramp(512, 512);
        let v = HeatmapView::of(&t, false);
        let one = 256 * 256 * 4;
        let c = TileCache::new(2 * one);
        let a = c.get_or_build(&t, &v, 0, 0, 0, Agg::Mean).unwrap();
        c.get_or_build(&t, &v, 0, 1, 0, Agg::Mean).unwrap();
        // Touch (0,0) so (1,0) is the oldest, then add a third.
        let again = c.get_or_build(&t, &v, 0, 0, 0, Agg::Mean).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        c.get_or_build(&t, &v, 0, 0, 1, Agg::Mean).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.bytes(), 2 * one);
        let key = |tx, ty| TileKey {
            tensor: "ramp".into(),
            data_addr: t.bytes().unwrap().as_ptr() as usize,
            view: v,
            level: 0,
            tx,
            ty,
            agg: Agg::Mean,
        };
        assert!(c.get(&key(0, 0)).is_some());
        assert!(c.get(&key(1, 0)).is_none());
        assert_ne!(key(0, 0).hash64(), key(0, 1).hash64());
    }
}
