//! The per-frame cut through the cluster tree.
//!
//! How it works: a depth-first walk from the root. A cluster outside the view is not entered (it
//! stays one, undrawn, endpoint for edges); a visible cluster whose box is smaller on screen than a
//! threshold is drawn as one item; a larger one opens into its children. Thresholds differ for
//! opening and closing (hysteresis) so the cut does not flicker, and items fade in over a few frames
//! after their parent opened, so transitions do not pop.
//!
//! Edges come from the tree's aggregated sibling edges: between two closed children an aggregate is
//! one edge (width by count); when an endpoint child is open, its original edges are pushed down to
//! the current representatives and re-aggregated. The cost is therefore proportional to the clusters
//! and edges near the view, not to the graph; a per-frame budget bounds the push-down on pathological
//! graphs (dense random ones), beyond which aggregates are drawn at the coarser level.
//!
//! Per-cluster node chunks (boxes, colours, labels of a cluster's direct nodes) are built when a
//! cluster first opens and kept in an LRU cache under a byte budget, so a steady camera rebuilds
//! nothing, and the [`DrawList::revision`] changes only when what is drawn changes.
//!
//! Budgets (measured with `modelmap bench render --lod`, where a software rasteriser pays for every
//! covered pixel): the walk is a priority queue, largest cluster on screen first, and a cluster
//! opens only while the items drawn stay within `max_items`, so a frame costs about the same at any
//! zoom on any graph. Force-layout clusters come from graph coarsening and can hold far-apart
//! members, so their bounding boxes are nearly the whole graph: they are measured by a robust
//! footprint (members' mean ± √3 standard deviations, computed once in [`LodState::new`]), open at
//! `computed_cluster_scale` of the thresholds, and are drawn as discs as large as their members
//! together. Edges shorter than a pixel are dropped, straight edges are clipped to the view, and
//! the heaviest are kept up to `max_edges` instances and `max_edge_px` covered pixels.
//!
//! Rejected: re-aggregating all edges by the cut every frame (O(E) per frame), storing
//! aggregates for every cluster pair at every depth (quadratic memory), and drawing closed force
//! clusters at their bounding boxes (measured: 1 000 overlapping screen-sized discs, 0.4 s a
//! frame at 100 k nodes).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rustc_hash::FxHashMap;
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;

use glam::{DVec2, Vec2};

use super::style::{lighten, op_color, overlay_color, redact};
use super::{Align, DrawList, EdgeItem, LabelItem, NodeItem, NodeShape, Rgba8, flags};
use crate::graph::{ClusterId, ClusterTree, Item};
use crate::layout::{Layout, LayoutKind};
use crate::model::{Model, NodeId, NodeKind};
use crate::view::{Camera, Rect};

/// Tunables of the cut.
#[derive(Clone, Debug)]
pub struct LodOptions {
    /// A closed cluster opens when its box is larger than this on screen (pixels, longer side).
    pub open_px: f64,
    /// An open cluster closes again when smaller than this (hysteresis: below `open_px`).
    pub close_px: f64,
    /// Nodes smaller than this on screen (pixels, longer side) are not drawn.
    pub min_node_px: f64,
    /// Labels are drawn on items at least this tall on screen.
    pub label_min_px: f64,
    /// At most this many labels a frame.
    pub max_labels: usize,
    /// Seconds an item takes to fade in after its parent opened.
    pub fade_s: f64,
    /// Byte budget of the per-cluster chunk cache.
    pub cache_budget_bytes: usize,
    /// Most original edges pushed down per frame.
    pub pushdown_budget: usize,
    /// Most items (nodes and closed clusters) a frame draws: clusters open largest-on-screen first
    /// until opening the next would exceed this, so a frame costs about the same at any zoom on any
    /// graph. A screen of 1280×720 cannot show more than a few × 10⁴ distinct items anyway.
    pub max_items: usize,
    /// Most edge instances a frame draws; beyond it the heaviest aggregates are kept.
    pub max_edges: usize,
    /// Most pixels a frame's edges may cover (on-screen length × width, summed) in a 1280×720 view,
    /// and the same share of a larger one: a software rasteriser's cost is the area it fills, and
    /// long aggregates across the screen dominate it.
    pub max_edge_px: f64,
    /// Force-layout clusters (computed by coarsening, nothing to read in them) open at this
    /// fraction of `open_px` / `close_px`, so a cluster is drawn as one item only while it is a
    /// small disc and the picture is the graph's density rather than overlapping large discs.
    pub computed_cluster_scale: f64,
    /// Draw everything: open every cluster regardless of size (the `--no-lod` baseline).
    pub no_lod: bool,
}

impl Default for LodOptions {
    fn default() -> Self {
        LodOptions {
            open_px: 160.0,
            close_px: 110.0,
            min_node_px: 0.0,
            label_min_px: 11.0,
            max_labels: 4000,
            fade_s: 0.25,
            cache_budget_bytes: 64 << 20,
            pushdown_budget: 40_000,
            max_items: 5_000,
            max_edges: 8_000,
            max_edge_px: 3.0e5,
            computed_cluster_scale: 0.15,
            no_lod: false,
        }
    }
}

/// What the user has done to the view: selection, hover, pinned clusters, overlays.
#[derive(Clone, Debug, Default)]
pub struct ViewState {
    /// Selected item.
    pub selected: Option<Item>,
    /// Item under the cursor.
    pub hovered: Option<Item>,
    /// Nodes highlighted (inputs/outputs of the selection, search hits).
    pub highlighted: Vec<NodeId>,
    /// Clusters the user opened by hand (stay open at any zoom).
    pub pinned_open: Vec<ClusterId>,
    /// Clusters the user closed by hand.
    pub pinned_closed: Vec<ClusterId>,
    /// Per-node values to colour by (parameter count, norm, sparsity, a file's node data…),
    /// replacing op colours.
    pub overlay: Option<Arc<NodeOverlay>>,
    /// Replace names with stable hashes (`--redact`).
    pub redact: bool,
    /// Bumped by the caller whenever any field changes (part of the redraw key).
    pub revision: u64,
}

/// Per-node values that colour the graph in place of op colours, and the colours a file chose
/// for them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeOverlay {
    /// Per node, 0..=1 on the overlay's blue → red scale; NaN: no figure (the node keeps its op
    /// colour). A closed cluster takes the colour of the node under it with the largest value.
    pub values: Vec<f32>,
    /// Per node, the colour its data chose (a Model Explorer node data file's gradient,
    /// thresholds or `bgColor`), which replaces the scale; `None` for a node with a value outside
    /// every band the file coloured, drawn in [`NO_BAND`]. Empty: every colour from `values`.
    pub fills: Vec<Option<Rgba8>>,
}

/// A node whose value lies outside every band of the file's colours (Model Explorer leaves it
/// white).
pub const NO_BAND: Rgba8 = [246, 246, 246, 255];

impl From<Vec<f32>> for NodeOverlay {
    fn from(values: Vec<f32>) -> Self {
        NodeOverlay {
            values,
            fills: Vec::new(),
        }
    }
}

impl NodeOverlay {
    /// Node `n`'s colour under the overlay; `None` when it has no figure.
    pub fn fill(&self, n: usize) -> Option<Rgba8> {
        let v = self.values.get(n).copied().filter(|v| v.is_finite())?;
        if self.fills.is_empty() {
            return Some(overlay_color(v));
        }
        Some(self.fills.get(n).copied().flatten().unwrap_or(NO_BAND))
    }
}

/// How closed clusters show an overlay: per cluster, the node under it with the largest value,
/// whose colour it takes, and the spread of its nodes' colours for a strip along its bottom edge
/// (as Model Explorer's group nodes show their node data).
#[derive(Debug, Default)]
struct ClusterShades {
    /// Per cluster, the node with the largest value under it (`u32::MAX`: none).
    top: Vec<NodeId>,
    /// Per cluster, where its runs start in `runs` (one more entry than clusters).
    runs_at: Vec<u32>,
    /// Runs of one colour among a cluster's nodes with a value, smallest value first: the
    /// colour and where the run ends, as a fraction of the strip.
    runs: Vec<(Rgba8, f32)>,
}

/// Least and most height of a closed cluster's strip on screen, in pixels.
const STRIP_PX: (f64, f64) = (4.0, 8.0);

/// Steps of a closed cluster's strip: its nodes' colours at this many quantiles of their values.
const STRIP_STEPS: usize = 24;

impl ClusterShades {
    /// One pass up the tree: each cluster's nodes with a value, sorted, are its own and its
    /// children's lists merged (the stable sort merges the children's sorted runs), so the whole
    /// costs about one sort of the nodes per level, not a sort per cluster of everything under it.
    fn new(overlay: &NodeOverlay, tree: &ClusterTree, pre: &[(u32, u32)]) -> ClusterShades {
        let n = tree.clusters.len();
        let mut lists: Vec<Vec<(f32, NodeId)>> = vec![Vec::new(); n];
        for (node, &v) in overlay.values.iter().enumerate() {
            if let Some(&c) = tree.node_cluster.get(node)
                && let Some(list) = lists.get_mut(c as usize)
                && v.is_finite()
            {
                list.push((v, node as NodeId));
            }
        }
        // Children come after their parents in pre-order: from the last back, every cluster is
        // done before its parent.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by_key(|&c| Reverse(pre.get(c).map_or(0, |p| p.0)));
        let mut top = vec![NodeId::MAX; n];
        let mut strips: Vec<Vec<(Rgba8, f32)>> = vec![Vec::new(); n];
        for c in order {
            let mut values = std::mem::take(&mut lists[c]);
            values.sort_by(|a, b| a.0.total_cmp(&b.0));
            top[c] = values.last().map_or(NodeId::MAX, |&(_, node)| node);
            strips[c] = strip(&values, overlay);
            if let Some(p) = tree.clusters[c].parent.map(|p| p as usize)
                && p < n
                && p != c
            {
                lists[p].extend(values);
            }
        }
        let mut runs_at = Vec::with_capacity(n + 1);
        runs_at.push(0);
        let mut runs = Vec::new();
        for s in strips {
            runs.extend(s);
            runs_at.push(runs.len() as u32);
        }
        ClusterShades { top, runs_at, runs }
    }

