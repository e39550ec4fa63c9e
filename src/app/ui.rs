//! The egui panels: menu and tabs on top, breadcrumb, search on the left, inspector on the right,
//! status and progress at the bottom, the graph canvas in the middle with the minimap over it, and
//! the help, open and export dialogs. Everything here translates egui input into
//! [`AppState`] calls and draws state; no decision lives here that a test would need.

use std::path::PathBuf;

use egui::{Align2, Color32, Key, Pos2, Sense, Stroke, Vec2};
use glam::DVec2;

use super::canvas::GraphPaint;
use super::scene::Picked;
use super::search::Target;
use super::state::{AppState, Command, ModelView, TabContent, key_help};
use crate::model::{
    AttrValue, Model, NodeId, NodeKind, TensorData, format_shape, group_digits, human_bytes,
};
use crate::stats::overlay::Figure;

/// Minimap size in points.
const MINIMAP: Vec2 = Vec2::new(220.0, 150.0);
/// Zoom per point of wheel movement (one wheel line is 50 points in egui: ×1.22).
const WHEEL_ZOOM_PER_POINT: f64 = 0.004;

/// Tensors up to this many elements get statistics computed when selected (a few ms); larger ones
/// wait for the background statistics pass.
const INLINE_STATS_MAX: u64 = 4_000_000;

/// UI-only state that is not worth testing: texture caches, texts being edited.
#[derive(Default)]
pub struct UiCache {
    minimap: Option<(u64, egui::TextureHandle)>,
    /// Statistics of tensors already shown, by (model address, tensor id).
    stats: std::collections::HashMap<(usize, u32), Result<crate::stats::TensorStats, String>>,
    /// The training-curves window is open.
    pub show_training: bool,
    /// The log folder typed in the training window.
    pub training_path: String,
    /// The training panel.
    pub training: super::training_panel::TrainingPanelState,
    /// The GPU adapter, shown in the status line.
    pub adapter_label: String,
    /// The canvas rectangle (points) and pixels per point of the last frame: floating windows'
    /// rectangles become viewport pixels through it.
    canvas: Option<(egui::Rect, f32)>,
    /// The search field's text.
    pub search_text: String,
    /// Milliseconds the last frame took on the CPU.
    pub last_frame_ms: f32,
    /// The graph canvas's background this frame (sRGB), if a canvas is shown. The window clears
    /// the frame to it instead of egui painting a canvas-sized rectangle: on lavapipe that one
    /// rectangle cost 40 ms of a 72 ms frame at 1280×800.
    pub canvas_background: Option<[u8; 4]>,
    /// Textures of the anomaly and matrix windows.
    pub panels: super::panels::PanelCache,
}

/// What the frame asks the window to do.
#[derive(Default, Debug)]
pub struct FrameRequests {
    /// Close the window.
    pub quit: bool,
}

/// Builds the whole UI for one frame.
pub fn frame_ui(
    ui: &mut egui::Ui,
    app: &mut AppState,
    cache: &mut UiCache,
    now_s: f64,
) -> FrameRequests {
    let mut req = FrameRequests::default();
    if let Some(path) = app.pending_training.take() {
        cache.training_path = path.display().to_string();
        open_training(cache, path);
        cache.show_training = true;
    }
    keyboard(ui.ctx(), app, now_s);
    top_ui(ui, app, cache, &mut req);
    status_ui(ui, app, cache);
    if app.show_search {
        search_ui(ui, app, cache, now_s);
    }
    inspector_ui(ui, app, cache, now_s);
    egui::CentralPanel::no_frame().show(ui, |ui| central_ui(ui, app, cache, now_s));
    dialogs_ui(ui.ctx(), app);
    training_window_ui(ui.ctx(), cache);
    if let Some((run, graph)) = cache.training.open_graph.take() {
        app.open_logged_graph(&run, &graph);
    }
    let anomalies = super::panels::anomaly_window_ui(ui.ctx(), app, now_s);
    let matrix = super::panels::matrix_window_ui(ui.ctx(), app, &mut cache.panels, now_s);
    // Flights (a click on a finding, fit, zoom to the selection) aim beside these windows.
    let obstruction = cache.canvas.and_then(|(canvas, ppp)| {
        let covered = [anomalies, matrix]
            .into_iter()
            .flatten()
            .map(|r| r.intersect(canvas))
            .filter(|r| r.is_positive())
            .reduce(|a, b| a.union(b))?;
        let px = |p: Pos2| {
            DVec2::new(
                f64::from((p.x - canvas.min.x) * ppp),
                f64::from((p.y - canvas.min.y) * ppp),
            )
        };
        Some((px(covered.min), px(covered.max)))
    });
    if let Some(v) = app.active_view_mut() {
        v.camera.set_obstruction(obstruction);
    }
    // A scope picked in the matrix window starts its build now rather than at the next event.
    app.pump();
    req
}

/// Loads a training log into the training window (TensorBoard's default smoothing if unset).
fn open_training(cache: &mut UiCache, path: PathBuf) {
    if cache.training.smoothing == 0.0 {
        cache.training.smoothing = 0.6;
    }
    cache.training.open(path);
}

fn training_window_ui(ctx: &egui::Context, cache: &mut UiCache) {
    if !cache.show_training {
        return;
    }
    let mut open = true;
    // Most of the screen the first time it opens: curves want room.
    let screen = ctx.content_rect();
    let size = egui::vec2(
        (screen.width() * 0.85).clamp(480.0, 1200.0),
        (screen.height() * 0.8).clamp(360.0, 800.0),
    );
    egui::Window::new("Training curves")
        .open(&mut open)
        .default_size(size)
        .default_pos(screen.center() - size * 0.5)
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                ui.label("Log folder:");
                ui.add(
                    egui::TextEdit::singleline(&mut cache.training_path)
                        .hint_text("runs/, wandb/, mlruns/, mlflow.db, a CSV or JSONL log")
                        .desired_width(360.0),
                );
                if ui.button("Open").clicked() && !cache.training_path.trim().is_empty() {
                    let path = PathBuf::from(cache.training_path.trim());
                    open_training(cache, path);
                }
            });
            ui.separator();
            super::training_panel::training_ui(ui, &mut cache.training);
        });
    cache.show_training &= open;
}

