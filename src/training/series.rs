//! Pure series maths: TensorBoard's smoothing, x-axis modes, decimation for drawing, and the
//! "distributions" percentile bands.
//!
//! - [`smooth_ema`] is the 1st-order IIR filter of TensorBoard's scalar chart
//!   (`vz_line_chart2/line-chart.ts`, `resmoothDataset`): started at 0 and debiased by dividing by
//!   `1 - w^n` where `n` counts the finite points so far; non-finite values pass through unsmoothed
//!   and a constant series is left as is.
//! - [`decimate`] is M4 (first, min, max, last of every pixel column, in x order): the polyline of
//!   the result rasterises to the same pixels as the full series, so a million points draw as
//!   ~4 × width vertices. Rejected: LTTB (keeps shape but can drop spikes; costlier) and plain
//!   striding (aliases; loses spikes).
//! - [`compress_histogram`] is TensorBoard's `compressor.compress_histogram` (distribution
//!   plugin): the value at each basis point (0, 6.68, 15.87, 30.85, 50, … percent: ±∞, ±2σ, ±1σ,
//!   ±½σ of a normal) by linear interpolation inside the bucket that crosses it.

use super::{Bucket, HistogramSeries, ScalarSeries};

/// Debiased exponential moving average, exactly as TensorBoard's scalar chart computes it.
/// `weight` is clamped to `0..=1` (the slider goes to 0.999).
pub fn smooth_ema(values: &[f64], weight: f64) -> Vec<f64> {
    let weight = weight.clamp(0.0, 1.0);
    let first = values.first().copied();
    let is_constant = values.iter().all(|&v| Some(v) == first);
    let mut last = 0.0;
    let mut num_accum = 0i32;
    values
        .iter()
        .map(|&v| {
            if is_constant || !v.is_finite() {
                return v;
            }
            last = last * weight + (1.0 - weight) * v;
            num_accum = num_accum.saturating_add(1);
            let debias = if weight == 1.0 {
                1.0
            } else {
                1.0 - weight.powi(num_accum)
            };
            last / debias
        })
        .collect()
}

/// What the x axis shows, as in TensorBoard's "Horizontal axis" setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum XAxis {
    /// Training step.
    #[default]
    Step,
    /// Seconds since the run's first point.
    Relative,
    /// Seconds since the Unix epoch.
    Wall,
}

impl XAxis {
    /// Axis title.
    pub fn label(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::Relative => "relative time (s)",
            Self::Wall => "wall time",
        }
    }

    /// The x value of every point of `series`.
    pub fn xs(self, series: &ScalarSeries) -> Vec<f64> {
        match self {
            Self::Step => series.steps.iter().map(|&s| s as f64).collect(),
            Self::Relative => {
                let start = series.wall_times.first().copied().unwrap_or(0.0);
                series.wall_times.iter().map(|&t| t - start).collect()
            }
            Self::Wall => series.wall_times.clone(),
        }
    }
}

/// M4 decimation of `(xs, ys)` (x ascending) to at most 4 points per column for `columns` pixel
/// columns spanning `x_min..=x_max`. Points outside the range are dropped except the nearest one
/// on each side, so the line still runs to the plot's edge. Non-finite points are skipped.
pub fn decimate(xs: &[f64], ys: &[f64], x_min: f64, x_max: f64, columns: usize) -> Vec<[f64; 2]> {
    let n = xs.len().min(ys.len());
    let (xs, ys) = (&xs[..n], &ys[..n]);
    let columns = columns.max(1);
    let start = xs.partition_point(|&x| x < x_min).saturating_sub(1);
    let end = (xs.partition_point(|&x| x <= x_max) + 1).min(n);
    let width = x_max - x_min;
    if start >= end || width.is_nan() || width <= 0.0 {
        return Vec::new();
    }
    let scale = columns as f64 / width;
    let mut out = Vec::with_capacity((end - start).min(columns * 4 + 4));
    // Per column: first, min, max, last as (index, y).
    let mut current: Option<(i64, [usize; 4])> = None;
    let flush = |out: &mut Vec<[f64; 2]>, idx: [usize; 4]| {
        let mut picked = idx;
        picked.sort_unstable();
        let mut prev = usize::MAX;
        for i in picked {
            if i != prev {
                out.push([xs[i], ys[i]]);
                prev = i;
            }
        }
    };
    for i in start..end {
        let (x, y) = (xs[i], ys[i]);
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        let column = ((x - x_min) * scale).floor() as i64;
        match &mut current {
            Some((c, idx)) if *c == column => {
                if y < ys[idx[1]] {
                    idx[1] = i;
                }
                if y > ys[idx[2]] {
                    idx[2] = i;
                }
                idx[3] = i;
            }
            _ => {
                if let Some((_, idx)) = current.take() {
                    flush(&mut out, idx);
                }
                current = Some((column, [i; 4]));
            }
        }
    }
    if let Some((_, idx)) = current {
        flush(&mut out, idx);
    }
    out
}

/// TensorBoard's basis points for distributions (percent × 100).
pub const NORMAL_HISTOGRAM_BPS: [f64; 9] = [
    0.0, 668.0, 1587.0, 3085.0, 5000.0, 6915.0, 8413.0, 9332.0, 10000.0,
];

fn lerp(x: f64, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    y0 + (x - x0) * (y1 - y0) / (x1 - x0)
}

