//! Weights in place: zoom into a node of the structure view and its weight tensor appears inside its
//! box as a heatmap, down to single values with their numbers written in the cells.
//!
//! How it works: [`InPlaceWeights::decorate`] runs after the LOD cut on a copy of its [`DrawList`].
//! Every op or module node whose box is at least [`WeightOptions::min_px`] on screen and that owns a
//! tensor gets its largest tensor's heatmap stretched over the box below a title strip (the node's
//! fill is made transparent, its outline and selection rings stay). The tiles are those of the
//! tensor's pyramid (`stats::heatmap`) at the level where a texel is about a pixel, only the visible
//! ones. In the window (`blocking = false`) a missing tile is built on rayon in the background and,
//! until it lands, the nearest coarser cached tile stands in, so no frame waits for the weights; the
//! waker redraws when a tile arrives. Headless pictures (`blocking = true`) build what they need.
//! Colours are diverging around zero with a symmetric range at the 99th percentile of |w| over a
//! strided sample of the tensor (a few thousand reads), the same at every zoom so colours do not
//! shift as tiles refine. When cells are large enough, their values are written in them.
//!
//! Rejected: drawing the tensor with its own aspect ratio inside the box (a 128 k × 4 k embedding
//! would be a sliver one pixel wide), and computing full statistics for the colour range (a pass over
//! a gigabyte-sized tensor before the first picture).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use glam::DVec2;

use crate::graph::Item;
use crate::lod::{Align, ColorMap, DrawList, HeatmapItem, LabelItem, flags};
use crate::model::{DType, Model, NodeId, NodeKind, TensorId};
use crate::stats::heatmap::{Agg, HeatmapView, TILE, Tile, TileCache, TileKey};
use crate::view::{Camera, Rect};

/// A 32/64-bit integer tensor smaller than this is a shape, axes or indices: not drawn in place.
const INDEX_LIKE_MAX: u64 = 4096;

/// Called from a worker thread when a tile has been built (the window requests a redraw).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Tunables of the in-place heatmaps.
#[derive(Clone, Debug)]
pub struct WeightOptions {
    /// A node's box must be at least this many pixels high (and 2× as wide) to show its weights;
    /// from three title strips high it gets a title strip, below that its own label stays on top.
    pub min_px: f64,
    /// Height of the title strip above the heatmap, pixels.
    pub title_px: f64,
    /// Cells at least this many pixels across get their value written in them.
    pub value_label_px: f64,
    /// At most this many value labels a frame.
    pub max_value_labels: usize,
    /// Colour map.
    pub colormap: ColorMap,
    /// Tile builds in flight at once (background mode).
    pub max_inflight: usize,
    /// Byte budget of the tile cache.
    pub cache_bytes: usize,
}

impl Default for WeightOptions {
    fn default() -> Self {
        WeightOptions {
            min_px: 24.0,
            title_px: 18.0,
            value_label_px: 46.0,
            max_value_labels: 800,
            colormap: ColorMap::Diverging,
            max_inflight: 8,
            cache_bytes: 256 << 20,
        }
    }
}

/// Where a tensor's heatmap was drawn in the last decorated frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// The node whose box holds it.
    pub node: NodeId,
    /// The tensor drawn.
    pub tensor: TensorId,
    /// The world rectangle the tensor's matrix view is stretched over.
    pub rect: Rect,
    /// The matrix view.
    pub view: HeatmapView,
}

/// One value under a world point.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightHit {
    /// The node.
    pub node: NodeId,
    /// The tensor.
    pub tensor: TensorId,
    /// Row of the matrix view.
    pub row: u64,
    /// Column of the matrix view.
    pub col: u64,
    /// The element's index in the tensor's own shape (`[o, i, y, x]` for a conv weight).
    pub index: Vec<u64>,
    /// The value (decoded from the file, exact).
    pub value: f64,
}

/// State of the in-place heatmaps across frames: tile cache, builds in flight, colour ranges.
pub struct InPlaceWeights {
    /// Options.
    pub options: WeightOptions,
    blocking: bool,
    cache: Arc<TileCache>,
    inflight: Arc<Mutex<HashSet<TileKey>>>,
    failed: Arc<Mutex<HashSet<TensorId>>>,
    ranges: HashMap<(TensorId, u32), (f32, f32)>,
    /// Level-0 ranges sampled in the background, and the tensors being sampled.
    sampled: Arc<Mutex<HashMap<TensorId, (f32, f32)>>>,
    sampling: Arc<Mutex<HashSet<TensorId>>>,
    /// Tensors made on first use whose bytes a hover asked for, being made on the tile threads.
    warming: Arc<Mutex<HashSet<usize>>>,
    main_tensor: HashMap<NodeId, Option<TensorId>>,
    placements: Vec<Placement>,
    waker: Option<Waker>,
    fallback_tiles: usize,
    pool: Mutex<Option<Arc<rayon::ThreadPool>>>,
}

