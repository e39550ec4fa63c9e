//! Everything the window shows, as plain data: tabs, each tab's view (camera, selection, hover,
//! expansion, search), background jobs and dialog state. Input arrives as [`Command`]s and pointer
//! calls in screen pixels, so the whole interaction is tested without a window (`tests/app_state.rs`);
//! the egui layer only translates events and draws.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use glam::DVec2;

use super::camera_ctl::CameraController;
use super::jobs::{JobProgress, Jobs};
use super::scene::{Scene, SceneInputs};
use super::search::{Search, SearchIndex, Target};
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

/// Which groups are expanded (drawn open) in a view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpandState {
    expanded: HashSet<GroupId>,
}

impl ExpandState {
    /// Whether `g` is expanded.
    pub fn is_expanded(&self, g: GroupId) -> bool {
        self.expanded.contains(&g)
    }

    /// Expands `g`.
    pub fn expand(&mut self, g: GroupId) {
        self.expanded.insert(g);
    }

    /// Collapses `g`.
    pub fn collapse(&mut self, g: GroupId) {
        self.expanded.remove(&g);
    }

    /// Flips `g`; returns whether it is now expanded.
    pub fn toggle(&mut self, g: GroupId) -> bool {
        if !self.expanded.remove(&g) {
            self.expanded.insert(g);
            true
        } else {
            false
        }
    }

    /// Expands every ancestor of `g` and `g` itself, so a node inside it becomes visible.
    pub fn reveal(&mut self, model: &Model, g: GroupId) {
        for a in model.hierarchy.ancestors(g) {
            self.expanded.insert(a);
        }
    }

    /// Collapses everything.
    pub fn collapse_all(&mut self) {
        self.expanded.clear();
    }

    /// The expanded groups (unordered).
    pub fn expanded(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.expanded.iter().copied()
    }

    /// How many groups are expanded.
    pub fn len(&self) -> usize {
        self.expanded.len()
    }

    /// Whether nothing is expanded.
    pub fn is_empty(&self) -> bool {
        self.expanded.is_empty()
    }
}

/// What a model needs to be shown, built on a background thread.
#[derive(Debug)]
pub struct Loaded {
    /// The model.
    pub model: Arc<Model>,
    /// Its search index.
    pub index: Arc<SearchIndex>,
    /// Its positions.
    pub scene: Scene,
}

impl Loaded {
    /// Builds the index and positions of a loaded model (call off the UI thread for big models).
    pub fn prepare(model: Model, progress: Option<&JobProgress>) -> Self {
        if let Some(p) = progress {
            p.set_stage("indexing names");
            p.set_fraction(0.6);
        }
        let index = Arc::new(SearchIndex::build(&model));
        if let Some(p) = progress {
            p.set_stage("placing nodes");
            p.set_fraction(0.8);
        }
        let scene = Scene::grid(&model);
        Loaded {
            model: Arc::new(model),
            index,
            scene,
        }
    }
}

/// One open model's view state.
#[derive(Debug)]
pub struct ModelView {
    /// The model.
    pub model: Arc<Model>,
    /// Positions, picking and the draw list.
    pub scene: Scene,
    /// The camera.
    pub camera: CameraController,
    /// The selected node.
    pub selected: Option<NodeId>,
    /// The node under the cursor.
    pub hovered: Option<NodeId>,
    /// Inputs and outputs of the selection.
    pub highlighted: Vec<NodeId>,
    /// Expanded groups.
    pub expanded: ExpandState,
    /// Search state.
    pub search: Search,
}

