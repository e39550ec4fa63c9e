//! Off-screen rendering: draws a [`DrawList`] into an sRGB texture, reads it back and writes PNG.
//!
//! Pictures larger than the device's `max_texture_dimension_2d` (or a forced tile size) are drawn
//! in tiles and stitched: each tile is the same picture seen by a camera whose centre is the tile's
//! centre (computed in f64 from the full camera) and whose zoom is unchanged, so the pixel grid of
//! every tile lines up exactly with the untiled picture. Readback rows are padded to wgpu's
//! 256-byte `COPY_BYTES_PER_ROW_ALIGNMENT` and unpadded while stitching.
//!
//! The target is `Rgba8UnormSrgb`: blending happens in linear light and the bytes read back are
//! sRGB-encoded, as a PNG expects.

use std::io::BufWriter;
use std::path::Path;

use glam::DVec2;

use super::{GraphRenderer, RenderContext, RenderError};
use crate::lod::DrawList;
use crate::view::{Camera, Rect};

/// The off-screen target format.
pub const OFFSCREEN_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;
/// Largest picture accepted, in bytes of RGBA (the whole picture is held in memory).
pub const MAX_IMAGE_BYTES: u64 = 4 << 30;

/// An 8-bit sRGB RGBA picture, rows top to bottom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbaImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes.
    pub pixels: Vec<u8>,
}

impl RgbaImage {
    /// The pixel at (x, y), if inside.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        self.pixels.get(i..i + 4).and_then(|p| p.try_into().ok())
    }

    /// A `width`×`height` picture of one colour.
    pub fn filled(width: u32, height: u32, color: [u8; 4]) -> Self {
        RgbaImage {
            width,
            height,
            pixels: color.repeat(width as usize * height as usize),
        }
    }
}

/// Checks a requested picture size and returns its byte count.
fn image_bytes(width: u32, height: u32) -> Result<usize, RenderError> {
    let bytes = u64::from(width) * u64::from(height) * 4;
    if width == 0 || height == 0 || bytes > MAX_IMAGE_BYTES {
        return Err(RenderError::BadImageSize { width, height });
    }
    usize::try_from(bytes).map_err(|_| RenderError::BadImageSize { width, height })
}

/// Renders repeatedly to pictures, keeping the pipelines, target and readback buffer between calls
/// (tests and the benchmark render many pictures; `render_to_rgba` is the one-shot form).
#[derive(Debug)]
pub struct OffscreenRenderer {
    renderer: GraphRenderer,
    format: wgpu::TextureFormat,
    max_tile: u32,
    target: Option<(wgpu::Texture, wgpu::TextureView)>,
    readback: Option<wgpu::Buffer>,
}

impl OffscreenRenderer {
    /// Pipelines for the off-screen format; tiles up to the device's texture limit.
    pub fn new(ctx: &RenderContext) -> Self {
        Self::with_format(ctx, OFFSCREEN_FORMAT)
    }

    /// Pipelines for an RGBA8 `format` other than the default: `Rgba8Unorm` exercises the path a
    /// non-sRGB window surface takes (the shaders encode; the bytes read back are the same).
    pub fn with_format(ctx: &RenderContext, format: wgpu::TextureFormat) -> Self {
        OffscreenRenderer {
            renderer: GraphRenderer::new(&ctx.device, &ctx.queue, format),
            format,
            max_tile: ctx.device.limits().max_texture_dimension_2d,
            target: None,
            readback: None,
        }
    }

    /// Caps the tile size below the device limit (tests force tiling with small values).
    pub fn with_max_tile(mut self, max_tile: u32) -> Self {
        self.max_tile = max_tile.max(1);
        self
    }

    /// The renderer inside (for its statistics).
    pub fn graph_renderer(&self) -> &GraphRenderer {
        &self.renderer
    }

    /// The renderer inside, mutable (budgets, `invalidate`).
    pub fn graph_renderer_mut(&mut self) -> &mut GraphRenderer {
        &mut self.renderer
    }