fn keyboard(ctx: &egui::Context, app: &mut AppState, now_s: f64) {
    let typing = ctx.egui_wants_keyboard_input();
    let mut cmds: Vec<Command> = Vec::new();
    ctx.input(|i| {
        let ctrl = i.modifiers.command;
        if ctrl && i.key_pressed(Key::F) {
            cmds.push(Command::Search);
        }
        if ctrl && i.key_pressed(Key::O) {
            cmds.push(Command::Open);
        }
        if ctrl && i.key_pressed(Key::W) {
            cmds.push(Command::CloseTab);
        }
        if ctrl && i.key_pressed(Key::Tab) {
            cmds.push(Command::NextTab);
        }
        if i.key_pressed(Key::Escape) {
            cmds.push(Command::Escape);
        }
        if typing || ctrl {
            if ctrl && (i.key_pressed(Key::Plus) || i.key_pressed(Key::Equals)) {
                cmds.push(Command::ZoomIn);
            }
            if ctrl && i.key_pressed(Key::Minus) {
                cmds.push(Command::ZoomOut);
            }
            return;
        }
        let keys = [
            (Key::F, Command::FitAll),
            (Key::Z, Command::ZoomToSelection),
            (Key::ArrowLeft, Command::Pan(-1, 0)),
            (Key::ArrowRight, Command::Pan(1, 0)),
            (Key::ArrowUp, Command::Pan(0, -1)),
            (Key::ArrowDown, Command::Pan(0, 1)),
            (Key::PageUp, Command::ZoomIn),
            (Key::PageDown, Command::ZoomOut),
            (Key::A, Command::Anomalies),
            (Key::M, Command::Matrix),
        ];
        for (k, c) in keys {
            if i.key_pressed(k) {
                cmds.push(c);
            }
        }
        // Characters whose key differs by layout arrive as text.
        for e in &i.events {
            if let egui::Event::Text(t) = e {
                match t.as_str() {
                    "?" => cmds.push(Command::Help),
                    "/" => cmds.push(Command::Search),
                    "+" => cmds.push(Command::Expand),
                    "-" => cmds.push(Command::Collapse),
                    _ => {}
                }
            }
        }
    });
    for c in cmds {
        app.command(c, now_s);
    }
}

fn top_ui(ui: &mut egui::Ui, app: &mut AppState, cache: &mut UiCache, req: &mut FrameRequests) {
    let mut show_training = false;
    egui::Panel::top("top").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open… (Ctrl O)").clicked() {
                    app.command(Command::Open, 0.0);
                    ui.close();
                }
                let can_export = app.active_view().is_some();
                if ui
                    .add_enabled(can_export, egui::Button::new("Compare with…"))
                    .on_hover_text(
                        "another checkpoint of this model: a new tab shows what changed (B − A)",
                    )
                    .clicked()
                {
                    app.compare_dialog = Some(String::new());
                    ui.close();
                }
                if ui
                    .add_enabled(can_export, egui::Button::new("Colour by node data…"))
                    .on_hover_text(
                        "a Model Explorer node data JSON: per-node values (latencies, errors…) \
                         colour the graph",
                    )
                    .clicked()
                {
                    app.node_data_dialog = Some(String::new());
                    ui.close();
                }
                if ui
                    .add_enabled(can_export, egui::Button::new("Export PNG…"))
                    .clicked()
                {
                    let stem = app
                        .active_tab()
                        .map(|t| t.title.clone())
                        .unwrap_or_default();
                    app.export_dialog = Some(format!("{}.png", stem.replace(['/', ' '], "_")));
                    ui.close();
                }
                if ui.button("Close tab (Ctrl W)").clicked() {
                    app.command(Command::CloseTab, 0.0);
                    ui.close();
                }
                if ui.button("Quit").clicked() {
                    req.quit = true;
                    ui.close();
                }
            });
            ui.menu_button("View", |ui| {
                for (label, cmd) in [
                    ("Fit all (F)", Command::FitAll),
                    ("Zoom to selection (Z)", Command::ZoomToSelection),
                    ("Search (Ctrl F)", Command::Search),
                    ("Anomalies… (A)", Command::Anomalies),
                    ("Matrix view… (M)", Command::Matrix),
                    ("Keys (?)", Command::Help),
                ] {
                    if ui.button(label).clicked() {
                        app.command(cmd, ui.input(|i| i.time));
                        ui.close();
                    }
                }
                if ui.button("Training curves…").clicked() {
                    show_training = true;
                    ui.close();
                }
            });
            ui.separator();
            // Tabs.
            let mut close: Option<usize> = None;
            for (i, t) in app.tabs.iter().enumerate() {
                let marker = match t.content {
                    TabContent::Loading { .. } => " (loading)",
                    TabContent::Failed { .. } => " (error)",
                    TabContent::Ready(_) => "",
                };
                let r = ui
                    .selectable_label(i == app.active, format!("{}{marker}", t.title))
                    .on_hover_text(t.source.display().to_string());
                if r.clicked() {
                    app.active = i;
                }
                if ui.small_button("×").on_hover_text("Close tab").clicked() {
                    close = Some(i);
                }
            }
            if let Some(i) = close {
                app.close_tab(i);
            }
        });
        breadcrumb_ui(ui, app);
    });
    cache.show_training |= show_training;
}

fn breadcrumb_ui(ui: &mut egui::Ui, app: &mut AppState) {
    let now = ui.input(|i| i.time);
    let Some(v) = app.active_view_mut() else {
        return;
    };
    let crumbs = v.breadcrumb();
    ui.horizontal(|ui| {
        if ui
            .link("whole model")
            .on_hover_text("fit all (F)")
            .clicked()
        {
            v.fit_all(now);
        }
        for (g, name) in crumbs {
            ui.weak("›");
            if ui.link(name).clicked() {
                v.go_to_group(g, now);
            }
        }
        if let Some(n) = v.selected.and_then(|n| v.model.graph.nodes.get(n as usize)) {
            ui.weak("›");
            ui.strong(super::scene::node_label(&n.name, &n.op));
        }
    });
}

fn status_ui(ui: &mut egui::Ui, app: &mut AppState, cache: &UiCache) {
    egui::Panel::bottom("status").show(ui, |ui| {
        let mut cancel: Option<u64> = None;
        for j in app.jobs.running() {
            ui.horizontal(|ui| {
                let f = j.progress.fraction();
                let stage = j.progress.stage();
                let bar = egui::ProgressBar::new(f)
                    .desired_width(240.0)
                    .show_percentage()
                    .animate(true);
                ui.add(bar);
                ui.label(format!("{} — {stage}", j.label));
                if ui.button("Cancel").clicked() {
                    cancel = Some(j.id);
                }
            });
        }
        if let Some(id) = cancel {
            app.cancel_job(id);
        }
        ui.horizontal(|ui| {
            if let Some(v) = app.active_view() {
                let m = &v.model;
                ui.label(format!(
                    "{} nodes · {} edges · {} parameters",
                    group_digits(m.graph.nodes.len() as u64),
                    group_digits(m.graph.edges.len() as u64),
                    group_digits(m.parameter_count())
                ));
                ui.separator();
                let z = v.camera.camera().zoom;
                ui.label(if z >= 0.01 {
                    format!("zoom {z:.3}")
                } else {
                    format!("zoom {z:.2e}")
                });
                if v.scene.is_placeholder() {
                    ui.separator();
                    ui.weak("grid placeholder until the layout is ready");
                }
                if let Some(e) = &v.layout.error {
                    ui.separator();
                    ui.colored_label(Color32::from_rgb(200, 60, 40), e);
                }
            }
            if let Some(m) = app.messages.last() {
                ui.separator();
                ui.label(m);
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.weak(format!(
                    "{} · {:.1} ms",
                    cache.adapter_label, cache.last_frame_ms
                ));
            });
        });
    });
}

