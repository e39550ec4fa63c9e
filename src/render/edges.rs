//! Edges: instanced ribbons of constant pixel width, expanded in the vertex shader from the two
//! endpoints, anti-aliased by a distance-across varying (1 px ramp; lines thinner than a pixel are
//! drawn 1 px wide with proportionally less alpha, which reads as the right density).
//!
//! Instances are reordered into four runs — straight without arrow, straight with arrow, curved with
//! arrow, curved without — so the pipelines need no per-vertex branching on the kind: straight
//! edges are a 4-vertex strip; CURVE edges (a cubic with vertical tangents) are a strip of up to
//! `2 × (CURVE_SEGMENTS + 1)` vertices per instance, the vertex shader picking its joint from the
//! vertex index and collapsing joints beyond what the screen length needs. Arrowheads are one
//! triangle per ARROW edge over the middle two runs, drawn only for batches long enough on screen
//! to show one.
//!
//! Vertex shading is scarce (lavapipe runs it on the CPU; an H100 on a couple of graphics TPCs), so
//! each run is sorted at upload by world-length octave and then by the grid cell of the edge's
//! midpoint ([`EdgeBatch`]). Each frame ([`plan_draws`]) draws only the cells of each batch that the
//! viewport, grown by the batch's longest edge, can reach, and draws curves with the vertex count
//! the batch's longest member needs at this zoom: at overview zoom a curve costs 4 vertices (one
//! segment) instead of 50, and 1000× in, the edges far off screen cost nothing.
//!
//! A curve that needs more segments than a strip holds (a long one, 30× in and beyond, running
//! across many screens) is tessellated only over the parameter window whose points fall within the
//! rows on screen: y is monotone along these curves and its cubic is inverted in the shader (a
//! fitted start and two Newton steps), and the joints stay on the whole curve's uniform grid, so
//! they do not slide as the view pans and tiled exports match. Before, such a curve got its 24
//! segments spread over its whole length and showed as a polyline when zoomed in (a golden test
//! now checks the drawn line against the true curve at 20×). It would cost every curve vertex on
//! lavapipe, which shades both sides of a branch (+7–10% on the median frame of `bench render`),
//! so only batches that may need it ([`batch_needs_window`]) are drawn by the windowed entry point;
//! the others by one where the window's branch is a constant.
//!
//! Neighbouring curve segments share their joint vertices (each uses the analytic normal at the
//! shared parameter; a strip, not a list: 50 vertices for 24 segments rather than 144), so
//! translucent curves have no double-blended joints. The edge body is pulled
//! back under the arrowhead for the same reason.
//!
//! Rejected: CPU tessellation (uploads grow K-fold and must be redone on every zoom), and rerun's
//! storage-buffer vertex pulling: built and measured (one non-instanced draw, the vertex shader
//! reading edges by `vertex_index / 6`, curve strips stitched by repeated vertices), it gained
//! nothing on lavapipe's fitted view of 20 k edges, whose cost is not per instance; instancing is
//! simpler.

use std::ops::Range;

use bytemuck::{Pod, Zeroable};
use glam::Vec2;
use rayon::slice::ParallelSliceMut;

use super::cull::{self, CellGrid, View};

use super::gpu_buffer::{self, GrowBuffer};
use super::pipeline::{self, PipelineDesc};
use super::shaders;
use crate::lod::{EdgeItem, flags};

/// Maximum segments of one curve. Keep in sync with `CURVE_SEGMENTS` in shaders/edges.wgsl.
pub const CURVE_SEGMENTS: u32 = 24;
/// Screen length of one curve segment, pixels. Keep in sync with `CURVE_SEGMENT_PX` in
/// shaders/edges.wgsl.
pub const CURVE_SEGMENT_PX: f32 = 10.0;
/// How far, in pixels, a curve's polyline may stray across its chord. Keep in sync with
/// `FLATNESS_PX` in shaders/edges.wgsl.
pub const FLATNESS_PX: f32 = 0.25;
/// Fixed-point scale of the packed width. Keep in sync with `WIDTH_SCALE` in shaders/edges.wgsl.
pub const WIDTH_SCALE: f32 = 32.0;

/// One edge on the GPU. Keep in sync with `EdgeInstance` in shaders/edges.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct EdgeInstance {
    /// Start, relative to the draw list's origin.
    pub from: [f32; 2],
    /// End.
    pub to: [f32; 2],
    /// sRGB colour, byte 0 red.
    pub color: u32,
    /// Bits 0..16 width × `WIDTH_SCALE` (so up to 2047 px), bits 16..24 flags, bits 24..32 the
    /// arrowhead's world size (`arrow_scale_code`).
    pub packed: u32,
}

