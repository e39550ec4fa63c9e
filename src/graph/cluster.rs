//! The cluster tree: the level-of-detail hierarchy every layout produces, and that the LOD cut walks.
//!
//! How it works: clusters are numbered breadth-first from the root (cluster 0), so parents have smaller
//! ids than children and one reverse sweep computes anything bottom-up (member counts, boxes,
//! dominant op). Each node hangs under exactly one cluster ([`ClusterTree::node_cluster`]), so every
//! node lies on exactly one leaf-to-root chain. Empty clusters are pruned.
//!
//! Aggregated edges: an original edge `u → v` whose endpoints hang under clusters `cu`, `cv` is
//! counted once, in the lowest common cluster `L` of `cu` and `cv`, between the two *direct children*
//! of `L` that hold `u` and `v` (a child cluster, or the node itself when it hangs directly under `L`).
//! So every edge except a self-loop (`u == v`, counted in [`ClusterTree::self_loops`] and nowhere
//! else) is in exactly one [`AggEdge`]; an edge between two nodes of one leaf cluster is an `AggEdge`
//! of that cluster between two `Item::Node`s. Aggregates are directed: `a` holds the producer.
//! Computed with a parallel map (walk both chains up to the common cluster) and one parallel sort by
//! `(L, a, b)`: O(E · depth + E log E), no per-cluster hash maps.
//!
//! Rejected: storing aggregates only between clusters at the same depth (a cut mixes depths, so the
//! LOD code would need to re-aggregate each frame), and per-pair hash maps (memory-heavy at 2 M edges).

use std::sync::Arc;

use glam::DVec2;
use rayon::prelude::*;

use crate::model::{GroupId, Hierarchy, NodeId};
use crate::view::Rect;

/// Index of a cluster in [`ClusterTree::clusters`]; 0 is the root.
pub type ClusterId = u32;

/// A child of a cluster: a graph node or a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Item {
    /// A graph node.
    Node(NodeId),
    /// A cluster.
    Cluster(ClusterId),
}

impl Item {
    /// A sort key in 32 bits (ids below 2³¹; nodes before clusters), for the edge sort.
    fn key32(self) -> u32 {
        match self {
            Item::Node(n) => n,
            Item::Cluster(c) => c | 1 << 31,
        }
    }

    fn from_key32(k: u32) -> Item {
        if k >> 31 == 0 {
            Item::Node(k)
        } else {
            Item::Cluster(k & !(1 << 31))
        }
    }
}

/// Aggregated edges between two direct children of one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct AggEdge {
    /// The child holding the producers.
    pub a: Item,
    /// The child holding the consumers.
    pub b: Item,
    /// Number of original edges.
    pub count: u32,
    /// Sum of the weights of the original edges (each original edge weighs 1).
    pub weight: f32,
    /// The original edge ids, as a range into [`ClusterTree::edge_ids`].
    pub edges: std::ops::Range<u32>,
}

/// A run of entries in one of the tree's shared arrays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First entry.
    pub start: u32,
    /// Number of entries.
    pub len: u32,
}

impl Span {
    fn of<T>(self, v: &[T]) -> &[T] {
        let start = self.start as usize;
        v.get(start..start + self.len as usize).unwrap_or(&[])
    }
}

/// One cluster of the tree. Its child lists and aggregated edges live in the tree's shared arrays
/// ([`ClusterTree::child_clusters`], [`ClusterTree::child_nodes`], [`ClusterTree::sibling_edges`]):
/// three small vectors per cluster cost ~140 bytes of headers and allocator slack each time, over a
/// gigabyte across the ~8 M clusters of a 10 M-node graph.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// Parent (`None` for the root).
    pub parent: Option<ClusterId>,
    /// Child clusters, in order (in [`ClusterTree::child_clusters`]).
    pub children: Span,
    /// Nodes hanging directly under this cluster (in [`ClusterTree::child_nodes`]).
    pub nodes: Span,
    /// Aggregated edges between direct children of this cluster (in [`ClusterTree::sibling_edges`]).
    pub siblings: Span,
    /// Bounding box in world units (filled by the layout).
    pub bbox: Rect,
    /// Nodes in this cluster and below.
    pub member_count: u64,
    /// Parameters of those nodes.
    pub param_count: u64,
    /// Depth below the root (root = 0).
    pub depth: u32,
    /// Label given by the hierarchy (a group name); empty for computed clusters, whose
    /// [`Cluster::display_label`] is derived.
    pub label: String,
    /// Most common op below (mode of the children's modes, weighted by members: an approximation).
    pub dominant_op: Arc<str>,
    /// The hierarchy group it stands for, if any (computed clusters have none).
    pub group: Option<GroupId>,
}

