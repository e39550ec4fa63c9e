//! Everything the window shows, as plain data: tabs, each tab's view (camera, selection, hover,
//! expansion, search), background jobs and dialog state. Input arrives as [`Command`]s and pointer
//! calls in screen pixels, so the whole interaction is tested without a window (`tests/app_state.rs`);
//! the egui layer only translates events and draws.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use glam::DVec2;

use super::anomalies::{OverlayValues, Scan};
use super::camera_ctl::CameraController;
use super::jobs::{JobProgress, Jobs};
use super::matrix::Matrix;
use super::scene::{Picked, SceneInputs, ViewScene};
use super::search::{Search, SearchIndex, Target};
use crate::graph::ClusterId;
use crate::model::{GroupId, Model, NodeId};
use crate::stats::cache::StatsCache;
use crate::stats::overlay::Figure;
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

/// State of a view's anomaly scan.
#[derive(Debug, Default)]
pub struct AnomalyState {
    /// The running scan job, if any.
    pub job: Option<u64>,
    /// The last finished scan.
    pub scan: Option<Arc<Scan>>,
}

/// Which matrix a view shows: (scene id, scope cluster). A new layout or scope builds a new one.
pub type MatrixKey = (u64, ClusterId);

/// State of a view's matrix.
#[derive(Debug, Default)]
pub struct MatrixState {
    /// The cluster whose nodes the matrix shows (0: the whole model).
    pub scope: ClusterId,
    /// The last built matrix and what it was built for.
    pub built: Option<(MatrixKey, Arc<Matrix>)>,
    /// The running build job and what it builds.
    pub job: Option<(u64, MatrixKey)>,
}

impl MatrixState {
    /// The matrix, when built for the current scene and scope.
    pub fn current(&self, scene_id: u64) -> Option<&Arc<Matrix>> {
        self.built
            .as_ref()
            .filter(|(k, _)| *k == (scene_id, self.scope))
            .map(|(_, m)| m)
    }
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

/// A comparison of two checkpoints shown in a view: the view's model is
/// [`crate::stats::diff::delta_model`] of A and B.
#[derive(Debug)]
pub struct Compared {
    /// What changed, tensor by tensor.
    pub diff: crate::stats::diff::ModelDiff,
    /// Per node, its change on the overlay's 0..=1 scale.
    pub overlay: Arc<crate::lod::NodeOverlay>,
    /// Per tensor of A (and of the view's model), its entry in `diff.tensors`.
    index: std::collections::HashMap<crate::model::TensorId, usize>,
    /// Per tensor of A, the node that owns it (worked out once, not every frame of the panel).
    owners: Vec<Option<NodeId>>,
}

impl Compared {
    /// A comparison of `a` with another checkpoint, ready to show.
    pub fn new(a: &Model, diff: crate::stats::diff::ModelDiff) -> Self {
        let overlay = Arc::new(crate::stats::diff::change_overlay(a, &diff).into());
        let index = diff
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.tensor_a, i))
            .collect();
        Compared {
            diff,
            overlay,
            index,
            owners: super::anomalies::tensor_owners(a),
        }
    }

    /// The node owning tensor `t` of the view's model.
    pub fn owner(&self, t: crate::model::TensorId) -> Option<NodeId> {
        self.owners.get(t as usize).copied().flatten()
    }

    /// What changed in tensor `t` of the view's model, when it was compared.
    pub fn tensor(&self, t: crate::model::TensorId) -> Option<&crate::stats::diff::TensorDiff> {
        self.diff.tensors.get(*self.index.get(&t)?)
    }
}

