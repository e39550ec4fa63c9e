//! The benchmark's baseline: a minimal instanced SDF-circle pipeline (16-byte instances, one draw,
//! nothing else), as measured in GPU-NOTES.md. `modelmap bench render` draws it over the same nodes
//! in the same run and reports our full renderer's frame time as a ratio of it.
//!
//! The same-scene baseline adds the scene's edges, drawn as minimally as a pipeline can with the
//! circles' anti-aliasing: one quad per edge from start to end at the edge's pixel width, coverage
//! by distance across it (no curve, cap or arrowhead), in one more instanced draw beneath the
//! circles. Our renderer draws three items per
//! node in a 10 k-node, 20 k-edge scene, so "within 1.3× of a minimal pipeline" is only a statement
//! about the renderer when the minimal pipeline draws the same items.

use bytemuck::{Pod, Zeroable};

use super::gpu_buffer::GrowBuffer;
use super::pipeline::{self, PipelineDesc};
use super::shaders;
use super::{Globals, RenderError};
use crate::lod::DrawList;
use crate::view::Camera;

/// One circle. Keep in sync with `Circle` in shaders/baseline.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct BaselineInstance {
    /// Centre relative to the draw list's origin.
    pub center: [f32; 2],
    /// Radius, world units.
    pub radius: f32,
    /// sRGB colour, byte 0 red.
    pub color: u32,
}

const _: () = assert!(std::mem::size_of::<BaselineInstance>() == 16);

const ATTRIBUTES: [wgpu::VertexAttribute; 3] =
    wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32, 2 => Uint32];

/// One edge of the same-scene baseline. Keep in sync with `Segment` in shaders/baseline.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct BaselineSegment {
    /// Start relative to the draw list's origin.
    pub from: [f32; 2],
    /// End relative to the draw list's origin.
    pub to: [f32; 2],
    /// sRGB colour, byte 0 red.
    pub color: u32,
    /// Width on screen, pixels.
    pub width_px: f32,
}

const _: () = assert!(std::mem::size_of::<BaselineSegment>() == 24);

const SEGMENT_ATTRIBUTES: [wgpu::VertexAttribute; 4] =
    wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x2, 2 => Uint32, 3 => Float32];

/// The baseline pipeline with its instances.
#[derive(Debug)]
pub struct BaselineRenderer {
    pipeline: wgpu::RenderPipeline,
    segment_pipeline: wgpu::RenderPipeline,
    globals_buffer: wgpu::Buffer,
    globals_bind_group: wgpu::BindGroup,
    instances: GrowBuffer,
    count: u32,
    segments: GrowBuffer,
    segment_count: u32,
}

