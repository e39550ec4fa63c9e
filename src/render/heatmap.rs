//! Heatmaps: each [`HeatmapItem`]'s raw values are uploaded once as an R32Float texture, cached by
//! `item.key` in an LRU with a byte budget, and drawn as one quad that reads texels with
//! `textureLoad` (nearest: a single weight is a crisp square at any zoom) and colours them in the
//! shader. Colour map and range are instance data, so switching them never re-uploads values.
//!
//! Colour maps: diverging blue–white–red centred on zero, grey, and viridis/cividis as 10-stop
//! tables (matplotlib's values) interpolated in WGSL; NaN is magenta. Rejected: colouring on the
//! CPU into RGBA8 (4× the upload on every colour-map change) and R16Float (loses precision on
//! large weights; the stats stage may still choose to send f16-ranged tiles later).

use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};

use super::gpu_buffer::GrowBuffer;
use super::pipeline::{self, PipelineDesc};
use super::shaders;
use crate::lod::{ColorMap, HeatmapItem};

/// Default texture budget of the heatmap cache.
pub const DEFAULT_BUDGET_BYTES: u64 = 256 << 20;

/// Colour-map code in the shader. Keep in sync with `MAP_*` in shaders/heatmap.wgsl.
pub fn colormap_code(map: ColorMap) -> u32 {
    match map {
        ColorMap::Diverging => 0,
        ColorMap::Grey => 1,
        ColorMap::Viridis => 2,
        ColorMap::Cividis => 3,
    }
}

/// One heatmap tile on the GPU. Keep in sync with `HeatmapInstance` in shaders/heatmap.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct HeatmapInstance {
    /// Top-left, relative to the draw list's origin.
    pub min: [f32; 2],
    /// Bottom-right.
    pub max: [f32; 2],
    /// Values at the low and high end of the colour map.
    pub range: [f32; 2],
    /// Colour-map code ([`colormap_code`]).
    pub colormap: u32,
    /// Padding to 32 bytes.
    pub _pad: u32,
}

const _: () = assert!(std::mem::size_of::<HeatmapInstance>() == 32);

const ATTRIBUTES: [wgpu::VertexAttribute; 4] =
    wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x2, 2 => Float32x2, 3 => Uint32];

#[derive(Debug)]
struct CachedTile {
    width: u32,
    height: u32,
    bind_group: wgpu::BindGroup,
    _texture: wgpu::Texture,
    bytes: u64,
    last_used: u64,
}

/// The long-lived heatmap pipeline and texture cache.
#[derive(Debug)]
pub struct HeatmapRenderer {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    cache: HashMap<u64, CachedTile>,
    cached_bytes: u64,
    budget_bytes: u64,
    frame: u64,
    uploads: u64,
}

impl HeatmapRenderer {
    /// Compiles the pipeline; `globals` is the shared camera bind group layout.
    pub fn new(
        device: &wgpu::Device,
        globals: &wgpu::BindGroupLayout,
        format: wgpu::TextureFormat,
    ) -> Self {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("heatmap values"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            }],
        });
        let module = shaders::HEATMAP.create_module(device);
        // Tiles are opaque: no blending, so no read of the target under them.
        let pipeline = pipeline::create_opaque(
            device,
            PipelineDesc {
                label: "heatmap",
                module: &module,
                vertex_entry: "vs_heatmap",
                fragment_entry: "fs_heatmap",
                instance_layout: Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<HeatmapInstance>() as u64,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &ATTRIBUTES,
                }),
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                bind_group_layouts: &[Some(globals), Some(&layout)],
                format,
            },
        );
        HeatmapRenderer {
            pipeline,
            layout,
            cache: HashMap::new(),
            cached_bytes: 0,
            budget_bytes: DEFAULT_BUDGET_BYTES,
            frame: 0,
            uploads: 0,
        }
    }

    /// Sets the texture budget; least recently drawn tiles beyond it are dropped.
    pub fn set_budget_bytes(&mut self, bytes: u64) {
        self.budget_bytes = bytes;
    }

    /// How many tiles were uploaded since creation (for tests and the status bar).
    pub fn uploads(&self) -> u64 {
        self.uploads
    }

    /// Texture bytes held by the cache.
    pub fn allocated_bytes(&self) -> u64 {
        self.cached_bytes
    }

    /// Ensures `item`'s texture is cached, uploading it if needed. Returns bytes uploaded.
    fn ensure(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, item: &HeatmapItem) -> u64 {
        let frame = self.frame;
        if let Some(tile) = self.cache.get_mut(&item.key)
            && tile.width == item.width
            && tile.height == item.height
        {
            tile.last_used = frame;
            return 0;
        }
        if let Some(old) = self.cache.remove(&item.key) {
            self.cached_bytes -= old.bytes;
        }
        let size = wgpu::Extent3d {
            width: item.width,
            height: item.height,
            depth_or_array_layers: 1,
        };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("heatmap values"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::R32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let data: &[u8] = bytemuck::cast_slice(&item.values);
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            data,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(item.width * 4),
                rows_per_image: None,
            },
            size,
        );
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("heatmap values"),
            layout: &self.layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::TextureView(&view),
            }],
        });
        let bytes = data.len() as u64;
        self.cached_bytes += bytes;
        self.uploads += 1;
        self.cache.insert(
            item.key,
            CachedTile {
                width: item.width,
                height: item.height,
                bind_group,
                _texture: texture,
                bytes,
                last_used: frame,
            },
        );
        bytes
    }

    /// Drops least recently drawn tiles (never this frame's) until the cache fits its budget.
    fn evict(&mut self) {
        while self.cached_bytes > self.budget_bytes {
            let victim = self
                .cache
                .iter()
                .filter(|(_, t)| t.last_used < self.frame)
                .min_by_key(|(_, t)| t.last_used)
                .map(|(k, _)| *k);
            let Some(key) = victim else { break };
            if let Some(t) = self.cache.remove(&key) {
                self.cached_bytes -= t.bytes;
            }
        }
    }
}