impl std::fmt::Debug for InPlaceWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InPlaceWeights")
            .field("blocking", &self.blocking)
            .field("placements", &self.placements.len())
            .field("cached_tiles", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl InPlaceWeights {
    /// `blocking`: build missing tiles on the calling thread (headless pictures) rather than in the
    /// background (the window).
    pub fn new(blocking: bool) -> Self {
        let options = WeightOptions::default();
        InPlaceWeights {
            cache: Arc::new(TileCache::new(options.cache_bytes)),
            options,
            blocking,
            inflight: Arc::default(),
            failed: Arc::default(),
            ranges: HashMap::new(),
            sampled: Arc::default(),
            warming: Arc::default(),
            sampling: Arc::default(),
            main_tensor: HashMap::new(),
            placements: Vec::new(),
            waker: None,
            fallback_tiles: 0,
            pool: Mutex::new(None),
        }
    }

    /// Called when a background tile lands.
    pub fn set_waker(&mut self, waker: Waker) {
        self.waker = Some(waker);
    }

    /// Where heatmaps were drawn in the last decorated frame.
    pub fn placements(&self) -> &[Placement] {
        &self.placements
    }

    /// Tile builds, range samples and lazy tensors being made, still running.
    pub fn pending(&self) -> usize {
        self.inflight.lock().map_or(0, |g| g.len())
            + self.sampling.lock().map_or(0, |g| g.len())
            + self.warming.lock().map_or(0, |g| g.len())
    }

    /// Tiles of the last frame drawn from a coarser level while the exact one is built.
    pub fn fallback_tiles(&self) -> usize {
        self.fallback_tiles
    }

    /// Tiles held by the cache.
    pub fn cached_tiles(&self) -> usize {
        self.cache.len()
    }

    /// The tensor a node shows in place: its largest one with data that is not index-like (a
    /// `Reshape`'s target shape, a `ConstantOfShape`'s shape: a few 32/64-bit integers that are
    /// read as numbers, not looked at as a picture, and whose heatmap hid the op's name).
    pub fn main_tensor(&mut self, model: &Model, node: NodeId) -> Option<TensorId> {
        *self.main_tensor.entry(node).or_insert_with(|| {
            let n = model.graph.nodes.get(node as usize)?;
            if !matches!(n.kind, NodeKind::Op | NodeKind::Module) {
                return None;
            }
            n.tensors
                .iter()
                .copied()
                .filter_map(|t| Some((t, model.tensors.get(t as usize)?)))
                .filter(|(_, t)| t.has_data() && t.elements() >= 2)
                .filter(|(_, t)| {
                    let wide_int =
                        matches!(t.dtype, DType::I64 | DType::I32 | DType::U64 | DType::U32);
                    !(wide_int && t.elements() < INDEX_LIKE_MAX)
                })
                .filter(|(_, t)| {
                    let v = HeatmapView::for_display(t);
                    v.rows > 0 && v.cols > 0
                })
                .max_by_key(|(id, t)| (t.elements(), std::cmp::Reverse(*id)))
                .map(|(id, _)| id)
        })
    }

    /// Whether any node of `list` is large enough on screen to show its weights (cheap: no tiles).
    pub fn wants(&self, list: &DrawList, items: &[Item], camera: &Camera) -> bool {
        let min = DVec2::new(self.options.min_px * 2.0, self.options.min_px) / camera.zoom;
        list.nodes.iter().zip(items).any(|(n, item)| {
            matches!(item, Item::Node(_))
                && n.flags & flags::FRAME == 0
                && n.half_size.x as f64 * 2.0 >= min.x
                && n.half_size.y as f64 * 2.0 >= min.y
        })
    }

    /// Forgets the last frame's placements (nothing is drawn in place).
    pub fn clear(&mut self) {
        self.placements.clear();
        self.fallback_tiles = 0;
    }

    /// Adds the heatmaps of the nodes in `list` that are large enough on screen (`items` is parallel
    /// to `list.nodes`, as `LodState::items` gives it). Bumps `list.revision` when it adds anything,
    /// so a renderer re-uploads. Returns the number of nodes decorated.
    pub fn decorate(
        &mut self,
        model: &Arc<Model>,
        list: &mut DrawList,
        items: &[Item],
        camera: &Camera,
    ) -> usize {
        self.placements.clear();
        self.fallback_tiles = 0;
        let zoom = camera.zoom;
        let visible = camera.visible_world();
        let origin = list.origin;
        let opts = self.options.clone();
        let mut heatmaps: Vec<(u32, HeatmapItem)> = Vec::new();
        let mut separators: Vec<crate::lod::EdgeItem> = Vec::new();
        let mut new_labels = Vec::new();
        let mut remove_in: Vec<Rect> = Vec::new();
        let mut darken_in: Vec<Rect> = Vec::new();
        let mut hash = rustc_hash::FxHasher::default();
        let mut value_labels = 0usize;
        for (i, item) in items.iter().enumerate() {
            let Item::Node(node) = *item else { continue };
            let Some(n) = list.nodes.get(i) else { break };
            if n.flags & flags::FRAME != 0 {
                continue;
            }
            let half = n.half_size.as_dvec2();
            let center = origin + n.center.as_dvec2();
            let box_px = half * 2.0 * zoom;
            if box_px.y < opts.min_px || box_px.x < opts.min_px * 2.0 {
                continue;
            }
            let rect = Rect::new(center - half, center + half);
            if !rect.intersects(&visible) {
                continue;
            }
            let Some(tid) = self.main_tensor(model, node) else {
                continue;
            };
            if self.failed.lock().is_ok_and(|f| f.contains(&tid)) {
                continue;
            }
            let Some(tensor) = model.tensors.get(tid as usize) else {
                continue;
            };
            let view = HeatmapView::for_display(tensor);
            let pad = 3.0 / zoom;
            let titled = box_px.y >= 3.0 * opts.title_px;
            let title = if titled { opts.title_px / zoom } else { pad };
            let target = Rect::new(
                DVec2::new(rect.min.x + pad, rect.min.y + title),
                DVec2::new(rect.max.x - pad, rect.max.y - pad),
            );
            if target.is_empty() {
                continue;
            }
            let tiles = visible_tiles(&view, target, camera);
            // In the background mode the first sight of a tensor samples its range on the tile
            // threads (4 096 values from ~64 pages of the file: a cold read is disk time), and the
            // tensor shows when it lands.
            let Some(range) = self.range(model, tensor, tid, &view, tiles.level) else {
                continue;
            };
            let mut drawn = HashSet::new();
            let mut fine = Vec::new();
            for (tx, ty) in tiles.iter() {
                let key = tile_key(tensor, view, tiles.level, tx, ty);
                let tile = match self.cache.get(&key) {
                    Some(t) => Some(t),
                    None if self.blocking => match build_tile(tensor, &view, tiles.level, tx, ty) {
                        Ok(t) => {
                            release_pages(tensor, &view, &t);
                            let t = Arc::new(t);
                            self.cache.insert(key.clone(), t.clone());
                            Some(t)
                        }
                        Err(e) => {
                            log::warn!("{}: {e}", model.source.display());
                            if let Ok(mut f) = self.failed.lock() {
                                f.insert(tid);
                            }
                            None
                        }
                    },
                    None => {
                        self.request(model, tid, view, tiles.level, tx, ty);
                        // Stand-in: the nearest coarser tile already built.
                        let mut found = None;
                        for up in 1..=8u32 {
                            let level = tiles.level + up;
                            if level >= view.levels() {
                                break;
                            }
                            let k = tile_key(tensor, view, level, tx >> up, ty >> up);
                            if let Some(t) = self.cache.get(&k) {
                                found = Some((level, k, t));
                                break;
                            }
                        }
                        if let Some((level, k, t)) = found {
                            let hk = k.hash64();
                            if drawn.insert(hk) {
                                self.fallback_tiles += 1;
                                heatmaps.push((
                                    level,
                                    tile_item(hk, &t, &view, target, origin, range, opts.colormap),
                                ));
                            }
                        }
                        None
                    }
                };
                if let Some(t) = tile {
                    let hk = key.hash64();
                    if drawn.insert(hk) {
                        fine.push((tiles.level, t.clone()));
                        heatmaps.push((
                            tiles.level,
                            tile_item(hk, &t, &view, target, origin, range, opts.colormap),
                        ));
                    }
                }
            }
            drawn.iter().for_each(|k| k.hash(&mut hash));
            separators.extend(kernel_separators(&view, target, zoom, origin));
            // Values written in cells big enough to read them.
            let cell = DVec2::new(
                target.size().x / view.cols as f64,
                target.size().y / view.rows as f64,
            ) * zoom;
            if tiles.level == 0
                && cell.min_element() >= opts.value_label_px
                && let Some(clip) = intersect(&visible, &target)
            {
                for (_, t) in &fine {
                    value_labels += push_value_labels(
                        &mut new_labels,
                        t,
                        &view,
                        target,
                        &clip,
                        origin,
                        cell,
                        range,
                        opts.max_value_labels.saturating_sub(value_labels),
                    );
                }
            }
            if let Some(n) = list.nodes.get_mut(i) {
                n.fill[3] = 0;
            }
            (tid, node).hash(&mut hash);
            self.placements.push(Placement {
                node,
                tensor: tid,
                rect: target,
                view,
            });
            if !titled {
                darken_in.push(rect);
                continue;
            }
            // Title strip: node name and the tensor's shape.
            let name = model
                .graph
                .nodes
                .get(node as usize)
                .map_or("", |n| n.name.as_str());
            let short = tensor.name.strip_prefix(name).unwrap_or(&tensor.name);
            let short = short.trim_start_matches(['.', '/']);
            // The colour scale: full red at +hi, full blue at -hi (block means at coarse levels).
            let hi = range.1.abs().max(range.0.abs());
            let size = match view.kernel {
                Some(k) if k.wrapped() => format!(
                    "{} depthwise kernels {}×{} ({}×{})",
                    (view.rows / k.kh.max(1)) * k.per_row,
                    k.kh,
                    k.kw,
                    view.rows / k.kh.max(1),
                    k.per_row
                ),
                Some(k) => format!(
                    "{}×{} kernels {}×{}",
                    view.rows / k.kh.max(1),
                    k.inputs,
                    k.kh,
                    k.kw
                ),
                None => format!("{}×{}", view.rows, view.cols),
            };
            let head = format!(
                "{}  {} {}  {size}",
                last_segment(name),
                if short.is_empty() {
                    &tensor.name
                } else {
                    short
                },
                tensor.dtype.name(),
            );
            let scale = format!("   ±{}", format_value(hi, 60.0));
            let blocks = match tiles.level {
                0 => String::new(),
                l if l >= SAMPLED_FROM_LEVEL => {
                    format!(" ({0}×{0} blocks, sampled)", 1u64 << l.min(40))
                }
                l => format!(" ({0}×{0} block means)", 1u64 << l.min(40)),
            };
            // As much as fits the box (about 0.55 em a character at 12 px).
            let fits = |t: &str| t.chars().count() as f64 * 6.6 <= box_px.x - 12.0;
            let text = [
                format!("{head}{scale}{blocks}"),
                format!("{head}{scale}"),
                head.clone(),
            ]
            .into_iter()
            .find(|t| fits(t))
            .unwrap_or_else(|| last_segment(name).to_string());
            new_labels.push(LabelItem {
                pos: (DVec2::new(rect.min.x + 6.0 / zoom, rect.min.y + title * 0.5) - origin)
                    .as_vec2(),
                text,
                size_px: 12.0,
                color: [40, 44, 52, 255],
                align: Align::Left,
            });
            remove_in.push(rect);
        }
        if self.placements.is_empty() {
            return 0;
        }
        // The node's own labels sat in the middle of the box: the title strip replaces them.
        list.labels.retain(|l| {
            let p = origin + l.pos.as_dvec2();
            !remove_in.iter().any(|r| r.contains(p))
        });
        // Labels left on top of a heatmap: dark, as on the light cells of the colour map.
        for l in &mut list.labels {
            let p = origin + l.pos.as_dvec2();
            if darken_in.iter().any(|r| r.contains(p)) {
                l.color = [20, 24, 30, 255];
            }
        }
        list.labels.extend(new_labels);
        // Coarse stand-ins first, finer tiles over them.
        heatmaps.sort_by_key(|(level, _)| std::cmp::Reverse(*level));
        list.heatmaps.extend(heatmaps.into_iter().map(|(_, h)| h));
        list.edges.extend(separators);
        (zoom.to_bits(), value_labels).hash(&mut hash);
        list.revision = list.revision.rotate_left(29) ^ hash.finish() ^ 0x9e37_79b9_7f4a_7c15;
        self.placements.len()
    }

    /// The colour range of a tensor at a pyramid level. Level 0 (single values): the 99th percentile
    /// of |w| over a sample of the tensor. Coarser levels show block means, which shrink towards
    /// zero as blocks grow (random weights average out), so each level takes its own range from its
    /// first exact tile: otherwise an overview would be a blank of near-zero colour.
    fn range(
        &mut self,
        model: &Arc<Model>,
        tensor: &crate::model::Tensor,
        tid: TensorId,
        view: &HeatmapView,
        level: u32,
    ) -> Option<(f32, f32)> {
        if let Some(&r) = self.ranges.get(&(tid, level)) {
            return Some(r);
        }
        if level == 0 {
            let r = if self.blocking {
                sample_range(tensor, view)
            } else {
                let landed = self.sampled.lock().ok()?.remove(&tid);
                match landed {
                    Some(r) => r,
                    None => {
                        self.request_range(model, tid, *view);
                        return None;
                    }
                }
            };
            self.ranges.insert((tid, 0), r);
            return Some(r);
        }
        let base = self.range(model, tensor, tid, view, 0)?;
        // The first exact tile of the level: at coarse levels the whole tensor is a single tile.
        let (ntx, nty) = view.tiles(level);
        let key = tile_key(tensor, *view, level, ntx / 2, nty / 2);
        let tile = if self.blocking {
            build_tile(tensor, view, level, ntx / 2, nty / 2)
                .ok()
                .map(|t| {
                    let t = Arc::new(t);
                    self.cache.insert(key.clone(), t.clone());
                    t
                })
        } else {
            self.cache.get(&key)
        };
        let Some(tile) = tile else {
            return Some(base);
        };
        let r = match percentile_abs(&tile.values, 0.99) {
            Some(hi) if hi > 0.0 => (-hi.min(base.1), hi.min(base.1)),
            _ => base,
        };
        self.ranges.insert((tid, level), r);
        Some(r)
    }

    /// Makes a lazy tensor's bytes on the tile threads (once at a time; the waker redraws).
    fn warm(&self, lazy: Arc<crate::model::LazyBytes>) {
        let key = Arc::as_ptr(&lazy) as usize;
        {
            let Ok(mut w) = self.warming.lock() else {
                return;
            };
            if !w.insert(key) {
                return;
            }
        }
        let (warming, waker) = (self.warming.clone(), self.waker.clone());
        let job = move || {
            // An error is kept by the tensor and shown where its tiles would be.
            let _ = lazy.get();
            if let Ok(mut w) = warming.lock() {
                w.remove(&key);
            }
            if let Some(w) = &waker {
                w();
            }
        };
        match self.pool() {
            Some(pool) => pool.spawn(job),
            None => job(),
        }
    }

    /// Samples `tid`'s level-0 colour range on the tile threads (once; the waker redraws).
    fn request_range(&self, model: &Arc<Model>, tid: TensorId, view: HeatmapView) {
        {
            let Ok(mut sampling) = self.sampling.lock() else {
                return;
            };
            if !sampling.insert(tid) {
                return;
            }
        }
        let model = model.clone();
        let (sampled, sampling) = (self.sampled.clone(), self.sampling.clone());
        let waker = self.waker.clone();
        let job = move || {
            if let Some(t) = model.tensors.get(tid as usize) {
                let r = sample_range(t, &view);
                if let Ok(mut m) = sampled.lock() {
                    m.insert(tid, r);
                }
            }
            if let Ok(mut s) = sampling.lock() {
                s.remove(&tid);
            }
            if let Some(w) = &waker {
                w();
            }
        };
        match self.pool() {
            Some(pool) => pool.spawn(job),
            // No threads: sample here (the next frame finds the result).
            None => job(),
        }
    }

    /// Starts building a tile in the background unless it is already on its way.
    fn request(
        &self,
        model: &Arc<Model>,
        tid: TensorId,
        view: HeatmapView,
        level: u32,
        tx: u64,
        ty: u64,
    ) {
        let Some(tensor) = model.tensors.get(tid as usize) else {
            return;
        };
        let key = tile_key(tensor, view, level, tx, ty);
        {
            let Ok(mut inflight) = self.inflight.lock() else {
                return;
            };
            if inflight.len() >= self.options.max_inflight || !inflight.insert(key.clone()) {
                return;
            }
        }
        let model = model.clone();
        let cache = self.cache.clone();
        let inflight = self.inflight.clone();
        let failed = self.failed.clone();
        let waker = self.waker.clone();
        let Some(pool) = self.pool() else { return };
        pool.spawn(move || {
            if let Some(t) = model.tensors.get(tid as usize) {
                match build_tile(t, &view, level, tx, ty) {
                    Ok(tile) => {
                        release_pages(t, &view, &tile);
                        cache.insert(key.clone(), Arc::new(tile));
                    }
                    Err(e) => {
                        log::warn!("{}: {e}", model.source.display());
                        if let Ok(mut f) = failed.lock() {
                            f.insert(tid);
                        }
                    }
                }
            }
            if let Ok(mut g) = inflight.lock() {
                g.remove(&key);
            }
            if let Some(w) = waker {
                w();
            }
        });
    }

    /// The pool tile builds run on: its own, so a long build never holds up the global rayon pool
    /// that a frame's LOD cut may use (a frame once waited 31 s behind tile builds of a 70 B model).
    fn pool(&self) -> Option<Arc<rayon::ThreadPool>> {
        let mut guard = self.pool.lock().ok()?;
        if guard.is_none() {
            let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
            match rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("modelmap-tiles-{i}"))
                .build()
            {
                Ok(p) => *guard = Some(Arc::new(p)),
                Err(e) => {
                    log::warn!("cannot start the tile threads: {e}");
                    return None;
                }
            }
        }
        guard.clone()
    }

    /// The value under `world` in the last decorated frame, read exactly from the file.
    pub fn hit(&self, model: &Model, world: DVec2) -> Option<WeightHit> {
        let p = self.placements.iter().find(|p| p.rect.contains(world))?;
        let s = p.rect.size();
        let col =
            (((world.x - p.rect.min.x) / s.x * p.view.cols as f64) as u64).min(p.view.cols - 1);
        let row =
            (((world.y - p.rect.min.y) / s.y * p.view.rows as f64) as u64).min(p.view.rows - 1);
        let tensor = model.tensors.get(p.tensor as usize)?;
        // Bytes made on first use (a decompressed array, a B − A delta, a merged LoRA weight) that
        // the cache has dropped are made again on the tile threads, not on this frame: a hover
        // would otherwise hold the window for the whole tensor. The value shows once they are.
        if !self.blocking
            && let crate::model::TensorData::Lazy(l) = &tensor.data
            && !l.is_ready()
            && l.failed().is_none()
        {
            self.warm(l.clone());
            return None;
        }
        let value = crate::stats::heatmap::value_at(tensor, &p.view, row, col).ok()?;
        let index = p.view.element(row, col).map_or_else(Vec::new, |e| {
            if matches!(tensor.dtype, crate::model::DType::Ggml(_)) {
                vec![row, col]
            } else {
                crate::stats::heatmap::unravel(e, &tensor.shape)
            }
        });
        Some(WeightHit {
            node: p.node,
            tensor: p.tensor,
            row,
            col,
            index,
            value,
        })
    }

    /// The world rectangle of one value `(row, col)` of `tensor` inside `node_rect` (the node's box),
    /// as [`InPlaceWeights::decorate`] places it for a camera of `zoom` — for flying to a weight.
    pub fn cell_rect(
        &self,
        tensor: &crate::model::Tensor,
        node_rect: Rect,
        zoom: f64,
        row: u64,
        col: u64,
    ) -> Rect {
        let view = HeatmapView::for_display(tensor);
        let pad = 3.0 / zoom;
        let titled = node_rect.size().y * zoom >= 3.0 * self.options.title_px;
        let title = if titled {
            self.options.title_px / zoom
        } else {
            pad
        };
        let target = Rect::new(
            DVec2::new(node_rect.min.x + pad, node_rect.min.y + title),
            DVec2::new(node_rect.max.x - pad, node_rect.max.y - pad),
        );
        let s = target.size();
        let cw = s.x / view.cols.max(1) as f64;
        let ch = s.y / view.rows.max(1) as f64;
        let min = target.min + DVec2::new(col as f64 * cw, row as f64 * ch);
        Rect::new(min, min + DVec2::new(cw, ch))
    }
}