impl BaselineRenderer {
    /// Compiles the pipeline for `format`.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> Self {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("baseline globals"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }],
        });
        let globals_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("baseline globals"),
            size: std::mem::size_of::<Globals>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let globals_bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("baseline globals"),
            layout: &layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: globals_buffer.as_entire_binding(),
            }],
        });
        let module = shaders::BASELINE.create_module(device);
        // Both draws: instanced 4-vertex strips over the same globals.
        let strip = |label, vs, fs, stride: usize, attributes| {
            pipeline::create(
                device,
                PipelineDesc {
                    label,
                    module: &module,
                    vertex_entry: vs,
                    fragment_entry: fs,
                    instance_layout: Some(wgpu::VertexBufferLayout {
                        array_stride: stride as u64,
                        step_mode: wgpu::VertexStepMode::Instance,
                        attributes,
                    }),
                    topology: wgpu::PrimitiveTopology::TriangleStrip,
                    bind_group_layouts: &[Some(&layout)],
                    format,
                },
            )
        };
        let pipeline = strip(
            "baseline circles",
            "vs_circle",
            "fs_circle",
            std::mem::size_of::<BaselineInstance>(),
            &ATTRIBUTES,
        );
        let segment_pipeline = strip(
            "baseline segments",
            "vs_segment",
            "fs_segment",
            std::mem::size_of::<BaselineSegment>(),
            &SEGMENT_ATTRIBUTES,
        );
        BaselineRenderer {
            pipeline,
            segment_pipeline,
            globals_buffer,
            globals_bind_group,
            instances: GrowBuffer::new("baseline circles", wgpu::BufferUsages::VERTEX),
            count: 0,
            segments: GrowBuffer::new("baseline segments", wgpu::BufferUsages::VERTEX),
            segment_count: 0,
        }
    }

    /// Uploads one circle per node of `list`; the radius is the larger half size, so each circle's
    /// quad covers the same pixels as the node's (a fair fill-rate comparison). With `edges`, also
    /// one flat segment per edge (the same-scene baseline); without, none.
    pub fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        list: &DrawList,
        edges: bool,
    ) -> Result<(), RenderError> {
        let segments: Vec<BaselineSegment> = if edges {
            list.edges
                .iter()
                .map(|e| BaselineSegment {
                    from: e.from.to_array(),
                    to: e.to.to_array(),
                    color: u32::from_le_bytes(e.color),
                    width_px: e.width_px,
                })
                .collect()
        } else {
            Vec::new()
        };
        self.segment_count = u32::try_from(segments.len())
            .map_err(|_| RenderError::BadArgs("too many segments".into()))?;
        if !segments.is_empty() {
            self.segments
                .write(device, queue, bytemuck::cast_slice(&segments));
        }
        let circles: Vec<BaselineInstance> = list
            .nodes
            .iter()
            .map(|n| BaselineInstance {
                center: n.center.to_array(),
                radius: n.half_size.abs().max_element(),
                color: u32::from_le_bytes(n.fill),
            })
            .collect();
        self.count = u32::try_from(circles.len())
            .map_err(|_| RenderError::BadArgs("too many circles".into()))?;
        self.instances
            .write(device, queue, bytemuck::cast_slice(&circles));
        Ok(())
    }

    /// Writes the camera uniform.
    pub fn prepare(&self, queue: &wgpu::Queue, camera: &Camera, list: &DrawList) {
        let globals = Globals::new(camera, list);
        queue.write_buffer(&self.globals_buffer, 0, bytemuck::bytes_of(&globals));
    }

    /// Draws the segments (if uploaded), then the circles over them.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>) {
        if self.segment_count > 0
            && let Some(slice) = self.segments.slice()
        {
            pass.set_pipeline(&self.segment_pipeline);
            pass.set_bind_group(0, &self.globals_bind_group, &[]);
            pass.set_vertex_buffer(0, slice);
            pass.draw(0..4, 0..self.segment_count);
        }
        if let Some(slice) = self.instances.slice() {
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.globals_bind_group, &[]);
            pass.set_vertex_buffer(0, slice);
            pass.draw(0..4, 0..self.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use glam::{DVec2, Vec2};

    use super::*;
    use crate::lod::EdgeItem;
    use crate::render::{OFFSCREEN_FORMAT, RenderContext, offscreen};

    /// Draws `list` with the baseline (`edges` or not) into a `w`×`h` target; RGBA rows, unpadded.
    fn draw(ctx: &RenderContext, list: &DrawList, edges: bool, w: u32, h: u32) -> Vec<[u8; 4]> {
        let (texture, view) = offscreen::target_texture(
            &ctx.device,
            "baseline test",
            OFFSCREEN_FORMAT,
            w,
            h,
            wgpu::TextureUsages::COPY_SRC,
        );
        let stride = offscreen::padded_row_bytes(w);
        let readback = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("baseline test readback"),
            size: u64::from(stride) * u64::from(h),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut baseline = BaselineRenderer::new(&ctx.device, OFFSCREEN_FORMAT);
        baseline
            .upload(&ctx.device, &ctx.queue, list, edges)
            .unwrap();
        let camera = Camera::new(DVec2::new(f64::from(w), f64::from(h)));
        baseline.prepare(&ctx.queue, &camera, list);
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: None,
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(offscreen::clear_color([255, 255, 255, 255])),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            });
            baseline.paint(&mut pass);
        }
        offscreen::copy_to_readback(&mut encoder, &texture, &readback, w, h);
        let submission = ctx.queue.submit([encoder.finish()]);
        let bytes = offscreen::read_buffer(ctx, &readback, submission).unwrap();
        (0..h)
            .flat_map(|y| {
                let row = &bytes[(y * stride) as usize..];
                (0..w as usize)
                    .map(|x| [row[4 * x], row[4 * x + 1], row[4 * x + 2], row[4 * x + 3]])
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn same_scene_baseline_draws_the_edges_as_segments() {
        let Some(ctx) = RenderContext::for_tests() else {
            return;
        };
        // A 64×32 view centred on the origin at 1 px per unit: one red edge across the middle row
        // band (y = 0, 3 px wide) from x = -20 to x = 20, no nodes.
        let mut list = DrawList::new(DVec2::ZERO);
        list.edges.push(EdgeItem {
            from: Vec2::new(-20.0, 0.0),
            to: Vec2::new(20.0, 0.0),
            color: [255, 0, 0, 255],
            width_px: 3.0,
            flags: 0,
            arrow_world: 0.0,
        });
        let (w, h) = (64u32, 32u32);
        let with = draw(&ctx, &list, true, w, h);
        let at = |img: &[[u8; 4]], x: u32, y: u32| img[(y * w + x) as usize];
        // Screen x = 32 ± 20, y = 16 ± 1.5.
        for x in [14, 32, 50] {
            assert_eq!(
                at(&with, x, 16),
                [255, 0, 0, 255],
                "on the segment at x {x}"
            );
        }
        assert_eq!(at(&with, 32, 20), [255, 255, 255, 255], "beside it");
        assert_eq!(at(&with, 5, 16), [255, 255, 255, 255], "past its start");
        assert_eq!(at(&with, 58, 16), [255, 255, 255, 255], "past its end");
        // The circles-only baseline leaves the edge out.
        let without = draw(&ctx, &list, false, w, h);
        assert!(without.iter().all(|p| *p == [255, 255, 255, 255]));
    }
}
