//! Multilevel force-directed layout (sfdp / FM³ style) with Barnes–Hut repulsion.
//!
//! How it works: the graph is coarsened by heavy-edge matching ([`crate::graph::coarsen`]) until
//! about 100 nodes remain. The coarsest graph starts at seeded random positions and is relaxed; each
//! finer level starts from its parent's position (scaled by √(n_fine / n_coarse), since a layout's
//! area grows with its node count, plus a small seeded jitter) and is refined. One iteration is Hu's
//! spring-electrical model (2005): repulsion `C·K²/d` from every other node through a Barnes–Hut
//! quadtree (θ ≈ 0.9), attraction `d²/K` along edges, each node moving `step` along its force, with
//! the adaptive step schedule (grow after five energy decreases, shrink by 0.9 on an increase) and
//! convergence when the step falls below `tolerance · K`. The force pass is a rayon parallel loop over
//! nodes writing into a reused buffer; the quadtree is rebuilt in place; nothing allocates per
//! iteration (tested with a counting allocator). The coarsening levels become the cluster tree.
//!
//! Rejected: ForceAtlas2 (degree-weighted repulsion; its usual implementation is AGPL, and it needs
//! many more iterations without the multilevel start), and stress majorization (needs all-pairs
//! distances or a sparse solver: far too slow at a million nodes).

use std::time::{Duration, Instant};

use glam::{DVec2, Vec2};
use rayon::prelude::*;

use super::{Layout, LayoutError, LayoutKind, NodeBox, Progress, Routes, quadtree::QuadTree};
use crate::diag::trace_memory;
use crate::graph::{self, ClusterTree, Pcg32, WeightedGraph};
use crate::model::Graph;
use crate::view::Rect;

/// Options of [`force()`].
#[derive(Clone, Debug)]
pub struct ForceOptions {
    /// Seed of the initial positions, matching order and jitter.
    pub seed: u64,
    /// Iteration cap on levels of 1 000 to 100 000 nodes; larger levels get `iterations · √(10⁵/n)`
    /// (at least 8): they start from a prolonged layout that is already close.
    pub iterations: u32,
    /// Iteration cap on levels under 1 000 nodes (the coarse picture).
    pub coarse_iterations: u32,
    /// Barnes–Hut opening criterion (cell side / distance).
    pub theta: f32,
    /// Natural edge length `K`, world units.
    pub edge_length: f32,
    /// Node radius (half size of the drawn box).
    pub node_radius: f32,
    /// Convergence: stop a level when the step is below `tolerance · K`.
    pub tolerance: f32,
    /// Stop coarsening at this many nodes.
    pub coarsest: usize,
    /// Clusters with more direct children are split spatially.
    pub max_cluster_children: usize,
    /// Parameters per node for cluster labels (may be empty).
    pub node_params: Vec<u64>,
}

impl Default for ForceOptions {
    fn default() -> Self {
        ForceOptions {
            seed: 1,
            iterations: 40,
            coarse_iterations: 200,
            theta: 0.9,
            edge_length: 60.0,
            node_radius: 10.0,
            tolerance: 0.01,
            coarsest: 100,
            max_cluster_children: 128,
            node_params: Vec::new(),
        }
    }
}

/// A finished level, handed to the callback of [`force_with_levels`] (the app can draw it at once).
#[derive(Debug)]
pub struct LevelSnapshot<'a> {
    /// Level index (0 = the full graph).
    pub level: usize,
    /// Number of levels.
    pub levels: usize,
    /// Positions of this level's nodes.
    pub positions: &'a [Vec2],
    /// Time since the layout started.
    pub elapsed: Duration,
}

/// Reusable buffers of one force simulation: run [`ForceSim::iterate`] repeatedly without allocating.
#[derive(Debug, Default)]
pub struct ForceSim {
    tree: QuadTree,
    force: Vec<Vec2>,
}

