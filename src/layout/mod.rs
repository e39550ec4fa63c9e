//! Positions for every node, edge and group, and the cluster tree the LOD cut walks.
//!
//! Two layouts share one output type, [`Layout`]:
//! - [`dataflow()`]: layered, top to bottom, hierarchical by the module tree (each group is a box
//!   laid out from its children bottom-up, sibling groups in parallel; per-group results are cached
//!   so expanding one group recomputes only its ancestors);
//! - [`force()`]: multilevel spring-electrical with Barnes–Hut repulsion (sfdp style), whose
//!   coarsening levels are also its cluster tree.
//!
//! Both are pure functions of their input and seed, run on the calling rayon pool, report progress
//! and honour cancellation through [`Progress`]. Rejected: one layout with a "mode" flag (the two
//! share almost nothing but output), and laying out on the UI thread incrementally (the app runs
//! these as background jobs).

mod dataflow;
mod force;
pub mod metrics;
pub mod quadtree;

pub use dataflow::{DataflowCache, DataflowOptions, dataflow, dataflow_cached};
pub use force::{ForceOptions, ForceSim, LevelSnapshot, force, force_with_levels};
pub use metrics::{Metrics, MetricsOptions, measure};

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use glam::{DVec2, Vec2};

use crate::graph::GraphError;
pub use crate::graph::{AggEdge, Cluster, ClusterId, ClusterTree, Item};
use crate::model::NodeId;
use crate::view::Rect;

/// Errors from layout.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The caller cancelled through [`Progress::cancel`].
    #[error("layout cancelled")]
    Cancelled,
    /// The graph is malformed (an edge names a missing node, too many nodes).
    #[error("layout: {0}")]
    Graph(#[from] GraphError),
}

/// Which algorithm produced a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutKind {
    /// Layered, top to bottom.
    Dataflow,
    /// Force-directed.
    Force,
}

/// A node's box in world units (y grows down). A node hidden inside a collapsed group sits at the
/// group box's centre with a zero `half_size`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeBox {
    /// Centre.
    pub center: DVec2,
    /// Half width and half height.
    pub half_size: Vec2,
}

impl NodeBox {
    /// The box as a rectangle.
    pub fn rect(&self) -> Rect {
        Rect::from_center_size(self.center, self.half_size.as_dvec2() * 2.0)
    }

    /// Whether the node is drawn (not hidden inside a collapsed group).
    pub fn is_visible(&self) -> bool {
        self.half_size.x > 0.0 && self.half_size.y > 0.0
    }
}

/// How an edge is drawn: from `from` through the waypoints to `to`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EdgeRoute {
    /// Start point (dataflow: bottom centre of the producer's visible box).
    pub from: DVec2,
    /// End point (dataflow: top centre of the consumer's visible box).
    pub to: DVec2,
    /// First waypoint in [`Layout::route_points`].
    pub points_start: u32,
    /// Number of waypoints (dummy nodes of a long edge, two for a dummy beside a tall box; a bundle
    /// from one producer shares them).
    pub points_len: u32,
    /// Draw as a vertical S-curve through the points (dataflow) rather than straight (force).
    pub curve: bool,
    /// The edge was reversed to break a cycle: it runs upward.
    pub reversed: bool,
    /// Not drawn: a self-loop, or both ends hidden in the same collapsed group.
    pub hidden: bool,
}

/// How a layout keeps its edge routes.
#[derive(Clone, Debug)]
pub enum Routes {
    /// One route per edge (dataflow: ports on the boxes, waypoints, curves).
    Full(Vec<EdgeRoute>),
    /// Straight lines between node centres (force): only the two node ids are kept, 8 bytes an
    /// edge instead of a 48-byte route (nearly a gigabyte at 20 M edges); [`Layout::route`] derives
    /// the rest from the node boxes.
    Straight(Vec<[NodeId; 2]>),
}

impl Routes {
    /// Number of edges.
    pub fn len(&self) -> usize {
        match self {
            Routes::Full(v) => v.len(),
            Routes::Straight(v) => v.len(),
        }
    }

    /// Whether there are no edges.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Routes::Full(v) => v.capacity() * std::mem::size_of::<EdgeRoute>(),
            Routes::Straight(v) => v.capacity() * 8,
        }
    }
}

