//! `modelmap bench render`: whole-frame GPU numbers over a scripted camera path.
//!
//! The path is fit → zoom in 1000× about the centre → pan two viewports → zoom back out, over a
//! scene given by a [`SceneSource`] (the synthetic one here; the LOD cut over a real layout later:
//! it only has to turn a camera into a `DrawList`). Each frame is timed on the CPU from `prepare` to
//! the GPU having finished (`poll(Wait)`), with GPU time from timestamp queries where the adapter
//! has `TIMESTAMP_QUERY`. In the same run a minimal instanced SDF-circle pipeline
//! ([`crate::render::baseline`]) draws the same nodes along the same path, and the report gives our
//! renderer's median as a ratio of it, and also runs our renderer on the nodes alone (what the
//! baseline draws) to separate pipeline overhead from the cost of drawing edges and labels. A third
//! run, the same-scene baseline, has the minimal pipeline draw the scene's edges too (straight SDF
//! segments beneath the circles): the like-for-like comparison for "our renderer drawing
//! everything".
//! `MODELMAP_BENCH_TRACE=1` logs every frame's zoom and times to stderr.

use std::time::{Duration, Instant};

use glam::{DVec2, Vec2};
use serde::Serialize;

use crate::lod::{Align, DrawList, EdgeItem, LabelItem, NodeItem, NodeShape, flags};
use crate::render::baseline::BaselineRenderer;
use crate::render::{
    GraphRenderer, Layers, OFFSCREEN_FORMAT, RenderContext, RenderError, clear_color,
};
use crate::view::{Camera, Rect};

