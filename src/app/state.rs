//! Everything the window shows, as plain data: tabs, each tab's view (camera, selection, hover,
//! expansion, search), background jobs and dialog state. Input arrives as [`Command`]s and pointer
//! calls in screen pixels, so the whole interaction is tested without a window (`tests/app_state.rs`);
//! the egui layer only translates events and draws.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use glam::DVec2;

use super::camera_ctl::CameraController;
use super::jobs::{JobProgress, Jobs};
use super::scene::{Picked, SceneInputs, ViewScene};
use super::search::{Search, SearchIndex, Target};
use crate::graph::ClusterId;
use crate::model::{GroupId, Model, NodeId};
use crate::view::{Camera, Rect};

/// Identifies a tab for its whole life.
pub type TabId = u64;

/// Zoom to selection never magnifies one node beyond this many pixels per world unit.
const MAX_FOCUS_ZOOM: f64 = 4.0;
/// Pixels one arrow-key press pans.
pub const KEY_PAN_PX: f64 = 120.0;
/// Zoom factor of one `+`-less zoom key press (`=`/`-` with Ctrl, or PageUp/PageDown).
pub const KEY_ZOOM: f64 = 1.5;

/// Clusters the user opened or closed by hand; everything else opens and closes with the zoom
/// (the LOD cut's `pinned_open` / `pinned_closed`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpandState {
    open: BTreeSet<ClusterId>,
    closed: BTreeSet<ClusterId>,
}

impl ExpandState {
    /// Whether `c` was opened by hand.
    pub fn is_pinned_open(&self, c: ClusterId) -> bool {
        self.open.contains(&c)
    }

    /// Whether `c` was closed by hand.
    pub fn is_pinned_closed(&self, c: ClusterId) -> bool {
        self.closed.contains(&c)
    }

    /// Opens `c` at any zoom.
    pub fn open(&mut self, c: ClusterId) {
        self.closed.remove(&c);
        self.open.insert(c);
    }

    /// Closes `c` at any zoom (the root never closes).
    pub fn close(&mut self, c: ClusterId) {
        if c != 0 {
            self.open.remove(&c);
            self.closed.insert(c);
        }
    }

    /// Releases every hand-closed cluster of `chain` (a node's clusters), so the node can show.
    pub fn reveal(&mut self, chain: &[ClusterId]) -> bool {
        let mut changed = false;
        for c in chain {
            changed |= self.closed.remove(c);
        }
        changed
    }

    /// Forgets every pin: the zoom alone decides again.
    pub fn reset(&mut self) {
        self.open.clear();
        self.closed.clear();
    }

    /// Clusters opened by hand, sorted.
    pub fn pinned_open(&self) -> Vec<ClusterId> {
        self.open.iter().copied().collect()
    }

    /// Clusters closed by hand, sorted.
    pub fn pinned_closed(&self) -> Vec<ClusterId> {
        self.closed.iter().copied().collect()
    }
}

/// What a model needs to be shown, built on a background thread.
#[derive(Debug)]
pub struct Loaded {
    /// The model.
    pub model: Arc<Model>,
    /// Its search index.
    pub index: Arc<SearchIndex>,
    /// Its placeholder positions (shown until the layout arrives).
    pub scene: ViewScene,
}

impl Loaded {
    /// Builds the index and placeholder positions of a loaded model (off the UI thread for big
    /// models).
    pub fn prepare(model: Model, progress: Option<&JobProgress>) -> Self {
        if let Some(p) = progress {
            p.set("indexing names", 0.6);
        }
        let index = Arc::new(SearchIndex::build(&model));
        if let Some(p) = progress {
            p.set("placing nodes", 0.8);
        }
        let scene = ViewScene::grid(&model);
        Loaded {
            model: Arc::new(model),
            index,
            scene,
        }
    }
}

/// State of a view's layout.
#[derive(Debug, Default)]
pub struct LayoutState {
    /// A layout is wanted (the app starts a job for it).
    pub wanted: bool,
    /// The running layout job, if any.
    pub job: Option<u64>,
    /// Bumped on every request; results of older requests are dropped.
    pub generation: u64,
    /// The last layout error, shown in the status line.
    pub error: Option<String>,
}

