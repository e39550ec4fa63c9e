//! Criterion benches of the layout stage: `cargo bench --bench layout`.
//!
//! Sizes follow the targets: a 50k-node model-like DAG through the dataflow layout, one
//! Barnes–Hut iteration over 1M nodes, and the full multilevel force layout at 100k nodes (the
//! 1M-node full run is `modelmap bench layout --layout force --nodes 1000000`, too slow for criterion's
//! repeated sampling). `LAYOUT_BENCH_SCALE=0.1` shrinks every size for a quick run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use glam::Vec2;
use modelmap::bench::synth;
use modelmap::graph::{self, WeightedGraph};
use modelmap::layout::{self, DataflowOptions, ForceOptions, ForceSim, Progress};

fn scale(n: usize) -> usize {
    let s: f64 = std::env::var("LAYOUT_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * s) as usize).max(100)
}

fn layout_dataflow_50k(c: &mut Criterion) {
    let (g, h) = synth::model_like_nodes(scale(50_000), 1);
    let mut group = c.benchmark_group("layout");
    group.sample_size(10);
    group.bench_function("layout_dataflow_50k", |b| {
        b.iter(|| {
            layout::dataflow(
                black_box(&g),
                &h,
                &DataflowOptions::default(),
                &Progress::new(),
            )
        })
    });
    group.finish();
}

fn layout_force_1m_iteration(c: &mut Criterion) {
    let n = scale(1_000_000);
    let (g, _) = synth::random(n, 2 * n, 1);
    let edges = graph::edge_pairs(&g).unwrap_or_default();
    let wg = WeightedGraph::from_edges(n, &edges);
    let mut rng = graph::Pcg32::new(3);
    let side = (n as f32).sqrt() * 60.0;
    let mut pos: Vec<Vec2> = (0..n)
        .map(|_| Vec2::new(rng.unit_f32(), rng.unit_f32()) * side)
        .collect();
    let mut sim = ForceSim::new();
    let mut group = c.benchmark_group("layout");
    group.sample_size(10);
    group.bench_function("layout_force_1m_iteration", |b| {
        // A tiny step keeps the picture (and so the tree shape) stable across samples.
        b.iter(|| sim.iterate(black_box(&mut pos), &wg, 60.0, 0.01, 0.9))
    });
    group.finish();
}

fn layout_force_100k_full(c: &mut Criterion) {
    let n = scale(100_000);
    let (g, _) = synth::random(n, 2 * n, 1);
    let mut group = c.benchmark_group("layout");
    group.sample_size(10);
    group.bench_function("layout_force_100k_full", |b| {
        b.iter(|| layout::force(black_box(&g), &ForceOptions::default(), &Progress::new()))
    });
    group.finish();
}

criterion_group!(
    benches,
    layout_dataflow_50k,
    layout_force_1m_iteration,
    layout_force_100k_full
);
criterion_main!(benches);