/// Options of `bench render`.
#[derive(Clone, Debug, clap::Args)]
pub struct RenderBenchArgs {
    /// Nodes in the synthetic scene.
    #[arg(long, default_value_t = 10_000)]
    pub nodes: usize,
    /// Edges in the synthetic scene (default: twice the nodes).
    #[arg(long)]
    pub edges: Option<usize>,
    /// Timed frames along the camera path.
    #[arg(long, default_value_t = 120)]
    pub frames: usize,
    /// Picture size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    pub size: String,
    /// Seed of the synthetic scene.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Skip the baseline pipeline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Do not draw edges (still cut and uploaded): how much of a frame the edges cost.
    #[arg(long)]
    pub no_edges: bool,
    /// Do not draw labels (still cut and laid out): how much of a frame the labels cost.
    #[arg(long)]
    pub no_labels: bool,
    /// Turn off the renderer's viewport culling: every uploaded instance is drawn every frame.
    #[arg(long)]
    pub no_cull: bool,
    /// Rounds: the path is drawn this many times by each pipeline in turn (ours, nodes only, the
    /// circles, the same-scene baseline, then again), and the frames pooled, so that a machine
    /// whose speed drifts during the run (a shared VM) slows every pipeline alike.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

impl Default for RenderBenchArgs {
    fn default() -> Self {
        RenderBenchArgs {
            nodes: 10_000,
            edges: None,
            frames: 120,
            size: "1280x720".into(),
            seed: 1,
            no_baseline: false,
            json: false,
            no_edges: false,
            no_labels: false,
            no_cull: false,
            rounds: 3,
        }
    }
}

/// What `bench render` measured.
#[derive(Clone, Debug, Serialize)]
pub struct RenderBenchResult {
    /// Adapter name.
    pub adapter: String,
    /// Backend (Vulkan, Metal, Gl…).
    pub backend: String,
    /// Nodes drawn.
    pub nodes: usize,
    /// Edges drawn.
    pub edges: usize,
    /// Labels in the scene.
    pub labels: usize,
    /// Timed frames along the path, per round.
    pub frames: usize,
    /// Rounds: each pipeline drew the path this many times, its pipelines taking turns.
    pub rounds: usize,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Median CPU wall time per frame, including waiting for the GPU, ms.
    pub median_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Median GPU time of the render pass from timestamp queries, ms (absent without the feature).
    pub gpu_median_ms: Option<f64>,
    /// The first upload of the scene's instances (pack + write), ms.
    pub upload_ms: f64,
    /// Median per-frame `prepare` (uniform, label culling, uploads when the list changed), ms.
    pub prepare_median_ms: f64,
    /// Median time the scene source took to produce the frame's list (the LOD cut), ms.
    pub cut_median_ms: f64,
    /// Largest such time, ms.
    pub cut_max_ms: f64,
    /// Median and largest number of node items (nodes, clusters, frames) drawn per frame.
    pub nodes_per_frame: (usize, usize),
    /// Median and largest number of edge instances drawn per frame.
    pub edges_per_frame: (usize, usize),
    /// Median and largest number of labels drawn per frame.
    pub labels_per_frame: (usize, usize),
    /// Median and largest number of node instances left after the renderer's viewport culling.
    pub drawn_nodes_per_frame: (usize, usize),
    /// Median and largest number of edge instances left after the renderer's viewport culling.
    pub drawn_edges_per_frame: (usize, usize),
    /// Median and largest number of labels drawn after viewport culling and decluttering.
    pub drawn_labels_per_frame: (usize, usize),
    /// GPU memory the renderer allocated (buffers, textures, target), bytes.
    pub gpu_bytes: u64,
    /// Median of the baseline pipeline (instanced SDF circles) over the same nodes and path, ms.
    pub baseline_median_ms: Option<f64>,
    /// `median_ms / baseline_median_ms` (target ≤ 1.3). Our renderer culls to the viewport and the
    /// baseline does not, so zoomed-in frames favour ours; see `fit_ratio_to_baseline`.
    pub ratio_to_baseline: Option<f64>,
    /// Median of our renderer drawing only the nodes (what the baseline draws), ms.
    pub nodes_only_median_ms: Option<f64>,
    /// `nodes_only_median_ms / baseline_median_ms`: our node pipeline's overhead over the minimal one.
    pub nodes_only_ratio: Option<f64>,
    /// Median over the frames held at the fitted view (the last quarter), everything on screen, ms.
    pub fit_median_ms: f64,
    /// The baseline's median over the same frames, ms.
    pub baseline_fit_median_ms: Option<f64>,
    /// `fit_median_ms / baseline_fit_median_ms`: the comparison culling cannot help.
    pub fit_ratio_to_baseline: Option<f64>,
    /// Our renderer on the nodes only, over the same frames, ms.
    pub nodes_only_fit_median_ms: Option<f64>,
    /// Median of the same-scene baseline (the minimal pipeline drawing the same nodes as circles and
    /// the same edges as straight anti-aliased segments, no labels) over the same path, ms.
    pub scene_baseline_median_ms: Option<f64>,
    /// `median_ms / scene_baseline_median_ms`: our renderer against a minimal pipeline drawing the
    /// same items.
    pub ratio_to_scene_baseline: Option<f64>,
    /// The same-scene baseline over the fitted frames, ms.
    pub scene_baseline_fit_median_ms: Option<f64>,
    /// `fit_median_ms / scene_baseline_fit_median_ms`.
    pub fit_ratio_to_scene_baseline: Option<f64>,
}

/// Something that gives the `DrawList` to draw for a camera: the synthetic scene, or the LOD cut
/// over a real layout.
pub trait SceneSource {
    /// World bounds of the whole scene (the camera path fits them).
    fn bounds(&self) -> Rect;
    /// The list to draw for `camera` (bump its revision when it changes).
    fn draw_list(&mut self, camera: &Camera) -> &DrawList;
}

/// A fixed synthetic scene: a layered graph of `n` nodes on a jittered grid with `m` edges between
/// nearby nodes (mostly to the next layer), a few labels, deterministic given the seed.
#[derive(Clone, Debug)]
pub struct SyntheticScene {
    list: DrawList,
    bounds: Rect,
}

/// A small deterministic generator (SplitMix64), so scenes are reproducible across platforms.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..1.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// A stable op-type palette.
const PALETTE: [[u8; 4]; 6] = [
    [80, 130, 220, 255],
    [90, 180, 120, 255],
    [230, 150, 60, 255],
    [170, 110, 200, 255],
    [200, 90, 90, 255],
    [120, 120, 130, 255],
];

impl SyntheticScene {
    /// Generates the scene.
    pub fn new(nodes: usize, edges: usize, seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        let cols = ((nodes as f64 * 16.0 / 9.0).sqrt().ceil() as usize).max(1);
        let spacing = 10.0f32;
        let mut list = DrawList::new(DVec2::ZERO);
        list.revision = 1;
        list.nodes.reserve(nodes);
        for i in 0..nodes {
            let (col, row) = ((i % cols) as f32, (i / cols) as f32);
            let jitter = Vec2::new(rng.unit() - 0.5, rng.unit() - 0.5) * 3.0;
            let circle = rng.below(4) == 0;
            let half = if circle {
                Vec2::splat(2.0 + rng.unit())
            } else {
                Vec2::new(3.0 + rng.unit(), 1.5 + rng.unit() * 0.5)
            };
            let flag = match rng.below(200) {
                0 => flags::SELECTED,
                1 => flags::CLUSTER,
                2 => flags::DIMMED,
                _ => 0,
            };
            list.nodes.push(NodeItem {
                center: Vec2::new(col, row) * spacing + jitter,
                half_size: half,
                fill: PALETTE[rng.below(PALETTE.len())],
                shape: if circle {
                    NodeShape::Circle
                } else {
                    NodeShape::RoundedBox
                },
                flags: flag,
                alpha: 1.0,
            });
        }
        list.edges.reserve(edges);
        for _ in 0..edges.min(if nodes > 1 { usize::MAX } else { 0 }) {
            let a = rng.below(nodes);
            // Mostly the next layer, a few columns away; sometimes the same layer.
            let (row, col) = (a / cols, a % cols);
            let col_b = (col + rng.below(7)).saturating_sub(3).min(cols - 1);
            let row_b = if rng.below(5) == 0 { row } else { row + 1 };
            let b = [row_b * cols + col_b, row * cols + col_b, a]
                .into_iter()
                .find(|&b| b < nodes)
                .unwrap_or(a);
            let (pa, pb) = (list.nodes[a].center, list.nodes[b].center);
            let target = list.nodes[b].half_size * 2.0;
            let kind = rng.below(4);
            list.edges.push(EdgeItem {
                from: pa,
                to: pb,
                color: [70, 70, 80, 160],
                width_px: if kind == 3 { 2.5 } else { 1.0 },
                flags: match kind {
                    0 => flags::CURVE | flags::ARROW,
                    1 => flags::CURVE,
                    2 => flags::ARROW,
                    _ => 0,
                },
                arrow_world: EdgeItem::arrow_world_for(f64::from(target.min_element())),
            });
        }
        // Group titles: about a thousand labels, as an LOD cut would keep.
        let step = (nodes / 1000).max(1);
        for i in (0..nodes).step_by(step) {
            let n = list.nodes[i];
            list.labels.push(LabelItem {
                pos: n.center,
                text: format!("layer{}.op{}", i / cols, i % cols),
                size_px: 11.0,
                color: [20, 20, 30, 255],
                align: Align::Center,
            });
        }
        let mut bounds = Rect::EMPTY;
        for n in &list.nodes {
            bounds.include((n.center - n.half_size).as_dvec2());
            bounds.include((n.center + n.half_size).as_dvec2());
        }
        SyntheticScene { list, bounds }
    }

