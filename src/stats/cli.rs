//! `modelmap stats FILE [--tensor NAME | --all] [--json]`: the text and JSON report.
//!
//! How it works: `main.rs` parses [`StatsArgs`] (a `clap::Args`, flatten it into the subcommand),
//! opens the file with `load::open`, and prints what [`run`] returns. Statistics come from
//! [`super::model_stats_cached`] (the user's cache folder unless `--no-cache`). Without `--tensor`
//! or `--all` the table lists the first [`DEFAULT_ROWS`] tensors, then the anomalies; `--all` lists
//! every tensor; `--tensor NAME` prints one tensor in full with its histogram. `--json` prints the
//! same keys as `facts.json`'s per-tensor entries (plus `abs_max`, `l2`, `sparsity`, `histogram`,
//! `zero_rows`…), with `error` for tensors that failed.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::anomaly::{Anomaly, find_anomalies};
use super::cache::StatsCache;
use super::{StatsError, TensorStats, model_stats_cached, tensor_stats_with};
use crate::model::{Model, Tensor};

/// Rows the default table shows.
pub const DEFAULT_ROWS: usize = 40;

/// Arguments of `modelmap stats`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct StatsArgs {
    /// The model file.
    pub file: PathBuf,
    /// Show one tensor in full.
    #[arg(long)]
    pub tensor: Option<String>,
    /// List every tensor (the default lists the first 40).
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Neither read nor write the statistics cache.
    #[arg(long)]
    pub no_cache: bool,
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.4e}"))
}

/// One tensor's statistics as JSON; a quantized tensor's entry names its quantization
/// (`"quantization": "scale 0.5, zero point 128"`), its figures being of the real values.
fn entry_json(t: &Tensor, s: &TensorStats) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or(serde_json::Value::Null);
    if let (Some(q), Some(obj)) = (&t.quant, v.as_object_mut()) {
        obj.insert("quantization".into(), q.describe().into());
    }
    v
}

/// The dtype column: `I8·q` for quantized integers (their figures are of the real values).
fn dtype_label(t: &Tensor, s: &TensorStats) -> String {
    if t.quant.is_some() {
        format!("{}·q", s.dtype)
    } else {
        s.dtype.clone()
    }
}

fn error_json(name: &str, dtype: &str, shape: &[u64], e: &StatsError) -> serde_json::Value {
    serde_json::json!({ "name": name, "dtype": dtype, "shape": shape, "error": e.to_string() })
}

fn histogram_text(s: &TensorStats, out: &mut String) {
    let h = &s.histogram;
    let peak = h.counts.iter().copied().max().unwrap_or(0).max(1);
    let width = (h.hi - h.lo) / h.counts.len().max(1) as f64;
    // Two histogram bins per line keeps 64 bins at 32 lines.
    for (i, pair) in h.counts.chunks(2).enumerate() {
        let c: u64 = pair.iter().sum();
        let bar = "#".repeat(((c as f64 / (2 * peak) as f64) * 60.0).round() as usize);
        let _ = writeln!(
            out,
            "  {:>+12.4e} {:>10} {bar}",
            h.lo + (2 * i) as f64 * width,
            c
        );
    }
}

fn detail(t: &Tensor, s: &TensorStats, out: &mut String) {
    let _ = writeln!(out, "{}  {} {:?}", s.name, s.dtype, s.shape);
    if let Some(q) = &t.quant {
        let _ = writeln!(
            out,
            "  quantized: {} (figures below are real values)",
            q.describe()
        );
    }
    let _ = writeln!(
        out,
        "  count {}  finite {}  nan {}  inf {}  zeros {} ({:.2}%)",
        s.count,
        s.finite(),
        s.nan,
        s.inf,
        s.zeros,
        s.sparsity * 100.0
    );
    let _ = writeln!(
        out,
        "  min {}  max {}  mean {}  std {}",
        fmt_opt(s.min),
        fmt_opt(s.max),
        fmt_opt(s.mean),
        fmt_opt(s.std)
    );
    let _ = writeln!(out, "  abs-max {}  L2 {:.4e}", fmt_opt(s.abs_max), s.l2);
    let _ = writeln!(
        out,
        "  p1 {}  p50 {}  p99 {}",
        fmt_opt(s.percentile(0.01)),
        fmt_opt(s.percentile(0.5)),
        fmt_opt(s.percentile(0.99))
    );
    if s.rows > 0 {
        let _ = writeln!(
            out,
            "  as {} × {}: {} zero rows {:?}, {} zero columns {:?}",
            s.rows, s.cols, s.zero_row_count, s.zero_rows, s.zero_col_count, s.zero_cols
        );
    }
    histogram_text(s, out);
}