fn search_ui(ui: &mut egui::Ui, app: &mut AppState, cache: &mut UiCache, now_s: f64) {
    let focus = std::mem::take(&mut app.focus_search);
    let mut close = false;
    egui::Panel::left("search")
        .resizable(true)
        .default_size(300.0)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("Search");
                if ui.small_button("×").clicked() {
                    close = true;
                }
            });
            let edit = ui.add(
                egui::TextEdit::singleline(&mut cache.search_text)
                    .hint_text("name, op type or tensor name")
                    .desired_width(f32::INFINITY),
            );
            if focus {
                edit.request_focus();
            }
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            let Some(v) = app.active_view_mut() else {
                ui.weak("no model open");
                return;
            };
            v.search.set_query(&cache.search_text);
            if enter && let Some(h) = v.search.results().first().copied() {
                v.go_to_target(h.target, now_s);
            }
            let total = v.search.total();
            if !cache.search_text.trim().is_empty() {
                ui.weak(format!(
                    "{} results{}",
                    group_digits(total as u64),
                    if total > v.search.results().len() {
                        format!(", first {} shown", v.search.results().len())
                    } else {
                        String::new()
                    }
                ));
            }
            let ops: Vec<(String, usize)> = v
                .search
                .matching_ops()
                .into_iter()
                .take(8)
                .map(|(o, n)| (o.to_string(), n))
                .collect();
            for (op, n) in ops {
                ui.weak(format!("op {op} × {}", group_digits(n as u64)));
            }
            ui.separator();
            let hits = v.search.results().to_vec();
            let row_h = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
            let mut go: Option<Target> = None;
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show_rows(ui, row_h, hits.len(), |ui, range| {
                    for h in hits.get(range).unwrap_or(&[]) {
                        let text = hit_text(&v.model, h.target);
                        let selected = h.target.node().is_some() && h.target.node() == v.selected;
                        if ui.selectable_label(selected, text).clicked() {
                            go = Some(h.target);
                        }
                    }
                });
            if let Some(t) = go {
                v.go_to_target(t, now_s);
            }
        });
    if close {
        app.show_search = false;
    }
}

fn hit_text(model: &Model, t: Target) -> String {
    match t {
        Target::Node(n) | Target::NodeByOp(n) => model
            .graph
            .nodes
            .get(n as usize)
            .map(|x| format!("{}  [{}]", x.name, x.op))
            .unwrap_or_default(),
        Target::Tensor { tensor, .. } => model
            .tensors
            .get(tensor as usize)
            .map(|x| format!("◆ {}  {:?}", x.name, x.shape))
            .unwrap_or_default(),
    }
}

fn inspector_ui(ui: &mut egui::Ui, app: &mut AppState, cache: &mut UiCache, now_s: f64) {
    let Some(v) = app.active_view_mut() else {
        return;
    };
    egui::Panel::right("inspector")
        .resizable(true)
        .default_size(340.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    if let Some(n) = v.selected {
                        node_inspector_ui(ui, v, cache, n, now_s);
                    } else {
                        if let Some(d) = v.diff.clone() {
                            changes_ui(ui, v, &d, now_s);
                            ui.separator();
                        }
                        if let Some(d) = v.node_data.clone() {
                            node_data_ui(ui, v, &d);
                            ui.separator();
                        }
                        model_summary_ui(ui, &v.model);
                    }
                });
        });
}

/// The node data colouring the view: its file, its range, and a switch back to op colours.
fn node_data_ui(
    ui: &mut egui::Ui,
    v: &mut ModelView,
    d: &(String, crate::stats::node_data::NodeData),
) {
    ui.heading("Node data");
    let (lo, hi) = d.1.range;
    ui.label(format!(
        "{}: {} nodes with values, {lo} to {hi}",
        d.0,
        group_digits(d.1.with_values as u64)
    ));
    for n in &d.1.notes {
        ui.weak(n);
    }
    let on = v
        .overlay
        .as_ref()
        .is_some_and(|(f, _)| *f == Figure::NodeData);
    let mut colour = on;
    let scale = if d.1.fills.is_some() {
        "its own colours"
    } else {
        "blue: least, red: most"
    };
    ui.checkbox(&mut colour, format!("colour nodes by it ({scale})"));
    if colour != on {
        v.set_color_by(colour.then_some(Figure::NodeData));
    }
    if let Some(legend) = &d.1.legend {
        node_data_legend_ui(ui, legend);
    }
}

/// A node data file's own colours: its gradient as a bar from its smallest to its largest value,
/// or its thresholds as a swatch per band.
fn node_data_legend_ui(ui: &mut egui::Ui, legend: &crate::stats::node_data::Legend) {
    use crate::stats::node_data::Legend;
    let rgb = |c: Option<crate::lod::Rgba8>| {
        let [r, g, b, _] = c.unwrap_or(crate::lod::NO_BAND);
        Color32::from_rgb(r, g, b)
    };
    match legend {
        Legend::Gradient(stops) => {
            let width = ui.available_width().min(280.0);
            let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 14.0), Sense::hover());
            let (lo, hi) = match (stops.first(), stops.last()) {
                (Some(a), Some(b)) => (a.0, b.0),
                _ => return,
            };
            let x = |v: f64| {
                let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
                rect.left() + width * t.clamp(0.0, 1.0) as f32
            };
            // One quad per segment, its two ends in its stops' colours (egui blends between).
            let mut mesh = egui::Mesh::default();
            for w in stops.windows(2) {
                let (a, b) = (w[0], w[1]);
                let i = mesh.vertices.len() as u32;
                for (px, c) in [(x(a.0), a.1), (x(b.0), b.1)] {
                    mesh.colored_vertex(Pos2::new(px, rect.top()), rgb(c));
                    mesh.colored_vertex(Pos2::new(px, rect.bottom()), rgb(c));
                }
                mesh.add_triangle(i, i + 1, i + 2);
                mesh.add_triangle(i + 1, i + 2, i + 3);
            }
            ui.painter().add(egui::Shape::mesh(mesh));
            ui.horizontal(|ui| {
                ui.weak(format!("{lo}"));
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.weak(format!("{hi}"));
                });
            });
        }
        Legend::Thresholds(bands) => {
            let swatch = |ui: &mut egui::Ui, c: Option<crate::lod::Rgba8>| {
                let (rect, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
                ui.painter().rect_filled(rect, 2.0, rgb(c));
                ui.painter().rect_stroke(
                    rect,
                    2.0,
                    Stroke::new(1.0, Color32::from_gray(170)),
                    egui::StrokeKind::Inside,
                );
            };
            for &(upper, c) in bands {
                ui.horizontal(|ui| {
                    swatch(ui, c);
                    ui.label(format!("up to {upper}"));
                });
            }
            ui.horizontal(|ui| {
                swatch(ui, None);
                ui.weak("above: no band");
            });
        }
    }
}