    /// Cluster `c`'s strip.
    fn runs(&self, c: usize) -> &[(Rgba8, f32)] {
        match (self.runs_at.get(c), self.runs_at.get(c + 1)) {
            (Some(&a), Some(&b)) => self.runs.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Counters of the last cut (for benches and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutStats {
    /// Clusters visited.
    pub clusters_visited: usize,
    /// Clusters drawn collapsed.
    pub clusters_drawn: usize,
    /// Nodes drawn.
    pub nodes_drawn: usize,
    /// Edges drawn.
    pub edges_drawn: usize,
    /// Original edges pushed down.
    pub edges_pushed: usize,
    /// Chunk cache entries built this frame.
    pub chunks_built: usize,
    /// Chunks evicted this frame.
    pub chunks_evicted: usize,
    /// Microseconds spent choosing clusters and emitting nodes.
    pub walk_us: u32,
    /// Microseconds spent resolving and pushing down edges.
    pub edges_us: u32,
}

/// A cluster's direct nodes, prepared once.
struct Chunk {
    nodes: Vec<ChunkNode>,
    bytes: usize,
    last_used: u64,
}

struct ChunkNode {
    id: NodeId,
    rect: Rect,
    fill: Rgba8,
    shape: NodeShape,
    label: String,
    sublabel: String,
}

/// Open/closed state of a cluster in the current cut.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mark {
    /// Not reached this frame (inside a closed or offscreen ancestor).
    Unreached,
    /// Open: its children are drawn.
    Open,
    /// Drawn as one item.
    Closed,
    /// Outside the view: not drawn, an endpoint for edges.
    Offscreen,
}

/// The state the cut keeps between frames.
pub struct LodState {
    /// Options.
    pub options: LodOptions,
    is_open: Vec<bool>,
    changed_at: Vec<f64>,
    mark: Vec<(u64, Mark)>,
    frame: u64,
    chunks: HashMap<ClusterId, Chunk>,
    chunk_bytes: usize,
    list: DrawList,
    items: Vec<Item>,
    last_key: u64,
    animating: bool,
    /// Per visible pair: the edge count and the first original edge (whose route it borrows).
    pair_scratch: FxHashMap<(Item, Item), (u32, u32)>,
    /// Pieces of routed aggregates pushed this frame (their ends' bits) and their index in the
    /// edge list: aggregates of one producer share its bundle, drawn once.
    piece_seen: FxHashMap<[u32; 4], u32>,
    /// Per cluster, its interval in a pre-order of the cluster tree: `pre..post` holds exactly the
    /// pre-order numbers of its subtree.
    pre: Vec<(u32, u32)>,
    /// The overlay the closed clusters' colours below were made from, and those colours.
    overlay_clusters: Option<(Arc<NodeOverlay>, Arc<ClusterShades>)>,
    /// Per entry of [`ClusterTree::edge_ids`], the pre-order numbers of the clusters its two ends
    /// hang under: pushing an aggregate down reads these in sequence instead of chasing the graph.
    edge_ends: Vec<(u32, u32)>,
    /// This frame's frontier: the clusters drawn closed or skipped off screen (never nested), as
    /// `(pre, post, id)` sorted by `pre`. A node's representative is the frontier cluster whose
    /// interval holds its cluster, else the node itself.
    frontier: Vec<(u32, u32, ClusterId)>,
    /// `frontier_first[b]`: how many frontier entries start before pre-order number
    /// `b << frontier_shift` (one more bucket than fit, so `b + 1` is always valid). Narrows each
    /// look-up to the few entries of one bucket instead of a binary search over thousands.
    frontier_first: Vec<u32>,
    frontier_shift: u32,
    /// Straight layouts (force): the bounding boxes of the original edges of every aggregate of at
    /// least [`SEGMENT_BOXES_MIN_EDGES`] edges, in [`ClusterTree::edge_ids`] order, as f32 relative
    /// to `seg_origin`; `seg_start` maps an aggregate (its first edge-id index) to its first box.
    /// Pushing a high aggregate down at deep zoom rejects off-screen edges by a sequential scan of
    /// these instead of looking up both ends of each edge in the node array (two cache misses an
    /// edge, for tens of thousands of edges every frame).
    seg_boxes: Vec<[f32; 4]>,
    seg_start: FxHashMap<u32, u32>,
    seg_origin: DVec2,
    /// `(edge-id count, bounds)` the boxes were built for.
    seg_key: Option<(usize, [u64; 4])>,
    /// Per cluster: where it is drawn when closed and the extent that decides when it opens.
    footprint: Vec<Rect>,
    /// Per cluster, the screen-size measure (world units) that decides whether it opens; empty:
    /// the footprint's larger side. See [`open_extents`].
    open_extent: Vec<f64>,
    /// Per cluster, the half side of a disc whose area is its members' (force layouts).
    disc_half: Vec<f64>,
    /// Counters of the last cut.
    pub stats: CutStats,
}

const REANCHOR_PX: f64 = 1.0e5;

/// Asks the CPU to start loading `x`'s cache line: the walk pushes a cluster's children long before
/// it pops them, and on a large tree each first touch of a cluster is a cache miss.
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it cannot fault and reads nothing into the program.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (x as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// Pre-order intervals of every cluster (see [`LodState::pre`]).
fn preorder_intervals(tree: &ClusterTree) -> Vec<(u32, u32)> {
    let n = tree.clusters.len();
    let mut out = vec![(0u32, 0u32); n];
    if n == 0 {
        return out;
    }
    let mut next = 0u32;
    // (cluster, whether its children were pushed)
    let mut stack: Vec<(ClusterId, bool)> = vec![(0, false)];
    let mut seen = vec![false; n];
    while let Some((c, expanded)) = stack.pop() {
        let ci = c as usize;
        if expanded {
            if let Some(slot) = out.get_mut(ci) {
                slot.1 = next;
            }
            continue;
        }
        // A malformed tree (a child listed twice) must not loop.
        if seen.get(ci).copied().unwrap_or(true) {
            continue;
        }
        seen[ci] = true;
        out[ci].0 = next;
        next += 1;
        stack.push((c, true));
        if let Some(cl) = tree.clusters.get(ci) {
            for &k in tree.child_clusters(cl).iter().rev() {
                stack.push((k, false));
            }
        }
    }
    out
}

/// [`LodState::edge_ends`] for `tree`.
fn edge_ends(tree: &ClusterTree, model: &Model, pre: &[(u32, u32)]) -> Vec<(u32, u32)> {
    use rayon::prelude::*;
    let pre_of = |n: NodeId| {
        tree.node_cluster
            .get(n as usize)
            .and_then(|&c| pre.get(c as usize))
            .map_or(u32::MAX, |p| p.0)
    };
    tree.edge_ids
        .par_iter()
        .map(|&e| {
            model
                .graph
                .edges
                .get(e as usize)
                .map_or((u32::MAX, u32::MAX), |edge| {
                    (pre_of(edge.from), pre_of(edge.to))
                })
        })
        .collect()
}

impl LodState {
    /// The world extent that decides whether cluster `c` (footprint `f`) opens.
    fn extent(&self, c: ClusterId, f: &Rect) -> f64 {
        self.open_extent
            .get(c as usize)
            .copied()
            .unwrap_or_else(|| f.size().max_element())
    }

    /// State for a layout.
    pub fn new(layout: &Layout, options: LodOptions) -> Self {
        let footprint = footprints(layout);
        let open_extent = open_extents(layout, &footprint);
        Self::from_parts(
            options,
            layout.clusters.clusters.len(),
            DrawList::new(layout.bounds.center()),
            footprint,
            open_extent,
            disc_halves(layout),
        )
    }

    /// A state for `n` clusters with the given per-cluster extents.
    fn from_parts(
        options: LodOptions,
        n: usize,
        list: DrawList,
        footprint: Vec<Rect>,
        open_extent: Vec<f64>,
        disc_half: Vec<f64>,
    ) -> Self {
        LodState {
            options,
            is_open: vec![false; n],
            changed_at: vec![f64::NEG_INFINITY; n],
            mark: vec![(0, Mark::Unreached); n],
            frame: 0,
            chunks: HashMap::new(),
            chunk_bytes: 0,
            list,
            items: Vec::new(),
            last_key: 0,
            animating: false,
            pair_scratch: FxHashMap::default(),
            piece_seen: FxHashMap::default(),
            pre: Vec::new(),
            overlay_clusters: None,
            edge_ends: Vec::new(),
            seg_boxes: Vec::new(),
            seg_start: FxHashMap::default(),
            seg_origin: DVec2::ZERO,
            seg_key: None,
            frontier: Vec::new(),
            frontier_first: Vec::new(),
            frontier_shift: 0,
            footprint,
            open_extent,
            disc_half,
            stats: CutStats::default(),
        }
    }

    /// A state over no layout, for unit tests of the per-frame tables.
    #[cfg(test)]
    fn empty_for_tests() -> Self {
        Self::from_parts(
            LodOptions::default(),
            0,
            DrawList::default(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )
    }

    /// Whether items are still fading (the caller should keep redrawing).
    pub fn is_animating(&self) -> bool {
        self.animating
    }

    /// The last list produced.
    pub fn draw_list(&self) -> &DrawList {
        &self.list
    }

    /// Bytes held by the chunk cache.
    pub fn cache_bytes(&self) -> usize {
        self.chunk_bytes
    }

    /// Bytes of the cached chunks the last frame used (these are never evicted).
    pub fn cache_bytes_in_use(&self) -> usize {
        self.chunks
            .values()
            .filter(|c| c.last_used == self.frame)
            .map(|c| c.bytes)
            .sum()
    }

    /// Number of cached chunks.
    pub fn cached_chunks(&self) -> usize {
        self.chunks.len()
    }

    fn mark_of(&self, c: ClusterId) -> Mark {
        match self.mark.get(c as usize) {
            Some(&(f, m)) if f == self.frame => m,
            _ => Mark::Unreached,
        }
    }

    /// The frontier cluster whose subtree holds the cluster with pre-order number `pre`, if any.
    fn frontier_of(&self, pre: u32) -> Option<ClusterId> {
        let b = (pre >> self.frontier_shift) as usize;
        let (lo, hi) = match (self.frontier_first.get(b), self.frontier_first.get(b + 1)) {
            (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
            _ => (0, self.frontier.len()),
        };
        // Entries starting at or before `pre`: all of buckets before b, plus those of bucket b
        // up to `pre`. The containing interval, if any, is the last of them.
        let within = self
            .frontier
            .get(lo..hi)
            .map_or(0, |s| s.partition_point(|f| f.0 <= pre));
        let &(start, end, c) = self.frontier.get((lo + within).checked_sub(1)?)?;
        (start <= pre && pre < end).then_some(c)
    }

    /// Sorts the frontier and indexes it by buckets of pre-order numbers.
    fn index_frontier(&mut self) {
        self.frontier.sort_unstable();
        let n = self.pre.len().max(1) as u64;
        // About 2^16 buckets whatever the tree's size.
        self.frontier_shift = (64 - n.leading_zeros()).saturating_sub(16);
        let buckets = (n >> self.frontier_shift) as usize + 2;
        self.frontier_first.clear();
        self.frontier_first.reserve(buckets);
        let mut i = 0usize;
        for b in 0..buckets {
            let start = (b as u64) << self.frontier_shift;
            while self.frontier.get(i).is_some_and(|f| u64::from(f.0) < start) {
                i += 1;
            }
            self.frontier_first.push(i as u32);
        }
    }

    /// Builds the per-layout tables the edge push-down reads (pre-order intervals, per-edge ends).
    /// Call it where the layout is made, off the UI thread; otherwise the first cut builds them
    /// (for 20 M edges, a fraction of a second).
    pub fn prepare_tables(&mut self, model: &Model, layout: &Layout) {
        self.ensure_tables(model, &layout.clusters);
        self.ensure_segment_boxes(layout);
    }

    /// Builds the edge boxes of large aggregates of a straight (force) layout, once per layout.
    fn ensure_segment_boxes(&mut self, layout: &Layout) {
        let b = layout.bounds;
        let key = (
            layout.clusters.edge_ids.len(),
            [
                b.min.x.to_bits(),
                b.min.y.to_bits(),
                b.max.x.to_bits(),
                b.max.y.to_bits(),
            ],
        );
        if self.seg_key == Some(key) {
            return;
        }
        self.seg_key = Some(key);
        self.seg_boxes = Vec::new();
        self.seg_start = FxHashMap::default();
        if !matches!(layout.edges, crate::layout::Routes::Straight(_)) || b.is_empty() {
            return;
        }
        let origin = b.center();
        self.seg_origin = origin;
        let tree = &layout.clusters;
        let big = |a: &&crate::graph::AggEdge| a.count as usize >= SEGMENT_BOXES_MIN_EDGES;
        // Exact sizes first: doubling growth would briefly hold twice the ~60 MB of a 10 M-node
        // graph's boxes at the scene's memory peak.
        let (mut aggs, mut edges) = (0usize, 0usize);
        for cl in &tree.clusters {
            for agg in tree.sibling_edges(cl).iter().filter(big) {
                aggs += 1;
                edges += agg.count as usize;
            }
        }
        self.seg_start.reserve(aggs);
        self.seg_boxes.reserve_exact(edges);
        for cl in &tree.clusters {
            for agg in tree.sibling_edges(cl).iter().filter(big) {
                self.seg_start
                    .insert(agg.edges.start, self.seg_boxes.len() as u32);
                for &e in tree.agg_edge_ids(agg) {
                    let (a, z) = layout
                        .route(e as usize)
                        .map_or((origin, origin), |r| (r.from, r.to));
                    let (lo, hi) = (a.min(z) - origin, a.max(z) - origin);
                    self.seg_boxes
                        .push([lo.x as f32, lo.y as f32, hi.x as f32, hi.y as f32]);
                }
            }
        }
    }

    /// Fills the per-layout tables unless they already match `tree`.
    fn ensure_tables(&mut self, model: &Model, tree: &ClusterTree) {
        if self.pre.len() != tree.clusters.len() {
            self.pre = preorder_intervals(tree);
        }
        if self.edge_ends.len() != tree.edge_ids.len() {
            self.edge_ends = edge_ends(tree, model, &self.pre);
        }
    }

    /// Computes the cut for a camera and returns the draw list.
    pub fn cut(
        &mut self,
        model: &Model,
        layout: &Layout,
        camera: &Camera,
        view: &ViewState,
        now_s: f64,
    ) -> &DrawList {
        let started = std::time::Instant::now();
        self.frame += 1;
        self.stats = CutStats::default();
        self.animating = false;
        let tree = &layout.clusters;
        if self.is_open.len() != tree.clusters.len() {
            *self = LodState::new(layout, self.options.clone());
            self.frame = 1;
        }
        self.ensure_tables(model, tree);
        self.ensure_segment_boxes(layout);
        let cluster_overlay = view.overlay.as_ref().map(|o| match &self.overlay_clusters {
            Some((from, v)) if Arc::ptr_eq(from, o) && v.top.len() == tree.clusters.len() => {
                v.clone()
            }
            _ => {
                let v = Arc::new(ClusterShades::new(o, tree, &self.pre));
                self.overlay_clusters = Some((o.clone(), v.clone()));
                v
            }
        });
        self.frontier.clear();
        let zoom = camera.zoom;
        let visible = camera.visible_world().expand(8.0 / zoom);
        // Re-anchor the f32 origin when the camera has moved far from it (in pixels).
        if (camera.center - self.list.origin).length() * zoom > REANCHOR_PX {
            self.list.origin = camera.center;
        }
        let origin = self.list.origin;
        let rel = |p: DVec2| -> Vec2 { (p - origin).as_vec2() };
        let mut nodes: Vec<NodeItem> = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        let mut labels: Vec<LabelItem> = Vec::new();
        let mut edges: Vec<EdgeItem> = Vec::new();
        let mut key = rustc_hash::FxHasher::default();
        self.piece_seen.clear();
        origin.x.to_bits().hash(&mut key);
        origin.y.to_bits().hash(&mut key);
        view.revision.hash(&mut key);
        let mut opts = self.options.clone();
        if layout.kind == LayoutKind::Force {
            opts.open_px *= opts.computed_cluster_scale;
            opts.close_px *= opts.computed_cluster_scale;
        }
        let selected_node = |n: NodeId| view.selected == Some(Item::Node(n));
        let mut label_budget = opts.max_labels;
        let mut open_clusters: Vec<ClusterId> = Vec::new();
        // Largest on screen first, so a budget-limited cut opens what the user sees best. An open
        // cluster's priority is scaled like the hysteresis thresholds so that it keeps its place.
        let priority = |this: &Self, c: ClusterId| -> u64 {
            let Some(f) = this.footprint.get(c as usize) else {
                return 0;
            };
            let mut px = this.extent(c, f) * zoom;
            if this.is_open.get(c as usize).copied().unwrap_or(false) {
                px *= opts.open_px / opts.close_px.max(1e-9);
            }
            // Non-negative floats order like their bits.
            px.max(0.0).to_bits()
        };
        let mut heap: BinaryHeap<(u64, Reverse<ClusterId>)> = BinaryHeap::new();
        heap.push((u64::MAX, Reverse(0)));
        // Items drawn so far (closed clusters and nodes).
        let mut drawn = 0usize;
        let mut frames: Vec<(NodeItem, Item, Option<LabelItem>)> = Vec::new();
        while let Some((_, Reverse(c))) = heap.pop() {
            let Some(cl) = tree.clusters.get(c as usize) else {
                continue;
            };
            self.stats.clusters_visited += 1;
            let ci = c as usize;
            let interval = self.pre.get(ci).copied().unwrap_or((0, 0));
            if cl.bbox.is_empty() {
                self.mark[ci] = (self.frame, Mark::Offscreen);
                self.frontier.push((interval.0, interval.1, c));
                continue;
            }
            if c != 0 && !cl.bbox.intersects(&visible) && !opts.no_lod {
                self.mark[ci] = (self.frame, Mark::Offscreen);
                self.frontier.push((interval.0, interval.1, c));
                continue;
            }
            let footprint = self.footprint.get(ci).copied().unwrap_or(cl.bbox);
            let size = footprint.size();
            let screen = self.extent(c, &footprint) * zoom;
            let was_open = self.is_open[ci];
            let mut open = if was_open {
                screen > opts.close_px
            } else {
                screen > opts.open_px
            };
            // Opening replaces this item by its children: within budget?
            if open && c != 0 {
                let kids = cl.child_count();
                open = drawn + heap.len() + kids <= opts.max_items;
            }
            if c == 0 || opts.no_lod || view.pinned_open.contains(&c) || cl.member_count <= 1 {
                open = true;
            }
            if view.pinned_closed.contains(&c) && c != 0 {
                open = false;
            }
            if open != was_open {
                self.is_open[ci] = open;
                // The first picture appears at once; later changes fade.
                if self.frame > 1 {
                    self.changed_at[ci] = now_s;
                }
            }
            // Fade: items appear over `fade_s` after the cluster (or its parent) changed.
            let since_parent = cl
                .parent
                .map_or(f64::INFINITY, |p| now_s - self.changed_at[p as usize]);
            let since_self = now_s - self.changed_at[ci];
            if open {
                self.mark[ci] = (self.frame, Mark::Open);
                open_clusters.push(c);
                c.hash(&mut key);
                let alpha = fade(since_self, opts.fade_s);
                if alpha < 1.0 {
                    self.animating = true;
                }
                // Group frames (dataflow groups) are drawn under their children.
                if cl.group.is_some() && c != 0 && layout.kind == LayoutKind::Dataflow {
                    let fill = lighten(op_color(&cl.dominant_op), 0.85);
                    let mut item = NodeItem {
                        center: rel(cl.bbox.center()),
                        half_size: (size * 0.5).as_vec2(),
                        fill,
                        shape: NodeShape::RoundedBox,
                        flags: flags::FRAME,
                        alpha: 1.0,
                    };
                    if view.selected == Some(Item::Cluster(c)) {
                        item.flags |= flags::SELECTED;
                    }
                    let label = (size.x * zoom > 80.0 && label_budget > 0).then(|| {
                        label_budget -= 1;
                        let text = if view.redact {
                            redact(&cl.display_label())
                        } else {
                            short(&cl.display_label()).to_string()
                        };
                        LabelItem {
                            pos: rel(DVec2::new(
                                cl.bbox.min.x + 6.0 / zoom,
                                cl.bbox.min.y + 9.0 / zoom,
                            )),
                            text,
                            size_px: 12.0,
                            color: [70, 76, 86, 255],
                            align: Align::Left,
                        }
                    });
                    frames.push((item, Item::Cluster(c), label));
                }
                for &child in tree.child_clusters(cl) {
                    if let Some(k) = tree.clusters.get(child as usize) {
                        prefetch(&k.bbox);
                    }
                    heap.push((priority(self, child), Reverse(child)));
                }
                let before = nodes.len();
                self.emit_chunk(
                    c,
                    model,
                    layout,
                    view,
                    zoom,
                    &visible,
                    alpha,
                    &rel,
                    &mut nodes,
                    &mut items,
                    &mut labels,
                    &mut label_budget,
                    &mut key,
                    &selected_node,
                );
                drawn += nodes.len() - before;
            } else {
                self.mark[ci] = (self.frame, Mark::Closed);
                self.frontier.push((interval.0, interval.1, c));
                self.stats.clusters_drawn += 1;
                drawn += 1;
                c.hash(&mut key);
                let alpha = fade(since_self.min(since_parent), opts.fade_s);
                if alpha < 1.0 {
                    self.animating = true;
                }
                let base = cluster_overlay
                    .as_ref()
                    .zip(view.overlay.as_ref())
                    .and_then(|(c, o)| o.fill(*c.top.get(ci)? as usize))
                    .unwrap_or_else(|| lighten(op_color(&cl.dominant_op), 0.35));
                let mut flags = flags::CLUSTER;
                if view.selected == Some(Item::Cluster(c)) {
                    flags |= flags::SELECTED;
                }
                if view.hovered == Some(Item::Cluster(c)) {
                    flags |= flags::HOVERED;
                }
                // A force cluster left closed by the item budget is still drawn as a disc no
                // larger than an opening one: a disc's cost is its area on screen.
                let size = if layout.kind == LayoutKind::Force {
                    let disc = self.disc_half.get(ci).copied().unwrap_or(f64::INFINITY) * 2.0;
                    size.min(DVec2::splat(disc.min(opts.open_px / zoom)))
                } else {
                    size
                };
                nodes.push(NodeItem {
                    center: rel(footprint.center()),
                    half_size: (size * 0.5).as_vec2(),
                    fill: base,
                    shape: if layout.kind == LayoutKind::Force {
                        NodeShape::Circle
                    } else {
                        NodeShape::RoundedBox
                    },
                    flags,
                    alpha,
                });
                items.push(Item::Cluster(c));
                // The spread of its nodes' colours along its bottom edge, once the box is large
                // enough to hold a strip beside its label.
                let strip = cluster_overlay.as_ref().map_or(&[][..], |o| o.runs(ci));
                if !strip.is_empty()
                    && layout.kind != LayoutKind::Force
                    && size.x * zoom >= 14.0
                    && size.y * zoom >= 20.0
                {
                    let h = (size.y * 0.08).clamp(STRIP_PX.0 / zoom, STRIP_PX.1 / zoom);
                    let inset = (size.x * 0.08).max(3.0 / zoom);
                    let (x0, width) = (footprint.min.x + inset, size.x - 2.0 * inset);
                    let y = footprint.center().y + size.y * 0.5 - inset.min(size.y * 0.1) - h * 0.5;
                    let mut from = 0.0f32;
                    for &(colour, to) in strip {
                        let (a, b) = (x0 + width * from as f64, x0 + width * to as f64);
                        nodes.push(NodeItem {
                            center: rel(DVec2::new((a + b) * 0.5, y)),
                            half_size: DVec2::new((b - a) * 0.5, h * 0.5).as_vec2(),
                            fill: colour,
                            shape: NodeShape::RoundedBox,
                            flags: 0,
                            alpha,
                        });
                        items.push(Item::Cluster(c));
                        from = to;
                    }
                }
                if size.y * zoom >= opts.label_min_px * 1.5 && label_budget > 0 {
                    let name = if view.redact {
                        redact(&cl.display_label())
                    } else {
                        short(&cl.display_label()).to_string()
                    };
                    let px = 12.0f32.min((size.y * zoom * 0.4) as f32).max(9.0);
                    let long = format!("{name} · {} nodes", cl.member_count);
                    // The longest text that fits the box: name and count, else the name alone,
                    // else the name in a smaller font (down to what still reads), else the name
                    // cut in the middle (`shuf… (3)`: siblings differ at the end of their names);
                    // nothing only when not even that fits.
                    let room = size.x * zoom * 0.92;
                    let fit = (room / text_width_px(&name, 1.0)) as f32;
                    let text = if text_width_px(&long, px) <= room {
                        Some((long, px))
                    } else if text_width_px(&name, px) <= room {
                        Some((name, px))
                    } else if fit >= MIN_LABEL_PX {
                        Some((name, fit))
                    } else {
                        let n = (room / text_width_px("x", MIN_LABEL_PX)) as usize;
                        (n >= 5).then(|| (middle_ellipsis(&name, n), MIN_LABEL_PX))
                    };
                    if let Some((text, px)) = text {
                        label_budget -= 1;
                        labels.push(LabelItem {
                            pos: rel(footprint.center()),
                            text,
                            size_px: px,
                            color: text_color(base),
                            align: Align::Center,
                        });
                    }
                }
            }
        }
        // Frames first (under everything), then nodes.
        let frame_count = frames.len();
        let mut all_nodes = Vec::with_capacity(frame_count + nodes.len());
        let mut all_items = Vec::with_capacity(frame_count + items.len());
        let mut frame_labels = Vec::new();
        for (n, i, l) in frames {
            all_nodes.push(n);
            all_items.push(i);
            if let Some(l) = l {
                frame_labels.push(l);
            }
        }
        all_nodes.extend(nodes);
        all_items.extend(items);
        frame_labels.extend(labels);
        let labels = frame_labels;

        // Edges.
        self.index_frontier();
        let walked = started.elapsed();
        self.stats.walk_us = walked.as_micros().min(u32::MAX as u128) as u32;
        let mut pushed = 0usize;
        let highlight = |n: NodeId| view.highlighted.contains(&n);
        for &l in &open_clusters {
            let Some(cl) = tree.clusters.get(l as usize) else {
                continue;
            };
            for agg in tree.sibling_edges(cl) {
                let ra = self.resolve(agg.a);
                let rb = self.resolve(agg.b);
                match (ra, rb) {
                    (Some(a), Some(b)) => {
                        if let (Item::Node(_), Item::Node(_), 1) = (a, b, agg.count)
                            && let Some(&e) = tree.agg_edge_ids(agg).first()
                        {
                            push_original_edge(
                                layout, e as usize, &visible, &rel, &highlight, model, &mut edges,
                                &mut key,
                            );
                            continue;
                        }
                        push_agg_edge(
                            layout,
                            &self.footprint,
                            a,
                            b,
                            agg.count,
                            tree.agg_edge_ids(agg).first().copied(),
                            zoom,
                            &visible,
                            &rel,
                            &mut edges,
                            &mut key,
                            &mut self.piece_seen,
                        );
                    }
                    _ if pushed < opts.pushdown_budget => {
                        // Force layouts draw every edge straight between its ends, which lie in
                        // the two clusters' boxes: when their union misses the view, so does every
                        // edge of the aggregate (at deep zoom, nearly all of them).
                        if layout.kind == LayoutKind::Force
                            && !layout
                                .item_bbox(agg.a)
                                .union(&layout.item_bbox(agg.b))
                                .intersects(&visible)
                        {
                            continue;
                        }
                        let ids = tree.agg_edge_ids(agg);
                        let ends = self
                            .edge_ends
                            .get(agg.edges.start as usize..agg.edges.end as usize)
                            .unwrap_or(&[]);
                        pushed += ids.len();
                        self.pair_scratch.clear();
                        // Each original edge is clipped to the view only when the aggregate can
                        // reach outside it: straight edges run between points of the two boxes.
                        let union = layout.item_bbox(agg.a).union(&layout.item_bbox(agg.b));
                        let clip_each =
                            !(visible.contains(union.min) && visible.contains(union.max));
                        let boxes = self
                            .seg_start
                            .get(&agg.edges.start)
                            .and_then(|&s| self.seg_boxes.get(s as usize..s as usize + ids.len()))
                            .filter(|_| clip_each);
                        // The view in the boxes' f32 frame, widened past their rounding.
                        let (vlo, vhi) = {
                            let (lo, hi) =
                                (visible.min - self.seg_origin, visible.max - self.seg_origin);
                            let m = 1e-3 + 1e-5 * lo.abs().max(hi.abs()).max_element();
                            ((lo - m).as_vec2(), (hi + m).as_vec2())
                        };
                        for (k, (&e, &(pa, pb))) in ids.iter().zip(ends).enumerate() {
                            // A box that misses the view: so does its edge (the exact test below
                            // is for the edges that remain).
                            if let Some(b) = boxes.and_then(|b| b.get(k))
                                && (b[2] < vlo.x || b[0] > vhi.x || b[3] < vlo.y || b[1] > vhi.y)
                            {
                                continue;
                            }
                            // An original edge wholly off screen adds nothing near the view
                            // (at deep zoom this skips almost all of a high aggregate).
                            if clip_each
                                && let Some(route) = layout.route(e as usize)
                                && route.points_len == 0
                                && clip_segment(route.from, route.to, &visible).is_none()
                            {
                                continue;
                            }
                            let (ca, cb) = (self.frontier_of(pa), self.frontier_of(pb));
                            if ca.is_some() && ca == cb {
                                continue;
                            }
                            if let (None, None) = (ca, cb) {
                                push_original_edge(
                                    layout, e as usize, &visible, &rel, &highlight, model,
                                    &mut edges, &mut key,
                                );
                                continue;
                            }
                            let Some(edge) = model.graph.edges.get(e as usize) else {
                                continue;
                            };
                            let a = ca.map_or(Item::Node(edge.from), Item::Cluster);
                            let b = cb.map_or(Item::Node(edge.to), Item::Cluster);
                            self.pair_scratch.entry((a, b)).or_insert((0, e)).0 += 1;
                        }
                        let mut pairs: Vec<((Item, Item), (u32, u32))> =
                            self.pair_scratch.drain().collect();
                        pairs.sort_unstable();
                        for ((a, b), (n, via)) in pairs {
                            push_agg_edge(
                                layout,
                                &self.footprint,
                                a,
                                b,
                                n,
                                Some(via),
                                zoom,
                                &visible,
                                &rel,
                                &mut edges,
                                &mut key,
                                &mut self.piece_seen,
                            );
                        }
                    }
                    _ => {
                        // Over budget: draw the aggregate between the coarse children themselves.
                        push_agg_edge(
                            layout,
                            &self.footprint,
                            agg.a,
                            agg.b,
                            agg.count,
                            tree.agg_edge_ids(agg).first().copied(),
                            zoom,
                            &visible,
                            &rel,
                            &mut edges,
                            &mut key,
                            &mut self.piece_seen,
                        );
                    }
                }
            }
        }
        self.stats.edges_pushed = pushed;
        if !opts.no_lod {
            let view_rel = Rect::new(visible.min - origin, visible.max - origin);
            let view_px = camera.viewport.x * camera.viewport.y;
            budget_edges(&mut edges, &view_rel, zoom, view_px, &opts);
        }
        self.stats.edges_drawn = edges.len();
        self.stats.edges_us = (started.elapsed() - walked)
            .as_micros()
            .min(u32::MAX as u128) as u32;
        self.stats.nodes_drawn = all_items
            .iter()
            .filter(|i| matches!(i, Item::Node(_)))
            .count();
        // Selection and hover flags are part of the key.
        view.selected.hash(&mut key);
        view.hovered.hash(&mut key);
        // Alphas are not in the key: while anything fades, every frame is a new picture.
        if self.animating {
            now_s.to_bits().hash(&mut key);
        }
        let key = key.finish();
        let background = self.list.background;
        self.list = DrawList {
            revision: if key == self.last_key {
                self.list.revision
            } else {
                super::draw_list::next_revision()
            },
            origin,
            heatmaps: Vec::new(),
            edges,
            nodes: all_nodes,
            labels,
            background,
        };
        self.items = all_items;
        self.last_key = key;
        self.evict();
        &self.list
    }

    fn resolve(&self, item: Item) -> Option<Item> {
        match item {
            Item::Node(_) => Some(item),
            Item::Cluster(c) => match self.mark_of(c) {
                Mark::Open => None,
                _ => Some(item),
            },
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename the arguments"
    )]
    fn emit_chunk(
        &mut self,
        c: ClusterId,
        model: &Model,
        layout: &Layout,
        view: &ViewState,
        zoom: f64,
        visible: &Rect,
        alpha: f32,
        rel: &dyn Fn(DVec2) -> Vec2,
        nodes: &mut Vec<NodeItem>,
        items: &mut Vec<Item>,
        labels: &mut Vec<LabelItem>,
        label_budget: &mut usize,
        key: &mut rustc_hash::FxHasher,
        selected_node: &dyn Fn(NodeId) -> bool,
    ) {
        if !self.chunks.contains_key(&c) {
            let chunk = build_chunk(c, model, layout);
            self.chunk_bytes += chunk.bytes;
            self.chunks.insert(c, chunk);
            self.stats.chunks_built += 1;
        }
        let frame = self.frame;
        let Some(chunk) = self.chunks.get_mut(&c) else {
            return;
        };
        chunk.last_used = frame;
        for cn in &chunk.nodes {
            if !cn.rect.intersects(visible) {
                continue;
            }
            let size = cn.rect.size();
            if size.x.max(size.y) * zoom < self.options.min_node_px {
                continue;
            }
            let mut fl = 0;
            if selected_node(cn.id) {
                fl |= flags::SELECTED;
            }
            if view.hovered == Some(Item::Node(cn.id)) {
                fl |= flags::HOVERED;
            }
            if view.highlighted.contains(&cn.id) {
                fl |= flags::HIGHLIGHT;
            }
            // No figure: the node keeps its op colour.
            let fill = view
                .overlay
                .as_ref()
                .and_then(|o| o.fill(cn.id as usize))
                .unwrap_or(cn.fill);
            cn.id.hash(key);
            nodes.push(NodeItem {
                center: rel(cn.rect.center()),
                half_size: (size * 0.5).as_vec2(),
                fill,
                shape: cn.shape,
                flags: fl,
                alpha,
            });
            items.push(Item::Node(cn.id));
            let h = size.y * zoom;
            let fits = |t: &str, px: f32| text_width_px(t, px) <= size.x * zoom * 0.94;
            // A long op name (`BatchNormalization`) in a small box gets a smaller font, down to
            // what still reads, and below that is cut short with an ellipsis, rather than no label.
            let (one_line_px, keep_chars) = {
                let px = (h * 0.5).clamp(9.0, 16.0) as f32;
                let fit = (size.x * zoom * 0.94 / text_width_px(&cn.label, 1.0)) as f32;
                if fits(&cn.label, px) {
                    (px, usize::MAX)
                } else if fit >= MIN_LABEL_PX {
                    (fit, usize::MAX)
                } else {
                    let n = (size.x * zoom * 0.94 / text_width_px("x", MIN_LABEL_PX)) as usize;
                    (MIN_LABEL_PX, n.saturating_sub(1))
                }
            };
            if h >= self.options.label_min_px && *label_budget > 0 && keep_chars >= 4 {
                *label_budget -= 1;
                let two_lines = h >= 34.0
                    && !cn.sublabel.is_empty()
                    && fits(&cn.label, (h * 0.3).clamp(9.0, 16.0) as f32)
                    && fits(&cn.sublabel, (h * 0.3 * 0.85).clamp(9.0, 16.0) as f32);
                let px = if two_lines {
                    (h * 0.3).clamp(9.0, 16.0) as f32
                } else {
                    one_line_px
                };
                let text = if view.redact
                    && model
                        .graph
                        .nodes
                        .get(cn.id as usize)
                        .is_some_and(|n| n.kind == NodeKind::Module)
                {
                    redact(&cn.label)
                } else if keep_chars < cn.label.chars().count() {
                    let mut t: String = cn.label.chars().take(keep_chars).collect();
                    t.push('…');
                    t
                } else {
                    cn.label.clone()
                };
                let color = text_color(fill);
                let center = cn.rect.center();
                let dy = if two_lines { size.y * 0.18 } else { 0.0 };
                labels.push(LabelItem {
                    pos: rel(center - DVec2::new(0.0, dy)),
                    text,
                    size_px: px,
                    color,
                    align: Align::Center,
                });
                if two_lines {
                    let sub = if view.redact {
                        redact(&cn.sublabel)
                    } else {
                        cn.sublabel.clone()
                    };
                    labels.push(LabelItem {
                        pos: rel(center + DVec2::new(0.0, dy)),
                        text: sub,
                        size_px: px * 0.85,
                        color,
                        align: Align::Center,
                    });
                }
            }
        }
    }

    fn evict(&mut self) {
        let mut evicted = 0;
        while self.chunk_bytes > self.options.cache_budget_bytes && self.chunks.len() > 1 {
            let Some((&oldest, _)) = self
                .chunks
                .iter()
                .filter(|(_, ch)| ch.last_used != self.frame)
                .min_by_key(|(_, ch)| ch.last_used)
            else {
                break;
            };
            if let Some(ch) = self.chunks.remove(&oldest) {
                self.chunk_bytes -= ch.bytes;
                evicted += 1;
            }
        }
        self.stats.chunks_evicted = evicted;
    }

    /// The topmost item under a screen point in the last cut (nodes before clusters before frames).
    pub fn pick(&self, camera: &Camera, screen: DVec2) -> Option<Item> {
        let w = camera.world_from_screen(screen) - self.list.origin;
        let p = w.as_vec2();
        let hit = |n: &NodeItem| {
            let d = (p - n.center).abs();
            d.x <= n.half_size.x && d.y <= n.half_size.y
        };
        let mut frame_hit = None;
        for (n, item) in self.list.nodes.iter().zip(&self.items).rev() {
            if hit(n) {
                if n.flags & flags::FRAME != 0 {
                    frame_hit = frame_hit.or(Some(*item));
                } else {
                    return Some(*item);
                }
            }
        }
        frame_hit
    }

    /// The items drawn in the last cut, parallel to `draw_list().nodes`.
    pub fn items(&self) -> &[Item] {
        &self.items
    }
}

fn fade(since: f64, fade_s: f64) -> f32 {
    if fade_s <= 0.0 || !since.is_finite() {
        return 1.0;
    }
    (since / fade_s).clamp(0.0, 1.0) as f32
}

/// Last path segment of a label (`model/layers.3` → `layers.3`).
fn short(label: &str) -> &str {
    label
        .rsplit(['/', '.'])
        .next()
        .filter(|s| !s.is_empty() && s.parse::<u64>().is_err())
        .unwrap_or(label)
}

/// The smallest font a node label is shrunk to, pixels.
const MIN_LABEL_PX: f32 = 7.0;

/// Approximate width of a label in pixels (proportional font: about 0.55 em per character).
/// `text` cut to `n` characters by an ellipsis in the middle, keeping its start and its end.
fn middle_ellipsis(text: &str, n: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= n {
        return text.to_string();
    }
    let keep = n.saturating_sub(1);
    let tail = keep / 2;
    let head = keep - tail;
    let mut out: String = chars.iter().take(head).collect();
    out.push('…');
    out.extend(chars.iter().skip(chars.len() - tail));
    out
}

fn text_width_px(text: &str, px: f32) -> f64 {
    text.chars().count() as f64 * px as f64 * 0.55
}

fn text_color(fill: Rgba8) -> Rgba8 {
    let lum = 0.299 * fill[0] as f32 + 0.587 * fill[1] as f32 + 0.114 * fill[2] as f32;
    if lum > 150.0 {
        [20, 24, 30, 255]
    } else {
        [255, 255, 255, 255]
    }
}

/// A cluster's strip from its nodes' values, sorted: their colours at [`STRIP_STEPS`] quantiles,
/// runs of one colour merged; none when they are all one colour (the cluster's fill says it).
fn strip(values: &[(f32, NodeId)], overlay: &NodeOverlay) -> Vec<(Rgba8, f32)> {
    let mut runs: Vec<(Rgba8, f32)> = Vec::new();
    let steps = values.len().min(STRIP_STEPS);
    for i in 0..steps {
        let at = ((i as f64 + 0.5) / steps as f64 * values.len() as f64) as usize;
        let Some(&(_, n)) = values.get(at) else {
            continue;
        };
        let colour = overlay.fill(n as usize).unwrap_or(NO_BAND);
        let end = (i + 1) as f32 / steps as f32;
        match runs.last_mut() {
            Some((c, e)) if *c == colour => *e = end,
            _ => runs.push((colour, end)),
        }
    }
    if runs.len() < 2 {
        runs.clear();
    }
    runs
}

fn build_chunk(c: ClusterId, model: &Model, layout: &Layout) -> Chunk {
    let tree = &layout.clusters;
    let mut out = Vec::new();
    let mut bytes = 0;
    if let Some(cl) = tree.clusters.get(c as usize) {
        for &n in tree.child_nodes(cl) {
            let (Some(node), Some(b)) = (
                model.graph.nodes.get(n as usize),
                layout.nodes.get(n as usize),
            ) else {
                continue;
            };
            if !b.is_visible() {
                continue;
            }
            let (label, sublabel) = match node.kind {
                NodeKind::Module => (short_name(&node.name).to_string(), node.op.to_string()),
                NodeKind::Input | NodeKind::Output => (node.name.clone(), node.op.to_string()),
                NodeKind::Op => {
                    // A name that only repeats the op (`…/MatMul`, as OpenVINO's and ONNX
                    // exporters' often end) is not written under it again.
                    let leaf = short_name(&node.name);
                    let sub = if leaf.eq_ignore_ascii_case(&node.op) {
                        String::new()
                    } else {
                        leaf.to_string()
                    };
                    (node.op.to_string(), sub)
                }
            };
            bytes += std::mem::size_of::<ChunkNode>() + label.len() + sublabel.len();
            out.push(ChunkNode {
                id: n,
                rect: b.rect(),
                fill: op_color(&node.op),
                shape: if layout.kind == LayoutKind::Force {
                    NodeShape::Circle
                } else {
                    NodeShape::RoundedBox
                },
                label,
                sublabel,
            });
        }
    }
    Chunk {
        nodes: out,
        bytes: bytes + 64,
        last_used: 0,
    }
}

fn short_name(name: &str) -> &str {
    let s = name.rsplit(['/', '.']).next().unwrap_or(name);
    if s.is_empty() { name } else { s }
}

#[allow(clippy::too_many_arguments, reason = "internal helper")]
fn push_original_edge(
    layout: &Layout,
    e: usize,
    visible: &Rect,
    rel: &dyn Fn(DVec2) -> Vec2,
    highlight: &dyn Fn(NodeId) -> bool,
    model: &Model,
    edges: &mut Vec<EdgeItem>,
    key: &mut rustc_hash::FxHasher,
) {
    let Some(route) = layout.route(e) else {
        return;
    };
    if route.hidden {
        return;
    }
    let pts: Vec<DVec2> = std::iter::once(route.from)
        .chain(layout.waypoints(e).iter().copied())
        .chain(std::iter::once(route.to))
        .collect();
    let mut bb = Rect::EMPTY;
    for p in &pts {
        bb.include(*p);
    }
    if !bb.intersects(visible) {
        return;
    }
    let model_edge = model.graph.edges.get(e);
    let hl = model_edge.is_some_and(|ed| highlight(ed.from) || highlight(ed.to));
    let arrow_world = model_edge.map_or(0.0, |ed| {
        let target = layout.item_bbox(Item::Node(ed.to));
        EdgeItem::arrow_world_for(target.size().min_element())
    });
    let mut fl = if route.curve { flags::CURVE } else { 0 };
    fl |= flags::ARROW;
    if hl {
        fl |= flags::HIGHLIGHT;
    }
    let color = if hl {
        [230, 90, 20, 255]
    } else if route.reversed {
        [200, 60, 60, 200]
    } else {
        [110, 118, 130, 200]
    };
    e.hash(key);
    let n = pts.len();
    for (i, w) in pts.windows(2).enumerate() {
        let f = if i + 2 == n { fl } else { fl & !flags::ARROW };
        edges.push(EdgeItem {
            from: rel(w[0]),
            to: rel(w[1]),
            color,
            width_px: if hl { 2.5 } else { 1.3 },
            flags: f,
            arrow_world,
        });
    }
}

/// An aggregated edge between two visible items, as wide as the number of edges it stands for.
/// In a dataflow layout it follows `via`'s route (one of the edges it stands for) wherever that
/// runs outside the two boxes: the waypoints beside the boxes in between, so that an edge from a
/// graph input into the fourth layer of a transformer runs down beside the first three instead of
/// straight through them.
#[allow(clippy::too_many_arguments, reason = "internal helper")]
fn push_agg_edge(
    layout: &Layout,
    footprint: &[Rect],
    a: Item,
    b: Item,
    count: u32,
    via: Option<u32>,
    zoom: f64,
    visible: &Rect,
    rel: &dyn Fn(DVec2) -> Vec2,
    edges: &mut Vec<EdgeItem>,
    key: &mut rustc_hash::FxHasher,
    seen: &mut FxHashMap<[u32; 4], u32>,
) {
    let bbox = |i: Item| match i {
        Item::Cluster(c) => footprint
            .get(c as usize)
            .copied()
            .unwrap_or_else(|| layout.item_bbox(i)),
        Item::Node(_) => layout.item_bbox(i),
    };
    let ra = bbox(a);
    let rb = bbox(b);
    if ra.is_empty() || rb.is_empty() {
        return;
    }
    let dataflow = layout.kind == LayoutKind::Dataflow;
    let arrow_world = EdgeItem::arrow_world_for(rb.size().min_element());
    let (from, to) = if dataflow {
        (
            DVec2::new(ra.center().x, ra.max.y),
            DVec2::new(rb.center().x, rb.min.y),
        )
    } else {
        (ra.center(), rb.center())
    };
    let weight = (count as f32).log2();
    let (width, alpha) = if dataflow {
        (
            (1.2 + 1.4 * weight).min(9.0),
            if count > 1 { 210 } else { 170 },
        )
    } else {
        // Force graphs have many crossing aggregates: thinner and lighter, or the overview is a
        // blanket of overdraw (and a software rasteriser pays for every covered pixel).
        (
            (1.0 + 0.6 * weight).min(4.0),
            if count > 1 { 150 } else { 110 },
        )
    };
    // Waypoints closer above the end than this leave a last piece too short on screen for its
    // arrowhead (the shader's `has_arrow`): the port just above a closed box. They are skipped.
    let arrow_room = 2.0 * f64::from((3.0 * (width * 0.5 + 0.5) + 6.0).max(9.0)) / zoom.max(1e-12);
    let waypoints = match via {
        Some(e) if dataflow && layout.route(e as usize).is_some_and(|r| !r.reversed) => {
            // A route that is not reversed runs downward, so its points are ordered by y: only
            // those level with the view matter, and one either side for the pieces that enter
            // it (a route to the 800th layer has 1 600 points; at deep zoom a handful are near).
            let w = layout.waypoints(e as usize);
            let lo = w.partition_point(|p| p.y < visible.min.y).saturating_sub(1);
            let hi = (w.partition_point(|p| p.y <= visible.max.y) + 1).min(w.len());
            w.get(lo..hi).unwrap_or(&[])
        }
        _ => &[],
    };
    let inside = |r: &Rect, p: DVec2| {
        p.x >= r.min.x - 0.5 && p.x <= r.max.x + 0.5 && p.y >= r.min.y - 0.5 && p.y <= r.max.y + 0.5
    };
    // No allocation where there are no waypoints (force layouts, neighbouring boxes).
    let mut mid: Vec<DVec2> = waypoints
        .iter()
        .copied()
        .filter(|&p| p.y > from.y && p.y < to.y && !inside(&ra, p) && !inside(&rb, p))
        .collect();
    // A lone point (a port) just above the end goes, but not the bottom of a vertical run beside
    // a box: the piece from the run's top would cut across the box.
    while let Some((last, rest)) = mid.split_last()
        && to.y - last.y < arrow_room
        && rest.last().is_none_or(|before| before.x != last.x)
    {
        mid.pop();
    }
    // Pieces shorter than this on screen are merged: at overview zoom a bundle beside 800 layer
    // boxes would otherwise be 1 600 pieces of a pixel each.
    if !mid.is_empty() {
        let min_piece = MIN_PIECE_PX / zoom.max(1e-12);
        let mut kept = Vec::with_capacity(mid.len());
        let mut last = from;
        let mut i = 0;
        while let Some(&p) = mid.get(i) {
            // A vertical run beside a box (two points, one x) at least a piece long is kept whole:
            // without its top, the piece into its bottom would cut across the box.
            if let Some(&q) = mid.get(i + 1)
                && q.x == p.x
                && q.y - p.y >= min_piece
            {
                kept.extend([p, q]);
                last = q;
                i += 2;
                continue;
            }
            if p.distance(last) >= min_piece && to.distance(p) >= min_piece {
                kept.push(p);
                last = p;
            }
            i += 1;
        }
        mid = kept;
    }
    let pts = || {
        std::iter::once(from)
            .chain(mid.iter().copied())
            .chain(std::iter::once(to))
    };
    let mut bb = Rect::EMPTY;
    for p in pts() {
        bb.include(p);
    }
    if !bb.intersects(visible) {
        return;
    }
    (a, b, count).hash(key);
    if mid.is_empty() {
        edges.push(EdgeItem {
            from: rel(from),
            to: rel(to),
            color: [100, 110, 125, alpha],
            width_px: width,
            flags: if dataflow {
                flags::CURVE | flags::ARROW
            } else {
                0
            },
            arrow_world,
        });
        return;
    }
    // A routed aggregate: only its pieces near the view (a curve stays within its ends' box), each
    // once, however many aggregates of one producer run along it (the widest sets the width).
    let n = mid.len() + 1;
    let mut prev = from;
    for (i, p) in pts().skip(1).enumerate() {
        let (q, r) = (prev, p);
        prev = p;
        if !Rect::new(q.min(r), q.max(r)).intersects(visible) {
            continue;
        }
        let (rq, rr) = (rel(q), rel(r));
        let arrow = if i + 1 == n { flags::ARROW } else { 0 };
        let id = [
            rq.x.to_bits(),
            rq.y.to_bits(),
            rr.x.to_bits(),
            rr.y.to_bits(),
        ];
        if let Some(e) = seen.get(&id).and_then(|&k| edges.get_mut(k as usize)) {
            e.width_px = e.width_px.max(width);
            e.flags |= arrow;
            continue;
        }
        seen.insert(id, edges.len() as u32);
        edges.push(EdgeItem {
            from: rq,
            to: rr,
            color: [100, 110, 125, alpha],
            width_px: width,
            flags: flags::CURVE | arrow,
            arrow_world,
        });
    }
}

/// Pieces of a routed aggregated edge are at least this long on screen.
const MIN_PIECE_PX: f64 = 12.0;

/// Running count, mean and sum of squared deviations of points (merged with Chan's formula, which
/// stays exact where `E[x²] − E[x]²` would cancel at large coordinates). The mean stays f64 (world
/// coordinates); the spread and the summed half sizes are f32, plenty for a footprint, which keeps
/// this 40 bytes: one per cluster is live while the footprints are built, at the scene's memory
/// peak (7.8 M clusters at 10 M nodes).
#[derive(Clone, Copy, Default)]
struct Moments {
    n: u32,
    m2: Vec2,
    half: Vec2,
    mean: DVec2,
}

impl Moments {
    fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        let (na, nb) = (f64::from(self.n), f64::from(o.n));
        let n = na + nb;
        let d = o.mean - self.mean;
        self.mean += d * (nb / n);
        self.m2 = (self.m2.as_dvec2() + o.m2.as_dvec2() + d * d * (na * nb / n)).as_vec2();
        self.half += o.half;
        self.n = self.n.saturating_add(o.n);
    }
}

const _: () = assert!(std::mem::size_of::<Moments>() == 40);

/// Aggregates with at least this many edges get [`LodState`]'s edge boxes (force layouts).
const SEGMENT_BOXES_MIN_EDGES: usize = 8;

/// Clusters with every child before its parent: the tree numbers children after their parents
/// (breadth-first), so decreasing ids will do, with no order array or sort (7.8 M clusters).
fn deepest_first(tree: &crate::graph::ClusterTree) -> impl Iterator<Item = usize> {
    (0..tree.clusters.len()).rev()
}

/// Per cluster of a dataflow layout, the extent that decides whether it opens: its footprint's
/// larger side, except for the computed tiles of a wide or tall flat group (the bands
/// [`ClusterTree::split_wide`] cuts a 500-op column into), which all take the largest of their
/// sibling tiles' extents. Each band measured alone, a remainder band a little under the threshold
/// stayed a closed box between open ones. Empty for force layouts, where every cluster is
/// computed and is measured alone.
fn open_extents(layout: &Layout, footprint: &[Rect]) -> Vec<f64> {
    if layout.kind != LayoutKind::Dataflow {
        return Vec::new();
    }
    let tree = &layout.clusters;
    let side = |c: ClusterId| {
        footprint
            .get(c as usize)
            .map_or(0.0, |f| f.size().max_element())
    };
    let mut out: Vec<f64> = (0..tree.clusters.len() as ClusterId).map(side).collect();
    for cl in &tree.clusters {
        let tiles = || {
            tree.child_clusters(cl).iter().copied().filter(|&k| {
                tree.clusters
                    .get(k as usize)
                    .is_some_and(|x| x.group.is_none())
            })
        };
        let widest = tiles().map(side).fold(0.0, f64::max);
        for k in tiles() {
            if let Some(e) = out.get_mut(k as usize) {
                *e = widest;
            }
        }
    }
    out
}

/// Per cluster, the rectangle it is drawn as when closed and measured by when deciding to open.
///
/// Force-layout clusters come from graph coarsening: one long edge is enough to match two distant
/// nodes, so the bounding box of every high cluster is nearly the whole graph and would open at any
/// zoom. Their footprint is centred on the members' mean with a half-extent of √3 standard
/// deviations per axis (exactly the half side for evenly spread members) plus the mean node half
/// size, clamped to the box. Dataflow clusters are compact frames: their box is their footprint.
/// One O(nodes + clusters) pass when the state is made, never per frame.
fn footprints(layout: &Layout) -> Vec<Rect> {
    let tree = &layout.clusters;
    if layout.kind != LayoutKind::Force {
        return tree.clusters.iter().map(|c| c.bbox).collect();
    }
    let mut m = vec![Moments::default(); tree.clusters.len()];
    for (i, b) in layout.nodes.iter().enumerate() {
        if !b.is_visible() {
            continue;
        }
        let Some(acc) = tree
            .node_cluster
            .get(i)
            .and_then(|&c| m.get_mut(c as usize))
        else {
            continue;
        };
        acc.merge(&Moments {
            n: 1,
            mean: b.center,
            m2: Vec2::ZERO,
            half: b.half_size,
        });
    }
    for c in deepest_first(tree) {
        let (Some(p), Some(&x)) = (tree.clusters.get(c).and_then(|x| x.parent), m.get(c)) else {
            continue;
        };
        if let Some(acc) = m.get_mut(p as usize) {
            acc.merge(&x);
        }
    }
    tree.clusters
        .iter()
        .zip(&m)
        .map(|(cl, x)| {
            if x.n == 0 || cl.bbox.is_empty() {
                return cl.bbox;
            }
            let n = f64::from(x.n);
            let sd = {
                let v = (x.m2.as_dvec2() / n).max(DVec2::ZERO);
                DVec2::new(v.x.sqrt(), v.y.sqrt())
            };
            let half = sd * 3f64.sqrt() + x.half.as_dvec2() / n;
            let r = Rect::from_center_size(x.mean, half * 2.0);
            let clamped = Rect::new(r.min.max(cl.bbox.min), r.max.min(cl.bbox.max));
            if clamped.is_empty() { cl.bbox } else { clamped }
        })
        .collect()
}

/// Clips the straight segment `a → b` to `r`: the parameters `t0 ≤ t1` of the part inside
/// (Liang–Barsky), or `None` when it misses.
fn clip_segment(a: DVec2, b: DVec2, r: &Rect) -> Option<(f64, f64)> {
    let d = b - a;
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-d.x, a.x - r.min.x),
        (d.x, r.max.x - a.x),
        (-d.y, a.y - r.min.y),
        (d.y, r.max.y - a.y),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some((t0, t1))
}

/// The per-frame edge budget: drops edges shorter than a pixel (they lie under their end items),
/// clips straight edges to the view (`view` relative to the list's origin) so that an edge much
/// longer than the screen costs only its visible part, then keeps highlighted edges and the
/// heaviest aggregates (width grows with the count they stand for), the shorter first among equals,
/// until `max_edges` instances or `max_edge_px` covered pixels (per 1280×720 of `view_px`, the
/// viewport's area). Stable, so a still view keeps the same edges.
fn budget_edges(
    edges: &mut Vec<EdgeItem>,
    view: &Rect,
    zoom: f64,
    view_px: f64,
    opts: &LodOptions,
) {
    let min_len = 0.75 / zoom;
    let mut area: Vec<f64> = Vec::with_capacity(edges.len());
    edges.retain_mut(|e| {
        let (a, b) = (e.from.as_dvec2(), e.to.as_dvec2());
        let len = (b - a).length();
        if len < min_len {
            return false;
        }
        let shown = if e.flags & flags::CURVE != 0 {
            // A curve stays within its ends' box: one that misses the view adds nothing, and one
            // much longer than the screen covers at most about the part of its box on screen (a
            // thick aggregate running from a model's inputs to its 800th layer, counted whole,
            // spent the frame's pixel budget on its own and every edge in view was dropped).
            let inside = Rect::new(a.min(b).max(view.min), a.max(b).min(view.max));
            if inside.is_empty() {
                return false;
            }
            len.min(2.0 * inside.size().length())
        } else {
            let Some((t0, t1)) = clip_segment(a, b, view) else {
                return false;
            };
            if t1 < 1.0 {
                // The arrow end is off screen: no arrowhead at the clip point.
                e.flags &= !flags::ARROW;
            }
            let d = b - a;
            e.from = (a + d * t0).as_vec2();
            e.to = (a + d * t1).as_vec2();
            len * (t1 - t0)
        };
        // A ribbon is at least a pixel wide plus a pixel of anti-aliasing each side.
        area.push(shown * zoom * (f64::from(e.width_px).max(1.0) + 2.0));
        true
    });
    let total: f64 = area.iter().sum();
    // The pixel budget is for a 1280×720 view; a larger one (an export of 2400×9600) gets the
    // same share of its area, or a tall picture drops the short edges between neighbours.
    let max_px = opts.max_edge_px * (view_px / (1280.0 * 720.0)).max(1.0);
    if edges.len() <= opts.max_edges && total <= max_px {
        return;
    }
    let weight = |e: &EdgeItem| (e.flags & flags::HIGHLIGHT != 0, e.width_px);
    let mut order: Vec<usize> = (0..edges.len()).collect();
    order.sort_by(|&i, &j| {
        let (Some(a), Some(b)) = (edges.get(i), edges.get(j)) else {
            return std::cmp::Ordering::Equal;
        };
        let ((ha, wa), (hb, wb)) = (weight(a), weight(b));
        // Of equal weight, the shorter first: more of the picture's connections for the pixels.
        let (aa, ab) = (area.get(i).copied(), area.get(j).copied());
        hb.cmp(&ha)
            .then(wb.total_cmp(&wa))
            .then(aa.unwrap_or(0.0).total_cmp(&ab.unwrap_or(0.0)))
    });
    let mut keep = vec![false; edges.len()];
    let (mut n, mut px) = (0usize, 0.0f64);
    for i in order {
        let a = area.get(i).copied().unwrap_or(0.0);
        if n >= opts.max_edges || (px + a > max_px && n > 0) {
            continue;
        }
        if let Some(k) = keep.get_mut(i) {
            *k = true;
        }
        n += 1;
        px += a;
    }
    let mut i = 0;
    edges.retain(|_| {
        let k = keep.get(i).copied().unwrap_or(false);
        i += 1;
        k
    });
}

/// Per cluster, half the side of a disc as large as its members together (√members × their mean
/// half size): force clusters left closed are drawn this size, so the overview shows the graph's
/// density at the cost of its nodes' area, not discs of the clusters' spread overlapping many
/// times over. Dataflow clusters get infinity (drawn as their box).
fn disc_halves(layout: &Layout) -> Vec<f64> {
    let tree = &layout.clusters;
    if layout.kind != LayoutKind::Force {
        return vec![f64::INFINITY; tree.clusters.len()];
    }
    let mut sum = vec![(0.0f64, 0.0f64); tree.clusters.len()];
    for (i, b) in layout.nodes.iter().enumerate() {
        if !b.is_visible() {
            continue;
        }
        if let Some(acc) = tree
            .node_cluster
            .get(i)
            .and_then(|&c| sum.get_mut(c as usize))
        {
            acc.0 += 1.0;
            acc.1 += f64::from(b.half_size.x.max(b.half_size.y));
        }
    }
    for c in deepest_first(tree) {
        let (Some(p), Some(&x)) = (tree.clusters.get(c).and_then(|x| x.parent), sum.get(c)) else {
            continue;
        };
        if let Some(acc) = sum.get_mut(p as usize) {
            acc.0 += x.0;
            acc.1 += x.1;
        }
    }
    sum.iter()
        .map(|&(n, h)| if n > 0.0 { n.sqrt() * h / n } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ClusterSpec;

    #[test]
    fn a_long_curve_does_not_spend_the_budget_of_the_edges_in_view() {
        let curve = |from: Vec2, to: Vec2, width_px: f32| EdgeItem {
            from,
            to,
            color: [0; 4],
            width_px,
            flags: flags::CURVE | flags::ARROW,
            arrow_world: 0.0,
        };
        // A 1280×720 view at zoom 1; a thick aggregate from far above to far below the view, and
        // 200 thin edges inside it.
        let view = Rect::new(DVec2::ZERO, DVec2::new(1280.0, 720.0));
        let mut edges = vec![curve(Vec2::new(600.0, -1e6), Vec2::new(640.0, 1e6), 9.0)];
        for i in 0..200 {
            let x = 5.0 + 6.0 * i as f32;
            edges.push(curve(Vec2::new(x, 100.0), Vec2::new(x, 160.0), 1.3));
        }
        // And one wholly off screen.
        edges.push(curve(Vec2::new(-500.0, 0.0), Vec2::new(-400.0, 60.0), 1.3));
        let mut kept = edges.clone();
        budget_edges(
            &mut kept,
            &view,
            1.0,
            1280.0 * 720.0,
            &LodOptions::default(),
        );
        assert_eq!(kept.len(), 201, "the long aggregate and every edge in view");
        assert!(kept.iter().all(|e| e.from.x >= 0.0));
    }

    #[test]
    fn edge_boxes_never_change_the_cut() {
        // A force layout, cut at several zooms with the edge boxes and without them: the boxes
        // only skip work, so the edges drawn must be identical.
        // A 64-wide grid with a few long edges, as the synthetic benchmark graphs are.
        let n = 4000u32;
        let mut m = Model::new("t", crate::model::Format::Onnx);
        let mut rng = crate::graph::Pcg32::new(3);
        for i in 0..n {
            let mut nd = crate::model::Node::new(format!("n{i}"), "Op", NodeKind::Op);
            nd.outputs.push(i);
            m.graph.nodes.push(nd);
            m.graph.values.push(crate::model::Value::default());
        }
        for i in 0..n {
            for j in [i + 1, i + 64, rng.below(n)] {
                if j < n && j != i {
                    m.graph.edges.push(crate::model::Edge {
                        from: i,
                        to: j,
                        value: i,
                    });
                }
            }
        }
        let layout = crate::layout::force(
            &m.graph,
            &crate::layout::ForceOptions::default(),
            &crate::layout::Progress::new(),
        )
        .unwrap();
        let mut with = LodState::new(&layout, LodOptions::default());
        with.options.fade_s = 0.0;
        with.prepare_tables(&m, &layout);
        assert!(!with.seg_boxes.is_empty(), "large aggregates get boxes");
        let mut without = LodState::new(&layout, with.options.clone());
        without.prepare_tables(&m, &layout);
        without.seg_boxes.clear();
        without.seg_start.clear();
        let mut skipped_work = false;
        for (k, zoom_in) in [1.0, 4.0, 30.0, 200.0, 1500.0].into_iter().enumerate() {
            let mut cam = Camera::new(DVec2::new(800.0, 600.0));
            cam.fit(layout.bounds, 0.0);
            cam.zoom *= zoom_in;
            cam.center += layout.bounds.size() * DVec2::new(0.07, -0.11) * k as f64 / 5.0;
            let a = with
                .cut(&m, &layout, &cam, &ViewState::default(), k as f64)
                .edges
                .clone();
            let b = without
                .cut(&m, &layout, &cam, &ViewState::default(), k as f64)
                .edges
                .clone();
            assert_eq!(a, b, "zoom ×{zoom_in}");
            skipped_work |= zoom_in > 100.0 && a.len() < 400;
        }
        assert!(skipped_work, "a deep view draws few edges");
    }

    /// root ─┬─ a ─┬─ c
    ///       │     └─ d
    ///       └─ b
    fn small_tree() -> ClusterTree {
        let spec = |parent: Option<ClusterId>| ClusterSpec {
            parent,
            ..ClusterSpec::default()
        };
        let specs = vec![
            spec(None),
            spec(Some(0)),
            spec(Some(0)),
            spec(Some(1)),
            spec(Some(1)),
        ];
        // One node under each cluster so none is pruned.
        ClusterTree::build(specs, &[0, 1, 2, 3, 4])
    }

    #[test]
    fn a_closed_cluster_takes_its_largest_node_and_strips_its_colours_by_value() {
        let tree = small_tree();
        let pre = preorder_intervals(&tree);
        let (red, green, blue) = ([255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255]);
        // Nodes 0..5 sit in the clusters of the same numbers: 0 the root, 1 and 2 under it, 3 and
        // 4 under 1. Node 1 has no value; node 4's value is outside the file's bands.
        let overlay = NodeOverlay {
            values: vec![0.5, f32::NAN, 0.2, 0.9, 0.1],
            fills: vec![Some(red), None, Some(green), Some(blue), None],
        };
        let shades = ClusterShades::new(&overlay, &tree, &pre);
        let c = |n: usize| tree.node_cluster[n] as usize;
        assert_eq!(shades.top[c(0)], 3);
        assert_eq!(shades.top[c(1)], 3);
        assert_eq!(shades.top[c(2)], 2);
        assert_eq!(
            shades.runs(c(0)),
            [(NO_BAND, 0.25), (green, 0.5), (red, 0.75), (blue, 1.0)]
        );
        assert_eq!(shades.runs(c(1)), [(NO_BAND, 0.5), (blue, 1.0)]);
        // One colour: no strip.
        assert!(shades.runs(c(2)).is_empty());
        assert!(shades.runs(c(3)).is_empty());
        // Without a file's colours, the scale's.
        let scale = NodeOverlay::from(vec![0.0, 1.0, f32::NAN, f32::NAN, f32::NAN]);
        let shades = ClusterShades::new(&scale, &tree, &pre);
        assert_eq!(
            shades.runs(c(0)),
            [(overlay_color(0.0), 0.5), (overlay_color(1.0), 1.0)]
        );
        assert_eq!(shades.top[c(0)], 1);
        assert_eq!(shades.top[c(2)], NodeId::MAX);
    }

    #[test]
    fn middle_ellipsis_keeps_both_ends() {
        assert_eq!(middle_ellipsis("shufflenet (3)", 9), "shuf… (3)");
        assert_eq!(middle_ellipsis("layers.17.mlp", 8), "laye…mlp");
        assert_eq!(middle_ellipsis("short", 9), "short");
        assert_eq!(middle_ellipsis("abcdefghij", 5).chars().count(), 5);
    }

    #[test]
    fn preorder_intervals_nest_like_the_tree() {
        let tree = small_tree();
        let pre = preorder_intervals(&tree);
        assert_eq!(pre.len(), tree.clusters.len());
        assert_eq!(pre[0], (0, tree.clusters.len() as u32));
        for (c, cl) in tree.clusters.iter().enumerate() {
            let (s, e) = pre[c];
            assert!(s < e, "cluster {c} has an empty interval");
            let mut kids: Vec<(u32, u32)> = tree
                .child_clusters(cl)
                .iter()
                .map(|&k| pre[k as usize])
                .collect();
            kids.sort_unstable();
            for w in kids.windows(2) {
                assert!(w[0].1 <= w[1].0, "siblings overlap: {w:?}");
            }
            for k in kids {
                assert!(
                    s < k.0 && k.1 <= e,
                    "child {k:?} outside parent {:?}",
                    (s, e)
                );
            }
        }
    }

    #[test]
    fn a_node_is_represented_by_the_frontier_cluster_above_it() {
        let tree = small_tree();
        let pre = preorder_intervals(&tree);
        let a = tree.node_cluster[1];
        let c = tree.node_cluster[3];
        let b = tree.node_cluster[2];
        let mut state = LodState {
            frontier: vec![
                (pre[a as usize].0, pre[a as usize].1, a),
                (pre[b as usize].0, pre[b as usize].1, b),
            ],
            ..LodState::empty_for_tests()
        };
        state.pre = pre.clone();
        state.index_frontier();
        // c lies under a (closed): represented by a; the root's own node by nothing (itself).
        assert_eq!(state.frontier_of(pre[c as usize].0), Some(a));
        assert_eq!(state.frontier_of(pre[a as usize].0), Some(a));
        assert_eq!(state.frontier_of(pre[b as usize].0), Some(b));
        assert_eq!(state.frontier_of(pre[0].0), None);
        assert_eq!(state.frontier_of(u32::MAX), None);
        // With a open and its children drawn closed instead, c stands for itself's cluster.
        state.frontier = vec![(pre[c as usize].0, pre[c as usize].1, c)];
        state.index_frontier();
        assert_eq!(state.frontier_of(pre[c as usize].0), Some(c));
        assert_eq!(state.frontier_of(pre[a as usize].0), None);
    }

    #[test]
    fn frontier_buckets_agree_with_a_linear_scan() {
        // A million pre-order numbers, disjoint intervals of assorted lengths with gaps.
        let n = 1_000_000u32;
        let mut state = LodState {
            pre: vec![(0, 0); n as usize],
            ..LodState::empty_for_tests()
        };
        let mut x = 1u64;
        let mut rnd = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u32
        };
        let mut at = 0u32;
        let mut id = 0;
        while at < n {
            let gap = rnd() % 50;
            let len = 1 + rnd() % if rnd() % 10 == 0 { 5000 } else { 20 };
            let start = at + gap;
            let end = (start + len).min(n);
            if start >= n {
                break;
            }
            state.frontier.push((end, start, id)); // shuffled order: sorted below
            id += 1;
            at = end;
        }
        for f in &mut state.frontier {
            *f = (f.1, f.0, f.2);
        }
        state.frontier.reverse();
        state.index_frontier();
        assert!(state.frontier_shift > 0);
        let scan = |pre: u32| {
            state
                .frontier
                .iter()
                .find(|f| f.0 <= pre && pre < f.1)
                .map(|f| f.2)
        };
        for _ in 0..5000 {
            let pre = rnd() % (n + 10);
            assert_eq!(state.frontier_of(pre), scan(pre), "pre {pre}");
        }
        for f in state.frontier.iter().take(200) {
            assert_eq!(state.frontier_of(f.0), Some(f.2));
            assert_eq!(state.frontier_of(f.1 - 1), Some(f.2));
        }
    }
}
