//! The streaming passes behind [`super::tensor_stats`].
//!
//! How it works, per element width:
//! - **One- and two-byte types** (f16, bf16, fp8, i8/u8, i16/u16, bool): a single parallel pass counts
//!   raw bit patterns into a 256-entry table, or one 65 536-entry `u32` table (256 KiB), per rayon
//!   worker (hot codes stay in L1). Every figure — count, NaN/Inf, zeros, min/max, mean, std
//!   (two-pass over the table, so exact), L2, and the histogram over the exact min..max — is then derived from the merged table,
//!   so these types need one read of the data and no second pass.
//! - **Wider types** (f32, f64, 32/64-bit ints, `Q8_0`/`Q4_0`): pass 1 decodes fixed-size chunks into
//!   an L1 buffer and keeps count/mean/M2 (two-pass within each 4 096-value block, merged across
//!   blocks and chunks with Chan et al.'s parallel formula), min/max, zeros, NaN/Inf; pass 2 bins
//!   the values now that the exact min/max are known. A second read was chosen over per-chunk
//!   re-binning (which would make the histogram approximate) and over a fixed value range (useless
//!   for weights whose range is unknown).
//! - **Dead rows/columns** need a scan only when the zero count could fill a row or a column
//!   (`zeros ≥ min(cols, rows)`), so ordinary dense weights pay nothing for it.
//!
//! Memory stays flat: chunks are 4 MiB of the mapped bytes, each worker decodes into a 32 KiB buffer.

use std::ops::Range;

use rayon::prelude::*;

use super::decode::{Elem, Fp8Kind};
use crate::model::Quant;

/// Number of histogram bins.
pub const HIST_BINS: usize = 64;
/// Values per decode buffer (32 KiB of f64: fits L1/L2).
const BLOCK: usize = 4096;
/// Bytes per parallel work item.
const CHUNK_BYTES: usize = 4 << 20;
/// At most this many dead rows / columns are listed (the counts are always exact).
pub const MAX_LISTED_LINES: usize = 4096;

/// Running moments over finite values (Chan et al. merge).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Moments {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    pub fn merge(self, o: Moments) -> Moments {
        if self.n == 0 {
            return o;
        }
        if o.n == 0 {
            return self;
        }
        let n = self.n + o.n;
        let (na, nb) = (self.n as f64, o.n as f64);
        let delta = o.mean - self.mean;
        let nf = n as f64;
        Moments {
            n,
            mean: self.mean + delta * nb / nf,
            m2: self.m2 + o.m2 + delta * delta * na * nb / nf,
        }
    }
}

/// Everything pass 1 gathers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Summary {
    pub total: u64,
    pub nan: u64,
    pub inf: u64,
    pub zeros: u64,
    pub min: f64,
    pub max: f64,
    pub moments: Moments,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            total: 0,
            nan: 0,
            inf: 0,
            zeros: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            moments: Moments::default(),
        }
    }
}

impl Summary {
    fn merge(self, o: Summary) -> Summary {
        Summary {
            total: self.total + o.total,
            nan: self.nan + o.nan,
            inf: self.inf + o.inf,
            zeros: self.zeros + o.zeros,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            moments: self.moments.merge(o.moments),
        }
    }

    /// Adds a decoded block (≤ [`BLOCK`] values).
    fn add_block(&mut self, v: &[f64]) {
        const L: usize = 8;
        let mut sum = [0.0f64; L];
        let mut fin = [0u64; L];
        let mut nan = [0u64; L];
        let mut zer = [0u64; L];
        let mut lo = [f64::INFINITY; L];
        let mut hi = [f64::NEG_INFINITY; L];
        let mut step = |i: usize, x: f64| {
            let f = x.is_finite();
            let y = if f { x } else { 0.0 };
            sum[i] += y;
            fin[i] += u64::from(f);
            nan[i] += u64::from(x.is_nan());
            zer[i] += u64::from(x == 0.0);
            lo[i] = lo[i].min(if f { x } else { f64::INFINITY });
            hi[i] = hi[i].max(if f { x } else { f64::NEG_INFINITY });
        };
        let chunks = v.chunks_exact(L);
        let rest = chunks.remainder();
        for c in chunks {
            for (i, &x) in c.iter().enumerate() {
                step(i, x);
            }
        }
        for (i, &x) in rest.iter().enumerate() {
            step(i, x);
        }
        let n: u64 = fin.iter().sum();
        let nans: u64 = nan.iter().sum();
        self.total += v.len() as u64;
        self.nan += nans;
        self.inf += v.len() as u64 - n - nans;
        self.zeros += zer.iter().sum::<u64>();
        self.min = lo.iter().fold(self.min, |a, &b| a.min(b));
        self.max = hi.iter().fold(self.max, |a, &b| a.max(b));
        if n == 0 {
            return;
        }
        let mean = sum.iter().sum::<f64>() / n as f64;
        // Second pass over the block while it is in L1: exact M2 about the block mean.
        let mut m2 = [0.0f64; L];
        for c in v.chunks(L) {
            for (i, &x) in c.iter().enumerate() {
                let d = if x.is_finite() { x - mean } else { 0.0 };
                m2[i] += d * d;
            }
        }
        self.moments = self.moments.merge(Moments {
            n,
            mean,
            m2: m2.iter().sum(),
        });
    }
}

/// A fixed-bin histogram over `[lo, hi]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub lo: f64,
    /// Right edge of the last bin.
    pub hi: f64,
    /// Counts per bin, [`HIST_BINS`] of them.
    pub counts: Vec<u64>,
}

/// The bin edges numpy's `histogram` uses: exact min..max, or ±0.5 around a single value.
pub(crate) fn hist_range(min: f64, max: f64) -> (f64, f64) {
    if !(min.is_finite() && max.is_finite()) {
        (0.0, 0.0)
    } else if min == max {
        (min - 0.5, max + 0.5)
    } else {
        (min, max)
    }
}

#[inline]
fn bin_of(x: f64, lo: f64, scale: f64) -> usize {
    // `as usize` saturates, so values just below `lo` by rounding land in bin 0.
    (((x - lo) * scale) as usize).min(HIST_BINS - 1)
}

/// The result of the value passes (dead lines are separate).
pub(crate) struct Computed {
    pub summary: Summary,
    pub histogram: Histogram,
}

/// Computes summary and histogram of `bytes` (already checked to hold whole blocks), of the
/// real values when `quant` says how the stored integers stand for them.
pub(crate) fn compute(elem: Elem, bytes: &[u8], quant: Option<&Quant>) -> Computed {
    if let Some(q) = quant {
        let by_group = compute_by_group_codes(elem, bytes, q);
        return by_group.unwrap_or_else(|| compute_wide(elem, bytes, quant));
    }
    match elem.code_width() {
        // Small 2-byte tensors: scanning a 65 536-entry table would cost more than the data.
        Some(2) if bytes.len() < 1 << 17 => compute_wide(elem, bytes, None),
        Some(w) => compute_by_codes(elem, w, bytes),
        None => compute_wide(elem, bytes, None),
    }
}

fn chunk_bytes(elem: Elem) -> usize {
    let (be, bb) = elem.block();
    // A whole number of decode buffers, so every buffer holds whole blocks.
    let buf_bytes = (BLOCK / be).max(1) * bb;
    (CHUNK_BYTES / buf_bytes).max(1) * buf_bytes
}

fn compute_wide(elem: Elem, bytes: &[u8], quant: Option<&Quant>) -> Computed {
    let (be, bb) = elem.block();
    let blocks_per_buf = (BLOCK / be).max(1);
    let cb = chunk_bytes(elem);
    // Elements of chunk `ci`, part `pi` start at `ci * per_chunk + pi * per_part`.
    let (per_chunk, per_part) = ((cb / bb * be) as u64, (blocks_per_buf * be) as u64);
    let decode = |ci: usize, pi: usize, part: &[u8], out: &mut [f64]| {
        elem.decode_into(part, out);
        if let Some(q) = quant {
            q.apply(ci as u64 * per_chunk + pi as u64 * per_part, out);
        }
    };
    let summary = bytes
        .par_chunks(cb)
        .enumerate()
        .map_init(
            || vec![0.0f64; BLOCK],
            |buf, (ci, chunk)| {
                let mut s = Summary::default();
                for (pi, part) in chunk.chunks(blocks_per_buf * bb).enumerate() {
                    let n = part.len() / bb * be;
                    let Some(out) = buf.get_mut(..n) else {
                        continue;
                    };
                    decode(ci, pi, part, out);
                    s.add_block(out);
                }
                s
            },
        )
        .reduce(Summary::default, Summary::merge);
    let (lo, hi) = hist_range(summary.min, summary.max);
    let mut counts = vec![0u64; HIST_BINS];
    if summary.moments.n > 0 {
        let scale = HIST_BINS as f64 / (hi - lo);
        counts = bytes
            .par_chunks(cb)
            .enumerate()
            .map_init(
                || vec![0.0f64; BLOCK],
                |buf, (ci, chunk)| {
                    let mut h = [0u64; HIST_BINS];
                    for (pi, part) in chunk.chunks(blocks_per_buf * bb).enumerate() {
                        let n = part.len() / bb * be;
                        let Some(out) = buf.get_mut(..n) else {
                            continue;
                        };
                        decode(ci, pi, part, out);
                        for &x in out.iter() {
                            if x.is_finite() {
                                h[bin_of(x, lo, scale)] += 1;
                            }
                        }
                    }
                    h
                },
            )
            .reduce(
                || [0u64; HIST_BINS],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                    a
                },
            )
            .to_vec();
    }
    Computed {
        summary,
        histogram: Histogram { lo, hi, counts },
    }
}