fn anomalies_text(a: &[Anomaly], out: &mut String) {
    if a.is_empty() {
        let _ = writeln!(out, "no anomalies");
        return;
    }
    let _ = writeln!(out, "{} anomalies:", a.len());
    for x in a {
        let _ = writeln!(
            out,
            "  {:?} {:?} {}: {}",
            x.severity, x.kind, x.tensor, x.message
        );
    }
}

/// The report for a loaded model, as `modelmap stats` prints it.
pub fn run(m: &Model, args: &StatsArgs) -> Result<String, StatsError> {
    let file = m.source.display().to_string();
    let cache = if args.no_cache {
        None
    } else {
        StatsCache::user()
    };
    let mut out = String::new();
    if let Some(name) = &args.tensor {
        let t = m.tensor(name).ok_or_else(|| StatsError::NoSuchTensor {
            file: file.clone(),
            name: name.clone(),
            hint: m.near_names(name),
        })?;
        let opts = super::StatsOptions::for_model(m);
        let cached = cache.as_ref().and_then(|c| c.load(m).get(t));
        let s = match cached {
            Some(s) => s,
            None => tensor_stats_with(t, &opts)?,
        };
        if args.json {
            return Ok(serde_json::to_string_pretty(&entry_json(t, &s))? + "\n");
        }
        let _ = writeln!(out, "{file}");
        detail(t, &s, &mut out);
        return Ok(out);
    }
    let stats = model_stats_cached(m, cache.as_ref(), &|_, _| {});
    let anomalies = find_anomalies(m, &stats);
    if args.json {
        let tensors: Vec<serde_json::Value> = m
            .tensors
            .iter()
            .zip(&stats)
            .map(|(t, r)| match r {
                Ok(s) => entry_json(t, s),
                Err(e) => error_json(&t.name, t.dtype.name(), &t.shape, e),
            })
            .collect();
        let doc = serde_json::json!({ "path": file, "tensors": tensors, "anomalies": anomalies });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let ok = stats.iter().filter(|r| r.is_ok()).count();
    let _ = writeln!(
        out,
        "{file}: {} tensors, {ok} with statistics",
        m.tensors.len()
    );
    let _ = writeln!(
        out,
        "{:<48} {:>6} {:>16} {:>11} {:>11} {:>11} {:>11} {:>7} {:>5} {:>5}",
        "tensor", "dtype", "shape", "min", "max", "mean", "std", "zero%", "nan", "inf"
    );
    let limit = if args.all { usize::MAX } else { DEFAULT_ROWS };
    for (t, r) in m.tensors.iter().zip(&stats).take(limit) {
        let shape = format!("{:?}", t.shape);
        match r {
            Ok(s) => {
                let _ = writeln!(
                    out,
                    "{:<48} {:>6} {:>16} {:>11} {:>11} {:>11} {:>11} {:>7.2} {:>5} {:>5}",
                    t.name,
                    dtype_label(t, s),
                    shape,
                    fmt_opt(s.min),
                    fmt_opt(s.max),
                    fmt_opt(s.mean),
                    fmt_opt(s.std),
                    s.sparsity * 100.0,
                    s.nan,
                    s.inf
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{:<48} {:>6} {:>16} error: {e}",
                    t.name,
                    t.dtype.name(),
                    shape
                );
            }
        }
    }
    if m.tensors.len() > limit {
        let _ = writeln!(out, "… {} more (use --all)", m.tensors.len() - limit);
    }
    anomalies_text(&anomalies, &mut out);
    Ok(out)
}

/// Arguments of `modelmap diff`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DiffArgs {
    /// The first checkpoint (A).
    pub a: PathBuf,
    /// The second checkpoint (B): changes are B − A, relative to A.
    pub b: PathBuf,
    /// List every compared tensor, identical ones too (the default lists the 40 most changed).
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit with status 1 when any tensor changed by more than this relative amount
    /// (‖B − A‖ / ‖A‖), or a tensor is missing on one side or has another shape: a check that a
    /// conversion kept the weights (`--fail-above 0.01` for an 8-bit quantization).
    #[arg(long, value_name = "REL")]
    pub fail_above: Option<f64>,
}

