//! A model ready to draw: its layout and LOD state, plus the helpers the window, headless rendering
//! and the benchmarks share (fit and focus cameras, render to PNG).

use std::path::Path;
use std::sync::Arc;

use glam::DVec2;

use crate::layout::{self, DataflowOptions, ForceOptions, Layout, LayoutError, Progress};
use crate::lod::{DrawList, LodOptions, LodState, ViewState};
use crate::model::{Model, NodeKind};
use crate::render::{self, RenderContext, RenderError, RgbaImage};
use crate::view::{Camera, Rect};

pub mod weights;

pub use weights::{InPlaceWeights, Placement, WeightHit, WeightOptions};

/// Which layout to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutChoice {
    /// Dataflow for model graphs; force-directed for graphs too large to read as layers.
    #[default]
    Auto,
    /// Layered, top to bottom.
    Dataflow,
    /// Multilevel force-directed.
    Force,
}

/// Nodes above which `Auto` picks the force layout for graphs without a module hierarchy.
pub const AUTO_FORCE_NODES: usize = 200_000;

/// Errors building or drawing a scene.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// Layout failed or was cancelled.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Statistics or tiles of a tensor could not be computed.
    #[error("{0}")]
    Stats(String),
    /// `--focus` named nothing in the model.
    #[error("{model}: nothing named {name:?} (no group path, node or tensor of that name){hint}")]
    NotFound {
        /// The model file.
        model: String,
        /// What was asked for.
        name: String,
        /// Names that come close, as "; did you mean …?" (empty when none does).
        hint: String,
    },
    /// `--kernels` named a tensor that is not a 4-D conv weight.
    #[error(
        "{tensor} has shape {shape:?}: a grid of kernels needs a conv weight [out, in, kh, kw] with kernels larger than 1×1"
    )]
    NotKernels {
        /// The tensor.
        tensor: String,
        /// Its shape.
        shape: Vec<u64>,
    },
}

/// A laid-out model.
pub struct Scene {
    /// The model.
    pub model: Arc<Model>,
    /// Its layout.
    pub layout: Arc<Layout>,
    /// The LOD cut's state.
    pub lod: LodState,
    /// Weight heatmaps drawn inside nodes zoomed large enough (blocking: headless pictures build
    /// every tile they show; the window swaps in a background one).
    pub weights: InPlaceWeights,
}

impl Scene {
    /// Lays out a model.
    pub fn build(
        model: Arc<Model>,
        choice: LayoutChoice,
        progress: &Progress,
    ) -> Result<Scene, SceneError> {
        let has_groups = model.hierarchy.groups.len() > 1;
        let force = match choice {
            LayoutChoice::Force => true,
            LayoutChoice::Dataflow => false,
            LayoutChoice::Auto => !has_groups && model.graph.nodes.len() > AUTO_FORCE_NODES,
        };
        let layout = if force {
            layout::force(&model.graph, &ForceOptions::default(), progress)?
        } else {
            let opts = DataflowOptions {
                node_params: crate::graph::node_param_counts(&model),
                ..DataflowOptions::default()
            };
            layout::dataflow(&model.graph, &model.hierarchy, &opts, progress)?
        };
        Ok(Scene::from_parts(model, Arc::new(layout)))
    }

    /// A scene from a layout computed elsewhere.
    pub fn from_parts(model: Arc<Model>, layout: Arc<Layout>) -> Scene {
        crate::diag::trace_memory("layout done");
        let mut lod = LodState::new(&layout, LodOptions::default());
        crate::diag::trace_memory("lod state");
        // Here, in the layout job, not on the first frame that cuts.
        lod.prepare_tables(&model, &layout);
        crate::diag::trace_memory("lod tables");
        Scene {
            model,
            layout,
            lod,
            weights: InPlaceWeights::new(true),
        }
    }

    /// A camera showing the whole model in a viewport.
    pub fn fit_camera(&self, viewport: DVec2) -> Camera {
        let mut cam = Camera::new(viewport);
        cam.fit(self.layout.bounds, 16.0);
        cam
    }

