//! Nodes: one instanced quad per node (a 4-vertex triangle strip), shaped in the fragment shader by
//! a rounded-box signed distance function. A circle is the same function with the radius equal to
//! the half size, so both shapes share one pipeline and one draw call. The distance is in pixels,
//! so the 1 px anti-aliasing, borders and selection rings look the same at every zoom.
//!
//! An instance is 24 bytes (centre, half size, sRGB fill, flags/shape/alpha packed in one word),
//! so 10 M nodes take 240 MB. Rejected: tessellated meshes per shape (more vertices, and rounded
//! corners need many of them) and MSAA (the SDF gives better edges at no memory cost).

use std::ops::Range;

use bytemuck::{Pod, Zeroable};
use glam::Vec2;
use rayon::prelude::*;

use super::cull::{ChunkCuller, View};

use super::gpu_buffer::{self, GrowBuffer};
use super::pipeline::{self, PipelineDesc};
use super::shaders;
use crate::lod::{NodeItem, NodeShape};

/// Shape code of a circle in [`NodeInstance::packed`]. Keep in sync with `SHAPE_CIRCLE` in
/// shaders/nodes.wgsl.
pub const SHAPE_CIRCLE: u32 = 1;

/// One node on the GPU. Keep in sync with `NodeInstance` in shaders/nodes.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct NodeInstance {
    /// Centre relative to the draw list's origin.
    pub center: [f32; 2],
    /// Half width and height, world units.
    pub half_size: [f32; 2],
    /// sRGB fill, byte 0 red.
    pub fill: u32,
    /// Bits 0..16 flags, 16..24 shape, 24..32 alpha × 255.
    pub packed: u32,
}

const _: () = assert!(std::mem::size_of::<NodeInstance>() == 24);

/// Pixels a node's drawing reaches beyond its box: the selection ring (`RING_OUTSET_PX` in
/// shaders/nodes.wgsl), the half-pixel minimum size and anti-aliasing.
const MARGIN_PX: f32 = 8.0;

impl NodeInstance {
    /// Packs a draw-list node.
    pub fn from_item(item: &NodeItem) -> Self {
        let shape = match item.shape {
            NodeShape::RoundedBox => 0,
            NodeShape::Circle => SHAPE_CIRCLE,
        };
        // NaN alpha becomes 0 (`as` saturates and maps NaN to 0).
        let alpha = (item.alpha.clamp(0.0, 1.0) * 255.0).round() as u32;
        NodeInstance {
            center: item.center.to_array(),
            half_size: item.half_size.abs().to_array(),
            fill: u32::from_le_bytes(item.fill),
            packed: (item.flags & 0xffff) | (shape << 16) | (alpha << 24),
        }
    }
}

const ATTRIBUTES: [wgpu::VertexAttribute; 4] =
    wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x2, 2 => Uint32, 3 => Uint32];

/// The long-lived nodes pipeline.
#[derive(Debug)]
pub struct NodeRenderer {
    pipeline: wgpu::RenderPipeline,
}

impl NodeRenderer {
    /// Compiles the pipeline for `format`; `globals` is the shared camera bind group layout.
    pub fn new(
        device: &wgpu::Device,
        globals: &wgpu::BindGroupLayout,
        format: wgpu::TextureFormat,
    ) -> Self {
        let module = shaders::NODES.create_module(device);
        let pipeline = pipeline::create(
            device,
            PipelineDesc {
                label: "nodes",
                module: &module,
                vertex_entry: "vs_node",
                fragment_entry: "fs_node",
                instance_layout: Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<NodeInstance>() as u64,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &ATTRIBUTES,
                }),
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                bind_group_layouts: &[Some(globals)],
                format,
            },
        );
        NodeRenderer { pipeline }
    }
}

/// The uploaded node instances of the current draw list.
#[derive(Debug)]
pub struct NodeDrawData {
    buffer: GrowBuffer,
    count: u32,
    scratch: Vec<NodeInstance>,
    culler: ChunkCuller,
    visible: Vec<Range<u32>>,
}

impl Default for NodeDrawData {
    fn default() -> Self {
        NodeDrawData {
            buffer: GrowBuffer::new("node instances", wgpu::BufferUsages::VERTEX),
            count: 0,
            scratch: Vec::new(),
            culler: ChunkCuller::default(),
            visible: Vec::new(),
        }
    }
}

impl NodeDrawData {
    /// Packs and uploads `nodes` (in parallel; the buffer is reused). Returns the bytes uploaded.
    pub fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        nodes: &[NodeItem],
    ) -> u64 {
        let max = gpu_buffer::max_instances(device, std::mem::size_of::<NodeInstance>())
            .min(u32::MAX as usize);
        let nodes = if nodes.len() > max {
            log::warn!(
                "render: {} nodes exceed one GPU buffer; drawing the first {max}",
                nodes.len()
            );
            nodes.get(..max).unwrap_or(nodes)
        } else {
            nodes
        };
        nodes
            .par_iter()
            .map(NodeInstance::from_item)
            .collect_into_vec(&mut self.scratch);
        let bytes: &[u8] = bytemuck::cast_slice(&self.scratch);
        self.buffer.write(device, queue, bytes);
        self.count = self.scratch.len() as u32;
        let scratch = &self.scratch;
        self.culler = ChunkCuller::build(scratch.len(), |i| {
            scratch.get(i).map_or((Vec2::ZERO, Vec2::ZERO), |n| {
                let (c, h) = (Vec2::from(n.center), Vec2::from(n.half_size).abs());
                (c - h, c + h)
            })
        });
        self.visible.clear();
        self.visible.push(0..self.count);
        bytes.len() as u64
    }

    /// Picks the chunks of nodes that can reach `view` (list order kept: frames stay under their
    /// children).
    pub fn set_view(&mut self, view: &View) {
        self.culler.visible(view, MARGIN_PX, &mut self.visible);
    }

    /// Nodes the last [`Self::set_view`] kept (whole chunks).
    pub fn drawn(&self) -> u64 {
        self.visible
            .iter()
            .map(|r| u64::from(r.end - r.start))
            .sum()
    }

    /// Draws the nodes.
    pub fn paint(&self, renderer: &NodeRenderer, pass: &mut wgpu::RenderPass<'_>) {
        if let Some(slice) = self.buffer.slice() {
            pass.set_pipeline(&renderer.pipeline);
            pass.set_vertex_buffer(0, slice);
            for r in &self.visible {
                pass.draw(0..4, r.clone());
            }
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
    use crate::lod::flags;
    use glam::Vec2;

    #[test]
    fn packs_flags_shape_and_alpha() {
        let item = NodeItem {
            center: Vec2::new(1.0, -2.0),
            half_size: Vec2::new(-3.0, 4.0),
            fill: [10, 20, 30, 40],
            shape: NodeShape::Circle,
            flags: flags::SELECTED | flags::FRAME,
            alpha: 0.5,
        };
        let inst = NodeInstance::from_item(&item);
        assert_eq!(inst.center, [1.0, -2.0]);
        assert_eq!(inst.half_size, [3.0, 4.0]);
        assert_eq!(inst.fill.to_le_bytes(), [10, 20, 30, 40]);
        assert_eq!(inst.packed & 0xffff, flags::SELECTED | flags::FRAME);
        assert_eq!((inst.packed >> 16) & 0xff, SHAPE_CIRCLE);
        assert_eq!(inst.packed >> 24, 128);
        let nan = NodeInstance::from_item(&NodeItem {
            alpha: f32::NAN,
            ..item
        });
        assert_eq!(nan.packed >> 24, 0);
    }
}