impl Cluster {
    /// Direct children: clusters and nodes.
    pub fn child_count(&self) -> usize {
        self.children.len as usize + self.nodes.len as usize
    }
}

impl Cluster {
    /// What to write on the cluster: its label, or for a computed cluster its dominant op and
    /// member count (`MatMul ×120`).
    pub fn display_label(&self) -> std::borrow::Cow<'_, str> {
        if !self.label.is_empty() {
            std::borrow::Cow::Borrowed(self.label.as_str())
        } else if self.dominant_op.is_empty() {
            std::borrow::Cow::Owned(format!("cluster ×{}", self.member_count))
        } else {
            std::borrow::Cow::Owned(format!("{} ×{}", self.dominant_op, self.member_count))
        }
    }
}

/// The input to [`ClusterTree::build`]: one cluster's parent and naming.
#[derive(Clone, Debug, Default)]
pub struct ClusterSpec {
    /// Parent spec index (`None` or invalid: attached to spec 0, the root).
    pub parent: Option<ClusterId>,
    /// Label given by the hierarchy (a group name); empty for computed clusters, whose
    /// [`Cluster::display_label`] is derived.
    pub label: String,
    /// Hierarchy group.
    pub group: Option<GroupId>,
}

/// The level-of-detail tree. See the module notes for the edge-aggregation rule.
#[derive(Clone, Debug, Default)]
pub struct ClusterTree {
    /// All clusters; `[0]` is the root.
    pub clusters: Vec<Cluster>,
    /// The cluster each node hangs under directly.
    pub node_cluster: Vec<ClusterId>,
    /// Original edge ids grouped by aggregate ([`AggEdge::edges`] ranges index this).
    pub edge_ids: Vec<u32>,
    /// Child cluster ids, each cluster's a [`Cluster::children`] run.
    child_ids: Vec<ClusterId>,
    /// Node ids, each cluster's direct nodes a [`Cluster::nodes`] run.
    node_ids: Vec<NodeId>,
    /// Aggregated edges, each cluster's a [`Cluster::siblings`] run.
    aggs: Vec<AggEdge>,
    /// Self-loops (not in any aggregate).
    pub self_loops: u32,
}

impl ClusterTree {
    /// Builds a tree from specs (spec 0 is the root) and each node's spec. Renumbers breadth-first,
    /// prunes clusters with no nodes below them, and attaches clusters with a missing parent (or on a
    /// parent cycle) to the root. Member counts and depths are filled; boxes, parameters, ops and
    /// aggregated edges come from the `fill_*`/[`ClusterTree::aggregate_edges`] calls.
    pub fn build(specs: Vec<ClusterSpec>, node_cluster: &[ClusterId]) -> ClusterTree {
        let mut specs = specs;
        if specs.is_empty() {
            specs.push(ClusterSpec::default());
        }
        let s = specs.len();
        let node_spec: Vec<u32> = node_cluster
            .iter()
            .map(|&c| if (c as usize) < s { c } else { 0 })
            .collect();
        // Direct node counts, then counts below each spec (through a BFS order that tolerates bad parents).
        let parents: Vec<usize> = specs
            .iter()
            .enumerate()
            .map(|(i, sp)| match sp.parent {
                Some(p) if i != 0 && (p as usize) < s && p as usize != i => p as usize,
                _ => 0,
            })
            .collect();
        let parent_of = |i: usize| -> usize { parents[i] };
        let order = bfs_order(s, &parent_of);
        let mut below = vec![0u64; s];
        for &c in &node_spec {
            below[c as usize] += 1;
        }
        for &i in order.iter().rev() {
            if i != 0 {
                let p = parent_of(i);
                below[p] += below[i];
            }
        }
        // Keep the root and non-empty specs, numbered in BFS order.
        let mut new_id = vec![u32::MAX; s];
        let mut kept: Vec<usize> = Vec::new();
        for &i in &order {
            if i == 0 || below[i] > 0 {
                new_id[i] = kept.len() as u32;
                kept.push(i);
            }
        }
        let mut clusters: Vec<Cluster> = kept
            .iter()
            .map(|&i| Cluster {
                parent: if i == 0 {
                    None
                } else {
                    Some(new_id[parent_of(i)])
                },
                children: Span::default(),
                nodes: Span::default(),
                siblings: Span::default(),
                bbox: Rect::EMPTY,
                member_count: below[i],
                param_count: 0,
                depth: 0,
                label: std::mem::take(&mut specs[i].label),
                dominant_op: Arc::from(""),
                group: specs[i].group,
            })
            .collect();
        drop(specs);
        for c in 1..clusters.len() {
            if let Some(p) = clusters[c].parent {
                let d = clusters[p as usize].depth + 1;
                clusters[c].depth = d;
            }
        }
        let node_cluster: Vec<ClusterId> = node_spec.iter().map(|&c| new_id[c as usize]).collect();
        drop(node_spec);
        // Child lists by counting sort, in id order (as pushing would have made them).
        let parent_ids: Vec<ClusterId> = clusters
            .iter()
            .skip(1)
            .map(|c| c.parent.unwrap_or(0))
            .collect();
        let child_ids = group_by_owner(&mut clusters, |c| &mut c.children, &parent_ids, 1);
        let node_ids = group_by_owner(&mut clusters, |c| &mut c.nodes, &node_cluster, 0);
        ClusterTree {
            clusters,
            node_cluster,
            edge_ids: Vec::new(),
            self_loops: 0,
            child_ids,
            node_ids,
            aggs: Vec::new(),
        }
    }