impl ForceSim {
    /// New, empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// One iteration: moves every node `step` along its net force; returns the energy Σ|f|².
    /// Forces: repulsion `0.2·K²/d` (Barnes–Hut), attraction `d²/K` along edges, and a weak linear
    /// pull to the centre of mass (`0.1·d`) that keeps isolated nodes and small components from
    /// drifting away (the 2-D far field never vanishes, and every node moves `step` whatever its force).
    pub fn iterate(
        &mut self,
        pos: &mut [Vec2],
        graph: &WeightedGraph,
        k: f32,
        step: f32,
        theta: f32,
    ) -> f32 {
        self.tree.build(pos);
        self.force.resize(pos.len(), Vec2::ZERO);
        let c = 0.2 * k * k;
        let gravity = GRAVITY;
        let tree = &self.tree;
        let center = tree.center();
        let p: &[Vec2] = pos;
        // Morton order: neighbouring iterations walk the same cells.
        self.force
            .par_iter_mut()
            .with_min_len(512)
            .enumerate()
            .for_each(|(rank, f)| {
                let Some((i, x)) = tree.sorted_point(rank) else {
                    return;
                };
                let mut acc = tree.field(i, x, theta) * c - (x - center) * gravity;
                let (nb, _) = graph.row(i as usize);
                for &j in nb {
                    let d = p.get(j as usize).copied().unwrap_or(x) - x;
                    acc += d * (d.length() / k);
                }
                *f = acc;
            });
        let energy: f32 = self
            .force
            .par_iter()
            .with_min_len(4096)
            .map(|f| f.length_squared())
            .sum();
        let force = &self.force;
        pos.par_iter_mut()
            .with_min_len(4096)
            .enumerate()
            .for_each(|(i, x)| {
                let f = tree
                    .rank(i as u32)
                    .and_then(|r| force.get(r as usize))
                    .copied()
                    .unwrap_or(Vec2::ZERO);
                let len = f.length();
                if len > 0.0 && len.is_finite() {
                    *x += f * (step / len);
                }
            });
        energy
    }
}

/// Strength of the pull towards the centre of mass (see [`ForceSim::iterate`]).
const GRAVITY: f32 = 0.1;

/// Force-directed layout of the whole graph. See the module notes.
pub fn force(
    graph: &Graph,
    opts: &ForceOptions,
    progress: &Progress,
) -> Result<Layout, LayoutError> {
    force_with_levels(graph, opts, progress, &mut |_| {})
}