/// Why `--fail-above` fails, when it does: one line per reason.
pub fn diff_failures(d: &super::diff::ModelDiff, limit: f64) -> Vec<String> {
    let mut out = Vec::new();
    let over: Vec<_> = d.tensors.iter().filter(|t| t.rank() > limit).collect();
    if let Some(worst) = over.first() {
        out.push(format!(
            "{} tensors changed by more than {limit:e} relative, the most {} by {}",
            over.len(),
            worst.name,
            worst.rel_change.map_or_else(
                || "an infinite amount (it was all zeros)".into(),
                |r| format!("{r:.4e}")
            )
        ));
    }
    for (what, n) in [
        ("only in A", d.only_a.len()),
        ("only in B", d.only_b.len()),
        ("with shapes that disagree", d.shape_mismatch.len()),
        ("that could not be compared", d.errors.len()),
    ] {
        if n > 0 {
            out.push(format!("{n} tensors {what}"));
        }
    }
    out
}

fn names_line(out: &mut String, what: &str, names: &[String]) {
    if names.is_empty() {
        return;
    }
    const SHOWN: usize = 8;
    let mut list = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        let _ = write!(list, ", … {} more", names.len() - SHOWN);
    }
    let _ = writeln!(out, "{what} ({}): {list}", names.len());
}

/// The report of what changed from `a` to `b`, as `modelmap diff` prints it, and with
/// `--fail-above` the reasons it fails (empty when it passes).
pub fn diff_report(
    a: &Model,
    b: &Model,
    args: &DiffArgs,
) -> Result<(String, Vec<String>), StatsError> {
    let d = super::diff::diff_models(a, b, &|_, _| {}, &|| false);
    let failures = args
        .fail_above
        .map(|limit| diff_failures(&d, limit))
        .unwrap_or_default();
    diff_text(&d, args).map(|text| (text, failures))
}