    /// Bytes held by the tree's arrays (not counting label strings).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.clusters.capacity() * size_of::<Cluster>()
            + (self.node_cluster.capacity()
                + self.edge_ids.capacity()
                + self.child_ids.capacity()
                + self.node_ids.capacity())
                * 4
            + self.aggs.capacity() * size_of::<AggEdge>()
    }

    /// The child clusters of `cl`, in order.
    pub fn child_clusters(&self, cl: &Cluster) -> &[ClusterId] {
        cl.children.of(&self.child_ids)
    }

    /// The nodes hanging directly under `cl`.
    pub fn child_nodes(&self, cl: &Cluster) -> &[NodeId] {
        cl.nodes.of(&self.node_ids)
    }

    /// The aggregated edges between direct children of `cl`.
    pub fn sibling_edges(&self, cl: &Cluster) -> &[AggEdge] {
        cl.siblings.of(&self.aggs)
    }

    /// One cluster per hierarchy group that holds nodes (cluster labels are group names; the root is
    /// labelled `root_label`). Node groups out of range hang under the root.
    pub fn from_hierarchy(
        hierarchy: &Hierarchy,
        node_groups: &[GroupId],
        root_label: &str,
    ) -> ClusterTree {
        let specs: Vec<ClusterSpec> = hierarchy
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| ClusterSpec {
                parent: if i == 0 {
                    None
                } else {
                    g.parent.filter(|&p| (p as usize) < i)
                },
                label: if i == 0 {
                    root_label.to_string()
                } else {
                    g.name.clone()
                },
                group: Some(i as GroupId),
            })
            .collect();
        ClusterTree::build(specs, node_groups)
    }

    /// A tree from multilevel coarsening: `maps[0][v]` is the level-1 cluster of node `v`, and
    /// `maps[k][c]` the level-(k+1) cluster of level-k cluster `c`; the last level's clusters are the
    /// root's children. Clusters with a single child are spliced out (a node carried up unmatched
    /// through several levels is one item, not a chain).
    pub fn from_levels(node_count: usize, maps: &[Vec<u32>]) -> ClusterTree {
        // Spec numbering: root 0, then the top level first, down to level 1 (parents before children).
        let sizes: Vec<usize> = maps
            .iter()
            .enumerate()
            .map(|(k, _)| maps.get(k + 1).map_or(0, |m| m.len()))
            .collect();
        let top = maps
            .last()
            .map_or(0, |m| m.iter().copied().max().map_or(0, |x| x as usize + 1));
        let mut level_size: Vec<usize> = sizes;
        if let Some(last) = level_size.last_mut() {
            *last = top;
        }
        // base[k] = first spec of level k+1 clusters.
        let mut base = vec![0usize; maps.len()];
        let mut next = 1usize;
        for k in (0..maps.len()).rev() {
            base[k] = next;
            next += level_size[k];
        }
        let total = next;
        let mut parent = vec![0u32; total];
        for k in 0..maps.len() {
            if k + 1 < maps.len() {
                for (c, &p) in maps[k + 1].iter().enumerate() {
                    if c < level_size[k] && (p as usize) < level_size[k + 1] {
                        parent[base[k] + c] = (base[k + 1] + p as usize) as u32;
                    }
                }
            }
        }
        let mut node_spec: Vec<u32> = match maps.first() {
            Some(m) => (0..node_count)
                .map(|v| {
                    m.get(v)
                        .filter(|&&c| (c as usize) < level_size[0])
                        .map_or(0, |&c| (base[0] + c as usize) as u32)
                })
                .collect(),
            None => vec![0; node_count],
        };
        // Splice single-child clusters.
        let mut children = vec![0u32; total];
        for &p in parent.iter().skip(1) {
            children[p as usize] += 1;
        }
        for &c in &node_spec {
            children[c as usize] += 1;
        }
        let effective = |mut p: u32| {
            while p != 0 && children[p as usize] == 1 {
                p = parent[p as usize];
            }
            p
        };
        let new_parent: Vec<u32> = parent.iter().map(|&p| effective(p)).collect();
        for c in &mut node_spec {
            *c = effective(*c);
        }
        let specs: Vec<ClusterSpec> = (0..total)
            .map(|i| ClusterSpec {
                parent: if i == 0 { None } else { Some(new_parent[i]) },
                label: String::new(),
                group: None,
            })
            .collect();
        let mut tree = ClusterTree::build(specs, &node_spec);
        // Computed clusters keep an empty label: [`Cluster::display_label`] derives one when drawn,
        // instead of a million formatted strings up front.
        if let Some(root) = tree.clusters.first_mut() {
            root.label = "graph".to_string();
        }
        tree
    }

    /// The direct children of `c`: clusters first, then nodes.
    pub fn children(&self, c: ClusterId) -> impl Iterator<Item = Item> + '_ {
        let cl = self.clusters.get(c as usize);
        let cs = cl.map_or(&[][..], |c| self.child_clusters(c));
        let ns = cl.map_or(&[][..], |c| self.child_nodes(c));
        cs.iter()
            .map(|&c| Item::Cluster(c))
            .chain(ns.iter().map(|&n| Item::Node(n)))
    }

    /// `c` and its ancestors up to the root.
    pub fn ancestors(&self, c: ClusterId) -> impl Iterator<Item = ClusterId> + '_ {
        std::iter::successors(self.clusters.get(c as usize).map(|_| c), move |&x| {
            self.clusters.get(x as usize).and_then(|cl| cl.parent)
        })
    }

    /// The original edge ids an aggregate stands for.
    pub fn agg_edge_ids(&self, agg: &AggEdge) -> &[u32] {
        self.edge_ids
            .get(agg.edges.start as usize..agg.edges.end as usize)
            .unwrap_or(&[])
    }

    /// Computes every cluster's aggregated edges ([`ClusterTree::sibling_edges`]) from the original edges (see the module notes).
    pub fn aggregate_edges(&mut self, edges: &[(u32, u32)]) {
        let n = self.node_cluster.len();
        self.self_loops = edges.iter().filter(|(u, v)| u == v).count() as u32;
        for c in &mut self.clusters {
            c.siblings = Span::default();
        }
        self.aggs = Vec::new();
        self.edge_ids = Vec::new();
        // Items are sorted as 31-bit ids with a flag bit; a graph that large would not fit in
        // memory anyway, but it must not alias ids.
        if n >= 1 << 31 || self.clusters.len() >= 1 << 31 || edges.len() > u32::MAX as usize {
            log::warn!("cluster tree: too many nodes or edges to aggregate edges");
            return;
        }
        let node_cluster = &self.node_cluster;
        // (depth, parent) per cluster, 8 bytes each: the walks below touch these, not the
        // 136-byte clusters (a model's tree fits in L2 this way).
        let up: Vec<(u32, u32)> = self
            .clusters
            .iter()
            .map(|c| (c.depth, c.parent.unwrap_or(0)))
            .collect();
        let depth = |c: u32| up.get(c as usize).map_or(0, |x| x.0);
        let parent = |c: u32| up.get(c as usize).map_or(0, |x| x.1);
        // (cluster, a, b, edge id) packed in 16 bytes, sorted as a pair of u64: 20 M edges sort in
        // 320 MB where a (u32, u64, u64, u32) tuple took 640 MB at the layout's memory peak.
        let mut entries: Vec<(u64, u64)> = edges
            .par_iter()
            .enumerate()
            .filter_map(|(id, &(u, v))| {
                if u == v || u as usize >= n || v as usize >= n {
                    return None;
                }
                let (mut cu, mut cv) = (node_cluster[u as usize], node_cluster[v as usize]);
                let (mut a, mut b) = (Item::Node(u), Item::Node(v));
                while cu != cv {
                    if depth(cu) >= depth(cv) {
                        a = Item::Cluster(cu);
                        cu = parent(cu);
                    } else {
                        b = Item::Cluster(cv);
                        cv = parent(cv);
                    }
                }
                Some((
                    u64::from(cu) << 32 | u64::from(a.key32()),
                    u64::from(b.key32()) << 32 | id as u64,
                ))
            })
            .collect();
        entries.par_sort_unstable();
        self.edge_ids = entries.iter().map(|e| e.1 as u32).collect();
        // One aggregate per run of equal (cluster, a, b); the runs of one cluster are adjacent.
        let same = |x: (u64, u64), y: (u64, u64)| x.0 == y.0 && x.1 >> 32 == y.1 >> 32;
        let runs = entries
            .iter()
            .enumerate()
            .filter(|&(k, &e)| k == 0 || !same(entries[k - 1], e))
            .count();
        let mut aggs: Vec<AggEdge> = Vec::with_capacity(runs);
        let mut i = 0usize;
        while i < entries.len() {
            let e = entries[i];
            let mut j = i + 1;
            while j < entries.len() && same(entries[j], e) {
                j += 1;
            }
            let l = (e.0 >> 32) as u32;
            if let Some(c) = self.clusters.get_mut(l as usize) {
                if c.siblings.len == 0 {
                    c.siblings.start = aggs.len() as u32;
                }
                c.siblings.len += 1;
                aggs.push(AggEdge {
                    a: Item::from_key32(e.0 as u32),
                    b: Item::from_key32((e.1 >> 32) as u32),
                    count: (j - i) as u32,
                    weight: (j - i) as f32,
                    edges: i as u32..j as u32,
                });
            }
            i = j;
        }
        self.aggs = aggs;
    }

    /// Fills every cluster's box as the union of its nodes' rectangles.
    pub fn fill_bboxes(&mut self, node_rect: impl Fn(NodeId) -> Rect) {
        self.fill_bboxes_with(node_rect, |_| Rect::EMPTY);
    }

    /// Like [`ClusterTree::fill_bboxes`], also holding each cluster's own rectangle `own(cluster)`
    /// (e.g. the padded box of the group it stands for), within the same bottom-up sweep so parents
    /// contain their children's final boxes.
    pub fn fill_bboxes_with(
        &mut self,
        node_rect: impl Fn(NodeId) -> Rect,
        own: impl Fn(&Cluster) -> Rect,
    ) {
        let (clusters, child_ids, node_ids) = (&mut self.clusters, &self.child_ids, &self.node_ids);
        for c in (0..clusters.len()).rev() {
            let mut r = own(&clusters[c]);
            for &v in clusters[c].nodes.of(node_ids) {
                r = r.union(&node_rect(v));
            }
            for &k in clusters[c].children.of(child_ids) {
                if let Some(ch) = clusters.get(k as usize) {
                    r = r.union(&ch.bbox);
                }
            }
            clusters[c].bbox = r;
        }
    }

    /// Fills parameter counts from per-node counts (missing entries count 0).
    pub fn fill_params(&mut self, node_params: &[u64]) {
        let (clusters, child_ids, node_ids) = (&mut self.clusters, &self.child_ids, &self.node_ids);
        for c in (0..clusters.len()).rev() {
            let mut p: u64 = clusters[c]
                .nodes
                .of(node_ids)
                .iter()
                .map(|&v| node_params.get(v as usize).copied().unwrap_or(0))
                .sum();
            for &k in clusters[c].children.of(child_ids) {
                p += clusters.get(k as usize).map_or(0, |x| x.param_count);
            }
            clusters[c].param_count = p;
        }
    }

    /// Fills [`Cluster::dominant_op`]: the op with most weight among direct nodes (1 each) and child
    /// clusters (their dominant op, weighted by the votes it won); ties go to the smaller name.
    /// Nodes whose op is "" are not counted. See [`ClusterTree::fill_dominant_ops_by`].
    pub fn fill_dominant_ops<'a>(&mut self, op_of: impl Fn(NodeId) -> &'a str) {
        self.fill_dominant_ops_by(|v| (op_of(v), true));
    }

    /// [`ClusterTree::fill_dominant_ops`] with two tiers: `op_of(v)` gives a node's op and whether
    /// it votes. Ops that do not vote (shape arithmetic, data movement) decide only a cluster where
    /// nothing votes, so a block of MatMuls fed by Gathers of shapes is a MatMul block, and a group
    /// of nothing but shape arithmetic is still named by its ops rather than left without one. A
    /// child decided by the second tier counts in its parent's second tier.
    /// Op names are interned once (a million clusters share the few distinct op strings) and
    /// counted by index.
    pub fn fill_dominant_ops_by<'a>(&mut self, op_of: impl Fn(NodeId) -> (&'a str, bool)) {
        let mut ids: rustc_hash::FxHashMap<&'a str, u32> = rustc_hash::FxHashMap::default();
        // Loaders share one string per op name, so most look-ups hit by address first (hashing
        // a pointer, not the text).
        let mut by_addr: rustc_hash::FxHashMap<(usize, usize), u32> =
            rustc_hash::FxHashMap::default();
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut intern = |op: &'a str| -> u32 {
            let addr = (op.as_ptr() as usize, op.len());
            if let Some(&id) = by_addr.get(&addr) {
                return id;
            }
            let id = *ids.entry(op).or_insert_with(|| {
                names.push(Arc::from(op));
                names.len() as u32 - 1
            });
            by_addr.insert(addr, id);
            id
        };
        let node_op: Vec<(u32, bool)> = (0..self.node_cluster.len() as u32)
            .map(|v| {
                let (op, votes) = op_of(v);
                (intern(op), votes)
            })
            .collect();
        let none = intern("");
        let mut dominant = vec![none; self.clusters.len()];
        // The votes the winner got in each cluster: what a child adds to its parent's tally (its
        // member count would also count members that do not vote); and whether it won in the
        // second tier.
        let mut won = vec![0u64; self.clusters.len()];
        let mut second = vec![false; self.clusters.len()];
        // Tier 0 votes, tier 1 the fallback.
        let mut counts: [Vec<u64>; 2] = [vec![0; names.len()], vec![0; names.len()]];
        let mut touched: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
        for c in (0..self.clusters.len()).rev() {
            let cl = &self.clusters[c];
            let mut add = |tier: usize, op: u32, w: u64| {
                if let Some(n) = counts[tier].get_mut(op as usize) {
                    if *n == 0 {
                        touched[tier].push(op);
                    }
                    *n += w;
                }
            };
            // Nodes without an op name (`op_of` gives "" for what should not count) do not vote.
            for &v in self.child_nodes(cl) {
                let (op, votes) = node_op.get(v as usize).copied().unwrap_or((none, false));
                if op != none {
                    add(usize::from(!votes), op, 1);
                }
            }
            for &k in self.child_clusters(cl) {
                if let (Some(&op), Some(&w), Some(&sec)) = (
                    dominant.get(k as usize),
                    won.get(k as usize),
                    second.get(k as usize),
                ) && op != none
                {
                    add(usize::from(sec), op, w);
                }
            }
            // Most weight wins; ties go to the smaller name. The fallback only where none voted.
            let tier = usize::from(touched[0].is_empty());
            let mut best: Option<(u64, u32)> = None;
            for &op in &touched[tier] {
                let n = counts[tier][op as usize];
                best = match best {
                    Some((bn, bop))
                        if bn > n || (bn == n && names[bop as usize] <= names[op as usize]) =>
                    {
                        Some((bn, bop))
                    }
                    _ => Some((n, op)),
                };
            }
            for t in 0..2 {
                for &op in &touched[t] {
                    counts[t][op as usize] = 0;
                }
                touched[t].clear();
            }
            dominant[c] = best.map_or(none, |b| b.1);
            won[c] = best.map_or(0, |b| b.0);
            second[c] = tier == 1;
        }
        for (cl, &op) in self.clusters.iter_mut().zip(&dominant) {
            cl.dominant_op = names[op as usize].clone();
        }
    }

    /// Splits every cluster with more than `max_children` direct children into computed sub-clusters
    /// by sort-tile-recursive packing of the children's centres (nodes: `node_center`; clusters: the
    /// centre of their box, so call [`ClusterTree::fill_bboxes`] first), so the LOD cut never has to
    /// open 50 000 items at once. New clusters have no group and a label `"parent (k/n)"`. Returns a
    /// rebuilt tree (boxes and aggregates must be filled again), or `self` as it is when no cluster
    /// is that wide. Takes the tree by value so that the old one is freed before the new one is
    /// built: a million-cluster tree is ~150 MB.
    pub fn split_wide(
        self,
        max_children: usize,
        node_center: impl Fn(NodeId) -> DVec2,
    ) -> ClusterTree {
        let max_children = max_children.max(2);
        if !self.clusters.iter().any(|c| c.child_count() > max_children) {
            return self;
        }
        let mut specs: Vec<ClusterSpec> = self
            .clusters
            .iter()
            .map(|c| ClusterSpec {
                parent: c.parent,
                label: c.label.clone(),
                group: c.group,
            })
            .collect();
        let mut node_spec = self.node_cluster.clone();
        for (ci, c) in self.clusters.iter().enumerate() {
            if c.child_count() <= max_children {
                continue;
            }
            let mut items: Vec<(Item, DVec2)> = self
                .child_clusters(c)
                .iter()
                .map(|&k| {
                    let b = self
                        .clusters
                        .get(k as usize)
                        .map_or(Rect::EMPTY, |x| x.bbox);
                    (
                        Item::Cluster(k),
                        if b.is_empty() {
                            DVec2::ZERO
                        } else {
                            b.center()
                        },
                    )
                })
                .chain(
                    self.child_nodes(c)
                        .iter()
                        .map(|&v| (Item::Node(v), node_center(v))),
                )
                .collect();
            tile(
                &mut items,
                ci as u32,
                &c.label,
                max_children,
                &mut specs,
                &mut node_spec,
            );
        }
        let self_loops = self.self_loops;
        drop(self);
        let mut tree = ClusterTree::build(specs, &node_spec);
        tree.self_loops = self_loops;
        tree
    }
}