/// Counts bit patterns of a 1- or 2-byte type.
fn code_counts(width: usize, bytes: &[u8]) -> Vec<u64> {
    let size = 1usize << (8 * width);
    let merge = |mut a: Vec<u64>, b: Vec<u64>| {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        a
    };
    if width == 1 {
        bytes
            .par_chunks(CHUNK_BYTES)
            .fold(
                || vec![0u64; size],
                |mut t, chunk| {
                    let t8: &mut [u64; 256] = match t.as_mut_slice().try_into() {
                        Ok(a) => a,
                        Err(_) => return t,
                    };
                    for &b in chunk {
                        t8[usize::from(b)] += 1;
                    }
                    t
                },
            )
            .reduce(|| vec![0u64; size], merge)
    } else {
        /// Per-thread counts: one table of u32 counters, folded into u64 totals only before a
        /// counter could overflow and once at the end. The loop reads two 8-byte words (eight
        /// codes) per step and indexes without bounds checks. Measured on one thread of this
        /// project's 2-core EPYC VM (a kernel-only test, 256 MB of bf16 in memory): one table and
        /// eight codes a step ran 8.8–9.0 GB/s on Gaussian weights and 7.8–8.2 on a constant
        /// tensor (every increment on one counter), where the four tables of four codes a step
        /// used before ran 6.9–7.2 and 8.8–9.3: a quarter of the hot cache lines, and Zen's
        /// memory renaming keeps repeated codes from serialising. Two tables ran between the two.
        /// The table lives for the whole fold, not per chunk: zeroing and summing it for every
        /// 4 MB chunk cost a third of the time.
        struct Counts {
            c32: Vec<u32>,
            total: Vec<u64>,
            pending: u64,
        }
        impl Counts {
            fn new() -> Self {
                Counts {
                    c32: vec![0u32; 65536],
                    total: vec![0u64; 65536],
                    pending: 0,
                }
            }
            fn flush(&mut self) {
                for (t, k) in self.total.iter_mut().zip(self.c32.iter_mut()) {
                    *t += u64::from(*k);
                    *k = 0;
                }
                self.pending = 0;
            }
        }
        // One contiguous part per thread, each with one table: rayon's adaptive splitting of 4 MB
        // chunks made a fresh accumulator for nearly every chunk of a large tensor.
        let parts = rayon::current_num_threads().max(1);
        let part = (bytes.len().div_ceil(parts).div_ceil(2) * 2).max(2);
        let mut done = bytes
            .par_chunks(part)
            .flat_map_iter(|p| p.chunks(CHUNK_BYTES))
            .fold(Counts::new, |mut t, chunk| {
                // One chunk adds at most CHUNK_BYTES / 2 to one counter.
                if t.pending + (chunk.len() / 2) as u64 >= u64::from(u32::MAX) {
                    t.flush();
                }
                t.pending += (chunk.len() / 2) as u64;
                // A fixed-size table: a `u16` index needs no bounds check.
                let Ok(table) = <&mut [u32; 65536]>::try_from(t.c32.as_mut_slice()) else {
                    return t;
                };
                let mut steps = chunk.chunks_exact(16);
                for w in &mut steps {
                    let (a, b) = w.split_at(8);
                    for half in [a, b] {
                        let mut word = [0u8; 8];
                        word.copy_from_slice(half);
                        let x = u64::from_le_bytes(word);
                        table[usize::from(x as u16)] += 1;
                        table[usize::from((x >> 16) as u16)] += 1;
                        table[usize::from((x >> 32) as u16)] += 1;
                        table[usize::from((x >> 48) as u16)] += 1;
                    }
                }
                for c in steps.remainder().chunks_exact(2) {
                    table[usize::from(u16::from_le_bytes([c[0], c[1]]))] += 1;
                }
                t
            })
            .map(|mut t| {
                t.flush();
                t.total
            })
            .reduce(|| vec![0u64; size], merge);
        done.truncate(size);
        done
    }
}

fn compute_by_codes(elem: Elem, width: usize, bytes: &[u8]) -> Computed {
    let counts = code_counts(width, bytes);
    let used: Vec<(f64, u64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(code, &c)| (elem.value_of_code(code as u32), c))
        .collect();
    from_counted_values(Summary::default(), |f| {
        used.iter().for_each(|&(v, c)| f(v, c))
    })
}

/// Summary and histogram of values given with their counts: `each` calls its argument with
/// every `(value, count)`, and is called twice (figures, then spread and histogram). `s` holds
/// what is already counted (values without a scale, as NaN).
fn from_counted_values(mut s: Summary, each: impl Fn(&mut dyn FnMut(f64, u64))) -> Computed {
    let mut sum = 0.0;
    each(&mut |v, c| {
        s.total += c;
        if v.is_nan() {
            s.nan += c;
        } else if v.is_infinite() {
            s.inf += c;
        } else {
            s.moments.n += c;
            sum += v * c as f64;
            s.min = s.min.min(v);
            s.max = s.max.max(v);
            if v == 0.0 {
                s.zeros += c;
            }
        }
    });
    let (lo, hi) = hist_range(s.min, s.max);
    let mut hist = vec![0u64; HIST_BINS];
    if s.moments.n > 0 {
        let mean = sum / s.moments.n as f64;
        let scale = HIST_BINS as f64 / (hi - lo);
        let mut m2 = 0.0;
        each(&mut |v, c| {
            if v.is_finite() {
                m2 += (v - mean) * (v - mean) * c as f64;
                if let Some(h) = hist.get_mut(bin_of(v, lo, scale)) {
                    *h += c;
                }
            }
        });
        s.moments.mean = mean;
        s.moments.m2 = m2;
    }
    Computed {
        summary: s,
        histogram: Histogram {
            lo,
            hi,
            counts: hist,
        },
    }
}

/// The width of a code of at most 8 bits and the value each code stands for before its group's
/// scale (the integer, or an fp8 code's float); `None` for wider types.
fn small_codes(elem: Elem) -> Option<(u32, Vec<f64>)> {
    Some(match elem {
        Elem::U4 => (4, (0..16).map(f64::from).collect()),
        Elem::F4E2M1 => (4, super::decode::E2M1.to_vec()),
        Elem::I4 => (
            4,
            (0..16).map(|c: i32| f64::from((c << 28) >> 28)).collect(),
        ),
        Elem::Bits(b @ 1..=7) => (u32::from(b), (0..1u32 << b).map(f64::from).collect()),
        e if e.code_width() == Some(1) => (8, (0..256).map(|c| e.value_of_code(c)).collect()),
        _ => return None,
    })
}

/// The code of memory element `i` of `bits`-wide codes (a byte each, two to a byte low nibble
/// first, or a little-endian bitstream).
#[inline]
fn code_at(bytes: &[u8], bits: u32, i: u64) -> Option<usize> {
    match bits {
        8 => bytes.get(usize::try_from(i).ok()?).map(|&b| usize::from(b)),
        4 => {
            let b = *bytes.get(usize::try_from(i / 2).ok()?)?;
            Some(usize::from((b >> (4 * (i % 2))) & 0x0f))
        }
        b => {
            let bit = i.checked_mul(u64::from(b))?;
            let at = usize::try_from(bit / 8).ok()?;
            let lo = *bytes.get(at)?;
            let hi = bytes.get(at + 1).copied().unwrap_or(0);
            let w = u16::from_le_bytes([lo, hi]) >> (bit % 8);
            Some(usize::from(w & ((1 << b) - 1)))
        }
    }
}