/// A laid-out scene travelling from the layout job to the UI.
pub struct LaidOut(pub crate::scene::Scene);

impl std::fmt::Debug for LaidOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaidOut")
            .field("nodes", &self.0.layout.nodes.len())
            .finish_non_exhaustive()
    }
}

/// One open model's view state.
#[derive(Debug)]
pub struct ModelView {
    /// The model.
    pub model: Arc<Model>,
    /// Positions, picking and the draw list.
    pub scene: ViewScene,
    /// The camera.
    pub camera: CameraController,
    /// The selected node.
    pub selected: Option<NodeId>,
    /// What is under the cursor.
    pub hovered: Option<Picked>,
    /// Inputs and outputs of the selection.
    pub highlighted: Vec<NodeId>,
    /// Clusters opened or closed by hand.
    pub expanded: ExpandState,
    /// Search state.
    pub search: Search,
    /// Background layout state.
    pub layout: LayoutState,
    /// Fit the camera when the first real layout arrives (the user has not moved yet).
    fit_on_layout: bool,
}

impl ModelView {
    /// A view of `loaded` in a viewport of `viewport` pixels, fitted to the whole model; asks for a
    /// layout.
    pub fn new(loaded: Loaded, viewport: DVec2) -> Self {
        let mut camera = CameraController::new(viewport);
        if let Some(c) = camera.camera_fitting(loaded.scene.bounds(), MAX_FOCUS_ZOOM) {
            camera.set(c);
        }
        ModelView {
            model: loaded.model,
            scene: loaded.scene,
            camera,
            selected: None,
            hovered: None,
            highlighted: Vec::new(),
            expanded: ExpandState::default(),
            search: Search::new(loaded.index),
            layout: LayoutState {
                wanted: true,
                ..Default::default()
            },
            fit_on_layout: true,
        }
    }

    /// Installs a finished layout; a camera the user has not touched is fitted to it, otherwise the
    /// selection (or the point at the centre) stays in place.
    pub fn set_layout(&mut self, scene: crate::scene::Scene) {
        self.scene = ViewScene::laid_out(scene);
        if self.fit_on_layout {
            if let Some(c) = self
                .camera
                .camera_fitting(self.scene.bounds(), MAX_FOCUS_ZOOM)
            {
                self.camera.set(c);
            }
            self.fit_on_layout = false;
        } else if let Some(r) = self.selected.and_then(|n| self.scene.node_rect(n)) {
            let mut cam = *self.camera.target();
            cam.center = r.center();
            self.camera.set(cam);
        }
    }

    /// Marks that the user moved the camera (a later layout keeps the view instead of fitting).
    pub fn user_moved(&mut self) {
        self.fit_on_layout = false;
    }

    /// Selects `node` (or clears the selection) and highlights its inputs and outputs.
    pub fn select(&mut self, node: Option<NodeId>) {
        let node = node.filter(|&n| (n as usize) < self.model.graph.nodes.len());
        self.selected = node;
        self.highlighted.clear();
        if let Some(n) = node {
            let (ins, outs) = self.neighbours(n);
            let mut all: Vec<NodeId> = ins.into_iter().chain(outs).filter(|&x| x != n).collect();
            all.sort_unstable();
            all.dedup();
            self.highlighted = all;
        }
    }

    /// Nodes feeding `node` and nodes it feeds (each sorted, deduplicated), from the graph's edges.
    pub fn neighbours(&self, node: NodeId) -> (Vec<NodeId>, Vec<NodeId>) {
        let mut ins: Vec<NodeId> = Vec::new();
        let mut outs: Vec<NodeId> = Vec::new();
        for e in &self.model.graph.edges {
            if e.to == node {
                ins.push(e.from);
            }
            if e.from == node {
                outs.push(e.to);
            }
        }
        ins.sort_unstable();
        ins.dedup();
        outs.sort_unstable();
        outs.dedup();
        (ins, outs)
    }

