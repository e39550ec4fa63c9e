//! The Parameter view's data side: per-tensor statistics, histograms, dead units, heatmap tiles,
//! anomalies, per-node overlay figures and the neuron-level view of dense chains.
//!
//! How it works: [`tensor_stats`] checks a tensor's shape and byte length, then streams over its
//! mapped bytes in parallel (rayon, 4 MiB chunks, an L1-sized decode buffer per worker; see
//! `compute` for the one-pass bit-pattern counting used for 1- and 2-byte types and the two-pass
//! scheme for wider types). [`model_stats`] runs it for every tensor, in parallel, reporting
//! progress; a failure is an `Err` for that tensor only. [`cache`] stores results on disk keyed by
//! file identity, so a second open is instant. [`cli::run`] is `modelmap stats`.
//!
//! Statistics are over **finite** values (as numpy/torch report them in `facts.json`): NaN and ±Inf
//! are counted but excluded from min/max/mean/std/L2/histogram; `std` is the population standard
//! deviation; `zeros` counts ±0.
//!
//! Rejected: decoding a whole tensor into a `Vec<f32>` first (multi-GB tensors, and it doubles memory
//! traffic); a GPU compute pass (the data lives in a memory map, so the bus, not the ALUs, is the
//! limit, and this must work headless without an adapter).

pub mod anomaly;
pub mod cache;
pub mod cli;
mod compute;
pub mod decode;
pub mod diff;
mod ggml;
pub mod heatmap;
mod iq_grids;
pub mod lora;
pub mod neurons;
pub mod node_data;
pub mod overlay;

use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::model::{DType, Format, Model, Tensor, TensorBytes, TensorData};

pub use compute::{HIST_BINS, Histogram, MAX_LISTED_LINES};
use decode::Elem;
pub use heatmap::{Agg, HeatmapView};

/// What can go wrong computing statistics or tiles for one tensor.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The shape's element count overflows `u64`.
    #[error("tensor {tensor}: shape {shape:?} overflows")]
    ShapeOverflow {
        /// Tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<u64>,
    },
    /// The data length disagrees with shape × dtype.
    #[error(
        "tensor {tensor}: {actual} bytes of data, but shape {shape:?} of {dtype} needs {expected}"
    )]
    LengthMismatch {
        /// Tensor name.
        tensor: String,
        /// Its shape.
        shape: Vec<u64>,
        /// Its dtype name.
        dtype: String,
        /// Bytes the shape calls for (`None` when the element count is not a whole number of blocks).
        expected: String,
        /// Bytes present.
        actual: u64,
    },
    /// The pass was stopped before this tensor was reached ([`model_stats_until`]).
    #[error("tensor {tensor}: statistics pass cancelled")]
    Cancelled {
        /// Tensor name.
        tensor: String,
    },
    /// Statistics are not supported for this element type.
    #[error("tensor {tensor}: statistics not supported for {dtype}")]
    Unsupported {
        /// Tensor name.
        tensor: String,
        /// Its dtype name.
        dtype: String,
    },
    /// The file holds no data for the tensor (stripped weights).
    #[error("tensor {tensor}: no data in the file")]
    Missing {
        /// Tensor name.
        tensor: String,
    },
    /// The loader could not locate the data.
    #[error("tensor {tensor}: {message}")]
    Data {
        /// Tensor name.
        tensor: String,
        /// The loader's message.
        message: String,
    },
    /// No tensor of that name.
    #[error("{file}: no tensor named {name:?}{hint}")]
    NoSuchTensor {
        /// The model file.
        file: String,
        /// The name asked for.
        name: String,
        /// Close names, as "; did you mean …?" (empty when none is).
        hint: String,
    },
    /// A heatmap tile or cell outside the tensor.
    #[error("tensor {tensor}: {what} is outside the {rows}×{cols} view")]
    OutOfRange {
        /// Tensor name.
        tensor: String,
        /// What was asked for.
        what: String,
        /// View rows.
        rows: u64,
        /// View columns.
        cols: u64,
    },
    /// A neuron-view chain whose layer sizes do not connect.
    #[error("dense chain: {0}")]
    Chain(String),
    /// Writing JSON output failed.
    #[error("JSON output: {0}")]
    Json(#[from] serde_json::Error),
}

