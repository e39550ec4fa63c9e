//! Hierarchical layered ("Sugiyama") layout, top to bottom, as Netron and Model Explorer draw graphs.
//!
//! How it works:
//! 1. Every edge `u → v` is assigned to the lowest common group `L` of its endpoints' groups, between
//!    the two *items* of `L` that hold them (a child group box or the node itself). Each expanded
//!    group is then an independent small layered-layout problem over its items.
//! 2. Groups are laid out bottom-up, deepest first, all groups of one depth in parallel (rayon):
//!    a group's items are child-group boxes (already laid out, so their sizes are known) and nodes.
//!    Collapsed groups are one fixed-size box; nodes inside sit at its centre with zero size.
//! 3. Per group: weakly connected components are laid out separately (in parallel) and shelf-packed,
//!    so thousands of components do not become one wide row. Per component: DFS back edges are
//!    reversed (cycles broken, counted in a warning); longest-path layering, with sources pulled down
//!    next to their first consumer (a weight or constant sits right above its use); long edges get
//!    dummy nodes, *one chain per producer* shared by all its long out-edges (a bundle: a constant
//!    feeding 100 k consumers costs one chain, not 100 k); barycenter sweeps reduce crossings,
//!    keeping the best ordering by an exact O(E log V) crossing count; x coordinates come from
//!    repeated sweeps that put each node at the mean of its neighbours and then solve the ordered,
//!    non-overlapping placement exactly by isotonic regression (pool-adjacent-violators), which is
//!    compact and never overlaps. A source feeding one consumer (a weight's `Constant` node) follows
//!    its consumer but neither pulls it nor, in the regression, shoves its other inputs aside, so a
//!    chain fed by weights at every step stays straight instead of drifting sideways.
//! 4. Positions are composed top-down; each edge gets endpoints on its visible boxes and the dummy
//!    chain of its `L` group as waypoints (drawn as a vertical S-curve).
//!
//! Per-group results are cached under a signature of the group's subtree (which groups below are
//! collapsed), so expanding or collapsing one group recomputes only that group's ancestors.
//!
//! Rejected: network-simplex layering (better edge lengths, but superlinear and slow on 100 k-node
//! flat layers) and Brandes–Köpf (four alignments plus balancing: more code, and on model graphs the
//! isotonic placement gives straight chains too); flat layout of the whole graph ignoring groups
//! (readers need `layers.17` as one box, and the per-group problems are small and parallel).

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};

use rustc_hash::FxHasher;
use std::sync::Arc;

use glam::{DVec2, Vec2};
use rayon::prelude::*;

use super::{EdgeRoute, Layout, LayoutError, LayoutKind, NodeBox, Progress, node_size_for_label};
use crate::graph::{self, ClusterTree, Csr};
use crate::model::{Graph, GroupId, Hierarchy, NodeKind};
use crate::view::Rect;

/// Options of [`dataflow()`].
#[derive(Clone, Debug)]
pub struct DataflowOptions {
    /// Groups drawn collapsed (one box); all others are expanded. The root is always expanded.
    pub collapsed: Vec<GroupId>,
    /// Seed: 0 keeps file order for the initial ordering of each layer; another value shuffles it
    /// (deterministically) before crossing reduction.
    pub seed: u64,
    /// Barycenter down+up sweeps (default 6; stops early at zero crossings or no progress).
    pub crossing_passes: u32,
    /// Vertical gap between layers, world units.
    pub layer_gap: f64,
    /// Horizontal gap between neighbouring boxes.
    pub node_gap: f64,
    /// Parameters per node (index = node id) for cluster labels; empty: use the hierarchy's counts.
    pub node_params: Vec<u64>,
    /// Clusters with more direct children than this are split into computed sub-clusters.
    pub max_cluster_children: usize,
    /// Upper bound on dummy nodes per group; beyond it long edges are drawn without waypoints.
    pub max_dummies: usize,
}

impl Default for DataflowOptions {
    fn default() -> Self {
        DataflowOptions {
            collapsed: Vec::new(),
            seed: 0,
            crossing_passes: 6,
            layer_gap: 36.0,
            node_gap: 20.0,
            node_params: Vec::new(),
            max_cluster_children: 64,
            max_dummies: 4_000_000,
        }
    }
}

/// Padding of an expanded group's box around its content (room for the label on top).
const PAD_X: f64 = 14.0;
const PAD_TOP: f64 = 30.0;
const PAD_BOTTOM: f64 = 14.0;
/// Width given to a dummy node, and the gap between dummies (bundles stay close together).
const DUMMY_WIDTH: f64 = 6.0;
const DUMMY_GAP: f64 = 6.0;

/// Per-group sub-layouts kept between calls, keyed by a signature of the group's subtree, so that
/// expanding one group only recomputes its ancestors. Reset automatically when the graph or the
/// spacing options change.
#[derive(Debug, Default)]
pub struct DataflowCache {
    key: u64,
    entries: HashMap<GroupId, (u64, Arc<SubLayout>)>,
    /// Set by [`dataflow()`]: nothing is looked up or kept, so neither the cache key (a hash of
    /// every edge) nor the subtree signatures are computed.
    throwaway: bool,
    /// Group layouts reused by the last call.
    pub hits: usize,
    /// Group layouts computed by the last call.
    pub misses: usize,
}

/// A laid-out group: item centres relative to the content's top-left corner, routes of its local
/// edges (waypoints relative likewise).
#[derive(Debug, Default)]
pub struct SubLayout {
    size: DVec2,
    centers: Vec<DVec2>,
    local_edges: Vec<(u32, u32)>,
    routes: Vec<LocalRoute>,
    points: Vec<DVec2>,
    reversed: u32,
    dummies_dropped: bool,
    /// Items of the group (ports follow them in `centers`).
    n_items: u32,
    /// External producers feeding this group, sorted: in-port `i` is local node `n_items + i`.
    in_ports: Vec<u32>,
    /// Producers inside feeding out, sorted: out-port `j` is local node `n_items + in_ports.len() + j`.
    out_ports: Vec<u32>,
}

impl SubLayout {
    fn in_port(&self, u: u32) -> Option<u32> {
        self.in_ports
            .binary_search(&u)
            .ok()
            .map(|i| self.n_items + i as u32)
    }

    fn out_port(&self, u: u32) -> Option<u32> {
        self.out_ports
            .binary_search(&u)
            .ok()
            .map(|j| self.n_items + (self.in_ports.len() + j) as u32)
    }
}

/// Role of a local node of a group's layered problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A child group box or a node.
    Item,
    /// A node that is a constant op ([`crate::model::Node::is_constant_op`]): an item whose
    /// chain down to its use is placed right above that use.
    Const,
    /// Where edges from outside enter (top layer).
    InPort,
    /// Where edges to outside leave (bottom layer).
    OutPort,
}

