//! `modelmap bench zoom`: from the whole model down to one weight value, as the window does it.
//!
//! How it works: opens a model (a sharded checkpoint is mapped, not read), lays it out, and flies a
//! camera from the fit-all view to one cell `TENSOR[ROW,COL]` of a weight's in-place heatmap
//! (`scene::weights`), zoom interpolated geometrically so every octave gets the same number of
//! frames. Each frame is the window's work: the LOD cut, the in-place weights in background mode
//! (missing tiles are built on rayon while a coarser cached tile stands in, so frames never wait for
//! weights), `prepare`, the render pass and waiting for the GPU. It reports the frame times (median,
//! p95, max — the "no frame over 100 ms"), how many frames drew stand-in tiles, and the
//! process's resident memory (the weights stay mapped: only touched pages count).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glam::DVec2;
use serde::Serialize;

use crate::lod::ViewState;
use crate::render::{GraphRenderer, OFFSCREEN_FORMAT, RenderContext};
use crate::scene::{InPlaceWeights, LayoutChoice, Scene, SceneError};
use crate::view::Camera;

/// Options of `bench zoom`.
#[derive(Clone, Debug, clap::Args)]
pub struct ZoomBenchArgs {
    /// The model (file or checkpoint folder).
    pub model: PathBuf,
    /// Where to land: `TENSOR[ROW,COL]`.
    #[arg(
        long,
        default_value = "model.layers.17.mlp.down_proj.weight[1000,2000]"
    )]
    pub to: String,
    /// Frames from the whole model to the single value.
    #[arg(long, default_value_t = 240)]
    pub frames: usize,
    /// Picture size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x800")]
    pub size: String,
    /// Draw no weights in place (the structure alone, for comparison).
    #[arg(long)]
    pub no_weights: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// What `bench zoom` measured.
#[derive(Clone, Debug, Serialize)]
pub struct ZoomBenchResult {
    /// Adapter name.
    pub adapter: String,
    /// Backend.
    pub backend: String,
    /// Parameters in the model.
    pub parameters: u64,
    /// Open (map + headers) time, ms.
    pub open_ms: f64,
    /// Layout time, ms.
    pub layout_ms: f64,
    /// Frames timed.
    pub frames: usize,
    /// Zoom at the start (fit) and at the end (one value).
    pub zoom_range: (f64, f64),
    /// Median frame, ms.
    pub median_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Slowest frame, ms.
    pub max_ms: f64,
    /// Frames that drew a coarser tile while the exact one was built.
    pub frames_with_standins: usize,
    /// Frames that drew in-place weights at all.
    pub frames_with_weights: usize,
    /// Value labels in the last frame (the single values written in their cells).
    pub last_frame_value_labels: usize,
    /// Resident memory at the end, bytes.
    pub rss_bytes: Option<u64>,
    /// Peak resident memory, bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// Runs the benchmark.
pub fn run(args: &ZoomBenchArgs) -> Result<ZoomBenchResult, SceneError> {
    let (width, height) =
        crate::bench::render::parse_size(&args.size).map_err(SceneError::Render)?;
    let viewport = DVec2::new(f64::from(width), f64::from(height));
    let t0 = Instant::now();
    let model = crate::load::open(&args.model).map_err(|e| SceneError::Stats(e.to_string()))?;
    let open_ms = t0.elapsed().as_secs_f64() * 1e3;
    let parameters = model.parameter_count();
    let t1 = Instant::now();
    let mut scene = Scene::build(
        Arc::new(model),
        LayoutChoice::Auto,
        &crate::layout::Progress::new(),
    )?;
    let layout_ms = t1.elapsed().as_secs_f64() * 1e3;
    scene.weights = InPlaceWeights::new(false);
    if args.no_weights {
        scene.weights.options.min_px = f64::INFINITY;
    }
    let start = scene.fit_camera(viewport);
    let end = scene.focus_camera(&args.to, viewport)?;

    let ctx = RenderContext::headless()?;
    let (_target, view) = crate::render::target_texture(
        &ctx.device,
        "bench zoom target",
        OFFSCREEN_FORMAT,
        width,
        height,
        wgpu::TextureUsages::empty(),
    );
    let mut renderer = GraphRenderer::new(&ctx.device, &ctx.queue, OFFSCREEN_FORMAT);
    let frames = args.frames.max(2);
    let mut times = Vec::with_capacity(frames);
    let (mut standins, mut with_weights, mut last_values) = (0, 0, 0);
    let state = ViewState::default();
    // One untimed frame: shader compilation.
    for i in 0..=frames {
        let t = i.saturating_sub(1) as f64 / (frames - 1) as f64;
        let camera = zoom_path(&start, &end, t);
        let f0 = Instant::now();
        let list = scene.decorated_cut(&camera, &state, f0.elapsed().as_secs_f64() + i as f64);
        let cut_ms = f0.elapsed().as_secs_f64() * 1e3;
        renderer.prepare(&ctx.device, &ctx.queue, &camera, &list);
        let prep_ms = f0.elapsed().as_secs_f64() * 1e3 - cut_ms;
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("bench zoom frame"),
            });
        crate::render::paint_pass(&mut encoder, &renderer, &view, list.background);
        let submission = ctx.queue.submit([encoder.finish()]);
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: Some(Duration::from_secs(60)),
            })
            .map_err(|e| SceneError::Stats(format!("GPU wait failed: {e}")))?;
        let ms = f0.elapsed().as_secs_f64() * 1e3;
        if std::env::var_os("MODELMAP_BENCH_TRACE").is_some() {
            eprintln!(
                "frame {i}: zoom {:.3e} {ms:.1} ms (cut {cut_ms:.1}, prepare {prep_ms:.1}), {} labels, {} tiles ({} stand-ins), {} pending",
                camera.zoom,
                list.labels.len(),
                list.heatmaps.len(),
                scene.weights.fallback_tiles(),
                scene.weights.pending()
            );
        }
        if i == 0 {
            continue;
        }
        times.push(ms);
        if !scene.weights.placements().is_empty() {
            with_weights += 1;
        }
        if scene.weights.fallback_tiles() > 0 {
            standins += 1;
        }
        last_values = list
            .labels
            .iter()
            .filter(|l| l.text.parse::<f64>().is_ok())
            .count();
    }
    let (adapter, backend) = ctx.adapter_name_and_backend();
    Ok(ZoomBenchResult {
        adapter,
        backend,
        parameters,
        open_ms,
        layout_ms,
        frames,
        zoom_range: (start.zoom, end.zoom),
        median_ms: crate::bench::render::quantile(&times, 0.5),
        p95_ms: crate::bench::render::quantile(&times, 0.95),
        max_ms: times.iter().copied().fold(0.0, f64::max),
        frames_with_standins: standins,
        frames_with_weights: with_weights,
        last_frame_value_labels: last_values,
        rss_bytes: crate::diag::rss_bytes(),
        peak_rss_bytes: crate::diag::peak_rss_bytes(),
    })
}

