//! The matrix view: the op graph's adjacency matrix (of the whole model or of one cluster), rows and
//! columns in the layout's cluster order, binned down to at most [`MAX_CELLS`]² cells and drawn as a
//! heatmap coloured by log edge count.
//!
//! How it works: [`cluster_order`] walks the layout's cluster tree depth first, so every cluster's
//! nodes occupy one contiguous run of positions and a block of the model shows as a square on the
//! diagonal. Siblings are visited in layout order (top to bottom, then left to right), which for the
//! dataflow layout is roughly topological: most edges land just above the diagonal. [`Matrix::build`]
//! maps each position to a cell (`pos · cells / n`) and counts every edge whose two ends lie in the
//! scope: one pass over the edges, O(N + E), built on a background job when the matrix opens or the
//! scope or layout changes. Looking up what a cell covers ([`Matrix::cell_info`]) walks the row
//! node's cluster chain, so it costs the tree depth; finding one real edge of a cell for a click
//! ([`Matrix::edge_in_cell`]) scans the edges once.
//!
//! Rejected: a sparse list of edges drawn as points (a 1 M-node model has more edges than pixels;
//! binning makes the picture cost the same at any size), an N×N texture through the heatmap tile
//! pyramid (N² memory before binning), and ordering by node id (loader order scatters groups, so
//! blocks do not show).

use std::ops::Range;

use crate::graph::{ClusterId, ClusterTree, Item};
use crate::layout::Layout;
use crate::model::{Model, NodeId};

/// Largest matrix side in cells.
pub const MAX_CELLS: usize = 512;

const NOT_IN_SCOPE: u32 = u32::MAX;

/// One cluster's run of positions in a [`MatrixOrder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// The cluster.
    pub cluster: ClusterId,
    /// First position.
    pub start: u32,
    /// One past the last position.
    pub end: u32,
    /// Depth below the scope cluster (its children are 1).
    pub depth: u32,
}

/// The nodes of a scope in cluster order.
#[derive(Clone, Debug, Default)]
pub struct MatrixOrder {
    /// The cluster whose nodes are ordered (0: the whole model).
    pub scope: ClusterId,
    /// Position → node.
    pub nodes: Vec<NodeId>,
    /// Node → position (`u32::MAX` outside the scope).
    pos_of: Vec<u32>,
    /// Every cluster below the scope, in depth-first (pre-)order.
    pub spans: Vec<Span>,
    /// Cluster → index in `spans` (`u32::MAX` outside the scope).
    span_of: Vec<u32>,
}

impl MatrixOrder {
    /// Position of `node`, when it lies in the scope.
    pub fn position(&self, node: NodeId) -> Option<u32> {
        self.pos_of
            .get(node as usize)
            .copied()
            .filter(|&p| p != NOT_IN_SCOPE)
    }

    /// The run of positions of cluster `c`, when it lies below the scope (the scope itself spans
    /// everything).
    pub fn span(&self, c: ClusterId) -> Option<Span> {
        if c == self.scope {
            return Some(Span {
                cluster: c,
                start: 0,
                end: self.nodes.len() as u32,
                depth: 0,
            });
        }
        let i = *self.span_of.get(c as usize)?;
        self.spans.get(i as usize).copied()
    }
}