impl Role {
    /// A box of the picture (a node or a group), not a port.
    fn is_item(self) -> bool {
        matches!(self, Role::Item | Role::Const)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct LocalRoute {
    start: u32,
    len: u32,
    reversed: bool,
}

/// A group's sub-layout and whether it came from the cache.
type GroupResult = (u32, Arc<SubLayout>, bool);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ItemRef {
    Group(u32),
    Node(u32),
}

/// Each group's items in one array (a list per group would be ~10⁴ allocations to make and free on
/// every layout): non-empty child groups in tree order, then nodes in id order.
struct GroupItems {
    offsets: Vec<u32>,
    items: Vec<ItemRef>,
}

impl GroupItems {
    /// Also fills each item's index within its group: `local_of_group[g]` in its parent's list,
    /// `local_of_node[v]` in its group's.
    fn build(
        parent: &[u32],
        below: &[u64],
        group_of: &[u32],
        local_of_group: &mut [u32],
        local_of_node: &mut [u32],
    ) -> GroupItems {
        let gcount = parent.len();
        let mut offsets = vec![0u32; gcount + 1];
        for g in 1..gcount {
            if below[g] > 0 {
                offsets[parent[g] as usize + 1] += 1;
            }
        }
        for &g in group_of {
            offsets[g as usize + 1] += 1;
        }
        for g in 0..gcount {
            offsets[g + 1] += offsets[g];
        }
        let mut next: Vec<u32> = offsets[..gcount].to_vec();
        let mut items = vec![ItemRef::Node(0); offsets[gcount] as usize];
        let mut put = |g: usize, it: ItemRef| -> u32 {
            items[next[g] as usize] = it;
            next[g] += 1;
            next[g] - 1 - offsets[g]
        };
        for g in 1..gcount {
            if below[g] > 0 {
                local_of_group[g] = put(parent[g] as usize, ItemRef::Group(g as u32));
            }
        }
        for (v, &g) in group_of.iter().enumerate() {
            local_of_node[v] = put(g as usize, ItemRef::Node(v as u32));
        }
        GroupItems { offsets, items }
    }
}

impl std::ops::Index<usize> for GroupItems {
    type Output = [ItemRef];

    fn index(&self, g: usize) -> &[ItemRef] {
        &self.items[self.offsets[g] as usize..self.offsets[g + 1] as usize]
    }
}

/// Lays out a graph top to bottom, group boxes holding their children. See the module notes.
pub fn dataflow(
    graph: &Graph,
    hierarchy: &Hierarchy,
    opts: &DataflowOptions,
    progress: &Progress,
) -> Result<Layout, LayoutError> {
    let mut cache = DataflowCache {
        throwaway: true,
        ..DataflowCache::default()
    };
    dataflow_cached(graph, hierarchy, opts, &mut cache, progress)
}

/// [`dataflow()`] reusing (and refreshing) per-group results from `cache`.
pub fn dataflow_cached(
    graph: &Graph,
    hierarchy: &Hierarchy,
    opts: &DataflowOptions,
    cache: &mut DataflowCache,
    progress: &Progress,
) -> Result<Layout, LayoutError> {
    progress.set("dataflow: preparing", 0.0);
    let edges = graph::edge_pairs(graph)?;
    let n = graph.nodes.len();
    let gcount = hierarchy.groups.len().max(1);
    let mut warnings = Vec::new();

    // Sanitised tree: parents precede children; out-of-range node groups go to the root.
    let parent: Vec<u32> = (0..gcount)
        .map(|g| match hierarchy.groups.get(g).and_then(|x| x.parent) {
            Some(p) if (p as usize) < g => p,
            _ => 0,
        })
        .collect();
    let mut bad_groups = 0usize;
    let group_of: Vec<u32> = graph
        .nodes
        .iter()
        .map(|nd| {
            if (nd.group as usize) < gcount {
                nd.group
            } else {
                bad_groups += 1;
                0
            }
        })
        .collect();
    if bad_groups > 0 {
        warnings.push(format!(
            "{bad_groups} nodes name a missing group; placed at the top level"
        ));
    }
    let mut depth = vec![0u32; gcount];
    for g in 1..gcount {
        depth[g] = depth[parent[g] as usize] + 1;
    }
    let mut below = vec![0u64; gcount];
    for &g in &group_of {
        below[g as usize] += 1;
    }
    for g in (1..gcount).rev() {
        below[parent[g] as usize] += below[g];
    }
    let mut collapsed = vec![false; gcount];
    for &g in &opts.collapsed {
        if g != 0 && (g as usize) < gcount && below[g as usize] > 0 {
            collapsed[g as usize] = true;
        }
    }
    // container[g]: the outermost collapsed group at or above g (u32::MAX: none).
    let mut container = vec![u32::MAX; gcount];
    for g in 1..gcount {
        let pc = container[parent[g] as usize];
        container[g] = if pc != u32::MAX {
            pc
        } else if collapsed[g] {
            g as u32
        } else {
            u32::MAX
        };
    }

    let mut local_of_group = vec![0u32; gcount];
    let mut local_of_node = vec![0u32; n];
    let items = GroupItems::build(
        &parent,
        &below,
        &group_of,
        &mut local_of_group,
        &mut local_of_node,
    );
    // Each edge's lowest common group and the two local items there.
    let stubs = stub_edges(graph, &edges);
    let is_stub = |e: usize| stubs.get(e).copied().unwrap_or(false);
    let lca: Vec<Option<(u32, u32, u32)>> = edges
        .par_iter()
        .enumerate()
        .map(|(e, &(u, v))| {
            if u == v || is_stub(e) {
                return None;
            }
            let (mut gu, mut gv) = (group_of[u as usize], group_of[v as usize]);
            let (mut a, mut b) = (local_of_node[u as usize], local_of_node[v as usize]);
            while gu != gv {
                if depth[gu as usize] >= depth[gv as usize] {
                    a = local_of_group[gu as usize];
                    gu = parent[gu as usize];
                } else {
                    b = local_of_group[gv as usize];
                    gv = parent[gv as usize];
                }
            }
            Some((gu, a, b))
        })
        .collect();
    // Three independent scatters, run side by side.
    let scatter_group_edges = || {
        let mut group_edges: Vec<Vec<(u32, u32)>> = vec![Vec::new(); gcount];
        for &(g, a, b) in lca.iter().flatten() {
            group_edges[g as usize].push((a, b));
        }
        for e in &mut group_edges {
            e.sort_unstable();
            e.dedup();
        }
        group_edges
    };
    // Ports: an edge leaving a group runs to an out-port at the group's bottom (one per producer),
    // an edge entering runs from an in-port at its top, so inside every group it is routed around
    // the nodes like any other edge instead of cutting straight through the box.
    let scatter_ports = |outgoing: bool| {
        let mut ports: Vec<Vec<(u32, u32)>> = vec![Vec::new(); gcount];
        for (e, &(u, v)) in edges.iter().enumerate() {
            let Some(Some((l, _, _))) = lca.get(e) else {
                continue;
            };
            let w = if outgoing { u } else { v };
            let (mut g, mut item) = (group_of[w as usize], local_of_node[w as usize]);
            for _ in 0..gcount {
                if g == *l {
                    break;
                }
                ports[g as usize].push((u, item));
                item = local_of_group[g as usize];
                g = parent[g as usize];
            }
        }
        ports
    };
    let (group_edges, (port_out, port_in)) = rayon::join(scatter_group_edges, || {
        rayon::join(|| scatter_ports(true), || scatter_ports(false))
    });
    progress.check()?;

    // Cache key: the graph, its grouping and the spacing options.
    let keep = !cache.throwaway;
    let mut h = FxHasher::default();
    (
        n,
        edges.len(),
        gcount,
        opts.seed,
        opts.crossing_passes,
        opts.max_dummies,
    )
        .hash(&mut h);
    (opts.layer_gap.to_bits(), opts.node_gap.to_bits()).hash(&mut h);
    if keep {
        edges.hash(&mut h);
        group_of.hash(&mut h);
        parent.hash(&mut h);
        for nd in &graph.nodes {
            node_label(nd).len().hash(&mut h);
        }
    }
    let key = h.finish();
    if cache.key != key {
        cache.entries.clear();
        cache.key = key;
    }
    cache.hits = 0;
    cache.misses = 0;

    // Subtree signatures, bottom-up.
    let mut sig = vec![0u64; if keep { gcount } else { 0 }];
    for g in (0..sig.len()).rev() {
        let mut h = FxHasher::default();
        (g, collapsed[g]).hash(&mut h);
        if !collapsed[g] {
            for it in &items[g] {
                match *it {
                    ItemRef::Group(c) => sig[c as usize].hash(&mut h),
                    ItemRef::Node(v) => v.hash(&mut h),
                }
            }
        }
        sig[g] = h.finish();
    }

    // Bottom-up layout, one depth at a time, groups of a depth in parallel.
    let max_depth = depth.iter().copied().max().unwrap_or(0);
    let mut by_depth: Vec<Vec<u32>> = vec![Vec::new(); max_depth as usize + 1];
    for g in 0..gcount {
        if g == 0 || (below[g] > 0 && container[g] == u32::MAX) {
            by_depth[depth[g] as usize].push(g as u32);
        }
    }
    let total_groups: usize = by_depth.iter().map(Vec::len).sum();
    let mut gsize = vec![DVec2::ZERO; gcount];
    for g in 1..gcount {
        if collapsed[g] {
            gsize[g] = collapsed_size(hierarchy, g, below[g]);
        }
    }
    let mut subs: Vec<Option<Arc<SubLayout>>> = vec![None; gcount];
    let mut done = 0usize;
    for d in (0..=max_depth as usize).rev() {
        progress.set(
            "dataflow: laying out groups",
            done as f32 / total_groups.max(1) as f32,
        );
        let results: Vec<Result<GroupResult, LayoutError>> = by_depth[d]
            .par_iter()
            .map(|&g| {
                if let Some((s, sub)) = cache.entries.get(&g)
                    && sig.get(g as usize) == Some(s)
                {
                    return Ok((g, sub.clone(), true));
                }
                progress.check()?;
                let gi = g as usize;
                let mut sizes: Vec<DVec2> = items[gi]
                    .iter()
                    .map(|it| match *it {
                        ItemRef::Group(c) => gsize[c as usize],
                        ItemRef::Node(v) => graph
                            .nodes
                            .get(v as usize)
                            .map_or(DVec2::new(60.0, 28.0), node_size),
                    })
                    .collect();
                let n_items = sizes.len() as u32;
                let mut pin = port_in[gi].clone();
                pin.sort_unstable();
                pin.dedup();
                let mut pout = port_out[gi].clone();
                pout.sort_unstable();
                pout.dedup();
                let mut in_ports: Vec<u32> = pin.iter().map(|p| p.0).collect();
                in_ports.dedup();
                let mut out_ports: Vec<u32> = pout.iter().map(|p| p.0).collect();
                out_ports.dedup();
                let mut roles: Vec<Role> = items[gi]
                    .iter()
                    .map(|it| match *it {
                        ItemRef::Node(v)
                            if graph
                                .nodes
                                .get(v as usize)
                                .is_some_and(|nd| nd.is_constant_op()) =>
                        {
                            Role::Const
                        }
                        _ => Role::Item,
                    })
                    .collect();
                roles.extend(std::iter::repeat_n(Role::InPort, in_ports.len()));
                roles.extend(std::iter::repeat_n(Role::OutPort, out_ports.len()));
                sizes.resize(roles.len(), DVec2::new(DUMMY_WIDTH, 0.0));
                let mut local = group_edges[gi].clone();
                for &(u, item) in &pin {
                    if let Ok(i) = in_ports.binary_search(&u) {
                        local.push((n_items + i as u32, item));
                    }
                }
                let base = n_items + in_ports.len() as u32;
                for &(u, item) in &pout {
                    if let Ok(j) = out_ports.binary_search(&u) {
                        local.push((item, base + j as u32));
                    }
                }
                local.sort_unstable();
                local.dedup();
                let mut sub = layered(&sizes, &roles, &local, opts, progress)?;
                sub.n_items = n_items;
                sub.in_ports = in_ports;
                sub.out_ports = out_ports;
                Ok((g, Arc::new(sub), false))
            })
            .collect();
        for r in results {
            let (g, sub, hit) = r?;
            if hit {
                cache.hits += 1;
            } else {
                cache.misses += 1;
            }
            let pad = if g == 0 {
                DVec2::ZERO
            } else {
                DVec2::new(2.0 * PAD_X, PAD_TOP + PAD_BOTTOM)
            };
            gsize[g as usize] = sub.size + pad;
            if keep {
                cache.entries.insert(g, (sig[g as usize], sub.clone()));
            }
            subs[g as usize] = Some(sub);
            done += 1;
        }
    }
    progress.set("dataflow: composing", 0.95);

    // Top-down composition.
    let mut origin = vec![DVec2::ZERO; gcount];
    let mut group_rects = vec![Rect::EMPTY; gcount];
    group_rects[0] = Rect::new(DVec2::ZERO, gsize[0]);
    let content = |g: usize, origin: &[DVec2]| {
        if g == 0 {
            origin[0]
        } else {
            origin[g] + DVec2::new(PAD_X, PAD_TOP)
        }
    };
    // Group boxes top-down (groups precede their children), then every node from its group's
    // origin, in parallel.
    let mut reversed_total = 0u32;
    let mut dropped = false;
    for g in 0..gcount {
        let Some(sub) = &subs[g] else { continue };
        reversed_total += sub.reversed;
        dropped |= sub.dummies_dropped;
        let base = content(g, &origin);
        for (it, c) in items[g].iter().zip(&sub.centers) {
            // Child groups come first among a group's items.
            let ItemRef::Group(k) = *it else { break };
            let k = k as usize;
            origin[k] = base + *c - gsize[k] * 0.5;
            group_rects[k] = Rect::new(origin[k], origin[k] + gsize[k]);
        }
    }
    let mut nodes = vec![
        NodeBox {
            center: DVec2::ZERO,
            half_size: Vec2::ZERO
        };
        n
    ];
    nodes
        .par_iter_mut()
        .zip(graph.nodes.par_iter())
        .enumerate()
        .for_each(|(v, (nb, nd))| {
            let g = group_of[v] as usize;
            let c = container[g];
            if c != u32::MAX {
                // Nodes hidden in a collapsed group sit at its centre.
                nb.center = group_rects[c as usize].center();
            } else if let Some(sub) = &subs[g]
                && let Some(&at) = sub.centers.get(local_of_node[v] as usize)
            {
                *nb = NodeBox {
                    center: content(g, &origin) + at,
                    half_size: (node_size(nd) * 0.5).as_vec2(),
                };
            }
        });
    // Hidden groups have no box.
    for g in 1..gcount {
        let c = container[parent[g] as usize];
        if c != u32::MAX {
            group_rects[g] = Rect::EMPTY;
        }
    }

    // The cluster tree (mostly serial) is built while the edge routes (parallel chunks) are:
    // neither reads the other.
    let build_tree = || {
        // Cluster tree: the hierarchy, wide groups split spatially (for a flat graph this *is* the
        // computed hierarchy: sort-tile-recursive tiles of the layered drawing).
        progress.set("dataflow: cluster tree", 0.97);
        let root_label = if graph.name.is_empty() {
            "model"
        } else {
            graph.name.as_str()
        };
        let mut tree = ClusterTree::from_hierarchy(hierarchy, &group_of, root_label);
        let fill = |tree: &mut ClusterTree| {
            tree.fill_bboxes_with(
                |v| nodes.get(v as usize).map_or(Rect::EMPTY, NodeBox::rect),
                |c| {
                    c.group
                        .and_then(|g| group_rects.get(g as usize))
                        .copied()
                        .unwrap_or(Rect::EMPTY)
                },
            );
        };
        fill(&mut tree);
        let mut tree = tree.split_wide(opts.max_cluster_children, |v| {
            nodes.get(v as usize).map_or(DVec2::ZERO, |b| b.center)
        });
        fill(&mut tree);
        tree.aggregate_edges(&edges);
        if opts.node_params.is_empty() {
            for c in &mut tree.clusters {
                c.param_count = c
                    .group
                    .and_then(|g| hierarchy.groups.get(g as usize))
                    .map_or(0, |g| g.param_count);
            }
        } else {
            tree.fill_params(&opts.node_params);
        }
        // Constant generators, shape plumbing and data movement are not what a block computes: a
        // block of eight convolutions fed by sixteen `ConstantOfShape` weights, each unsqueezed, is
        // a Conv block, and a transformer layer a MatMul block. Plumbing, data movement and a
        // subgraph's inputs and outputs still name a group of nothing else (a decoder of If
        // branches is not "mostly Output"); constants never do.
        tree.fill_dominant_ops_by(|v| {
            graph.nodes.get(v as usize).map_or(("", false), |nd| {
                if nd.is_constant_op() {
                    ("", false)
                } else {
                    let io = matches!(nd.kind, NodeKind::Input | NodeKind::Output);
                    (
                        &*nd.op,
                        !io && !is_plumbing(&nd.op) && !is_data_movement(&nd.op),
                    )
                }
            })
        });
        tree
    };
    let build_routes = || {
        // Waypoints of every group, once; edges index into them.
        let mut route_points: Vec<DVec2> = Vec::new();
        let mut group_point_base = vec![0u32; gcount];
        for g in 0..gcount {
            if let Some(sub) = &subs[g] {
                group_point_base[g] = route_points.len() as u32;
                let base = content(g, &origin);
                route_points.extend(sub.points.iter().map(|p| base + *p));
            }
        }
        let visible_rect = |v: u32| -> Rect {
            let g = group_of[v as usize];
            let c = container[g as usize];
            if c != u32::MAX {
                group_rects[c as usize]
            } else {
                nodes[v as usize].rect()
            }
        };
        // Appends the waypoints of local edge (a, b) of group g; returns whether it was reversed.
        let segment = |g: u32, a: u32, b: u32, out: &mut Vec<DVec2>| -> Option<bool> {
            let sub = subs.get(g as usize)?.as_ref()?;
            let i = sub.local_edges.binary_search(&(a, b)).ok()?;
            let lr = sub.routes.get(i)?;
            let pts = sub
                .points
                .get(lr.start as usize..(lr.start + lr.len) as usize)?;
            let base = content(g as usize, &origin);
            if lr.reversed {
                out.extend(pts.iter().rev().map(|p| base + *p));
            } else {
                out.extend(pts.iter().map(|p| base + *p));
            }
            Some(lr.reversed)
        };
        let port_pos = |g: u32, idx: u32| -> Option<DVec2> {
            let sub = subs.get(g as usize)?.as_ref()?;
            Some(content(g as usize, &origin) + *sub.centers.get(idx as usize)?)
        };
        // The visible start of a node's chain: (group, local item) of the node or its collapsed box.
        let start_of = |w: u32| -> (u32, u32) {
            let c = container[group_of[w as usize] as usize];
            if c != u32::MAX {
                (parent[c as usize], local_of_group[c as usize])
            } else {
                (group_of[w as usize], local_of_node[w as usize])
            }
        };
        // One edge's route. Its own waypoints go to `pts` (returns true); a route that is exactly a
        // shared group route points into `route_points` directly (returns false).
        let route_one = |e: usize,
                         u: u32,
                         v: u32,
                         pts: &mut Vec<DVec2>,
                         chain: &mut Vec<(u32, u32)>|
         -> (EdgeRoute, bool) {
            let ru = visible_rect(u);
            let rv = visible_rect(v);
            let same_box = {
                let cu = container[group_of[u as usize] as usize];
                cu != u32::MAX && cu == container[group_of[v as usize] as usize]
            };
            let mut r = EdgeRoute {
                from: DVec2::new(ru.center().x, ru.max.y),
                to: DVec2::new(rv.center().x, rv.min.y),
                points_start: 0,
                points_len: 0,
                curve: true,
                reversed: false,
                hidden: u == v || same_box,
            };
            pts.clear();
            if is_stub(e) && !r.hidden {
                // A short lead into the consumer, slanted by producer so that two constants
                // feeding one node (a Clip's bounds) stay apart.
                let dx = (f64::from(u % 5) - 2.0) * STUB_SLANT;
                r.from = r.to + DVec2::new(dx, -opts.layer_gap * 0.6);
                return (r, false);
            }
            let Some(Some((l, a, b))) = lca.get(e).copied().filter(|_| !r.hidden) else {
                return (r, false);
            };
            let shared = subs[l as usize].as_ref().and_then(|sub| {
                let i = sub.local_edges.binary_search(&(a, b)).ok()?;
                sub.routes.get(i).copied()
            });
            if shared.is_some_and(|lr| lr.reversed) {
                r.reversed = true;
                r.from = DVec2::new(ru.center().x, ru.min.y);
                r.to = DVec2::new(rv.center().x, rv.max.y);
                segment(l, a, b, pts);
            } else {
                // Up from u through the out-ports of its groups, across L, down through v's in-ports.
                let (mut g, mut item) = start_of(u);
                for _ in 0..gcount {
                    if g == l {
                        break;
                    }
                    if let Some(sub) = subs[g as usize].as_ref()
                        && let Some(port) = sub.out_port(u)
                    {
                        segment(g, item, port, pts);
                        pts.extend(port_pos(g, port));
                    }
                    item = local_of_group[g as usize];
                    g = parent[g as usize];
                }
                segment(l, a, b, pts);
                chain.clear();
                let (mut g, mut item) = start_of(v);
                for _ in 0..gcount {
                    if g == l {
                        break;
                    }
                    chain.push((g, item));
                    item = local_of_group[g as usize];
                    g = parent[g as usize];
                }
                for &(g, item) in chain.iter().rev() {
                    if let Some(sub) = subs[g as usize].as_ref()
                        && let Some(port) = sub.in_port(u)
                    {
                        pts.extend(port_pos(g, port));
                        segment(g, port, item, pts);
                    }
                }
            }
            let only_shared = !r.reversed
                && shared.is_some_and(|lr| lr.len as usize == pts.len())
                && start_of(u).0 == l
                && start_of(v).0 == l;
            if let (true, Some(lr)) = (only_shared, shared) {
                r.points_start = group_point_base[l as usize] + lr.start;
                r.points_len = lr.len;
                (r, false)
            } else {
                r.points_len = pts.len() as u32;
                (r, !pts.is_empty())
            }
        };
        // Routes in parallel chunks, each with its own points; stitched in edge order afterwards.
        const CHUNK: usize = 2048;
        let chunks: Vec<(Vec<EdgeRoute>, Vec<u32>, Vec<DVec2>)> = edges
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(ci, ch)| {
                let (mut out, mut own, mut points) =
                    (Vec::with_capacity(ch.len()), Vec::new(), Vec::new());
                let (mut pts, mut chain) = (Vec::new(), Vec::new());
                for (k, &(u, v)) in ch.iter().enumerate() {
                    let (mut r, local) = route_one(ci * CHUNK + k, u, v, &mut pts, &mut chain);
                    if local {
                        r.points_start = points.len() as u32;
                        own.push(k as u32);
                        points.extend_from_slice(&pts);
                    }
                    out.push(r);
                }
                (out, own, points)
            })
            .collect();
        let mut routes = Vec::with_capacity(edges.len());
        for (mut out, own, points) in chunks {
            let base = route_points.len() as u32;
            for k in own {
                if let Some(r) = out.get_mut(k as usize) {
                    r.points_start += base;
                }
            }
            route_points.extend_from_slice(&points);
            routes.append(&mut out);
        }
        (route_points, routes)
    };
    let (tree, (route_points, routes)) = rayon::join(build_tree, build_routes);
    // ~10⁴ group layouts of a few vectors each: freed one by one that was serial work at the end of
    // every layout without a cache, so spread it over the pool.
    subs.into_par_iter().for_each(drop);
    if reversed_total > 0 {
        warnings.push(format!(
            "{reversed_total} edges reversed to break cycles for layering"
        ));
    }
    let self_loops = edges.iter().filter(|(u, v)| u == v).count();
    if self_loops > 0 {
        warnings.push(format!("{self_loops} self-loops not drawn"));
    }
    if dropped {
        warnings.push("too many long edges: some are drawn straight, without routing".to_string());
    }

    let mut bounds = group_rects[0];
    for nb in &nodes {
        if nb.is_visible() {
            bounds = bounds.union(&nb.rect());
        }
    }
    progress.set("dataflow: done", 1.0);
    Ok(Layout {
        kind: LayoutKind::Dataflow,
        nodes,
        edges: super::Routes::Full(routes),
        route_points,
        groups: group_rects,
        collapsed,
        clusters: tree,
        bounds,
        warnings,
    })
}

/// Ops that only reshape, retype or pass values on, and elementwise arithmetic (residual adds, a
/// batch norm folded into `Mul` + `Add`): they decide a cluster's colour only where nothing else
/// does, so a DenseNet block reads as its convolutions.
fn is_plumbing(op: &str) -> bool {
    matches!(
        op,
        "Unsqueeze"
            | "Squeeze"
            | "Reshape"
            | "Flatten"
            | "Cast"
            | "Identity"
            | "Shape"
            | "Expand"
            | "Add"
            | "Sub"
            | "Mul"
            | "Div"
            // ATen's names (torch.export and TorchScript graphs), with TorchScript's scalar
            // arithmetic on sizes (`size` → `NumToTensor` → `Int`) and its branch merges.
            | "unsqueeze"
            | "squeeze"
            | "reshape"
            | "view"
            | "flatten"
            | "to"
            | "_to_copy"
            | "contiguous"
            | "clone"
            | "expand"
            | "add"
            | "sub"
            | "mul"
            | "div"
            | "floor_divide"
            | "floordiv"
            | "size"
            | "sym_size"
            | "dim"
            | "len"
            | "Int"
            | "Float"
            | "Bool"
            | "NumToTensor"
            | "If"
            // TensorFlow's names.
            | "AddV2"
            | "BiasAdd"
            | "RealDiv"
            | "ExpandDims"
    )
}

/// Ops that gather, cut or rearrange values: in a PyTorch export mostly shape arithmetic
/// (`Shape` → `Gather` → `Concat` → `Reshape`, eight Gathers a transformer layer against nine
/// MatMuls) or a layout change, not what a block computes. Like [`is_plumbing`] ops they name only a
/// block of nothing else (a `q_shape` group, an embedding).
fn is_data_movement(op: &str) -> bool {
    matches!(
        op,
        "Gather"
            | "GatherElements"
            | "Concat"
            | "Slice"
            | "Split"
            | "Transpose"
            | "Range"
            // ATen's names.
            | "transpose"
            | "permute"
            | "t"
            | "split"
            | "chunk"
            | "cat"
            | "slice"
            | "select"
            | "index_select"
            | "gather"
            | "__getitem__"
            | "unflatten"
            | "arange"
            // TensorFlow's names.
            | "ConcatV2"
            | "StridedSlice"
            | "GatherV2"
            | "Pack"
            | "Unpack"
            | "SplitV"
    )
}

/// Horizontal step between the stubs of different constants into one node, world units.
const STUB_SLANT: f64 = 7.0;

/// A constant op feeding at least this many distinct consumers is a shared constant.
const SHARED_CONSUMERS: u32 = 3;

/// Which edges are drawn as stubs: every out-edge but the first of a *shared constant*, a constant
/// op with no inputs from other nodes that feeds [`SHARED_CONSUMERS`] or more consumers (a `Constant`
/// `3.0` used by every hard-swish of a PaddlePaddle or TensorFlow export). Routed, such a node sends
/// a bundle of edges the length of the model from the top; as TensorBoard does with its
/// high-degree nodes, it sits above its first consumer, and its other consumers get a short lead
/// instead. Empty when there are none.
fn stub_edges(graph: &Graph, edges: &[(u32, u32)]) -> Vec<bool> {
    if !graph.nodes.par_iter().any(|nd| nd.is_constant_op()) {
        return Vec::new();
    }
    let n = graph.nodes.len();
    let mut has_in = vec![false; n];
    for &(u, v) in edges {
        if u != v
            && let Some(h) = has_in.get_mut(v as usize)
        {
            *h = true;
        }
    }
    // Per node: first consumer, last consumer seen, distinct consumers (consecutive duplicates).
    let mut first = vec![u32::MAX; n];
    let mut last = vec![u32::MAX; n];
    let mut consumers = vec![0u32; n];
    for &(u, v) in edges {
        let u = u as usize;
        if u == v as usize || u >= n || last[u] == v {
            continue;
        }
        if first[u] == u32::MAX {
            first[u] = v;
        }
        last[u] = v;
        consumers[u] += 1;
    }
    let shared = |u: usize| {
        consumers[u] >= SHARED_CONSUMERS
            && !has_in[u]
            && graph.nodes.get(u).is_some_and(|nd| nd.is_constant_op())
    };
    if !(0..n).any(shared) {
        return Vec::new();
    }
    edges
        .iter()
        .map(|&(u, v)| (u as usize) < n && shared(u as usize) && first[u as usize] != v)
        .collect()
}

fn node_label(nd: &crate::model::Node) -> &str {
    match nd.kind {
        NodeKind::Input | NodeKind::Output if !nd.name.is_empty() => &nd.name,
        _ if nd.op.is_empty() => &nd.name,
        _ => &nd.op,
    }
}

fn node_size(nd: &crate::model::Node) -> DVec2 {
    node_size_for_label(node_label(nd).chars().count()).as_dvec2()
}

fn collapsed_size(h: &Hierarchy, g: usize, members: u64) -> DVec2 {
    let name_len = h.groups.get(g).map_or(0, |x| x.name.chars().count());
    let digits = members.to_string().len();
    let s = node_size_for_label(name_len.max(digits + 6));
    DVec2::new(s.x as f64 + 16.0, 44.0)
}

/// A laid-out set of items: centres relative to the top-left of `size`.
fn layered(
    sizes: &[DVec2],
    roles: &[Role],
    edges: &[(u32, u32)],
    opts: &DataflowOptions,
    progress: &Progress,
) -> Result<SubLayout, LayoutError> {
    let n = sizes.len();
    let (comp, count) = graph::weak_components(n, edges);
    if count <= 1 {
        let mut s = layered_component(sizes, roles, edges, opts, progress)?;
        s.local_edges = edges.to_vec();
        return Ok(s);
    }
    // Split into components, lay out in parallel, shelf-pack in order of first member.
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); count];
    let mut local = vec![0u32; n];
    for v in 0..n {
        let c = comp[v] as usize;
        local[v] = members[c].len() as u32;
        members[c].push(v as u32);
    }
    let mut comp_edges: Vec<Vec<(u32, u32)>> = vec![Vec::new(); count];
    let mut comp_edge_ids: Vec<Vec<u32>> = vec![Vec::new(); count];
    for (i, &(a, b)) in edges.iter().enumerate() {
        let c = comp[a as usize] as usize;
        comp_edges[c].push((local[a as usize], local[b as usize]));
        comp_edge_ids[c].push(i as u32);
    }
    let parts: Vec<Result<SubLayout, LayoutError>> = members
        .par_iter()
        .zip(comp_edges.par_iter())
        .map(|(m, e)| {
            let s: Vec<DVec2> = m.iter().map(|&v| sizes[v as usize]).collect();
            let r: Vec<Role> = m
                .iter()
                .map(|&v| roles.get(v as usize).copied().unwrap_or(Role::Item))
                .collect();
            layered_component(&s, &r, e, opts, progress)
        })
        .collect();
    let parts: Vec<SubLayout> = parts.into_iter().collect::<Result<_, _>>()?;
    let area: f64 = parts
        .iter()
        .map(|p| (p.size.x + opts.node_gap) * (p.size.y + opts.node_gap))
        .sum();
    let widest = parts.iter().map(|p| p.size.x).fold(0.0, f64::max);
    let row_limit = widest.max(area.sqrt() * 1.5);
    let gap = opts.node_gap * 2.0;
    let mut out = SubLayout {
        centers: vec![DVec2::ZERO; n],
        local_edges: edges.to_vec(),
        routes: vec![LocalRoute::default(); edges.len()],
        ..SubLayout::default()
    };
    let (mut x, mut y, mut row_h) = (0.0f64, 0.0f64, 0.0f64);
    for (c, p) in parts.iter().enumerate() {
        if x > 0.0 && x + p.size.x > row_limit {
            x = 0.0;
            y += row_h + gap;
            row_h = 0.0;
        }
        let off = DVec2::new(x, y);
        for (k, &v) in members[c].iter().enumerate() {
            if let Some(cc) = p.centers.get(k) {
                out.centers[v as usize] = *cc + off;
            }
        }
        let base = out.points.len() as u32;
        out.points.extend(p.points.iter().map(|q| *q + off));
        for (k, &gi) in comp_edge_ids[c].iter().enumerate() {
            if let Some(r) = p.routes.get(k) {
                out.routes[gi as usize] = LocalRoute {
                    start: r.start + base,
                    ..*r
                };
            }
        }
        out.reversed += p.reversed;
        out.dummies_dropped |= p.dummies_dropped;
        out.size = out.size.max(off + p.size);
        x += p.size.x + gap;
        row_h = row_h.max(p.size.y);
    }
    Ok(out)
}

