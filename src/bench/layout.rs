//! `modelmap bench layout`: times a layout of a synthetic graph at 1 and 2 threads and measures its
//! readability.
//!
//! How it works: the graph is generated once (seeded), then the layout runs inside a fresh rayon pool
//! per thread count (`ThreadPoolBuilder::num_threads(k).install`), in one process, so the speed-up
//! compares like with like; metrics are measured on the last run. Rejected: relying on
//! `RAYON_NUM_THREADS` (needs two processes and the global pool can only be set once).

use std::time::Instant;

use serde::Serialize;

use super::synth;
use crate::graph;
use crate::layout::{
    self, DataflowOptions, ForceOptions, Layout, LayoutError, MetricsOptions, Progress,
};

/// Errors of the layout benchmark.
#[derive(Debug, thiserror::Error)]
pub enum LayoutBenchError {
    /// A thread pool could not be built.
    #[error("bench layout: cannot build a {threads}-thread pool: {message}")]
    ThreadPool {
        /// Requested threads.
        threads: usize,
        /// The reason.
        message: String,
    },
    /// The layout failed.
    #[error("bench layout: {0}")]
    Layout(#[from] LayoutError),
    /// A flag has an unknown value.
    #[error("bench layout: unknown {flag} '{value}' (expected {expected})")]
    BadFlag {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
}

/// Which synthetic graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthKind {
    /// [`synth::dag`].
    Dag,
    /// [`synth::random`].
    Random,
    /// [`synth::model_like`].
    Model,
}

impl std::str::FromStr for SynthKind {
    type Err = LayoutBenchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dag" => Ok(SynthKind::Dag),
            "random" => Ok(SynthKind::Random),
            "model" => Ok(SynthKind::Model),
            _ => Err(LayoutBenchError::BadFlag {
                flag: "--kind",
                value: s.to_string(),
                expected: "dag, random or model",
            }),
        }
    }
}

/// Which layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchLayout {
    /// [`layout::dataflow`].
    Dataflow,
    /// [`layout::force`].
    Force,
}

impl std::str::FromStr for BenchLayout {
    type Err = LayoutBenchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dataflow" => Ok(BenchLayout::Dataflow),
            "force" => Ok(BenchLayout::Force),
            _ => Err(LayoutBenchError::BadFlag {
                flag: "--layout",
                value: s.to_string(),
                expected: "dataflow or force",
            }),
        }
    }
}

/// Arguments of `modelmap bench layout`.
#[derive(Clone, Debug, clap::Args)]
pub struct LayoutBenchArgs {
    /// Nodes.
    #[arg(long, default_value_t = 50_000)]
    pub nodes: usize,
    /// Edges (default: twice the nodes; model graphs have their own).
    #[arg(long)]
    pub edges: Option<usize>,
    /// Synthetic graph: dag, random or model (default: model for dataflow, random for force).
    #[arg(long)]
    pub kind: Option<SynthKind>,
    /// dataflow or force.
    #[arg(long, default_value = "dataflow")]
    pub layout: BenchLayout,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Thread counts to time, in order, e.g. 1,2.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Also measure stress on a sample (slower).
    #[arg(long)]
    pub stress: bool,
    /// Timed runs per thread count, interleaved (1, 2, 1, 2, …) after one untimed warm-up run;
    /// the median is reported. Default: 5 up to 200 k nodes, else 1 (no warm-up).
    #[arg(long)]
    pub repeat: Option<usize>,
}

impl Default for LayoutBenchArgs {
    fn default() -> Self {
        LayoutBenchArgs {
            nodes: 50_000,
            edges: None,
            kind: None,
            layout: BenchLayout::Dataflow,
            seed: 1,
            threads: vec![1, 2],
            stress: false,
            repeat: None,
        }
    }
}

/// One timed run.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadRun {
    /// Threads in the pool.
    pub threads: usize,
    /// Wall time of the layout, seconds (median of the repeats).
    pub seconds: f64,
    /// Every repeat, seconds, in run order.
    pub samples: Vec<f64>,
    /// Force: seconds until the coarsest level was ready (first picture; median).
    pub first_level_seconds: Option<f64>,
}

