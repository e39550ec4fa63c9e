//! The interactive viewer: a winit window with egui panels around a wgpu canvas.
//!
//! How it works: [`state::AppState`] holds everything the window shows as plain data (tabs, camera,
//! selection, search, expansion, jobs), driven by commands and pointer calls in pixels, so it is
//! tested without a window. `window.rs` owns winit, the wgpu surface and egui; each frame it polls
//! finished background jobs (loading, indexing, layout, export — never run on the UI thread), runs
//! the egui panels (`ui.rs`), and paints the graph with `render::GraphRenderer` inside egui's
//! central panel through an `egui_wgpu::CallbackTrait` (`canvas.rs`), the renderer living in
//! egui-wgpu's callback resources. The window redraws only when an event, an animation or a job
//! asks for it (Fifo present mode, no busy loop). Two tool windows sit over the canvas
//! (`panels.rs`): the anomaly panel (`A`; a background statistics scan, `anomalies.rs`) and the
//! matrix view (`M`; the adjacency matrix in cluster order, binned on a job, `matrix.rs`).
//!
//! Rejected alternatives: eframe (it hides the event loop, and the startup benchmark and surface
//! error handling need it), a separate wgpu pass for the graph under egui (two passes and a
//! z-order problem with panels; the callback draws exactly in the canvas rect), and a native file
//! dialog crate (a path field plus drag and drop cover it without GTK).

pub mod anomalies;
pub mod camera_ctl;
pub mod canvas;
mod export;
pub mod jobs;
pub mod matrix;
pub mod panels;
pub mod scene;
pub mod search;
pub mod state;
pub mod training_panel;
pub mod ui;
mod window;

use std::path::PathBuf;

/// Why the viewer could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The windowing system could not be reached or refused a window.
    #[error("cannot open a window: {0}")]
    Window(String),
    /// No GPU adapter could draw to the window.
    #[error(
        "no GPU adapter can draw to the window ({0}); install a GPU driver, or for software rendering `apt-get install mesa-vulkan-drivers` and run with WGPU_BACKEND=vulkan"
    )]
    NoAdapter(String),
    /// The GPU refused to create a device or configure the window surface.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// The embedded demo model failed to load (a build problem).
    #[error("the embedded demo model failed to load: {0}")]
    Demo(String),
}

/// Options of [`run_with`].
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Files to open, one tab each (the embedded demo model when empty).
    pub files: Vec<PathBuf>,
    /// Compare the first file with this checkpoint: a tab of B − A opens beside it.
    pub diff: Option<PathBuf>,
    /// Colour the first file's graph by this node data file (Model Explorer's JSON).
    pub node_data: Option<PathBuf>,
    /// Print the time from `started` to the first presented frame showing the model, then exit.
    pub bench_startup: bool,
    /// When the process started (`main` takes `Instant::now()` first thing).
    pub started: std::time::Instant,
}

impl RunOptions {
    /// Options for opening `files`, timed from now.
    pub fn new(files: Vec<PathBuf>) -> Self {
        RunOptions {
            files,
            diff: None,
            node_data: None,
            bench_startup: false,
            started: std::time::Instant::now(),
        }
    }
}

/// Opens the viewer on `files` (one tab each; the embedded demo model when empty) and runs until
/// the window is closed. `modelmap [FILE…]` calls this.
pub fn run(files: Vec<PathBuf>) -> Result<(), AppError> {
    run_with(RunOptions::new(files))
}

/// [`run`] with options (`--bench-startup`).
pub fn run_with(opts: RunOptions) -> Result<(), AppError> {
    window::run_window(opts)
}