    /// The inputs the scene draws with.
    pub fn scene_inputs(&self) -> SceneInputs {
        SceneInputs {
            selected: self.selected,
            hovered: self.hovered,
            highlighted: self.highlighted.clone(),
            pinned_open: self.expanded.pinned_open(),
            pinned_closed: self.expanded.pinned_closed(),
        }
    }

    /// Flies to show the whole model.
    pub fn fit_all(&mut self, now_s: f64) {
        self.user_moved();
        self.camera
            .fly_to_bounds(self.scene.bounds(), MAX_FOCUS_ZOOM, now_s);
    }

    /// Flies to the selection and its neighbours; fits all when nothing is selected.
    pub fn zoom_to_selection(&mut self, now_s: f64) {
        let Some(sel) = self.selected else {
            self.fit_all(now_s);
            return;
        };
        self.user_moved();
        let mut r = self.scene.node_rect(sel).unwrap_or(Rect::EMPTY);
        // Include the neighbours when they are close enough to share the screen meaningfully.
        let mut with_neighbours = r;
        for &n in &self.highlighted {
            if let Some(b) = self.scene.node_rect(n) {
                with_neighbours = with_neighbours.union(&b);
            }
        }
        if !r.is_empty() && with_neighbours.size().max_element() < r.size().max_element() * 12.0 {
            r = with_neighbours;
        }
        self.camera.fly_to_bounds(r, MAX_FOCUS_ZOOM, now_s);
    }

    /// Selects `node`, releases hand-closed clusters hiding it and flies to it (the cut opens the
    /// rest as the camera arrives).
    pub fn go_to_node(&mut self, node: NodeId, now_s: f64) {
        if (node as usize) >= self.model.graph.nodes.len() {
            return;
        }
        let chain = self.scene.cluster_chain(node);
        self.expanded.reveal(&chain);
        self.select(Some(node));
        self.user_moved();
        if let Some(r) = self.scene.node_rect(node) {
            self.camera.fly_to_bounds(r, MAX_FOCUS_ZOOM, now_s);
        }
    }

    /// Goes to a search result.
    pub fn go_to_target(&mut self, target: Target, now_s: f64) {
        if let Some(n) = target.node() {
            self.go_to_node(n, now_s);
        }
    }

    /// Flies to a hierarchy group's box.
    pub fn go_to_group(&mut self, g: GroupId, now_s: f64) {
        self.user_moved();
        let r = self.scene.group_rect(&self.model, g);
        self.camera.fly_to_bounds(r, MAX_FOCUS_ZOOM, now_s);
    }

    /// Opens or closes cluster `c` by hand.
    pub fn set_cluster_open(&mut self, c: ClusterId, open: bool) {
        if open {
            self.expanded.open(c);
        } else {
            self.expanded.close(c);
        }
    }

    /// The innermost cluster holding `node` below the root, if any.
    pub fn innermost_cluster(&self, node: NodeId) -> Option<ClusterId> {
        self.scene.cluster_chain(node).into_iter().find(|&c| c != 0)
    }

    /// What lies under a screen point (in the last drawn frame).
    pub fn pick(&self, screen: DVec2) -> Option<Picked> {
        self.scene.pick(self.camera.camera(), screen)
    }

    /// Updates hover from the pointer; returns whether it changed.
    pub fn hover_at(&mut self, screen: Option<DVec2>) -> bool {
        let h = screen.and_then(|s| self.pick(s));
        let changed = h != self.hovered;
        self.hovered = h;
        changed
    }

    /// A click: selects the node under the pointer, or clears the selection on empty space.
    pub fn click_at(&mut self, screen: DVec2) {
        match self.pick(screen) {
            Some(Picked::Node(n)) => self.select(Some(n)),
            Some(Picked::Cluster(_)) => {}
            None => self.select(None),
        }
    }