/// Layered layout of one connected component. `edges` are deduplicated local pairs without
/// self-loops; routes come back in the same order.
fn layered_component(
    sizes: &[DVec2],
    roles: &[Role],
    edges: &[(u32, u32)],
    opts: &DataflowOptions,
    progress: &Progress,
) -> Result<SubLayout, LayoutError> {
    let n = sizes.len();
    if n == 0 {
        return Ok(SubLayout::default());
    }
    if n == 1 {
        return Ok(SubLayout {
            size: sizes[0],
            centers: vec![sizes[0] * 0.5],
            routes: vec![LocalRoute::default(); edges.len()],
            ..SubLayout::default()
        });
    }
    // 1. Break cycles, orient.
    let back = graph::back_edges(n, edges);
    let dag: Vec<(u32, u32)> = edges
        .iter()
        .zip(&back)
        .map(|(&(a, b), &r)| if r { (b, a) } else { (a, b) })
        .collect();
    let reversed = back.iter().filter(|&&b| b).count() as u32;
    let topo = graph::topological_order(n, &dag, &[]);
    let out = Csr::forward(n, &dag);

    // 2. Longest-path layering, sources pulled down to just above their first consumer.
    let mut layer = vec![0u32; n];
    for &v in &topo {
        let lv = layer[v as usize];
        for &w in out.neighbors(v) {
            layer[w as usize] = layer[w as usize].max(lv + 1);
        }
    }
    let mut indeg = vec![0u32; n];
    for &(_, b) in &dag {
        indeg[b as usize] += 1;
    }
    let role = |v: usize| roles.get(v).copied().unwrap_or(Role::Item);
    // Constant-fed: a source, or fed only by constant-fed nodes (a weight `Constant` and the
    // `Reshape` or `Cast` of it that an exporter left unfolded). These go down to just above
    // their first consumer, the latest first, so a chain lands right above its use instead of
    // on the top layer with an edge the length of the model.
    let mut fed = vec![false; n];
    {
        let inn = Csr::backward(n, &dag);
        for &v in &topo {
            let vu = v as usize;
            let ins = inn.neighbors(v);
            fed[vu] = out.degree(v) > 0
                && role(vu).is_item()
                && if ins.is_empty() {
                    role(vu) == Role::Const
                } else {
                    ins.iter().all(|&u| fed[u as usize])
                };
        }
    }
    for &v in topo.iter().rev() {
        if fed[v as usize]
            || (indeg[v as usize] == 0 && out.degree(v) > 0 && role(v as usize) != Role::InPort)
        {
            let m = out
                .neighbors(v)
                .iter()
                .map(|&w| layer[w as usize])
                .min()
                .unwrap_or(1);
            layer[v as usize] = layer[v as usize].max(m.saturating_sub(1));
        }
    }
    // Out-ports sit on the bottom layer.
    let lmax = (0..n)
        .filter(|&v| role(v) != Role::OutPort)
        .map(|v| layer[v])
        .max()
        .unwrap_or(0);
    let inn = Csr::backward(n, &dag);
    for v in 0..n {
        if role(v) == Role::OutPort {
            let pred = inn
                .neighbors(v as u32)
                .iter()
                .map(|&w| layer[w as usize] + 1)
                .max()
                .unwrap_or(0);
            layer[v] = lmax.max(pred);
        }
    }

    // 3. Dummy chains, one per producer with long out-edges.
    let mut chain_start = vec![u32::MAX; n];
    let mut total_dummies = 0usize;
    for v in 0..n as u32 {
        let span = out
            .neighbors(v)
            .iter()
            .map(|&w| layer[w as usize] - layer[v as usize])
            .max()
            .unwrap_or(0);
        if span > 1 {
            total_dummies += span as usize - 1;
        }
    }
    let dummies_dropped = total_dummies > opts.max_dummies;
    let mut lnodes_layer = layer.clone();
    let mut ledges: Vec<(u32, u32)> = Vec::with_capacity(dag.len() + total_dummies);
    if !dummies_dropped {
        for v in 0..n as u32 {
            let lv = layer[v as usize];
            let span = out
                .neighbors(v)
                .iter()
                .map(|&w| layer[w as usize] - lv)
                .max()
                .unwrap_or(0);
            if span > 1 {
                let s = lnodes_layer.len() as u32;
                chain_start[v as usize] = s;
                for k in 1..span {
                    lnodes_layer.push(lv + k);
                    let d = s + k - 1;
                    ledges.push((if k == 1 { v } else { d - 1 }, d));
                }
            }
        }
    }
    for &(a, b) in &dag {
        let span = layer[b as usize] - layer[a as usize];
        if span > 1 && !dummies_dropped {
            ledges.push((chain_start[a as usize] + span - 2, b));
        } else {
            ledges.push((a, b));
        }
    }
    ledges.sort_unstable();
    ledges.dedup();
    let total = lnodes_layer.len();
    let lout = Csr::forward(total, &ledges);
    let lin = Csr::backward(total, &ledges);
    let nlayers = lnodes_layer.iter().copied().max().unwrap_or(0) as usize + 1;

    // 4. Initial order: DFS preorder from sources (optionally shuffled by seed).
    let mut roots: Vec<u32> = (0..n as u32).filter(|&v| indeg[v as usize] == 0).collect();
    if opts.seed != 0 {
        let mut rng = graph::Pcg32::new(opts.seed);
        for i in (1..roots.len()).rev() {
            let j = rng.below(i as u32 + 1) as usize;
            roots.swap(i, j);
        }
    }
    let mut layers: Vec<Vec<u32>> = vec![Vec::new(); nlayers];
    let mut seen = vec![false; total];
    let mut stack: Vec<u32> = Vec::new();
    for r in roots.into_iter().chain(0..total as u32) {
        if seen[r as usize] {
            continue;
        }
        stack.push(r);
        while let Some(v) = stack.pop() {
            if seen[v as usize] {
                continue;
            }
            seen[v as usize] = true;
            layers[lnodes_layer[v as usize] as usize].push(v);
            for &w in lout.neighbors(v).iter().rev() {
                if !seen[w as usize] {
                    stack.push(w);
                }
            }
        }
    }
    let mut pos = vec![0u32; total];
    let set_pos = |layers: &[Vec<u32>], pos: &mut [u32]| {
        for l in layers {
            for (i, &v) in l.iter().enumerate() {
                pos[v as usize] = i as u32;
            }
        }
    };
    set_pos(&layers, &mut pos);

    // 5. Crossing reduction: barycenter sweeps, keep the best.
    let mut best = count_crossings(&layers, &lout, &pos, &lnodes_layer);
    let mut best_layers = layers.clone();
    let mut keys: Vec<(f64, u32, u32)> = Vec::new();
    let mut stale = 0;
    for _ in 0..opts.crossing_passes {
        if best == 0 {
            break;
        }
        progress.check()?;
        for layer in layers.iter_mut().skip(1) {
            sort_by_barycenter(layer, &lin, &mut pos, &mut keys);
        }
        for layer in layers.iter_mut().rev().skip(1) {
            sort_by_barycenter(layer, &lout, &mut pos, &mut keys);
        }
        let c = count_crossings(&layers, &lout, &pos, &lnodes_layer);
        if c < best {
            best = c;
            best_layers.clone_from(&layers);
            stale = 0;
        } else {
            stale += 1;
            if stale >= 2 {
                break;
            }
        }
    }
    let layers = best_layers;
    set_pos(&layers, &mut pos);

    // 6. x by sweeps of "mean of neighbours" + exact isotonic placement.
    let thin = |v: u32| (v as usize) >= n || !role(v as usize).is_item();
    let width = |v: u32| {
        if (v as usize) < n {
            sizes[v as usize].x
        } else {
            DUMMY_WIDTH
        }
    };
    // A box taller than a layer gap (a group: a transformer layer) keeps edges running beside it
    // twice as far off as a neighbouring box: closer, a bundle read as a thick border of the box.
    let tall = |v: u32| (v as usize) < n && sizes[v as usize].y > opts.layer_gap;
    let sep = |a: u32, b: u32| {
        let gap = match (thin(a), thin(b)) {
            (true, true) => DUMMY_GAP,
            (true, false) if tall(b) => 2.0 * opts.node_gap,
            (false, true) if tall(a) => 2.0 * opts.node_gap,
            _ => opts.node_gap,
        };
        (width(a) + width(b)) * 0.5 + gap
    };
    let mut x = vec![0f64; total];
    for l in &layers {
        let mut cx = 0.0;
        for (i, &v) in l.iter().enumerate() {
            if i > 0 {
                cx += sep(l[i - 1], v);
            }
            x[v as usize] = cx;
        }
        let shift = cx * 0.5;
        for &v in l {
            x[v as usize] -= shift;
        }
    }
    // A source feeding one consumer (a weight from a `Constant` node, an input used once) sits above
    // its consumer, but does not pull it: otherwise every Conv fed by its two weight generators
    // moves towards them, and a VGG's chain drifts sideways block by block.
    let leaf = |v: u32| {
        (v as usize) < n
            && role(v as usize).is_item()
            && (fed[v as usize] || lin.neighbors(v).is_empty())
            && lout.neighbors(v).len() == 1
    };
    let mut scratch = PlaceScratch::default();
    for it in 0..4 {
        progress.check()?;
        for layer in layers.iter().skip(1) {
            place_layer(layer, &[&lin], &mut x, &thin, &leaf, &sep, &mut scratch);
        }
        for layer in layers.iter().rev().skip(1) {
            place_layer(layer, &[&lout], &mut x, &thin, &leaf, &sep, &mut scratch);
        }
        if it == 3 {
            for layer in &layers {
                place_layer(
                    layer,
                    &[&lin, &lout],
                    &mut x,
                    &thin,
                    &leaf,
                    &sep,
                    &mut scratch,
                );
            }
        }
    }

    // 7. y: stacked layer bands, items centred in their band.
    let mut band = vec![0f64; nlayers];
    for v in 0..n {
        let l = lnodes_layer[v] as usize;
        band[l] = band[l].max(sizes[v].y);
    }
    // Layers holding only ports get half a gap: they are borders, not rows of boxes.
    let mut port_only = vec![true; nlayers];
    for (v, &l) in lnodes_layer.iter().enumerate() {
        if v >= n || role(v).is_item() {
            port_only[l as usize] = false;
        }
    }
    let mut top = vec![0f64; nlayers];
    let mut y = 0.0;
    for l in 0..nlayers {
        top[l] = y;
        let next_port = port_only.get(l + 1).copied().unwrap_or(false);
        y += band[l]
            + if port_only[l] || next_port {
                opts.layer_gap * 0.5
            } else {
                opts.layer_gap
            };
    }
    let _ = y;
    let height = top.last().copied().unwrap_or(0.0) + band.last().copied().unwrap_or(0.0);
    let min_x = (0..total as u32)
        .map(|v| x[v as usize] - width(v) * 0.5)
        .fold(f64::INFINITY, f64::min);
    let max_x = (0..total as u32)
        .map(|v| x[v as usize] + width(v) * 0.5)
        .fold(f64::NEG_INFINITY, f64::max);
    let yc = |v: usize| {
        let l = lnodes_layer[v] as usize;
        top[l] + band[l] * 0.5
    };
    let centers: Vec<DVec2> = (0..n).map(|v| DVec2::new(x[v] - min_x, yc(v))).collect();
    // Waypoints of the dummies. A dummy in a tall band (beside a group box, a layer of a
    // transformer three thousand units high) is a vertical run from the band's top to its bottom,
    // two points: one point at the band's centre made the curve between two dummies an S the
    // height of the box, which cut through the box it was placed beside. In a short band one point
    // does. `point_start[k]` is the first point of dummy `n + k`; chains are contiguous, so an
    // edge's points are still a prefix of its producer's chain.
    let mut points: Vec<DVec2> = Vec::with_capacity(total - n);
    let mut point_start: Vec<u32> = Vec::with_capacity(total - n + 1);
    for d in n..total {
        point_start.push(points.len() as u32);
        let l = lnodes_layer[d] as usize;
        let xd = x[d] - min_x;
        if band[l] > opts.layer_gap {
            points.push(DVec2::new(xd, top[l]));
            points.push(DVec2::new(xd, top[l] + band[l]));
        } else {
            points.push(DVec2::new(xd, yc(d)));
        }
    }
    point_start.push(points.len() as u32);
    let routes: Vec<LocalRoute> = dag
        .iter()
        .zip(&back)
        .map(|(&(a, b), &rev)| {
            let span = layer[b as usize] - layer[a as usize];
            let cs = chain_start[a as usize];
            if span > 1 && cs != u32::MAX {
                let k = (cs as usize) - n;
                let start = point_start.get(k).copied().unwrap_or(0);
                let end = point_start
                    .get(k + span as usize - 1)
                    .copied()
                    .unwrap_or(start);
                LocalRoute {
                    start,
                    len: end.saturating_sub(start),
                    reversed: rev,
                }
            } else {
                LocalRoute {
                    start: 0,
                    len: 0,
                    reversed: rev,
                }
            }
        })
        .collect();
    Ok(SubLayout {
        size: DVec2::new(max_x - min_x, height),
        centers,
        local_edges: Vec::new(),
        routes,
        points,
        reversed,
        dummies_dropped,
        ..SubLayout::default()
    })
}

