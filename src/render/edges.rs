//! Edges: instanced ribbons of constant pixel width, expanded in the vertex shader from the two
//! endpoints, anti-aliased by a distance-across varying (1 px ramp; lines thinner than a pixel are
//! drawn 1 px wide with proportionally less alpha, which reads as the right density).
//!
//! Instances are reordered into four runs — straight without arrow, straight with arrow, curved with
//! arrow, curved without — so three draw calls cover everything with no per-vertex branching on
//! the kind: straight edges are a 4-vertex strip; CURVE edges (a cubic with vertical tangents) use
//! up to `6 × CURVE_SEGMENTS` vertices per instance, the vertex shader picking its segment from the
//! vertex index and collapsing segments beyond what the screen length needs. Vertex shading is not
//! free (lavapipe runs it on the CPU), so curves are also sorted into batches by world-length octave
//! at upload and each batch is drawn with the vertex count its longest member needs at this frame's
//! zoom: at overview zoom a curve costs 6 vertices (one segment) instead of 144. Arrowheads are one quad per ARROW edge over the middle two runs. Neighbouring curve
//! segments share their joint vertices (each uses the analytic normal at the shared parameter), so
//! translucent curves have no double-blended joints. The edge body is pulled back under the
//! arrowhead for the same reason.
//!
//! Rejected: CPU tessellation (uploads grow K-fold and must be redone on every zoom), and rerun's
//! storage-buffer vertex pulling (a fine choice, but instancing is simpler and `bench render`
//! shows it within budget on lavapipe; see DESIGN.md).

use bytemuck::{Pod, Zeroable};

use super::gpu_buffer::{self, GrowBuffer};
use super::pipeline::{self, PipelineDesc};
use super::shaders;
use crate::lod::{EdgeItem, flags};

/// Maximum segments of one curve. Keep in sync with `CURVE_SEGMENTS` in shaders/edges.wgsl.
pub const CURVE_SEGMENTS: u32 = 24;
/// Screen length of one curve segment, pixels. Keep in sync with `CURVE_SEGMENT_PX` in
/// shaders/edges.wgsl.
pub const CURVE_SEGMENT_PX: f32 = 10.0;
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
    /// Bits 0..16 width × [`WIDTH_SCALE`] (so up to 2047 px), bits 16..32 flags.
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
            packed: width.min(0xffff) | ((item.flags & 0xffff) << 16),
        }
    }
}

const ATTRIBUTES: [wgpu::VertexAttribute; 4] =
    wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x2, 2 => Uint32, 3 => Uint32];