/// Orders the nodes below cluster `scope` of `layout`'s cluster tree depth first, siblings by their
/// layout position (top to bottom, then left to right). An unknown scope gives an empty order.
pub fn cluster_order(layout: &Layout, scope: ClusterId) -> MatrixOrder {
    let tree: &ClusterTree = &layout.clusters;
    let n_nodes = tree.node_cluster.len();
    let mut out = MatrixOrder {
        scope,
        nodes: Vec::new(),
        pos_of: vec![NOT_IN_SCOPE; n_nodes],
        spans: Vec::new(),
        span_of: vec![NOT_IN_SCOPE; tree.clusters.len()],
    };
    let Some(root) = tree.clusters.get(scope as usize) else {
        return out;
    };
    let root_depth = root.depth;
    let key = |item: Item| {
        let r = layout.item_bbox(item);
        if r.is_empty() {
            (f64::INFINITY, f64::INFINITY)
        } else {
            (r.min.y, r.min.x)
        }
    };
    let sorted_children = |c: ClusterId| {
        let mut items: Vec<(Item, (f64, f64))> = tree.children(c).map(|it| (it, key(it))).collect();
        items.sort_by(|a, b| {
            a.1.0
                .total_cmp(&b.1.0)
                .then(a.1.1.total_cmp(&b.1.1))
                .then(a.0.cmp(&b.0))
        });
        items.into_iter().map(|(it, _)| it)
    };
    // Stack entries: an item to visit, or the end of a cluster's span.
    enum Step {
        Visit(Item),
        Close(u32),
    }
    let mut stack: Vec<Step> = sorted_children(scope).rev().map(Step::Visit).collect();
    while let Some(step) = stack.pop() {
        match step {
            Step::Visit(Item::Node(n)) => {
                let Some(slot) = out.pos_of.get_mut(n as usize) else {
                    continue;
                };
                if *slot != NOT_IN_SCOPE {
                    continue; // a malformed tree listing a node twice
                }
                *slot = out.nodes.len() as u32;
                out.nodes.push(n);
            }
            Step::Visit(Item::Cluster(c)) => {
                let (Some(cl), Some(slot)) = (
                    tree.clusters.get(c as usize),
                    out.span_of.get_mut(c as usize),
                ) else {
                    continue;
                };
                if *slot != NOT_IN_SCOPE {
                    continue;
                }
                *slot = out.spans.len() as u32;
                let start = out.nodes.len() as u32;
                out.spans.push(Span {
                    cluster: c,
                    start,
                    end: start,
                    depth: cl.depth.saturating_sub(root_depth),
                });
                stack.push(Step::Close(*slot));
                stack.extend(sorted_children(c).rev().map(Step::Visit));
            }
            Step::Close(i) => {
                let end = out.nodes.len() as u32;
                if let Some(s) = out.spans.get_mut(i as usize) {
                    s.end = end;
                }
            }
        }
    }
    out
}

/// What one cell covers, for the hover text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellInfo {
    /// Row positions (producers).
    pub rows: Range<u32>,
    /// Column positions (consumers).
    pub cols: Range<u32>,
    /// Edges counted in the cell.
    pub count: u32,
    /// The rows' node, or a description of the range.
    pub row_label: String,
    /// The columns' node, or a description of the range.
    pub col_label: String,
}

/// The binned adjacency matrix of one scope.
#[derive(Clone, Debug, Default)]
pub struct Matrix {
    /// Row and column order.
    pub order: MatrixOrder,
    /// Cells per side (≤ [`MAX_CELLS`]; the node count when smaller).
    pub cells: usize,
    /// Edge counts, row-major (`row · cells + col`); rows are producers, columns consumers.
    pub counts: Vec<u32>,
    /// The largest count.
    pub max: u32,
    /// Edges counted (both ends in the scope).
    pub edges: u64,
}

impl Matrix {
    /// Bins `model`'s edges into at most `max_cells`² cells over `order`.
    pub fn build(model: &Model, order: MatrixOrder, max_cells: usize) -> Matrix {
        let n = order.nodes.len();
        let cells = n.min(max_cells.max(1));
        let mut counts = vec![0u32; cells * cells];
        let mut edges = 0u64;
        let mut m = Matrix {
            order,
            cells,
            counts: Vec::new(),
            max: 0,
            edges: 0,
        };
        for e in &model.graph.edges {
            let (Some(a), Some(b)) = (m.order.position(e.from), m.order.position(e.to)) else {
                continue;
            };
            let i = m.cell_of(a) * cells + m.cell_of(b);
            if let Some(c) = counts.get_mut(i) {
                *c = c.saturating_add(1);
                edges += 1;
            }
        }
        m.max = counts.iter().copied().max().unwrap_or(0);
        m.counts = counts;
        m.edges = edges;
        m
    }

    /// Nodes on each side.
    pub fn len(&self) -> usize {
        self.order.nodes.len()
    }

    /// Whether the scope holds no node.
    pub fn is_empty(&self) -> bool {
        self.order.nodes.is_empty()
    }