    /// The generated list.
    pub fn list(&self) -> &DrawList {
        &self.list
    }
}

impl SceneSource for SyntheticScene {
    fn bounds(&self) -> Rect {
        self.bounds
    }
    fn draw_list(&mut self, _camera: &Camera) -> &DrawList {
        &self.list
    }
}

/// The nodes of another source only (no edges, labels or heatmaps): our renderer on exactly what
/// the baseline draws, to separate pipeline overhead from the cost of drawing more things.
struct NodesOnly<'a> {
    inner: &'a mut dyn SceneSource,
    list: DrawList,
    copied: Option<u64>,
}

impl SceneSource for NodesOnly<'_> {
    fn bounds(&self) -> Rect {
        self.inner.bounds()
    }
    fn draw_list(&mut self, camera: &Camera) -> &DrawList {
        let full = self.inner.draw_list(camera);
        if self.copied != Some(full.revision) {
            self.list = DrawList {
                nodes: full.nodes.clone(),
                ..DrawList::new(full.origin)
            };
            self.list.revision = full.revision;
            self.list.background = full.background;
            self.copied = Some(full.revision);
        }
        &self.list
    }
}

/// The camera of frame `i` of `frames`: fit, zoom in 1000×, pan two viewports, zoom out.
pub fn camera_path(bounds: Rect, viewport: DVec2, i: usize, frames: usize) -> Camera {
    let mut fit = Camera::new(viewport);
    fit.fit(bounds, 10.0);
    let quarter = (frames / 4).max(1);
    let phase = i / quarter;
    let t = (i % quarter) as f64 / quarter as f64;
    let deep = Camera {
        zoom: fit.zoom * 1000.0,
        ..fit
    };
    let pan = DVec2::new(2.0 * viewport.x / deep.zoom, viewport.y / deep.zoom);
    match phase {
        0 => fit.lerp(&deep, t),
        1 => Camera {
            center: fit.center + pan * t,
            ..deep
        },
        2 => Camera {
            center: fit.center + pan * (1.0 - t),
            ..deep
        }
        .lerp(&fit, t),
        _ => fit,
    }
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(u32, u32), RenderError> {
    let bad = || RenderError::BadArgs(format!("--size {s:?} is not WIDTHxHEIGHT"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(bad());
    }
    Ok((w, h))
}

/// Runs the benchmark on the synthetic scene.
pub fn run(args: &RenderBenchArgs) -> Result<RenderBenchResult, RenderError> {
    let edges = args.edges.unwrap_or(args.nodes.saturating_mul(2));
    if args.nodes > 50_000_000 || edges > 100_000_000 {
        return Err(RenderError::BadArgs(
            "at most 50 M nodes and 100 M edges".into(),
        ));
    }
    let mut scene = SyntheticScene::new(args.nodes, edges, args.seed);
    let ctx = RenderContext::headless()?;
    run_with(&ctx, args, &mut scene)
}

/// Timestamp queries for one pass, when the device has them.
struct GpuTimer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    period_ns: f64,
}

impl GpuTimer {
    fn new(ctx: &RenderContext) -> Option<Self> {
        if !ctx
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return None;
        }
        let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("bench"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps readback"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Some(GpuTimer {
            set,
            resolve,
            readback,
            period_ns: f64::from(ctx.queue.get_timestamp_period()),
        })
    }

    /// Reads the pass's duration after the frame was waited for.
    fn read_ms(&self, ctx: &RenderContext) -> Option<f64> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.readback
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        ctx.device.poll(wgpu::PollType::wait_indefinitely()).ok()?;
        rx.recv().ok()?.ok()?;
        let ms = {
            let view = self.readback.get_mapped_range(..).ok()?;
            let t: &[u64] = bytemuck::try_cast_slice(&view).ok()?;
            let (a, b) = (*t.first()?, *t.get(1)?);
            b.saturating_sub(a) as f64 * self.period_ns / 1e6
        };
        self.readback.unmap();
        Some(ms)
    }
}