/// Rows of the most changed tensors the comparison panel lists.
const CHANGED_ROWS: usize = 30;

/// What a comparison found: counts, then the most changed tensors (click one to fly to its node).
fn changes_ui(ui: &mut egui::Ui, v: &mut ModelView, c: &super::state::Compared, now_s: f64) {
    let d = &c.diff;
    ui.heading("Changes");
    ui.label(format!("B: {}", d.file_b));
    ui.label(format!("A: {}", d.file_a));
    let identical = d.identical();
    ui.label(format!(
        "{} of {} compared tensors changed ({} values of {})",
        group_digits((d.tensors.len() - identical) as u64),
        group_digits(d.tensors.len() as u64),
        group_digits(d.changed_elements),
        group_digits(d.compared_elements)
    ));
    for (what, n) in [
        ("only in A", d.only_a.len()),
        ("only in B", d.only_b.len()),
        ("shapes differ", d.shape_mismatch.len()),
        ("not compared", d.errors.len()),
    ] {
        if n > 0 {
            ui.label(format!("{what}: {}", group_digits(n as u64)));
        }
    }
    let on = v
        .overlay
        .as_ref()
        .is_some_and(|(f, _)| *f == Figure::Change);
    let mut colour = on;
    ui.checkbox(
        &mut colour,
        "colour nodes by change (blue: unchanged, red: most)",
    );
    if colour != on {
        v.set_color_by(colour.then_some(Figure::Change));
    }
    let mut go = None;
    egui::Grid::new("changes").num_columns(2).striped(true).show(ui, |ui| {
        for t in d.tensors.iter().filter(|t| !t.identical()).take(CHANGED_ROWS) {
            let node = c.owner(t.tensor_a);
            let r = ui
                .selectable_label(
                    node.is_some() && node == v.selected,
                    egui::RichText::new(&t.name).monospace(),
                )
                .on_hover_text(format!(
                    "relative change (norm of B − A / norm of A) {}\ncos {}\nlargest change {:.4e} at {:?} ({:.4e} → {:.4e})\n{} of {} values changed",
                    t.rel_change.map_or_else(|| "∞".into(), |r| format!("{r:.4e}")),
                    t.cosine.map_or_else(|| "-".into(), |x| format!("{x:.6}")),
                    t.max_abs_diff,
                    t.max_at,
                    t.max_a,
                    t.max_b,
                    group_digits(t.changed),
                    group_digits(t.count)
                ));
            if r.clicked() {
                go = node;
            }
            ui.label(t.rel_change.map_or_else(|| "∞".into(), |r| format!("{r:.2e}")));
            ui.end_row();
        }
    });
    if let Some(n) = go {
        v.go_to_node(n, now_s);
        v.zoom_to_selection(now_s);
    }
}

fn model_summary_ui(ui: &mut egui::Ui, m: &Model) {
    ui.heading("Model");
    ui.label(m.source.display().to_string());
    egui::Grid::new("summary").num_columns(2).show(ui, |ui| {
        ui.label("format");
        ui.label(m.format.name());
        ui.end_row();
        ui.label("nodes");
        ui.label(group_digits(m.graph.nodes.len() as u64));
        ui.end_row();
        ui.label("edges");
        ui.label(group_digits(m.graph.edges.len() as u64));
        ui.end_row();
        ui.label("tensors");
        ui.label(group_digits(m.tensors.len() as u64));
        ui.end_row();
        ui.label("parameters");
        ui.label(group_digits(m.parameter_count()));
        ui.end_row();
        let (inside, _) = m.subgraph_tensor_count();
        if inside > 0 {
            ui.label("in subgraphs");
            ui.label(group_digits(inside)).on_hover_text(
                "values held in If / Loop bodies, which the file's own count leaves out",
            );
            ui.end_row();
        }
        if let Some(a) = &m.metadata.architecture {
            ui.label("architecture");
            ui.label(a);
            ui.end_row();
        }
        if let Some(p) = &m.metadata.producer {
            ui.label("producer");
            // With its version, as Netron lists it (`pytorch 2.5.1`, `Keras 3.15.1`).
            match &m.metadata.producer_version {
                Some(v) if !v.is_empty() => ui.label(format!("{p} {v}")),
                _ => ui.label(p),
            };
            ui.end_row();
        }
        if m.metadata.shards > 1 {
            ui.label("shards");
            ui.label(m.metadata.shards.to_string());
            ui.end_row();
        }
        if !m.metadata.opsets.is_empty() {
            let opsets: Vec<String> = m
                .metadata
                .opsets
                .iter()
                .map(|(d, v)| format!("{} {v}", if d.is_empty() { "ai.onnx" } else { d }))
                .collect();
            ui.label("opsets");
            ui.label(opsets.join(", "));
            ui.end_row();
        }
    });
    for w in &m.metadata.warnings {
        ui.colored_label(Color32::from_rgb(190, 110, 0), w);
    }
    metadata_ui(ui, &m.metadata.properties);
    ui.separator();
    ui.weak("Click a node to inspect it.");
}

/// Rows of metadata shown at most (a GGUF file can carry hundreds of keys).
const MAX_METADATA_ROWS: usize = 300;
/// Characters of a metadata value shown.
const MAX_METADATA_CHARS: usize = 160;

/// The file's metadata as key/value rows, as Netron's model properties show them: Hugging Face
/// `config.*`, GGUF keys, ONNX `metadata_props`, a training checkpoint's `checkpoint.epoch`.
fn metadata_ui(ui: &mut egui::Ui, properties: &[(String, String)]) {
    if properties.is_empty() {
        return;
    }
    egui::CollapsingHeader::new(format!("metadata ({})", properties.len()))
        .default_open(properties.len() <= 24)
        .show(ui, |ui| metadata_rows(ui, properties));
}

/// The rows of [`metadata_ui`]: bounded in number and in the length of each value.
fn metadata_rows(ui: &mut egui::Ui, properties: &[(String, String)]) {
    egui::Grid::new("metadata")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            for (k, v) in properties.iter().take(MAX_METADATA_ROWS) {
                ui.label(k);
                // This runs every frame the panel is open: only a long value is copied, and its
                // whole text only while hovered.
                match v.char_indices().nth(MAX_METADATA_CHARS) {
                    None => {
                        ui.label(v);
                    }
                    Some((cut, _)) => {
                        ui.label(format!("{}…", &v[..cut])).on_hover_ui(|ui| {
                            let mut end = v.len().min(4000);
                            while !v.is_char_boundary(end) {
                                end -= 1;
                            }
                            ui.label(&v[..end]);
                        });
                    }
                }
                ui.end_row();
            }
        });
    if properties.len() > MAX_METADATA_ROWS {
        ui.weak(format!(
            "… {} more (modelmap info --json lists them all)",
            properties.len() - MAX_METADATA_ROWS
        ));
    }
}

