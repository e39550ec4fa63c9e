//! The neuron view: a chain of dense layers drawn one circle per neuron and one edge per weight,
//! through the same [`DrawList`] and instanced pipelines as the structure view.
//!
//! How it works: [`NeuronScene::new`] picks a chain ([`crate::stats::neurons::find_dense_chains`]), lays
//! its neurons out in columns and streams every weight matrix once to keep only the top-k edges by
//! |w| into and out of every neuron ([`crate::stats::neurons::neuron_graph`] with `max_edges = 0`, so a
//! 4096 × 11008 MLP never has its 45 M edges built). Each [`NeuronScene::draw_list`] is an LOD
//! decision: while neurons are closer than `full_min_spacing_px` on screen, or the full fan of the
//! neurons in view would exceed `full_budget`, it draws the top-k set; once zoomed in, it reads the
//! full edges of the neurons whose rows fall in the view from the mapped tensor
//! ([`crate::stats::neurons::fan_edges`]: whole stored rows on one side, a block-aligned run of columns on
//! the other). Edges are red for positive and blue for negative weights, opacity and width growing
//! with |w| relative to that layer's largest |w|, strongest drawn last. The list covers the view
//! plus half a view on every side and is kept (same `revision`, no re-upload) while the camera stays
//! inside it and the zoom within 10%.
//!
//! Rejected: building every edge and letting the LOD cut thin them (45 M edges do not fit a frame's
//! budget, nor memory at 12 bytes each); random sampling at low zoom (hides the strong links people
//! look for); curved edges (with hundreds of edges per neuron straight segments read better).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use glam::{DVec2, Vec2};

use crate::lod::{Align, DrawList, EdgeItem, LabelItem, NodeItem, NodeShape, Rgba8};
use crate::model::Model;
use crate::render::{self, RenderContext, RenderError};
use crate::stats::StatsError;
use crate::stats::neurons::{
    DenseChain, NeuronEdge, NeuronGraph, NeuronOptions, fan_count, fan_edges, find_dense_chains,
    neuron_graph,
};
use crate::view::{Camera, Rect};

/// Colour of edges with positive weights (ColorBrewer RdBu red).
pub const POSITIVE: [u8; 3] = [214, 39, 40];
/// Colour of edges with negative weights (ColorBrewer RdBu blue).
pub const NEGATIVE: [u8; 3] = [31, 90, 190];
/// Neuron fill.
const NEURON_FILL: Rgba8 = [60, 62, 72, 255];
/// Margin around the chain when fitting, in pixels (room for the column labels).
const FIT_MARGIN_PX: f64 = 56.0;

/// Options of the neuron view.
#[derive(Clone, Copy, Debug)]
pub struct NeuronViewOptions {
    /// Strongest edges kept per neuron, in and out, for the overview.
    pub top_k: usize,
    /// Most edges drawn in the zoomed-in (full) mode; above it the top-k set is drawn.
    pub full_budget: u64,
    /// Most top-k edges drawn at once: over it the weakest (relative to their layer) are left out.
    pub overview_budget: usize,
    /// Neurons must be at least this many pixels apart before every edge is drawn.
    pub full_min_spacing_px: f64,
    /// World distance between neurons in a column.
    pub neuron_spacing: f32,
}

impl Default for NeuronViewOptions {
    fn default() -> Self {
        NeuronViewOptions {
            top_k: 8,
            full_budget: 300_000,
            overview_budget: 100_000,
            full_min_spacing_px: 10.0,
            neuron_spacing: 4.0,
        }
    }
}

/// Which edges the last draw list holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EdgeMode {
    /// The top-k edges by |w| into and out of every neuron (overview).
    #[default]
    TopK,
    /// Every weight of the neurons in view (zoomed in).
    Full,
}

/// What the last [`NeuronScene::draw_list`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Which edges are drawn.
    pub mode: EdgeMode,
    /// Neuron items in the list.
    pub nodes: usize,
    /// Edge items in the list.
    pub edges: usize,
    /// Whether the list was rebuilt by the last call (otherwise it was reused as is).
    pub rebuilt: bool,
}

