//! [`GraphRenderer`]: runs the four pipelines in painter's order — heatmaps, edges, nodes,
//! labels — over one [`DrawList`].
//!
//! `prepare` writes the camera uniform every frame (32 bytes) and re-uploads instance buffers only
//! when `DrawList::revision` changes, so panning and zooming never re-upload; labels are culled to
//! the viewport every frame and re-uploaded only when the visible glyphs change. `paint` records
//! draws into a pass it does not own (no clear), so the same code runs inside egui's render pass
//! (through an `egui_wgpu::CallbackTrait`, whose `paint` gives a `RenderPass<'static>`, which our
//! `RenderPass<'_>` accepts) and in the off-screen renderer.
//!
//! The camera is sent relative to the draw list's origin: `camera.center - list.origin` is computed
//! in f64 and only the (small) difference becomes f32, so a 10⁶ zoom far from the world origin
//! keeps sub-pixel precision.

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};

use super::cull::View;
use super::edges::{EdgeDrawData, EdgeRenderer};
use super::heatmap::{HeatmapDrawData, HeatmapRenderer};
use super::labels::{LabelDrawData, LabelRenderer};
use super::nodes::{NodeDrawData, NodeRenderer};
use crate::lod::DrawList;
use crate::view::Camera;

/// The per-frame camera uniform. Keep in sync with `Globals` in shaders/common.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Globals {
    /// `camera.center - list.origin`, world units.
    pub cam_rel: [f32; 2],
    /// Viewport size, pixels.
    pub viewport: [f32; 2],
    /// Pixels per world unit.
    pub zoom: f32,
    /// Padding to 32 bytes. (Whether the shader encodes sRGB is the pipeline constant
    /// `ENCODE_SRGB`, not a uniform.)
    pub _pad: [f32; 3],
}

const _: () = assert!(std::mem::size_of::<Globals>() == 32);

impl Globals {
    /// The uniform for `camera` over `list`.
    pub fn new(camera: &Camera, list: &DrawList) -> Self {
        let rel = camera.center - list.origin;
        Globals {
            cam_rel: rel.as_vec2().to_array(),
            viewport: camera.viewport.as_vec2().to_array(),
            zoom: camera.zoom as f32,
            _pad: [0.0; 3],
        }
    }
}

/// Numbers about the last `prepare`, for the benchmark and the status bar.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PrepareStats {
    /// Whether instance buffers were re-uploaded (the revision changed).
    pub uploaded: bool,
    /// Bytes written to the GPU this frame (instances, glyphs, new heatmap textures, uniform).
    pub upload_bytes: u64,
    /// CPU time spent packing and writing them.
    pub upload_time: Duration,
    /// Glyph instances drawn.
    pub glyphs: u32,
    /// Labels drawn: on screen and not hidden by an overlapping earlier label.
    pub labels_drawn: u32,
    /// Node instances drawn after culling.
    pub nodes_drawn: u64,
    /// Edge instances (bodies) drawn after culling.
    pub edges_drawn: u64,
}

/// Which layers `paint` records (all by default); `bench render --no-edges/--no-labels` turn some
/// off to measure what each costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layers {
    /// Heatmap tiles.
    pub heatmaps: bool,
    /// Edges and arrowheads.
    pub edges: bool,
    /// Nodes, clusters and frames.
    pub nodes: bool,
    /// Labels.
    pub labels: bool,
}

impl Default for Layers {
    fn default() -> Self {
        Layers {
            heatmaps: true,
            edges: true,
            nodes: true,
            labels: true,
        }
    }
}

/// Draws a [`DrawList`]: created once per device and target format.
#[derive(Debug)]
pub struct GraphRenderer {
    globals_buffer: wgpu::Buffer,
    globals_bind_group: wgpu::BindGroup,
    nodes: NodeRenderer,
    edges: EdgeRenderer,
    labels: LabelRenderer,
    heatmaps: HeatmapRenderer,
    node_data: NodeDrawData,
    edge_data: EdgeDrawData,
    label_data: LabelDrawData,
    heatmap_data: HeatmapDrawData,
    uploaded_revision: Option<u64>,
    last_stats: PrepareStats,
    layers: Layers,
    culling: bool,
}