/// How memory elements map to groups for [`compute_by_group_codes`].
#[derive(Clone, Copy)]
enum GroupWalk {
    /// Groups of the logical (row-major) order, which memory follows, or (`swapped`) with each
    /// pair of values swapped, within groups of even size (bitsandbytes' high nibble first).
    Runs { swapped: bool },
    /// GPTQ's `per` rows of one column to a word, one group per column and group row.
    Gptq { cols: u64, per: u64 },
    /// AWQ's eight values of a row to a word out of order, one group per column and group row.
    Awq { cols: u64 },
}

/// Statistics of codes of at most 8 bits (fp8, int8, int4, MLX's 2–6-bit, codebook indices)
/// quantized by groups (a scale per row, per 128 × 128 block, per group of 32–128 values): a
/// count per code and group, one increment per value, then each group's codes read as reals
/// with its scale, bias or codebook, rather than every value decoded to a float twice (once for
/// the figures, once for the histogram). GPTQ's and AWQ's packings are walked in memory order,
/// each value's group from its word. `None` where that does not pay (more table entries than
/// half the values), the tables would exceed 64 MB, or the layout is another.
fn compute_by_group_codes(elem: Elem, bytes: &[u8], q: &Quant) -> Option<Computed> {
    let g = q.scale_bias()?;
    let (walk, bits, code_values) = group_walk(elem, q)?;
    let k = code_values.len();
    let groups = g.len();
    let elements = (bytes.len() as u64).checked_mul(8)? / u64::from(bits);
    // A group's count must fit its u32 counters.
    let largest = if g.cols == 0 {
        g.size
    } else {
        g.rows.saturating_mul(g.size)
    };
    let entries = groups.checked_mul(k)?;
    let counter_bytes = match largest {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        _ => 4,
    };
    if largest >= u64::from(u32::MAX)
        || groups == 0
        || entries as u64 > elements / 2
        || entries.checked_mul(counter_bytes)? > 64 << 20
    {
        return None;
    }
    let data = GroupCodes {
        bytes,
        bits,
        g,
        walk,
        elements,
        code_values: &code_values,
    };
    // Counters no wider than a group's count needs: the tables are zeroed page by page.
    Some(match counter_bytes {
        1 => data.compute::<u8>(),
        2 => data.compute::<u16>(),
        _ => data.compute::<u32>(),
    })
}

/// A table counter of [`GroupCodes::compute`].
trait Counter: Copy + Default + Send + Sync {
    fn bump(&mut self);
    fn get(self) -> u64;
}

macro_rules! counter {
    ($($t:ty),*) => {$(
        impl Counter for $t {
            #[inline]
            fn bump(&mut self) {
                *self = self.wrapping_add(1);
            }
            #[inline]
            fn get(self) -> u64 {
                u64::from(self)
            }
        }
    )*};
}
counter!(u8, u16, u32);

/// The codes and groups [`compute_by_group_codes`] counts.
struct GroupCodes<'a> {
    bytes: &'a [u8],
    bits: u32,
    g: &'a crate::model::ScaleBiasGroups,
    walk: GroupWalk,
    elements: u64,
    code_values: &'a [f64],
}

impl GroupCodes<'_> {
    /// The figures from counts of type `C`, which must hold the largest group's count.
    fn compute<C: Counter>(&self) -> Computed {
        let (bytes, bits, g, walk, elements) =
            (self.bytes, self.bits, self.g, self.walk, self.elements);
        let (code_values, k, groups) = (self.code_values, self.code_values.len(), g.len());
        // One contiguous part per thread, cut at whole words of 64 elements, each with a table of
        // only the groups its rows reach (a GPTQ weight's table of every group is 64 MB, zeroed by the
        // kernel page by page). A group two parts share is counted in both: its (value, count) pairs
        // are then given twice with part counts, which sum the same.
        let parts = rayon::current_num_threads().max(1) as u64;
        let step = elements.div_ceil(parts).div_ceil(64).max(1) * 64;
        let tables: Vec<(u64, Vec<C>, u64)> = (0..parts)
            .into_par_iter()
            .filter_map(|p| {
                let (m0, m1) = ((p * step).min(elements), ((p + 1) * step).min(elements));
                if m0 >= m1 {
                    return None;
                }
                let (lo, hi) = part_groups(g, walk, m0, m1, groups as u64);
                let mut t = vec![C::default(); usize::try_from(hi - lo).ok()?.checked_mul(k)?];
                let stray = count_group_codes(bytes, bits, g, walk, (m0, m1), (lo, k), &mut t);
                Some((lo, t, stray))
            })
            .collect();
        let stray = tables.iter().map(|t| t.2).sum();
        // Values whose group the file has no scale for read as NaN, as `Quant::apply` reads them.
        let already = Summary {
            total: stray,
            nan: stray,
            ..Summary::default()
        };
        // Each group's scale and bias, read once rather than in both passes over the counts.
        let scales: Vec<Vec<(f64, f64)>> = tables
            .par_iter()
            .map(|(lo, t, _)| {
                (*lo..*lo + (t.len() / k) as u64)
                    .map(|gi| g.get_or_nan(gi))
                    .collect()
            })
            .collect();
        // Every (value, count) of the tensor, group by group.
        from_counted_values(already, |f| {
            for ((lo, t, _), sb) in tables.iter().zip(&scales) {
                for ((gi, tab), &(scale, bias)) in (*lo..).zip(t.chunks_exact(k)).zip(sb) {
                    for (code, (&n, &v)) in tab.iter().zip(code_values).enumerate() {
                        let n = n.get();
                        if n > 0 {
                            // A codebook is indexed by the code itself.
                            let q = if g.codebook.is_some() { code as f64 } else { v };
                            f(g.real(q, gi, scale, bias), n);
                        }
                    }
                }
            }
        })
    }
}

/// The groups memory elements `m0..m1` can fall in, as a range `lo..hi` within `0..groups`:
/// those of the group rows of the matrix rows they lie in.
fn part_groups(
    g: &crate::model::ScaleBiasGroups,
    walk: GroupWalk,
    m0: u64,
    m1: u64,
    groups: u64,
) -> (u64, u64) {
    let size = g.size.max(1);
    if g.cols == 0 {
        return ((m0 / size).min(groups), (m1.div_ceil(size)).min(groups));
    }
    let cols = g.cols;
    let (r0, r1) = match walk {
        GroupWalk::Gptq { cols, per } => (m0 / per / cols * per, ((m1 - 1) / per / cols + 1) * per),
        _ => (m0 / cols, (m1 - 1) / cols + 1),
    };
    let per_row = cols.div_ceil(size);
    let group_row = |r: u64| g.group_of(r.saturating_mul(cols)) / per_row;
    let (lo, hi) = match &g.row_map {
        // Act-order's group rows, in any order.
        Some(_) => (r0..r1).fold((u64::MAX, 0), |(lo, hi), r| {
            let gr = group_row(r);
            (lo.min(gr), hi.max(gr.saturating_add(1)))
        }),
        None => (group_row(r0), group_row(r1 - 1).saturating_add(1)),
    };
    (
        lo.saturating_mul(per_row).min(groups),
        hi.saturating_mul(per_row)
            .min(groups)
            .max(lo.saturating_mul(per_row).min(groups)),
    )
}

/// Counts the codes of memory elements `m0..m1` into `t`, which holds `k` entries for each group
/// from `lo` on; returns how many fell in no group the table holds.
fn count_group_codes<C: Counter>(
    bytes: &[u8],
    bits: u32,
    g: &crate::model::ScaleBiasGroups,
    walk: GroupWalk,
    (m0, m1): (u64, u64),
    (lo, k): (u64, usize),
    t: &mut [C],
) -> u64 {
    struct Count<'a, C> {
        bytes: &'a [u8],
        bits: u32,
        lo: u64,
        k: usize,
        t: &'a mut [C],
        stray: u64,
    }
    impl<C: Counter> Count<'_, C> {
        #[inline]
        fn base(&self, group: u64) -> Option<usize> {
            usize::try_from(group.checked_sub(self.lo)?)
                .ok()?
                .checked_mul(self.k)
        }
    }
    impl<C: Counter> GroupVisit for Count<'_, C> {
        fn run(&mut self, group: u64, run: Range<u64>, _: u64, _: u64) {
            let k = self.k;
            let table = self
                .base(group)
                .and_then(|b| self.t.get_mut(b..b.checked_add(k)?));
            let Some(table) = table else {
                self.stray += run.end - run.start;
                return;
            };
            self.stray += for_codes(self.bytes, self.bits, run, |_, code| {
                if let Some(n) = table.get_mut(code) {
                    n.bump();
                }
            });
        }
        #[inline]
        fn one(&mut self, group: u64, m: u64, _: u64, _: u64) {
            let at = self
                .base(group)
                .zip(code_at(self.bytes, self.bits, m))
                .and_then(|(b, c)| self.t.get_mut(b.checked_add(c)?));
            match at {
                Some(n) => n.bump(),
                None => self.stray += 1,
            }
        }
    }
    let mut count = Count {
        bytes,
        bits,
        lo,
        k,
        t,
        stray: 0,
    };
    // The matrix position is not needed here: any column count will do.
    walk_groups(g, walk, (m0, m1), g.cols.max(1), &mut count);
    count.stray
}