    /// Renders `list` as seen by `camera` (centre and zoom; the viewport becomes `width`×`height`)
    /// on a clear of `list.background`, tiling when larger than the tile limit.
    pub fn render(
        &mut self,
        ctx: &RenderContext,
        list: &DrawList,
        camera: &Camera,
        width: u32,
        height: u32,
    ) -> Result<RgbaImage, RenderError> {
        ctx.check_lost()?;
        let mut image = RgbaImage {
            width,
            height,
            pixels: vec![0; image_bytes(width, height)?],
        };
        let full = Camera {
            viewport: DVec2::new(f64::from(width), f64::from(height)),
            ..*camera
        };
        let tile_w = width.min(self.max_tile);
        let tile_h = height.min(self.max_tile);
        self.ensure_target(ctx, tile_w, tile_h);
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut y0 = 0;
        while y0 < height {
            let mut x0 = 0;
            while x0 < width {
                // Every tile renders tile_w × tile_h; only the part inside the picture is kept.
                let tile_center = DVec2::new(
                    f64::from(x0) + f64::from(tile_w) * 0.5,
                    f64::from(y0) + f64::from(tile_h) * 0.5,
                );
                let tile_camera = Camera {
                    center: full.world_from_screen(tile_center),
                    zoom: full.zoom,
                    viewport: DVec2::new(f64::from(tile_w), f64::from(tile_h)),
                };
                let rows = self.render_tile(ctx, list, &tile_camera, tile_w, tile_h)?;
                let keep_w = (width - x0).min(tile_w) as usize;
                let keep_h = (height - y0).min(tile_h) as usize;
                let padded = padded_row_bytes(tile_w) as usize;
                for row in 0..keep_h {
                    let src = rows.get(row * padded..row * padded + keep_w * 4);
                    let at = ((y0 as usize + row) * width as usize + x0 as usize) * 4;
                    let dst = image.pixels.get_mut(at..at + keep_w * 4);
                    if let (Some(src), Some(dst)) = (src, dst) {
                        dst.copy_from_slice(src);
                    }
                }
                x0 += tile_w;
            }
            y0 += tile_h;
        }
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(RenderError::Gpu(error.to_string()));
        }
        ctx.check_lost()?;
        Ok(image)
    }

    fn ensure_target(&mut self, ctx: &RenderContext, w: u32, h: u32) {
        let fits = self
            .target
            .as_ref()
            .is_some_and(|(t, _)| t.width() == w && t.height() == h);
        if fits {
            return;
        }
        self.target = Some(target_texture(
            &ctx.device,
            "offscreen target",
            self.format,
            w,
            h,
            wgpu::TextureUsages::COPY_SRC,
        ));
        self.readback = Some(ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("offscreen readback"),
            size: u64::from(padded_row_bytes(w)) * u64::from(h),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        }));
    }

    /// Draws one tile and returns its padded rows.
    fn render_tile(
        &mut self,
        ctx: &RenderContext,
        list: &DrawList,
        camera: &Camera,
        w: u32,
        h: u32,
    ) -> Result<Vec<u8>, RenderError> {
        let (Some((texture, view)), Some(readback)) = (&self.target, &self.readback) else {
            return Err(RenderError::Gpu("off-screen target missing".into()));
        };
        self.renderer.prepare(&ctx.device, &ctx.queue, camera, list);
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("offscreen"),
            });
        paint_pass(&mut encoder, &self.renderer, view, list.background);
        copy_to_readback(&mut encoder, texture, readback, w, h);
        let submission = ctx.queue.submit([encoder.finish()]);
        read_buffer(ctx, readback, submission)
    }
}

/// Records the copy of a `w`×`h` RGBA8 texture into `buffer`, rows padded to
/// [`padded_row_bytes`].
pub(crate) fn copy_to_readback(
    encoder: &mut wgpu::CommandEncoder,
    texture: &wgpu::Texture,
    buffer: &wgpu::Buffer,
    w: u32,
    h: u32,
) {
    encoder.copy_texture_to_buffer(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyBufferInfo {
            buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(padded_row_bytes(w)),
                rows_per_image: Some(h),
            },
        },
        wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
    );
}

/// Maps `buffer` after `submission` finished and copies its bytes out.
pub(crate) fn read_buffer(
    ctx: &RenderContext,
    buffer: &wgpu::Buffer,
    submission: wgpu::SubmissionIndex,
) -> Result<Vec<u8>, RenderError> {
    let (tx, rx) = std::sync::mpsc::channel();
    buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        })
        .map_err(|e| RenderError::Gpu(e.to_string()))?;
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(RenderError::Gpu(format!(
                "mapping the readback buffer: {e}"
            )));
        }
        Err(_) => return Err(RenderError::DeviceLost),
    }
    let bytes = buffer
        .get_mapped_range(..)
        .map_err(|e| RenderError::Gpu(e.to_string()))?
        .to_vec();
    buffer.unmap();
    Ok(bytes)
}

