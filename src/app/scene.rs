//! The scene seam: where the window gets node positions, picking and each frame's [`DrawList`].
//!
//! Until the layout engine and the LOD cut (`lod::LodState`) are wired in, [`Scene`] places nodes on
//! a plain grid in hierarchy order (so a module's nodes sit together) and builds a flat draw list:
//! every node a box coloured by op, edges of the selection highlighted, labels when they are
//! readable. It is deliberately trivial: it is not a layout engine and is replaced wholesale by
//! `LodState::cut` / `LodState::pick` over a `Layout`; everything else in the app talks to the scene
//! only through [`Scene::bounds`], [`Scene::node_rect`], [`Scene::group_rect`], [`Scene::pick`] and
//! [`Scene::draw_list`].
//!
//! The draw list is rebuilt only when what it shows changes (selection, hover, expansion, or the
//! zoom crossing a label-size step); a pan or zoom alone reuses it, and the renderer re-uploads
//! nothing because the revision is unchanged.

use std::sync::Arc;

use glam::DVec2;

use crate::lod::{Align, DrawList, EdgeItem, LabelItem, NodeItem, NodeShape, Rgba8, flags};
use crate::model::{GroupId, Model, NodeId};
use crate::view::{Camera, Rect};

/// Grid cell size in world units.
const CELL: DVec2 = DVec2::new(200.0, 80.0);
/// Node box half size in world units.
const HALF: DVec2 = DVec2::new(85.0, 24.0);
/// Above this many nodes, labels and the full edge set are not drawn by the placeholder scene.
const DETAIL_LIMIT: usize = 50_000;

/// What the draw list shows besides positions: selection state from the view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SceneInputs {
    /// The selected node.
    pub selected: Option<NodeId>,
    /// The node under the cursor.
    pub hovered: Option<NodeId>,
    /// Inputs and outputs of the selection (drawn highlighted).
    pub highlighted: Vec<NodeId>,
}

/// Positions and the per-frame draw list of one model.
#[derive(Debug)]
pub struct Scene {
    cols: usize,
    /// Node at each grid slot, in hierarchy order.
    order: Vec<NodeId>,
    /// Grid slot of each node.
    slot_of: Vec<u32>,
    bounds: Rect,
    list: Arc<DrawList>,
    built_for: Option<(SceneInputs, i32)>,
    revision: u64,
}

impl Scene {
    /// Places the model's nodes on a grid, hierarchy group by group.
    pub fn grid(model: &Model) -> Self {
        let n = model.graph.nodes.len();
        let mut seen = vec![false; n];
        let mut order: Vec<NodeId> = Vec::with_capacity(n);
        // Depth-first over the group tree; explicit stack (deep hierarchies must not overflow).
        let mut stack: Vec<GroupId> = vec![0];
        while let Some(g) = stack.pop() {
            let Some(group) = model.hierarchy.get(g) else {
                continue;
            };
            for &node in &group.nodes {
                if let Some(s) = seen.get_mut(node as usize)
                    && !*s
                {
                    *s = true;
                    order.push(node);
                }
            }
            stack.extend(group.children.iter().rev());
        }
        for (i, s) in seen.iter().enumerate() {
            if !s {
                order.push(i as NodeId);
            }
        }
        let cols = ((n as f64 * 2.0).sqrt().ceil() as usize).max(1);
        let mut slot_of = vec![0u32; n];
        for (slot, &node) in order.iter().enumerate() {
            if let Some(s) = slot_of.get_mut(node as usize) {
                *s = slot as u32;
            }
        }
        let rows = n.div_ceil(cols).max(1);
        let bounds = if n == 0 {
            Rect::EMPTY
        } else {
            Rect::new(
                -HALF,
                DVec2::new((cols.min(n) - 1) as f64, (rows - 1) as f64) * CELL + HALF,
            )
        };
        Scene {
            cols,
            order,
            slot_of,
            bounds,
            list: Arc::new(DrawList::new(DVec2::ZERO)),
            built_for: None,
            revision: 0,
        }
    }

    /// Bounds of everything, world units.
    pub fn bounds(&self) -> Rect {
        self.bounds
    }

