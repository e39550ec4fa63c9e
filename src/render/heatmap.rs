//! Heatmaps: each [`HeatmapItem`]'s raw values are uploaded once into a texture **atlas** of
//! R32Float pages, cached by `item.key` in an LRU with a byte budget, and drawn as instanced quads
//! that read texels with `textureLoad` (nearest: a single weight is a crisp square at any zoom) and
//! colour them in the shader. Colour map and range are instance data, so switching them never
//! re-uploads values.
//!
//! The atlas: pages of [`PAGE_SIDE`]² texels cut into [`SLOT`]² slots (the stats stage's tile
//! size). An item takes one slot, or one per 256×256 piece when larger. A frame's heatmaps are one
//! instanced draw per run of consecutive pieces on the same page (in item order: coarse stand-ins
//! are listed before the finer tiles that cover them), so the usual screenful of 20–60 tiles is one
//! or two draws and no texture or bind group is created per tile. Pages are created as slots run
//! out and dropped when eviction empties them. Rejected: a texture per tile (a texture, view and
//! bind group each, a draw each, and texture creation in the frame that first shows a tile), and
//! one 2-D array texture (growing it means copying every layer).
//!
//! Colour maps: diverging blue–white–red centred on zero, grey, and viridis/cividis as 10-stop
//! tables (matplotlib's values) interpolated in WGSL; NaN is magenta. Rejected: colouring on the
//! CPU into RGBA8 (4× the upload on every colour-map change) and R16Float (loses precision on
//! large weights).

use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};

use super::gpu_buffer::GrowBuffer;
use super::pipeline::{self, PipelineDesc};
use super::shaders;
use crate::lod::{ColorMap, HeatmapItem};

/// Side of one atlas slot, texels (the stats stage's tile size).
pub const SLOT: u32 = 256;
/// Side of one atlas page, texels (16 MiB of R32Float; 64 slots).
pub const PAGE_SIDE: u32 = 2048;

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

/// One heatmap piece on the GPU. Keep in sync with `HeatmapInstance` in shaders/heatmap.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct HeatmapInstance {
    /// Top-left, relative to the draw list's origin.
    pub min: [f32; 2],
    /// Bottom-right.
    pub max: [f32; 2],
    /// Values at the low and high end of the colour map.
    pub range: [f32; 2],
    /// Colour-map code (`colormap_code`).
    pub colormap: u32,
    /// First texel in the atlas page: `x | y << 16`.
    pub texel_origin: u32,
    /// Texels across and down: `w | h << 16`.
    pub texel_size: u32,
}

const _: () = assert!(std::mem::size_of::<HeatmapInstance>() == 36);

const ATTRIBUTES: [wgpu::VertexAttribute; 6] = wgpu::vertex_attr_array![
    0 => Float32x2, 1 => Float32x2, 2 => Float32x2, 3 => Uint32, 4 => Uint32, 5 => Uint32
];

/// A slot: page index and slot index within the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SlotRef {
    page: u32,
    slot: u32,
}

/// One piece of a cached item: where its texels are, and which part of the item it covers.
#[derive(Clone, Copy, Debug)]
struct Piece {
    at: SlotRef,
    /// First column and row of the item in this piece.
    col: u32,
    row: u32,
    /// Texels across and down.
    w: u32,
    h: u32,
}

#[derive(Debug)]
struct CachedItem {
    width: u32,
    height: u32,
    pieces: Vec<Piece>,
    last_used: u64,
}

#[derive(Debug)]
struct Page {
    texture: wgpu::Texture,
    bind_group: wgpu::BindGroup,
    /// Free slot indices.
    free: Vec<u32>,
}

/// Slots per page side.
fn slots_per_side(page_side: u32) -> u32 {
    (page_side / SLOT).max(1)
}

