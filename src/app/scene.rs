//! The scene seam: where the window gets positions, picking and each frame's [`DrawList`].
//!
//! Two sources, one interface ([`Scene::bounds`], [`Scene::node_rect`], [`Scene::group_rect`],
//! [`Scene::pick`], [`Scene::draw_list`]):
//! - [`Scene::grid`]: nodes on a plain grid in hierarchy order, shown the moment a model is loaded
//!   while the real layout runs in the background (it is a placeholder, not a layout engine);
//! - [`Scene::from_layout`]: the boxes and edge routes of a [`Layout`] from `layout::dataflow`, drawn
//!   flat: every visible node, every expanded group as a frame, every collapsed group as one box.
//!
//! The flat draw list is the stand-in for the LOD cut: once `lod::LodState::cut`/`pick` land, the
//! body of `draw_list`/`pick` becomes calls to them and nothing else in the app changes.
//!
//! The draw list is rebuilt only when what it shows changes (selection, hover, or the zoom crossing a
//! label-size step); a pan or zoom alone reuses it, and the renderer re-uploads nothing because the
//! revision is unchanged. Picking uses a uniform bucket grid over the boxes (built once), so hover
//! costs a handful of box tests on a million-node layout.

use std::collections::HashSet;
use std::sync::Arc;

use glam::DVec2;

use crate::layout::Layout;
use crate::lod::{Align, DrawList, EdgeItem, LabelItem, NodeItem, NodeShape, Rgba8, flags};
use crate::model::{GroupId, Model, NodeId};
use crate::view::{Camera, Rect};

/// Grid cell size in world units (grid placeholder).
const CELL: DVec2 = DVec2::new(200.0, 80.0);
/// Node box half size in world units (grid placeholder).
const HALF: DVec2 = DVec2::new(85.0, 24.0);
/// Above this many nodes the flat draw list leaves out labels and unselected edges.
const DETAIL_LIMIT: usize = 60_000;
/// Label height in world units (the layout sizes boxes for ~12-unit text).
const LABEL_WORLD: f64 = 12.0;
/// Labels below this many pixels are left out.
const MIN_LABEL_PX: f64 = 6.0;

/// What the pointer is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Picked {
    /// A node.
    Node(NodeId),
    /// A collapsed group's box (or an expanded group's frame header).
    Group(GroupId),
}

/// What the draw list shows besides positions: selection state from the view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SceneInputs {
    /// The selected node.
    pub selected: Option<NodeId>,
    /// What is under the cursor.
    pub hovered: Option<Picked>,
    /// Inputs and outputs of the selection (drawn highlighted).
    pub highlighted: Vec<NodeId>,
}

#[derive(Debug)]
enum Source {
    Grid { cols: usize, order: Vec<NodeId>, slot_of: Vec<u32> },
    Layout { layout: Box<Layout>, buckets: Buckets },
}

/// Positions and the per-frame draw list of one model.
#[derive(Debug)]
pub struct Scene {
    id: u64,
    source: Source,
    bounds: Rect,
    list: Arc<DrawList>,
    built_for: Option<(SceneInputs, i32)>,
    revision: u64,
}