/// Statistics of one tensor; JSON keys match `facts.json`'s per-tensor entries plus extras.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TensorStats {
    /// Tensor name.
    pub name: String,
    /// Dtype name (`F32`, `BF16`, `Q8_0`…).
    pub dtype: String,
    /// Shape as stored in the IR.
    pub shape: Vec<u64>,
    /// All elements.
    pub count: u64,
    /// NaN elements.
    pub nan: u64,
    /// ±Inf elements.
    pub inf: u64,
    /// Elements equal to zero (±0).
    pub zeros: u64,
    /// Smallest finite value (`None` when there is none).
    pub min: Option<f64>,
    /// Largest finite value.
    pub max: Option<f64>,
    /// Mean of finite values.
    pub mean: Option<f64>,
    /// Population standard deviation of finite values.
    pub std: Option<f64>,
    /// Largest |x| over finite values.
    pub abs_max: Option<f64>,
    /// L2 norm of the finite values.
    pub l2: f64,
    /// Fraction of elements that are exactly zero (`zeros / count`; 0 for an empty tensor).
    pub sparsity: f64,
    /// Histogram of finite values over exact min..max.
    pub histogram: Histogram,
    /// Rows of the 2-D view (see [`HeatmapView`]); 0 for rank < 2.
    pub rows: u64,
    /// Columns of the 2-D view.
    pub cols: u64,
    /// All-zero rows (dead output units) of the 2-D view, at most [`MAX_LISTED_LINES`] listed.
    pub zero_rows: Vec<u64>,
    /// Number of all-zero rows.
    pub zero_row_count: u64,
    /// All-zero columns (dead inputs), at most [`MAX_LISTED_LINES`] listed.
    pub zero_cols: Vec<u64>,
    /// Number of all-zero columns.
    pub zero_col_count: u64,
}

impl TensorStats {
    /// The value below which a fraction `q` (0..=1) of the finite values lie, interpolated linearly
    /// within the histogram bin (error at most one bin width): use for percentile clipping of colour maps.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        let h = &self.histogram;
        let total: u64 = h.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let (min, max) = (self.min?, self.max?);
        let target = q.clamp(0.0, 1.0) * total as f64;
        let width = (h.hi - h.lo) / h.counts.len().max(1) as f64;
        let mut seen = 0.0;
        for (i, &c) in h.counts.iter().enumerate() {
            let next = seen + c as f64;
            if next >= target && c > 0 {
                let frac = ((target - seen) / c as f64).clamp(0.0, 1.0);
                return Some((h.lo + (i as f64 + frac) * width).clamp(min, max));
            }
            seen = next;
        }
        Some(max)
    }

    /// Finite values counted.
    pub fn finite(&self) -> u64 {
        self.count - self.nan - self.inf
    }
}

/// Options for [`tensor_stats_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StatsOptions {
    /// Shapes list the innermost dimension first (GGUF); decides what a "row" is.
    pub innermost_first: bool,
}

impl StatsOptions {
    /// The options that fit a model's format.
    pub fn for_model(m: &Model) -> Self {
        StatsOptions {
            innermost_first: m.format == Format::Gguf,
        }
    }
}

