//! Labels: text drawn from a glyph atlas in ONE instanced draw (a quad per glyph).
//!
//! Glyphs are rasterized on the CPU with `ab_glyph` from egui's own Ubuntu Light font
//! (`epaint_default_fonts`), once per (glyph, pixel-size bucket), into an R8 coverage atlas that
//! grows (height doubling, up to 4096 or the device limit) and is cleared and refilled when full.
//! Buckets are whole pixel sizes, so a label is rasterized at its exact size and drawn 1:1 on
//! pixels: the anchor is snapped to a pixel in the vertex shader and glyph offsets are whole pixels.
//!
//! Layout (shaping, atlas lookups) happens only when the draw list's revision changes; every
//! frame, labels below a readable size are dropped and the rest are culled against the viewport on
//! the CPU before the (small) glyph instance list is rebuilt, and uploaded only when it changed.
//!
//! Labels are decluttered as maps do: in draw-list order (group titles before cluster and node
//! labels), a label whose inked box overlaps one already placed this frame is not drawn
//! ([`Declutter`]). A pile of overlapping text reads as a smear, and costs fill for nothing; as the
//! view zooms in, the boxes move apart and the hidden labels come back.
//!
//! Why our own atlas: the same code draws labels headless (`modelmap render`, golden tests, the
//! benchmark) and in the window — egui's painter would tie labels to the window and to egui's
//! frame, and glyphon/cosmic-text would add a shaping stack and a second font system for what are
//! short single-line identifiers. Rejected too: signed-distance-field glyphs (blurrier at small
//! sizes, where most labels are read).

use std::collections::HashMap;

use ab_glyph::{Font as _, FontArc, GlyphId, PxScale, ScaleFont as _};
use bytemuck::{Pod, Zeroable};
use glam::{DVec2, Vec2};

use super::gpu_buffer::GrowBuffer;
use super::pipeline::{self, PipelineDesc};
use super::shaders;
use crate::lod::{Align, DrawList, LabelItem};
use crate::view::Camera;

/// Labels smaller than this many pixels are not drawn (unreadable).
pub const MIN_LABEL_PX: f32 = 5.0;
/// Largest rasterized size; bigger labels are scaled up from it.
pub const MAX_BUCKET_PX: u32 = 128;
/// At most this many characters of one label are drawn.
pub const MAX_LABEL_CHARS: usize = 200;
/// At most this many glyphs are drawn in one frame.
pub const MAX_GLYPHS: usize = 1 << 20;
const ATLAS_WIDTH: u32 = 1024;
const ATLAS_INITIAL_HEIGHT: u32 = 256;
const ATLAS_MAX_HEIGHT: u32 = 4096;

/// One glyph on the GPU. Keep in sync with `GlyphInstance` in shaders/labels.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GlyphInstance {
    /// The label's anchor, relative to the draw list's origin.
    pub anchor: [f32; 2],
    /// Top-left of the quad relative to the pixel-snapped anchor, pixels.
    pub offset: [f32; 2],
    /// Quad size, pixels.
    pub size: [f32; 2],
    /// Atlas texels: `x | y << 16`, `w | h << 16`.
    pub uv: [u32; 2],
    /// sRGB colour, byte 0 red.
    pub color: u32,
    /// Padding to 40 bytes.
    pub _pad: u32,
}

const _: () = assert!(std::mem::size_of::<GlyphInstance>() == 40);

const ATTRIBUTES: [wgpu::VertexAttribute; 5] = wgpu::vertex_attr_array![
    0 => Float32x2, 1 => Float32x2, 2 => Float32x2, 3 => Uint32x2, 4 => Uint32
];

/// A glyph's place in the atlas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AtlasGlyph {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    /// Bitmap top-left relative to the pen position on the baseline, pixels.
    min: [i32; 2],
}

#[derive(Clone, Copy, Debug)]
struct Shelf {
    y: u32,
    h: u32,
    x: u32,
}

/// CPU side of the glyph atlas: shelf packing over a growing R8 image.
#[derive(Debug)]
struct Atlas {
    width: u32,
    height: u32,
    max_height: u32,
    pixels: Vec<u8>,
    shelves: Vec<Shelf>,
    next_y: u32,
    /// `None` for glyphs with no ink (spaces).
    entries: HashMap<(GlyphId, u32), Option<AtlasGlyph>>,
    /// Bumped when the atlas is cleared: laid-out labels must be laid out again.
    generation: u64,
    dirty: bool,
}