const _: () = assert!(std::mem::size_of::<EdgeInstance>() == 24);

impl EdgeInstance {
    /// Packs a draw-list edge.
    pub fn from_item(item: &EdgeItem) -> Self {
        let width = (item.width_px.clamp(0.0, 65535.0 / WIDTH_SCALE) * WIDTH_SCALE).round() as u32;
        EdgeInstance {
            from: item.from.to_array(),
            to: item.to.to_array(),
            color: u32::from_le_bytes(item.color),
            packed: width.min(0xffff)
                | ((item.flags & 0xff) << 16)
                | (arrow_scale_code(item.arrow_world) << 24),
        }
    }

    /// The arrowhead's world size (`EdgeItem::arrow_world`) decoded from the packed code:
    /// infinite for a constant pixel size.
    pub fn arrow_world(&self) -> f32 {
        arrow_world_of_code(self.packed >> 24)
    }
}

/// `arrow_world` as 8 bits: 0 for none (constant pixels, also for anything not positive and
/// finite), else 128 + 8·log₂, so 2⁻¹⁶..2¹⁶ world units in steps of 9%. Mirrors `arrow_len` in
/// shaders/edges.wgsl.
pub fn arrow_scale_code(arrow_world: f32) -> u32 {
    if !(arrow_world.is_finite() && arrow_world > 0.0) {
        return 0;
    }
    (arrow_world.log2() * 8.0 + 128.0).round().clamp(1.0, 255.0) as u32
}

fn arrow_world_of_code(code: u32) -> f32 {
    if code == 0 {
        f32::INFINITY
    } else {
        ((code as f32 - 128.0) / 8.0).exp2()
    }
}

/// Shortest arrowhead drawn, pixels. Keep in sync with `MIN_ARROW_PX` in shaders/edges.wgsl.
pub const MIN_ARROW_PX: f32 = 4.0;

/// An arrowhead's length on screen for a line `width_px` wide whose arrow has world size
/// `arrow_world` (infinite: constant pixels), at `zoom`. Mirrors `arrow_len` in
/// shaders/edges.wgsl.
pub fn arrow_len_px(width_px: f32, arrow_world: f32, zoom: f32) -> f32 {
    let half_w = width_px.max(1.0) * 0.5;
    let full = (3.0 * half_w + 6.0).max(9.0);
    full * (arrow_world * zoom / 9.0).min(1.0)
}

const ATTRIBUTES: [wgpu::VertexAttribute; 4] =
    wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x2, 2 => Uint32, 3 => Uint32];

/// The long-lived edge pipelines (straight, curve, arrowhead).
#[derive(Debug)]
pub struct EdgeRenderer {
    straight: wgpu::RenderPipeline,
    curve: wgpu::RenderPipeline,
    curve_windowed: wgpu::RenderPipeline,
    arrow: wgpu::RenderPipeline,
}

impl EdgeRenderer {
    /// Compiles the pipelines for `format`; `globals` is the shared camera bind group layout.
    pub fn new(
        device: &wgpu::Device,
        globals: &wgpu::BindGroupLayout,
        format: wgpu::TextureFormat,
    ) -> Self {
        let module = shaders::EDGES.create_module(device);
        let make = |label, entry, fragment_entry| {
            pipeline::create(
                device,
                PipelineDesc {
                    label,
                    module: &module,
                    vertex_entry: entry,
                    fragment_entry,
                    instance_layout: Some(wgpu::VertexBufferLayout {
                        array_stride: std::mem::size_of::<EdgeInstance>() as u64,
                        step_mode: wgpu::VertexStepMode::Instance,
                        attributes: &ATTRIBUTES,
                    }),
                    topology: wgpu::PrimitiveTopology::TriangleStrip,
                    bind_group_layouts: &[Some(globals)],
                    format,
                },
            )
        };
        EdgeRenderer {
            // One fragment entry per kind, no branch on the kind: a software rasteriser runs
            // both sides of a branch for every pixel.
            straight: make("edges straight", "vs_straight", "fs_straight"),
            curve: make("edges curve", "vs_curve", "fs_curve"),
            curve_windowed: make("edges curve windowed", "vs_curve_windowed", "fs_curve"),
            arrow: make("edges arrow", "vs_arrow", "fs_arrow"),
        }
    }
}