/// Checks a tensor and returns its bytes and decoder.
pub(crate) fn checked(t: &Tensor) -> Result<(TensorBytes<'_>, Elem), StatsError> {
    let n = t
        .shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| StatsError::ShapeOverflow {
            tensor: t.name.clone(),
            shape: t.shape.clone(),
        })?;
    let bytes = match &t.data {
        TensorData::Bytes(b) => TensorBytes::Borrowed(b),
        TensorData::Lazy(l) => {
            TensorBytes::Shared(l.get().map_err(|message| StatsError::Data {
                tensor: t.name.clone(),
                message,
            })?)
        }
        TensorData::Missing => {
            return Err(StatsError::Missing {
                tensor: t.name.clone(),
            });
        }
        TensorData::Error(m) => {
            return Err(StatsError::Data {
                tensor: t.name.clone(),
                message: m.clone(),
            });
        }
    };
    let elem = Elem::of(t.dtype).ok_or_else(|| StatsError::Unsupported {
        tensor: t.name.clone(),
        dtype: t.dtype.name().to_string(),
    })?;
    let expected = t.dtype.bytes_for(n);
    if expected != Some(bytes.len() as u64) {
        return Err(StatsError::LengthMismatch {
            tensor: t.name.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype.name().to_string(),
            expected: expected
                .map_or_else(|| "a whole number of blocks".to_string(), |e| e.to_string()),
            actual: bytes.len() as u64,
        });
    }
    Ok((bytes, elem))
}

/// Statistics of one tensor (shapes read outermost-first, except GGML dtypes: innermost-first).
pub fn tensor_stats(t: &Tensor) -> Result<TensorStats, StatsError> {
    let innermost_first = matches!(t.dtype, DType::Ggml(_));
    tensor_stats_with(t, &StatsOptions { innermost_first })
}

/// Statistics of one tensor with explicit options.
pub fn tensor_stats_with(t: &Tensor, opts: &StatsOptions) -> Result<TensorStats, StatsError> {
    let (bytes, elem) = checked(t)?;
    let bytes: &[u8] = &bytes;
    let c = compute::compute(elem, bytes, t.quant.as_ref());
    let s = c.summary;
    let finite = s.moments.n > 0;
    let (min, max) = if finite {
        (Some(s.min), Some(s.max))
    } else {
        (None, None)
    };
    let view = HeatmapView::of(t, opts.innermost_first);
    let (rows, cols) = if t.shape.len() >= 2 {
        (view.rows, view.cols)
    } else {
        (0, 0)
    };
    let (mut zero_rows, mut zero_row_count, mut zero_cols, mut zero_col_count) =
        (Vec::new(), 0, Vec::new(), 0);
    if rows > 0 && cols > 0 {
        // A dead row needs `cols` zeros and a dead column `rows` zeros: skip the scan when impossible.
        let want_rows = s.zeros >= cols;
        let want_cols = s.zeros >= rows;
        if want_rows || want_cols {
            (zero_rows, zero_row_count, zero_cols, zero_col_count) = compute::zero_lines(
                elem,
                bytes,
                t.quant.as_ref(),
                rows,
                cols,
                want_rows,
                want_cols,
            );
        }
    }
    let n = s.moments.n as f64;
    Ok(TensorStats {
        name: t.name.clone(),
        dtype: t.dtype.name().to_string(),
        shape: t.shape.clone(),
        count: s.total,
        nan: s.nan,
        inf: s.inf,
        zeros: s.zeros,
        min,
        max,
        mean: finite.then_some(s.moments.mean),
        std: finite.then(|| (s.moments.m2 / n).sqrt()),
        abs_max: finite.then(|| s.min.abs().max(s.max.abs())),
        l2: if finite {
            (s.moments.m2 + n * s.moments.mean * s.moments.mean)
                .max(0.0)
                .sqrt()
        } else {
            0.0
        },
        sparsity: if s.total > 0 {
            s.zeros as f64 / s.total as f64
        } else {
            0.0
        },
        histogram: c.histogram,
        rows,
        cols,
        zero_rows,
        zero_row_count,
        zero_cols,
        zero_col_count,
    })
}

/// [`tensor_stats_with`] for a pass over many tensors: bytes made on first use
/// ([`TensorData::Lazy`], decompressed) are made for this tensor's statistics and dropped after,
/// unless something kept them already, so memory holds a few tensors at a time, not the model.
fn streamed_stats(t: &Tensor, opts: &StatsOptions) -> Result<TensorStats, StatsError> {
    let r = tensor_stats_with(&once(t), opts);
    if let Some(b) = t.bytes() {
        release_large(b);
    }
    r
}