/// The long-lived heatmap pipeline and texture atlas.
#[derive(Debug)]
pub struct HeatmapRenderer {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    page_side: u32,
    pages: Vec<Option<Page>>,
    cache: HashMap<u64, CachedItem>,
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
            label: Some("heatmap atlas"),
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
        let max = device.limits().max_texture_dimension_2d;
        let page_side = (PAGE_SIDE.min(max) / SLOT).max(1) * SLOT;
        HeatmapRenderer {
            pipeline,
            layout,
            page_side,
            pages: Vec::new(),
            cache: HashMap::new(),
            budget_bytes: DEFAULT_BUDGET_BYTES,
            frame: 0,
            uploads: 0,
        }
    }

    /// Sets the texture budget; least recently drawn items beyond it are dropped.
    pub fn set_budget_bytes(&mut self, bytes: u64) {
        self.budget_bytes = bytes;
    }

    /// How many items were uploaded since creation (for tests and the status bar).
    pub fn uploads(&self) -> u64 {
        self.uploads
    }

    /// Texture bytes held by the atlas pages.
    pub fn allocated_bytes(&self) -> u64 {
        self.live_pages() as u64 * self.page_bytes()
    }

    /// Atlas pages alive.
    pub fn live_pages(&self) -> usize {
        self.pages.iter().flatten().count()
    }

    fn page_bytes(&self) -> u64 {
        u64::from(self.page_side) * u64::from(self.page_side) * 4
    }

    fn new_page(&mut self, device: &wgpu::Device) -> u32 {
        let side = self.page_side;
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("heatmap atlas page"),
            size: wgpu::Extent3d {
                width: side,
                height: side,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::R32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("heatmap atlas page"),
            layout: &self.layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::TextureView(&view),
            }],
        });
        let n = slots_per_side(side);
        // Popped from the back: slot 0 first.
        let free: Vec<u32> = (0..n * n).rev().collect();
        let page = Page {
            texture,
            bind_group,
            free,
        };
        if let Some(i) = self.pages.iter().position(Option::is_none) {
            self.pages[i] = Some(page);
            i as u32
        } else {
            self.pages.push(Some(page));
            self.pages.len() as u32 - 1
        }
    }

    /// A free slot: from a page with room, else by evicting the least recently drawn item (not
    /// this frame's) while the atlas is at its budget, else from a new page.
    fn alloc_slot(&mut self, device: &wgpu::Device) -> SlotRef {
        loop {
            for (i, p) in self.pages.iter_mut().enumerate() {
                if let Some(p) = p
                    && let Some(slot) = p.free.pop()
                {
                    return SlotRef {
                        page: i as u32,
                        slot,
                    };
                }
            }
            let at_budget = self.allocated_bytes() + self.page_bytes() > self.budget_bytes;
            if !(at_budget && self.evict_one()) {
                break;
            }
        }
        let page = self.new_page(device);
        let slot = self.pages[page as usize]
            .as_mut()
            .and_then(|p| p.free.pop())
            .unwrap_or(0);
        SlotRef { page, slot }
    }

    /// Frees the least recently drawn item not drawn this frame; false when there is none.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .cache
            .iter()
            .filter(|(_, t)| t.last_used < self.frame)
            .min_by_key(|(_, t)| t.last_used)
            .map(|(k, _)| *k);
        let Some(item) = victim.and_then(|k| self.cache.remove(&k)) else {
            return false;
        };
        self.release(&item);
        true
    }

    fn release(&mut self, item: &CachedItem) {
        for p in &item.pieces {
            if let Some(Some(page)) = self.pages.get_mut(p.at.page as usize) {
                page.free.push(p.at.slot);
            }
        }
    }

    /// Drops pages that hold nothing, then least recently drawn items (never this frame's) while
    /// the atlas is over its budget.
    fn trim(&mut self) {
        loop {
            let per_page = slots_per_side(self.page_side).pow(2) as usize;
            for p in &mut self.pages {
                if p.as_ref().is_some_and(|pg| pg.free.len() == per_page) {
                    *p = None;
                }
            }
            if self.allocated_bytes() <= self.budget_bytes || !self.evict_one() {
                break;
            }
        }
        while matches!(self.pages.last(), Some(None)) {
            self.pages.pop();
        }
    }

    /// Ensures `item`'s texels are in the atlas, uploading them if needed. Returns bytes uploaded.
    fn ensure(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, item: &HeatmapItem) -> u64 {
        let frame = self.frame;
        if let Some(c) = self.cache.get_mut(&item.key)
            && c.width == item.width
            && c.height == item.height
        {
            c.last_used = frame;
            return 0;
        }
        if let Some(old) = self.cache.remove(&item.key) {
            self.release(&old);
        }
        let per_side = slots_per_side(self.page_side);
        let mut pieces =
            Vec::with_capacity((item.width.div_ceil(SLOT) * item.height.div_ceil(SLOT)) as usize);
        let mut bytes = 0u64;
        let mut scratch: Vec<f32> = Vec::new();
        for row in (0..item.height).step_by(SLOT as usize) {
            for col in (0..item.width).step_by(SLOT as usize) {
                let (w, h) = (SLOT.min(item.width - col), SLOT.min(item.height - row));
                let at = self.alloc_slot(device);
                let Some(Some(page)) = self.pages.get(at.page as usize) else {
                    continue;
                };
                // A piece narrower than the item is copied out row by row.
                let data: &[f32] = if w == item.width {
                    let a = (row * item.width) as usize;
                    &item.values[a..a + (w * h) as usize]
                } else {
                    scratch.clear();
                    for r in row..row + h {
                        let a = (r * item.width + col) as usize;
                        scratch.extend_from_slice(&item.values[a..a + w as usize]);
                    }
                    &scratch
                };
                queue.write_texture(
                    wgpu::TexelCopyTextureInfo {
                        texture: &page.texture,
                        mip_level: 0,
                        origin: wgpu::Origin3d {
                            x: (at.slot % per_side) * SLOT,
                            y: (at.slot / per_side) * SLOT,
                            z: 0,
                        },
                        aspect: wgpu::TextureAspect::All,
                    },
                    bytemuck::cast_slice(data),
                    wgpu::TexelCopyBufferLayout {
                        offset: 0,
                        bytes_per_row: Some(w * 4),
                        rows_per_image: None,
                    },
                    wgpu::Extent3d {
                        width: w,
                        height: h,
                        depth_or_array_layers: 1,
                    },
                );
                bytes += u64::from(w) * u64::from(h) * 4;
                pieces.push(Piece { at, col, row, w, h });
            }
        }
        self.uploads += 1;
        self.cache.insert(
            item.key,
            CachedItem {
                width: item.width,
                height: item.height,
                pieces,
                last_used: frame,
            },
        );
        bytes
    }
}