/// Instance ranges of the uploaded edges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeRuns {
    /// Straight edges: `0..straight`.
    pub straight: u32,
    /// Edges with arrowheads: `arrows_start..arrows_end`.
    pub arrows_start: u32,
    /// End of the arrow run.
    pub arrows_end: u32,
    /// All edges; curves are `straight..total`.
    pub total: u32,
}

/// Edges of one kind run and one world-length octave, sorted by grid cell: the unit a frame culls
/// and draws (one vertex count per batch, chosen from its longest member at the frame's zoom).
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeBatch {
    /// Instance range.
    pub range: Range<u32>,
    /// Longest world length in the batch (finite members only).
    pub max_len: f32,
    /// Largest `|dx · dy| / length` of a member, world units: how far from straight its curve
    /// bends (0 for vertical and horizontal edges; see [`flat_segments`]).
    pub max_bend: f32,
    /// Widest line, pixels.
    pub max_width_px: f32,
    /// Largest and smallest arrowhead world size of the members (infinite: a constant pixel
    /// size).
    pub max_arrow_world: f32,
    /// See `max_arrow_world`.
    pub min_arrow_world: f32,
    /// Bounding box of the members' midpoints.
    pub lo: Vec2,
    /// Upper corner of that box.
    pub hi: Vec2,
    /// A member has a non-finite end: never culled.
    pub always: bool,
    /// Where each grid cell's members start, relative to `range.start` (absent for small batches).
    pub cell_starts: Option<Vec<u32>>,
    /// Curves (else straight).
    pub curve: bool,
    /// Members carry arrowheads.
    pub arrow: bool,
}

/// Octave of a world length (0 for degenerate lengths).
fn length_class(len: f32) -> u32 {
    if len.is_finite() && len > 0.0 {
        (len.log2().floor() as i32 + 160).clamp(1, 400) as u32
    } else {
        0
    }
}

fn instance_len(e: &EdgeInstance) -> f32 {
    let (dx, dy) = (e.to[0] - e.from[0], e.to[1] - e.from[1]);
    (dx * dx + dy * dy).sqrt()
}