impl Scene {
    /// Places the model's nodes on a grid, hierarchy group by group (the placeholder shown until
    /// the layout arrives).
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
        Scene::with_source(Source::Grid { cols, order, slot_of }, bounds)
    }

    /// A scene over a finished layout.
    pub fn from_layout(layout: Layout) -> Self {
        let bounds = layout.bounds;
        let buckets = Buckets::build(&layout);
        Scene::with_source(
            Source::Layout {
                layout: Box::new(layout),
                buckets,
            },
            bounds,
        )
    }

    fn with_source(source: Source, bounds: Rect) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Scene {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            source,
            bounds,
            list: Arc::new(DrawList::new(DVec2::ZERO)),
            built_for: None,
            revision: 0,
        }
    }

    /// A process-unique id (caches keyed by scene, such as the minimap picture, use it).
    pub fn id(&self) -> u64 {
        self.id
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
            Source::Layout { layout, .. } => {
                for n in layout.nodes.iter().filter(|n| n.is_visible()) {
                    add(n.rect());
                }
                for (r, _) in layout.groups.iter().zip(&layout.collapsed).filter(|(r, c)| **c && !r.is_empty()) {
                    add(*r);
                }
            }
        }
        let max = counts.iter().copied().max().unwrap_or(0).max(1) as f32;
        counts
            .iter()
            .map(|&c| if c == 0 { 0 } else { (60.0 + 195.0 * (c as f32 / max).sqrt()) as u8 })
            .collect()
    }

    /// Whether this is the placeholder grid (the layout is still coming).
    pub fn is_placeholder(&self) -> bool {
        matches!(self.source, Source::Grid { .. })
    }

    /// The layout behind the scene, once there is one.
    pub fn layout(&self) -> Option<&Layout> {
        match &self.source {
            Source::Layout { layout, .. } => Some(layout),
            Source::Grid { .. } => None,
        }
    }

    /// Bounds of everything, world units.
    pub fn bounds(&self) -> Rect {
        self.bounds
    }

    /// The box of a node: its own when visible, else the collapsed group box hiding it; `None` for
    /// an unknown id.
    pub fn node_rect(&self, node: NodeId) -> Option<Rect> {
        match &self.source {
            Source::Grid { cols, slot_of, .. } => {
                let slot = *slot_of.get(node as usize)? as usize;
                Some(Rect::from_center_size(grid_center(*cols, slot), HALF * 2.0))
            }
            Source::Layout { layout, .. } => {
                let b = layout.nodes.get(node as usize)?;
                if b.is_visible() {
                    return Some(b.rect());
                }
                // Hidden inside a collapsed group: the smallest collapsed box around its centre.
                layout
                    .groups
                    .iter()
                    .zip(&layout.collapsed)
                    .filter(|(r, c)| **c && !r.is_empty() && r.contains(b.center))
                    .map(|(r, _)| *r)
                    .min_by(|a, b| a.size().x.total_cmp(&b.size().x))
                    .or(Some(Rect::from_center_size(b.center, DVec2::ONE)))
            }
        }
    }

    /// The box of group `g` (its layout box, or around its nodes on the grid); empty when unknown.
    pub fn group_rect(&self, model: &Model, g: GroupId) -> Rect {
        if let Source::Layout { layout, .. } = &self.source
            && let Some(r) = layout.groups.get(g as usize)
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

    /// What lies under a world point: a node, a collapsed group, or nothing.
    pub fn pick(&self, world: DVec2) -> Option<Picked> {
        match &self.source {
            Source::Grid { cols, order, .. } => {
                let cell = (world / CELL).round();
                if cell.x < 0.0 || cell.y < 0.0 || cell.x >= *cols as f64 {
                    return None;
                }
                let slot = cell.y as usize * cols + cell.x as usize;
                let node = *order.get(slot)?;
                let d = (world - grid_center(*cols, slot)).abs();
                (d.x <= HALF.x && d.y <= HALF.y).then_some(Picked::Node(node))
            }
            Source::Layout { layout, buckets } => buckets.pick(layout, world),
        }
    }

    /// The draw list for this frame, rebuilt only when `inputs` or the label-size step of
    /// `camera.zoom` changed since the last call.
    pub fn draw_list(
        &mut self,
        model: &Model,
        inputs: &SceneInputs,
        camera: &Camera,
    ) -> Arc<DrawList> {
        // Labels are drawn at a fixed pixel size, so their size follows the zoom in quarter-octave steps.
        let zoom_step = (camera.zoom.max(1e-12).log2() * 4.0).floor() as i32;
        let key = (inputs.clone(), zoom_step);
        if self.built_for.as_ref() != Some(&key) {
            self.revision += 1;
            let zoom = 2f64.powf(f64::from(zoom_step) / 4.0);
            let list = self.build(model, inputs, zoom);
            self.list = Arc::new(list);
            self.built_for = Some(key);
        }
        self.list.clone()
    }

    /// The last draw list built (for export).
    pub fn last_list(&self) -> Arc<DrawList> {
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
        let sel = inputs.selected;
        let related: HashSet<NodeId> = inputs.highlighted.iter().copied().collect();
        let rel = |p: DVec2| (p - origin).as_vec2();
        let label_px = LABEL_WORLD * zoom;
        let labels = detail && label_px >= MIN_LABEL_PX;
        let label_px = label_px.min(16.0) as f32;

        // Group frames and collapsed groups (layout only), outermost first so inner ones draw on top.
        if let Source::Layout { layout, .. } = &self.source {
            let mut order: Vec<usize> = (1..layout.groups.len()).collect();
            order.sort_by_key(|&g| model.hierarchy.get(g as u32).map_or(0, |x| x.depth));
            for g in order {
                let (Some(r), Some(group)) = (layout.groups.get(g), model.hierarchy.get(g as u32))
                else {
                    continue;
                };
                if r.is_empty() {
                    continue;
                }
                let collapsed = layout.collapsed.get(g).copied().unwrap_or(false);
                let hovered = inputs.hovered == Some(Picked::Group(g as GroupId));
                let mut f = if collapsed { flags::CLUSTER } else { flags::FRAME };
                if hovered {
                    f |= flags::HOVERED;
                }
                list.nodes.push(NodeItem {
                    center: rel(r.center()),
                    half_size: (r.size() * 0.5).as_vec2(),
                    fill: if collapsed {
                        [214, 222, 235, 255]
                    } else {
                        [232, 236, 244, 150]
                    },
                    shape: NodeShape::RoundedBox,
                    flags: f,
                    alpha: 1.0,
                });
                if labels {
                    let text = if collapsed {
                        format!(
                            "{} ({} nodes)",
                            group.name,
                            crate::model::group_digits(group.node_count)
                        )
                    } else {
                        group.name.clone()
                    };
                    let (pos, align) = if collapsed {
                        (rel(r.center()), Align::Center)
                    } else {
                        (rel(DVec2::new(r.min.x + 8.0, r.min.y + 14.0)), Align::Left)
                    };
                    list.labels.push(LabelItem {
                        pos,
                        text,
                        size_px: label_px,
                        color: [60, 64, 80, 255],
                        align,
                    });
                }
            }
        }

        // Edges under nodes: all of them for graphs of a drawable size, the selection's always.
        for (i, e) in model.graph.edges.iter().enumerate() {
            let touches = sel == Some(e.from) || sel == Some(e.to);
            if !(detail || touches) {
                continue;
            }
            let color: Rgba8 = if touches {
                [230, 120, 20, 255]
            } else if sel.is_some() {
                [150, 150, 160, 90]
            } else {
                [110, 110, 125, 200]
            };
            let width_px = if touches { 2.5 } else { 1.2 };
            let hl = if touches { flags::HIGHLIGHT } else { 0 };
            match &self.source {
                Source::Grid { .. } => {
                    let (Some(a), Some(b)) = (self.node_rect(e.from), self.node_rect(e.to)) else {
                        continue;
                    };
                    list.edges.push(EdgeItem {
                        from: rel(a.center()),
                        to: rel(b.center()),
                        color,
                        width_px,
                        flags: flags::ARROW | hl,
                    });
                }
                Source::Layout { layout, .. } => {
                    let Some(route) = layout.edges.get(i) else {
                        continue;
                    };
                    if route.hidden {
                        continue;
                    }
                    let mut prev = route.from;
                    let way = layout.waypoints(i);
                    let curve = if route.curve { flags::CURVE } else { 0 };
                    for (k, &p) in way.iter().chain(std::iter::once(&route.to)).enumerate() {
                        let last = k == way.len();
                        list.edges.push(EdgeItem {
                            from: rel(prev),
                            to: rel(p),
                            color,
                            width_px,
                            flags: curve | hl | if last { flags::ARROW } else { 0 },
                        });
                        prev = p;
                    }
                }
            }
        }

        for (i, node) in nodes.iter().enumerate() {
            let id = i as NodeId;
            let r = match &self.source {
                Source::Layout { layout, .. } => match layout.nodes.get(i) {
                    Some(b) if b.is_visible() => b.rect(),
                    _ => continue,
                },
                Source::Grid { .. } => match self.node_rect(id) {
                    Some(r) => r,
                    None => continue,
                },
            };
            let mut f = 0;
            if sel == Some(id) {
                f |= flags::SELECTED;
            }
            if inputs.hovered == Some(Picked::Node(id)) {
                f |= flags::HOVERED;
            }
            let is_related = related.contains(&id);
            if is_related {
                f |= flags::HIGHLIGHT;
            }
            if sel.is_some() && !is_related && sel != Some(id) {
                f |= flags::DIMMED;
            }
            list.nodes.push(NodeItem {
                center: rel(r.center()),
                half_size: (r.size() * 0.5).as_vec2(),
                fill: op_fill(&node.op),
                shape: NodeShape::RoundedBox,
                flags: f,
                alpha: 1.0,
            });
            if labels {
                list.labels.push(LabelItem {
                    pos: rel(r.center()),
                    text: node_label(&node.name, &node.op),
                    size_px: label_px,
                    color: [20, 20, 28, 255],
                    align: Align::Center,
                });
            }
        }
        list
    }
}