/// The tiles of one pyramid level that cover the visible part of `target`.
pub(crate) struct VisibleTiles {
    pub(crate) level: u32,
    tx: std::ops::Range<u64>,
    ty: std::ops::Range<u64>,
}

impl VisibleTiles {
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ty
            .clone()
            .flat_map(move |ty| self.tx.clone().map(move |tx| (tx, ty)))
    }
}

/// Level where a texel is at least about a pixel along the finer axis, and the visible tile range.
pub(crate) fn visible_tiles(view: &HeatmapView, target: Rect, camera: &Camera) -> VisibleTiles {
    let size = target.size();
    let px_x = size.x * camera.zoom / view.cols as f64;
    let px_y = size.y * camera.zoom / view.rows as f64;
    let px = px_x.min(px_y).max(1e-12);
    let level = if px >= 1.0 {
        0
    } else {
        ((1.0 / px).log2().floor() as u32).min(view.levels().saturating_sub(1))
    };
    let Some(clip) = intersect(&camera.visible_world(), &target) else {
        return VisibleTiles {
            level,
            tx: 0..0,
            ty: 0..0,
        };
    };
    let to_col =
        |x: f64| ((x - target.min.x) / size.x * view.cols as f64).clamp(0.0, view.cols as f64);
    let to_row =
        |y: f64| ((y - target.min.y) / size.y * view.rows as f64).clamp(0.0, view.rows as f64);
    let span = TILE as f64 * (1u64 << level.min(62)) as f64;
    let (ntx, nty) = view.tiles(level);
    let tx0 = (to_col(clip.min.x) / span).floor() as u64;
    let tx1 = ((to_col(clip.max.x) / span).ceil() as u64).min(ntx);
    let ty0 = (to_row(clip.min.y) / span).floor() as u64;
    let ty1 = ((to_row(clip.max.y) / span).ceil() as u64).min(nty);
    VisibleTiles {
        level,
        tx: tx0..tx1.max(tx0),
        ty: ty0..ty1.max(ty0),
    }
}