impl Atlas {
    fn new(max_dim: u32) -> Self {
        Atlas {
            width: ATLAS_WIDTH,
            height: ATLAS_INITIAL_HEIGHT,
            max_height: ATLAS_MAX_HEIGHT.min(max_dim).max(ATLAS_INITIAL_HEIGHT),
            pixels: vec![0; (ATLAS_WIDTH * ATLAS_INITIAL_HEIGHT) as usize],
            shelves: Vec::new(),
            next_y: 0,
            entries: HashMap::new(),
            generation: 0,
            dirty: true,
        }
    }

    fn clear(&mut self) {
        self.pixels.fill(0);
        self.shelves.clear();
        self.next_y = 0;
        self.entries.clear();
        self.generation += 1;
        self.dirty = true;
    }

    /// Finds room for a `w`×`h` bitmap (1 px gutter), growing the image when needed.
    fn allocate(&mut self, w: u32, h: u32) -> Option<(u32, u32)> {
        let (gw, gh) = (w + 1, h + 1);
        if gw > self.width {
            return None;
        }
        for shelf in &mut self.shelves {
            if gh <= shelf.h && gh * 4 >= shelf.h * 3 && shelf.x + gw <= self.width {
                let at = (shelf.x, shelf.y);
                shelf.x += gw;
                return Some(at);
            }
        }
        while self.next_y + gh > self.height {
            if self.height >= self.max_height {
                return None;
            }
            self.height = (self.height * 2).min(self.max_height);
            self.pixels.resize((self.width * self.height) as usize, 0);
        }
        let shelf = Shelf {
            y: self.next_y,
            h: gh,
            x: gw,
        };
        self.next_y += gh;
        self.shelves.push(shelf);
        Some((0, shelf.y))
    }
}

/// The long-lived labels pipeline, font and glyph atlas.
#[derive(Debug)]
pub struct LabelRenderer {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    font: Option<FontArc>,
    atlas: Atlas,
    texture: Option<(wgpu::Texture, wgpu::BindGroup)>,
}

impl LabelRenderer {
    /// Compiles the pipeline and loads the font.
    pub fn new(
        device: &wgpu::Device,
        _queue: &wgpu::Queue,
        globals: &wgpu::BindGroupLayout,
        format: wgpu::TextureFormat,
    ) -> Self {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("glyph atlas"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let module = shaders::LABELS.create_module(device);
        let pipeline = pipeline::create(
            device,
            PipelineDesc {
                label: "labels",
                module: &module,
                vertex_entry: "vs_glyph",
                fragment_entry: "fs_glyph",
                instance_layout: Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<GlyphInstance>() as u64,
                    step_mode: wgpu::VertexStepMode::Instance,
                    attributes: &ATTRIBUTES,
                }),
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                bind_group_layouts: &[Some(globals), Some(&layout)],
                format,
            },
        );
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("glyph atlas"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let font = match FontArc::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT) {
            Ok(f) => Some(f),
            Err(e) => {
                log::error!("render: the built-in label font does not parse ({e}); labels are off");
                None
            }
        };
        LabelRenderer {
            pipeline,
            layout,
            sampler,
            font,
            atlas: Atlas::new(device.limits().max_texture_dimension_2d),
            texture: None,
        }
    }

    /// The atlas entry of `glyph` at `bucket` pixels, rasterizing it on first use. `None` for
    /// glyphs without ink or when the atlas is full (the caller clears and retries).
    fn glyph(&mut self, glyph: GlyphId, bucket: u32) -> Result<Option<AtlasGlyph>, AtlasFull> {
        if let Some(entry) = self.atlas.entries.get(&(glyph, bucket)) {
            return Ok(*entry);
        }
        let Some(font) = &self.font else {
            return Ok(None);
        };
        let outlined = font.outline_glyph(
            glyph.with_scale_and_position(PxScale::from(bucket as f32), ab_glyph::point(0.0, 0.0)),
        );
        let Some(outlined) = outlined else {
            self.atlas.entries.insert((glyph, bucket), None);
            return Ok(None);
        };
        let bounds = outlined.px_bounds();
        let (w, h) = (
            (bounds.width().max(0.0)) as u32,
            (bounds.height().max(0.0)) as u32,
        );
        if w == 0 || h == 0 {
            self.atlas.entries.insert((glyph, bucket), None);
            return Ok(None);
        }
        let (x, y) = self.atlas.allocate(w, h).ok_or(AtlasFull)?;
        let stride = self.atlas.width as usize;
        let pixels = &mut self.atlas.pixels;
        outlined.draw(|gx, gy, c| {
            if gx < w && gy < h {
                let i = (y + gy) as usize * stride + (x + gx) as usize;
                if let Some(p) = pixels.get_mut(i) {
                    *p = (c.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
        });
        self.atlas.dirty = true;
        let entry = AtlasGlyph {
            x,
            y,
            w,
            h,
            min: [bounds.min.x as i32, bounds.min.y as i32],
        };
        self.atlas.entries.insert((glyph, bucket), Some(entry));
        Ok(Some(entry))
    }

    /// Uploads the atlas if it changed (recreating the texture when it grew). Returns bytes written.
    fn sync_texture(&mut self, device: &wgpu::Device, queue: &wgpu::Queue) -> u64 {
        let size = wgpu::Extent3d {
            width: self.atlas.width,
            height: self.atlas.height,
            depth_or_array_layers: 1,
        };
        let stale = self.texture.as_ref().is_none_or(|(t, _)| t.size() != size);
        if stale {
            let texture = device.create_texture(&wgpu::TextureDescriptor {
                label: Some("glyph atlas"),
                size,
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::R8Unorm,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            });
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("glyph atlas"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::TextureView(&view),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::Sampler(&self.sampler),
                    },
                ],
            });
            self.texture = Some((texture, bind_group));
            self.atlas.dirty = true;
        }
        if !self.atlas.dirty {
            return 0;
        }
        let Some((texture, _)) = &self.texture else {
            return 0;
        };
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &self.atlas.pixels,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(self.atlas.width),
                rows_per_image: None,
            },
            size,
        );
        self.atlas.dirty = false;
        self.atlas.pixels.len() as u64
    }

    /// GPU bytes of the atlas texture.
    pub fn allocated_bytes(&self) -> u64 {
        self.texture
            .as_ref()
            .map_or(0, |(t, _)| u64::from(t.width()) * u64::from(t.height()))
    }
}