/// The benchmark's result (`--json` prints it as is).
#[derive(Clone, Debug, Serialize)]
pub struct LayoutBenchReport {
    /// Nodes of the graph.
    pub nodes: usize,
    /// Edges of the graph.
    pub edges: usize,
    /// Which generator.
    pub kind: SynthKind,
    /// Which layout.
    pub layout: BenchLayout,
    /// Seconds of the run with the most threads.
    pub seconds: f64,
    /// Threads of that run.
    pub threads: usize,
    /// Every run.
    pub runs: Vec<ThreadRun>,
    /// Time of the first run over the time of the last (1 vs 2 threads by default).
    pub speedup: Option<f64>,
    /// Edge crossings (exact or estimated, see `crossings_exact`).
    pub crossings: f64,
    /// Whether `crossings` is exact.
    pub crossings_exact: bool,
    /// Overlapping node pairs.
    pub overlaps: u64,
    /// Mean edge length.
    pub edge_length_mean: f64,
    /// Edge length standard deviation.
    pub edge_length_std: f64,
    /// Stress on a sample (`--stress`).
    pub stress: Option<f64>,
    /// Clusters in the LOD tree.
    pub clusters: usize,
    /// Seconds to generate the graph.
    pub generate_seconds: f64,
    /// Seconds to measure the metrics.
    pub metrics_seconds: f64,
    /// Layout warnings.
    pub warnings: Vec<String>,
}

impl LayoutBenchReport {
    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// A human-readable summary, several lines.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "layout {:?} of {:?}: {} nodes, {} edges\n",
            self.layout, self.kind, self.nodes, self.edges
        );
        for r in &self.runs {
            s += &format!("  {} thread(s): {:.3} s", r.threads, r.seconds);
            if r.samples.len() > 1 {
                s += &format!(" (median of {})", r.samples.len());
            }
            if let Some(f) = r.first_level_seconds {
                s += &format!(" (coarsest level at {f:.3} s)");
            }
            s += "\n";
        }
        if let Some(x) = self.speedup {
            s += &format!("  speed-up: {x:.2}x\n");
        }
        s += &format!(
            "  crossings {}{:.0}, overlaps {}, edge length {:.1} ± {:.1}, clusters {}",
            if self.crossings_exact { "" } else { "~" },
            self.crossings,
            self.overlaps,
            self.edge_length_mean,
            self.edge_length_std,
            self.clusters
        );
        if let Some(st) = self.stress {
            s += &format!(", stress {st:.3}");
        }
        for w in &self.warnings {
            s += &format!("\n  warning: {w}");
        }
        s
    }
}