/// Levels from here on are built from a sample of each block (4 rows × 16 columns of it) rather
/// than every value: a texel then stands for 256+ values, the picture is the same to the eye, and a
/// 470 MB tensor's overview reads a few percent of its pages instead of all of them (time, and
/// resident memory: mapped pages that were read count). Levels below stay exact.
pub const SAMPLED_FROM_LEVEL: u32 = 4;

/// One tile as the in-place view builds it (exact below [`SAMPLED_FROM_LEVEL`], sampled above).
pub fn build_tile(
    t: &crate::model::Tensor,
    view: &HeatmapView,
    level: u32,
    tx: u64,
    ty: u64,
) -> Result<Tile, crate::stats::StatsError> {
    if level >= SAMPLED_FROM_LEVEL {
        crate::stats::heatmap::tile_preview(t, view, level, tx, ty, Agg::Mean)
    } else {
        crate::stats::heatmap::tile(t, view, level, tx, ty, Agg::Mean)
    }
}

/// Tensors at least this large hand their pages back after each tile (smaller ones stay cheap).
const RELEASE_PAGES_FROM_BYTES: usize = 32 << 20;

/// Tells the kernel this process no longer needs the mapped pages a tile was built from
/// (`MADV_DONTNEED` on a read-only file mapping: the page-table entries go, the page cache stays, a
/// later read faults them back in). Without it every page a zoom ever touched stays resident: 1.7 GB
/// after one zoom into a 70 B checkpoint. No-op off Unix and for small or unmapped tensors.
fn release_pages(t: &crate::model::Tensor, view: &HeatmapView, tile: &Tile) {
    let Some(bytes) = t.bytes() else { return };
    if bytes.len() < RELEASE_PAGES_FROM_BYTES || view.rows == 0 {
        return;
    }
    let row_bytes = bytes.len() as u64 / view.rows;
    let start = (tile.row0 * row_bytes) as usize;
    let end = ((tile.row1 * row_bytes) as usize).min(bytes.len());
    if let Some(range) = bytes.get(start..end) {
        crate::load::release_mapped(range);
    }
}