/// `|dx · dy| / length` of an edge's chord, world units (0 for a point).
fn bend(e: &EdgeInstance) -> f32 {
    let (dx, dy) = (e.to[0] - e.from[0], e.to[1] - e.from[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if len > 0.0 {
        (dx * dy).abs() / len
    } else {
        0.0
    }
}

fn midpoint(e: &EdgeInstance) -> Vec2 {
    (Vec2::from(e.from) + Vec2::from(e.to)) * 0.5
}

/// Batches smaller than this are culled as a whole by their bounding box.
const MIN_GRIDDED_BATCH: usize = 64;

/// Sorts each run of `out` by (length octave, grid cell), stable, and returns the batches.
pub fn batch_edges(out: &mut [EdgeInstance], runs: &EdgeRuns, grid: &CellGrid) -> Vec<EdgeBatch> {
    let mut batches = Vec::new();
    let kinds = [
        (0, runs.arrows_start, false, false),
        (runs.arrows_start, runs.straight, false, true),
        (runs.straight, runs.arrows_end, true, true),
        (runs.arrows_end, runs.total, true, false),
    ];
    let key = |e: &EdgeInstance| {
        (u64::from(length_class(instance_len(e))) << 32) | u64::from(grid.cell_of(midpoint(e)))
    };
    for (start, end, curve, arrow) in kinds {
        let Some(run) = out.get_mut(start as usize..end as usize) else {
            continue;
        };
        run.par_sort_by_cached_key(key);
        let mut i = 0;
        while i < run.len() {
            let class = run.get(i).map_or(0, |e| length_class(instance_len(e)));
            let mut j = i;
            let mut b = EdgeBatch {
                range: 0..0,
                max_len: 0.0,
                max_bend: 0.0,
                max_width_px: 0.0,
                max_arrow_world: 0.0,
                min_arrow_world: f32::INFINITY,
                lo: Vec2::splat(f32::INFINITY),
                hi: Vec2::splat(f32::NEG_INFINITY),
                always: false,
                cell_starts: None,
                curve,
                arrow,
            };
            while let Some(e) = run.get(j) {
                let len = instance_len(e);
                if length_class(len) != class {
                    break;
                }
                if len.is_finite() {
                    b.max_len = b.max_len.max(len);
                    b.max_bend = b.max_bend.max(bend(e));
                }
                let m = midpoint(e);
                if m.is_finite() && len.is_finite() {
                    b.lo = b.lo.min(m);
                    b.hi = b.hi.max(m);
                } else {
                    b.always = true;
                }
                b.max_width_px = b.max_width_px.max((e.packed & 0xffff) as f32 / WIDTH_SCALE);
                b.max_arrow_world = b.max_arrow_world.max(e.arrow_world());
                b.min_arrow_world = b.min_arrow_world.min(e.arrow_world());
                j += 1;
            }
            if grid.side > 1 && j - i >= MIN_GRIDDED_BATCH {
                let members = run.get(i..j).unwrap_or_default();
                b.cell_starts = Some(cull::cell_starts(
                    grid,
                    members.iter().map(|e| grid.cell_of(midpoint(e))),
                ));
            }
            b.range = start + i as u32..start + j as u32;
            batches.push(b);
            i = j;
        }
    }
    batches
}

/// Segments that keep a curve with vertical tangents whose chord bends `bend_px` (`|dx · dy| /
/// length`, pixels) within [`FLATNESS_PX`] of its polyline across the chord: uniform subdivision
/// of a cubic into S pieces errs by at most 0.75 M / S² along any direction, M the largest second
/// difference of the control points along it (Wang's bound), and across the chord of these curves
/// M = 1.5 × `bend_px`. Mirrors `flat_segments` in shaders/edges.wgsl.
pub fn flat_segments(bend_px: f32) -> f32 {
    (0.75 * 1.5 * bend_px / FLATNESS_PX).sqrt().ceil()
}

/// Segments a batch needs at `zoom`, never fewer than the shader draws for any member: one per
/// [`CURVE_SEGMENT_PX`] of control polygon (at most √2 × the chord for these curves; 1.5 ×
/// leaves a margin), but no more than [`flat_segments`] of the batch's most bent member (+1 for
/// the shader's rounding). A batch of near-vertical edges, as a dataflow layout has, needs a few
/// segments at any zoom.
pub fn batch_segments(max_len: f32, max_bend: f32, zoom: f32) -> u32 {
    let n = needed_segments(max_len, max_bend, zoom);
    if n.is_nan() {
        return CURVE_SEGMENTS;
    }
    (n as u32).clamp(1, CURVE_SEGMENTS)
}

/// [`batch_segments`] before the strip's cap (NaN when the inputs are not finite).
fn needed_segments(max_len: f32, max_bend: f32, zoom: f32) -> f32 {
    let by_length = (max_len * 1.5 * zoom / CURVE_SEGMENT_PX).ceil();
    let by_flatness = flat_segments(max_bend * zoom) + 1.0;
    by_length.min(by_flatness)
}

/// Whether some member of a batch may need more segments than a strip holds at `zoom`, and so
/// the windowed curve shader (tessellating only the rows on screen). A batch that cannot is drawn
/// by the shader without the window's arithmetic, which a software rasteriser would run for every
/// vertex even where its branch is not taken.
pub fn batch_needs_window(max_len: f32, max_bend: f32, zoom: f32) -> bool {
    let n = needed_segments(max_len, max_bend, zoom);
    n.is_nan() || n > CURVE_SEGMENTS as f32
}

/// Vertices of a curve strip of `segments` segments.
pub fn curve_vertices(segments: u32) -> u32 {
    2 * (segments + 1)
}

/// Pixels an edge's drawing may reach beyond its endpoints: the widened (selected) line, its
/// anti-aliasing ramp and the arrowhead (see `arrow_len` in shaders/edges.wgsl).
fn reach_px(width_px: f32) -> f32 {
    let half = (width_px * 1.5 + 1.0).max(1.0) * 0.5;
    (3.0 * half + 6.0).max(9.0) + half + 2.0
}

/// The draws of one frame: instance ranges and vertices per instance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EdgeDraws {
    /// Straight bodies (4-vertex strips).
    pub straight: Vec<Range<u32>>,
    /// Curve bodies, their vertices per instance, and whether they need the windowed shader
    /// ([`batch_needs_window`]).
    pub curves: Vec<(Range<u32>, u32, bool)>,
    /// Arrowheads (one triangle each).
    pub arrows: Vec<Range<u32>>,
}

impl EdgeDraws {
    /// Instances drawn (bodies; arrowheads not counted).
    pub fn instances(&self) -> u64 {
        let n = |r: &Range<u32>| u64::from(r.end - r.start);
        self.straight.iter().map(n).sum::<u64>()
            + self.curves.iter().map(|(r, _, _)| n(r)).sum::<u64>()
    }
}

/// What of `batches` a frame over `view` must draw.
pub fn plan_draws(batches: &[EdgeBatch], grid: &CellGrid, view: &View, out: &mut EdgeDraws) {
    out.straight.clear();
    out.curves.clear();
    out.arrows.clear();
    let mut ranges = Vec::new();
    for b in batches {
        ranges.clear();
        let margin = b.max_len * 0.5 + view.px(reach_px(b.max_width_px));
        if b.always || !margin.is_finite() {
            ranges.push(b.range.clone());
        } else if view.touches(b.lo, b.hi, margin) {
            match (&b.cell_starts, grid.cells_touching(view, margin)) {
                (Some(starts), Some((cols, rows))) => {
                    cull::cell_ranges(grid, starts, b.range.start, cols, rows, &mut ranges);
                }
                (Some(_), None) => {}
                (None, _) => ranges.push(b.range.clone()),
            }
        }
        if ranges.is_empty() {
            continue;
        }
        if b.curve {
            let vertices = curve_vertices(batch_segments(b.max_len, b.max_bend, view.zoom));
            let windowed = batch_needs_window(b.max_len, b.max_bend, view.zoom);
            out.curves
                .extend(ranges.iter().map(|r| (r.clone(), vertices, windowed)));
        } else {
            for r in &ranges {
                cull::push_range(&mut out.straight, r.clone());
            }
        }
        // The shader draws an arrowhead only where it is at least MIN_ARROW_PX long and the edge
        // at least twice that on screen (`has_arrow`): batches whose members cannot show one skip
        // the arrow draw and its vertices. The longest arrowhead is bounded with the selected
        // (widened) line's width, the shortest with the thinnest line's.
        let longest_arrow = arrow_len_px(b.max_width_px * 1.5 + 1.0, b.max_arrow_world, view.zoom);
        let shortest_arrow = arrow_len_px(0.0, b.min_arrow_world, view.zoom).max(MIN_ARROW_PX);
        if b.arrow && longest_arrow >= MIN_ARROW_PX && b.max_len * view.zoom >= 2.0 * shortest_arrow
        {
            for r in &ranges {
                cull::push_range(&mut out.arrows, r.clone());
            }
        }
    }
}

/// Reorders edges into the four runs (see the module note), stable within each run.
pub fn order_edges(edges: &[EdgeItem], out: &mut Vec<EdgeInstance>) -> EdgeRuns {
    let kind = |e: &EdgeItem| match (e.flags & flags::CURVE != 0, e.flags & flags::ARROW != 0) {
        (false, false) => 0usize,
        (false, true) => 1,
        (true, true) => 2,
        (true, false) => 3,
    };
    let mut counts = [0usize; 4];
    for e in edges {
        if let Some(c) = counts.get_mut(kind(e)) {
            *c += 1;
        }
    }
    let mut starts = [0usize; 4];
    let mut acc = 0;
    for (s, c) in starts.iter_mut().zip(counts) {
        *s = acc;
        acc += c;
    }
    out.clear();
    out.resize(edges.len(), EdgeInstance::default());
    let mut next = starts;
    for e in edges {
        if let Some(i) = next.get_mut(kind(e)) {
            if let Some(slot) = out.get_mut(*i) {
                *slot = EdgeInstance::from_item(e);
            }
            *i += 1;
        }
    }
    EdgeRuns {
        straight: (counts[0] + counts[1]) as u32,
        arrows_start: counts[0] as u32,
        arrows_end: (counts[0] + counts[1] + counts[2]) as u32,
        total: edges.len() as u32,
    }
}

/// The uploaded edge instances of the current draw list.
#[derive(Debug)]
pub struct EdgeDrawData {
    buffer: GrowBuffer,
    runs: EdgeRuns,
    grid: CellGrid,
    batches: Vec<EdgeBatch>,
    draws: EdgeDraws,
    scratch: Vec<EdgeInstance>,
}

impl Default for EdgeDrawData {
    fn default() -> Self {
        EdgeDrawData {
            buffer: GrowBuffer::new("edge instances", wgpu::BufferUsages::VERTEX),
            runs: EdgeRuns::default(),
            grid: CellGrid::single(),
            batches: Vec::new(),
            draws: EdgeDraws::default(),
            scratch: Vec::new(),
        }
    }
}

/// Edges a grid cell should hold on average.
const EDGES_PER_CELL: usize = 1024;

impl EdgeDrawData {
    /// Orders, packs and uploads `edges`. Returns the bytes uploaded.
    pub fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        edges: &[EdgeItem],
    ) -> u64 {
        let max = gpu_buffer::max_instances(device, std::mem::size_of::<EdgeInstance>())
            .min(u32::MAX as usize);
        let edges = if edges.len() > max {
            log::warn!(
                "render: {} edges exceed one GPU buffer; drawing the first {max}",
                edges.len()
            );
            edges.get(..max).unwrap_or(edges)
        } else {
            edges
        };
        self.runs = order_edges(edges, &mut self.scratch);
        self.grid = CellGrid::over(
            self.scratch.iter().map(midpoint),
            self.scratch.len(),
            EDGES_PER_CELL,
        );
        self.batches = batch_edges(&mut self.scratch, &self.runs, &self.grid);
        self.draws = EdgeDraws::default();
        let bytes: &[u8] = bytemuck::cast_slice(&self.scratch);
        self.buffer.write(device, queue, bytes);
        bytes.len() as u64
    }

    /// Picks this frame's draws: the batches and grid cells that can reach `view`, each curve
    /// batch with the segment count its zoom needs.
    pub fn set_view(&mut self, view: &View) {
        plan_draws(&self.batches, &self.grid, view, &mut self.draws);
    }

    /// The draws of the last [`Self::set_view`].
    pub fn draws(&self) -> &EdgeDraws {
        &self.draws
    }

    /// Draws bodies, then arrowheads.
    pub fn paint(&self, renderer: &EdgeRenderer, pass: &mut wgpu::RenderPass<'_>) {
        let Some(slice) = self.buffer.slice() else {
            return;
        };
        let d = &self.draws;
        pass.set_vertex_buffer(0, slice);
        if !d.straight.is_empty() {
            pass.set_pipeline(&renderer.straight);
            for r in &d.straight {
                pass.draw(0..4, r.clone());
            }
        }
        // In draw order, switching between the plain and the windowed curve shader as needed.
        let mut bound = None;
        for (r, vertices, windowed) in &d.curves {
            if bound != Some(*windowed) {
                pass.set_pipeline(if *windowed {
                    &renderer.curve_windowed
                } else {
                    &renderer.curve
                });
                bound = Some(*windowed);
            }
            pass.draw(0..*vertices, r.clone());
        }
        if !d.arrows.is_empty() {
            // One triangle each (see `vs_arrow`).
            pass.set_pipeline(&renderer.arrow);
            for r in &d.arrows {
                pass.draw(0..3, r.clone());
            }
        }
    }

    /// GPU bytes held.
    pub fn allocated_bytes(&self) -> u64 {
        self.buffer.allocated_bytes()
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init, reason = "expected lists of ranges")]
mod tests {
    use super::*;
    use glam::Vec2;