fn value_line(m: &Model, v: u32) -> String {
    match m.graph.values.get(v as usize) {
        Some(val) => {
            let dtype = val.dtype.map(|d| d.to_string());
            let shape = val.shape.as_deref().map(format_shape);
            match (dtype, shape) {
                (None, None) => val.name.clone(),
                (d, s) => format!(
                    "{}  {} {}",
                    val.name,
                    d.unwrap_or_else(|| "?".into()),
                    s.unwrap_or_else(|| "?".into())
                ),
            }
        }
        None => format!("value #{v}"),
    }
}

/// "graph NAME: N ops" for subgraph `k`.
fn subgraph_line(model: &Model, k: usize) -> String {
    model.graph.subgraphs.get(k).map_or_else(
        || format!("subgraph #{k}"),
        |s| {
            let range = s.nodes.start as usize..s.nodes.end as usize;
            let ops = model
                .graph
                .nodes
                .get(range)
                .unwrap_or_default()
                .iter()
                .filter(|n| n.kind == NodeKind::Op)
                .count();
            let ops = if ops == 1 {
                "1 op".to_string()
            } else {
                format!("{ops} ops")
            };
            if s.name.is_empty() {
                ops
            } else {
                format!("graph {}: {ops}", s.name)
            }
        },
    )
}

/// The box subgraph `k` of node `owner` is drawn in: the innermost group holding all its own
/// nodes.
fn subgraph_box(model: &Model, owner: NodeId, k: usize) -> Option<crate::model::GroupId> {
    let s = model.graph.subgraphs.get(k).filter(|s| s.owner == owner)?;
    let h = &model.hierarchy;
    s.nodes
        .clone()
        .filter_map(|i| model.graph.nodes.get(i as usize))
        .map(|n| n.group)
        .reduce(|a, b| h.common_ancestor(a, b))
        .filter(|&g| g != 0)
}

fn node_inspector_ui(
    ui: &mut egui::Ui,
    v: &mut ModelView,
    cache: &mut UiCache,
    n: NodeId,
    now_s: f64,
) {
    let model = v.model.clone();
    let Some(node) = model.graph.nodes.get(n as usize) else {
        return;
    };
    ui.heading(&*node.op);
    ui.add(egui::Label::new(egui::RichText::new(&node.name).monospace()).wrap());
    if let Some(g) = model.hierarchy.get(node.group)
        && !g.path.is_empty()
    {
        ui.weak(format!("in {}", g.path));
    }
    ui.horizontal(|ui| {
        if ui.button("Zoom to (Z)").clicked() {
            v.zoom_to_selection(now_s);
        }
    });
    if !node.attributes.is_empty() {
        // A subgraph's box, to fly to when its attribute is clicked.
        let mut open_box: Option<crate::model::GroupId> = None;
        egui::CollapsingHeader::new(format!("Attributes ({})", node.attributes.len()))
            .default_open(true)
            .show(ui, |ui| {
                egui::Grid::new("attrs")
                    .num_columns(2)
                    .striped(true)
                    .show(ui, |ui| {
                        for (k, a) in &node.attributes {
                            ui.label(k);
                            if let AttrValue::Graph(s) = a
                                && let Some(g) = subgraph_box(&model, n, *s)
                            {
                                let text = subgraph_line(&model, *s);
                                if ui
                                    .link(egui::RichText::new(text).monospace())
                                    .on_hover_text("fly to it")
                                    .clicked()
                                {
                                    open_box = Some(g);
                                }
                                ui.end_row();
                                continue;
                            }
                            let text = match a {
                                AttrValue::Tensor(t) => {
                                    model.tensors.get(*t as usize).map_or(a.to_string(), |x| {
                                        format!("tensor {} {:?}", x.name, x.shape)
                                    })
                                }
                                AttrValue::Graph(k) => subgraph_line(&model, *k),
                                _ => a.to_string(),
                            };
                            ui.add(egui::Label::new(egui::RichText::new(text).monospace()).wrap());
                            ui.end_row();
                        }
                    });
            });
        if let Some(g) = open_box {
            v.go_to_group(g, now_s);
        }
    }
    let (ins, outs) = v.neighbours(n);
    egui::CollapsingHeader::new(format!("Inputs ({})", node.inputs.len()))
        .default_open(true)
        .show(ui, |ui| {
            for i in &node.inputs {
                match i {
                    Some(val) => ui.monospace(value_line(&model, *val)),
                    None => ui.weak("(omitted optional input)"),
                };
            }
        });
    egui::CollapsingHeader::new(format!("Outputs ({})", node.outputs.len()))
        .default_open(true)
        .show(ui, |ui| {
            for o in &node.outputs {
                ui.monospace(value_line(&model, *o));
            }
        });
    let mut go: Option<NodeId> = None;
    egui::CollapsingHeader::new(format!(
        "Connected nodes ({} in, {} out)",
        ins.len(),
        outs.len()
    ))
    .default_open(ins.len() + outs.len() <= 12)
    .show(ui, |ui| {
        for (arrow, list) in [("in:", &ins), ("out:", &outs)] {
            for &x in list.iter().take(200) {
                if let Some(xn) = model.graph.nodes.get(x as usize)
                    && ui
                        .link(format!("{arrow} {} [{}]", xn.name, xn.op))
                        .clicked()
                {
                    go = Some(x);
                }
            }
        }
    });
    if let Some(x) = go {
        v.go_to_node(x, now_s);
    }
    if let Some(d) = &v.node_data
        && let Some(Some(x)) = d.1.values.get(n as usize)
    {
        ui.label(format!("{}: {x}", d.0));
    }
    if !node.tensors.is_empty() {
        egui::CollapsingHeader::new(format!("Tensors ({})", node.tensors.len()))
            .default_open(true)
            .show(ui, |ui| {
                for &t in &node.tensors {
                    let Some(tensor) = model.tensors.get(t as usize) else {
                        continue;
                    };
                    ui.monospace(&tensor.name);
                    if let Some(c) = &v.diff {
                        match c.tensor(t) {
                            Some(d) => {
                                ui.label(format!(
                                    "B − A: relative change {} · cos {} · largest {:.3e} at {:?} · {} of {} changed",
                                    d.rel_change.map_or_else(|| "∞".into(), |r| format!("{r:.3e}")),
                                    d.cosine.map_or_else(|| "-".into(), |x| format!("{x:.6}")),
                                    d.max_abs_diff,
                                    d.max_at,
                                    group_digits(d.changed),
                                    group_digits(d.count)
                                ));
                            }
                            None => {
                                ui.weak("not compared: B has no tensor of this name and shape");
                                continue;
                            }
                        }
                    }
                    let size = tensor.expected_bytes().map_or("?".to_string(), human_bytes);
                    let state = match &tensor.data {
                        TensorData::Bytes(_) => String::new(),
                        TensorData::Lazy(l) => {
                            l.failed().map_or_else(String::new, |e| format!(" · {e}"))
                        }
                        TensorData::Missing => " · no data in file".to_string(),
                        TensorData::Error(e) => format!(" · {e}"),
                    };
                    ui.label(format!(
                        "{} {:?} · {} elements · {size}{state}",
                        tensor.dtype,
                        tensor.shape,
                        group_digits(tensor.elements())
                    ));
                    if let Some(q) = &tensor.quant {
                        // Statistics and heatmaps below are of the real values.
                        ui.weak(format!("quantized: {}", q.describe()));
                    }
                    tensor_stats_ui(ui, cache, &model, t);
                    ui.add_space(4.0);
                }
            });
    }
}

