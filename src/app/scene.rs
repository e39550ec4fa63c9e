//! The view's scene: where the window gets positions, picking and each frame's [`DrawList`].
//!
//! Two sources behind one interface ([`ViewScene::bounds`], [`ViewScene::node_rect`],
//! [`ViewScene::group_rect`], [`ViewScene::pick`], [`ViewScene::draw_list`]):
//! - [`ViewScene::grid`]: nodes on a plain grid in hierarchy order, shown the moment a model is
//!   loaded while the layout runs in the background (a placeholder, not a layout engine);
//! - [`ViewScene::laid_out`]: the crate's [`crate::scene::Scene`] (layout + `lod::LodState`): every
//!   frame is a LOD cut for the camera, picking is the cut's, expand/collapse are the cut's pinned
//!   clusters.
//!
//! The draw list handed to the renderer is shared (`Arc`) and replaced only when the cut's revision
//! changes, so a steady camera copies nothing and the renderer uploads nothing.

use std::sync::Arc;

use glam::DVec2;

use crate::graph::{ClusterId, Item};
use crate::lod::{Align, DrawList, LabelItem, NodeItem, NodeShape, Rgba8, ViewState, flags};
use crate::model::{GroupId, Model, NodeId};
use crate::view::{Camera, Rect};

/// Grid cell size in world units (grid placeholder).
const CELL: DVec2 = DVec2::new(200.0, 80.0);
/// Node box half size in world units (grid placeholder).
const HALF: DVec2 = DVec2::new(85.0, 24.0);
/// Above this many nodes the placeholder grid draws no labels.
const GRID_LABEL_LIMIT: usize = 400;

/// What the pointer is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picked {
    /// A node.
    Node(NodeId),
    /// A cluster of the LOD tree (a collapsed group or a computed cluster).
    Cluster(ClusterId),
}

impl From<Item> for Picked {
    fn from(i: Item) -> Self {
        match i {
            Item::Node(n) => Picked::Node(n),
            Item::Cluster(c) => Picked::Cluster(c),
        }
    }
}

impl From<Picked> for Item {
    fn from(p: Picked) -> Self {
        match p {
            Picked::Node(n) => Item::Node(n),
            Picked::Cluster(c) => Item::Cluster(c),
        }
    }
}

/// What the draw list shows besides positions: the view's selection state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SceneInputs {
    /// The selected node.
    pub selected: Option<NodeId>,
    /// What is under the cursor.
    pub hovered: Option<Picked>,
    /// Inputs and outputs of the selection (drawn highlighted).
    pub highlighted: Vec<NodeId>,
    /// Clusters the user opened by hand.
    pub pinned_open: Vec<ClusterId>,
    /// Clusters the user closed by hand.
    pub pinned_closed: Vec<ClusterId>,
    /// Per-node colour-by values (the anomaly panel's overlay).
    pub overlay: Option<super::anomalies::OverlayValues>,
}

enum Source {
    Grid {
        cols: usize,
        order: Vec<NodeId>,
        slot_of: Vec<u32>,
        built_for: Option<SceneInputs>,
        revision: u64,
    },
    Lod {
        scene: Box<crate::scene::Scene>,
        view: ViewState,
        inputs: Option<SceneInputs>,
    },
}

/// Positions, picking and the per-frame draw list of one model view.
pub struct ViewScene {
    id: u64,
    source: Source,
    bounds: Rect,
    list: Arc<DrawList>,
}

impl std::fmt::Debug for ViewScene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewScene")
            .field("id", &self.id)
            .field("placeholder", &self.is_placeholder())
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