/// The camera at `t` in 0..=1 between `a` and `b`: zoom geometric, the centre moving so that the
/// target stays put on screen as a person zooming about it would see (van Wijk–Nuij without the
/// zoom-out arc).
pub fn zoom_path(a: &Camera, b: &Camera, t: f64) -> Camera {
    let t = t.clamp(0.0, 1.0);
    let zoom = a.zoom * (b.zoom / a.zoom).powf(t);
    // Fraction of the way in screen terms: 1 - a.zoom/zoom reaches ~1 long before the end, so the
    // centre converges early and stays on the target while the zoom goes on.
    let s = if (b.zoom - a.zoom).abs() < f64::EPSILON {
        t
    } else {
        ((1.0 / a.zoom - 1.0 / zoom) / (1.0 / a.zoom - 1.0 / b.zoom)).clamp(0.0, 1.0)
    };
    Camera {
        center: a.center + (b.center - a.center) * s,
        zoom,
        ..*a
    }
}

impl std::fmt::Display for ZoomBenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: Option<u64>| b.map_or("?".to_string(), |b| format!("{} MiB", b >> 20));
        writeln!(f, "adapter: {} ({})", self.adapter, self.backend)?;
        writeln!(
            f,
            "model: {} parameters, open {:.1} ms, layout {:.1} ms",
            crate::model::group_digits(self.parameters),
            self.open_ms,
            self.layout_ms
        )?;
        writeln!(
            f,
            "zoom {:.3e} → {:.3e} over {} frames: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            self.zoom_range.0,
            self.zoom_range.1,
            self.frames,
            self.median_ms,
            self.p95_ms,
            self.max_ms
        )?;
        writeln!(
            f,
            "weights in place in {} frames ({} with stand-in tiles); {} values written in the last frame",
            self.frames_with_weights, self.frames_with_standins, self.last_frame_value_labels
        )?;
        write!(
            f,
            "resident memory {} (peak {})",
            mib(self.rss_bytes),
            mib(self.peak_rss_bytes)
        )
    }
}