fn central_ui(ui: &mut egui::Ui, app: &mut AppState, cache: &mut UiCache, now_s: f64) {
    let rect = ui.max_rect();
    match app.active_tab().map(|t| &t.content) {
        None => {
            ui.centered_and_justified(|ui| {
                ui.label("Drop a model file here, or File › Open…");
            });
            return;
        }
        Some(TabContent::Failed { message }) => {
            let message = message.clone();
            ui.vertical_centered(|ui| {
                ui.add_space(rect.height() * 0.3);
                ui.heading("This file could not be opened");
                ui.add_space(8.0);
                ui.colored_label(Color32::from_rgb(190, 40, 30), message);
            });
            return;
        }
        Some(TabContent::Loading { .. }) => {
            ui.vertical_centered(|ui| {
                ui.add_space(rect.height() * 0.4);
                ui.spinner();
                ui.label("Loading…");
            });
            return;
        }
        Some(TabContent::Ready(_)) => {}
    }
    let ppp = ui.ctx().pixels_per_point();
    cache.canvas = Some((rect, ppp));
    let response = ui.allocate_rect(rect, Sense::click_and_drag());
    let viewport = DVec2::new(
        f64::from(rect.width() * ppp),
        f64::from(rect.height() * ppp),
    );
    if viewport != app.viewport {
        app.set_viewport(viewport);
    }
    let to_px = |p: Pos2| {
        DVec2::new(
            f64::from((p.x - rect.min.x) * ppp),
            f64::from((p.y - rect.min.y) * ppp),
        )
    };
    let Some(v) = app.active_view_mut() else {
        return;
    };

    // Input: drag pans, wheel and pinch zoom about the cursor, clicks select.
    if response.dragged() {
        let d = response.drag_delta();
        v.pan(DVec2::new(f64::from(d.x * ppp), f64::from(d.y * ppp)));
    }
    let pointer = response.hover_pos();
    if let Some(p) = pointer {
        let (wheel, pinch) = ui.input(|i| {
            let mut wheel = 0.0f64;
            for e in &i.events {
                if let egui::Event::MouseWheel { unit, delta, .. } = e {
                    let k = match unit {
                        egui::MouseWheelUnit::Point => 1.0,
                        egui::MouseWheelUnit::Line => 50.0,
                        egui::MouseWheelUnit::Page => f64::from(rect.height()),
                    };
                    wheel += f64::from(delta.y) * k;
                }
            }
            (wheel, f64::from(i.zoom_delta()))
        });
        if wheel != 0.0 && pinch == 1.0 {
            v.zoom_at(to_px(p), (wheel * WHEEL_ZOOM_PER_POINT).exp());
        }
        if pinch != 1.0 {
            v.zoom_at(to_px(p), pinch);
        }
    }
    v.hover_at(pointer.map(to_px));
    if response.double_clicked() {
        if let Some(p) = response.interact_pointer_pos() {
            v.double_click_at(to_px(p), now_s);
        }
    } else if response.clicked()
        && let Some(p) = response.interact_pointer_pos()
    {
        v.click_at(to_px(p));
    }

    // Paint: background, then the graph through the wgpu callback.
    let camera = *v.camera.camera();
    let inputs = v.scene_inputs();
    let model = v.model.clone();
    let list = v.scene.draw_list(&model, &inputs, &camera, now_s);
    // The background is the frame's clear colour (see `UiCache::canvas_background`); an opaque
    // one needs no rectangle here.
    let bg = list.background;
    if bg[3] == 255 {
        cache.canvas_background = Some(bg);
    } else {
        ui.painter().rect_filled(
            rect,
            0.0,
            Color32::from_rgba_unmultiplied(bg[0], bg[1], bg[2], bg[3]),
        );
    }
    ui.painter().add(egui_wgpu::Callback::new_paint_callback(
        rect,
        GraphPaint { camera, list },
    ));

    // Tooltip.
    if let Some(h) = v.hovered {
        let mut text = hover_text(v, h);
        // Over a weight heatmap drawn in place: the exact value and its index.
        if let Some(hit) = response
            .hover_pos()
            .and_then(|p| v.scene.weight_at(&camera, to_px(p)))
            && let Some(t) = model.tensors.get(hit.tensor as usize)
        {
            let index: Vec<String> = hit.index.iter().map(u64::to_string).collect();
            text = format!("{}[{}] = {}\n{text}", t.name, index.join(", "), hit.value);
        }
        response.on_hover_ui_at_pointer(|ui| {
            ui.label(text);
        });
    }
    minimap_ui(ui, v, cache, rect, now_s);
}

fn hover_text(v: &ModelView, h: Picked) -> String {
    let m = &v.model;
    match h {
        Picked::Node(n) => {
            let Some(node) = m.graph.nodes.get(n as usize) else {
                return String::new();
            };
            let out = node
                .outputs
                .first()
                .map(|&o| value_line(m, o))
                .unwrap_or_default();
            let data = v
                .node_data
                .as_ref()
                .and_then(|d| Some(format!("\n{}: {}", d.0, (*d.1.values.get(n as usize)?)?)))
                .unwrap_or_default();
            format!("{}\n{}\n{out}{data}", node.name, node.op)
        }
        Picked::Cluster(c) => {
            let Some(cl) = v
                .scene
                .laid()
                .and_then(|s| s.layout.clusters.clusters.get(c as usize))
            else {
                return String::new();
            };
            format!(
                "{}\n{} nodes · {} parameters · mostly {}\ndouble-click or + keeps it open, - closes it",
                cl.display_label(),
                group_digits(cl.member_count),
                group_digits(cl.param_count),
                cl.dominant_op
            )
        }
    }
}