    /// A double click: on empty space fits all; on a closed cluster opens it; on a node closes the
    /// innermost cluster holding it.
    pub fn double_click_at(&mut self, screen: DVec2, now_s: f64) {
        match self.pick(screen) {
            None => self.fit_all(now_s),
            Some(Picked::Cluster(c)) => self.set_cluster_open(c, true),
            Some(Picked::Node(n)) => {
                if let Some(c) = self.innermost_cluster(n) {
                    self.set_cluster_open(c, false);
                }
            }
        }
    }

    /// Wheel or pinch: zooms by `factor` about a screen point.
    pub fn zoom_at(&mut self, screen: DVec2, factor: f64) {
        self.user_moved();
        self.camera.zoom_about(screen, factor);
    }

    /// Drag: pans by a screen delta in pixels.
    pub fn pan(&mut self, delta: DVec2) {
        self.user_moved();
        self.camera.pan_pixels(delta);
    }

    /// The group path of the selection (root left out), outermost first, for the breadcrumb.
    pub fn breadcrumb(&self) -> Vec<(GroupId, String)> {
        let Some(node) = self
            .selected
            .and_then(|n| self.model.graph.nodes.get(n as usize))
        else {
            return Vec::new();
        };
        let mut chain: Vec<(GroupId, String)> = self
            .model
            .hierarchy
            .ancestors(node.group)
            .filter(|&g| g != 0)
            .filter_map(|g| self.model.hierarchy.get(g).map(|gr| (g, gr.name.clone())))
            .collect();
        chain.reverse();
        chain
    }
}

/// What a tab holds.
#[derive(Debug)]
pub enum TabContent {
    /// Being loaded by background job `job`.
    Loading {
        /// The job.
        job: u64,
    },
    /// Loading failed; the message names the file and the problem.
    Failed {
        /// The error.
        message: String,
    },
    /// Ready to view.
    Ready(Box<ModelView>),
}

/// One tab.
#[derive(Debug)]
pub struct Tab {
    /// Stable id.
    pub id: TabId,
    /// Short title (the file name).
    pub title: String,
    /// Where the model came from.
    pub source: PathBuf,
    /// What it shows.
    pub content: TabContent,
}

/// A result posted by a background job.
#[derive(Debug)]
pub enum JobOutput {
    /// A model finished loading (or failed, with the loader's message).
    Loaded {
        /// The tab it is for.
        tab: TabId,
        /// The model, or what went wrong.
        result: Result<Box<Loaded>, String>,
    },
    /// A layout finished.
    LaidOut {
        /// The tab it is for.
        tab: TabId,
        /// The request it answers ([`LayoutState::generation`]).
        generation: u64,
        /// The laid-out scene, or what went wrong.
        result: Result<Box<LaidOut>, String>,
    },
    /// A PNG export finished.
    Exported(Result<PathBuf, String>),
}

/// Keyboard commands (the egui layer maps keys to these; the help overlay lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `F`: fit the whole model.
    FitAll,
    /// `Z`: zoom to the selection.
    ZoomToSelection,
    /// Arrow keys: look a fixed number of pixels further in the direction (`Pan(-1, 0)` = left).
    Pan(i8, i8),
    /// `PageUp` / `Ctrl +`: zoom in about the centre.
    ZoomIn,
    /// `PageDown` / `Ctrl -`: zoom out about the centre.
    ZoomOut,
    /// `+`: open the hovered cluster (or release hand-closed clusters around the selection).
    Expand,
    /// `-`: close the hovered cluster, or the innermost cluster of the hovered/selected node.
    Collapse,
    /// `Ctrl F` or `/`: open search.
    Search,
    /// `?`: toggle the help overlay.
    Help,
    /// `Esc`: close overlays, then clear the selection.
    Escape,
    /// `Ctrl Tab`: next tab.
    NextTab,
    /// `Ctrl W`: close the tab.
    CloseTab,
    /// `Ctrl O`: open a file by path.
    Open,
}