/// How a comparison job gets its first model: already open, or read from a file.
type OpenA = Box<dyn FnOnce(&JobProgress) -> Result<Arc<Model>, String> + Send>;

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
    /// The anomaly scan.
    pub anomalies: AnomalyState,
    /// The matrix view.
    pub matrix: MatrixState,
    /// The figure colouring the nodes (none: op colours), with its per-node values.
    pub overlay: Option<(Figure, OverlayValues)>,
    /// When this view shows what changed between two checkpoints (File → Compare with…): the
    /// comparison, whose per-node change colours the nodes.
    pub diff: Option<Arc<Compared>>,
    /// Values read from a node data file (File → Colour by node data…): its name and the values.
    pub node_data: Option<Arc<(String, crate::stats::node_data::NodeData)>>,
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
            anomalies: AnomalyState::default(),
            matrix: MatrixState::default(),
            overlay: None,
            diff: None,
            node_data: None,
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
            overlay: self.overlay.as_ref().map(|(_, o)| o.clone()),
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

    /// The anomaly panel's click on finding `i`: selects the node owning its tensor and flies to it
    /// and its neighbours.
    /// Returns the node, or `None` when no scan is finished or no node owns the tensor.
    pub fn go_to_finding(&mut self, i: usize, now_s: f64) -> Option<NodeId> {
        let node = self.anomalies.scan.as_ref()?.findings.get(i)?.node?;
        self.go_to_node(node, now_s);
        // Show the node with its neighbours rather than one node filling the screen.
        self.zoom_to_selection(now_s);
        Some(node)
    }

    /// Colours nodes by `figure` (or by op again with `None`); needs a finished anomaly scan for
    /// anything but `None`. Returns whether the overlay is shown.
    pub fn set_color_by(&mut self, figure: Option<Figure>) -> bool {
        if figure == Some(Figure::NodeData) {
            let Some(d) = &self.node_data else {
                return false;
            };
            self.overlay = Some((Figure::NodeData, OverlayValues(Arc::new(d.1.overlay()))));
            return true;
        }
        if figure == Some(Figure::Change) {
            let Some(d) = &self.diff else {
                return false;
            };
            self.overlay = Some((Figure::Change, OverlayValues(d.overlay.clone())));
            return true;
        }
        let (Some(f), Some(scan)) = (figure, self.anomalies.scan.as_ref()) else {
            self.overlay = None;
            return false;
        };
        if self.overlay.as_ref().is_some_and(|(g, _)| *g == f) {
            return true;
        }
        let values = super::anomalies::overlay_values(&scan.figures, f);
        self.overlay = Some((f, OverlayValues(Arc::new(values.into()))));
        true
    }

    /// Reads a node data file for this view's model and colours the nodes by it; returns what to
    /// tell the user (what did not match), or the error naming the file.
    pub fn load_node_data(&mut self, path: &Path) -> Result<Vec<String>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = path.display().to_string();
        let data = crate::stats::node_data::parse(&text, &file, &self.model)?;
        let notes = data.notes.clone();
        self.node_data = Some(Arc::new((title_of(path), data)));
        self.overlay = None;
        self.set_color_by(Some(Figure::NodeData));
        Ok(notes)
    }

    /// The matrix of the current scope, when built for the current layout.
    pub fn current_matrix(&self) -> Option<Arc<Matrix>> {
        self.matrix.current(self.scene.id()).cloned()
    }

    /// Shows the matrix of cluster `scope` (0: the whole model); built in the background.
    pub fn set_matrix_scope(&mut self, scope: ClusterId) {
        self.matrix.scope = scope;
    }

    /// The matrix scope that shows the selection's innermost cluster (the whole model without one).
    pub fn selection_scope(&self) -> ClusterId {
        self.selected
            .and_then(|n| self.innermost_cluster(n))
            .unwrap_or(0)
    }

    /// A click on matrix cell (`row`, `col`): selects one edge's producer (row), highlights the
    /// consumer (column) and flies to show both. Returns the edge, or `None` for an empty cell.
    pub fn matrix_click(&mut self, row: usize, col: usize, now_s: f64) -> Option<(NodeId, NodeId)> {
        let m = self.current_matrix()?;
        let (from, to) = m.edge_in_cell(&self.model, row, col)?;
        self.go_to_node(from, now_s);
        self.highlighted = vec![to];
        // Frame both ends of the edge.
        self.zoom_to_selection(now_s);
        Some((from, to))
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
    /// A comparison of two checkpoints finished (or failed, naming the file and the problem).
    Compared {
        /// The tab it is for.
        tab: TabId,
        /// The model of B − A with its comparison, or what went wrong.
        result: Result<Box<(Loaded, Compared)>, String>,
    },
    /// A PNG export finished.
    Exported(Result<PathBuf, String>),
    /// An anomaly scan finished.
    Anomalies {
        /// The tab it is for.
        tab: TabId,
        /// What it found.
        scan: Box<Scan>,
    },
    /// A matrix finished building.
    Matrix {
        /// The tab it is for.
        tab: TabId,
        /// What it was built for.
        key: MatrixKey,
        /// The matrix.
        matrix: Box<Matrix>,
    },
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
    /// `A`: show or hide the anomaly panel (starting the scan the first time).
    Anomalies,
    /// `M`: show or hide the matrix view.
    Matrix,
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
    /// The text of the compare-with dialog, when shown.
    pub compare_dialog: Option<String>,
    /// The text of the node data dialog, when shown.
    pub node_data_dialog: Option<String>,
    /// A node data file to apply to a tab once it has loaded (`modelmap FILE --node-data D`).
    pub pending_node_data: Option<(TabId, PathBuf)>,
    /// Messages for the status line (newest last), e.g. export results.
    pub messages: Vec<String>,
    /// A training log opened as a file (`modelmap runs/`, a drop, the open dialog), for the
    /// training window to show; taken by the UI.
    pub pending_training: Option<PathBuf>,
    /// The anomaly panel is shown.
    pub show_anomalies: bool,
    /// The matrix view is shown.
    pub show_matrix: bool,
    /// Where anomaly scans cache statistics (the window uses the user's cache; tests none).
    pub stats_cache: Option<StatsCache>,
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
            compare_dialog: None,
            node_data_dialog: None,
            pending_node_data: None,
            messages: Vec::new(),
            pending_training: None,
            show_anomalies: false,
            show_matrix: false,
            stats_cache: None,
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

    /// Opens what the user named: a training log (event files, a log folder, CSV/JSONL) goes
    /// to the training window, anything else to a new tab ([`Self::open_path`]).
    pub fn open_any(&mut self, path: PathBuf) {
        if crate::training::looks_like_logs(&path) {
            self.pending_training = Some(path);
        } else {
            self.open_path(path);
        }
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
                // Cancelling stops the decode at its next checkpoint, not only its result.
                let result = crate::load::open_with(&p, &|| progress.is_cancelled())
                    .map(|model| Box::new(Loaded::prepare(model, Some(progress))))
                    .map_err(|e| e.to_string());
                JobOutput::Loaded { tab: id, result }
            });
        self.new_tab(title, path, TabContent::Loading { job })
    }

    /// Opens the model graph a training run logged (TensorBoard's Graphs) in a new tab, read in
    /// the background from where it lies in the event file.
    pub fn open_logged_graph(&mut self, run: &str, graph: &crate::training::GraphEntry) -> TabId {
        let title = format!("{run} · graph");
        let id = self.next_tab;
        let g = graph.clone();
        let job = self
            .jobs
            .spawn(format!("Loading {title}"), move |progress| {
                progress.set("reading and decoding", 0.1);
                let opened = match g.kind {
                    crate::training::GraphKind::GraphDef => {
                        crate::load::open_graph_in(&g.file, g.offset, g.len)
                    }
                    crate::training::GraphKind::KerasConfig => {
                        crate::load::open_keras_config_in(&g.file, g.offset, g.len)
                    }
                };
                let result = opened
                    .map(|model| Box::new(Loaded::prepare(model, Some(progress))))
                    .map_err(|e| e.to_string());
                JobOutput::Loaded { tab: id, result }
            });
        self.new_tab(title, graph.file.to_path_buf(), TabContent::Loading { job })
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

    /// Compares the shown model (A) with the checkpoint at `path` (B) in the background, then shows
    /// B − A in a new tab: nodes coloured by how much their weights changed, weights in place and
    /// statistics of the change itself. Returns the new tab, or `None` when no model is shown.
    pub fn compare_with(&mut self, path: PathBuf) -> Option<TabId> {
        let a = self.active_view()?.model.clone();
        let a_title = self
            .active_tab()
            .map(|t| t.title.clone())
            .unwrap_or_default();
        Some(self.spawn_compare(a_title, Box::new(move |_| Ok(a)), path))
    }

    /// [`Self::compare_with`] for two files, neither open yet (`modelmap A --diff B`).
    pub fn compare_files(&mut self, a: PathBuf, b: PathBuf) -> TabId {
        let a_title = title_of(&a);
        let open_a: OpenA = Box::new(move |progress| {
            progress.set("reading the first checkpoint", 0.02);
            crate::load::open_with(&a, &|| progress.is_cancelled())
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        self.spawn_compare(a_title, open_a, b)
    }

    fn spawn_compare(&mut self, a_title: String, open_a: OpenA, path: PathBuf) -> TabId {
        let title = format!("{} − {a_title}", title_of(&path));
        let id = self.next_tab;
        let p = path.clone();
        let job = self
            .jobs
            .spawn(format!("Comparing {title}"), move |progress| {
                let result = open_a(progress).and_then(|a| {
                    progress.set("reading the second checkpoint", 0.05);
                    let b = crate::load::open_with(&p, &|| progress.is_cancelled())
                        .map_err(|e| e.to_string())?;
                    let b = crate::stats::diff::counterpart(&a, b)?;
                    progress.set("comparing every tensor", 0.2);
                    let diff = crate::stats::diff::diff_models(
                        &a,
                        &b,
                        &|done, total| {
                            progress.set_fraction(0.2 + 0.6 * done as f32 / total.max(1) as f32)
                        },
                        &|| progress.is_cancelled(),
                    );
                    let delta = crate::stats::diff::delta_model(&a, &b, &diff);
                    let compared = Compared::new(&a, diff);
                    let loaded = Loaded::prepare(delta, Some(progress));
                    Ok(Box::new((loaded, compared)))
                });
                JobOutput::Compared { tab: id, result }
            });
        self.new_tab(title, path, TabContent::Loading { job })
    }

    /// Colours the shown view by a node data file (File → Colour by node data…); what did not
    /// match, or the error, goes to the status line.
    pub fn apply_node_data(&mut self, path: &Path) {
        let Some(v) = self.active_view_mut() else {
            return;
        };
        let said = match v.load_node_data(path) {
            Ok(notes) => {
                let mut said = vec![format!("Colouring by {}", path.display())];
                said.extend(notes);
                said
            }
            Err(e) => vec![e],
        };
        self.messages.extend(said);
    }

    /// Starts the anomaly scan of the shown view, unless one ran or is running.
    pub fn scan_anomalies(&mut self) {
        let cache = self.stats_cache.clone();
        let Some(t) = self.tabs.get_mut(self.active) else {
            return;
        };
        let TabContent::Ready(v) = &mut t.content else {
            return;
        };
        if v.anomalies.job.is_some() || v.anomalies.scan.is_some() {
            return;
        }
        let tab = t.id;
        let model = v.model.clone();
        let job = self
            .jobs
            .spawn(format!("Scanning {} for anomalies", t.title), move |p| {
                let scan = super::anomalies::scan(&model, cache.as_ref(), p);
                JobOutput::Anomalies {
                    tab,
                    scan: Box::new(scan),
                }
            });
        v.anomalies.job = Some(job);
    }

    /// Starts building the shown view's matrix when the matrix view is open and the layout or scope
    /// changed (one build at a time per view).
    fn pump_matrix(&mut self) {
        if !self.show_matrix {
            return;
        }
        let Some(t) = self.tabs.get_mut(self.active) else {
            return;
        };
        let TabContent::Ready(v) = &mut t.content else {
            return;
        };
        let key = (v.scene.id(), v.matrix.scope);
        let Some(layout) = v.scene.laid().map(|s| s.layout.clone()) else {
            return;
        };
        if v.matrix.job.is_some() || v.matrix.built.as_ref().is_some_and(|(k, _)| *k == key) {
            return;
        }
        let tab = t.id;
        let model = v.model.clone();
        let scope = key.1;
        let job = self
            .jobs
            .spawn(format!("Building the matrix of {}", t.title), move |p| {
                p.set("ordering and binning edges", 0.1);
                let matrix = super::matrix::build_matrix(&model, &layout, scope);
                JobOutput::Matrix {
                    tab,
                    key,
                    matrix: Box::new(matrix),
                }
            });
        v.matrix.job = Some((job, key));
    }

    /// Starts the layouts views ask for (one running job per view; a newer request waits for it).
    pub fn pump(&mut self) {
        self.pump_matrix();
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
                        let mut v = ModelView::new(*loaded, viewport);
                        if let Some((_, path)) = self.pending_node_data.take_if(|(t, _)| *t == tab)
                        {
                            match v.load_node_data(&path) {
                                Ok(notes) => self.messages.extend(notes),
                                Err(e) => self.messages.push(e),
                            }
                        }
                        TabContent::Ready(Box::new(v))
                    }
                    (false, Err(message)) => TabContent::Failed { message },
                };
            }
            JobOutput::Compared { tab, result } => {
                let viewport = self.viewport;
                let Some(t) = self.tabs.iter_mut().find(|t| t.id == tab) else {
                    return;
                };
                t.content = match (cancelled, result) {
                    (true, _) => TabContent::Failed {
                        message: format!("{}: comparison cancelled", t.source.display()),
                    },
                    (false, Ok(both)) => {
                        let (loaded, compared) = *both;
                        let mut v = ModelView::new(loaded, viewport);
                        v.diff = Some(Arc::new(compared));
                        v.set_color_by(Some(Figure::Change));
                        TabContent::Ready(Box::new(v))
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
            JobOutput::Anomalies { tab, scan } => {
                if let Some(v) = self.view_of_tab(tab) {
                    v.anomalies.job = None;
                    if !cancelled {
                        v.anomalies.scan = Some(Arc::from(scan));
                        // Recompute an overlay chosen before (its figures may be new).
                        let f = v.overlay.take().map(|(f, _)| f);
                        v.set_color_by(f);
                    }
                }
            }
            JobOutput::Matrix { tab, key, matrix } => {
                if let Some(v) = self.view_of_tab(tab) {
                    v.matrix.job = None;
                    if !cancelled {
                        v.matrix.built = Some((key, Arc::from(matrix)));
                    }
                }
            }
        }
    }

    fn view_of_tab(&mut self, tab: TabId) -> Option<&mut ModelView> {
        match &mut self.tabs.iter_mut().find(|t| t.id == tab)?.content {
            TabContent::Ready(v) => Some(v),
            _ => None,
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
                let jobs = [v.layout.job, v.anomalies.job, v.matrix.job.map(|(j, _)| j)];
                for job in jobs.into_iter().flatten() {
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
            Command::Anomalies => {
                self.show_anomalies = !self.show_anomalies;
                if self.show_anomalies {
                    self.scan_anomalies();
                }
            }
            Command::Matrix => {
                self.show_matrix = !self.show_matrix;
                self.pump();
            }
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
            self.open_any(PathBuf::from(line));
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
        (
            "A",
            "anomaly panel: NaN/Inf, dead rows, outlier norms; click flies to the node",
        ),
        (
            "M",
            "matrix view: adjacency matrix in cluster order; click selects an edge",
        ),
        ("?", "this help"),
    ]
}
