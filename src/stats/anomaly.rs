//! What stands out in a model's weights, for the anomaly panel.
//!
//! How it works: [`find_anomalies`] reads the per-tensor statistics (no second pass over the data) and
//! reports NaN/Inf tensors, all-zero tensors, dead rows and columns, tensors whose L2 norm is an
//! outlier among their *siblings*, and dtypes that disagree with their siblings. Siblings are tensors
//! whose names agree once every purely numeric name segment is replaced by `*` ([`sibling_key`]:
//! `model.layers.7.self_attn.q_proj.weight` → `model.layers.*.self_attn.q_proj.weight`). The outlier
//! test is the robust z-score of Iglewicz and Hoaglin, `0.6745·(x − median)/MAD`, flagged beyond 3.5;
//! when more than half the siblings are identical (MAD = 0) the mean absolute deviation stands in
//! (`(x − median)/(1.2533·MeanAD)`), as IBM SPSS does.
//!
//! Rejected: plain z-scores (one huge outlier inflates the standard deviation and hides itself) and
//! comparing against the whole model (embeddings and norms have nothing in common with projections).

use std::collections::HashMap;

use super::{StatsError, TensorStats};
use crate::model::{Model, TensorId};

/// Robust z-score beyond which a norm is reported.
pub const OUTLIER_Z: f64 = 3.5;
/// Fewest siblings (with statistics) for an outlier test.
pub const MIN_SIBLINGS: usize = 4;

/// What kind of anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum AnomalyKind {
    /// NaN or infinite values.
    NonFinite,
    /// All-zero rows (dead output units).
    DeadRows,
    /// All-zero columns (dead inputs).
    DeadColumns,
    /// The whole tensor is zero.
    AllZero,
    /// The L2 norm is an outlier among its siblings.
    NormOutlier,
    /// The dtype differs from most of its siblings.
    DtypeMismatch,
    /// Statistics could not be computed (wrong byte length, unsupported dtype…).
    Unreadable,
}

/// How much it matters; sorts from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Severity {
    /// Worth knowing (often deliberate: zero biases).
    Info,
    /// Probably a problem.
    Warning,
    /// Certainly a problem (NaN, unreadable data).
    Error,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Anomaly {
    /// What kind.
    pub kind: AnomalyKind,
    /// Tensor id in [`Model::tensors`] (what the panel flies to).
    pub tensor_id: TensorId,
    /// Tensor name.
    pub tensor: String,
    /// A sentence for the panel.
    pub message: String,
    /// How much it matters.
    pub severity: Severity,
    /// The robust z-score for [`AnomalyKind::NormOutlier`].
    pub score: Option<f64>,
}

/// The sibling key of a tensor name: every segment made only of digits becomes `*` (segments are
/// separated by `.`, `/`, `_`, `:` or `-`).
pub fn sibling_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for seg in name.split_inclusive(['.', '/', '_', ':', '-']) {
        let (body, sep) = match seg.char_indices().last() {
            Some((i, '.' | '/' | '_' | ':' | '-')) => seg.split_at(i),
            _ => (seg, ""),
        };
        if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
            out.push('*');
        } else {
            out.push_str(body);
        }
        out.push_str(sep);
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if !n.is_multiple_of(2) => v.get(n / 2).copied().unwrap_or(f64::NAN),
        _ => {
            (v.get(n / 2 - 1).copied().unwrap_or(f64::NAN)
                + v.get(n / 2).copied().unwrap_or(f64::NAN))
                / 2.0
        }
    }
}

/// Robust z-scores of `values` (see the module note); all zero when they do not vary.
pub fn robust_z(values: &[f64]) -> Vec<f64> {
    let med = median(&mut values.to_vec());
    let mut dev: Vec<f64> = values.iter().map(|x| (x - med).abs()).collect();
    let mean_ad = dev.iter().sum::<f64>() / dev.len().max(1) as f64;
    let mad = median(&mut dev);
    values
        .iter()
        .map(|x| {
            if mad > 0.0 {
                0.6745 * (x - med) / mad
            } else if mean_ad > 0.0 {
                (x - med) / (1.2533 * mean_ad)
            } else {
                0.0
            }
        })
        .collect()
}