    /// The world box of a group path (`model/layers.3`, `model.layers.3`), node name or tensor name.
    pub fn find_box(&self, name: &str) -> Option<Rect> {
        let h = &self.model.hierarchy;
        let alt = name.replace('.', "/");
        let group = h
            .find(name)
            .or_else(|| h.find(&alt))
            .or_else(|| h.find(&name.replace('/', ".")))
            .or_else(|| {
                // Separators mixed (`model.layers.0` for the group `model/layers.0` that an
                // ONNX export's node names give): compare with every separator a slash.
                h.groups
                    .iter()
                    .position(|g| g.path.replace('.', "/") == alt)
                    .map(|i| i as crate::model::GroupId)
            });
        if let Some(g) = group.filter(|&g| g != 0) {
            if let Some(r) = self.layout.groups.get(g as usize).filter(|r| !r.is_empty()) {
                return Some(*r);
            }
            // Checkpoint groups: the union of their nodes' boxes, walking only the group's subtree.
            let mut r = Rect::EMPTY;
            let mut stack = vec![g];
            while let Some(g) = stack.pop() {
                let Some(group) = h.get(g) else { continue };
                for &n in &group.nodes {
                    if let Some(b) = self.layout.nodes.get(n as usize) {
                        r = r.union(&b.rect());
                    }
                }
                stack.extend(group.children.iter().copied());
            }
            if !r.is_empty() {
                return Some(r);
            }
        }
        let node = self
            .model
            .graph
            .nodes
            .iter()
            .position(|n| n.name == name)
            .or_else(|| {
                let t = *self.model.tensor_index.get(name)?;
                self.model
                    .graph
                    .nodes
                    .iter()
                    .position(|n| n.tensors.contains(&t))
            })?;
        self.layout.nodes.get(node).map(|b| b.rect())
    }

    /// A camera fitted to [`Scene::find_box`].
    ///
    /// `TENSOR[ROW,COL]` flies to one value of a tensor's in-place heatmap, with a few cells around
    /// it, close enough that the values are written in the cells.
    pub fn focus_camera(&self, name: &str, viewport: DVec2) -> Result<Camera, SceneError> {
        if let Some((tensor, row, col)) = parse_cell(name) {
            return self.cell_camera(tensor, row, col, viewport);
        }
        let r = self.find_box(name).ok_or_else(|| SceneError::NotFound {
            model: self.model.source.display().to_string(),
            name: name.to_string(),
            hint: self.model.near_names(name),
        })?;
        let mut cam = Camera::new(viewport);
        cam.fit(r.expand(r.size().max_element() * 0.05), 16.0);
        Ok(cam)
    }

    fn cell_camera(
        &self,
        tensor: &str,
        row: u64,
        col: u64,
        viewport: DVec2,
    ) -> Result<Camera, SceneError> {
        let not_found = || SceneError::NotFound {
            model: self.model.source.display().to_string(),
            name: format!("{tensor}[{row},{col}]"),
            hint: self.model.near_names(tensor),
        };
        let t = self.model.tensor(tensor).ok_or_else(not_found)?;
        let view = crate::stats::heatmap::HeatmapView::for_display(t);
        if row >= view.rows || col >= view.cols {
            return Err(SceneError::NotFound {
                model: self.model.source.display().to_string(),
                hint: String::new(),
                name: format!(
                    "{tensor}[{row},{col}] (its matrix view is {}×{})",
                    view.rows, view.cols
                ),
            });
        }
        let node_rect = self.find_box(tensor).ok_or_else(not_found)?;
        // The cell's place depends on the zoom (the title strip is in pixels): settle it in a few
        // rounds, fitting about 9 cells across.
        let mut cam = Camera::new(viewport);
        cam.fit(node_rect, 16.0);
        for _ in 0..4 {
            let cell = self.weights.cell_rect(t, node_rect, cam.zoom, row, col);
            let around = Rect::from_center_size(cell.center(), cell.size() * 9.0);
            cam.fit(around, 0.0);
        }
        Ok(cam)
    }

    /// Renders the current cut for `camera` off-screen.
    pub fn render(
        &mut self,
        ctx: &RenderContext,
        camera: &Camera,
        view: &ViewState,
    ) -> Result<RgbaImage, SceneError> {
        let list = self.decorated_cut(camera, view, 1e9);
        let w = camera.viewport.x.round().max(1.0) as u32;
        let h = camera.viewport.y.round().max(1.0) as u32;
        Ok(render::render_to_rgba(ctx, &list, camera, w, h)?)
    }

    /// The LOD cut for `camera` with the in-place weight heatmaps added.
    pub fn decorated_cut(&mut self, camera: &Camera, view: &ViewState, now_s: f64) -> DrawList {
        let mut list = self
            .lod
            .cut(&self.model, &self.layout, camera, view, now_s)
            .clone();
        if !self.weights.wants(&list, self.lod.items(), camera) {
            self.weights.clear();
            return list;
        }
        self.weights
            .decorate(&self.model, &mut list, self.lod.items(), camera);
        list
    }

    /// Number of op/module nodes (for messages).
    pub fn op_nodes(&self) -> usize {
        self.model
            .graph
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Op | NodeKind::Module))
            .count()
    }
}

/// Options of `modelmap render`.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Layout.
    pub layout: LayoutChoice,
    /// Fit to this group/node instead of the whole model.
    pub focus: Option<String>,
    /// Replace names by hashes.
    pub redact: bool,
    /// Per-node colour-by values (0..=1, NaN for none, and a file's own colours), as the window's
    /// overlay.
    pub overlay: Option<Arc<crate::lod::NodeOverlay>>,
}