/// Tensors at least this large hand their mapped pages back after a pass has read them.
const RELEASE_FROM_BYTES: usize = 1 << 20;

/// After a pass over every tensor has read `bytes`: hands a large tensor's mapped pages back to
/// the kernel ([`crate::model::mapped::release_mapped`]), so the pass's resident memory stays at the few
/// tensors in flight rather than growing to the model's size.
pub(crate) fn release_large(bytes: &[u8]) {
    if bytes.len() >= RELEASE_FROM_BYTES {
        crate::model::mapped::release_mapped(bytes);
    }
}

/// A tensor whose bytes are made on first use ([`TensorData::Lazy`]) with them made for one pass
/// and dropped after, unless something holds them already; any other tensor as it is.
pub(crate) fn once(t: &Tensor) -> std::borrow::Cow<'_, Tensor> {
    match &t.data {
        TensorData::Lazy(l) if !l.is_ready() => {
            let data = match l.get_or_produce() {
                Ok(b) => TensorData::Bytes(b),
                Err(e) => TensorData::Error(e),
            };
            std::borrow::Cow::Owned(Tensor {
                name: t.name.clone(),
                dtype: t.dtype,
                shape: t.shape.clone(),
                data,
                origin: t.origin,
                conv_axes: t.conv_axes,
                quant: t.quant.clone(),
            })
        }
        _ => std::borrow::Cow::Borrowed(t),
    }
}