    fn edge(flags: u32, x: f32) -> EdgeItem {
        EdgeItem {
            from: Vec2::new(x, 0.0),
            to: Vec2::ONE,
            color: [0, 0, 0, 255],
            width_px: 1.5,
            flags,
            arrow_world: 0.0,
        }
    }

    #[test]
    fn arrowhead_sizes_pack_and_skip_batches_that_cannot_show_one() {
        assert_eq!(arrow_scale_code(0.0), 0);
        assert_eq!(arrow_scale_code(f32::NAN), 0);
        assert_eq!(arrow_scale_code(-3.0), 0);
        for w in [1e-4f32, 0.5, 9.0, 300.0, 5e4] {
            let back = arrow_world_of_code(arrow_scale_code(w));
            assert!((back / w - 1.0).abs() < 0.05, "{w} -> {back}");
        }
        // The flags' byte is kept apart from the size's.
        let item = EdgeItem {
            arrow_world: 9.0,
            ..edge(flags::ARROW | flags::CURVE, 0.0)
        };
        let inst = EdgeInstance::from_item(&item);
        assert_eq!((inst.packed >> 16) & 0xff, flags::ARROW | flags::CURVE);
        assert!((inst.arrow_world() - 9.0).abs() < 0.4);
        assert_eq!(
            EdgeInstance::from_item(&edge(0, 0.0)).arrow_world(),
            f32::INFINITY
        );
        // Full size from the zoom where the world size is 9 px; proportional below.
        assert_eq!(arrow_len_px(1.0, 9.0, 2.0), 9.0);
        assert!((arrow_len_px(1.0, 9.0, 0.5) - 4.5).abs() < 1e-5);
        assert_eq!(arrow_len_px(1.0, f32::INFINITY, 0.01), 9.0);

        // 100-unit arrow edges into 28-unit boxes: the arrow draw is planned only where the
        // arrowhead reaches MIN_ARROW_PX.
        let edges: Vec<EdgeItem> = (0..10)
            .map(|i| EdgeItem {
                from: Vec2::new(i as f32 * 10.0, 0.0),
                to: Vec2::new(i as f32 * 10.0, 100.0),
                arrow_world: EdgeItem::arrow_world_for(28.0),
                ..edge(flags::ARROW, 0.0)
            })
            .collect();
        let mut inst = Vec::new();
        let runs = order_edges(&edges, &mut inst);
        let grid = CellGrid::single();
        let batches = batch_edges(&mut inst, &runs, &grid);
        let mut draws = EdgeDraws::default();
        for (zoom, arrows) in [(1.0, true), (0.5, true), (0.3, false), (0.05, false)] {
            plan_draws(&batches, &grid, &View::everything(zoom), &mut draws);
            assert_eq!(!draws.arrows.is_empty(), arrows, "zoom {zoom}");
            assert_eq!(draws.instances(), 10);
        }
    }