/// The app: tabs, jobs and overlay state.
pub struct AppState {
    /// Open tabs.
    pub tabs: Vec<Tab>,
    /// Index of the shown tab.
    pub active: usize,
    next_tab: TabId,
    /// Background work.
    pub jobs: Jobs<JobOutput>,
    /// Canvas size in pixels (new views start fitted to it).
    pub viewport: DVec2,
    /// The help overlay is shown.
    pub show_help: bool,
    /// The search box is shown.
    pub show_search: bool,
    /// The search box should grab keyboard focus this frame.
    pub focus_search: bool,
    /// The text of the open-file dialog, when shown.
    pub open_dialog: Option<String>,
    /// The text of the export-PNG dialog, when shown.
    pub export_dialog: Option<String>,
    /// Messages for the status line (newest last), e.g. export results.
    pub messages: Vec<String>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("tabs", &self.tabs.len())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// An app with no tabs; `waker` is called from worker threads when a job finishes.
    pub fn new(viewport: DVec2, waker: Arc<dyn Fn() + Send + Sync>) -> Self {
        AppState {
            tabs: Vec::new(),
            active: 0,
            next_tab: 1,
            jobs: Jobs::new(waker),
            viewport,
            show_help: false,
            show_search: false,
            focus_search: false,
            open_dialog: None,
            export_dialog: None,
            messages: Vec::new(),
        }
    }

    fn new_tab(&mut self, title: String, source: PathBuf, content: TabContent) -> TabId {
        let id = self.next_tab;
        self.next_tab += 1;
        self.tabs.push(Tab {
            id,
            title,
            source,
            content,
        });
        self.active = self.tabs.len() - 1;
        id
    }

    /// Opens a file in a new tab, loading it in the background.
    pub fn open_path(&mut self, path: PathBuf) -> TabId {
        let title = title_of(&path);
        let id = self.next_tab;
        let p = path.clone();
        let job = self
            .jobs
            .spawn(format!("Loading {title}"), move |progress| {
                progress.set("reading and decoding", 0.1);
                let result = crate::load::open(&p)
                    .map(|model| Box::new(Loaded::prepare(model, Some(progress))))
                    .map_err(|e| e.to_string());
                JobOutput::Loaded { tab: id, result }
            });
        self.new_tab(title, path, TabContent::Loading { job })
    }

    /// Opens an already loaded model in a new tab (the embedded demo; tests).
    pub fn open_loaded(&mut self, title: impl Into<String>, loaded: Loaded) -> TabId {
        let source = loaded.model.source.clone();
        let view = ModelView::new(loaded, self.viewport);
        self.new_tab(title.into(), source, TabContent::Ready(Box::new(view)))
    }

    /// Opens a tab showing an error.
    pub fn open_error(&mut self, source: PathBuf, message: String) -> TabId {
        let title = title_of(&source);
        self.new_tab(title, source, TabContent::Failed { message })
    }

    /// Starts the layouts views ask for (one running job per view; a newer request waits for it).
    pub fn pump(&mut self) {
        for t in &mut self.tabs {
            let TabContent::Ready(v) = &mut t.content else {
                continue;
            };
            if !v.layout.wanted || v.layout.job.is_some() {
                continue;
            }
            v.layout.wanted = false;
            v.layout.generation += 1;
            let generation = v.layout.generation;
            let tab = t.id;
            let model = v.model.clone();
            let job = self
                .jobs
                .spawn(format!("Laying out {}", t.title), move |progress| {
                    let result = crate::scene::Scene::build(
                        model,
                        crate::scene::LayoutChoice::Auto,
                        progress,
                    )
                    .map(|s| Box::new(LaidOut(s)))
                    .map_err(|e| e.to_string());
                    JobOutput::LaidOut {
                        tab,
                        generation,
                        result,
                    }
                });
            v.layout.job = Some(job);
        }
    }

    /// Applies finished jobs and starts wanted layouts; returns whether anything changed.
    pub fn poll_jobs(&mut self) -> bool {
        let done = self.jobs.poll();
        let changed = !done.is_empty();
        for f in done {
            self.apply_job(f.output, f.cancelled);
        }
        self.pump();
        changed
    }