pub(crate) fn tile_key(
    t: &crate::model::Tensor,
    view: HeatmapView,
    level: u32,
    tx: u64,
    ty: u64,
) -> TileKey {
    TileKey {
        tensor: t.name.clone(),
        data_addr: t.data_addr(),
        view,
        level,
        tx,
        ty,
        agg: Agg::Mean,
    }
}

pub(crate) fn tile_item(
    key: u64,
    tile: &Tile,
    view: &HeatmapView,
    target: Rect,
    origin: DVec2,
    range: (f32, f32),
    colormap: ColorMap,
) -> HeatmapItem {
    let size = target.size();
    let wx = |c: u64| target.min.x + c as f64 / view.cols as f64 * size.x;
    let wy = |r: u64| target.min.y + r as f64 / view.rows as f64 * size.y;
    HeatmapItem {
        key,
        min: (DVec2::new(wx(tile.col0), wy(tile.row0)) - origin).as_vec2(),
        max: (DVec2::new(wx(tile.col1), wy(tile.row1)) - origin).as_vec2(),
        width: tile.width,
        height: tile.height,
        values: tile.values.clone(),
        lo: range.0,
        hi: range.1,
        colormap,
    }
}

/// Writes the value of every visible level-0 cell of `tile` as a label; returns how many.
#[allow(clippy::too_many_arguments)]
fn push_value_labels(
    out: &mut Vec<LabelItem>,
    tile: &Tile,
    view: &HeatmapView,
    target: Rect,
    clip: &Rect,
    origin: DVec2,
    cell_px: DVec2,
    range: (f32, f32),
    budget: usize,
) -> usize {
    let size = target.size();
    let cw = size.x / view.cols as f64;
    let ch = size.y / view.rows as f64;
    let c0 = (((clip.min.x - target.min.x) / cw).floor().max(0.0) as u64).max(tile.col0);
    let c1 = (((clip.max.x - target.min.x) / cw).ceil().max(0.0) as u64).min(tile.col1);
    let r0 = (((clip.min.y - target.min.y) / ch).floor().max(0.0) as u64).max(tile.row0);
    let r1 = (((clip.max.y - target.min.y) / ch).ceil().max(0.0) as u64).min(tile.row1);
    let width = u64::from(tile.width);
    let px = (cell_px.y * 0.24).clamp(9.0, 15.0) as f32;
    let hi = range.1.abs().max(range.0.abs()).max(f32::MIN_POSITIVE);
    let mut n = 0;
    for r in r0..r1 {
        for c in c0..c1 {
            if n >= budget {
                return n;
            }
            let idx = (r - tile.row0) * width + (c - tile.col0);
            let Some(&v) = tile.values.get(idx as usize) else {
                continue;
            };
            let center = target.min + DVec2::new((c as f64 + 0.5) * cw, (r as f64 + 0.5) * ch);
            // Dark cells (strong colour) get white text.
            let color = if v.is_finite() && (v / hi).abs() > 0.55 {
                [255, 255, 255, 255]
            } else {
                [20, 24, 30, 255]
            };
            out.push(LabelItem {
                pos: (center - origin).as_vec2(),
                text: format_value(v, cell_px.x),
                size_px: px,
                color,
                align: Align::Center,
            });
            n += 1;
        }
    }
    n
}