/// Bytes per row of a `width`-pixel RGBA8 row padded to `COPY_BYTES_PER_ROW_ALIGNMENT` (256).
pub fn padded_row_bytes(width: u32) -> u32 {
    let align = wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    (width * 4).div_ceil(align) * align
}

/// A `width`×`height` colour target to render into (`RENDER_ATTACHMENT` plus `extra_usage`), and
/// its view.
pub fn target_texture(
    device: &wgpu::Device,
    label: &str,
    format: wgpu::TextureFormat,
    width: u32,
    height: u32,
    extra_usage: wgpu::TextureUsages,
) -> (wgpu::Texture, wgpu::TextureView) {
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | extra_usage,
        view_formats: &[],
    });
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    (texture, view)
}

/// Records one render pass into `view`: cleared to `background`, then `renderer`'s draws.
pub fn paint_pass(
    encoder: &mut wgpu::CommandEncoder,
    renderer: &GraphRenderer,
    view: &wgpu::TextureView,
    background: [u8; 4],
) {
    let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some("graph"),
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(clear_color(background)),
                store: wgpu::StoreOp::Store,
            },
        })],
        ..Default::default()
    });
    renderer.paint(&mut pass);
}

/// The linear clear colour of an sRGB8 background.
pub fn clear_color(srgb: [u8; 4]) -> wgpu::Color {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    wgpu::Color {
        r: lin(srgb[0]),
        g: lin(srgb[1]),
        b: lin(srgb[2]),
        a: f64::from(srgb[3]) / 255.0,
    }
}

/// Renders `list` seen by `camera` (its centre and zoom; the viewport becomes `width`×`height`) to
/// a picture, clearing to `list.background`; tiles and stitches beyond the texture limit.
pub fn render_to_rgba(
    ctx: &RenderContext,
    list: &DrawList,
    camera: &Camera,
    width: u32,
    height: u32,
) -> Result<RgbaImage, RenderError> {
    OffscreenRenderer::new(ctx).render(ctx, list, camera, width, height)
}

/// What `modelmap render` does once it has a draw list: fits the camera to `bounds` (world
/// coordinates) with a 16 px margin, renders `width`×`height` (tiled when needed) and writes the PNG.
pub fn export_png(
    ctx: &RenderContext,
    list: &DrawList,
    bounds: Rect,
    width: u32,
    height: u32,
    path: &Path,
) -> Result<RgbaImage, RenderError> {
    let mut camera = Camera::new(DVec2::new(f64::from(width), f64::from(height)));
    camera.fit(bounds, 16.0);
    let img = render_to_rgba(ctx, list, &camera, width, height)?;
    save_png(&img, path)?;
    Ok(img)
}

/// Writes `img` as an 8-bit sRGB RGBA PNG.
pub fn save_png(img: &RgbaImage, path: &Path) -> Result<(), RenderError> {
    let io = |source: std::io::Error| RenderError::Io {
        path: path.to_path_buf(),
        source,
    };
    let png_err = |e: png::EncodingError| RenderError::Png {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), img.width, img.height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(&img.pixels).map_err(png_err)?;
    writer.finish().map_err(png_err)
}

/// Reads an 8-bit RGBA or RGB PNG (the golden tests' references).
pub fn load_png(path: &Path) -> Result<RgbaImage, RenderError> {
    let io = |source: std::io::Error| RenderError::Io {
        path: path.to_path_buf(),
        source,
    };
    let png_err = |e: png::DecodingError| RenderError::Png {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(png_err)?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(png_err)?;
    let (width, height) = (info.width, info.height);
    let pixels = match info.color_type {
        png::ColorType::Rgba => buf.get(..info.buffer_size()).unwrap_or(&[]).to_vec(),
        png::ColorType::Rgb => buf
            .get(..info.buffer_size())
            .unwrap_or(&[])
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => {
            return Err(RenderError::Png {
                path: path.to_path_buf(),
                message: format!("unsupported colour type {other:?}"),
            });
        }
    };
    if pixels.len() != image_bytes(width, height)? {
        return Err(RenderError::Png {
            path: path.to_path_buf(),
            message: "truncated image data".into(),
        });
    }
    Ok(RgbaImage {
        width,
        height,
        pixels,
    })
}