/// Errors of the neuron view.
#[derive(Debug, thiserror::Error)]
pub enum NeuronViewError {
    /// The model has no chain of dense layers.
    #[error(
        "{model}: no chain of dense layers to draw as neurons (needs two or more Linear/Gemm/MatMul \
         layers with constant 2-D weights whose sizes connect, e.g. an MLP's up_proj/down_proj)"
    )]
    NoChain {
        /// The model file.
        model: String,
    },
    /// `--chain` named no chain of the model.
    #[error(
        "{model}: no dense chain {name:?}; pick one by name or index (0..{count}): {available}"
    )]
    UnknownChain {
        /// The model file.
        model: String,
        /// What was asked for.
        name: String,
        /// Number of chains.
        count: usize,
        /// The first chain names, comma-separated.
        available: String,
    },
    /// Reading the chain's weights failed.
    #[error("{model}: {source}")]
    Stats {
        /// The model file.
        model: String,
        /// What went wrong (boxed: `StatsError` is large and this path is rare).
        source: Box<StatsError>,
    },
    /// Rendering failed.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// The dense chains of a model and the one `name` picks: a chain's name, or its index in
/// [`find_dense_chains`] order; `None` picks the chain with the most weights (the first of equals).
pub fn pick_chain(model: &Model, name: Option<&str>) -> Result<DenseChain, NeuronViewError> {
    let file = || model.source.display().to_string();
    let mut chains = find_dense_chains(model);
    if chains.is_empty() {
        return Err(NeuronViewError::NoChain { model: file() });
    }
    let index = match name {
        None => {
            let mut best = 0;
            for (i, c) in chains.iter().enumerate() {
                if chains.get(best).is_some_and(|b| c.weights() > b.weights()) {
                    best = i;
                }
            }
            Some(best)
        }
        Some(n) => chains
            .iter()
            .position(|c| c.name == n)
            .or_else(|| n.parse::<usize>().ok().filter(|&i| i < chains.len())),
    };
    match index {
        Some(i) if i < chains.len() => Ok(chains.swap_remove(i)),
        _ => {
            let mut available: Vec<String> = chains
                .iter()
                .take(12)
                .enumerate()
                .map(|(i, c)| format!("{i}: {}", describe(c)))
                .collect();
            if chains.len() > 12 {
                available.push(format!("… {} more", chains.len() - 12));
            }
            Err(NeuronViewError::UnknownChain {
                model: file(),
                name: name.unwrap_or_default().to_string(),
                count: chains.len(),
                available: available.join(", "),
            })
        }
    }
}

/// `name (64 -> 172 -> 64)` (ASCII: the label font has no arrow glyph).
pub fn describe(chain: &DenseChain) -> String {
    let sizes: Vec<String> = chain.sizes().iter().map(u64::to_string).collect();
    format!("{} ({})", chain.name, sizes.join(" -> "))
}

/// Colour of an edge of weight `w` in a layer whose largest |w| is `layer_max`: red for positive,
/// blue for negative, alpha from 0.1 (tiny) to 1 (the layer's largest). The draw list fades this
/// alpha further when many edges overlap.
pub fn edge_color(w: f32, layer_max: f32) -> Rgba8 {
    let [r, g, b] = if w < 0.0 { NEGATIVE } else { POSITIVE };
    let t = strength(w, layer_max);
    [r, g, b, (25.0 + 230.0 * t).round() as u8]
}

/// The largest |w| of the layer an edge belongs to (its source's column).
fn layer_max(g: &NeuronGraph, e: &NeuronEdge) -> f32 {
    let layer = g.layer_offsets.partition_point(|&o| o <= e.from).max(1) - 1;
    g.layer_abs_max.get(layer).copied().unwrap_or(0.0)
}