/// Runs the benchmark.
pub fn run(args: &LayoutBenchArgs) -> Result<LayoutBenchReport, LayoutBenchError> {
    let kind = args.kind.unwrap_or(match args.layout {
        BenchLayout::Dataflow => SynthKind::Model,
        BenchLayout::Force => SynthKind::Random,
    });
    let t0 = Instant::now();
    let m = args.edges.unwrap_or(args.nodes * 2);
    let (g, h) = match kind {
        SynthKind::Dag => synth::dag(args.nodes, m, args.seed),
        SynthKind::Random => synth::random(args.nodes, m, args.seed),
        SynthKind::Model => synth::model_like_nodes(args.nodes, args.seed),
    };
    let generate_seconds = t0.elapsed().as_secs_f64();
    let threads = if args.threads.is_empty() {
        vec![1, 2]
    } else {
        args.threads.clone()
    };
    let repeat = args
        .repeat
        .unwrap_or(if args.nodes <= 200_000 { 5 } else { 1 })
        .max(1);
    let pools = threads
        .iter()
        .map(|&k| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(k)
                .build()
                .map_err(|e| LayoutBenchError::ThreadPool {
                    threads: k,
                    message: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let run_once =
        |pool: &rayon::ThreadPool| -> Result<(Layout, f64, Option<f64>), LayoutBenchError> {
            let progress = Progress::new();
            let start = Instant::now();
            let mut first = None;
            let layout = pool.install(|| match args.layout {
                BenchLayout::Dataflow => layout::dataflow(
                    &g,
                    &h,
                    &DataflowOptions {
                        seed: 0,
                        ..DataflowOptions::default()
                    },
                    &progress,
                ),
                BenchLayout::Force => {
                    let opts = ForceOptions {
                        seed: args.seed,
                        ..ForceOptions::default()
                    };
                    layout::force_with_levels(&g, &opts, &progress, &mut |snap| {
                        first.get_or_insert(snap.elapsed.as_secs_f64());
                    })
                }
            })?;
            Ok((layout, start.elapsed().as_secs_f64(), first))
        };
    let mut last: Option<Layout> = None;
    // Warm-up: the first layout in a process also pays for faulting in the allocator's memory.
    if repeat > 1
        && let Some(pool) = pools.last()
    {
        drop(run_once(pool)?);
    }
    let mut samples: Vec<Vec<(f64, Option<f64>)>> = vec![Vec::new(); threads.len()];
    for _ in 0..repeat {
        for (i, pool) in pools.iter().enumerate() {
            drop(last.take()); // free the previous layout before timing the next
            let (layout, secs, first) = run_once(pool)?;
            samples[i].push((secs, first));
            last = Some(layout);
        }
    }
    let median = |mut v: Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let runs: Vec<ThreadRun> = threads
        .iter()
        .zip(&samples)
        .map(|(&k, s)| {
            let firsts: Vec<f64> = s.iter().filter_map(|x| x.1).collect();
            ThreadRun {
                threads: k,
                seconds: median(s.iter().map(|x| x.0).collect()),
                samples: s.iter().map(|x| x.0).collect(),
                first_level_seconds: (!firsts.is_empty()).then(|| median(firsts)),
            }
        })
        .collect();
    let t1 = Instant::now();
    let edges = graph::edge_pairs(&g).map_err(LayoutError::from)?;
    let (metrics, clusters, warnings) = match &last {
        Some(l) => {
            let mo = MetricsOptions {
                seed: args.seed,
                stress_sources: if args.stress { 8 } else { 0 },
                ..MetricsOptions::default()
            };
            (
                layout::measure(l, &edges, &mo),
                l.clusters.clusters.len(),
                l.warnings.clone(),
            )
        }
        None => (layout::Metrics::default(), 0, Vec::new()),
    };
    let metrics_seconds = t1.elapsed().as_secs_f64();
    let speedup = match (runs.first(), runs.last()) {
        (Some(a), Some(b)) if runs.len() > 1 && b.seconds > 0.0 => Some(a.seconds / b.seconds),
        _ => None,
    };
    let (seconds, threads_used) = runs.last().map_or((0.0, 0), |r| (r.seconds, r.threads));
    Ok(LayoutBenchReport {
        nodes: g.nodes.len(),
        edges: g.edges.len(),
        kind,
        layout: args.layout,
        seconds,
        threads: threads_used,
        runs,
        speedup,
        crossings: metrics.crossings,
        crossings_exact: metrics.crossings_exact,
        overlaps: metrics.overlaps,
        edge_length_mean: metrics.edge_length_mean,
        edge_length_std: metrics.edge_length_std,
        stress: metrics.stress,
        clusters,
        generate_seconds,
        metrics_seconds,
        warnings,
    })
}

/// An SVG picture of a layout for eyeballing and docs: group boxes, node boxes with op labels (when
/// fewer than `label_limit` nodes), edges as polylines through their waypoints (dataflow drawn as
/// cubic S-curves between consecutive points). Hidden nodes and edges are left out.
pub fn layout_svg(layout: &Layout, graph: &crate::model::Graph, label_limit: usize) -> String {
    use std::fmt::Write as _;
    let b = layout.bounds.expand(20.0);
    let size = b.size();
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="{:.1} {:.1} {:.1} {:.1}" width="{:.0}" height="{:.0}">"#,
        b.min.x,
        b.min.y,
        size.x,
        size.y,
        size.x.min(4000.0),
        size.y * size.x.min(4000.0) / size.x.max(1.0)
    );
    let _ = writeln!(
        s,
        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="white"/>"#,
        b.min.x, b.min.y, size.x, size.y
    );
    for (g, r) in layout.groups.iter().enumerate().skip(1) {
        if r.is_empty() {
            continue;
        }
        let collapsed = layout.collapsed.get(g).copied().unwrap_or(false);
        let fill = if collapsed { "#d8e4f8" } else { "#f4f6fa" };
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6" fill="{fill}" stroke="#8899bb" stroke-width="1"/>"##,
            r.min.x,
            r.min.y,
            r.size().x,
            r.size().y
        );
    }
    let dataflow = layout.kind == layout::LayoutKind::Dataflow;
    let _ = writeln!(
        s,
        r##"<g fill="none" stroke="#667" stroke-width="{}" stroke-opacity="0.6">"##,
        if dataflow { 1.2 } else { 0.6 }
    );
    for (e, r) in layout.routes().enumerate() {
        if r.hidden {
            continue;
        }
        let pts: Vec<glam::DVec2> = std::iter::once(r.from)
            .chain(layout.waypoints(e).iter().copied())
            .chain(std::iter::once(r.to))
            .collect();
        let mut d = format!("M{:.1} {:.1}", pts[0].x, pts[0].y);
        for w in pts.windows(2) {
            if r.curve {
                let my = (w[0].y + w[1].y) * 0.5;
                let _ = write!(
                    d,
                    " C{:.1} {my:.1} {:.1} {my:.1} {:.1} {:.1}",
                    w[0].x, w[1].x, w[1].x, w[1].y
                );
            } else {
                let _ = write!(d, " L{:.1} {:.1}", w[1].x, w[1].y);
            }
        }
        let color = if r.reversed {
            r##" stroke="#c33""##
        } else {
            ""
        };
        let _ = writeln!(s, r#"<path d="{d}"{color}/>"#);
    }
    let _ = writeln!(s, "</g>");
    let labels = layout.nodes.len() <= label_limit;
    for (v, nb) in layout.nodes.iter().enumerate() {
        if !nb.is_visible() {
            continue;
        }
        let r = nb.rect();
        let op = graph.nodes.get(v).map_or("", |n| &*n.op);
        let hue = op
            .bytes()
            .fold(7u32, |h, c| h.wrapping_mul(31).wrapping_add(c as u32))
            % 360;
        if dataflow {
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="4" fill="hsl({hue},55%,80%)" stroke="#445" stroke-width="0.8"/>"##,
                r.min.x,
                r.min.y,
                r.size().x,
                r.size().y
            );
        } else {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="{:.1}" fill="hsl({hue},55%,60%)"/>"#,
                nb.center.x, nb.center.y, nb.half_size.x
            );
        }
        if labels && dataflow {
            let text = graph.nodes.get(v).map_or(String::new(), |n| {
                let t = if matches!(
                    n.kind,
                    crate::model::NodeKind::Input | crate::model::NodeKind::Output
                ) {
                    n.name.as_str()
                } else {
                    &n.op
                };
                t.replace('&', "&amp;").replace('<', "&lt;")
            });
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="12" font-family="sans-serif" text-anchor="middle">{text}</text>"#,
                nb.center.x,
                nb.center.y + 4.0
            );
        }
    }
    if labels && dataflow {
        for (g, r) in layout.groups.iter().enumerate().skip(1) {
            if r.is_empty() {
                continue;
            }
            let name = layout
                .clusters
                .clusters
                .iter()
                .find(|c| c.group == Some(g as u32))
                .map_or(String::new(), |c| {
                    c.label.replace('&', "&amp;").replace('<', "&lt;")
                });
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="12" font-family="sans-serif" fill="#335">{name}</text>"##,
                r.min.x + 6.0,
                r.min.y + 16.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bench_reports_both_thread_counts() {
        let args = LayoutBenchArgs {
            nodes: 400,
            ..LayoutBenchArgs::default()
        };
        let r = run(&args).unwrap();
        assert_eq!(r.runs.len(), 2);
        assert_eq!(r.overlaps, 0);
        let j = r.to_json();
        for k in [
            "nodes",
            "edges",
            "kind",
            "seconds",
            "threads",
            "crossings",
            "overlaps",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
        let f = run(&LayoutBenchArgs {
            nodes: 500,
            layout: BenchLayout::Force,
            threads: vec![2],
            ..LayoutBenchArgs::default()
        })
        .unwrap();
        assert!(f.runs[0].first_level_seconds.is_some());
        assert_eq!(f.edges, 1000);
    }
}