fn minimap_ui(
    ui: &mut egui::Ui,
    v: &mut ModelView,
    cache: &mut UiCache,
    canvas: egui::Rect,
    now_s: f64,
) {
    let bounds = v.scene.bounds();
    if bounds.is_empty() {
        return;
    }
    // Keep the model's aspect inside the minimap box.
    let aspect = (bounds.size().x / bounds.size().y.max(1e-9)) as f32;
    let size = if aspect > MINIMAP.x / MINIMAP.y {
        Vec2::new(MINIMAP.x, (MINIMAP.x / aspect).max(8.0))
    } else {
        Vec2::new((MINIMAP.y * aspect).max(8.0), MINIMAP.y)
    };
    let scene_id = v.scene.id();
    if cache.minimap.as_ref().map(|(id, _)| *id) != Some(scene_id) {
        let (w, h) = (size.x.round() as usize, size.y.round() as usize);
        let density = v.scene.overview(w, h);
        let rgba: Vec<u8> = density
            .iter()
            .flat_map(|&d| {
                if d == 0 {
                    [0, 0, 0, 0]
                } else {
                    [70, 90, 140, d]
                }
            })
            .collect();
        let img = egui::ColorImage::from_rgba_unmultiplied([w, h], &rgba);
        let tex = ui
            .ctx()
            .load_texture("minimap", img, egui::TextureOptions::LINEAR);
        cache.minimap = Some((scene_id, tex));
    }
    let Some((_, tex)) = &cache.minimap else {
        return;
    };
    let rect = egui::Rect::from_min_size(canvas.right_bottom() - size - Vec2::splat(12.0), size);
    let resp = ui.allocate_rect(rect, Sense::click_and_drag());
    let painter = ui.painter_at(rect.expand(2.0));
    painter.rect_filled(
        rect.expand(2.0),
        4.0,
        Color32::from_rgba_unmultiplied(255, 255, 255, 225),
    );
    painter.image(
        tex.id(),
        rect,
        egui::Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
        Color32::WHITE,
    );
    // The viewport rectangle.
    let to_mini = |w: DVec2| {
        let t = (w - bounds.min) / bounds.size();
        Pos2::new(
            rect.min.x + t.x as f32 * rect.width(),
            rect.min.y + t.y as f32 * rect.height(),
        )
    };
    let vis = v.camera.camera().visible_world();
    let vr = egui::Rect::from_two_pos(to_mini(vis.min), to_mini(vis.max)).intersect(rect);
    painter.rect_stroke(
        vr,
        0.0,
        Stroke::new(1.5, Color32::from_rgb(220, 80, 30)),
        egui::StrokeKind::Middle,
    );
    painter.text(
        rect.left_top() + Vec2::new(4.0, 2.0),
        Align2::LEFT_TOP,
        "minimap",
        egui::FontId::proportional(10.0),
        Color32::GRAY,
    );
    if (resp.clicked() || resp.dragged())
        && let Some(p) = resp.interact_pointer_pos()
    {
        let t = DVec2::new(
            f64::from((p.x - rect.min.x) / rect.width()),
            f64::from((p.y - rect.min.y) / rect.height()),
        );
        let mut cam = *v.camera.target();
        cam.center = bounds.min + t * bounds.size();
        v.user_moved();
        if resp.dragged() {
            v.camera.set(cam);
        } else {
            v.camera.fly_to(cam, now_s);
        }
    }
}

fn dialogs_ui(ctx: &egui::Context, app: &mut AppState) {
    if app.show_help {
        let mut open = true;
        egui::Window::new("Keys")
            .open(&mut open)
            .collapsible(false)
            .anchor(Align2::CENTER_CENTER, Vec2::ZERO)
            .show(ctx, |ui| {
                egui::Grid::new("keys")
                    .num_columns(2)
                    .striped(true)
                    .show(ui, |ui| {
                        for (k, what) in key_help() {
                            ui.strong(*k);
                            ui.label(*what);
                            ui.end_row();
                        }
                    });
            });
        app.show_help &= open;
    }
    if let Some(mut text) = app.open_dialog.take() {
        let mut keep = true;
        let mut submit = false;
        egui::Window::new("Open")
            .collapsible(false)
            .anchor(Align2::CENTER_CENTER, Vec2::ZERO)
            .show(ctx, |ui| {
                ui.label("Model file or checkpoint folder (one per line):");
                let r = ui.add(
                    egui::TextEdit::multiline(&mut text)
                        .desired_rows(2)
                        .desired_width(480.0)
                        .hint_text("/path/to/model.onnx"),
                );
                r.request_focus();
                ui.horizontal(|ui| {
                    submit = ui.button("Open").clicked()
                        || (ui.input(|i| i.key_pressed(Key::Enter) && i.modifiers.command));
                    if ui.button("Cancel").clicked() {
                        keep = false;
                    }
                });
                ui.weak("Ctrl+Enter opens. You can also drop files on the window.");
            });
        if keep {
            app.open_dialog = Some(text);
        }
        if submit {
            app.submit_open_dialog();
        }
    }
    if let Some(text) = app.compare_dialog.take() {
        let shown = app
            .active_tab()
            .map(|t| t.title.clone())
            .unwrap_or_default();
        let prompt = format!("Checkpoint B to compare with {shown} (A); a new tab shows B − A:");
        let hint = Some("/path/to/finetuned.safetensors");
        match path_dialog(ctx, "Compare with", &prompt, hint, "Compare", text) {
            PathDialog::Open(text) => app.compare_dialog = Some(text),
            PathDialog::Submit(path) if !path.is_empty() => {
                app.compare_with(PathBuf::from(path));
            }
            _ => {}
        }
    }
    if let Some(text) = app.node_data_dialog.take() {
        let prompt = "Model Explorer node data JSON ({\"results\": {node: {\"value\": …}}}):";
        let hint = Some("/path/to/node_data.json");
        match path_dialog(ctx, "Colour by node data", prompt, hint, "Colour", text) {
            PathDialog::Open(text) => app.node_data_dialog = Some(text),
            PathDialog::Submit(path) if !path.is_empty() => {
                app.apply_node_data(std::path::Path::new(&path));
            }
            _ => {}
        }
    }
    if let Some(text) = app.export_dialog.take() {
        let prompt = "Write the current view to:";
        match path_dialog(ctx, "Export PNG", prompt, None, "Export", text) {
            PathDialog::Open(text) => app.export_dialog = Some(text),
            PathDialog::Submit(path) => app.export_png(PathBuf::from(path)),
            PathDialog::Closed => {}
        }
    }
}

/// What a one-line path dialog came to this frame.
enum PathDialog {
    /// Still open, with the text typed so far.
    Open(String),
    /// Submitted (the button, or Enter), with the trimmed path.
    Submit(String),
    /// Cancelled.
    Closed,
}

/// A centred window asking for one path: `prompt`, a text field (with `hint`, and the keyboard's
/// focus, when given), the `action` button and Cancel.
fn path_dialog(
    ctx: &egui::Context,
    title: &str,
    prompt: &str,
    hint: Option<&str>,
    action: &str,
    mut text: String,
) -> PathDialog {
    let mut keep = true;
    let mut submit = false;
    egui::Window::new(title)
        .collapsible(false)
        .anchor(Align2::CENTER_CENTER, Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label(prompt);
            let r = match hint {
                Some(h) => {
                    let r = ui.add(
                        egui::TextEdit::singleline(&mut text)
                            .desired_width(480.0)
                            .hint_text(h),
                    );
                    r.request_focus();
                    r
                }
                None => ui.add(egui::TextEdit::singleline(&mut text).desired_width(420.0)),
            };
            submit = r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            ui.horizontal(|ui| {
                submit |= ui.button(action).clicked();
                if ui.button("Cancel").clicked() {
                    keep = false;
                }
            });
        });
    if submit {
        PathDialog::Submit(text.trim().to_string())
    } else if keep {
        PathDialog::Open(text)
    } else {
        PathDialog::Closed
    }
}