#[derive(Debug)]
struct AtlasFull;

/// A glyph of a laid-out label, relative to the label's snapped anchor.
#[derive(Clone, Copy, Debug)]
struct LaidGlyph {
    offset: [f32; 2],
    size: [f32; 2],
    uv: [u32; 2],
}

/// A label after layout.
#[derive(Clone, Debug)]
struct LaidLabel {
    pos: Vec2,
    color: u32,
    glyphs: std::ops::Range<usize>,
    /// Pixel bounds relative to the anchor.
    min: Vec2,
    max: Vec2,
}

/// Screen-space occupancy of the labels placed in one frame: a grid of [`Declutter::CELL_PX`]
/// cells over the viewport, each listing the placed boxes that touch it.
#[derive(Debug, Default)]
pub struct Declutter {
    cols: usize,
    rows: usize,
    cells: Vec<Vec<u32>>,
    boxes: Vec<(Vec2, Vec2)>,
}

impl Declutter {
    /// Cell size, pixels.
    pub const CELL_PX: f32 = 64.0;

    /// Forgets every placed box and covers a viewport of `size` pixels.
    pub fn reset(&mut self, size: Vec2) {
        let dim = |v: f32| ((v / Self::CELL_PX).ceil().clamp(1.0, 4096.0)) as usize;
        let (cols, rows) = (dim(size.x), dim(size.y));
        if cols * rows != self.cells.len() {
            self.cells.resize_with(cols * rows, Vec::new);
        }
        self.cols = cols;
        self.rows = rows;
        for c in &mut self.cells {
            c.clear();
        }
        self.boxes.clear();
    }

    /// Places the box `lo..hi` (pixels) unless it overlaps a box placed before; says whether it
    /// was placed. Boxes that only touch do not overlap; parts outside the viewport count at its
    /// edge cells.
    pub fn try_place(&mut self, lo: Vec2, hi: Vec2) -> bool {
        let cell = |v: f32, n: usize| {
            ((v / Self::CELL_PX).floor().max(0.0) as usize).min(n.saturating_sub(1))
        };
        let (c0, c1) = (cell(lo.x, self.cols), cell(hi.x, self.cols));
        let (r0, r1) = (cell(lo.y, self.rows), cell(hi.y, self.rows));
        for r in r0..=r1 {
            for c in c0..=c1 {
                let Some(placed) = self.cells.get(r * self.cols + c) else {
                    continue;
                };
                for &i in placed {
                    if let Some(&(plo, phi)) = self.boxes.get(i as usize)
                        && lo.x < phi.x
                        && plo.x < hi.x
                        && lo.y < phi.y
                        && plo.y < hi.y
                    {
                        return false;
                    }
                }
            }
        }
        let i = self.boxes.len() as u32;
        self.boxes.push((lo, hi));
        for r in r0..=r1 {
            for c in c0..=c1 {
                if let Some(cell) = self.cells.get_mut(r * self.cols + c) {
                    cell.push(i);
                }
            }
        }
        true
    }
}