/// Calls `f(j, code)` for the `j`-th memory element of `run`; returns how many elements the
/// bytes do not hold. The width is matched once per run, not per value.
#[inline]
fn for_codes(bytes: &[u8], bits: u32, run: Range<u64>, mut f: impl FnMut(usize, usize)) -> u64 {
    if run.end == run.start + 1 {
        // GPTQ's and AWQ's runs of one.
        return match code_at(bytes, bits, run.start) {
            Some(c) => {
                f(0, c);
                0
            }
            None => 1,
        };
    }
    let whole = || {
        let end = usize::try_from(run.end.checked_mul(u64::from(bits))?.div_ceil(8)).ok()?;
        (end <= bytes.len()).then_some(())
    };
    if whole().is_none() {
        let mut missing = 0;
        for (j, m) in run.enumerate() {
            match code_at(bytes, bits, m) {
                Some(c) => f(j, c),
                None => missing += 1,
            }
        }
        return missing;
    }
    match bits {
        8 => {
            let (a, b) = (run.start as usize, run.end as usize);
            for (j, &c) in bytes[a..b].iter().enumerate() {
                f(j, usize::from(c));
            }
        }
        4 => {
            for (j, m) in run.enumerate() {
                let byte = bytes[(m / 2) as usize];
                f(j, usize::from((byte >> (4 * (m % 2))) & 0x0f));
            }
        }
        _ => {
            for (j, m) in run.enumerate() {
                f(j, code_at(bytes, bits, m).unwrap_or(0));
            }
        }
    }
    0
}

/// What [`walk_groups`] visits: runs of memory elements in one group and row from a column on,
/// and single elements (GPTQ's and AWQ's, whose memory neighbours lie in other rows or columns).
trait GroupVisit {
    fn run(&mut self, group: u64, run: Range<u64>, row: u64, column: u64);
    fn one(&mut self, group: u64, m: u64, row: u64, column: u64);
}

/// Calls `visit` for runs of memory elements in order through `m0..m1`,
/// each in one group and one row of the logical matrix of `cols` columns (the groups' own columns
/// when they tile a matrix), from `column` on: the group looked up once per run, word or row,
/// and the place kept by counting rather than divided out for every value. GPTQ's and AWQ's
/// words give runs of one value (their neighbours in memory are in other rows or columns).
fn walk_groups(
    g: &crate::model::ScaleBiasGroups,
    walk: GroupWalk,
    (m0, m1): (u64, u64),
    cols: u64,
    visit: &mut impl GroupVisit,
) {
    // The group row of matrix row `r` (GPTQ's `g_idx`, or `r / rows`).
    let per_row = g.cols.div_ceil(g.size.max(1)).max(1);
    let group_row = |r: u64| g.group_of(r.saturating_mul(g.cols)) / per_row;
    let cols = cols.max(1);
    match walk {
        // bitsandbytes' swapped pairs lie within a row (its columns are even): a run holds them
        // both.
        GroupWalk::Runs { .. } => {
            let mut i = m0;
            while i < m1 {
                let (gi, len) = g.segment(i);
                let end = i.saturating_add(len.max(1)).min(m1);
                while i < end {
                    let (r, c) = (i / cols, i % cols);
                    let stop = end.min(i + (cols - c));
                    visit.run(gi, i..stop, r, c);
                    i = stop;
                }
            }
        }
        GroupWalk::Gptq { cols, per } => {
            let mut rows_of_block = vec![0u64; per as usize];
            let mut block = u64::MAX;
            for w in m0 / per..m1.div_ceil(per) {
                let (rb, c) = (w / cols, w % cols);
                if rb != block {
                    block = rb;
                    for (j, r) in rows_of_block.iter_mut().enumerate() {
                        *r = group_row(rb * per + j as u64);
                    }
                }
                for (j, &gr) in rows_of_block.iter().enumerate() {
                    let m = w * per + j as u64;
                    if (m0..m1).contains(&m) {
                        let group = gr.saturating_mul(cols).saturating_add(c);
                        visit.one(group, m, rb * per + j as u64, c);
                    }
                }
            }
        }
        GroupWalk::Awq { cols } => {
            let layout = crate::model::Layout::AwqOrder;
            let (mut row, mut gr) = (u64::MAX, 0);
            for w in m0 / 8..m1.div_ceil(8) {
                let l0 = w * 8;
                let (r, c0) = (l0 / cols, l0 % cols);
                if r != row {
                    row = r;
                    gr = group_row(r);
                }
                for m in (l0..l0 + 8).filter(|m| (m0..m1).contains(m)) {
                    let c = c0 + (layout.logical_of(m) - l0);
                    visit.one(gr.saturating_mul(cols).saturating_add(c), m, r, c);
                }
            }
        }
    }
}

/// How the memory of quantized codes of at most 8 bits is walked group by group, with the code
/// width and each code's value before scaling; `None` where it is not.
fn group_walk(elem: Elem, q: &Quant) -> Option<(GroupWalk, u32, Vec<f64>)> {
    use crate::model::Layout;
    let g = q.scale_bias()?;
    let (bits, code_values) = small_codes(elem)?;
    let walk = match q.layout() {
        None => GroupWalk::Runs { swapped: false },
        Some(Layout::HighNibbleFirst) if g.size.is_multiple_of(2) && g.cols.is_multiple_of(2) => {
            GroupWalk::Runs { swapped: true }
        }
        Some(Layout::Gptq { cols, per }) if cols == g.cols && g.size == 1 && per > 0 => {
            GroupWalk::Gptq { cols, per }
        }
        Some(Layout::AwqOrder) if g.size == 1 && g.cols > 0 && g.cols.is_multiple_of(8) => {
            GroupWalk::Awq { cols: g.cols }
        }
        Some(_) => return None,
    };
    Some((walk, bits, code_values))
}

/// All-zero rows and columns of a matrix of quantized codes of at most 8 bits (GPTQ, AWQ,
/// compressed-tensors, bitsandbytes, MLX), found from the codes: which code of which group is a
/// real zero is worked out once per group (a bit each), then the codes are walked in memory order
/// as the statistics walk them, without decoding a value. `None` where the groups are not walked
/// so, or would need more than 64 MB of bits.
#[allow(clippy::type_complexity)]
fn zero_lines_by_codes(
    elem: Elem,
    bytes: &[u8],
    q: &Quant,
    rows: u64,
    cols: u64,
) -> Option<(Vec<bool>, Vec<bool>)> {
    let g = q.scale_bias()?;
    let (walk, bits, code_values) = group_walk(elem, q)?;
    if g.cols > 0 && g.cols != cols {
        return None;
    }
    if matches!(walk, GroupWalk::Runs { swapped: true }) && !cols.is_multiple_of(2) {
        return None;
    }
    let k = code_values.len();
    let groups = g.len();
    let bits_needed = groups.checked_mul(k)?;
    if bits_needed / 8 > 64 << 20 {
        return None;
    }
    // Bit `g · k + code`: the code is a real zero in group `g` (NaN is not).
    let words = bits_needed.div_ceil(64);
    let zero_bits: Vec<u64> = (0..words)
        .into_par_iter()
        .map(|w| {
            let mut word = 0u64;
            let mut sb = (u64::MAX, (f64::NAN, f64::NAN));
            for b in 0..64u64 {
                let e = w as u64 * 64 + b;
                let (gi, code) = (e / k as u64, (e % k as u64) as usize);
                if gi >= groups as u64 {
                    break;
                }
                if sb.0 != gi {
                    sb = (gi, g.get_or_nan(gi));
                }
                let (scale, bias) = sb.1;
                let v = if g.codebook.is_some() {
                    code as f64
                } else {
                    code_values[code]
                };
                if g.real(v, gi, scale, bias) == 0.0 {
                    word |= 1 << b;
                }
            }
            word
        })
        .collect();
    let (nrows, ncols) = (usize::try_from(rows).ok()?, usize::try_from(cols).ok()?);
    let elements = rows.checked_mul(cols)?;
    let parts = rayon::current_num_threads().max(1) as u64;
    let step = elements.div_ceil(parts).div_ceil(64).max(1) * 64;
    Some(
        (0..parts)
            .into_par_iter()
            .map(|p| {
                let (m0, m1) = ((p * step).min(elements), ((p + 1) * step).min(elements));
                let mut lines = ZeroLines {
                    bytes,
                    bits,
                    k,
                    zero_bits: &zero_bits,
                    swapped: matches!(walk, GroupWalk::Runs { swapped: true }),
                    nr: vec![false; nrows],
                    nc: vec![false; ncols],
                };
                walk_groups(g, walk, (m0, m1), cols, &mut lines);
                let (nr, nc) = (lines.nr, lines.nc);
                (nr, nc)
            })
            .reduce(
                || (vec![false; nrows], vec![false; ncols]),
                |(mut ra, mut ca), (rb, cb)| {
                    ra.iter_mut().zip(rb).for_each(|(a, b)| *a |= b);
                    ca.iter_mut().zip(cb).for_each(|(a, b)| *a |= b);
                    (ra, ca)
                },
            ),
    )
}