fn tensor_stats_ui(ui: &mut egui::Ui, cache: &mut UiCache, model: &std::sync::Arc<Model>, t: u32) {
    let Some(tensor) = model.tensors.get(t as usize) else {
        return;
    };
    if !tensor.has_data() {
        return;
    }
    let key = (std::sync::Arc::as_ptr(model) as usize, t);
    if tensor.elements() > INLINE_STATS_MAX && !cache.stats.contains_key(&key) {
        ui.weak("statistics: run `modelmap stats` (too large to compute while drawing)");
        return;
    }
    let r = cache
        .stats
        .entry(key)
        .or_insert_with(|| crate::stats::tensor_stats(tensor).map_err(|e| e.to_string()));
    let st = match r {
        Ok(st) => st,
        Err(e) => {
            ui.colored_label(Color32::from_rgb(190, 40, 30), e);
            return;
        }
    };
    let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.4}"));
    ui.label(format!(
        "min {} · max {} · mean {} · std {}",
        f(st.min),
        f(st.max),
        f(st.mean),
        f(st.std)
    ));
    let mut flags = Vec::new();
    if st.nan > 0 {
        flags.push(format!("{} NaN", group_digits(st.nan)));
    }
    if st.inf > 0 {
        flags.push(format!("{} Inf", group_digits(st.inf)));
    }
    if st.zero_row_count > 0 {
        flags.push(format!("{} all-zero rows", group_digits(st.zero_row_count)));
    }
    if st.sparsity > 0.0 {
        flags.push(format!("{:.1} % zeros", st.sparsity * 100.0));
    }
    if !flags.is_empty() {
        ui.colored_label(Color32::from_rgb(190, 90, 0), flags.join(" · "));
    }
    // Histogram: one bar per bin, height by sqrt(count) so the tails stay visible.
    let counts = &st.histogram.counts;
    if counts.is_empty() {
        return;
    }
    let (rect, _) = ui.allocate_exact_size(
        Vec2::new(ui.available_width().min(300.0), 48.0),
        Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(245));
    let max = counts.iter().copied().max().unwrap_or(1).max(1) as f32;
    let w = rect.width() / counts.len() as f32;
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let h = (c as f32 / max).sqrt() * rect.height();
        let x = rect.min.x + i as f32 * w;
        painter.rect_filled(
            egui::Rect::from_min_max(
                Pos2::new(x, rect.max.y - h),
                Pos2::new(x + w.max(1.0), rect.max.y),
            ),
            0.0,
            Color32::from_rgb(90, 110, 170),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece of text a frame of `f` drew.
    fn texts(f: impl FnMut(&mut egui::Ui)) -> Vec<String> {
        fn walk(shape: &egui::epaint::Shape, out: &mut Vec<String>) {
            match shape {
                egui::epaint::Shape::Text(t) => out.push(t.galley.text().to_string()),
                egui::epaint::Shape::Vec(v) => v.iter().for_each(|s| walk(s, out)),
                _ => {}
            }
        }
        let ctx = egui::Context::default();
        let mut f = f;
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::Vec2::new(600.0, 8000.0),
            )),
            ..Default::default()
        };
        let mut out = Vec::new();
        // Two frames: collapsing headers settle their open state on the first.
        for _ in 0..2 {
            out.clear();
            let mut output = ctx.run_ui(input.clone(), |ui| {
                egui::CentralPanel::default().show(ui, |ui| f(ui));
            });
            for s in &output.shapes {
                walk(&s.shape, &mut out);
            }
            output.textures_delta.clear();
        }
        out
    }

    #[test]
    fn a_subgraph_attribute_names_its_graph_and_box() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/openvino/control.xml");
        let model = crate::load::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let owner = model
            .graph
            .nodes
            .iter()
            .position(|n| n.name == "branch")
            .unwrap_or_default() as NodeId;
        let mut seen = Vec::new();
        for (key, a) in &model.graph.nodes[owner as usize].attributes {
            let AttrValue::Graph(k) = a else { continue };
            let g = subgraph_box(&model, owner, *k).unwrap_or_default();
            let path = model.hierarchy.get(g).map(|g| g.path.clone());
            seen.push((key.clone(), path, subgraph_line(&model, *k)));
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                (
                    "else_body".to_string(),
                    Some("branch/else_body".to_string()),
                    // MatMul, LogicalNot and the If, and the nested If's Relu and Multiply.
                    "5 ops".to_string()
                ),
                (
                    "then_body".to_string(),
                    Some("branch/then_body".to_string()),
                    "1 op".to_string()
                ),
            ]
        );
        // Not another node's subgraph.
        assert_eq!(subgraph_box(&model, owner + 1, 0), None);
    }

    #[test]
    fn model_summary_lists_the_files_metadata() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/pytorch/training.pth");
        let model = crate::load::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let shown = texts(|ui| model_summary_ui(ui, &model));
        for want in [
            "pytorch",
            "metadata (3)",
            "checkpoint.epoch",
            "7",
            "checkpoint.arch",
            "tinynet",
        ] {
            assert!(shown.iter().any(|t| t == want), "{want:?} not in {shown:?}");
        }
        // The producer with its version.
        let keras = crate::load::open(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/keras/cnn.keras"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let shown_keras = texts(|ui| model_summary_ui(ui, &keras));
        assert!(
            shown_keras.iter().any(|t| t == "Keras 3.15.1"),
            "{shown_keras:?}"
        );
        // Long values are cut, and a file with hundreds of keys shows a bounded list.
        let mut big = model.clone();
        big.metadata.properties = (0..1000)
            .map(|i| {
                (
                    format!("key.{i}"),
                    "x".repeat(if i == 0 { 5000 } else { 3 }),
                )
            })
            .collect();
        let shown = texts(|ui| model_summary_ui(ui, &big));
        assert!(shown.iter().any(|t| t == "metadata (1000)"));
        // Closed by default with that many keys; opened, the first value is cut.
        assert!(!shown.iter().any(|t| t == "key.0"));
        let rows = texts(|ui| metadata_rows(ui, &big.metadata.properties));
        assert!(
            rows.iter()
                .any(|t| t.chars().count() == MAX_METADATA_CHARS + 1 && t.ends_with('…'))
        );
        assert!(rows.iter().any(|t| t.contains("700 more")));
        assert!(!rows.iter().any(|t| t == "key.300"));
    }
}
