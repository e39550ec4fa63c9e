//! The benchmark's baseline: a minimal instanced SDF-circle pipeline (16-byte instances, one draw,
//! nothing else), as measured in GPU-NOTES.md. `modelmap bench render` draws it over the same nodes
//! in the same run and reports our full renderer's frame time as a ratio of it.

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

/// The baseline pipeline with its instances.
#[derive(Debug)]
pub struct BaselineRenderer {
    pipeline: wgpu::RenderPipeline,
    globals_buffer: wgpu::Buffer,
    globals_bind_group: wgpu::BindGroup,
    instances: GrowBuffer,
    count: u32,
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
        let pipeline = pipeline::create(
            device,
            PipelineDesc {
                label: "baseline circles",
                module: &module,
                vertex_entry: "vs_circle",
                fragment_entry: "fs_circle",
                instance_layout: Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<BaselineInstance>() as u64,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &ATTRIBUTES,
                }),
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                bind_group_layouts: &[Some(&layout)],
                format,
            },
        );
        BaselineRenderer {
            pipeline,
            globals_buffer,
            globals_bind_group,
            instances: GrowBuffer::new("baseline circles", wgpu::BufferUsages::VERTEX),
            count: 0,
        }
    }

    /// Uploads one circle per node of `list`; the radius is the larger half size, so each circle's
    /// quad covers the same pixels as the node's (a fair fill-rate comparison).
    pub fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        list: &DrawList,
    ) -> Result<(), RenderError> {
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

    /// Draws the circles.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>) {
        if let Some(slice) = self.instances.slice() {
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.globals_bind_group, &[]);
            pass.set_vertex_buffer(0, slice);
            pass.draw(0..4, 0..self.count);
        }
    }
}