/// Counting sort of ids `0..owners.len()` (plus `first`) by owner: returns the ids grouped by owner,
/// in increasing order within each group, and sets each owner's run through `span`.
fn group_by_owner(
    clusters: &mut [Cluster],
    span: impl Fn(&mut Cluster) -> &mut Span,
    owners: &[ClusterId],
    first: u32,
) -> Vec<u32> {
    for c in clusters.iter_mut() {
        *span(c) = Span::default();
    }
    for &o in owners {
        if let Some(c) = clusters.get_mut(o as usize) {
            span(c).len += 1;
        }
    }
    let mut next = 0u32;
    for c in clusters.iter_mut() {
        let s = span(c);
        s.start = next;
        next += s.len;
    }
    let mut out = vec![0u32; next as usize];
    let mut fill: Vec<u32> = clusters.iter_mut().map(|c| span(c).start).collect();
    for (i, &o) in owners.iter().enumerate() {
        if let Some(f) = fill.get_mut(o as usize) {
            if let Some(slot) = out.get_mut(*f as usize) {
                *slot = i as u32 + first;
            }
            *f += 1;
        }
    }
    out
}

/// Sort-tile-recursive grouping of `items` under spec `parent` (see [`ClusterTree::split_wide`]).
fn tile(
    items: &mut [(Item, DVec2)],
    parent: u32,
    label: &str,
    max: usize,
    specs: &mut Vec<ClusterSpec>,
    node_spec: &mut [u32],
) {
    if items.len() <= max {
        for (it, _) in items.iter() {
            match *it {
                Item::Node(v) => {
                    if let Some(s) = node_spec.get_mut(v as usize) {
                        *s = parent;
                    }
                }
                Item::Cluster(k) => {
                    if let Some(s) = specs.get_mut(k as usize) {
                        s.parent = Some(parent);
                    }
                }
            }
        }
        return;
    }
    let tiles = items.len().div_ceil(max).min(max);
    // Slabs across the drawing's shorter side, so tiles come out about square: a tall column of
    // layers (a flat model graph) is cut into bands, not into narrow strips each running its whole
    // height (one strip of the weights beside the chain, one of the chain).
    let (lo, hi) = items.iter().fold(
        (DVec2::splat(f64::INFINITY), DVec2::splat(f64::NEG_INFINITY)),
        |(lo, hi), (_, p)| (lo.min(*p), hi.max(*p)),
    );
    let extent = (hi - lo).max(DVec2::splat(1e-9));
    let aspect = (extent.x / extent.y).clamp(1e-6, 1e6);
    let slabs = ((tiles as f64 * aspect).sqrt().round() as usize).clamp(1, tiles);
    let per_slab = items.len().div_ceil(slabs);
    items.sort_by(|a, b| a.1.x.total_cmp(&b.1.x).then(a.0.cmp(&b.0)));
    let mut k = 0usize;
    for slab in items.chunks_mut(per_slab.max(1)) {
        slab.sort_by(|a, b| a.1.y.total_cmp(&b.1.y).then(a.0.cmp(&b.0)));
        // Whole tiles per slab (rounded down): slabs × tiles per slab stays within `max`.
        let per_tile = slab.len().div_ceil((tiles / slabs).max(1)).max(1);
        for t in slab.chunks_mut(per_tile) {
            k += 1;
            let id = specs.len() as u32;
            specs.push(ClusterSpec {
                parent: Some(parent),
                label: if label.is_empty() {
                    String::new()
                } else {
                    format!("{label} ({k})")
                },
                group: None,
            });
            tile(t, id, label, max, specs, node_spec);
        }
    }
}