impl ViewScene {
    /// Places the model's nodes on a grid, hierarchy group by group (shown until the layout arrives).
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
        ViewScene::with_source(
            Source::Grid {
                cols,
                order,
                slot_of,
                built_for: None,
                revision: 0,
            },
            bounds,
        )
    }

    /// A scene over a laid-out model.
    pub fn laid_out(mut scene: crate::scene::Scene) -> Self {
        let bounds = scene.layout.bounds;
        // The window never waits for weights: tiles are built in the background.
        scene.weights = crate::scene::InPlaceWeights::new(false);
        ViewScene::with_source(
            Source::Lod {
                scene: Box::new(scene),
                view: ViewState::default(),
                inputs: None,
            },
            bounds,
        )
    }

    fn with_source(source: Source, bounds: Rect) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        ViewScene {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            source,
            bounds,
            list: Arc::new(DrawList::new(DVec2::ZERO)),
        }
    }

    /// Called from a worker thread when an in-place weight tile lands (requests a redraw).
    pub fn set_waker(&mut self, waker: crate::scene::weights::Waker) {
        if let Source::Lod { scene, .. } = &mut self.source {
            scene.weights.set_waker(waker);
        }
    }

    /// The weight value under a screen point, when a node shows its weights in place.
    pub fn weight_at(&self, camera: &Camera, screen: DVec2) -> Option<crate::scene::WeightHit> {
        match &self.source {
            Source::Lod { scene, .. } => scene
                .weights
                .hit(&scene.model, camera.world_from_screen(screen)),
            Source::Grid { .. } => None,
        }
    }

    /// Weight tiles still being built in the background (keep redrawing until they land).
    pub fn weights_pending(&self) -> usize {
        match &self.source {
            Source::Lod { scene, .. } => scene.weights.pending(),
            Source::Grid { .. } => 0,
        }
    }

    /// A process-unique id (caches keyed by scene, such as the minimap picture, use it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether this is the placeholder grid (the layout is still coming).
    pub fn is_placeholder(&self) -> bool {
        matches!(self.source, Source::Grid { .. })
    }

    /// The laid-out scene, once there is one.
    pub fn laid(&self) -> Option<&crate::scene::Scene> {
        match &self.source {
            Source::Lod { scene, .. } => Some(scene),
            Source::Grid { .. } => None,
        }
    }

    /// Whether the LOD cut is still fading items in (keep redrawing).
    pub fn is_animating(&self) -> bool {
        match &self.source {
            Source::Lod { scene, .. } => scene.lod.is_animating(),
            Source::Grid { .. } => false,
        }
    }

    /// Bounds of everything, world units.
    pub fn bounds(&self) -> Rect {
        self.bounds
    }

    /// The box of a node, `None` for an unknown id.
    pub fn node_rect(&self, node: NodeId) -> Option<Rect> {
        match &self.source {
            Source::Grid { cols, slot_of, .. } => {
                let slot = *slot_of.get(node as usize)? as usize;
                Some(Rect::from_center_size(grid_center(*cols, slot), HALF * 2.0))
            }
            Source::Lod { scene, .. } => {
                let b = scene.layout.nodes.get(node as usize)?;
                Some(if b.is_visible() {
                    b.rect()
                } else {
                    Rect::from_center_size(b.center, DVec2::ONE)
                })
            }
        }
    }

    /// The box of a LOD cluster (empty when unknown or on the grid).
    pub fn cluster_rect(&self, c: ClusterId) -> Rect {
        match &self.source {
            Source::Lod { scene, .. } => scene
                .layout
                .clusters
                .clusters
                .get(c as usize)
                .map_or(Rect::EMPTY, |c| c.bbox),
            Source::Grid { .. } => Rect::EMPTY,
        }
    }

    /// The cluster a node hangs under directly, and its ancestors up to the root (innermost first).
    pub fn cluster_chain(&self, node: NodeId) -> Vec<ClusterId> {
        let Source::Lod { scene, .. } = &self.source else {
            return Vec::new();
        };
        let tree = &scene.layout.clusters;
        let mut out = Vec::new();
        let mut c = tree.node_cluster.get(node as usize).copied();
        while let Some(id) = c {
            if out.len() > tree.clusters.len() {
                break; // a malformed tree must not loop forever
            }
            out.push(id);
            c = tree.clusters.get(id as usize).and_then(|x| x.parent);
        }
        out
    }

    /// The box of group `g` (its layout box, or around its nodes); empty when unknown.
    pub fn group_rect(&self, model: &Model, g: GroupId) -> Rect {
        if let Source::Lod { scene, .. } = &self.source
            && let Some(r) = scene.layout.groups.get(g as usize)
            && !r.is_empty()
        {
            return *r;
        }
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

    /// What lies under a screen point in the last drawn frame.
    pub fn pick(&self, camera: &Camera, screen: DVec2) -> Option<Picked> {
        match &self.source {
            Source::Grid { cols, order, .. } => {
                let world = camera.world_from_screen(screen);
                let cell = (world / CELL).round();
                if cell.x < 0.0 || cell.y < 0.0 || cell.x >= *cols as f64 {
                    return None;
                }
                let slot = cell.y as usize * cols + cell.x as usize;
                let node = *order.get(slot)?;
                let d = (world - grid_center(*cols, slot)).abs();
                (d.x <= HALF.x && d.y <= HALF.y).then_some(Picked::Node(node))
            }
            Source::Lod { scene, .. } => scene.lod.pick(camera, screen).map(Picked::from),
        }
    }

    /// The draw list for this frame: the LOD cut for `camera` at `now_s` (or the grid), shared and
    /// replaced only when it changed.
    pub fn draw_list(
        &mut self,
        model: &Model,
        inputs: &SceneInputs,
        camera: &Camera,
        now_s: f64,
    ) -> Arc<DrawList> {
        match &mut self.source {
            Source::Grid {
                cols,
                order,
                built_for,
                revision,
                ..
            } => {
                if built_for.as_ref() != Some(inputs) {
                    *revision = crate::lod::next_revision();
                    *built_for = Some(inputs.clone());
                    self.list = Arc::new(build_grid(model, *cols, order, inputs, *revision));
                }
            }
            Source::Lod {
                scene,
                view,
                inputs: last,
            } => {
                if last.as_ref() != Some(inputs) {
                    view.selected = inputs.selected.map(Item::Node);
                    view.hovered = inputs.hovered.map(Item::from);
                    view.highlighted = inputs.highlighted.clone();
                    view.pinned_open = inputs.pinned_open.clone();
                    view.pinned_closed = inputs.pinned_closed.clone();
                    view.overlay = inputs.overlay.as_ref().map(|o| o.0.clone());
                    // A colour-by overlay paints the node boxes: weights take them over only once
                    // the boxes are three times as large (where they get a title strip).
                    let defaults = crate::scene::WeightOptions::default();
                    scene.weights.options.min_px = if view.overlay.is_some() {
                        defaults.min_px * 3.0
                    } else {
                        defaults.min_px
                    };
                    view.revision += 1;
                    *last = Some(inputs.clone());
                }
                let scene = &mut **scene;
                scene
                    .lod
                    .cut(&scene.model, &scene.layout, camera, view, now_s);
                let list = scene.lod.draw_list();
                if scene.weights.wants(list, scene.lod.items(), camera) {
                    // Weights in place: a decorated copy, replaced when tiles or placement change.
                    let mut list = list.clone();
                    scene
                        .weights
                        .decorate(&scene.model, &mut list, scene.lod.items(), camera);
                    if list.revision != self.list.revision || list.origin != self.list.origin {
                        self.list = Arc::new(list);
                    }
                } else if list.revision != self.list.revision || list.origin != self.list.origin {
                    scene.weights.clear();
                    self.list = Arc::new(list.clone());
                }
            }
        }
        self.list.clone()
    }

    /// The last draw list built (for export).
    pub fn last_list(&self) -> Arc<DrawList> {
        self.list.clone()
    }

    /// A `w`×`h` picture of where the boxes are (0 empty … 255 dense), row-major, for the minimap.
    pub fn overview(&self, w: usize, h: usize) -> Vec<u8> {
        let mut counts = vec![0u32; w * h];
        if w == 0 || h == 0 || self.bounds.is_empty() {
            return vec![0; w * h];
        }
        let size = self.bounds.size().max(DVec2::splat(1e-9));
        let scale = DVec2::new(w as f64, h as f64) / size;
        let mut add = |r: Rect| {
            let lo = ((r.min - self.bounds.min) * scale).floor().max(DVec2::ZERO);
            let hi = ((r.max - self.bounds.min) * scale).floor();
            let x1 = (hi.x.max(0.0) as usize).min(w - 1);
            let y1 = (hi.y.max(0.0) as usize).min(h - 1);
            for y in (lo.y as usize).min(h - 1)..=y1 {
                for x in (lo.x as usize).min(w - 1)..=x1 {
                    if let Some(c) = counts.get_mut(y * w + x) {
                        *c += 1;
                    }
                }
            }
        };
        match &self.source {
            Source::Grid { cols, order, .. } => {
                for slot in 0..order.len() {
                    add(Rect::from_center_size(grid_center(*cols, slot), HALF * 2.0));
                }
            }
            Source::Lod { scene, .. } => {
                for n in scene.layout.nodes.iter().filter(|n| n.is_visible()) {
                    add(n.rect());
                }
            }
        }
        let max = counts.iter().copied().max().unwrap_or(0).max(1) as f32;
        counts
            .iter()
            .map(|&c| {
                if c == 0 {
                    0
                } else {
                    (60.0 + 195.0 * (c as f32 / max).sqrt()) as u8
                }
            })
            .collect()
    }
}