/// The walk of [`zero_lines_by_codes`]: flags of rows and columns holding a non-zero value.
struct ZeroLines<'a> {
    bytes: &'a [u8],
    bits: u32,
    k: usize,
    /// Bit `group · k + code`: the code is a real zero in the group.
    zero_bits: &'a [u64],
    /// bitsandbytes' pairs: memory `m` holds logical `m ^ 1`.
    swapped: bool,
    nr: Vec<bool>,
    nc: Vec<bool>,
}

impl ZeroLines<'_> {
    #[inline]
    fn is_zero(&self, group: u64, code: usize) -> bool {
        usize::try_from(group)
            .ok()
            .and_then(|gi| gi.checked_mul(self.k)?.checked_add(code))
            .and_then(|e| self.zero_bits.get(e / 64).map(|w| (w >> (e % 64)) & 1 == 1))
            .unwrap_or(false)
    }

    /// The `k` bits of a group when `k` is at most 64 (they span at most two words).
    fn group_mask(&self, group: u64) -> Option<u64> {
        let k = self.k;
        if k > 64 {
            return None;
        }
        let e = usize::try_from(group).ok()?.checked_mul(k)?;
        let (w, b) = (e / 64, e % 64);
        let lo = self.zero_bits.get(w).copied().unwrap_or(0) >> b;
        let hi = match b {
            0 => 0,
            _ => self.zero_bits.get(w + 1).copied().unwrap_or(0) << (64 - b),
        };
        let keep = if k == 64 { u64::MAX } else { (1 << k) - 1 };
        Some((lo | hi) & keep)
    }

    fn mark(&mut self, row: u64, column: usize) {
        if let Some(f) = self.nr.get_mut(row as usize) {
            *f = true;
        }
        if let Some(f) = self.nc.get_mut(column) {
            *f = true;
        }
    }
}

impl GroupVisit for ZeroLines<'_> {
    fn run(&mut self, group: u64, run: Range<u64>, row: u64, column: u64) {
        // The group's zero codes as one mask, taken once per run.
        let mask = self.group_mask(group);
        let (mut any, swapped) = (false, self.swapped);
        let (bytes, bits) = (self.bytes, self.bits);
        let mut nonzero_cols = std::mem::take(&mut self.nc);
        let missing = for_codes(bytes, bits, run, |j, code| {
            let zero = match mask {
                Some(m) => (m >> code) & 1 == 1,
                None => self.is_zero(group, code),
            };
            if !zero {
                any = true;
                let c = column as usize + if swapped { j ^ 1 } else { j };
                if let Some(f) = nonzero_cols.get_mut(c) {
                    *f = true;
                }
            }
        });
        self.nc = nonzero_cols;
        if (any || missing > 0)
            && let Some(f) = self.nr.get_mut(row as usize)
        {
            *f = true;
        }
    }

    #[inline]
    fn one(&mut self, group: u64, m: u64, row: u64, column: u64) {
        let zero = code_at(self.bytes, self.bits, m).is_some_and(|code| self.is_zero(group, code));
        if !zero {
            self.mark(row, column as usize);
        }
    }
}

/// `(element bytes, mask)` such that an element is ±0 exactly when its little-endian bits under
/// the mask are 0 (NaN is non-zero, as in [`zero_lines`]); `None` where decoding is needed.
fn raw_zero_mask(elem: Elem) -> Option<(usize, u64)> {
    Some(match elem {
        Elem::F64 => (8, 0x7fff_ffff_ffff_ffff),
        Elem::F32 => (4, 0x7fff_ffff),
        Elem::F16 | Elem::BF16 => (2, 0x7fff),
        Elem::I64 | Elem::U64 => (8, u64::MAX),
        Elem::I32 | Elem::U32 => (4, 0xffff_ffff),
        Elem::I16 | Elem::U16 => (2, 0xffff),
        Elem::I8 | Elem::U8 | Elem::Bool => (1, 0xff),
        // ±0 is 0x00 / 0x80; the FNUZ kinds have no −0 (0x80 is their NaN).
        Elem::Fp8(Fp8Kind::E4M3FN | Fp8Kind::E5M2) => (1, 0x7f),
        Elem::Fp8(Fp8Kind::E4M3FNUZ | Fp8Kind::E5M2FNUZ) => (1, 0xff),
        _ => return None,
    })
}

/// All-zero rows and columns of `bytes` seen as `rows × cols` (row-major). NaN counts as non-zero.
/// Returns `(zero_rows, zero_row_count, zero_cols, zero_col_count)`, lists capped at
/// [`MAX_LISTED_LINES`]. `cols` must be a whole number of blocks.
pub(crate) fn zero_lines(
    elem: Elem,
    bytes: &[u8],
    quant: Option<&Quant>,
    rows: u64,
    cols: u64,
    want_rows: bool,
    want_cols: bool,
) -> (Vec<u64>, u64, Vec<u64>, u64) {
    let (be, bb) = elem.block();
    let Ok(cols_us) = usize::try_from(cols) else {
        return (Vec::new(), 0, Vec::new(), 0);
    };
    if cols_us == 0 || !cols_us.is_multiple_of(be) || rows == 0 {
        return (Vec::new(), 0, Vec::new(), 0);
    }
    // Checked once: whether a quantized value is zero exactly when its code is.
    let raw_zeros_are_zeros = quant.is_some_and(Quant::zero_is_code_zero);
    // Quantized codes whose zeros are not the raw bytes' (zero points, codebooks, packed
    // layouts, codes under a byte): found from the codes, group by group.
    if let Some(q) = quant
        && (q.layout().is_some() || !raw_zeros_are_zeros || raw_zero_mask(elem).is_none())
        && let Some((nr, nc)) = zero_lines_by_codes(elem, bytes, q, rows, cols)
    {
        return lines_from_flags(nr, nc, want_rows, want_cols);
    }
    if quant.and_then(Quant::layout).is_some() {
        return zero_lines_gathered(elem, bytes, quant, rows, cols_us, want_rows, want_cols);
    }
    let row_bytes = cols_us / be * bb;
    // Rows per work item: about one chunk of bytes.
    let rows_per = (CHUNK_BYTES / row_bytes.max(1)).max(1);
    let ncol = if want_cols { cols_us } else { 0 };
    let (zero_rows, nonzero_cols) = bytes
        .par_chunks(rows_per * row_bytes)
        .enumerate()
        .fold(
            || (Vec::new(), vec![false; ncol], vec![0.0f64; BLOCK.max(be)]),
            |(mut zr, mut nz, mut buf), (ci, chunk)| {
                for (ri, row) in chunk.chunks_exact(row_bytes).enumerate() {
                    // Raw bits where "is zero" is a mask test: no decoding, and a live row stops
                    // at its first non-zero element (a 1 GB embedding was decoded in full here).
                    // A quantized zero is the zero point's integer, which need not be 0.
                    if let Some((w, mask)) =
                        raw_zero_mask(elem).filter(|_| quant.is_none() || raw_zeros_are_zeros)
                    {
                        let word = |c: &[u8]| {
                            let mut b = [0u8; 8];
                            b[..c.len()].copy_from_slice(c);
                            u64::from_le_bytes(b) & mask != 0
                        };
                        let any = if want_cols {
                            let mut any = false;
                            for (j, c) in row.chunks_exact(w).enumerate() {
                                if word(c) {
                                    any = true;
                                    if let Some(f) = nz.get_mut(j) {
                                        *f = true;
                                    }
                                }
                            }
                            any
                        } else {
                            row.chunks_exact(w).any(word)
                        };
                        if !any && want_rows {
                            zr.push((ci * rows_per + ri) as u64);
                        }
                        continue;
                    }
                    let mut any = false;
                    let per = (BLOCK / be).max(1) * bb;
                    for (pi, part) in row.chunks(per).enumerate() {
                        let n = part.len() / bb * be;
                        let Some(out) = buf.get_mut(..n) else {
                            continue;
                        };
                        elem.decode_into(part, out);
                        let base = pi * (per / bb * be);
                        if let Some(q) = quant {
                            let row_first = ((ci * rows_per + ri) * cols_us) as u64;
                            q.apply(row_first + base as u64, out);
                        }
                        for (j, &x) in out.iter().enumerate() {
                            if x != 0.0 {
                                any = true;
                                if let Some(c) = nz.get_mut(base + j) {
                                    *c = true;
                                }
                            }
                        }
                        if any && !want_cols {
                            break;
                        }
                    }
                    if !any && want_rows {
                        zr.push((ci * rows_per + ri) as u64);
                    }
                }
                (zr, nz, buf)
            },
        )
        .map(|(zr, nz, _)| (zr, nz))
        .reduce(
            || (Vec::new(), vec![false; ncol]),
            |(mut za, mut na), (zb, nb)| {
                za.extend(zb);
                na.iter_mut().zip(nb).for_each(|(a, b)| *a |= b);
                (za, na)
            },
        );
    let mut zero_rows = zero_rows;
    zero_rows.sort_unstable();
    let zr_count = zero_rows.len() as u64;
    zero_rows.truncate(MAX_LISTED_LINES);
    let zero_cols: Vec<u64> = nonzero_cols
        .iter()
        .enumerate()
        .filter(|(_, nz)| !**nz)
        .map(|(i, _)| i as u64)
        .collect();
    let zc_count = zero_cols.len() as u64;
    let mut zero_cols = zero_cols;
    zero_cols.truncate(MAX_LISTED_LINES);
    (zero_rows, zr_count, zero_cols, zc_count)
}