    /// The cell (row or column index) holding position `pos`.
    pub fn cell_of(&self, pos: u32) -> usize {
        let n = self.len().max(1) as u64;
        ((u64::from(pos) * self.cells as u64 / n) as usize).min(self.cells.saturating_sub(1))
    }

    /// The positions cell `i` covers (empty outside the matrix).
    pub fn cell_range(&self, i: usize) -> Range<u32> {
        if i >= self.cells {
            return 0..0;
        }
        let n = self.len() as u64;
        let c = self.cells as u64;
        let start = (i as u64 * n).div_ceil(c);
        let end = ((i as u64 + 1) * n).div_ceil(c);
        start as u32..end as u32
    }

    /// Edges counted in cell (`row`, `col`).
    pub fn count(&self, row: usize, col: usize) -> u32 {
        if row >= self.cells || col >= self.cells {
            return 0;
        }
        self.counts
            .get(row * self.cells + col)
            .copied()
            .unwrap_or(0)
    }

    /// The cell under a point given as fractions (0..1) of the matrix side, when inside.
    pub fn cell_at(&self, fx: f32, fy: f32) -> Option<(usize, usize)> {
        if !(0.0..1.0).contains(&fx) || !(0.0..1.0).contains(&fy) || self.cells == 0 {
            return None;
        }
        let c = self.cells as f32;
        let col = ((fx * c) as usize).min(self.cells - 1);
        let row = ((fy * c) as usize).min(self.cells - 1);
        Some((row, col))
    }

    /// The non-empty cell nearest to (`row`, `col`) within `radius` cells (the cell itself when it
    /// holds an edge): single cells of a large matrix are a pixel or two wide, too small to hit.
    pub fn nearest_nonempty(
        &self,
        row: usize,
        col: usize,
        radius: usize,
    ) -> Option<(usize, usize)> {
        if row >= self.cells || col >= self.cells {
            return None;
        }
        let mut best: Option<(usize, (usize, usize))> = None;
        let (r0, r1) = (
            row.saturating_sub(radius),
            (row + radius).min(self.cells - 1),
        );
        let (c0, c1) = (
            col.saturating_sub(radius),
            (col + radius).min(self.cells - 1),
        );
        for r in r0..=r1 {
            for c in c0..=c1 {
                if self.count(r, c) == 0 {
                    continue;
                }
                let d = r.abs_diff(row).pow(2) + c.abs_diff(col).pow(2);
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, (r, c)));
                }
            }
        }
        best.map(|(_, cell)| cell)
    }

    /// What cell (`row`, `col`) covers: node names for single positions, the innermost cluster
    /// holding the range otherwise.
    pub fn cell_info(
        &self,
        model: &Model,
        tree: &ClusterTree,
        row: usize,
        col: usize,
    ) -> Option<CellInfo> {
        if row >= self.cells || col >= self.cells {
            return None;
        }
        let rows = self.cell_range(row);
        let cols = self.cell_range(col);
        Some(CellInfo {
            row_label: self.range_label(model, tree, rows.clone()),
            col_label: self.range_label(model, tree, cols.clone()),
            rows,
            cols,
            count: self.count(row, col),
        })
    }

    /// The innermost cluster whose span holds every position of `range` (the scope at worst).
    pub fn enclosing_cluster(&self, tree: &ClusterTree, range: Range<u32>) -> ClusterId {
        let Some(&first) = self.order.nodes.get(range.start as usize) else {
            return self.order.scope;
        };
        let Some(&leaf) = tree.node_cluster.get(first as usize) else {
            return self.order.scope;
        };
        for c in tree.ancestors(leaf) {
            match self.order.span(c) {
                Some(s) if s.start <= range.start && s.end >= range.end => return c,
                _ if c == self.order.scope => break,
                _ => {}
            }
        }
        self.order.scope
    }

    fn range_label(&self, model: &Model, tree: &ClusterTree, range: Range<u32>) -> String {
        let name = |p: u32| {
            self.order
                .nodes
                .get(p as usize)
                .and_then(|&n| model.graph.nodes.get(n as usize))
                .map_or_else(|| "?".to_string(), |n| format!("{} [{}]", n.name, n.op))
        };
        match range.len() {
            0 => String::new(),
            1 => name(range.start),
            k => {
                let c = self.enclosing_cluster(tree, range.clone());
                let label = tree
                    .clusters
                    .get(c as usize)
                    .map_or(std::borrow::Cow::Borrowed(""), |cl| cl.display_label());
                format!(
                    "{k} nodes in {label}: {} … {}",
                    name(range.start),
                    name(range.end - 1)
                )
            }
        }
    }

    /// One edge of the graph counted in cell (`row`, `col`) as (producer, consumer), the first in
    /// edge order (one pass over the edges: for clicks, not for every frame).
    pub fn edge_in_cell(&self, model: &Model, row: usize, col: usize) -> Option<(NodeId, NodeId)> {
        if self.count(row, col) == 0 {
            return None;
        }
        model.graph.edges.iter().find_map(|e| {
            let a = self.order.position(e.from)?;
            let b = self.order.position(e.to)?;
            (self.cell_of(a) == row && self.cell_of(b) == col).then_some((e.from, e.to))
        })
    }

    /// Where cluster boundaries fall, as (fraction of the side, depth below the scope), for clusters
    /// down to `max_depth` that cover at least one whole cell.
    pub fn boundaries(&self, max_depth: u32) -> Vec<(f32, u32)> {
        let n = self.len().max(1) as f32;
        let min_len = (self.len() / self.cells.max(1)).max(1) as u32;
        let mut out: Vec<(f32, u32)> = Vec::new();
        for s in &self.order.spans {
            if s.depth == 0 || s.depth > max_depth || s.end - s.start < min_len {
                continue;
            }
            out.push((s.start as f32 / n, s.depth));
            out.push((s.end as f32 / n, s.depth));
        }
        // One line per place, the shallowest depth winning.
        out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out.dedup_by(|b, a| (a.0 - b.0).abs() < 1e-6);
        out.retain(|&(f, _)| f > 0.0 && f < 1.0);
        out
    }

    /// The picture as RGBA bytes, `cells`² pixels row-major: white for no edge, light to dark blue
    /// by log count.
    pub fn rgba(&self) -> Vec<u8> {
        let top = (1.0 + f64::from(self.max)).ln().max(f64::MIN_POSITIVE);
        let mut out = Vec::with_capacity(self.counts.len() * 4);
        for &c in &self.counts {
            out.extend_from_slice(&count_color(c, top));
        }
        out
    }
}