/// What a frame draws with: ours or the baseline.
enum Painter<'a> {
    Ours(&'a mut GraphRenderer),
    Baseline(&'a BaselineRenderer),
}

#[derive(Default)]
struct Timings {
    frame_ms: Vec<f64>,
    gpu_ms: Vec<f64>,
    prepare_ms: Vec<f64>,
    cut_ms: Vec<f64>,
    /// Per frame: nodes, edges, labels in the list.
    counts: Vec<[usize; 3]>,
    /// Per frame: nodes, edges, labels drawn after culling (our renderer only).
    drawn: Vec<[usize; 3]>,
    /// Frame times of the last quarter of the path, held at the fitted view (everything on screen).
    fit_ms: Vec<f64>,
}

impl Timings {
    /// Pools another round's frames into these.
    fn extend(&mut self, other: Timings) {
        self.frame_ms.extend(other.frame_ms);
        self.gpu_ms.extend(other.gpu_ms);
        self.prepare_ms.extend(other.prepare_ms);
        self.cut_ms.extend(other.cut_ms);
        self.counts.extend(other.counts);
        self.drawn.extend(other.drawn);
        self.fit_ms.extend(other.fit_ms);
    }

    fn medians(&self) -> (f64, f64) {
        (quantile(&self.frame_ms, 0.5), quantile(&self.fit_ms, 0.5))
    }
}

fn run_path(
    ctx: &RenderContext,
    painter: &mut Painter<'_>,
    source: &mut dyn SceneSource,
    view: &wgpu::TextureView,
    viewport: DVec2,
    frames: usize,
    timer: Option<&GpuTimer>,
) -> Result<Timings, RenderError> {
    let bounds = source.bounds();
    let mut t = Timings {
        frame_ms: Vec::with_capacity(frames),
        gpu_ms: Vec::new(),
        prepare_ms: Vec::new(),
        cut_ms: Vec::new(),
        counts: Vec::new(),
        drawn: Vec::new(),
        fit_ms: Vec::new(),
    };
    let quarter = (frames / 4).max(1);
    let trace = std::env::var_os("MODELMAP_BENCH_TRACE").is_some();
    // Two untimed frames: shader compilation and the first upload.
    for i in 0..frames + 2 {
        let camera = camera_path(bounds, viewport, i.saturating_sub(2), frames);
        let start = Instant::now();
        let list = source.draw_list(&camera);
        let cut = start.elapsed();
        let counts = [list.nodes.len(), list.edges.len(), list.labels.len()];
        let drawn = match painter {
            Painter::Ours(r) => {
                r.prepare(&ctx.device, &ctx.queue, &camera, list);
                let p = r.last_prepare();
                [
                    p.nodes_drawn as usize,
                    p.edges_drawn as usize,
                    p.labels_drawn as usize,
                ]
            }
            Painter::Baseline(b) => {
                b.prepare(&ctx.queue, &camera, list);
                [counts[0], 0, 0]
            }
        };
        let prepared = start.elapsed();
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("bench frame"),
            });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("bench"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(clear_color(list.background)),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                timestamp_writes: timer.map(|t| wgpu::RenderPassTimestampWrites {
                    query_set: &t.set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
                ..Default::default()
            });
            match painter {
                Painter::Ours(r) => r.paint(&mut pass),
                Painter::Baseline(b) => b.paint(&mut pass),
            }
        }
        if let Some(t) = timer {
            encoder.resolve_query_set(&t.set, 0..2, &t.resolve, 0);
            encoder.copy_buffer_to_buffer(&t.resolve, 0, &t.readback, 0, 16);
        }
        let submission = ctx.queue.submit([encoder.finish()]);
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: Some(Duration::from_secs(60)),
            })
            .map_err(|e| RenderError::Gpu(e.to_string()))?;
        let elapsed = start.elapsed();
        ctx.check_lost()?;
        let gpu = timer.and_then(|t| t.read_ms(ctx));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        if trace {
            eprintln!(
                "frame {i}: zoom {:.3e} {:.1} ms (cut {:.1}, prepare {:.1}, gpu {}) nodes {} edges {} labels {}, drawn {} nodes {} edges",
                camera.zoom,
                ms(elapsed),
                ms(cut),
                ms(prepared.saturating_sub(cut)),
                gpu.map_or("n/a".into(), |g| format!("{g:.1}")),
                counts[0],
                counts[1],
                counts[2],
                drawn[0],
                drawn[1],
            );
        }
        if i >= 2 {
            t.frame_ms.push(ms(elapsed));
            t.prepare_ms.push(ms(prepared.saturating_sub(cut)));
            t.cut_ms.push(ms(cut));
            t.counts.push(counts);
            t.drawn.push(drawn);
            if (i - 2) / quarter >= 3 {
                t.fit_ms.push(ms(elapsed));
            }
            t.gpu_ms.extend(gpu);
        }
    }
    Ok(t)
}