/// `modelmap render`: lays out a model and writes one picture.
pub fn render_model_png(
    model: Arc<Model>,
    opts: &RenderOptions,
    out: &Path,
) -> Result<String, SceneError> {
    let t0 = std::time::Instant::now();
    let mut scene = Scene::build(model, opts.layout, &Progress::new())?;
    let t_layout = t0.elapsed();
    let viewport = DVec2::new(opts.width as f64, opts.height as f64);
    let cam = match &opts.focus {
        Some(name) => scene.focus_camera(name, viewport)?,
        None => scene.fit_camera(viewport),
    };
    let ctx = RenderContext::headless()?;
    let view = ViewState {
        redact: opts.redact,
        overlay: opts.overlay.clone(),
        ..ViewState::default()
    };
    if opts.overlay.is_some() {
        // As the window does: the overlay paints node boxes, and weights take them over only once
        // they are three times the usual size.
        scene.weights.options.min_px *= 3.0;
    }
    let img = scene.render(&ctx, &cam, &view)?;
    render::save_png(&img, out)?;
    let (adapter, backend) = ctx.adapter_name_and_backend();
    Ok(format!(
        "wrote {} ({}×{}, {} nodes, layout {:.0} ms, drawn {} items / {} edges on {adapter} ({backend}))",
        out.display(),
        opts.width,
        opts.height,
        scene.op_nodes(),
        t_layout.as_secs_f64() * 1e3,
        scene.lod.stats.nodes_drawn + scene.lod.stats.clusters_drawn,
        scene.lod.stats.edges_drawn,
    ))
}

/// Heatmap tiles of a tensor laid over a world rectangle, at the pyramid level the camera needs:
/// a texel never covers less than about one pixel, and only tiles inside the view are built.
///
/// The tensor's `cols × rows` matrix view is stretched over `target`; each returned item is one
/// 256×256 tile (or smaller at the edges) from `cache`, keyed so the renderer uploads it once.
#[allow(clippy::too_many_arguments)]
pub fn heatmap_items(
    tensor: &crate::model::Tensor,
    view: crate::stats::heatmap::HeatmapView,
    cache: &crate::stats::heatmap::TileCache,
    target: Rect,
    camera: &Camera,
    origin: DVec2,
    range: (f32, f32),
    colormap: crate::lod::ColorMap,
) -> Result<Vec<crate::lod::HeatmapItem>, crate::stats::StatsError> {
    use crate::stats::heatmap::Agg;
    if view.rows == 0 || view.cols == 0 || target.is_empty() {
        return Ok(Vec::new());
    }
    let tiles = weights::visible_tiles(&view, target, camera);
    let mut out = Vec::new();
    for (tx, ty) in tiles.iter() {
        let tile = cache.get_or_build(tensor, &view, tiles.level, tx, ty, Agg::Mean)?;
        let key = weights::tile_key(tensor, view, tiles.level, tx, ty).hash64();
        out.push(weights::tile_item(
            key, &tile, &view, target, origin, range, colormap,
        ));
    }
    Ok(out)
}

/// The world rectangle of a heatmap view: one world unit per value.
pub fn view_rect(v: &crate::stats::heatmap::HeatmapView) -> Rect {
    Rect::new(DVec2::ZERO, DVec2::new(v.cols as f64, v.rows as f64))
}

/// The colour range of a tensor's heatmap drawn as `items` (of a tensor of `values` values),
/// given the tensor's own symmetric `range`. A tensor larger than the picture is drawn from
/// mean-aggregated tiles, whose values shrink with the block size (random weights average towards
/// zero): coloured by the tensor's range, the overview is a blank of near-white. As the window
/// does, an aggregated overview is coloured by the 99th percentile of |value| over what is drawn,
/// never wider than the tensor's range; a picture of every value keeps the tensor's range.
pub fn overview_range(
    items: &[crate::lod::HeatmapItem],
    values: u64,
    range: (f32, f32),
) -> (f32, f32) {
    let shown: u64 = items
        .iter()
        .map(|h| u64::from(h.width) * u64::from(h.height))
        .sum();
    if shown >= values {
        return range;
    }
    let drawn: Vec<f32> = items
        .iter()
        .flat_map(|h| h.values.iter().copied())
        .collect();
    match weights::percentile_abs(&drawn, 0.99).filter(|h| *h > 0.0) {
        Some(hi) => {
            let hi = hi.min(range.0.abs().max(range.1.abs()));
            (-hi, hi)
        }
        None => range,
    }
}