fn diff_text(d: &super::diff::ModelDiff, args: &DiffArgs) -> Result<String, StatsError> {
    if args.json {
        let mut v = serde_json::to_value(d)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("identical".into(), d.identical().into());
        }
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let mut out = String::new();
    let _ = writeln!(out, "A: {} ({} tensors)", d.file_a, d.tensors_a);
    let _ = writeln!(out, "B: {} ({} tensors)", d.file_b, d.tensors_b);
    let identical = d.identical();
    let transposed = d.tensors.iter().filter(|t| t.transposed).count();
    let mut how = Vec::new();
    if d.renamed > 0 {
        how.push(format!(
            "{} paired by name without their wrappers",
            d.renamed
        ));
    }
    if d.by_values > 0 {
        how.push(format!(
            "{} by identical values{}",
            d.by_values,
            if transposed > 0 {
                format!(", {transposed} of them transposed")
            } else {
                String::new()
            }
        ));
    }
    let renamed = if how.is_empty() {
        String::new()
    } else {
        format!(" ({})", how.join("; "))
    };
    let _ = writeln!(
        out,
        "compared {} tensors{renamed}, {} values: {} tensors changed ({} values), {identical} identical; \
         median ‖B − A‖ / ‖A‖ of those changed {}",
        d.tensors.len(),
        d.compared_elements,
        d.tensors.len() - identical,
        d.changed_elements,
        fmt_opt(d.median_rel_change)
    );
    names_line(&mut out, "only in A", &d.only_a);
    names_line(&mut out, "only in B", &d.only_b);
    for s in &d.shape_mismatch {
        let _ = writeln!(
            out,
            "shape differs: {} {:?} in A, {:?} in B",
            s.name, s.shape_a, s.shape_b
        );
    }
    for e in &d.errors {
        let _ = writeln!(out, "not compared: {}: {}", e.name, e.error);
    }
    let shown: Vec<_> = d
        .tensors
        .iter()
        .filter(|t| args.all || !t.identical())
        .collect();
    if shown.is_empty() {
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:<48} {:>9} {:>16} {:>10} {:>10} {:>10} {:>16} {:>8}",
        "tensor", "dtype", "shape", "‖Δ‖/‖A‖", "cos", "max |Δ|", "at", "changed%"
    );
    let limit = if args.all { usize::MAX } else { DEFAULT_ROWS };
    for t in shown.iter().take(limit) {
        let dtype = if t.dtype_a == t.dtype_b {
            t.dtype_a.clone()
        } else {
            format!("{}→{}", t.dtype_a, t.dtype_b)
        };
        let _ = writeln!(
            out,
            "{:<48} {:>9} {:>16} {:>10} {:>10} {:>10.3e} {:>16} {:>8.2}",
            t.name,
            dtype,
            format!("{:?}", t.shape),
            t.rel_change
                .map_or_else(|| "inf".to_string(), |r| format!("{r:.3e}")),
            t.cosine
                .map_or_else(|| "-".to_string(), |c| format!("{c:.6}")),
            t.max_abs_diff,
            format!("{:?}", t.max_at),
            100.0 * t.changed as f64 / t.count.max(1) as f64
        );
    }
    if shown.len() > limit {
        let _ = writeln!(out, "… {} more (use --all)", shown.len() - limit);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::model::Format;

    fn model() -> Model {
        let mut m = Model::new("/nonexistent/m.safetensors", Format::Safetensors);
        m.add_tensor(f32_tensor("a", &[2, 2], &[1.0, 0.0, 0.0, 0.0]));
        m.add_tensor(tensor("bad", crate::model::DType::F32, &[2], vec![0; 3]));
        m
    }

    #[test]
    fn table_json_and_single_tensor() {
        let m = model();
        let text = run(
            &m,
            &StatsArgs {
                no_cache: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(text.contains("2 tensors, 1 with statistics"), "{text}");
        assert!(
            text.contains("error: tensor bad: 3 bytes of data"),
            "{text}"
        );
        assert!(text.contains("DeadRows a: 1 of 2 rows"), "{text}");
        let json: serde_json::Value = serde_json::from_str(
            &run(
                &m,
                &StatsArgs {
                    json: true,
                    no_cache: true,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
        .unwrap();
        let a = &json["tensors"][0];
        for key in [
            "count",
            "nan",
            "inf",
            "zeros",
            "min",
            "max",
            "mean",
            "std",
            "abs_max",
            "l2",
            "sparsity",
            "histogram",
            "zero_rows",
        ] {
            assert!(a.get(key).is_some(), "missing {key}");
        }
        assert_eq!(a["zero_rows"], serde_json::json!([1]));
        assert_eq!(a["zeros"], 3);
        assert!(
            json["tensors"][1]["error"]
                .as_str()
                .unwrap()
                .contains("needs 8")
        );
        let one = run(
            &m,
            &StatsArgs {
                tensor: Some("a".into()),
                no_cache: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(one.contains("zeros 3 (75.00%)"), "{one}");
        assert!(
            run(
                &m,
                &StatsArgs {
                    tensor: Some("zz".into()),
                    no_cache: true,
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