/// The `q`-quantile (0..=1) of `v` by nearest rank.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let i = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len()) - 1;
    s.get(i).copied().unwrap_or(f64::NAN)
}

/// Median and maximum of column `k` of per-frame counts.
fn count_stats(counts: &[[usize; 3]], k: usize) -> (usize, usize) {
    let mut v: Vec<usize> = counts.iter().filter_map(|c| c.get(k).copied()).collect();
    v.sort_unstable();
    let median = v.get(v.len() / 2).copied().unwrap_or(0);
    (median, v.last().copied().unwrap_or(0))
}

/// Runs the benchmark over any scene source on `ctx`.
pub fn run_with(
    ctx: &RenderContext,
    args: &RenderBenchArgs,
    source: &mut dyn SceneSource,
) -> Result<RenderBenchResult, RenderError> {
    let (width, height) = parse_size(&args.size)?;
    let frames = args.frames.max(4);
    let viewport = DVec2::new(f64::from(width), f64::from(height));
    let (_target, view) = crate::render::target_texture(
        &ctx.device,
        "bench target",
        OFFSCREEN_FORMAT,
        width,
        height,
        wgpu::TextureUsages::empty(),
    );
    let timer = GpuTimer::new(ctx);

    let mut renderer = GraphRenderer::new(&ctx.device, &ctx.queue, OFFSCREEN_FORMAT);
    renderer.set_layers(Layers {
        edges: !args.no_edges,
        labels: !args.no_labels,
        ..Layers::default()
    });
    renderer.set_culling(!args.no_cull);
    // The first upload, measured alone.
    let first = camera_path(source.bounds(), viewport, 0, frames);
    let (nodes, edges, labels) = {
        let list = source.draw_list(&first);
        (list.nodes.len(), list.edges.len(), list.labels.len())
    };
    renderer.prepare(&ctx.device, &ctx.queue, &first, source.draw_list(&first));
    let upload_ms = renderer.last_prepare().upload_time.as_secs_f64() * 1e3;
    crate::diag::trace_memory("first frame uploaded");
    // Every pipeline is built and uploaded once; then the rounds alternate between them.
    let mut baselines = if args.no_baseline {
        None
    } else {
        let mut nodes_only = GraphRenderer::new(&ctx.device, &ctx.queue, OFFSCREEN_FORMAT);
        nodes_only.set_culling(!args.no_cull);
        let mut circles = BaselineRenderer::new(&ctx.device, OFFSCREEN_FORMAT);
        circles.upload(&ctx.device, &ctx.queue, source.draw_list(&first), false)?;
        let scene = if args.no_edges {
            None
        } else {
            let mut b = BaselineRenderer::new(&ctx.device, OFFSCREEN_FORMAT);
            b.upload(&ctx.device, &ctx.queue, source.draw_list(&first), true)?;
            Some(b)
        };
        Some((nodes_only, circles, scene))
    };
    let mut ours = Timings::default();
    let mut nodes_only_t = Timings::default();
    let mut circles_t = Timings::default();
    let mut scene_t = Timings::default();
    let run = |painter: &mut Painter<'_>, source: &mut dyn SceneSource, into: &mut Timings| {
        let t = run_path(
            ctx,
            painter,
            source,
            &view,
            viewport,
            frames,
            timer.as_ref(),
        )?;
        into.extend(t);
        Ok::<(), RenderError>(())
    };
    for _ in 0..args.rounds.max(1) {
        run(&mut Painter::Ours(&mut renderer), source, &mut ours)?;
        let Some((nodes_only, circles, scene)) = &mut baselines else {
            continue;
        };
        let mut only = NodesOnly {
            inner: &mut *source,
            list: DrawList::default(),
            copied: None,
        };
        run(&mut Painter::Ours(nodes_only), &mut only, &mut nodes_only_t)?;
        run(&mut Painter::Baseline(circles), source, &mut circles_t)?;
        if let Some(scene) = scene {
            run(&mut Painter::Baseline(scene), source, &mut scene_t)?;
        }
    }
    let gpu_bytes = renderer.gpu_bytes() + u64::from(width) * u64::from(height) * 4;
    crate::diag::trace_memory("camera path drawn");
    drop(renderer);
    let has = |t: &Timings| !t.frame_ms.is_empty();
    let nodes_only_median = has(&nodes_only_t).then(|| nodes_only_t.medians());
    let baseline_median = has(&circles_t).then(|| circles_t.medians());
    let scene_baseline = if has(&scene_t) {
        Some(scene_t.medians())
    } else {
        baseline_median
    };
    let (adapter, backend) = ctx.adapter_name_and_backend();
    let median = quantile(&ours.frame_ms, 0.5);
    let (nodes_only_median, nodes_only_fit) = nodes_only_median.unzip();
    let (baseline_median, baseline_fit) = baseline_median.unzip();
    let (scene_baseline_median, scene_baseline_fit) = scene_baseline.unzip();
    let fit_median = quantile(&ours.fit_ms, 0.5);
    Ok(RenderBenchResult {
        adapter,
        backend,
        nodes,
        edges,
        labels,
        frames,
        rounds: args.rounds.max(1),
        width,
        height,
        median_ms: median,
        p95_ms: quantile(&ours.frame_ms, 0.95),
        p99_ms: quantile(&ours.frame_ms, 0.99),
        gpu_median_ms: (!ours.gpu_ms.is_empty()).then(|| quantile(&ours.gpu_ms, 0.5)),
        upload_ms,
        prepare_median_ms: quantile(&ours.prepare_ms, 0.5),
        cut_median_ms: quantile(&ours.cut_ms, 0.5),
        cut_max_ms: quantile(&ours.cut_ms, 1.0),
        nodes_per_frame: count_stats(&ours.counts, 0),
        edges_per_frame: count_stats(&ours.counts, 1),
        labels_per_frame: count_stats(&ours.counts, 2),
        drawn_nodes_per_frame: count_stats(&ours.drawn, 0),
        drawn_edges_per_frame: count_stats(&ours.drawn, 1),
        drawn_labels_per_frame: count_stats(&ours.drawn, 2),
        gpu_bytes,
        baseline_median_ms: baseline_median,
        ratio_to_baseline: baseline_median.map(|b| median / b),
        nodes_only_median_ms: nodes_only_median,
        nodes_only_ratio: nodes_only_median.zip(baseline_median).map(|(n, b)| n / b),
        fit_median_ms: fit_median,
        baseline_fit_median_ms: baseline_fit,
        fit_ratio_to_baseline: baseline_fit.map(|b| fit_median / b),
        nodes_only_fit_median_ms: nodes_only_fit,
        scene_baseline_median_ms: scene_baseline_median,
        ratio_to_scene_baseline: scene_baseline_median.map(|b| median / b),
        scene_baseline_fit_median_ms: scene_baseline_fit,
        fit_ratio_to_scene_baseline: scene_baseline_fit.map(|b| fit_median / b),
    })
}