    /// Applies one job result.
    pub fn apply_job(&mut self, output: JobOutput, cancelled: bool) {
        match output {
            JobOutput::Loaded { tab, result } => {
                let viewport = self.viewport;
                let Some(t) = self.tabs.iter_mut().find(|t| t.id == tab) else {
                    return; // closed while loading
                };
                t.content = match (cancelled, result) {
                    (true, _) => TabContent::Failed {
                        message: format!("{}: loading cancelled", t.source.display()),
                    },
                    (false, Ok(loaded)) => {
                        TabContent::Ready(Box::new(ModelView::new(*loaded, viewport)))
                    }
                    (false, Err(message)) => TabContent::Failed { message },
                };
            }
            JobOutput::LaidOut {
                tab,
                generation,
                result,
            } => {
                let Some(TabContent::Ready(v)) = self
                    .tabs
                    .iter_mut()
                    .find(|t| t.id == tab)
                    .map(|t| &mut t.content)
                else {
                    return;
                };
                v.layout.job = None;
                if cancelled || generation != v.layout.generation {
                    return;
                }
                match result {
                    Ok(laid) => {
                        v.layout.error = None;
                        v.set_layout(laid.0);
                        v.scene.set_waker(self.jobs.waker());
                    }
                    Err(e) => v.layout.error = Some(e),
                }
            }
            JobOutput::Exported(r) => self.messages.push(match r {
                Ok(p) => format!("Exported {}", p.display()),
                Err(e) => format!("Export failed: {e}"),
            }),
        }
    }

    /// Waits (up to `timeout` per job) until no job is running, applying results as they come
    /// (tests and `--bench-startup`; the window polls instead).
    pub fn wait_idle(&mut self, timeout: std::time::Duration) -> bool {
        self.pump();
        while !self.jobs.running().is_empty() {
            let Some(f) = self.jobs.wait_one(timeout) else {
                return false;
            };
            self.apply_job(f.output, f.cancelled);
            self.pump();
        }
        true
    }

    /// The shown tab.
    pub fn active_tab(&self) -> Option<&Tab> {
        self.tabs.get(self.active)
    }

    /// The shown tab's view, when it is ready.
    pub fn active_view(&self) -> Option<&ModelView> {
        match &self.tabs.get(self.active)?.content {
            TabContent::Ready(v) => Some(v),
            _ => None,
        }
    }

    /// The shown tab's view, mutable.
    pub fn active_view_mut(&mut self) -> Option<&mut ModelView> {
        match &mut self.tabs.get_mut(self.active)?.content {
            TabContent::Ready(v) => Some(v),
            _ => None,
        }
    }

    /// Closes tab `i` (cancelling its running jobs).
    pub fn close_tab(&mut self, i: usize) {
        if i >= self.tabs.len() {
            return;
        }
        let tab = self.tabs.remove(i);
        match tab.content {
            TabContent::Loading { job } => self.jobs.cancel(job),
            TabContent::Ready(v) => {
                if let Some(job) = v.layout.job {
                    self.jobs.cancel(job);
                }
            }
            TabContent::Failed { .. } => {}
        }
        if self.active >= self.tabs.len() {
            self.active = self.tabs.len().saturating_sub(1);
        } else if self.active > i {
            self.active -= 1;
        }
    }

    /// Cancels a running job (the progress bar's cancel button). A cancelled load leaves an error
    /// tab saying so; a cancelled layout keeps the previous picture.
    pub fn cancel_job(&mut self, job: u64) {
        self.jobs.cancel(job);
    }

    /// Sets the canvas size in pixels (all views follow).
    pub fn set_viewport(&mut self, viewport: DVec2) {
        self.viewport = viewport;
        for t in &mut self.tabs {
            if let TabContent::Ready(v) = &mut t.content {
                v.camera.set_viewport(viewport);
            }
        }
    }

    /// Advances camera flights; returns whether anything is still moving.
    pub fn tick(&mut self, now_s: f64) -> bool {
        self.active_view_mut().is_some_and(|v| {
            let flying = v.camera.tick(now_s);
            flying || v.scene.is_animating()
        })
    }