    #[test]
    fn runs_put_arrows_in_the_middle() {
        let edges = [
            edge(flags::CURVE, 0.0),
            edge(flags::ARROW, 1.0),
            edge(0, 2.0),
            edge(flags::CURVE | flags::ARROW, 3.0),
            edge(0, 4.0),
        ];
        let mut out = Vec::new();
        let runs = order_edges(&edges, &mut out);
        assert_eq!(
            runs,
            EdgeRuns {
                straight: 3,
                arrows_start: 2,
                arrows_end: 4,
                total: 5
            }
        );
        let xs: Vec<f32> = out.iter().map(|e| e.from[0]).collect();
        assert_eq!(xs, [2.0, 4.0, 1.0, 3.0, 0.0]);
        assert_eq!(out[0].packed & 0xffff, 48); // 1.5 px * 32
    }

    #[test]
    fn curve_batches_group_by_length_and_pick_segments_by_zoom() {
        let curve = |len: f32, f: u32| EdgeItem {
            from: Vec2::ZERO,
            to: Vec2::new(0.0, len),
            color: [0; 4],
            width_px: 1.0,
            flags: flags::CURVE | f,
            arrow_world: 0.0,
        };
        let edges = [
            curve(100.0, 0),
            curve(1.5, 0),
            curve(120.0, 0),
            curve(1.2, flags::ARROW),
            curve(3.0, flags::ARROW),
        ];
        let mut out = Vec::new();
        let runs = order_edges(&edges, &mut out);
        let batches = batch_edges(&mut out, &runs, &CellGrid::single());
        // Arrow run: [1.2] and [3.0] (different octaves); plain run: [1.5], [100, 120].
        let lens: Vec<(u32, u32, f32, bool)> = batches
            .iter()
            .map(|b| (b.range.start, b.range.end, b.max_len, b.arrow))
            .collect();
        assert_eq!(
            lens,
            [
                (0, 1, 1.2, true),
                (1, 2, 3.0, true),
                (2, 3, 1.5, false),
                (3, 5, 120.0, false)
            ]
        );
        assert_eq!(out[3].to[1], 100.0);
        // 120 world units at zoom 0.1 is 18 px of polygon: 2 segments; deep zoom hits the cap for
        // a diagonal batch (bend = length / 2)…
        assert_eq!(batch_segments(120.0, 60.0, 0.1), 2);
        assert_eq!(batch_segments(120.0, 60.0, 1000.0), CURVE_SEGMENTS);
        assert_eq!(batch_segments(0.0, 0.0, 1.0), 1);
        // …but a vertical batch is straight however long (the +1 covers the shader's rounding),
        // and a nearly vertical one (dx 2 over dy 120: bend 2, so 10 px at 5 px per unit) needs
        // flat_segments(10) + 1 = 8, not the 24 its 900 px of polygon would ask for.
        assert_eq!(batch_segments(120.0, 0.0, 1000.0), 1);
        assert_eq!(batch_segments(120.0, 2.0, 5.0), 8);
        // Only a batch that may need more than the strip holds takes the windowed shader.
        assert!(!batch_needs_window(120.0, 60.0, 0.1));
        assert!(batch_needs_window(120.0, 60.0, 1000.0));
        assert!(!batch_needs_window(120.0, 0.0, 1000.0));
        // The bound: 0.75 · 1.5 · bend / S² ≤ FLATNESS_PX, and one segment fewer would not do.
        let s = flat_segments(100.0);
        assert!(0.75 * 1.5 * 100.0 / (s * s) <= FLATNESS_PX);
        assert!(0.75 * 1.5 * 100.0 / ((s - 1.0) * (s - 1.0)) > FLATNESS_PX);
        let mut draws = EdgeDraws::default();
        plan_draws(
            &batches,
            &CellGrid::single(),
            &View::everything(10.0),
            &mut draws,
        );
        assert!(draws.straight.is_empty());
        // At zoom 10 the 1.2-unit curve is 12 px, too short to show an arrowhead; the 3-unit one
        // is 30 px and gets one.
        assert_eq!(draws.arrows, [1..2]);
        assert_eq!(draws.curves.len(), 4);
    }