/// Why a heatmap item is skipped, if it is.
fn invalid_reason(item: &HeatmapItem) -> Option<&'static str> {
    if item.width == 0 || item.height == 0 {
        return Some("empty");
    }
    if item.width > 1 << 16 || item.height > 1 << 16 {
        return Some("larger than 65 536 texels on a side (the stats stage should tile it)");
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

/// The heatmap pieces of the current draw list.
#[derive(Debug)]
pub struct HeatmapDrawData {
    buffer: GrowBuffer,
    instances: Vec<HeatmapInstance>,
    keys: Vec<u64>,
    /// Runs of consecutive instances on one page: (page, instance range).
    runs: Vec<(u32, std::ops::Range<u32>)>,
}

impl Default for HeatmapDrawData {
    fn default() -> Self {
        HeatmapDrawData {
            buffer: GrowBuffer::new("heatmap instances", wgpu::BufferUsages::VERTEX),
            instances: Vec::new(),
            keys: Vec::new(),
            runs: Vec::new(),
        }
    }
}

impl HeatmapDrawData {
    /// On a new revision (`changed`), uploads missing items and the piece instances; every frame,
    /// marks the drawn items as used. Returns bytes uploaded.
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
        let mut bytes = 0;
        self.keys.clear();
        // Everything this frame draws that is cached is marked first, so that an upload below can
        // only evict items the frame does not draw.
        let frame = renderer.frame;
        for item in items {
            if let Some(c) = renderer.cache.get_mut(&item.key)
                && c.width == item.width
                && c.height == item.height
            {
                c.last_used = frame;
            }
        }
        for item in items {
            if let Some(why) = invalid_reason(item) {
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
        }
        self.instances.clear();
        self.runs.clear();
        let per_side = slots_per_side(renderer.page_side);
        for item in items {
            let Some(cached) = renderer.cache.get(&item.key) else {
                continue;
            };
            if cached.width != item.width || cached.height != item.height {
                continue;
            }
            let size = item.max - item.min;
            let (fw, fh) = (item.width as f32, item.height as f32);
            for p in &cached.pieces {
                let min = item.min + size * glam::Vec2::new(p.col as f32 / fw, p.row as f32 / fh);
                let max = item.min
                    + size * glam::Vec2::new((p.col + p.w) as f32 / fw, (p.row + p.h) as f32 / fh);
                let (x, y) = ((p.at.slot % per_side) * SLOT, (p.at.slot / per_side) * SLOT);
                let i = self.instances.len() as u32;
                match self.runs.last_mut() {
                    Some((page, r)) if *page == p.at.page => r.end = i + 1,
                    _ => self.runs.push((p.at.page, i..i + 1)),
                }
                self.instances.push(HeatmapInstance {
                    min: min.to_array(),
                    max: max.to_array(),
                    range: [item.lo, item.hi],
                    colormap: colormap_code(item.colormap),
                    texel_origin: x | y << 16,
                    texel_size: p.w | p.h << 16,
                });
            }
        }
        renderer.trim();
        let data: &[u8] = bytemuck::cast_slice(&self.instances);
        self.buffer.write(device, queue, data);
        bytes + data.len() as u64
    }

    /// Draws the pieces: one instanced draw per run of pieces on one atlas page.
    pub fn paint(&self, renderer: &HeatmapRenderer, pass: &mut wgpu::RenderPass<'_>) {
        let Some(slice) = self.buffer.slice() else {
            return;
        };
        pass.set_pipeline(&renderer.pipeline);
        pass.set_vertex_buffer(0, slice);
        for (page, range) in &self.runs {
            if let Some(Some(p)) = renderer.pages.get(*page as usize) {
                pass.set_bind_group(1, &p.bind_group, &[]);
                pass.draw(0..4, range.clone());
            }
        }
    }

    /// Instanced draws the last [`HeatmapDrawData::paint`] issues (one per run of pieces on a page).
    pub fn draw_calls(&self) -> usize {
        self.runs.len()
    }

    /// GPU bytes of the instance buffer.
    pub fn allocated_bytes(&self) -> u64 {
        self.buffer.allocated_bytes()
    }
}