/// [`force()`], calling `on_level` as each level (coarsest first) is finished.
pub fn force_with_levels(
    graph: &Graph,
    opts: &ForceOptions,
    progress: &Progress,
    on_level: &mut dyn FnMut(&LevelSnapshot),
) -> Result<Layout, LayoutError> {
    let started = Instant::now();
    progress.set("force: coarsening", 0.0);
    let edges = graph::edge_pairs(graph)?;
    let n = graph.nodes.len();
    let fine = WeightedGraph::from_edges(n, &edges);
    let levels = graph::coarsen(&fine, opts.coarsest, opts.seed);
    trace_memory("force: coarsened");
    progress.check()?;
    let k = opts.edge_length.max(1e-3);
    let mut rng = Pcg32::new(opts.seed);
    let nlev = levels.len() + 1;
    let graph_at = |l: usize| if l == 0 { &fine } else { &levels[l - 1].graph };

    // Coarsest: seeded random square.
    let nc = graph_at(nlev - 1).node_count();
    let side = (nc as f32).sqrt() * k;
    let mut pos: Vec<Vec2> = (0..nc)
        .map(|_| Vec2::new(rng.unit_f32() * side, rng.unit_f32() * side))
        .collect();
    let mut sim = ForceSim::new();
    let total_work: f64 = (0..nlev)
        .map(|l| graph_at(l).node_count() as f64)
        .sum::<f64>()
        .max(1.0);
    let mut work_done = 0.0f64;
    for l in (0..nlev).rev() {
        let g = graph_at(l);
        // Fine levels start from a good prolonged layout: fewer iterations the larger they are.
        let nl = g.node_count() as f64;
        let cap = if nl < 1000.0 {
            opts.coarse_iterations
        } else if nl <= 100_000.0 {
            opts.iterations
        } else {
            ((opts.iterations as f64 * (100_000.0 / nl).sqrt()).ceil() as u32).max(8)
        };
        let mut step = if l == nlev - 1 { k * 2.0 } else { k * 0.5 };
        let (mut energy0, mut streak) = (f32::INFINITY, 0u32);
        progress.set(
            &format!("force: level {l} ({} nodes)", g.node_count()),
            (work_done / total_work) as f32,
        );
        for _ in 0..cap {
            progress.check()?;
            // Levels over 100 k nodes start from a prolonged layout that is already globally right:
            // they refine local structure, and a coarser far field (θ + 0.6) costs less per step.
            let theta = if nl > 100_000.0 {
                opts.theta + 0.6
            } else {
                opts.theta
            };
            let energy = sim.iterate(&mut pos, g, k, step, theta);
            // Hu (2005) adaptive step.
            if energy < energy0 {
                streak += 1;
                if streak >= 5 {
                    streak = 0;
                    step /= 0.9;
                }
            } else {
                streak = 0;
                step *= 0.9;
            }
            energy0 = energy;
            if step < opts.tolerance * k {
                break;
            }
        }
        work_done += g.node_count() as f64;
        on_level(&LevelSnapshot {
            level: l,
            levels: nlev,
            positions: &pos,
            elapsed: started.elapsed(),
        });
        if l > 0 {
            // Prolong to the finer level.
            let map = &levels[l - 1].map;
            let finer = graph_at(l - 1).node_count();
            let scale = (finer as f32 / g.node_count().max(1) as f32).sqrt();
            let jitter = k * 0.1;
            pos = map
                .iter()
                .map(|&c| {
                    let base = pos.get(c as usize).copied().unwrap_or(Vec2::ZERO) * scale;
                    base + Vec2::new(rng.unit_f32() - 0.5, rng.unit_f32() - 0.5) * jitter
                })
                .collect();
        }
    }
    progress.set("force: cluster tree", 0.97);
    trace_memory("force: positions");

    let r = opts.node_radius.max(0.5);
    let nodes: Vec<NodeBox> = pos
        .iter()
        .map(|p| NodeBox {
            center: p.as_dvec2(),
            half_size: Vec2::splat(r),
        })
        .collect();
    // What the tree does not need goes before it is built: at 10 M nodes the finest graph alone is
    // ~350 MB and the positions 80 MB, and the peak of the whole layout is the tree's edge sort.
    drop(pos);
    drop(sim);
    drop(fine);
    let maps: Vec<Vec<u32>> = levels.into_iter().map(|l| l.map).collect();
    trace_memory("force: boxes");
    let mut tree = ClusterTree::from_levels(n, &maps);
    drop(maps);
    trace_memory("force: tree from levels");
    let node_rect = |v: u32| nodes.get(v as usize).map_or(Rect::EMPTY, NodeBox::rect);
    tree.fill_bboxes(node_rect);
    let mut tree = tree.split_wide(opts.max_cluster_children, |v| {
        nodes.get(v as usize).map_or(DVec2::ZERO, |x| x.center)
    });
    tree.fill_bboxes(node_rect);
    trace_memory("force: tree split");
    tree.aggregate_edges(&edges);
    trace_memory("force: edges aggregated");
    // The routes are the edge pairs themselves (collected in place: same layout).
    let mut pairs: Vec<[u32; 2]> = edges.into_iter().map(|(a, b)| [a, b]).collect();
    pairs.shrink_to_fit();
    let routes = Routes::Straight(pairs);
    if std::env::var_os("MODELMAP_BENCH_TRACE").is_some() {
        eprintln!(
            "force: {} clusters, tree {} MiB, node boxes {} MiB, routes {} MiB",
            tree.clusters.len(),
            tree.heap_bytes() >> 20,
            (nodes.capacity() * std::mem::size_of::<NodeBox>()) >> 20,
            routes.heap_bytes() >> 20
        );
    }
    tree.fill_params(&opts.node_params);
    tree.fill_dominant_ops(|v| graph.nodes.get(v as usize).map_or("", |nd| &*nd.op));
    let mut bounds = Rect::EMPTY;
    for nb in &nodes {
        bounds = bounds.union(&nb.rect());
    }
    progress.set("force: done", 1.0);
    Ok(Layout {
        kind: LayoutKind::Force,
        nodes,
        edges: routes,
        route_points: Vec::new(),
        groups: Vec::new(),
        collapsed: Vec::new(),
        clusters: tree,
        bounds,
        warnings: Vec::new(),
    })
}