/// [`zero_lines`] of a matrix whose values are not row-major ([`crate::model::Layout`]): the
/// memory read in order, each value's logical row and column marked where it is not zero.
fn zero_lines_gathered(
    elem: Elem,
    bytes: &[u8],
    quant: Option<&Quant>,
    rows: u64,
    cols: usize,
    want_rows: bool,
    want_cols: bool,
) -> (Vec<u64>, u64, Vec<u64>, u64) {
    let Some(layout) = quant.and_then(Quant::layout) else {
        return (Vec::new(), 0, Vec::new(), 0);
    };
    let (Ok(nrows), cols64) = (usize::try_from(rows), cols as u64) else {
        return (Vec::new(), 0, Vec::new(), 0);
    };
    let (be, bb) = elem.block();
    let per_buf = (BLOCK / be).max(1);
    let cb = chunk_bytes(elem);
    let per_chunk = (cb / bb * be) as u64;
    let (nonzero_rows, nonzero_cols) = bytes
        .par_chunks(cb)
        .enumerate()
        .fold(
            || {
                (
                    vec![false; nrows],
                    vec![false; cols],
                    vec![0.0f64; BLOCK.max(be)],
                )
            },
            |(mut nr, mut nc, mut buf), (ci, chunk)| {
                for (pi, part) in chunk.chunks(per_buf * bb).enumerate() {
                    let n = part.len() / bb * be;
                    let Some(out) = buf.get_mut(..n) else {
                        continue;
                    };
                    elem.decode_into(part, out);
                    let first = ci as u64 * per_chunk + (pi * per_buf * be) as u64;
                    if let Some(q) = quant {
                        q.apply(first, out);
                    }
                    for (m, &x) in (first..).zip(out.iter()) {
                        if x != 0.0 {
                            let l = layout.logical_of(m);
                            let (r, c) = ((l / cols64) as usize, (l % cols64) as usize);
                            if let Some(f) = nr.get_mut(r) {
                                *f = true;
                            }
                            if let Some(f) = nc.get_mut(c) {
                                *f = true;
                            }
                        }
                    }
                }
                (nr, nc, buf)
            },
        )
        .map(|(nr, nc, _)| (nr, nc))
        .reduce(
            || (vec![false; nrows], vec![false; cols]),
            |(mut ra, mut ca), (rb, cb)| {
                ra.iter_mut().zip(rb).for_each(|(a, b)| *a |= b);
                ca.iter_mut().zip(cb).for_each(|(a, b)| *a |= b);
                (ra, ca)
            },
        );
    lines_from_flags(nonzero_rows, nonzero_cols, want_rows, want_cols)
}