/// Why a heatmap item is skipped, if it is.
fn invalid_reason(item: &HeatmapItem, max_dim: u32) -> Option<&'static str> {
    if item.width == 0 || item.height == 0 {
        return Some("empty");
    }
    if item.width > max_dim || item.height > max_dim {
        return Some("larger than the GPU's texture limit (the stats stage should tile it)");
    }
    let expected = (item.width as u64).checked_mul(item.height as u64);
    if expected != Some(item.values.len() as u64) {
        return Some("value count does not match width × height");
    }
    if !(item.min.is_finite() && item.max.is_finite()) {
        return Some("non-finite corners");
    }
    None
}

/// The heatmap tiles of the current draw list.
#[derive(Debug)]
pub struct HeatmapDrawData {
    buffer: GrowBuffer,
    instances: Vec<HeatmapInstance>,
    keys: Vec<u64>,
}

impl Default for HeatmapDrawData {
    fn default() -> Self {
        HeatmapDrawData {
            buffer: GrowBuffer::new("heatmap instances", wgpu::BufferUsages::VERTEX),
            instances: Vec::new(),
            keys: Vec::new(),
        }
    }
}

impl HeatmapDrawData {
    /// On a new revision (`changed`), uploads missing textures and the tile instances; every frame,
    /// marks the drawn tiles as used. Returns bytes uploaded.
    pub fn prepare(
        &mut self,
        renderer: &mut HeatmapRenderer,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        items: &[HeatmapItem],
        changed: bool,
    ) -> u64 {
        renderer.frame += 1;
        if !changed {
            let frame = renderer.frame;
            for key in &self.keys {
                if let Some(t) = renderer.cache.get_mut(key) {
                    t.last_used = frame;
                }
            }
            return 0;
        }
        let max_dim = device.limits().max_texture_dimension_2d;
        let mut bytes = 0;
        self.instances.clear();
        self.keys.clear();
        for item in items {
            if let Some(why) = invalid_reason(item, max_dim) {
                log::warn!(
                    "render: heatmap {:#x} ({}×{}) skipped: {why}",
                    item.key,
                    item.width,
                    item.height
                );
                continue;
            }
            bytes += renderer.ensure(device, queue, item);
            self.keys.push(item.key);
            self.instances.push(HeatmapInstance {
                min: item.min.to_array(),
                max: item.max.to_array(),
                range: [item.lo, item.hi],
                colormap: colormap_code(item.colormap),
                _pad: 0,
            });
        }
        renderer.evict();
        let data: &[u8] = bytemuck::cast_slice(&self.instances);
        self.buffer.write(device, queue, data);
        bytes + data.len() as u64
    }

    /// Draws the tiles (one draw each: each has its own texture).
    pub fn paint(&self, renderer: &HeatmapRenderer, pass: &mut wgpu::RenderPass<'_>) {
        let Some(slice) = self.buffer.slice() else {
            return;
        };
        pass.set_pipeline(&renderer.pipeline);
        pass.set_vertex_buffer(0, slice);
        for (i, key) in self.keys.iter().enumerate() {
            if let Some(tile) = renderer.cache.get(key) {
                pass.set_bind_group(1, &tile.bind_group, &[]);
                pass.draw(0..4, i as u32..i as u32 + 1);
            }
        }
    }

    /// GPU bytes of the instance buffer.
    pub fn allocated_bytes(&self) -> u64 {
        self.buffer.allocated_bytes()
    }
}