fn grid_center(cols: usize, slot: usize) -> DVec2 {
    DVec2::new((slot % cols) as f64, (slot / cols) as f64) * CELL
}

fn build_grid(
    model: &Model,
    cols: usize,
    order: &[NodeId],
    inputs: &SceneInputs,
    revision: u64,
) -> DrawList {
    let mut list = DrawList::new(DVec2::ZERO);
    list.revision = revision;
    let labels = order.len() <= GRID_LABEL_LIMIT;
    for (slot, &n) in order.iter().enumerate() {
        let Some(node) = model.graph.nodes.get(n as usize) else {
            continue;
        };
        let c = grid_center(cols, slot).as_vec2();
        let mut f = 0;
        if inputs.selected == Some(n) {
            f |= flags::SELECTED;
        }
        if inputs.hovered == Some(Picked::Node(n)) {
            f |= flags::HOVERED;
        }
        if inputs.highlighted.binary_search(&n).is_ok() {
            f |= flags::HIGHLIGHT;
        }
        let fill: Rgba8 = crate::lod::style::op_color(&node.op);
        list.nodes.push(NodeItem {
            center: c,
            half_size: HALF.as_vec2(),
            fill,
            shape: NodeShape::RoundedBox,
            flags: f,
            alpha: 0.6,
        });
        if labels {
            list.labels.push(LabelItem {
                pos: c,
                text: node_label(&node.name, &node.op),
                size_px: 12.0,
                color: [20, 20, 28, 255],
                align: Align::Center,
            });
        }
    }
    list
}

/// The text on a node: its op, and the last segment of its name when that says more.
pub fn node_label(name: &str, op: &str) -> String {
    let leaf = name.rsplit(['/', '.']).next().unwrap_or(name);
    if leaf.is_empty() || leaf.eq_ignore_ascii_case(op) || leaf.starts_with(op) {
        op.to_string()
    } else {
        format!("{op} · {leaf}")
    }
}