/// The zero rows and columns (capped lists and counts) from flags of non-zero lines.
fn lines_from_flags(
    nonzero_rows: Vec<bool>,
    nonzero_cols: Vec<bool>,
    want_rows: bool,
    want_cols: bool,
) -> (Vec<u64>, u64, Vec<u64>, u64) {
    let zeros = |flags: Vec<bool>, want: bool| {
        if !want {
            return (Vec::new(), 0);
        }
        let mut list: Vec<u64> = flags
            .iter()
            .enumerate()
            .filter(|(_, nz)| !**nz)
            .map(|(i, _)| i as u64)
            .collect();
        let count = list.len() as u64;
        list.truncate(MAX_LISTED_LINES);
        (list, count)
    };
    let (zero_rows, zr_count) = zeros(nonzero_rows, want_rows);
    let (zero_cols, zc_count) = zeros(nonzero_cols, want_cols);
    (zero_rows, zr_count, zero_cols, zc_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn quantized_integers_are_read_as_reals() {
        // [2, 3] int8, one scale per column (axis 1), zero point 10 in the last column.
        let q = Quant::new(vec![0.5, 2.0, 1.0], vec![0.0, 0.0, 10.0], 1, &[2, 3]).unwrap();
        let raw: Vec<u8> = [4i8, -1, 10, 6, 0, 10].iter().map(|&v| v as u8).collect();
        let c = compute(Elem::I8, &raw, Some(&q));
        // Reals: [2, -2, 0; 3, 0, 0].
        assert_eq!((c.summary.min, c.summary.max), (-2.0, 3.0));
        assert_eq!(c.summary.zeros, 3);
        assert!((c.summary.moments.mean - 0.5).abs() < 1e-12);
        // The last column is all zero point: a dead column, though its bytes are not 0.
        let (_, nr, zc, nc) = zero_lines(Elem::I8, &raw, Some(&q), 2, 3, true, true);
        assert_eq!((nr, zc, nc), (0, vec![2], 1));
        let (_, _, zc, _) = zero_lines(Elem::I8, &raw, None, 2, 3, true, true);
        assert!(zc.is_empty(), "stored 10s are not zeros");
        // Scales that do not fit the shape are refused.
        assert!(Quant::new(vec![1.0, 2.0], vec![], 1, &[2, 3]).is_none());
        assert!(Quant::new(vec![f64::NAN], vec![], 0, &[2, 3]).is_none());
    }

    #[test]
    fn dead_rows_of_scaled_fp8_are_found_in_the_raw_codes() {
        // [3, 4] e4m3fn, one scale per row; row 1 is +0 and −0 only, row 2 holds a NaN.
        let raw = [
            0x38, 0x40, 0xb8, 0x01, 0x00, 0x80, 0x80, 0x00, 0x00, 0x7f, 0x00, 0x00,
        ];
        let q = Quant::new(vec![0.5, 2.0, 4.0], vec![], 0, &[3, 4]).unwrap();
        assert!(q.zero_is_code_zero());
        let elem = Elem::Fp8(Fp8Kind::E4M3FN);
        let (rows, nr, cols, nc) = zero_lines(elem, &raw, Some(&q), 3, 4, true, true);
        assert_eq!((rows, nr, cols, nc), (vec![1], 1, Vec::new(), 0));
        // A zero point makes code 0 a non-zero value: the values are decoded instead.
        let shifted = Quant::new(vec![0.5, 2.0, 4.0], vec![1.0, 1.0, 1.0], 0, &[3, 4]).unwrap();
        assert!(!shifted.zero_is_code_zero());
        let (rows, ..) = zero_lines(elem, &raw, Some(&shifted), 3, 4, true, true);
        assert!(rows.is_empty());
    }

    /// fp8 codes with a scale per 128 × 128 block (the last blocks cut short), over several
    /// chunks: counting codes per group gives the figures decoding every value gives.
    #[test]
    fn group_code_counts_match_decoding_every_value() {
        use crate::model::{GroupOffset, ScaleBiasGroups};
        let (rows, cols) = (300u64, 20_000u64);
        let mut x = 0x9e37_79b9u32;
        let raw: Vec<u8> = (0..rows * cols)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // No NaN codes (0x7f / 0xff), a few exact zeros.
                match (x >> 8) as u8 {
                    0x7f | 0xff => 0,
                    b => b,
                }
            })
            .collect();
        let blocks = rows.div_ceil(128) * cols.div_ceil(128);
        let scales: Vec<u8> = (0..blocks)
            .flat_map(|b| (0.001 * (1 + b % 7) as f32).to_le_bytes())
            .collect();
        let groups = ScaleBiasGroups::tiles(
            128,
            128,
            cols,
            crate::model::DType::F32,
            scales.into(),
            GroupOffset::Zero(0.0),
        );
        let q = Quant::scale_bias_groups(groups).unwrap();
        let elem = Elem::Fp8(crate::stats::decode::Fp8Kind::E4M3FN);
        let a = counts_match_decoding("blocks", elem, &raw, &q);
        assert!(a.zeros > 0 && a.min < 0.0 && a.max > 0.0);
        // Groups of 100 000 values (u32 counters rather than u16), the last one cut short.
        let scales: Vec<u8> = (0..(rows * cols).div_ceil(100_000))
            .flat_map(|b| (0.001 * (1 + b % 5) as f32).to_le_bytes())
            .collect();
        let runs = ScaleBiasGroups::runs(
            100_000,
            crate::model::DType::F32,
            scales.into(),
            GroupOffset::Zero(0.0),
        );
        let q = Quant::scale_bias_groups(runs).unwrap();
        counts_match_decoding("runs of 100 000", elem, &raw, &q);
    }

    /// Asserts that counting codes by group gives the figures of decoding every value through
    /// `Quant::apply`; returns them.
    fn counts_match_decoding(name: &str, elem: Elem, raw: &[u8], q: &Quant) -> Summary {
        let by_codes = compute_by_group_codes(elem, raw, q)
            .unwrap_or_else(|| panic!("{name}: not counted by group"));
        let wide = compute_wide(elem, raw, Some(q));
        let (a, b) = (&by_codes.summary, &wide.summary);
        assert_eq!(
            (a.total, a.nan, a.inf, a.zeros, a.min, a.max),
            (b.total, b.nan, b.inf, b.zeros, b.min, b.max),
            "{name}"
        );
        let tol = 1e-12 * b.moments.mean.abs().max(1e-9);
        assert!((a.moments.mean - b.moments.mean).abs() <= tol, "{name}");
        assert!(
            (a.moments.m2 - b.moments.m2).abs() <= 1e-9 * b.moments.m2,
            "{name}"
        );
        assert_eq!(by_codes.histogram.counts, wide.histogram.counts, "{name}");
        by_codes.summary
    }

    /// All-zero rows and columns of `raw` found by decoding every value through `Quant::apply`.
    fn decoded_zero_lines(elem: Elem, raw: &[u8], q: &Quant, cols: u64) -> (Vec<u64>, Vec<u64>) {
        let n = raw.len() as u64 * 8 / u64::from(small_codes(elem).unwrap().0);
        let mut vals = vec![0.0; n as usize];
        elem.decode_into(raw, &mut vals);
        q.apply(0, &mut vals);
        let rows = n / cols;
        let (mut nr, mut nc) = (vec![false; rows as usize], vec![false; cols as usize]);
        for (m, &v) in vals.iter().enumerate() {
            let l = q.layout().map_or(m as u64, |l| l.logical_of(m as u64));
            if v != 0.0 {
                nr[(l / cols) as usize] = true;
                nc[(l % cols) as usize] = true;
            }
        }
        let zeros = |f: Vec<bool>| (0..f.len() as u64).filter(|&i| !f[i as usize]).collect();
        (zeros(nr), zeros(nc))
    }

    /// 4-bit and 3-bit codes in every packing the group counts walk (runs, bitsandbytes' swapped
    /// nibbles with a codebook, GPTQ with and without act-order, AWQ, per-group palettes): the
    /// same figures as decoding every value through `Quant::apply`, and the same dead rows and
    /// columns (groups of zero scale planted to make some).
    #[test]
    fn sub_byte_group_code_counts_match_decoding_every_value() {
        use crate::model::{DType, GroupOffset, Layout, ScaleBiasGroups, ZeroPacking};
        let (rows, cols) = (512u64, 256u64);
        let n = rows * cols;
        let mut x = 0x2545_f491u32;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let nibbles: Vec<u8> = (0..n / 2).map(|_| (next() >> 9) as u8).collect();
        // F16 values `v(i)` of groups `0..count`, zero for the groups in `dead`.
        let f16s = |v: &dyn Fn(u64) -> f32, count: u64, dead: &dyn Fn(u64) -> bool| {
            (0..count)
                .flat_map(|i| half::f16::from_f32(if dead(i) { 0.0 } else { v(i) }).to_le_bytes())
                .collect::<Vec<u8>>()
                .into()
        };
        let scale = |i: u64| 0.01 + (i % 13) as f32 * 0.003;
        let check = |name: &str, elem: Elem, raw: &[u8], q: Quant, dead: (&[u64], &[u64])| {
            let a = counts_match_decoding(name, elem, raw, &q);
            assert!(a.min < a.max, "{name}");
            let (nr, nc) = zero_lines_by_codes(elem, raw, &q, rows, cols)
                .unwrap_or_else(|| panic!("{name}: dead lines not found from codes"));
            let (zr, _, zc, _) = lines_from_flags(nr, nc, true, true);
            let (want_r, want_c) = decoded_zero_lines(elem, raw, &q, cols);
            assert_eq!((&zr, &zc), (&want_r, &want_c), "{name}: dead lines");
            assert_eq!(
                (zr.as_slice(), zc.as_slice()),
                dead,
                "{name}: the planted ones"
            );
            // `zero_lines` takes this way.
            let (zr2, _, zc2, _) = zero_lines(elem, raw, Some(&q), rows, cols, true, true);
            assert_eq!((zr2, zc2), (zr, zc), "{name}");
        };
        // MLX-like: runs of 64 (four to a row), a scale and a bias each; row 5 dead.
        let row5 = |i: u64| i / 4 == 5;
        let runs = ScaleBiasGroups::runs(
            64,
            DType::F16,
            f16s(&scale, n / 64, &row5),
            GroupOffset::Bias(f16s(&|i| -(i as f32) * 0.001, n / 64, &row5)),
        );
        let q = Quant::scale_bias_groups(runs.clone()).unwrap();
        check("runs", Elem::U4, &nibbles, q, (&[5], &[]));
        // Signed codes, groups of a row's 32 columns tiled; row 7 dead.
        let tiles = ScaleBiasGroups::tiles(
            32,
            1,
            cols,
            DType::F16,
            f16s(&scale, n / 32, &|i| i / 8 == 7),
            GroupOffset::Zero(0.0),
        );
        let q = Quant::scale_bias_groups(tiles).unwrap();
        check("i4 tiles", Elem::I4, &nibbles, q, (&[7], &[]));
        // bitsandbytes: NF4-like codebook (no zero in it), pairs swapped.
        let book: Vec<f64> = (0..16).map(|c| (c as f64 - 7.5) / 7.5).collect();
        let nf4 = ScaleBiasGroups {
            codebook: Some(book.into()),
            ..runs.clone()
        };
        let q = Quant::scale_bias_groups(nf4)
            .unwrap()
            .with_layout(Layout::HighNibbleFirst);
        check("nf4", Elem::U4, &nibbles, q, (&[5], &[]));
        // GPTQ: [rows, cols] as words of 8 rows of a column; groups of 32 rows per column, zero
        // points packed down the rows; column 9 dead. Then act-order's permuted group rows.
        let col9 = |i: u64| i % cols == 9;
        let zeros: Vec<u8> = (0..(rows / 32) * cols / 2).map(|_| next() as u8).collect();
        let gptq = ScaleBiasGroups::tiles(
            1,
            32,
            cols,
            DType::F16,
            f16s(&scale, (rows / 32) * cols, &col9),
            GroupOffset::ZeroPoints {
                bytes: zeros.clone().into(),
                bits: 4,
                row_groups: cols,
                packing: ZeroPacking::DownWords,
                plus: 1,
            },
        );
        let layout = Layout::Gptq { cols, per: 8 };
        let q = Quant::scale_bias_groups(gptq.clone())
            .unwrap()
            .with_layout(layout);
        check("gptq", Elem::U4, &nibbles, q, (&[], &[9]));
        let g_idx: Vec<u8> = (0..rows)
            .flat_map(|r| (((r * 7) % rows) as i32 / 32).to_le_bytes())
            .collect();
        let act = ScaleBiasGroups {
            row_map: Some(g_idx.into()),
            ..gptq
        };
        let q = Quant::scale_bias_groups(act).unwrap().with_layout(layout);
        check("gptq act-order", Elem::U4, &nibbles, q, (&[], &[9]));
        // AWQ: row-major words out of order, zero points in AWQ's order; column 9 dead.
        let awq = ScaleBiasGroups::tiles(
            1,
            64,
            cols,
            DType::F16,
            f16s(&scale, (rows / 64) * cols, &col9),
            GroupOffset::ZeroPoints {
                bytes: zeros.into(),
                bits: 4,
                row_groups: cols,
                packing: ZeroPacking::AwqRows,
                plus: 0,
            },
        );
        let q = Quant::scale_bias_groups(awq)
            .unwrap()
            .with_layout(Layout::AwqOrder);
        check("awq", Elem::U4, &nibbles, q, (&[], &[9]));
        // Core ML: a palette of 16 per block of 64 rows × 32 columns; the first block column's
        // palettes all zero, so columns 0..32 are dead.
        let blocks = (rows / 64) * (cols / 32);
        let palettes: Vec<f64> = (0..blocks * 16)
            .map(|i| match i / 16 % (cols / 32) {
                0 => 0.0,
                _ => ((i * 37) % 101) as f64 * 0.01 - 0.505,
            })
            .collect();
        let ones: Vec<u8> = (0..blocks).flat_map(|_| 1f32.to_le_bytes()).collect();
        let lut = ScaleBiasGroups {
            codebook: Some(palettes.into()),
            book_stride: 16,
            ..ScaleBiasGroups::tiles(
                32,
                64,
                cols,
                DType::F32,
                ones.into(),
                GroupOffset::Zero(0.0),
            )
        };
        let q = Quant::scale_bias_groups(lut).unwrap();
        let first_block: Vec<u64> = (0..32).collect();
        check("palettes", Elem::U4, &nibbles, q, (&[], &first_block));
        // MLX 3-bit: a little-endian bitstream, 8 values in 3 bytes; row 5 dead.
        let three: Vec<u8> = (0..n / 8 * 3).map(|_| (next() >> 5) as u8).collect();
        let q = Quant::scale_bias_groups(runs).unwrap();
        check("3-bit", Elem::Bits(3), &three, q, (&[5], &[]));
    }

    #[test]
    fn code_counts_span_many_chunks_and_odd_tails() {
        // 3½ chunks of pseudo-random 16-bit codes plus an odd tail: several chunks per thread, so
        // the per-thread tables carry over between chunks and are flushed once.
        let n = (CHUNK_BYTES * 7 / 2) / 2 + 3;
        let mut x = 0x1234_5678u32;
        let codes: Vec<u16> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 7) as u16 & 0x0fff
            })
            .collect();
        let bytes: Vec<u8> = codes.iter().flat_map(|c| c.to_le_bytes()).collect();
        let mut want = vec![0u64; 65536];
        for &c in &codes {
            want[usize::from(c)] += 1;
        }
        assert_eq!(code_counts(2, &bytes), want);
        assert_eq!(code_counts(2, &bytes).iter().sum::<u64>(), n as u64);
    }

    #[test]
    fn moments_merge_equals_direct() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| ((i * 37) % 101) as f64 * 0.25 - 3.0)
            .collect();
        let mut s = Summary::default();
        for c in xs.chunks(77) {
            s.add_block(c);
        }
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let m2: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        assert_eq!(s.moments.n, 1000);
        assert!((s.moments.mean - mean).abs() < 1e-12);
        assert!((s.moments.m2 - m2).abs() < 1e-9 * m2);
    }

    #[test]
    fn large_offset_is_numerically_stable() {
        // Naive Σx² − n·mean² loses everything here; block two-pass + Chan keeps it.
        let xs: Vec<f32> = (0..100_000)
            .map(|i| 1.0e4 + if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        let c = compute(Elem::F32, &f32_bytes(&xs), None);
        let std = (c.summary.moments.m2 / c.summary.moments.n as f64).sqrt();
        assert!((std - 0.5).abs() < 1e-9, "{std}");
    }

    #[test]
    fn wide_and_code_paths_agree() {
        // The same bf16 values through the table path and (widened to f32) through the wide path.
        let vals: Vec<u16> = (0..100_000u32)
            .map(|i| half::bf16::from_f32(((i * 7919) % 2001) as f32 / 1000.0 - 1.0).to_bits())
            .collect();
        let bf: Vec<u8> = vals.iter().flat_map(|x| x.to_le_bytes()).collect();
        let f: Vec<f32> = vals
            .iter()
            .map(|&b| f32::from_bits(u32::from(b) << 16))
            .collect();
        let a = compute(Elem::BF16, &bf, None);
        let b = compute(Elem::F32, &f32_bytes(&f), None);
        assert_eq!(a.summary.moments.n, b.summary.moments.n);
        assert_eq!(a.summary.min, b.summary.min);
        assert_eq!(a.summary.max, b.summary.max);
        assert_eq!(a.summary.zeros, b.summary.zeros);
        assert!((a.summary.moments.mean - b.summary.moments.mean).abs() < 1e-12);
        assert!((a.summary.moments.m2 - b.summary.moments.m2).abs() < 1e-9 * b.summary.moments.m2);
        assert_eq!(a.histogram, b.histogram);
        assert_eq!(a.histogram.counts.iter().sum::<u64>(), 100_000);
    }

    #[test]
    fn histogram_single_value_uses_numpy_range() {
        let c = compute(Elem::F32, &f32_bytes(&[3.0; 10]), None);
        assert_eq!((c.histogram.lo, c.histogram.hi), (2.5, 3.5));
        assert_eq!(c.histogram.counts[HIST_BINS / 2], 10);
    }

    #[test]
    fn zero_lines_finds_rows_and_columns() {
        // 4 × 6, row 2 zero, column 4 zero.
        let mut v = vec![1.0f32; 24];
        for c in 0..6 {
            v[2 * 6 + c] = 0.0;
        }
        for r in 0..4 {
            v[r * 6 + 4] = 0.0;
        }
        let (zr, nr, zc, nc) = zero_lines(Elem::F32, &f32_bytes(&v), None, 4, 6, true, true);
        assert_eq!((zr, nr, zc, nc), (vec![2], 1, vec![4], 1));
        // A NaN is not zero.
        v[2 * 6] = f32::NAN;
        let (zr, _, _, _) = zero_lines(Elem::F32, &f32_bytes(&v), None, 4, 6, true, false);
        assert!(zr.is_empty());
        // The raw-bits path agrees with decoding: bf16 with -0.0 in the dead row, a NaN and a
        // denormal (non-zero) elsewhere; and fp8 (decoded) the same.
        let bf = |x: f32| half::bf16::from_f32(x).to_bits().to_le_bytes();
        let mut w = [1.0f32; 24];
        for c in 0..6 {
            w[6 + c] = if c % 2 == 0 { -0.0 } else { 0.0 };
        }
        for r in [0, 2, 3] {
            w[r * 6 + 3] = 0.0;
        }
        w[5] = f32::NAN; // column 5 still alive
        w[2 * 6 + 1] = 1e-40; // a bf16 denormal: column 1 alive, row 2 alive
        let bytes: Vec<u8> = w.iter().flat_map(|&x| bf(x)).collect();
        let (zr, nr, zc, nc) = zero_lines(Elem::BF16, &bytes, None, 4, 6, true, true);
        assert_eq!((zr, nr, zc, nc), (vec![1], 1, vec![3], 1));
        let i8s: Vec<u8> = w.iter().map(|&x| if x == 0.0 { 0u8 } else { 1 }).collect();
        let (zr, _, zc, _) = zero_lines(Elem::I8, &i8s, None, 4, 6, true, true);
        assert_eq!((zr, zc), (vec![1], vec![3]));
    }
}