/// The colour of a count, `top` being ln(1 + the largest count).
fn count_color(c: u32, top: f64) -> [u8; 4] {
    if c == 0 {
        return [250, 250, 252, 255];
    }
    // Even one edge must stand out from empty cells: start the ramp at 0.25.
    let t = 0.25 + 0.75 * ((1.0 + f64::from(c)).ln() / top).clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    [lerp(198.0, 8.0), lerp(219.0, 48.0), lerp(239.0, 107.0), 255]
}

/// Builds the matrix of cluster `scope` (0: the whole model) of a laid-out model: the background
/// job's work.
pub fn build_matrix(model: &Model, layout: &Layout, scope: ClusterId) -> Matrix {
    Matrix::build(model, cluster_order(layout, scope), MAX_CELLS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_nonempty_snaps_within_the_radius() {
        let mut m = Matrix {
            cells: 10,
            counts: vec![0; 100],
            order: MatrixOrder {
                nodes: (0..10).collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        m.counts[3 * 10 + 7] = 2;
        m.counts[5 * 10 + 5] = 1;
        assert_eq!(m.nearest_nonempty(3, 7, 0), Some((3, 7)));
        assert_eq!(m.nearest_nonempty(4, 7, 1), Some((3, 7)));
        assert_eq!(m.nearest_nonempty(5, 6, 2), Some((5, 5)));
        assert_eq!(m.nearest_nonempty(0, 0, 2), None);
        assert_eq!(m.nearest_nonempty(10, 0, 2), None);
    }

    #[test]
    fn colours_darken_with_count() {
        let top = (1.0f64 + 100.0).ln();
        let a = count_color(1, top);
        let b = count_color(100, top);
        assert_eq!(count_color(0, top), [250, 250, 252, 255]);
        assert!(a[0] > b[0] && a[2] > b[2], "{a:?} {b:?}");
        assert_eq!(b, [8, 48, 107, 255]);
    }
}