/// Per tensor, the robust z-score of its L2 norm among its siblings (`None` without enough siblings
/// or without statistics).
pub fn sibling_zscores(m: &Model, stats: &[Result<TensorStats, StatsError>]) -> Vec<Option<f64>> {
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (t, s)) in m.tensors.iter().zip(stats).enumerate() {
        if s.is_ok() {
            groups.entry(sibling_key(&t.name)).or_default().push(i);
        }
    }
    let mut out = vec![None; m.tensors.len()];
    for members in groups.values().filter(|g| g.len() >= MIN_SIBLINGS) {
        let norms: Vec<f64> = members
            .iter()
            .map(|&i| {
                stats
                    .get(i)
                    .and_then(|s| s.as_ref().ok())
                    .map_or(0.0, |s| s.l2)
            })
            .collect();
        for (&i, z) in members.iter().zip(robust_z(&norms)) {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(z);
            }
        }
    }
    out
}

fn list(v: &[u64], total: u64) -> String {
    let shown: Vec<String> = v.iter().take(8).map(u64::to_string).collect();
    let more = if total > shown.len() as u64 {
        format!(" … ({total} in all)")
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// Everything that stands out, most severe first (then in tensor order).
pub fn find_anomalies(m: &Model, stats: &[Result<TensorStats, StatsError>]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let z = sibling_zscores(m, stats);
    let mut push = |kind, i: usize, severity, message: String, score| {
        let tensor = m
            .tensors
            .get(i)
            .map_or_else(String::new, |t| t.name.clone());
        out.push(Anomaly {
            kind,
            tensor_id: i as TensorId,
            tensor,
            message,
            severity,
            score,
        });
    };
    for (i, r) in stats.iter().enumerate() {
        let s = match r {
            Ok(s) => s,
            Err(StatsError::Missing { .. }) => continue, // stripped weights are normal (ONNX "light" models)
            Err(e @ StatsError::Unsupported { .. }) => {
                push(
                    AnomalyKind::Unreadable,
                    i,
                    Severity::Info,
                    e.to_string(),
                    None,
                );
                continue;
            }
            Err(e) => {
                push(
                    AnomalyKind::Unreadable,
                    i,
                    Severity::Error,
                    e.to_string(),
                    None,
                );
                continue;
            }
        };
        if s.nan > 0 || s.inf > 0 {
            push(
                AnomalyKind::NonFinite,
                i,
                Severity::Error,
                format!("{} NaN and {} infinite values of {}", s.nan, s.inf, s.count),
                None,
            );
        }
        if s.count > 0 && s.zeros == s.count {
            push(
                AnomalyKind::AllZero,
                i,
                Severity::Info,
                format!("all {} values are zero", s.count),
                None,
            );
        } else {
            if s.zero_row_count > 0 {
                push(
                    AnomalyKind::DeadRows,
                    i,
                    Severity::Warning,
                    format!(
                        "{} of {} rows are all zero (dead units): {}",
                        s.zero_row_count,
                        s.rows,
                        list(&s.zero_rows, s.zero_row_count)
                    ),
                    None,
                );
            }
            if s.zero_col_count > 0 {
                push(
                    AnomalyKind::DeadColumns,
                    i,
                    Severity::Warning,
                    format!(
                        "{} of {} columns are all zero: {}",
                        s.zero_col_count,
                        s.cols,
                        list(&s.zero_cols, s.zero_col_count)
                    ),
                    None,
                );
            }
        }
        if let Some(Some(zs)) = z.get(i)
            && zs.abs() > OUTLIER_Z
        {
            push(
                AnomalyKind::NormOutlier,
                i,
                Severity::Warning,
                format!(
                    "L2 norm {:.4e} is an outlier among its siblings {} (robust z = {zs:.1})",
                    s.l2,
                    sibling_key(&s.name)
                ),
                Some(*zs),
            );
        }
    }
    // Dtypes that disagree with the majority of their siblings.
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, t) in m.tensors.iter().enumerate() {
        groups.entry(sibling_key(&t.name)).or_default().push(i);
    }
    let mut keys: Vec<&String> = groups.keys().collect();
    keys.sort();
    for key in keys {
        let Some(members) = groups.get(key) else {
            continue;
        };
        if members.len() < 3 {
            continue;
        }
        let mut count: HashMap<&str, usize> = HashMap::new();
        for &i in members {
            if let Some(t) = m.tensors.get(i) {
                *count.entry(t.dtype.name()).or_default() += 1;
            }
        }
        let Some((&major, &n)) = count
            .iter()
            .max_by_key(|(name, c)| (**c, std::cmp::Reverse(**name)))
        else {
            continue;
        };
        if n * 2 <= members.len() {
            continue;
        }
        for &i in members {
            if let Some(t) = m.tensors.get(i)
                && t.dtype.name() != major
            {
                push(
                    AnomalyKind::DtypeMismatch,
                    i,
                    Severity::Warning,
                    format!(
                        "dtype {} differs from {n} of {} siblings ({major})",
                        t.dtype.name(),
                        members.len()
                    ),
                    None,
                );
            }
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.tensor_id.cmp(&b.tensor_id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{model_stats, tensor_stats};
    use super::*;
    use crate::model::{DType, Format};

    #[test]
    fn sibling_keys_replace_layer_indices() {
        assert_eq!(
            sibling_key("model.layers.17.self_attn.q_proj.weight"),
            "model.layers.*.self_attn.q_proj.weight"
        );
        assert_eq!(sibling_key("blk.0.attn_q.weight"), "blk.*.attn_q.weight");
        assert_eq!(sibling_key("onnx::MatMul_12_gate"), "onnx::MatMul_*_gate");
        assert_eq!(sibling_key("conv1_w_0"), "conv1_w_*");
        assert_eq!(sibling_key("/layers.3/mlp/fc1"), "/layers.*/mlp/fc1");
    }

    #[test]
    fn robust_z_flags_one_outlier() {
        let z = robust_z(&[1.0, 1.1, 0.9, 1.05, 0.95, 10.0]);
        assert!(z[5] > OUTLIER_Z, "{z:?}");
        assert!(z[..5].iter().all(|v| v.abs() < OUTLIER_Z));
        // More than half identical: MeanAD fallback still flags the odd one.
        let z = robust_z(&[1.0, 1.0, 1.0, 1.0, 3.0]);
        assert!(z[4] > OUTLIER_Z && z[0] == 0.0);
        assert!(robust_z(&[2.0; 4]).iter().all(|&v| v == 0.0));
    }

    /// A planted checkpoint: 6 layers of q_proj; layer 2 has a NaN, layer 4 a dead row, layer 5 is
    /// ten times larger, and one layer's bias is f16 among f32.
    fn planted() -> Model {
        let mut m = Model::new("planted.safetensors", Format::Safetensors);
        for l in 0..6 {
            let mut v: Vec<f32> = (0..64)
                .map(|i| ((i * 7 + l * 3) % 13) as f32 / 13.0 - 0.45)
                .collect();
            if l == 2 {
                v[9] = f32::NAN;
            }
            if l == 4 {
                v[16..24].fill(0.0);
            }
            if l == 5 {
                v.iter_mut().for_each(|x| *x *= 10.0);
            }
            m.add_tensor(f32_tensor(
                &format!("model.layers.{l}.q_proj.weight"),
                &[8, 8],
                &v,
            ));
            if l == 3 {
                m.add_tensor(tensor(
                    &format!("model.layers.{l}.q_proj.bias"),
                    DType::F16,
                    &[1],
                    vec![0, 0x3C],
                ));
            } else {
                m.add_tensor(f32_tensor(
                    &format!("model.layers.{l}.q_proj.bias"),
                    &[1],
                    &[1.0],
                ));
            }
        }
        m
    }

    #[test]
    fn planted_nan_dead_row_outlier_and_dtype_are_found() {
        let m = planted();
        let stats = model_stats(&m, &|_, _| {});
        let a = find_anomalies(&m, &stats);
        let find = |k: AnomalyKind| {
            a.iter()
                .filter(|x| x.kind == k)
                .map(|x| x.tensor.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            find(AnomalyKind::NonFinite),
            vec!["model.layers.2.q_proj.weight"]
        );
        assert_eq!(
            find(AnomalyKind::DeadRows),
            vec!["model.layers.4.q_proj.weight"]
        );
        assert_eq!(
            find(AnomalyKind::NormOutlier),
            vec!["model.layers.5.q_proj.weight"]
        );
        assert_eq!(
            find(AnomalyKind::DtypeMismatch),
            vec!["model.layers.3.q_proj.bias"]
        );
        assert_eq!(a[0].severity, Severity::Error);
        let dead = a.iter().find(|x| x.kind == AnomalyKind::DeadRows).unwrap();
        assert!(dead.message.contains("1 of 8 rows"), "{}", dead.message);
        assert_eq!(tensor_stats(&m.tensors[8]).unwrap().zero_rows, vec![2]);
    }
}