/// A value short enough for a cell `cell_px` wide.
pub fn format_value(v: f32, cell_px: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let digits = if cell_px >= 90.0 { 5 } else { 3 };
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{v:.*e}", digits.min(3) - 1)
    } else {
        format!("{v:.digits$}")
    }
}

/// Symmetric colour range at the 99th percentile of |x| over a strided sample of the tensor.
pub fn sample_range(t: &crate::model::Tensor, view: &HeatmapView) -> (f32, f32) {
    // 64 runs of 64 consecutive values spread over the tensor: 4096 values from at most ~64 pages
    // (single strided reads would touch 4096 pages of a huge tensor).
    const RUNS: u64 = 64;
    const RUN: u64 = 64;
    let n = view.rows.saturating_mul(view.cols);
    if n == 0 {
        return (-1.0, 1.0);
    }
    let step = (n / RUNS).max(1);
    let mut abs: Vec<f64> = (0..n.min(RUNS))
        .flat_map(|r| {
            // A prime offset keeps the runs from locking onto one column.
            let start = (r * step + (r * 7919) % step) % n;
            (start..(start + RUN).min(n)).filter_map(|idx| {
                crate::stats::heatmap::value_at(t, view, idx / view.cols, idx % view.cols).ok()
            })
        })
        .filter(|v| v.is_finite())
        .map(f64::abs)
        .collect();
    if abs.is_empty() {
        return (-1.0, 1.0);
    }
    abs.sort_by(f64::total_cmp);
    let p = abs[((abs.len() - 1) as f64 * 0.99) as usize];
    let hi = if p > 0.0 {
        p
    } else {
        abs[abs.len() - 1].max(1e-30)
    };
    (-(hi as f32), hi as f32)
}