/// Laid-out labels of the current draw list and the glyph instances of the visible ones.
#[derive(Debug)]
pub struct LabelDrawData {
    labels: Vec<LaidLabel>,
    declutter: Declutter,
    placed: u32,
    glyphs: Vec<LaidGlyph>,
    instances: Vec<GlyphInstance>,
    uploaded: Vec<GlyphInstance>,
    buffer: GrowBuffer,
    count: u32,
    force_upload: bool,
}

impl Default for LabelDrawData {
    fn default() -> Self {
        LabelDrawData {
            labels: Vec::new(),
            declutter: Declutter::default(),
            placed: 0,
            glyphs: Vec::new(),
            instances: Vec::new(),
            uploaded: Vec::new(),
            buffer: GrowBuffer::new("glyph instances", wgpu::BufferUsages::VERTEX),
            count: 0,
            force_upload: true,
        }
    }
}

impl LabelDrawData {
    /// Lays out `labels` (new revision): readable ones only, rasterizing new glyphs.
    pub fn layout(&mut self, renderer: &mut LabelRenderer, labels: &[LabelItem]) {
        self.force_upload = true;
        if self.try_layout(renderer, labels).is_err() {
            // The atlas is full of glyphs from earlier lists: start over with only this list's.
            renderer.atlas.clear();
            if self.try_layout(renderer, labels).is_err() {
                log::warn!(
                    "render: too many distinct glyphs for the label atlas; some labels are not drawn"
                );
            }
        }
    }