    /// Number of nodes placed.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn slot_center(&self, slot: usize) -> DVec2 {
        DVec2::new((slot % self.cols) as f64, (slot / self.cols) as f64) * CELL
    }

    /// The box of a node, `None` for an unknown id.
    pub fn node_rect(&self, node: NodeId) -> Option<Rect> {
        let slot = *self.slot_of.get(node as usize)? as usize;
        Some(Rect::from_center_size(self.slot_center(slot), HALF * 2.0))
    }

    /// The box around every node of group `g` and its subgroups (empty when it has none).
    pub fn group_rect(&self, model: &Model, g: GroupId) -> Rect {
        let mut r = Rect::EMPTY;
        let mut stack = vec![g];
        while let Some(g) = stack.pop() {
            let Some(group) = model.hierarchy.get(g) else {
                continue;
            };
            for &n in &group.nodes {
                if let Some(b) = self.node_rect(n) {
                    r = r.union(&b);
                }
            }
            stack.extend(group.children.iter().copied());
        }
        r
    }

    /// The node whose box holds the world point, if any.
    pub fn pick(&self, world: DVec2) -> Option<NodeId> {
        let cell = (world / CELL).round();
        if cell.x < 0.0 || cell.y < 0.0 || cell.x >= self.cols as f64 {
            return None;
        }
        let slot = cell.y as usize * self.cols + cell.x as usize;
        let node = *self.order.get(slot)?;
        let d = (world - self.slot_center(slot)).abs();
        (d.x <= HALF.x && d.y <= HALF.y).then_some(node)
    }

    /// The draw list for this frame, rebuilt only when `inputs` or the label-size step of
    /// `camera.zoom` changed since the last call.
    pub fn draw_list(&mut self, model: &Model, inputs: &SceneInputs, camera: &Camera) -> Arc<DrawList> {
        // Labels are drawn at a fixed pixel size, so their size follows the zoom in quarter-octave steps.
        let zoom_step = (camera.zoom.max(1e-12).log2() * 4.0).floor() as i32;
        let key = (inputs.clone(), zoom_step);
        if self.built_for.as_ref() != Some(&key) {
            self.revision += 1;
            let list = self.build(model, inputs, 2f64.powf(f64::from(zoom_step) / 4.0));
            self.list = Arc::new(list);
            self.built_for = Some(key);
        }
        self.list.clone()
    }

    fn build(&self, model: &Model, inputs: &SceneInputs, zoom: f64) -> DrawList {
        let origin = if self.bounds.is_empty() {
            DVec2::ZERO
        } else {
            self.bounds.center()
        };
        let mut list = DrawList::new(origin);
        list.revision = self.revision;
        let nodes = &model.graph.nodes;
        let detail = nodes.len() <= DETAIL_LIMIT;
        let has_selection = inputs.selected.is_some();
        let rel = |p: DVec2| (p - origin).as_vec2();
        // Edges first (drawn under nodes): all of them faintly for small graphs, the selection's always.
        let is_sel = |n: NodeId| inputs.selected == Some(n);
        for e in &model.graph.edges {
            let touches = is_sel(e.from) || is_sel(e.to);
            if !(detail || touches) {
                continue;
            }
            let (Some(a), Some(b)) = (self.node_rect(e.from), self.node_rect(e.to)) else {
                continue;
            };
            let color: Rgba8 = if touches {
                [230, 120, 20, 255]
            } else if has_selection {
                [150, 150, 160, 60]
            } else {
                [120, 120, 130, 150]
            };
            list.edges.push(EdgeItem {
                from: rel(a.center()),
                to: rel(b.center()),
                color,
                width_px: if touches { 2.5 } else { 1.0 },
                flags: flags::ARROW | if touches { flags::HIGHLIGHT } else { 0 },
            });
        }
        let label_px = (HALF.y * 2.0 * zoom * 0.45).min(14.0) as f32;
        let labels = detail && label_px >= 6.0;
        for (i, node) in nodes.iter().enumerate() {
            let id = i as NodeId;
            let Some(r) = self.node_rect(id) else {
                continue;
            };
            let mut f = 0;
            if inputs.selected == Some(id) {
                f |= flags::SELECTED;
            }
            if inputs.hovered == Some(id) {
                f |= flags::HOVERED;
            }
            let related = inputs.highlighted.contains(&id);
            if related {
                f |= flags::HIGHLIGHT;
            }
            if has_selection && !related && inputs.selected != Some(id) {
                f |= flags::DIMMED;
            }
            list.nodes.push(NodeItem {
                center: rel(r.center()),
                half_size: HALF.as_vec2(),
                fill: op_fill(&node.op),
                shape: NodeShape::RoundedBox,
                flags: f,
                alpha: 1.0,
            });
            if labels {
                let leaf = node.name.rsplit(['/', '.']).next().unwrap_or(&node.name);
                let text = if leaf.is_empty() || leaf == node.op {
                    node.op.clone()
                } else {
                    format!("{} · {}", node.op, leaf)
                };
                list.labels.push(LabelItem {
                    pos: rel(r.center()),
                    text,
                    size_px: label_px,
                    color: [20, 20, 28, 255],
                    align: Align::Center,
                });
            }
        }
        list
    }
}

/// Fill colour of an op: a fixed palette for common families, a stable hash hue otherwise.
fn op_fill(op: &str) -> Rgba8 {
    let o = op.to_ascii_lowercase();
    if o.contains("conv") {
        [120, 170, 245, 255]
    } else if o.contains("matmul") || o.contains("gemm") || o == "linear" {
        [180, 150, 225, 255]
    } else if o.contains("norm") {
        [130, 205, 150, 255]
    } else if o == "input" || o == "output" {
        [200, 200, 210, 255]
    } else {
        let h = op
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        let c = |k: u64| 150 + ((h >> k) % 90) as u8;
        [c(0), c(8), c(16), 255]
    }
}