    /// A 100×100 lattice of short straight edges and a few long curves, viewed through a small
    /// window: the frame draws the cells around the window, not the lattice, and every edge that
    /// crosses the window is among those drawn.
    #[test]
    fn a_zoomed_in_view_draws_only_nearby_cells_and_never_drops_a_visible_edge() {
        let mut edges = Vec::new();
        for y in 0..100 {
            for x in 0..100 {
                let p = Vec2::new(x as f32, y as f32) * 10.0;
                edges.push(EdgeItem {
                    from: p,
                    to: p + Vec2::new(10.0, 0.0),
                    color: [0, 0, 0, 255],
                    width_px: 1.0,
                    flags: if (x + y) % 3 == 0 { flags::ARROW } else { 0 },
                    arrow_world: 0.0,
                });
            }
        }
        for i in 0..5 {
            edges.push(EdgeItem {
                from: Vec2::new(i as f32 * 200.0, 0.0),
                to: Vec2::new(1000.0 - i as f32 * 200.0, 1000.0),
                color: [0, 0, 0, 255],
                width_px: 2.0,
                flags: flags::CURVE,
                arrow_world: 0.0,
            });
        }
        let mut out = Vec::new();
        let runs = order_edges(&edges, &mut out);
        let grid = CellGrid::over(out.iter().map(midpoint), out.len(), 256);
        assert!(grid.side > 1);
        let batches = batch_edges(&mut out, &runs, &grid);
        let view = View {
            min: Vec2::new(503.0, 503.0),
            max: Vec2::new(527.0, 517.0),
            zoom: 40.0,
        };
        let mut draws = EdgeDraws::default();
        plan_draws(&batches, &grid, &view, &mut draws);
        let drawn: Vec<bool> = (0..out.len() as u32)
            .map(|i| {
                draws.straight.iter().any(|r| r.contains(&i))
                    || draws.curves.iter().any(|(r, _, _)| r.contains(&i))
            })
            .collect();
        let count = drawn.iter().filter(|&&d| d).count();
        assert!(count < out.len() / 10, "drew {count} of {}", out.len());
        for (e, &d) in out.iter().zip(&drawn) {
            let (lo, hi) = (
                Vec2::from(e.from).min(Vec2::from(e.to)),
                Vec2::from(e.from).max(Vec2::from(e.to)),
            );
            if view.touches(lo, hi, 0.0) {
                assert!(d, "edge {e:?} crosses the view but was culled");
            }
        }
        // The long curves are one batch drawn with the view's segment count.
        assert!(
            draws
                .curves
                .iter()
                .all(|&(_, v, windowed)| v == curve_vertices(CURVE_SEGMENTS) && windowed)
        );
        // Arrowheads only over the drawn part of the arrow run.
        let arrows: u32 = draws.arrows.iter().map(|r| r.end - r.start).sum();
        assert!(arrows > 0 && arrows < runs.straight - runs.arrows_start);
        // Fitting the whole lattice draws every edge, each batch as one range.
        plan_draws(
            &batches,
            &grid,
            &View {
                min: Vec2::splat(-10.0),
                max: Vec2::splat(1010.0),
                zoom: 1.0,
            },
            &mut draws,
        );
        assert_eq!(draws.instances(), out.len() as u64);
        assert!(draws.straight.len() <= 2);
    }
}