    fn try_layout(
        &mut self,
        renderer: &mut LabelRenderer,
        labels: &[LabelItem],
    ) -> Result<(), AtlasFull> {
        self.labels.clear();
        self.glyphs.clear();
        let Some(font) = renderer.font.clone() else {
            return Ok(());
        };
        for label in labels {
            if label.size_px.is_nan()
                || label.size_px < MIN_LABEL_PX
                || label.text.is_empty()
                || !label.pos.is_finite()
            {
                continue;
            }
            if self.glyphs.len() >= MAX_GLYPHS {
                break;
            }
            let bucket = (label.size_px.round() as u32).clamp(1, MAX_BUCKET_PX);
            let scale = label.size_px / bucket as f32;
            let scaled = font.as_scaled(PxScale::from(bucket as f32));
            let chars = || {
                label
                    .text
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_LABEL_CHARS)
            };
            let mut width = 0.0;
            let mut prev: Option<GlyphId> = None;
            for c in chars() {
                let id = scaled.glyph_id(c);
                if let Some(p) = prev {
                    width += scaled.kern(p, id);
                }
                width += scaled.h_advance(id);
                prev = Some(id);
            }
            let start_x = match label.align {
                Align::Center => (-width * 0.5).round(),
                Align::Left => 0.0,
            };
            let baseline = ((scaled.ascent() + scaled.descent()) * 0.5).round();
            let first = self.glyphs.len();
            let mut pen = 0.0;
            let mut prev: Option<GlyphId> = None;
            let (mut min, mut max) = (Vec2::splat(f32::INFINITY), Vec2::splat(f32::NEG_INFINITY));
            for c in chars() {
                let id = scaled.glyph_id(c);
                if let Some(p) = prev {
                    pen += scaled.kern(p, id);
                }
                prev = Some(id);
                let origin = Vec2::new(start_x + pen.round(), baseline);
                pen += scaled.h_advance(id);
                let Some(g) = renderer.glyph(id, bucket)? else {
                    continue;
                };
                let offset = (origin + Vec2::new(g.min[0] as f32, g.min[1] as f32)) * scale;
                let size = Vec2::new(g.w as f32, g.h as f32) * scale;
                min = min.min(offset);
                max = max.max(offset + size);
                self.glyphs.push(LaidGlyph {
                    offset: offset.to_array(),
                    size: size.to_array(),
                    uv: [g.x | (g.y << 16), g.w | (g.h << 16)],
                });
            }
            if self.glyphs.len() > first {
                self.labels.push(LaidLabel {
                    pos: label.pos,
                    color: u32::from_le_bytes(label.color),
                    glyphs: first..self.glyphs.len(),
                    min,
                    max,
                });
            }
        }
        Ok(())
    }

    /// Culls the laid-out labels to the viewport and uploads the visible glyphs if they changed
    /// (and the atlas if it changed). Returns bytes written.
    pub fn prepare(
        &mut self,
        renderer: &mut LabelRenderer,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        camera: &Camera,
        list: &DrawList,
    ) -> u64 {
        let mut bytes = renderer.sync_texture(device, queue);
        self.instances.clear();
        let viewport = camera.viewport.as_vec2();
        self.declutter.reset(viewport);
        self.placed = 0;
        for label in &self.labels {
            let world = list.origin + DVec2::new(f64::from(label.pos.x), f64::from(label.pos.y));
            let screen = camera.screen_from_world(world).as_vec2().round();
            let (lo, hi) = (screen + label.min, screen + label.max);
            if hi.x < 0.0 || hi.y < 0.0 || lo.x > viewport.x || lo.y > viewport.y {
                continue;
            }
            if !self.declutter.try_place(lo, hi) {
                continue;
            }
            self.placed += 1;
            for g in self.glyphs.get(label.glyphs.clone()).unwrap_or(&[]) {
                self.instances.push(GlyphInstance {
                    anchor: label.pos.to_array(),
                    offset: g.offset,
                    size: g.size,
                    uv: g.uv,
                    color: label.color,
                    _pad: 0,
                });
            }
        }
        if self.force_upload || self.instances != self.uploaded {
            let data: &[u8] = bytemuck::cast_slice(&self.instances);
            self.buffer.write(device, queue, data);
            bytes += data.len() as u64;
            self.count = self.instances.len() as u32;
            std::mem::swap(&mut self.uploaded, &mut self.instances);
            self.force_upload = false;
        }
        bytes
    }

    /// Draws the visible glyphs in one instanced draw.
    pub fn paint(&self, renderer: &LabelRenderer, pass: &mut wgpu::RenderPass<'_>) {
        let (Some(slice), Some((_, bind_group))) = (self.buffer.slice(), &renderer.texture) else {
            return;
        };
        if self.count == 0 {
            return;
        }
        pass.set_pipeline(&renderer.pipeline);
        pass.set_bind_group(1, bind_group, &[]);
        pass.set_vertex_buffer(0, slice);
        pass.draw(0..4, 0..self.count);
    }

    /// Labels placed by the last `prepare`: on screen and not hidden by an earlier label.
    pub fn labels_drawn(&self) -> u32 {
        self.placed
    }

    /// Glyphs drawn by the next `paint`.
    pub fn glyph_count(&self) -> u32 {
        self.count
    }

    /// GPU bytes of the glyph instance buffer.
    pub fn allocated_bytes(&self) -> u64 {
        self.buffer.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atlas_packs_grows_and_reports_full() {
        let mut atlas = Atlas::new(512);
        let a = atlas.allocate(10, 12);
        let b = atlas.allocate(10, 12);
        assert_eq!(a, Some((0, 0)));
        assert_eq!(b, Some((11, 0)));
        // A much taller glyph opens a new shelf.
        assert_eq!(atlas.allocate(5, 40), Some((0, 13)));
        // Fill until the 512-high limit: the image grows, then allocation fails.
        let mut placed = 0;
        while atlas.allocate(1000, 60).is_some() {
            placed += 1;
        }
        assert_eq!(atlas.height, 512);
        assert_eq!(placed, (512 - 13 - 41) / 61);
        assert_eq!(atlas.pixels.len(), 1024 * 512);
        assert_eq!(atlas.allocate(2000, 1), None);
    }

    #[test]
    fn declutter_keeps_the_first_of_overlapping_boxes() {
        let mut d = Declutter::default();
        d.reset(Vec2::new(300.0, 200.0));
        let b = |x: f32, y: f32, w: f32| (Vec2::new(x, y), Vec2::new(x + w, y + 10.0));
        let place = |d: &mut Declutter, (lo, hi): (Vec2, Vec2)| d.try_place(lo, hi);
        assert!(place(&mut d, b(10.0, 10.0, 100.0)));
        // Overlaps the first (across a cell boundary at 64 px): dropped.
        assert!(!place(&mut d, b(100.0, 15.0, 50.0)));
        // Touches its right edge only: kept; so is one below.
        assert!(place(&mut d, b(110.0, 10.0, 40.0)));
        assert!(place(&mut d, b(10.0, 20.0, 100.0)));
        // A long box across many cells overlapping only the last placed one.
        assert!(!place(&mut d, b(-50.0, 25.0, 400.0)));
        // Partly outside the viewport, overlapping nothing: kept.
        assert!(place(&mut d, b(250.0, 195.0, 100.0)));
        assert!(!place(&mut d, b(280.0, 198.0, 10.0)));
        // A new frame forgets what was placed.
        d.reset(Vec2::new(300.0, 200.0));
        assert!(place(&mut d, b(100.0, 15.0, 50.0)));
    }
}