impl ModelView {
    /// A view of `loaded` in a viewport of `viewport` pixels, fitted to the whole model.
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
        }
    }

    /// Selects `node` (or clears the selection) and highlights its inputs and outputs.
    pub fn select(&mut self, node: Option<NodeId>) {
        let node = node.filter(|&n| (n as usize) < self.model.graph.nodes.len());
        self.selected = node;
        self.highlighted.clear();
        if let Some(n) = node {
            let mut set: HashSet<NodeId> = HashSet::new();
            for e in &self.model.graph.edges {
                if e.to == n && e.from != n {
                    set.insert(e.from);
                }
                if e.from == n && e.to != n {
                    set.insert(e.to);
                }
            }
            self.highlighted = set.into_iter().collect();
            self.highlighted.sort_unstable();
        }
    }

    /// Nodes feeding the selection and nodes it feeds (both sorted), from the graph's edges.
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
        }
    }

    /// Flies to show the whole model.
    pub fn fit_all(&mut self, now_s: f64) {
        self.camera
            .fly_to_bounds(self.scene.bounds(), MAX_FOCUS_ZOOM, now_s);
    }

    /// Flies to the selection and its neighbours; fits all when nothing is selected.
    pub fn zoom_to_selection(&mut self, now_s: f64) {
        let Some(sel) = self.selected else {
            self.fit_all(now_s);
            return;
        };
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

    /// Selects `node`, reveals its group and flies to it (search results, breadcrumbs, minimap).
    pub fn go_to_node(&mut self, node: NodeId, now_s: f64) {
        let Some(n) = self.model.graph.nodes.get(node as usize) else {
            return;
        };
        let group = n.group;
        let model = self.model.clone();
        self.expanded.reveal(&model, group);
        self.select(Some(node));
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
        let model = self.model.clone();
        self.expanded.reveal(&model, g);
        let r = self.scene.group_rect(&model, g);
        self.camera.fly_to_bounds(r, MAX_FOCUS_ZOOM, now_s);
    }

    /// The node under a screen point.
    pub fn pick(&self, screen: DVec2) -> Option<NodeId> {
        self.scene
            .pick(self.camera.camera().world_from_screen(screen))
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
        let n = self.pick(screen);
        self.select(n);
    }

    /// A double click: on empty space fits all; on a node toggles its group's expansion.
    pub fn double_click_at(&mut self, screen: DVec2, now_s: f64) {
        match self.pick(screen) {
            None => self.fit_all(now_s),
            Some(n) => {
                if let Some(node) = self.model.graph.nodes.get(n as usize)
                    && node.group != 0
                {
                    self.expanded.toggle(node.group);
                }
                self.select(Some(n));
            }
        }
    }

    /// Wheel or pinch: zooms by `factor` about a screen point.
    pub fn zoom_at(&mut self, screen: DVec2, factor: f64) {
        self.camera.zoom_about(screen, factor);
    }

    /// The group path of the selection (root first, root itself left out) for the breadcrumb.
    pub fn breadcrumb(&self) -> Vec<(GroupId, String)> {
        let Some(node) = self.selected.and_then(|n| self.model.graph.nodes.get(n as usize)) else {
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
    /// Arrow keys: pan by a fixed number of pixels.
    Pan(i8, i8),
    /// `PageUp` / `Ctrl +`: zoom in about the centre.
    ZoomIn,
    /// `PageDown` / `Ctrl -`: zoom out about the centre.
    ZoomOut,
    /// `+`: expand the selection's group.
    Expand,
    /// `-`: collapse the selection's group.
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
    /// The search box is shown (and should take focus when `focus_search` is set).
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
        let job = self.jobs.spawn(format!("Loading {title}"), move |progress| {
            progress.set_stage("reading and decoding");
            progress.set_fraction(0.1);
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

    /// Opens a tab showing an error (a file that could not even be started).
    pub fn open_error(&mut self, source: PathBuf, message: String) -> TabId {
        let title = title_of(&source);
        self.new_tab(title, source, TabContent::Failed { message })
    }

    /// Applies finished jobs; returns whether anything changed.
    pub fn poll_jobs(&mut self) -> bool {
        let done = self.jobs.poll();
        let changed = !done.is_empty();
        for f in done {
            self.apply_job(f.output, f.cancelled);
        }
        changed
    }

    /// Applies one job result (also used by `--bench-startup`, which waits for it).
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
            JobOutput::Exported(r) => self.messages.push(match r {
                Ok(p) => format!("Exported {}", p.display()),
                Err(e) => format!("Export failed: {e}"),
            }),
        }
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

    /// Closes tab `i` (cancelling its load when still running).
    pub fn close_tab(&mut self, i: usize) {
        if i >= self.tabs.len() {
            return;
        }
        let tab = self.tabs.remove(i);
        if let TabContent::Loading { job } = tab.content {
            self.jobs.cancel(job);
        }
        if self.active >= self.tabs.len() {
            self.active = self.tabs.len().saturating_sub(1);
        } else if self.active > i {
            self.active -= 1;
        }
    }

    /// Cancels the load behind tab `i`.
    pub fn cancel_tab(&mut self, i: usize) {
        if let Some(Tab {
            content: TabContent::Loading { job },
            ..
        }) = self.tabs.get(i)
        {
            self.jobs.cancel(*job);
        }
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
        self.active_view_mut()
            .is_some_and(|v| v.camera.tick(now_s))
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
                    Command::Pan(dx, dy) => v
                        .camera
                        .pan_pixels(DVec2::new(f64::from(dx), f64::from(dy)) * KEY_PAN_PX),
                    Command::ZoomIn => v.zoom_at(center, KEY_ZOOM),
                    Command::ZoomOut => v.zoom_at(center, 1.0 / KEY_ZOOM),
                    Command::Expand | Command::Collapse => {
                        let group = v
                            .selected
                            .and_then(|n| v.model.graph.nodes.get(n as usize))
                            .map(|n| n.group);
                        if let Some(g) = group.filter(|&g| g != 0) {
                            if cmd == Command::Expand {
                                v.expanded.expand(g);
                            } else {
                                v.expanded.collapse(g);
                            }
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

    /// Handles the open dialog's "Open" button: opens every path typed (separated by newlines).
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

/// Lists the keyboard shortcuts for the help overlay and README: (keys, what they do).
pub fn key_help() -> &'static [(&'static str, &'static str)] {
    &[
        ("Wheel / pinch", "zoom about the cursor"),
        ("Drag", "pan"),
        ("Arrow keys", "pan"),
        ("PageUp / PageDown, Ctrl + / Ctrl -", "zoom in / out"),
        ("F, double-click empty space", "fit the whole model"),
        ("Z", "zoom to the selection"),
        ("Click", "select a node (inspector on the right)"),
        ("Double-click a node, + / -", "expand / collapse its group"),
        ("Ctrl F, /", "search names, op types, tensor names"),
        ("Enter (in search)", "fly to the first result"),
        ("Esc", "close overlay, then clear selection"),
        ("Ctrl O", "open a file by path (or drop files on the window)"),
        ("Ctrl Tab, Ctrl W", "next tab, close tab"),
        ("?", "this help"),
    ]
}