/// The result of a layout.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Which algorithm.
    pub kind: LayoutKind,
    /// One per graph node, same index.
    pub nodes: Vec<NodeBox>,
    /// One per graph edge, same index ([`Layout::route`]).
    pub edges: Routes,
    /// Waypoints of all edges ([`EdgeRoute::points_start`]).
    pub route_points: Vec<DVec2>,
    /// Dataflow: per hierarchy group, its box (`Rect::EMPTY` when empty or hidden); force: empty.
    pub groups: Vec<Rect>,
    /// Dataflow: which groups are drawn collapsed (one box); force: empty.
    pub collapsed: Vec<bool>,
    /// The LOD tree.
    pub clusters: ClusterTree,
    /// Bounds of everything, world units.
    pub bounds: Rect,
    /// Things the user should know ("3 cycles broken for layering").
    pub warnings: Vec<String>,
}

impl Layout {
    /// The route of edge `e` (`None` out of range).
    pub fn route(&self, e: usize) -> Option<EdgeRoute> {
        match &self.edges {
            Routes::Full(v) => v.get(e).copied(),
            Routes::Straight(v) => {
                let [a, b] = *v.get(e)?;
                let center =
                    |n: NodeId| self.nodes.get(n as usize).map_or(DVec2::ZERO, |x| x.center);
                Some(EdgeRoute {
                    from: center(a),
                    to: center(b),
                    points_start: 0,
                    points_len: 0,
                    curve: false,
                    reversed: false,
                    hidden: a == b,
                })
            }
        }
    }

    /// Every edge's route, in edge order.
    pub fn routes(&self) -> impl Iterator<Item = EdgeRoute> + '_ {
        (0..self.edges.len()).filter_map(|e| self.route(e))
    }

    /// The waypoints of edge `e`.
    pub fn waypoints(&self, e: usize) -> &[DVec2] {
        let Routes::Full(v) = &self.edges else {
            return &[];
        };
        match v.get(e) {
            Some(r) => {
                let a = r.points_start as usize;
                self.route_points
                    .get(a..a + r.points_len as usize)
                    .unwrap_or(&[])
            }
            None => &[],
        }
    }

    /// The box of a cluster-tree item (empty for an unknown id).
    pub fn item_bbox(&self, item: Item) -> Rect {
        item_bbox(item, self)
    }
}

/// The box of a cluster-tree item: a node's rectangle or a cluster's box.
pub fn item_bbox(item: Item, layout: &Layout) -> Rect {
    match item {
        Item::Node(n) => layout
            .nodes
            .get(n as usize)
            .map_or(Rect::EMPTY, NodeBox::rect),
        Item::Cluster(c) => layout
            .clusters
            .clusters
            .get(c as usize)
            .map_or(Rect::EMPTY, |c| c.bbox),
    }
}

/// Shared progress of a running layout: a fraction, a stage text and a cancel flag. Cheap to poll
/// from the UI; the layout checks the flag inside its loops.
#[derive(Debug, Default)]
pub struct Progress {
    fraction: AtomicU32,
    stage: Mutex<String>,
    cancelled: AtomicBool,
}

impl Progress {
    /// A new shared progress.
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    /// Sets stage text and fraction (0..=1).
    pub fn set(&self, stage: &str, fraction: f32) {
        if let Ok(mut s) = self.stage.lock()
            && *s != stage
        {
            s.clear();
            s.push_str(stage);
        }
        self.set_fraction(fraction);
    }

    /// Sets the fraction only.
    pub fn set_fraction(&self, fraction: f32) {
        self.fraction
            .store(fraction.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }

    /// Fraction done, 0..=1.
    pub fn fraction(&self) -> f32 {
        f32::from_bits(self.fraction.load(Ordering::Relaxed))
    }

    /// The current stage text.
    pub fn stage(&self) -> String {
        self.stage.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Asks the layout to stop; it returns [`LayoutError::Cancelled`] soon after.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`Progress::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled.
    pub fn check(&self) -> Result<(), LayoutError> {
        if self.is_cancelled() {
            Err(LayoutError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Default node size for a label of `chars` characters: labels are ~12 world units high at zoom 1
/// (~7 units a character), boxes 28 high with 12 units of padding each side, at least 60 wide.
pub fn node_size_for_label(chars: usize) -> Vec2 {
    let w = (chars.min(48) as f32 * 7.0 + 24.0).max(60.0);
    Vec2::new(w, 28.0)
}