/// `modelmap render --tensor NAME`: one tensor's heatmap, fit to the picture, diverging colours
/// centred on zero with a symmetric 1% percentile clip.
pub fn render_tensor_png(
    model: &Model,
    name: &str,
    width: u32,
    height: u32,
    out: &Path,
    kernels: bool,
) -> Result<String, SceneError> {
    use crate::stats::heatmap::{Clip, HeatmapView, TileCache, color_range};
    let not_found = || SceneError::NotFound {
        model: model.source.display().to_string(),
        name: name.to_string(),
        hint: model.near_names(name),
    };
    let tensor = model.tensor(name).ok_or_else(not_found)?;
    let stats = crate::stats::tensor_stats(tensor).map_err(|e| SceneError::Stats(e.to_string()))?;
    let range = color_range(&stats, Clip::SymmetricPercentile(0.01));
    let view = if kernels {
        HeatmapView::kernel_grid(tensor).ok_or_else(|| SceneError::NotKernels {
            tensor: name.to_string(),
            shape: tensor.shape.clone(),
        })?
    } else {
        HeatmapView::for_tensor(tensor)
    };
    let rect = view_rect(&view);
    let mut camera = Camera::new(DVec2::new(width as f64, height as f64));
    camera.fit(rect, 8.0);
    let cache = TileCache::new(512 << 20);
    let mut list = crate::lod::DrawList::new(rect.center());
    list.heatmaps = heatmap_items(
        tensor,
        view,
        &cache,
        rect,
        &camera,
        list.origin,
        range,
        crate::lod::ColorMap::Diverging,
    )
    .map_err(|e| SceneError::Stats(e.to_string()))?;
    let range = overview_range(&list.heatmaps, view.rows.saturating_mul(view.cols), range);
    for h in &mut list.heatmaps {
        (h.lo, h.hi) = range;
    }
    list.edges = weights::kernel_separators(&view, rect, camera.zoom, list.origin);
    let ctx = RenderContext::headless()?;
    let img = render::render_to_rgba(&ctx, &list, &camera, width, height)?;
    render::save_png(&img, out)?;
    Ok(format!(
        "wrote {} ({} {:?}{}, {} tiles, colour range {:.3e}..{:.3e})",
        out.display(),
        tensor.dtype,
        tensor.shape,
        if view.kernel.is_some() {
            " as a grid of kernels"
        } else {
            ""
        },
        list.heatmaps.len(),
        range.0,
        range.1
    ))
}

/// A [`Scene`] as a benchmark scene source: every frame is the LOD cut for the camera.
pub struct LodSceneSource {
    /// The scene.
    pub scene: Scene,
    frame: u64,
    /// `MODELMAP_BENCH_TRACE`: log each cut's counters.
    trace: bool,
}

impl LodSceneSource {
    /// Wraps a scene; `no_lod` opens every cluster (the draw-everything baseline).
    pub fn new(mut scene: Scene, no_lod: bool) -> Self {
        scene.lod.options.no_lod = no_lod;
        scene.lod.options.fade_s = 0.0;
        LodSceneSource {
            scene,
            frame: 0,
            trace: std::env::var_os("MODELMAP_BENCH_TRACE").is_some(),
        }
    }

    /// A synthetic graph laid out as `bench render --lod` uses it: a random sparse graph (force
    /// layout) of `nodes` nodes and `edges` edges.
    pub fn synthetic(nodes: usize, edges: usize, seed: u64) -> Result<Self, SceneError> {
        let (graph, hierarchy) = crate::bench::synth::random(nodes, edges, seed);
        crate::diag::trace_memory("synthetic graph");
        let mut m = Model::new("synthetic", crate::model::Format::Onnx);
        m.graph = graph;
        m.hierarchy = hierarchy;
        let scene = Scene::build(Arc::new(m), LayoutChoice::Force, &Progress::new())?;
        Ok(LodSceneSource::new(scene, false))
    }
}

impl crate::bench::render::SceneSource for LodSceneSource {
    fn bounds(&self) -> Rect {
        self.scene.layout.bounds
    }

    fn draw_list(&mut self, camera: &Camera) -> &crate::lod::DrawList {
        self.frame += 1;
        let s = &mut self.scene;
        s.lod.cut(
            &s.model,
            &s.layout,
            camera,
            &ViewState::default(),
            self.frame as f64,
        );
        if self.trace {
            eprintln!("cut: {:?}", s.lod.stats);
        }
        s.lod.draw_list()
    }
}

/// `NAME[ROW,COL]` → (`NAME`, ROW, COL).
fn parse_cell(s: &str) -> Option<(&str, u64, u64)> {
    let body = s.strip_suffix(']')?;
    let (name, idx) = body.rsplit_once('[')?;
    let (r, c) = idx.split_once(',')?;
    Some((name, r.trim().parse().ok()?, c.trim().parse().ok()?))
}