fn grid_center(cols: usize, slot: usize) -> DVec2 {
    DVec2::new((slot % cols) as f64, (slot / cols) as f64) * CELL
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

/// Fill colour of an op: a fixed palette for common families, a stable hash hue otherwise.
pub fn op_fill(op: &str) -> Rgba8 {
    let o = op.to_ascii_lowercase();
    if o.contains("conv") {
        [120, 170, 245, 255]
    } else if o.contains("matmul") || o.contains("gemm") || o == "linear" {
        [185, 160, 230, 255]
    } else if o.contains("norm") {
        [135, 210, 155, 255]
    } else if o == "input" || o == "output" {
        [200, 200, 210, 255]
    } else {
        let h = op.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let c = |k: u64| 160 + ((h >> k) % 80) as u8;
        [c(0), c(8), c(16), 255]
    }
}

/// A uniform grid of buckets over the layout, each listing the boxes (nodes and collapsed groups)
/// that overlap it.
#[derive(Debug, Default)]
struct Buckets {
    origin: DVec2,
    cell: DVec2,
    dims: (usize, usize),
    /// CSR: bucket `b` holds `items[starts[b]..starts[b + 1]]`.
    starts: Vec<u32>,
    items: Vec<Picked>,
}

impl Buckets {
    /// Buckets of about four boxes each, capped so a huge layout stays a few MB.
    fn build(layout: &Layout) -> Self {
        let bounds = layout.bounds;
        let count = layout.nodes.len() + layout.groups.len();
        if bounds.is_empty() || count == 0 {
            return Buckets::default();
        }
        let size = bounds.size().max(DVec2::ONE);
        let target = (count / 4).clamp(1, 1 << 20) as f64;
        let aspect = size.x / size.y;
        let nx = ((target * aspect).sqrt().ceil() as usize).clamp(1, 4096);
        let ny = (target / nx as f64).ceil().clamp(1.0, 4096.0) as usize;
        let cell = size / DVec2::new(nx as f64, ny as f64);
        let mut b = Buckets {
            origin: bounds.min,
            cell,
            dims: (nx, ny),
            starts: Vec::new(),
            items: Vec::new(),
        };
        let boxes: Vec<(Picked, Rect)> = layout
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_visible())
            .map(|(i, n)| (Picked::Node(i as NodeId), n.rect()))
            .chain(
                layout
                    .groups
                    .iter()
                    .zip(&layout.collapsed)
                    .enumerate()
                    .filter(|(_, (r, c))| **c && !r.is_empty())
                    .map(|(g, (r, _))| (Picked::Group(g as GroupId), *r)),
            )
            .collect();
        // Two passes (count, fill) so the CSR is allocated exactly.
        let mut counts = vec![0u32; nx * ny + 1];
        for (_, r) in &boxes {
            b.for_cells(r, |c| {
                if let Some(x) = counts.get_mut(c + 1) {
                    *x += 1;
                }
            });
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let total = counts.last().copied().unwrap_or(0) as usize;
        let mut fill = counts.clone();
        b.items = vec![Picked::Node(0); total];
        for (p, r) in &boxes {
            let items = &mut b.items;
            let (origin, cell, dims) = (b.origin, b.cell, b.dims);
            for_cells_of(origin, cell, dims, r, |c| {
                if let Some(slot) = fill.get_mut(c)
                    && let Some(it) = items.get_mut(*slot as usize)
                {
                    *it = *p;
                    *slot += 1;
                }
            });
        }
        b.starts = counts;
        b
    }

    fn for_cells(&self, r: &Rect, f: impl FnMut(usize)) {
        for_cells_of(self.origin, self.cell, self.dims, r, f);
    }

    fn pick(&self, layout: &Layout, world: DVec2) -> Option<Picked> {
        let (nx, ny) = self.dims;
        if nx == 0 {
            return None;
        }
        let c = ((world - self.origin) / self.cell).floor();
        if c.x < 0.0 || c.y < 0.0 || c.x >= nx as f64 || c.y >= ny as f64 {
            return None;
        }
        let b = c.y as usize * nx + c.x as usize;
        let (Some(&a), Some(&z)) = (self.starts.get(b), self.starts.get(b + 1)) else {
            return None;
        };
        // The smallest box holding the point wins (a node over its group).
        self.items
            .get(a as usize..z as usize)?
            .iter()
            .filter_map(|p| {
                let r = match *p {
                    Picked::Node(n) => layout.nodes.get(n as usize)?.rect(),
                    Picked::Group(g) => *layout.groups.get(g as usize)?,
                };
                r.contains(world).then_some((*p, r.size().x * r.size().y))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(p, _)| p)
    }
}

fn for_cells_of(
    origin: DVec2,
    cell: DVec2,
    (nx, ny): (usize, usize),
    r: &Rect,
    mut f: impl FnMut(usize),
) {
    if nx == 0 || r.is_empty() {
        return;
    }
    let lo = ((r.min - origin) / cell).floor().max(DVec2::ZERO);
    let hi = ((r.max - origin) / cell).floor();
    let (x0, y0) = (lo.x as usize, lo.y as usize);
    let x1 = (hi.x.max(0.0) as usize).min(nx - 1);
    let y1 = (hi.y.max(0.0) as usize).min(ny - 1);
    for y in y0.min(ny - 1)..=y1 {
        for x in x0.min(nx - 1)..=x1 {
            f(y * nx + x);
        }
    }
}