/// The human-readable report.
pub fn report(r: &RenderBenchResult) -> String {
    let opt = |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.2}{unit}"));
    format!(
        "adapter: {} ({})\nscene: {} nodes, {} edges, {} labels at {}x{}, {} frames (fit, zoom 1000x, pan, zoom out) x {} rounds, pipelines taking turns\n\
         frame: median {:.2} ms, p95 {:.2} ms, p99 {:.2} ms (CPU wall incl. GPU wait)\n\
         gpu pass: median {}\nupload: {:.2} ms first, prepare median {:.3} ms/frame\n\
         scene source (LOD cut): median {:.2} ms, max {:.2} ms\n\
         per frame (median/max): {}/{} nodes, {}/{} edges, {}/{} labels\n\
         drawn after viewport culling (median/max): {}/{} nodes, {}/{} edges, {}/{} labels (decluttered)\ngpu memory: {:.1} MiB\n\
         baseline (instanced SDF circles, same nodes and path): median {}; ratio {}\n\
         our renderer on the nodes only: median {}; ratio to baseline {}\n\
         fitted view only (everything on screen): median {:.2} ms, nodes only {}, baseline {}; ratio {}\n\
         same-scene baseline (circles + straight segments, same nodes and edges): median {}; ratio {}; fitted view {}, ratio {}\n",
        r.adapter,
        r.backend,
        r.nodes,
        r.edges,
        r.labels,
        r.width,
        r.height,
        r.frames,
        r.rounds,
        r.median_ms,
        r.p95_ms,
        r.p99_ms,
        opt(r.gpu_median_ms, " ms"),
        r.upload_ms,
        r.prepare_median_ms,
        r.cut_median_ms,
        r.cut_max_ms,
        r.nodes_per_frame.0,
        r.nodes_per_frame.1,
        r.edges_per_frame.0,
        r.edges_per_frame.1,
        r.labels_per_frame.0,
        r.labels_per_frame.1,
        r.drawn_nodes_per_frame.0,
        r.drawn_nodes_per_frame.1,
        r.drawn_edges_per_frame.0,
        r.drawn_edges_per_frame.1,
        r.drawn_labels_per_frame.0,
        r.drawn_labels_per_frame.1,
        r.gpu_bytes as f64 / (1 << 20) as f64,
        opt(r.baseline_median_ms, " ms"),
        opt(r.ratio_to_baseline, "x"),
        opt(r.nodes_only_median_ms, " ms"),
        opt(r.nodes_only_ratio, "x"),
        r.fit_median_ms,
        opt(r.nodes_only_fit_median_ms, " ms"),
        opt(r.baseline_fit_median_ms, " ms"),
        opt(r.fit_ratio_to_baseline, "x"),
        opt(r.scene_baseline_median_ms, " ms"),
        opt(r.ratio_to_scene_baseline, "x"),
        opt(r.scene_baseline_fit_median_ms, " ms"),
        opt(r.fit_ratio_to_scene_baseline, "x"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_scene_is_deterministic_and_sane() {
        let a = SyntheticScene::new(500, 1000, 7);
        let b = SyntheticScene::new(500, 1000, 7);
        assert_eq!(a.list().nodes, b.list().nodes);
        assert_eq!(a.list().edges, b.list().edges);
        assert_eq!(a.list().nodes.len(), 500);
        assert_eq!(a.list().edges.len(), 1000);
        // Edges join nearby nodes: no edge longer than a few grid cells.
        assert!(
            a.list()
                .edges
                .iter()
                .all(|e| (e.to - e.from).length() < 60.0)
        );
        assert_ne!(
            SyntheticScene::new(500, 1000, 8).list().nodes,
            a.list().nodes
        );
        assert!(SyntheticScene::new(0, 10, 1).list().edges.is_empty());
    }

    #[test]
    fn camera_path_fits_zooms_and_returns() {
        let bounds = Rect::new(DVec2::ZERO, DVec2::new(1000.0, 500.0));
        let vp = DVec2::new(1280.0, 720.0);
        let first = camera_path(bounds, vp, 0, 100);
        let deepest = camera_path(bounds, vp, 25, 100);
        let last = camera_path(bounds, vp, 99, 100);
        assert!((deepest.zoom / first.zoom - 1000.0).abs() < 1e-6);
        assert!((last.zoom - first.zoom).abs() < 1e-9);
        assert!(first.visible_world().contains(bounds.center()));
    }

    #[test]
    fn bench_runs_on_a_small_scene() {
        let Some(ctx) = RenderContext::for_tests() else {
            return;
        };
        let args = RenderBenchArgs {
            nodes: 300,
            edges: Some(600),
            frames: 8,
            size: "96x64".into(),
            rounds: 2,
            ..Default::default()
        };
        let mut scene = SyntheticScene::new(300, 600, 3);
        let r = run_with(&ctx, &args, &mut scene).unwrap();
        assert_eq!((r.nodes, r.edges, r.frames, r.width), (300, 600, 8, 96));
        assert_eq!(r.rounds, 2);
        assert!(r.median_ms > 0.0 && r.p95_ms >= r.median_ms && r.p99_ms >= r.p95_ms);
        assert!(r.ratio_to_baseline.is_some_and(f64::is_finite));
        assert!(r.ratio_to_scene_baseline.is_some_and(f64::is_finite));
        assert!(r.scene_baseline_fit_median_ms.is_some_and(|ms| ms > 0.0));
        // Node (24 B) and edge (24 B) instances at least.
        assert!(r.gpu_bytes >= 300 * 24 + 600 * 24, "{}", r.gpu_bytes);
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "adapter",
            "backend",
            "nodes",
            "edges",
            "frames",
            "median_ms",
            "p95_ms",
        ] {
            assert!(json.get(key).is_some(), "JSON lacks {key}");
        }
        assert!(report(&r).contains("median"));
    }

    #[test]
    fn parses_sizes_and_quantiles() {
        assert_eq!(parse_size("1280x720").unwrap(), (1280, 720));
        assert!(
            parse_size("0x5").is_err()
                && parse_size("abc").is_err()
                && parse_size("99999x1").is_err()
        );
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.95), 95.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
    }
}