impl GraphRenderer {
    /// Compiles every pipeline for `target_format` (sRGB or not: a non-sRGB target gets encoded
    /// output from the shaders).
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        target_format: wgpu::TextureFormat,
    ) -> Self {
        let globals_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("globals"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<Globals>() as u64),
                },
                count: None,
            }],
        });
        let globals_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("globals"),
            size: std::mem::size_of::<Globals>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let globals_bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("globals"),
            layout: &globals_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: globals_buffer.as_entire_binding(),
            }],
        });
        GraphRenderer {
            nodes: NodeRenderer::new(device, &globals_layout, target_format),
            edges: EdgeRenderer::new(device, &globals_layout, target_format),
            labels: LabelRenderer::new(device, queue, &globals_layout, target_format),
            heatmaps: HeatmapRenderer::new(device, &globals_layout, target_format),
            globals_buffer,
            globals_bind_group,
            node_data: NodeDrawData::default(),
            edge_data: EdgeDrawData::default(),
            label_data: LabelDrawData::default(),
            heatmap_data: HeatmapDrawData::default(),
            uploaded_revision: None,
            last_stats: PrepareStats::default(),
            layers: Layers::default(),
            culling: true,
        }
    }

    /// Uploads what changed: the camera uniform always, instances only when `list.revision` differs
    /// from the last upload, visible labels when they change.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        camera: &Camera,
        list: &DrawList,
    ) {
        let start = Instant::now();
        let globals = Globals::new(camera, list);
        queue.write_buffer(&self.globals_buffer, 0, bytemuck::bytes_of(&globals));
        let mut stats = PrepareStats {
            upload_bytes: std::mem::size_of::<Globals>() as u64,
            ..Default::default()
        };
        let changed = self.uploaded_revision != Some(list.revision);
        if changed {
            stats.uploaded = true;
            stats.upload_bytes += self.node_data.upload(device, queue, &list.nodes);
            stats.upload_bytes += self.edge_data.upload(device, queue, &list.edges);
            self.label_data.layout(&mut self.labels, &list.labels);
            self.uploaded_revision = Some(list.revision);
        }
        let view = if self.culling {
            View::new(camera, list.origin)
        } else {
            View::everything(camera.zoom as f32)
        };
        self.edge_data.set_view(&view);
        self.node_data.set_view(&view);
        stats.nodes_drawn = self.node_data.drawn();
        stats.edges_drawn = self.edge_data.draws().instances();
        stats.upload_bytes +=
            self.heatmap_data
                .prepare(&mut self.heatmaps, device, queue, &list.heatmaps, changed);
        stats.upload_bytes +=
            self.label_data
                .prepare(&mut self.labels, device, queue, camera, list);
        stats.glyphs = self.label_data.glyph_count();
        stats.labels_drawn = self.label_data.labels_drawn();
        stats.upload_time = start.elapsed();
        self.last_stats = stats;
    }

    /// Records the draws into `pass`: heatmaps, edges, nodes, labels. Does not clear.
    pub fn paint(&self, pass: &mut wgpu::RenderPass<'_>) {
        pass.set_bind_group(0, &self.globals_bind_group, &[]);
        let l = self.layers;
        if l.heatmaps {
            self.heatmap_data.paint(&self.heatmaps, pass);
        }
        if l.edges {
            self.edge_data.paint(&self.edges, pass);
        }
        if l.nodes {
            self.node_data.paint(&self.nodes, pass);
        }
        if l.labels {
            self.label_data.paint(&self.labels, pass);
        }
    }

    /// Turns viewport culling of node and edge instances on (the default) or off (every uploaded
    /// instance is drawn each frame: the benchmark's draw-everything number, and tests that culling
    /// never changes the picture).
    pub fn set_culling(&mut self, on: bool) {
        self.culling = on;
    }

    /// Chooses which layers `paint` records.
    pub fn set_layers(&mut self, layers: Layers) {
        self.layers = layers;
    }

    /// Forces the next `prepare` to re-upload everything (for a producer that reuses revisions).
    pub fn invalidate(&mut self) {
        self.uploaded_revision = None;
    }

    /// What the last `prepare` did.
    pub fn last_prepare(&self) -> PrepareStats {
        self.last_stats
    }

    /// GPU memory this renderer allocated: instance buffers, glyph atlas, heatmap textures, uniform.
    pub fn gpu_bytes(&self) -> u64 {
        std::mem::size_of::<Globals>() as u64
            + self.node_data.allocated_bytes()
            + self.edge_data.allocated_bytes()
            + self.label_data.allocated_bytes()
            + self.labels.allocated_bytes()
            + self.heatmaps.allocated_bytes()
            + self.heatmap_data.allocated_bytes()
    }

    /// Sets the heatmap texture cache budget (default [`super::HEATMAP_DEFAULT_BUDGET_BYTES`]).
    pub fn set_heatmap_budget_bytes(&mut self, bytes: u64) {
        self.heatmaps.set_budget_bytes(bytes);
    }

    /// Heatmap items uploaded since creation (a colour-map or range change must not add any).
    pub fn heatmap_uploads(&self) -> u64 {
        self.heatmaps.uploads()
    }

    /// Heatmap atlas pages alive.
    pub fn heatmap_pages(&self) -> usize {
        self.heatmaps.live_pages()
    }

    /// Instanced draws the heatmap layer issues for the current list (one per run of pieces on
    /// one atlas page).
    pub fn heatmap_draw_calls(&self) -> usize {
        self.heatmap_data.draw_calls()
    }
}