/// The long-lived edge pipelines (straight, curve, arrowhead).
#[derive(Debug)]
pub struct EdgeRenderer {
    straight: wgpu::RenderPipeline,
    curve: wgpu::RenderPipeline,
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
        let make = |label, entry, topology| {
            pipeline::create(
                device,
                PipelineDesc {
                    label,
                    module: &module,
                    vertex_entry: entry,
                    fragment_entry: "fs_edge",
                    instance_layout: Some(wgpu::VertexBufferLayout {
                        array_stride: std::mem::size_of::<EdgeInstance>() as u64,
                        step_mode: wgpu::VertexStepMode::Instance,
                        attributes: &ATTRIBUTES,
                    }),
                    topology,
                    bind_group_layouts: &[Some(globals)],
                    format,
                },
            )
        };
        EdgeRenderer {
            straight: make(
                "edges straight",
                "vs_straight",
                wgpu::PrimitiveTopology::TriangleStrip,
            ),
            curve: make(
                "edges curve",
                "vs_curve",
                wgpu::PrimitiveTopology::TriangleList,
            ),
            arrow: make(
                "edges arrow",
                "vs_arrow",
                wgpu::PrimitiveTopology::TriangleStrip,
            ),
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

/// Curves of similar world length, drawn with one vertex count chosen per frame from the zoom.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveBatch {
    /// Instance range.
    pub range: std::ops::Range<u32>,
    /// Longest world length in the batch.
    pub max_len: f32,
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

/// Sorts the curve runs of `out` by length octave and returns their batches.
pub fn batch_curves(out: &mut [EdgeInstance], runs: &EdgeRuns) -> Vec<CurveBatch> {
    let mut batches = Vec::new();
    for (start, end) in [
        (runs.straight, runs.arrows_end),
        (runs.arrows_end, runs.total),
    ] {
        let Some(run) = out.get_mut(start as usize..end as usize) else {
            continue;
        };
        run.sort_by_key(|e| length_class(instance_len(e)));
        let mut i = 0;
        while i < run.len() {
            let class = run.get(i).map_or(0, |e| length_class(instance_len(e)));
            let mut j = i;
            let mut max_len = 0.0f32;
            while let Some(e) = run.get(j) {
                let len = instance_len(e);
                if length_class(len) != class {
                    break;
                }
                if len.is_finite() {
                    max_len = max_len.max(len);
                }
                j += 1;
            }
            batches.push(CurveBatch {
                range: start + i as u32..start + j as u32,
                max_len,
            });
            i = j;
        }
    }
    batches
}

/// Segments a batch needs at `zoom`: the control polygon of a curve with vertical tangents is at
/// most √2 × its chord; 1.5 × leaves a margin so the shader's own count never exceeds it.
pub fn batch_segments(max_len: f32, zoom: f32) -> u32 {
    let polygon_px = max_len * 1.5 * zoom;
    if !polygon_px.is_finite() {
        return CURVE_SEGMENTS;
    }
    ((polygon_px / CURVE_SEGMENT_PX).ceil() as u32).clamp(1, CURVE_SEGMENTS)
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
    batches: Vec<CurveBatch>,
    /// Per batch, vertices per instance at the current zoom.
    batch_vertices: Vec<u32>,
    scratch: Vec<EdgeInstance>,
}

impl Default for EdgeDrawData {
    fn default() -> Self {
        EdgeDrawData {
            buffer: GrowBuffer::new("edge instances", wgpu::BufferUsages::VERTEX),
            runs: EdgeRuns::default(),
            batches: Vec::new(),
            batch_vertices: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

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
        self.batches = batch_curves(&mut self.scratch, &self.runs);
        let bytes: &[u8] = bytemuck::cast_slice(&self.scratch);
        self.buffer.write(device, queue, bytes);
        bytes.len() as u64
    }

    /// Chooses each curve batch's segment count for this frame's zoom.
    pub fn set_zoom(&mut self, zoom: f32) {
        self.batch_vertices.clear();
        self.batch_vertices.extend(
            self.batches
                .iter()
                .map(|b| 6 * batch_segments(b.max_len, zoom)),
        );
    }

    /// Draws bodies, then arrowheads.
    pub fn paint(&self, renderer: &EdgeRenderer, pass: &mut wgpu::RenderPass<'_>) {
        let Some(slice) = self.buffer.slice() else {
            return;
        };
        let r = self.runs;
        pass.set_vertex_buffer(0, slice);
        if r.straight > 0 {
            pass.set_pipeline(&renderer.straight);
            pass.draw(0..4, 0..r.straight);
        }
        if r.total > r.straight {
            pass.set_pipeline(&renderer.curve);
            for (i, batch) in self.batches.iter().enumerate() {
                let vertices = self
                    .batch_vertices
                    .get(i)
                    .copied()
                    .unwrap_or(6 * CURVE_SEGMENTS);
                pass.draw(0..vertices, batch.range.clone());
            }
        }
        if r.arrows_end > r.arrows_start {
            pass.set_pipeline(&renderer.arrow);
            pass.draw(0..4, r.arrows_start..r.arrows_end);
        }
    }

    /// GPU bytes held.
    pub fn allocated_bytes(&self) -> u64 {
        self.buffer.allocated_bytes()
    }
}

#[cfg(test)]
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
        let batches = batch_curves(&mut out, &runs);
        // Arrow run: [1.2] and [3.0] (different octaves); plain run: [1.5], [100, 120].
        let lens: Vec<(u32, u32, f32)> = batches
            .iter()
            .map(|b| (b.range.start, b.range.end, b.max_len))
            .collect();
        assert_eq!(lens, [(0, 1, 1.2), (1, 2, 3.0), (2, 3, 1.5), (3, 5, 120.0)]);
        assert_eq!(out[3].to[1], 100.0);
        // 120 world units at zoom 0.1 is 18 px of polygon: 2 segments; deep zoom hits the cap.
        assert_eq!(batch_segments(120.0, 0.1), 2);
        assert_eq!(batch_segments(120.0, 1000.0), CURVE_SEGMENTS);
        assert_eq!(batch_segments(0.0, 1.0), 1);
    }
}