/// Reorders one layer by the mean position of its neighbours in `adj` (the adjacent layer); nodes
/// with no neighbours keep their position. Ties keep the old order.
fn sort_by_barycenter(
    layer: &mut [u32],
    adj: &Csr,
    pos: &mut [u32],
    keys: &mut Vec<(f64, u32, u32)>,
) {
    keys.clear();
    for &v in layer.iter() {
        let nb = adj.neighbors(v);
        let p = pos[v as usize];
        let b = if nb.is_empty() {
            p as f64
        } else {
            nb.iter().map(|&w| pos[w as usize] as f64).sum::<f64>() / nb.len() as f64
        };
        keys.push((b, p, v));
    }
    keys.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (i, k) in keys.iter().enumerate() {
        layer[i] = k.2;
        pos[k.2 as usize] = i as u32;
    }
}

/// Exact crossings between adjacent layers (Barth–Jünger–Mutzel accumulator, O(E log V)); edges
/// spanning several layers (only when dummies were dropped) are not counted.
fn count_crossings(layers: &[Vec<u32>], out: &Csr, pos: &[u32], layer_of: &[u32]) -> u64 {
    let mut total = 0u64;
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut tree: Vec<u32> = Vec::new();
    for (l, vs) in layers.iter().enumerate() {
        let Some(next) = layers.get(l + 1) else { break };
        pairs.clear();
        for &v in vs {
            for &w in out.neighbors(v) {
                if layer_of[w as usize] as usize == l + 1 {
                    pairs.push((pos[v as usize], pos[w as usize]));
                }
            }
        }
        pairs.sort_unstable();
        // Fenwick tree over lower positions: count earlier edges ending to the right.
        let m = next.len();
        tree.clear();
        tree.resize(m + 1, 0);
        for (seen, &(_, b)) in pairs.iter().enumerate() {
            let mut le = 0u32;
            let mut i = b as usize + 1;
            while i > 0 {
                le += tree[i];
                i &= i - 1;
            }
            total += (seen as u32 - le) as u64;
            let mut i = b as usize + 1;
            while i <= m {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

#[derive(Default)]
struct PlaceScratch {
    target: Vec<f64>,
    weight: Vec<f64>,
    offset: Vec<f64>,
    blocks: Vec<(f64, f64, usize)>,
}

/// Moves a layer's nodes towards the mean x of their neighbours in `adjs`, keeping order and the
/// minimum separations: isotonic regression of `target - offset` (pool adjacent violators).
/// Neighbours for which `leaf` holds count only when a node has no others.
fn place_layer(
    layer: &[u32],
    adjs: &[&Csr],
    x: &mut [f64],
    thin: &dyn Fn(u32) -> bool,
    leaf: &dyn Fn(u32) -> bool,
    sep: &dyn Fn(u32, u32) -> f64,
    s: &mut PlaceScratch,
) {
    if layer.is_empty() {
        return;
    }
    s.target.clear();
    s.weight.clear();
    s.offset.clear();
    let mut off = 0.0;
    for (i, &v) in layer.iter().enumerate() {
        if i > 0 {
            off += sep(layer[i - 1], v);
        }
        // Neighbours weigh what they weigh in the regression below (a bend of a long edge twice a
        // box): a residual merge fed by its block and by the skip edge's bend, which the regression
        // pushed apart by those weights, then lands back on the column instead of a step aside,
        // and a chain of blocks does not lean.
        let (mut sum, mut cnt) = (0.0, 0.0f64);
        let (mut leaf_sum, mut leaves) = (0.0, 0.0f64);
        for adj in adjs {
            for &w in adj.neighbors(v) {
                if leaf(w) {
                    leaf_sum += x[w as usize];
                    leaves += 1.0;
                } else {
                    let k = if thin(w) { 2.0 } else { 1.0 };
                    sum += k * x[w as usize];
                    cnt += k;
                }
            }
        }
        if cnt == 0.0 {
            (sum, cnt) = (leaf_sum, leaves);
        }
        let t = if cnt > 0.0 { sum / cnt } else { x[v as usize] };
        s.offset.push(off);
        s.target.push(t - off);
        // Dummies pull harder so long edges run straight; unconnected nodes and leaf sources barely
        // resist (a weight pooled with its consumer's other input must not shove that input aside).
        s.weight.push(if leaf(v) {
            // Next to nothing: pooled with its consumer's data input on one side, even 0.1 a
            // generator moved that input by a twelfth of their distance, every block of a ResNet.
            1e-3
        } else if cnt == 0.0 {
            0.1
        } else if thin(v) {
            2.0
        } else {
            1.0
        });
    }
    s.blocks.clear();
    for i in 0..layer.len() {
        let w = s.weight[i];
        s.blocks.push((w, w * s.target[i], 1));
        while s.blocks.len() >= 2 {
            let (w2, z2, c2) = s.blocks[s.blocks.len() - 1];
            let (w1, z1, c1) = s.blocks[s.blocks.len() - 2];
            if z1 / w1 > z2 / w2 {
                s.blocks.pop();
                let last = s.blocks.len() - 1;
                s.blocks[last] = (w1 + w2, z1 + z2, c1 + c2);
            } else {
                break;
            }
        }
    }
    let mut i = 0usize;
    for &(w, z, c) in &s.blocks {
        let mean = z / w;
        for _ in 0..c {
            x[layer[i] as usize] = mean + s.offset[i];
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_placement_keeps_order_and_gaps() {
        let adj = Csr::forward(4, &[]);
        let mut x = vec![0.0, 0.0, 0.0, 10.0];
        let mut s = PlaceScratch::default();
        let sep = |_: u32, _: u32| 10.0;
        place_layer(
            &[0, 1, 2],
            &[&adj],
            &mut x,
            &|_| false,
            &|_| false,
            &sep,
            &mut s,
        );
        assert!((x[1] - x[0] - 10.0).abs() < 1e-9);
        assert!((x[2] - x[1] - 10.0).abs() < 1e-9);
        // Mean of the targets is preserved (equal weights): 0 + 10 - 10 = centred on 0.
        assert!((x[0] + x[1] + x[2]).abs() < 1e-9);
    }

    #[test]
    fn crossing_count_is_exact() {
        // Layer 0: a b; layer 1: c d; edges a→d, b→c cross once; plus a→c: crosses b→c? no (shared c).
        let layers = vec![vec![0, 1], vec![2, 3]];
        let out = Csr::forward(4, &[(0, 3), (1, 2), (0, 2)]);
        let pos = vec![0, 1, 0, 1];
        let lay = vec![0, 0, 1, 1];
        assert_eq!(count_crossings(&layers, &out, &pos, &lay), 1);
    }
}