/// Breadth-first order of specs from 0 by the parent function; specs not reached (bad parents,
/// cycles) are appended as if children of the root.
fn bfs_order(s: usize, parent_of: &dyn Fn(usize) -> usize) -> Vec<usize> {
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); s];
    for i in 1..s {
        kids[parent_of(i)].push(i);
    }
    let mut seen = vec![false; s];
    let mut order = Vec::with_capacity(s);
    let queue_from = |start: usize, order: &mut Vec<usize>, seen: &mut Vec<bool>| {
        let mut head = order.len();
        seen[start] = true;
        order.push(start);
        while head < order.len() {
            let v = order[head];
            head += 1;
            for &w in &kids[v] {
                if !seen[w] {
                    seen[w] = true;
                    order.push(w);
                }
            }
        }
    };
    queue_from(0, &mut order, &mut seen);
    for i in 1..s {
        if !seen[i] {
            queue_from(i, &mut order, &mut seen);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(parent: Option<u32>) -> ClusterSpec {
        ClusterSpec {
            parent,
            label: String::new(),
            group: None,
        }
    }

    #[test]
    fn build_prunes_empty_and_counts_members() {
        // 0 root; 1 under 0; 2 under 1; 3 empty under 0.
        let specs = vec![spec(None), spec(Some(0)), spec(Some(1)), spec(Some(0))];
        let t = ClusterTree::build(specs, &[2, 2, 1, 0]);
        assert_eq!(t.clusters.len(), 3);
        assert_eq!(t.clusters[0].member_count, 4);
        assert_eq!(t.clusters[1].member_count, 3);
        assert_eq!(t.clusters[2].member_count, 2);
        assert_eq!(t.clusters[2].depth, 2);
        assert_eq!(t.ancestors(2).collect::<Vec<_>>(), vec![2, 1, 0]);
        assert_eq!(
            t.children(1).collect::<Vec<_>>(),
            vec![Item::Cluster(2), Item::Node(2)]
        );
    }

    #[test]
    fn every_edge_in_exactly_one_aggregate() {
        let specs = vec![spec(None), spec(Some(0)), spec(Some(0)), spec(Some(1))];
        let node_c = [3, 3, 1, 2, 0];
        let mut t = ClusterTree::build(specs, &node_c);
        let edges = [(0, 1), (0, 2), (1, 3), (3, 4), (2, 2), (4, 0), (0, 3)];
        t.aggregate_edges(&edges);
        let mut seen = vec![0; edges.len()];
        for c in &t.clusters {
            for a in t.sibling_edges(c) {
                for &e in t.agg_edge_ids(a) {
                    seen[e as usize] += 1;
                }
            }
        }
        assert_eq!(seen, vec![1, 1, 1, 1, 0, 1, 1]);
        assert_eq!(t.self_loops, 1);
        // 1→3 and 0→3 both run from cluster(1) to cluster(2) at the root: one aggregate of 2.
        let root = &t.clusters[0];
        let agg = t
            .sibling_edges(root)
            .iter()
            .find(|a| matches!((a.a, a.b), (Item::Cluster(_), Item::Cluster(_))))
            .unwrap();
        assert_eq!(agg.count, 2);
    }

    #[test]
    fn levels_splice_single_children() {
        // 4 nodes: level1 {0,1}->0, {2}->1, {3}->2 ; level2: {0,1}->0, {2}->1.
        let maps = vec![vec![0, 0, 1, 2], vec![0, 0, 1]];
        let t = ClusterTree::from_levels(4, &maps);
        assert_eq!(t.clusters[0].member_count, 4);
        // node 3 alone all the way up: hangs directly under the root.
        assert_eq!(t.node_cluster[3], 0);
        for c in &t.clusters[1..] {
            assert!(c.child_count() >= 2);
        }
    }

    #[test]
    fn split_wide_bounds_children() {
        let n = 5000;
        let specs = vec![spec(None)];
        let mut t = ClusterTree::build(specs, &vec![0; n]);
        let pos = |v: u32| DVec2::new((v % 100) as f64, (v / 100) as f64);
        t.fill_bboxes(|v| Rect::from_center_size(pos(v), DVec2::ONE));
        let t = t.split_wide(64, pos);
        assert_eq!(t.clusters[0].member_count, n as u64);
        for c in &t.clusters {
            assert!(c.child_count() <= 64);
        }
        let total: usize = t.clusters.iter().map(|c| t.child_nodes(c).len()).sum();
        assert_eq!(total, n);
    }

    #[test]
    fn a_tall_column_splits_into_bands() {
        // A flat model graph drawn as layers: 4 wide, 1 000 tall. Tiles must be bands across the
        // column, not strips running its whole height (a strip of weights beside a strip of ops).
        let n = 4000;
        let mut t = ClusterTree::build(vec![spec(None)], &vec![0; n]);
        let pos = |v: u32| DVec2::new((v % 4) as f64 * 10.0, (v / 4) as f64 * 10.0);
        t.fill_bboxes(|v| Rect::from_center_size(pos(v), DVec2::ONE));
        let mut t = t.split_wide(64, pos);
        t.fill_bboxes(|v| Rect::from_center_size(pos(v), DVec2::ONE));
        let root = &t.clusters[0];
        assert!(t.child_clusters(root).len() >= 8);
        for &c in t.child_clusters(root) {
            let b = t.clusters[c as usize].bbox.size();
            assert!(b.x > 30.0, "a band spans the column: {b}");
            assert!(b.y < 10_000.0 / 8.0, "and a slice of its height: {b}");
        }
    }
}