    /// Whether any background job is running (the progress bar redraws while one is).
    pub fn busy(&self) -> bool {
        !self.jobs.running().is_empty()
    }

    /// Applies a keyboard command at time `now_s`.
    pub fn command(&mut self, cmd: Command, now_s: f64) {
        let center = self.viewport * 0.5;
        match cmd {
            Command::Help => self.show_help = !self.show_help,
            Command::Search => {
                self.show_search = true;
                self.focus_search = true;
            }
            Command::Open => self.open_dialog = Some(String::new()),
            Command::Escape => {
                if self.show_help {
                    self.show_help = false;
                } else if self.open_dialog.is_some() || self.export_dialog.is_some() {
                    self.open_dialog = None;
                    self.export_dialog = None;
                } else if self.show_search {
                    self.show_search = false;
                } else if let Some(v) = self.active_view_mut() {
                    v.select(None);
                }
            }
            Command::NextTab => {
                if !self.tabs.is_empty() {
                    self.active = (self.active + 1) % self.tabs.len();
                }
            }
            Command::CloseTab => self.close_tab(self.active),
            _ => {
                let Some(v) = self.active_view_mut() else {
                    return;
                };
                match cmd {
                    Command::FitAll => v.fit_all(now_s),
                    Command::ZoomToSelection => v.zoom_to_selection(now_s),
                    // The camera looks further that way: the world slides the other way on screen.
                    Command::Pan(dx, dy) => {
                        v.pan(-DVec2::new(f64::from(dx), f64::from(dy)) * KEY_PAN_PX)
                    }
                    Command::ZoomIn => v.zoom_at(center, KEY_ZOOM),
                    Command::ZoomOut => v.zoom_at(center, 1.0 / KEY_ZOOM),
                    Command::Expand => {
                        if let Some(Picked::Cluster(c)) = v.hovered {
                            v.set_cluster_open(c, true);
                        } else {
                            // Release hand-closed clusters around the selection.
                            let chain = v
                                .selected
                                .map(|n| v.scene.cluster_chain(n))
                                .unwrap_or_default();
                            v.expanded.reveal(&chain);
                        }
                    }
                    Command::Collapse => {
                        let target = match v.hovered {
                            Some(Picked::Cluster(c)) => Some(c),
                            Some(Picked::Node(n)) => v.innermost_cluster(n),
                            None => v.selected.and_then(|n| v.innermost_cluster(n)),
                        };
                        if let Some(c) = target {
                            v.set_cluster_open(c, false);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// The camera of the shown view.
    pub fn camera(&self) -> Option<Camera> {
        self.active_view().map(|v| *v.camera.camera())
    }

    /// Handles the open dialog's "Open" button: opens every path typed (one a line).
    pub fn submit_open_dialog(&mut self) {
        let Some(text) = self.open_dialog.take() else {
            return;
        };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            self.open_path(PathBuf::from(line));
        }
    }
}

/// The last path component, for tab titles.
pub fn title_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The keyboard shortcuts for the help overlay and README: (keys, what they do).
pub fn key_help() -> &'static [(&'static str, &'static str)] {
    &[
        ("Wheel / pinch", "zoom about the cursor"),
        ("Drag", "pan"),
        ("Arrow keys", "pan"),
        ("PageUp / PageDown, Ctrl + / Ctrl -", "zoom in / out"),
        ("F, double-click empty space", "fit the whole model"),
        ("Z", "zoom to the selection"),
        ("Click", "select a node (inspector on the right)"),
        (
            "Double-click a closed cluster, +",
            "open it (stays open at any zoom)",
        ),
        ("Double-click a node, -", "close the cluster holding it"),
        ("Ctrl F, /", "search names, op types, tensor names"),
        ("Enter (in search)", "fly to the first result"),
        ("Esc", "close overlay, then clear selection"),
        (
            "Ctrl O",
            "open a file by path (or drop files on the window)",
        ),
        ("Ctrl Tab, Ctrl W", "next tab, close tab"),
        ("?", "this help"),
    ]
}