/// Statistics of every tensor of a model, in parallel, in tensor order. `progress(done, total)` is
/// called from worker threads after each tensor.
pub fn model_stats(
    m: &Model,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Result<TensorStats, StatsError>> {
    let opts = StatsOptions::for_model(m);
    let total = m.tensors.len();
    let done = AtomicUsize::new(0);
    m.tensors
        .par_iter()
        .map(|t| {
            let r = streamed_stats(t, &opts);
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            r
        })
        .collect()
}

/// Like [`model_stats`], reading what it can from `cache` and storing what it computed (cache
/// failures are logged and ignored: the cache only ever saves time).
pub fn model_stats_cached(
    m: &Model,
    cache: Option<&cache::StatsCache>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Result<TensorStats, StatsError>> {
    model_stats_until(m, cache, progress, &|| false)
}

/// [`model_stats_cached`] that stops starting tensors once `stop()` is true: the tensors not yet
/// begun come back as [`StatsError::Cancelled`] (a cancelled scan stops burning CPU within one
/// tensor's time), and whatever was computed is still stored in the cache, so scanning again
/// resumes where this one stopped.
pub fn model_stats_until(
    m: &Model,
    cache: Option<&cache::StatsCache>,
    progress: &(dyn Fn(usize, usize) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<Result<TensorStats, StatsError>> {
    let Some(cache) = cache else {
        let opts = StatsOptions::for_model(m);
        let total = m.tensors.len();
        let done = AtomicUsize::new(0);
        return m
            .tensors
            .par_iter()
            .map(|t| {
                if stop() {
                    return Err(StatsError::Cancelled {
                        tensor: t.name.clone(),
                    });
                }
                let r = streamed_stats(t, &opts);
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                r
            })
            .collect();
    };
    let cached = cache.load(m);
    let opts = StatsOptions::for_model(m);
    let total = m.tensors.len();
    let done = AtomicUsize::new(0);
    let computed = AtomicUsize::new(0);
    let out: Vec<Result<TensorStats, StatsError>> = m
        .tensors
        .par_iter()
        .map(|t| {
            let r = match cached.get(t) {
                Some(s) => Ok(s),
                None if stop() => {
                    return Err(StatsError::Cancelled {
                        tensor: t.name.clone(),
                    });
                }
                None => {
                    computed.fetch_add(1, Ordering::Relaxed);
                    streamed_stats(t, &opts)
                }
            };
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            r
        })
        .collect();
    if computed.load(Ordering::Relaxed) > 0 {
        let ok: Vec<(&Tensor, &TensorStats)> = m
            .tensors
            .iter()
            .zip(&out)
            .filter_map(|(t, r)| r.as_ref().ok().map(|s| (t, s)))
            .collect();
        if let Err(e) = cache.store(m, &ok) {
            log::warn!("{e}");
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::model::{DType, Tensor};

    /// A tensor over owned little-endian bytes.
    pub fn tensor(name: &str, dtype: DType, shape: &[u64], bytes: Vec<u8>) -> Tensor {
        Tensor::from_bytes(name, dtype, shape, bytes)
    }

    /// An f32 tensor.
    pub fn f32_tensor(name: &str, shape: &[u64], v: &[f32]) -> Tensor {
        tensor(
            name,
            DType::F32,
            shape,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use crate::model::GgmlType;

    #[test]
    fn stats_of_a_hand_made_tensor() {
        let v = [1.0f32, -2.0, 0.0, f32::NAN, 4.0, f32::INFINITY, 0.0, -0.0];
        let s = tensor_stats(&f32_tensor("w", &[2, 4], &v)).unwrap();
        assert_eq!((s.count, s.nan, s.inf, s.zeros), (8, 1, 1, 3));
        assert_eq!(
            (s.min, s.max, s.abs_max),
            (Some(-2.0), Some(4.0), Some(4.0))
        );
        // Finite: 1, -2, 0, 4, 0, -0 → mean 0.5, population variance (0.25+6.25+0.25+12.25+0.25+0.25)/6.
        assert_eq!(s.mean, Some(0.5));
        assert!((s.std.unwrap() - (19.5f64 / 6.0).sqrt()).abs() < 1e-12);
        assert!((s.l2 - 21f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.sparsity, 3.0 / 8.0);
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 6);
        assert_eq!(s.histogram.counts[0], 1); // -2
        assert_eq!(s.histogram.counts[HIST_BINS - 1], 1); // 4 (the right edge is inclusive)
        assert_eq!((s.rows, s.cols), (2, 4));
        assert!(s.zero_rows.is_empty());
    }

    #[test]
    fn dead_row_and_column_found() {
        let mut v = vec![0.5f32; 5 * 3];
        v[3..6].fill(0.0); // row 1
        let s = tensor_stats(&f32_tensor("w", &[5, 3], &v)).unwrap();
        assert_eq!(s.zero_rows, vec![1]);
        assert_eq!(s.zero_row_count, 1);
        assert!(s.zero_cols.is_empty());
        // Column 2 of 5 rows all zero too.
        for r in 0..5 {
            v[r * 3 + 2] = 0.0;
        }
        let s = tensor_stats(&f32_tensor("w", &[5, 3], &v)).unwrap();
        assert_eq!(s.zero_cols, vec![2]);
    }

    #[test]
    fn every_dtype_gives_the_same_stats_for_small_integers() {
        let vals: [i8; 6] = [0, 1, 2, 3, -4, 5];
        let cases: Vec<(DType, Vec<u8>)> = vec![
            (
                DType::F64,
                vals.iter()
                    .flat_map(|&x| f64::from(x).to_le_bytes())
                    .collect(),
            ),
            (
                DType::F32,
                vals.iter()
                    .flat_map(|&x| f32::from(x).to_le_bytes())
                    .collect(),
            ),
            (
                DType::F16,
                vals.iter()
                    .flat_map(|&x| half::f16::from_f32(f32::from(x)).to_le_bytes())
                    .collect(),
            ),
            (
                DType::BF16,
                vals.iter()
                    .flat_map(|&x| half::bf16::from_f32(f32::from(x)).to_le_bytes())
                    .collect(),
            ),
            (
                DType::I64,
                vals.iter()
                    .flat_map(|&x| i64::from(x).to_le_bytes())
                    .collect(),
            ),
            (
                DType::I32,
                vals.iter()
                    .flat_map(|&x| i32::from(x).to_le_bytes())
                    .collect(),
            ),
            (
                DType::I16,
                vals.iter()
                    .flat_map(|&x| i16::from(x).to_le_bytes())
                    .collect(),
            ),
            (DType::I8, vals.iter().map(|&x| x as u8).collect()),
            // E4M3FN: 1 = 0x38, 2 = 0x40, 3 = 0x44, -4 = 0xC8, 5 = 0x4A.
            (DType::F8E4M3FN, vec![0x00, 0x38, 0x40, 0x44, 0xC8, 0x4A]),
            // E5M2: top byte of f16.
            (
                DType::F8E5M2,
                vals.iter()
                    .map(|&x| (half::f16::from_f32(f32::from(x)).to_bits() >> 8) as u8)
                    .collect(),
            ),
            // E4M3FNUZ (bias 8): 1 = 0x40, 2 = 0x48, 3 = 0x4C, -4 = 0xD0, 5 = 0x52.
            (DType::F8E4M3FNUZ, vec![0x00, 0x40, 0x48, 0x4C, 0xD0, 0x52]),
            // E5M2FNUZ (bias 16): 1 = 0x40, 2 = 0x44, 3 = 0x46, -4 = 0xC8, 5 = 0x49.
            (DType::F8E5M2FNUZ, vec![0x00, 0x40, 0x44, 0x46, 0xC8, 0x49]),
        ];
        for (dt, bytes) in cases {
            let s = tensor_stats(&tensor("t", dt, &[6], bytes)).unwrap();
            assert_eq!(
                (s.min, s.max, s.zeros, s.count),
                (Some(-4.0), Some(5.0), 1, 6),
                "{dt}"
            );
            assert!((s.mean.unwrap() - 7.0 / 6.0).abs() < 1e-12, "{dt}");
        }
        let u = tensor_stats(&tensor("u", DType::U8, &[3], vec![0, 200, 255])).unwrap();
        assert_eq!((u.min, u.max), (Some(0.0), Some(255.0)));
        let u = tensor_stats(&tensor(
            "u",
            DType::U16,
            &[1],
            65535u16.to_le_bytes().to_vec(),
        ))
        .unwrap();
        assert_eq!(u.max, Some(65535.0));
        let u = tensor_stats(&tensor("u", DType::U32, &[1], 7u32.to_le_bytes().to_vec())).unwrap();
        assert_eq!(u.max, Some(7.0));
        let u = tensor_stats(&tensor("u", DType::U64, &[1], 9u64.to_le_bytes().to_vec())).unwrap();
        assert_eq!(u.max, Some(9.0));
        let b = tensor_stats(&tensor("b", DType::Bool, &[4], vec![0, 1, 1, 0])).unwrap();
        assert_eq!((b.mean, b.zeros), (Some(0.5), 2));
    }

    #[test]
    fn fp8_nan_and_inf_are_counted_not_averaged() {
        // E5M2: 0x7C = +inf, 0x7E = NaN, 0x3C = 1.
        let s = tensor_stats(&tensor(
            "f8",
            DType::F8E5M2,
            &[4],
            vec![0x7C, 0x7E, 0x3C, 0x3C],
        ))
        .unwrap();
        assert_eq!((s.nan, s.inf, s.mean, s.max), (1, 1, Some(1.0), Some(1.0)));
        // E4M3FNUZ: 0x80 is NaN.
        let s = tensor_stats(&tensor("f8", DType::F8E4M3FNUZ, &[2], vec![0x80, 0x40])).unwrap();
        assert_eq!((s.nan, s.min), (1, Some(1.0)));
    }

    #[test]
    fn ggml_quantized_and_unsupported() {
        // One Q8_0 block, scale 1 (f16 0x3C00), q = 0..32.
        let mut b = 0x3C00u16.to_le_bytes().to_vec();
        b.extend(0u8..32);
        let s = tensor_stats(&tensor("q", DType::Ggml(GgmlType(8)), &[32], b)).unwrap();
        assert_eq!((s.min, s.max, s.zeros), (Some(0.0), Some(31.0), 1));
        assert_eq!(s.mean, Some(15.5));
        // Q4_K decodes (tests/gguf_quants.rs checks every k-quant against gguf-py): one block of
        // zero bytes is 256 zeros. Q8_1 (an intermediate type, not stored in files) does not.
        let s = tensor_stats(&tensor(
            "k",
            DType::Ggml(GgmlType(12)),
            &[256],
            vec![0; 144],
        ))
        .unwrap();
        assert_eq!((s.count, s.zeros), (256, 256));
        let e =
            tensor_stats(&tensor("q81", DType::Ggml(GgmlType(9)), &[32], vec![0; 36])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tensor q81: statistics not supported for Q8_1"
        );
    }

    #[test]
    fn a_stopped_pass_skips_the_tensors_not_yet_begun() {
        let mut m = Model::new("mem.safetensors", Format::Safetensors);
        for i in 0..20 {
            m.add_tensor(f32_tensor(&format!("t{i}"), &[2], &[1.0, i as f32]));
        }
        // Stop after five tensors have been started, whatever order rayon takes them in.
        let asked = AtomicUsize::new(0);
        let r = model_stats_until(&m, None, &|_, _| {}, &|| {
            asked.fetch_add(1, Ordering::Relaxed) >= 5
        });
        let done = r.iter().filter(|x| x.is_ok()).count();
        let cancelled = r
            .iter()
            .filter(|x| matches!(x, Err(StatsError::Cancelled { .. })))
            .count();
        assert_eq!((done, cancelled), (5, 15));
        for (t, x) in m.tensors.iter().zip(&r) {
            if let Ok(s) = x {
                assert_eq!(s.name, t.name);
            }
        }
        // Not stopped: everything computes.
        let all = model_stats_until(&m, None, &|_, _| {}, &|| false);
        assert!(all.iter().all(Result::is_ok));
    }

    #[test]
    fn bad_tensors_are_errors_and_others_still_compute() {
        let mut m = Model::new("mem.safetensors", Format::Safetensors);
        m.add_tensor(f32_tensor("good", &[2], &[1.0, 2.0]));
        m.add_tensor(tensor("short", DType::F32, &[3], vec![0; 8]));
        m.add_tensor(tensor("huge", DType::F32, &[u64::MAX, 2], vec![0; 8]));
        m.add_tensor(Tensor {
            data: TensorData::Missing,
            ..f32_tensor("gone", &[1], &[0.0])
        });
        let calls = AtomicUsize::new(0);
        let r = model_stats(&m, &|_, total| {
            assert_eq!(total, 4);
            calls.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        assert_eq!(r[0].as_ref().unwrap().mean, Some(1.5));
        assert!(matches!(
            r[1],
            Err(StatsError::LengthMismatch { actual: 8, .. })
        ));
        assert!(r[1].as_ref().unwrap_err().to_string().contains("needs 12"));
        assert!(matches!(r[2], Err(StatsError::ShapeOverflow { .. })));
        assert!(matches!(r[3], Err(StatsError::Missing { .. })));
    }

    #[test]
    fn large_tensor_spanning_many_chunks() {
        // 3 M f32 = 12 MiB: several 4 MiB chunks, checked against a direct f64 computation.
        let v: Vec<f32> = (0..3_000_000u32)
            .map(|i| ((i.wrapping_mul(2654435761) >> 8) as f32 / 16777216.0) - 0.5)
            .collect();
        let s = tensor_stats(&f32_tensor("big", &[3000, 1000], &v)).unwrap();
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / v.len() as f64;
        assert!((s.mean.unwrap() - mean).abs() < 1e-12);
        assert!((s.std.unwrap() - var.sqrt()).abs() < 1e-12);
        let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
        assert_eq!(s.min, Some(f64::from(lo)));
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 3_000_000);
        // Uniform data: percentiles land near the quantiles.
        let p50 = s.percentile(0.5).unwrap();
        assert!(p50.abs() < 0.02, "{p50}");
        let p99 = s.percentile(0.99).unwrap();
        assert!((p99 - 0.49).abs() < 0.02, "{p99}");
    }
}