/// |w| relative to the layer's largest, in 0..=1 (0 for NaN or an all-zero layer).
fn strength(w: f32, layer_max: f32) -> f32 {
    let t = w.abs() / layer_max;
    if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

struct Built {
    zoom: f64,
    covered: Rect,
}

/// A chain of dense layers ready to draw as neurons; see the module note.
pub struct NeuronScene {
    model: Arc<Model>,
    chain: DenseChain,
    graph: NeuronGraph,
    // The top-k edges, strongest (relative to their layer) first.
    overview: Vec<NeuronEdge>,
    opts: NeuronViewOptions,
    column_labels: Vec<String>,
    bounds: Rect,
    list: DrawList,
    built: Option<Built>,
    /// What the last [`NeuronScene::draw_list`] drew.
    pub stats: FrameStats,
}

impl NeuronScene {
    /// The neuron view of the chain `chain` names (see [`pick_chain`]) with default options.
    pub fn new(model: Arc<Model>, chain: Option<&str>) -> Result<Self, NeuronViewError> {
        Self::with_options(model, chain, NeuronViewOptions::default())
    }

    /// The neuron view of a chain with the given options: streams the chain's weights once for the
    /// top-k edges (parallel, memory proportional to neurons × k).
    pub fn with_options(
        model: Arc<Model>,
        chain: Option<&str>,
        opts: NeuronViewOptions,
    ) -> Result<Self, NeuronViewError> {
        let chain = pick_chain(&model, chain)?;
        let tallest = chain.sizes().into_iter().max().unwrap_or(1) as f32;
        // Columns about 0.6 column heights apart: a chain of three reads as a landscape picture.
        let layer_spacing = (tallest * opts.neuron_spacing * 0.6).max(200.0);
        let graph = neuron_graph(
            &model,
            &chain,
            &NeuronOptions {
                top_k: opts.top_k,
                max_edges: 0,
                layer_spacing,
                neuron_spacing: opts.neuron_spacing,
            },
        )
        .map_err(|source| NeuronViewError::Stats {
            model: model.source.display().to_string(),
            source: Box::new(source),
        })?;
        let mut column_labels = vec![format!(
            "input ({})",
            chain.layers.first().map_or(0, |l| l.in_features)
        )];
        for l in &chain.layers {
            let name = model
                .tensors
                .get(l.tensor as usize)
                .map_or("?", |t| t.name.as_str());
            let short = name
                .strip_prefix(chain.name.as_str())
                .unwrap_or(name)
                .trim_start_matches(['.', '/', '_'])
                .trim_end_matches(".weight");
            let short = if short.is_empty() { name } else { short };
            column_labels.push(format!("{short} ({})", l.out_features));
        }
        let mut bounds = Rect::EMPTY;
        for p in &graph.positions {
            bounds.include(DVec2::new(f64::from(p[0]), f64::from(p[1])));
        }
        let mut overview = graph.top_edges.clone();
        overview.sort_by(|a, b| {
            strength(b.weight, layer_max(&graph, b))
                .total_cmp(&strength(a.weight, layer_max(&graph, a)))
        });
        Ok(NeuronScene {
            model,
            chain,
            graph,
            overview,
            opts,
            column_labels,
            bounds,
            list: DrawList::new(DVec2::ZERO),
            built: None,
            stats: FrameStats::default(),
        })
    }

    /// The chain drawn.
    pub fn chain(&self) -> &DenseChain {
        &self.chain
    }

    /// The neuron graph (positions, top-k edges, per-layer |w| maxima).
    pub fn graph(&self) -> &NeuronGraph {
        &self.graph
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// Labels of the columns: `input (64)`, then each layer's short name and width.
    pub fn column_labels(&self) -> &[String] {
        &self.column_labels
    }

    /// The neuron within `radius` world units of a world point (for hover and picking): its column
    /// and its index in the graph ([`NeuronGraph::positions`]).
    pub fn neuron_at(&self, world: DVec2, radius: f64) -> Option<(usize, u32)> {
        let sp = f64::from(self.opts.neuron_spacing);
        for c in 0..self.graph.layer_sizes.len() {
            let x = self.column_x(c)?;
            if (world.x - x).abs() > radius {
                continue;
            }
            let n = f64::from(*self.graph.layer_sizes.get(c)?);
            let j = (world.y / sp + (n - 1.0) / 2.0).round();
            if !(0.0..n).contains(&j) {
                continue;
            }
            let id = self.graph.layer_offsets.get(c)? + j as u32;
            let p = self.graph.positions.get(id as usize)?;
            let d = world - DVec2::new(f64::from(p[0]), f64::from(p[1]));
            if d.length() <= radius {
                return Some((c, id));
            }
        }
        None
    }

    /// World box of all neuron centres.
    pub fn bounds(&self) -> Rect {
        self.bounds
    }

    /// A camera showing the whole chain, with room for the column labels (centred on the outer
    /// columns, so the side margins are half the longer of their labels, estimated in pixels).
    pub fn fit_camera(&self, viewport: DVec2) -> Camera {
        let mut cam = Camera::new(viewport);
        // Padding of one neuron spacing so the outer circles are not cut.
        let b = self.bounds.expand(f64::from(self.opts.neuron_spacing));
        let label_px = |c: Option<&String>| c.map_or(0.0, |t| t.chars().count() as f64 * 4.5);
        let side = FIT_MARGIN_PX
            .max(label_px(self.column_labels.first()) + 8.0)
            .max(label_px(self.column_labels.last()) + 8.0);
        let avail = (viewport - DVec2::new(2.0 * side, 2.0 * FIT_MARGIN_PX)).max(DVec2::ONE);
        let size = b.size().max(DVec2::splat(1e-9));
        cam.zoom = (avail.x / size.x)
            .min(avail.y / size.y)
            .clamp(Camera::MIN_ZOOM, Camera::MAX_ZOOM);
        cam.center = b.center();
        cam
    }

    /// The list to draw for `camera` (its viewport included): reused unchanged, `revision` and all,
    /// while the camera stays inside the region it was built for and the zoom within 10%.
    pub fn draw_list(&mut self, camera: &Camera) -> &DrawList {
        let visible = camera.visible_world();
        if let Some(b) = &self.built {
            let ratio = camera.zoom / b.zoom;
            if (1.0 / 1.1..=1.1).contains(&ratio)
                && b.covered.contains(visible.min)
                && b.covered.contains(visible.max)
            {
                self.stats.rebuilt = false;
                return &self.list;
            }
        }
        let covered = visible.expand(visible.size().max_element() * 0.5);
        self.rebuild(camera.zoom, covered);
        self.built = Some(Built {
            zoom: camera.zoom,
            covered,
        });
        &self.list
    }

    /// Column `c`'s x and the index range of its neurons whose y lies in `y0..=y1`.
    fn column_band(&self, c: usize, y0: f64, y1: f64) -> Range<u32> {
        let n = self.graph.layer_sizes.get(c).copied().unwrap_or(0);
        let sp = f64::from(self.opts.neuron_spacing);
        let mid = (f64::from(n) - 1.0) / 2.0;
        let lo = (y0 / sp + mid).ceil().clamp(0.0, f64::from(n)) as u32;
        let hi = ((y1 / sp + mid).floor() + 1.0).clamp(0.0, f64::from(n)) as u32;
        lo..hi.max(lo)
    }

    fn column_x(&self, c: usize) -> Option<f64> {
        let off = *self.graph.layer_offsets.get(c)?;
        self.graph
            .positions
            .get(off as usize)
            .map(|p| f64::from(p[0]))
    }

    /// The full edges of the neurons in `covered`, when zoomed in enough and under budget.
    fn full_edges(&self, zoom: f64, covered: &Rect) -> Option<Vec<NeuronEdge>> {
        if f64::from(self.opts.neuron_spacing) * zoom < self.opts.full_min_spacing_px {
            return None;
        }
        let (y0, y1) = (covered.min.y, covered.max.y);
        let mut bands = Vec::new();
        let mut total = 0u64;
        for l in 0..self.chain.layers.len() {
            let (Some(x0), Some(x1)) = (self.column_x(l), self.column_x(l + 1)) else {
                continue;
            };
            if x1 < covered.min.x || x0 > covered.max.x {
                continue;
            }
            let (src, dst) = (self.column_band(l, y0, y1), self.column_band(l + 1, y0, y1));
            total = total.saturating_add(fan_count(&self.chain, l, &src, &dst));
            bands.push((l, src, dst));
        }
        if total > self.opts.full_budget {
            return None;
        }
        let mut out = Vec::new();
        for (l, src, dst) in bands {
            match fan_edges(
                &self.model,
                &self.chain,
                &self.graph,
                l,
                src,
                dst,
                self.opts.full_budget,
            ) {
                Ok(e) => out.extend(e),
                Err(e) => {
                    log::warn!("{}: {e}", self.model.source.display());
                    return None;
                }
            }
        }
        Some(out)
    }

    fn rebuild(&mut self, zoom: f64, covered: Rect) {
        let full = self.full_edges(zoom, &covered);
        let mode = if full.is_some() {
            EdgeMode::Full
        } else {
            EdgeMode::TopK
        };
        let mut list = DrawList::new(covered.center());
        list.revision = crate::lod::next_revision();
        let g = &self.graph;
        let pos = |i: u32| {
            g.positions
                .get(i as usize)
                .map(|p| DVec2::new(f64::from(p[0]), f64::from(p[1])))
        };
        // Edges, weakest first so the strong ones are drawn on top.
        let item = |e: &NeuronEdge| {
            let (a, b) = (pos(e.from)?, pos(e.to)?);
            if !covered.intersects(&Rect::new(a.min(b), a.max(b))) {
                return None;
            }
            let max = layer_max(g, e);
            let t = strength(e.weight, max);
            Some((
                t,
                EdgeItem {
                    from: list.rel(a),
                    to: list.rel(b),
                    color: edge_color(e.weight, max),
                    width_px: 0.75 + 1.25 * t,
                    flags: 0,
                    arrow_world: 0.0,
                },
            ))
        };
        let items: Vec<(f32, EdgeItem)> = match &full {
            Some(edges) => {
                let mut items: Vec<_> = edges.iter().filter_map(item).collect();
                items.sort_by(|x, y| x.0.total_cmp(&y.0));
                items
            }
            None => {
                // Strongest first up to the budget, then reversed: no sort per rebuild.
                let mut items: Vec<_> = self
                    .overview
                    .iter()
                    .filter_map(item)
                    .take(self.opts.overview_budget)
                    .collect();
                items.reverse();
                items
            }
        };
        // Tens of thousands of overlapping edges saturate to a solid block: fade them so the
        // strong ones still stand out.
        let fade = (20_000.0 / items.len().max(1) as f32)
            .sqrt()
            .clamp(0.3, 1.0);
        list.edges = items
            .into_iter()
            .map(|(_, mut e)| {
                e.color[3] = (f32::from(e.color[3]) * fade).round().max(1.0) as u8;
                e
            })
            .collect();
        // Neurons: at least 1.5 px in radius so a far-zoomed column reads as a bar.
        let radius = (f64::from(self.opts.neuron_spacing) * 0.35).max(1.5 / zoom) as f32;
        for c in 0..g.layer_sizes.len() {
            let (Some(x), Some(&off)) = (self.column_x(c), g.layer_offsets.get(c)) else {
                continue;
            };
            if x + f64::from(radius) < covered.min.x || x - f64::from(radius) > covered.max.x {
                continue;
            }
            for j in self.column_band(c, covered.min.y, covered.max.y) {
                let Some(p) = pos(off + j) else { continue };
                list.nodes.push(NodeItem {
                    center: list.rel(p),
                    half_size: Vec2::splat(radius),
                    fill: NEURON_FILL,
                    shape: NodeShape::Circle,
                    flags: 0,
                    alpha: 1.0,
                });
            }
            // The column's label above its first neuron.
            if let (Some(text), Some(top)) = (self.column_labels.get(c), pos(off)) {
                list.labels.push(LabelItem {
                    pos: list.rel(DVec2::new(x, top.y - 18.0 / zoom)),
                    text: text.clone(),
                    size_px: 14.0,
                    color: [30, 30, 40, 255],
                    align: Align::Center,
                });
            }
        }
        let title_x = (self.bounds.min.x + self.bounds.max.x) / 2.0;
        list.labels.push(LabelItem {
            pos: list.rel(DVec2::new(title_x, self.bounds.min.y - 40.0 / zoom)),
            text: describe(&self.chain),
            size_px: 16.0,
            color: [10, 10, 20, 255],
            align: Align::Center,
        });
        self.stats = FrameStats {
            mode,
            nodes: list.nodes.len(),
            edges: list.edges.len(),
            rebuilt: true,
        };
        self.list = list;
    }
}

/// `modelmap render --view neurons`: the neuron view of a chain, fit to a `width`×`height` picture.
pub fn render_neurons_png(
    model: Arc<Model>,
    chain: Option<&str>,
    width: u32,
    height: u32,
    out: &Path,
) -> Result<String, NeuronViewError> {
    let t0 = std::time::Instant::now();
    let mut scene = NeuronScene::new(model, chain)?;
    let t_build = t0.elapsed();
    let camera = scene.fit_camera(DVec2::new(f64::from(width), f64::from(height)));
    let ctx = RenderContext::headless()?;
    let list = scene.draw_list(&camera);
    let img = render::render_to_rgba(&ctx, list, &camera, width, height)?;
    render::save_png(&img, out)?;
    let (adapter, backend) = ctx.adapter_name_and_backend();
    Ok(format!(
        "wrote {} ({width}×{height}, chain {}, {} neurons, {} of {} weights drawn as edges ({:?}, top {} per neuron), built in {:.0} ms, on {adapter} ({backend}))",
        out.display(),
        describe(scene.chain()),
        scene.graph().positions.len(),
        scene.stats.edges,
        scene.chain().weights(),
        scene.stats.mode,
        scene.opts.top_k,
        t_build.as_secs_f64() * 1e3,
    ))
}
