//! What one frame draws, as plain data: no wgpu types, so the cut is tested without a GPU and golden
//! tests can feed a hand-built list.

use std::sync::Arc;

use glam::{DVec2, Vec2};

/// Shape of a node item, drawn by a signed-distance function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NodeShape {
    /// A rounded box (ops, groups, collapsed clusters).
    #[default]
    RoundedBox,
    /// A circle (neurons, force-layout nodes).
    Circle,
}

/// Per-item flags.
pub mod flags {
    /// Selected: drawn with a bright outline.
    pub const SELECTED: u32 = 1;
    /// Under the cursor.
    pub const HOVERED: u32 = 2;
    /// A collapsed cluster standing for many nodes (drawn with a double border).
    pub const CLUSTER: u32 = 4;
    /// Drawn faded (not related to the selection).
    pub const DIMMED: u32 = 8;
    /// An expanded group drawn as a frame around its children (outline only, translucent fill).
    pub const FRAME: u32 = 16;
    /// Edge: draw an arrowhead at the `to` end.
    pub const ARROW: u32 = 32;
    /// Edge: draw as a vertical S-curve (cubic with vertical tangents) instead of a straight segment.
    pub const CURVE: u32 = 64;
    /// Highlighted input/output of the selection.
    pub const HIGHLIGHT: u32 = 128;
}

/// An sRGB colour with alpha, 8 bits a channel (non-premultiplied).
pub type Rgba8 = [u8; 4];

/// A node, group box or collapsed cluster.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeItem {
    /// Centre, relative to [`DrawList::origin`], in world units.
    pub center: Vec2,
    /// Half width and half height in world units.
    pub half_size: Vec2,
    /// Fill colour.
    pub fill: Rgba8,
    /// Shape.
    pub shape: NodeShape,
    /// [`flags`] bits.
    pub flags: u32,
    /// Opacity multiplier 0..=1 (LOD transitions fade items in and out).
    pub alpha: f32,
}

/// An edge between two points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EdgeItem {
    /// Start, relative to [`DrawList::origin`], in world units.
    pub from: Vec2,
    /// End, relative to [`DrawList::origin`].
    pub to: Vec2,
    /// Colour.
    pub color: Rgba8,
    /// Width on screen in pixels (constant under zoom).
    pub width_px: f32,
    /// [`flags`] bits (`ARROW`, `CURVE`, `SELECTED`…).
    pub flags: u32,
    /// World length at which the arrowhead reaches its full pixel size; zoomed out further it
    /// shrinks with the node it points at, as in Netron or Model Explorer, and vanishes below
    /// 4 px. 0: a constant pixel size. See [`EdgeItem::arrow_world_for`].
    pub arrow_world: f32,
}

/// Arrowhead world length per world unit of the target's height: a 28-unit op box gets its full
/// 9 px arrowhead from zoom 1 up, and at a zoom where the box is 9 px tall a 3 px one.
pub const ARROW_PER_TARGET_HEIGHT: f32 = 9.0 / 28.0;

impl EdgeItem {
    /// [`EdgeItem::arrow_world`] for an edge into a box `target_extent` world units tall (its
    /// smaller side); 0 (constant pixels) when that is not a positive finite length.
    pub fn arrow_world_for(target_extent: f64) -> f32 {
        let w = (target_extent * f64::from(ARROW_PER_TARGET_HEIGHT)) as f32;
        if w.is_finite() && w > 0.0 { w } else { 0.0 }
    }
}

/// Horizontal anchoring of a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Align {
    /// Centred on the anchor.
    #[default]
    Center,
    /// Starting at the anchor.
    Left,
}

/// A piece of text anchored in the world, drawn at a fixed pixel size.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelItem {
    /// Anchor (the text's vertical centre), relative to [`DrawList::origin`].
    pub pos: Vec2,
    /// The text.
    pub text: String,
    /// Height of a line in pixels.
    pub size_px: f32,
    /// Colour.
    pub color: Rgba8,
    /// Horizontal alignment.
    pub align: Align,
}

/// Colour maps for heatmaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorMap {
    /// Blue–white–red, centred on zero (signed weights).
    #[default]
    Diverging,
    /// Black to white (magnitudes).
    Grey,
    /// Perceptually uniform viridis.
    Viridis,
    /// Perceptually uniform cividis (colour-blind friendly).
    Cividis,
}

/// A rectangle of raw values drawn as a heatmap: uploaded once (R32F) and coloured in the shader.
#[derive(Clone, Debug)]
pub struct HeatmapItem {
    /// Stable key of the tile's data: the renderer caches textures by it.
    pub key: u64,
    /// Top-left corner, relative to [`DrawList::origin`], in world units.
    pub min: Vec2,
    /// Bottom-right corner.
    pub max: Vec2,
    /// Texels across.
    pub width: u32,
    /// Texels down.
    pub height: u32,
    /// Row-major values, `width * height` of them (NaN drawn as magenta).
    pub values: Arc<[f32]>,
    /// Value mapped to the low end of the colour map.
    pub lo: f32,
    /// Value mapped to the high end.
    pub hi: f32,
    /// Colour map.
    pub colormap: ColorMap,
}

/// A revision no other draw list of this process has had (see [`DrawList::revision`]).
///
/// Producers take their revisions from here rather than counting their own: a renderer that drew
/// one producer's list and is then handed another's (the window swapping the provisional grid for
/// the laid-out model) would otherwise see the same small number, skip the upload and keep drawing
/// the old items until something changed.
pub fn next_revision() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Everything one frame draws, back to front: heatmaps, edges, nodes, labels.
#[derive(Clone, Debug, Default)]
pub struct DrawList {
    /// Changed by the producer whenever the items change, to a fresh [`next_revision`]; a renderer
    /// re-uploads instance buffers only when this differs from what it last uploaded (camera moves
    /// alone never re-upload).
    pub revision: u64,
    /// World point that item positions are relative to (near the camera, so f32 keeps precision).
    pub origin: DVec2,
    /// Heatmap tiles.
    pub heatmaps: Vec<HeatmapItem>,
    /// Edges.
    pub edges: Vec<EdgeItem>,
    /// Nodes and clusters.
    pub nodes: Vec<NodeItem>,
    /// Text.
    pub labels: Vec<LabelItem>,
    /// Background colour.
    pub background: Rgba8,
}

impl DrawList {
    /// An empty list relative to `origin`, on the default background.
    pub fn new(origin: DVec2) -> Self {
        DrawList {
            origin,
            background: [250, 250, 252, 255],
            ..Default::default()
        }
    }

    /// Converts a world point to this list's relative f32 coordinates.
    pub fn rel(&self, world: DVec2) -> Vec2 {
        (world - self.origin).as_vec2()
    }
}