/// The `q` quantile of |x| over the finite values.
/// The `q` quantile of |v| over the finite values.
pub(crate) fn percentile_abs(values: &[f32], q: f64) -> Option<f32> {
    let mut abs: Vec<f32> = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v.abs())
        .collect();
    if abs.is_empty() {
        return None;
    }
    let k = ((abs.len() - 1) as f64 * q) as usize;
    let (_, v, _) = abs.select_nth_unstable_by(k, f32::total_cmp);
    Some(*v)
}

fn intersect(a: &Rect, b: &Rect) -> Option<Rect> {
    let r = Rect::new(a.min.max(b.min), a.max.min(b.max));
    (!r.is_empty()).then_some(r)
}

fn last_segment(name: &str) -> &str {
    name.rsplit(['/', '.'])
        .find(|s| !s.is_empty())
        .unwrap_or(name)
}

/// Separators between the kernels of a kernel-grid view drawn over `target` (world units) at
/// `zoom` pixels per unit, once a kernel is at least 10 px across (below that they would grey the
/// picture out). Empty for a flat view.
pub fn kernel_separators(
    view: &HeatmapView,
    target: Rect,
    zoom: f64,
    origin: DVec2,
) -> Vec<crate::lod::EdgeItem> {
    let Some(k) = view.kernel else {
        return Vec::new();
    };
    let outs = view.rows / k.kh.max(1);
    let per_row = k.per_row.max(1);
    if view.cols == 0 || view.rows == 0 || per_row + outs > 8192 {
        return Vec::new();
    }
    let size = target.size();
    let (kw_px, kh_px) = (
        size.x / per_row as f64 * zoom,
        size.y / outs.max(1) as f64 * zoom,
    );
    if kw_px.min(kh_px) < 10.0 {
        return Vec::new();
    }
    let line = |a: DVec2, b: DVec2| crate::lod::EdgeItem {
        from: (a - origin).as_vec2(),
        to: (b - origin).as_vec2(),
        color: [20, 20, 20, 255],
        width_px: 2.0,
        flags: 0,
        arrow_world: 0.0,
    };
    let mut out = Vec::new();
    for i in 1..per_row {
        let x = target.min.x + size.x * i as f64 / per_row as f64;
        out.push(line(
            DVec2::new(x, target.min.y),
            DVec2::new(x, target.max.y),
        ));
    }
    for o in 1..outs {
        let y = target.min.y + size.y * o as f64 / outs as f64;
        out.push(line(
            DVec2::new(target.min.x, y),
            DVec2::new(target.max.x, y),
        ));
    }
    out
}