/// The value at each of `bps` (basis points, ascending, last = 10000) of a bucketed histogram.
pub fn compress_histogram(buckets: &[Bucket], bps: &[f64]) -> Vec<f64> {
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return vec![0.0; bps.len()];
    };
    let (minmin, maxmax) = (first.left, last.right);
    let total: f64 = buckets.iter().map(|b| b.count).sum();
    let top = bps.last().copied().unwrap_or(10000.0);
    let norm = if total == 0.0 { 1.0 } else { total };
    let mut weights = Vec::with_capacity(buckets.len());
    let mut acc = 0.0;
    for b in buckets {
        acc += b.count * top / norm;
        weights.push(acc);
    }
    let mut result = Vec::with_capacity(bps.len());
    let mut bp_index = 0;
    'outer: while let Some(&bp) = bps.get(bp_index) {
        let mut i = weights.partition_point(|&w| w <= bp);
        while let Some(&cumsum) = weights.get(i) {
            let cumsum_prev = if i > 0 { weights[i - 1] } else { 0.0 };
            if cumsum == cumsum_prev {
                i += 1;
                continue;
            }
            let lhs = if i == 0 || cumsum_prev == 0.0 {
                minmin
            } else {
                buckets[i - 1].right.max(minmin)
            };
            let rhs = buckets[i].right.min(maxmax);
            result.push(lerp(bp, cumsum_prev, cumsum, lhs, rhs));
            bp_index += 1;
            continue 'outer;
        }
        break;
    }
    while result.len() < bps.len() {
        result.push(maxmax);
    }
    result
}

/// Percentile bands of every histogram of a series: `(step, wall_time, values at
/// NORMAL_HISTOGRAM_BPS)`.
pub fn distribution(series: &HistogramSeries) -> Vec<(i64, f64, [f64; 9])> {
    series
        .points
        .iter()
        .map(|h| {
            let v = compress_histogram(&h.buckets, &NORMAL_HISTOGRAM_BPS);
            let mut bands = [0.0; 9];
            for (b, x) in bands.iter_mut().zip(v) {
                *b = x;
            }
            (h.step, h.wall_time, bands)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_matches_hand_computed() {
        // w = 0.5: last = 0.5, 0.25 + 1.5 = 1.75, 0.875 + 2.5 = 3.375; debias 0.5, 0.75, 0.875.
        let s = smooth_ema(&[1.0, 3.0, 5.0], 0.5);
        assert_eq!(s, vec![1.0, 1.75 / 0.75, 3.375 / 0.875]);
        assert!((s[2] - 3.857_142_857_142_857).abs() < 1e-12);
        // w = 0 is the identity; w = 0.6 first point is the value itself (debiased).
        assert_eq!(smooth_ema(&[4.0, -2.0], 0.0), vec![4.0, -2.0]);
        let s = smooth_ema(&[10.0, 0.0], 0.6);
        assert!((s[0] - 10.0).abs() < 1e-12);
        // 0.4*10 = 4 → 0.6*4 = 2.4; debias 1 - 0.36 = 0.64 → 3.75.
        assert!((s[1] - 3.75).abs() < 1e-12);
    }

    #[test]
    fn ema_passes_nan_and_constants() {
        let s = smooth_ema(&[1.0, f64::NAN, 3.0], 0.5);
        assert!(s[1].is_nan());
        // NaN does not count: the second finite point is debiased with n = 2.
        assert_eq!(s[2], (0.25 + 1.5) / 0.75);
        assert_eq!(smooth_ema(&[7.0; 4], 0.9), vec![7.0; 4]);
        assert!(smooth_ema(&[], 0.9).is_empty());
    }

    #[test]
    fn decimate_keeps_extremes_and_bounds_size() {
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut ys: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64).collect();
        ys[54_321] = 1000.0;
        ys[12_345] = -1000.0;
        let d = decimate(&xs, &ys, 0.0, (n - 1) as f64, 200);
        assert!(d.len() <= 4 * 201, "{}", d.len());
        assert!(d.iter().any(|p| p == &[54_321.0, 1000.0]));
        assert!(d.iter().any(|p| p == &[12_345.0, -1000.0]));
        assert!(d.windows(2).all(|w| w[0][0] <= w[1][0]));
        assert_eq!(d.first(), Some(&[0.0, ys[0]]));
        assert_eq!(d.last(), Some(&[(n - 1) as f64, ys[n - 1]]));
        // A zoomed view keeps one point on each side of the range.
        let z = decimate(&xs, &ys, 10.5, 20.5, 100);
        assert_eq!(z.first().map(|p| p[0]), Some(10.0));
        assert_eq!(z.last().map(|p| p[0]), Some(21.0));
        assert_eq!(z.len(), 12);
    }

    #[test]
    fn compress_uniform_histogram() {
        // Uniform on [0, 10): the median is 5, the 15.87th percentile 1.587.
        let buckets: Vec<Bucket> = (0..10)
            .map(|i| Bucket {
                left: i as f64,
                right: i as f64 + 1.0,
                count: 10.0,
            })
            .collect();
        let v = compress_histogram(&buckets, &NORMAL_HISTOGRAM_BPS);
        assert_eq!(v.len(), 9);
        assert!((v[0] - 0.0).abs() < 1e-12);
        assert!((v[2] - 1.587).abs() < 1e-9);
        assert!((v[4] - 5.0).abs() < 1e-9);
        assert!((v[8] - 10.0).abs() < 1e-9);
        assert_eq!(compress_histogram(&[], &NORMAL_HISTOGRAM_BPS), vec![0.0; 9]);
    }
}
