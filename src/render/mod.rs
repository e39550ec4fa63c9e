//! The renderer: instanced wgpu pipelines drawing a [`crate::lod::DrawList`] seen by a
//! [`crate::view::Camera`], used by the window, headless export and the benchmark alike.
//!
//! How it works: one module and one WGSL file per pipeline (`nodes`, `edges`, `labels`,
//! `heatmap`), each with its `#[repr(C)]` GPU structs, a long-lived `…Renderer` (pipelines,
//! layouts, caches) and a per-frame `…DrawData` (instance buffers that grow geometrically and are
//! reused). [`GraphRenderer`] (`frame.rs`) runs them in painter's order into a render pass it does
//! not own; [`render_to_rgba`] (`offscreen.rs`) wraps that in an off-screen target, tiling beyond
//! the texture limit. WGSL is loaded in one place (`shaders.rs`). Positions reach the GPU relative
//! to the draw list's origin and the camera is sent as `center - origin` computed in f64, so f32 is
//! enough at a 10⁶ zoom.
//!
//! In the window: create one [`GraphRenderer`] with egui-wgpu's device and the surface format
//! (sRGB or not), store it in egui-wgpu's `CallbackResources`, and from an
//! `egui_wgpu::CallbackTrait` call `prepare` (with a camera whose viewport is the callback rect in
//! physical pixels) and `paint(render_pass)` — its `RenderPass<'static>` coerces to our
//! `RenderPass<'_>`. Install [`watch_device_loss`] on that device; when it fires, rebuild the
//! renderer on the new device.
//!
//! Rejected alternatives: a retained scene graph with per-item GPU updates (the LOD cut already
//! produces a fresh list; re-uploading a revision is a few ms per million items), MSAA (signed
//! distance functions give better anti-aliasing without 4× target memory), and egui's painter for
//! labels (it would tie text to the window; see `labels.rs`).

pub mod baseline;
mod context;
pub mod cull;
mod edges;
mod frame;
mod gpu_buffer;
mod heatmap;
mod labels;
mod nodes;
mod offscreen;
mod pipeline;
pub mod shaders;

use std::path::PathBuf;

pub use context::{RenderContext, watch_device_loss};
pub use edges::{CURVE_SEGMENTS, EdgeInstance};
pub use frame::{Globals, GraphRenderer, Layers, PrepareStats};
pub use heatmap::{DEFAULT_BUDGET_BYTES as HEATMAP_DEFAULT_BUDGET_BYTES, HeatmapInstance};
pub use labels::{GlyphInstance, MIN_LABEL_PX};
pub use nodes::NodeInstance;
pub use offscreen::{
    OFFSCREEN_FORMAT, OffscreenRenderer, RgbaImage, clear_color, export_png, load_png, paint_pass,
    render_to_rgba, save_png, target_texture,
};

/// Errors of the renderer.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No GPU adapter (not even a software one) is available.
    #[error(
        "no GPU adapter found ({0}); install a GPU driver, or for software rendering `apt-get install mesa-vulkan-drivers` (lavapipe) and run with WGPU_BACKEND=vulkan"
    )]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("the GPU adapter refused to create a device: {0}")]
    RequestDevice(String),
    /// The device was lost (driver reset, GPU removed); create a new context and renderer.
    #[error("the GPU device was lost (driver reset or GPU removed); recreate the render context")]
    DeviceLost,
    /// A GPU validation or mapping error.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// The requested picture is empty or too large to hold in memory.
    #[error("cannot render a {width}×{height} picture (zero, or more than 4 GiB of pixels)")]
    BadImageSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PNG encoding or decoding failed.
    #[error("{}: PNG error: {message}", path.display())]
    Png {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Bad benchmark arguments.
    #[error("bench render: {0}")]
    BadArgs(String),
}
