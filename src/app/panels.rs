//! The anomaly panel and the matrix view as egui windows. They only draw state and translate clicks
//! into `ModelView` calls (`go_to_finding`, `set_color_by`, `matrix_click`); the scan, the ordering
//! and the binning live in `anomalies.rs` and `matrix.rs`, tested without a window.

use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};

use super::anomalies::{CHANGE_LABEL, FIGURES};
use super::state::{AppState, TabContent};
use crate::model::group_digits;
use crate::stats::anomaly::Severity;
use crate::stats::overlay::Figure;

/// Textures of the panels.
#[derive(Default)]
pub struct PanelCache {
    /// The matrix picture, keyed by the matrix's address.
    matrix: Option<(usize, egui::TextureHandle)>,
}

fn severity_color(s: Severity) -> Color32 {
    match s {
        Severity::Error => Color32::from_rgb(200, 40, 30),
        Severity::Warning => Color32::from_rgb(200, 120, 0),
        Severity::Info => Color32::from_rgb(90, 110, 150),
    }
}

/// The anomaly window (`A`): progress while the scan runs, then the findings, most severe first;
/// clicking one flies to the node owning its tensor. A "colour by" menu recolours the graph.
///
/// Returns the window's rectangle (points) when it is open.
pub fn anomaly_window_ui(
    ctx: &egui::Context,
    app: &mut AppState,
    now_s: f64,
) -> Option<egui::Rect> {
    if !app.show_anomalies {
        return None;
    }
    let mut open = true;
    let mut start_scan = false;
    let running: Vec<(u64, f32, String)> = app
        .jobs
        .running()
        .iter()
        .map(|j| (j.id, j.progress.fraction(), j.progress.stage()))
        .collect();
    let shown = egui::Window::new("Anomalies")
        .open(&mut open)
        .default_size([600.0, 220.0])
        .default_pos([16.0, 500.0])
        .show(ctx, |ui| {
            let Some(v) = app.active_view_mut() else {
                ui.weak("no model open");
                return;
            };
            if let Some(job) = v.anomalies.job {
                if let Some((_, f, stage)) = running.iter().find(|(id, ..)| *id == job) {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.add(
                            egui::ProgressBar::new(*f)
                                .desired_width(260.0)
                                .show_percentage(),
                        );
                        ui.label(stage);
                    });
                }
                ui.weak("the window stays usable while every tensor is read");
                return;
            }
            let Some(scan) = v.anomalies.scan.clone() else {
                if ui.button("Scan all tensors").clicked() {
                    start_scan = true;
                }
                return;
            };
            ui.horizontal(|ui| {
                ui.label(format!(
                    "{} findings · {} tensors ({} with statistics) · {:.2} s",
                    group_digits(scan.findings.len() as u64),
                    group_digits(scan.tensors as u64),
                    group_digits(scan.with_stats as u64),
                    scan.seconds
                ));
            });
            ui.horizontal(|ui| {
                ui.label("Colour nodes by:");
                let current = v.overlay.as_ref().map(|(f, _)| *f);
                let text = FIGURES
                    .iter()
                    .find(|(f, _)| Some(*f) == current)
                    .map_or(
                        match current {
                            Some(Figure::Change) => CHANGE_LABEL,
                            Some(Figure::NodeData) => {
                                v.node_data.as_ref().map_or("node data", |d| d.0.as_str())
                            }
                            _ => "op type",
                        },
                        |(_, l)| l,
                    );
                let mut choice = current;
                egui::ComboBox::from_id_salt("color_by")
                    .selected_text(text)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut choice, None, "op type");
                        for (f, label) in FIGURES {
                            ui.selectable_value(&mut choice, Some(f), label);
                        }
                        if v.diff.is_some() {
                            ui.selectable_value(&mut choice, Some(Figure::Change), CHANGE_LABEL);
                        }
                        if let Some(d) = &v.node_data {
                            ui.selectable_value(&mut choice, Some(Figure::NodeData), d.0.as_str());
                        }
                    });
                if choice != current {
                    v.set_color_by(choice);
                }
                if current.is_some() {
                    ui.weak("blue: low, red: high");
                }
            });
            ui.separator();
            if scan.findings.is_empty() {
                ui.label("Nothing stands out: no NaN/Inf, dead rows or columns, outlier norms or odd dtypes.");
                return;
            }
            let row_h = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
            let mut go: Option<usize> = None;
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show_rows(ui, row_h, scan.findings.len(), |ui, range| {
                    for i in range {
                        let Some(f) = scan.findings.get(i) else {
                            continue;
                        };
                        let a = &f.anomaly;
                        ui.horizontal(|ui| {
                            ui.colored_label(
                                severity_color(a.severity),
                                format!("{:?}", a.severity),
                            );
                            ui.strong(format!("{:?}", a.kind));
                            let selected = f.node.is_some() && f.node == v.selected;
                            let r = ui
                                .selectable_label(selected, egui::RichText::new(&a.tensor).monospace())
                                .on_hover_text(format!(
                                    "{}\n{}",
                                    a.message,
                                    if f.node.is_some() {
                                        "click: fly to the node owning it"
                                    } else {
                                        "no node owns this tensor"
                                    }
                                ));
                            if r.clicked() {
                                go = Some(i);
                            }
                            ui.add(egui::Label::new(egui::RichText::new(&a.message).weak()).truncate());
                        });
                    }
                });
            if let Some(i) = go {
                v.go_to_finding(i, now_s);
            }
        });
    if start_scan {
        app.scan_anomalies();
    }
    app.show_anomalies &= open;
    shown.filter(|_| open).map(|r| r.response.rect)
}

/// The matrix window (`M`): the adjacency matrix of the whole model or of one cluster, hover names
/// the ends of a cell, click selects an edge's producer and highlights its consumer.
///
/// Returns the window's rectangle (points) when it is open.
pub fn matrix_window_ui(
    ctx: &egui::Context,
    app: &mut AppState,
    cache: &mut PanelCache,
    now_s: f64,
) -> Option<egui::Rect> {
    if !app.show_matrix {
        return None;
    }
    let mut open = true;
    let shown = egui::Window::new("Matrix")
        .open(&mut open)
        .default_size([560.0, 680.0])
        .default_pos([700.0, 56.0])
        .show(ctx, |ui| {
            let Some(TabContent::Ready(v)) = app.tabs.get_mut(app.active).map(|t| &mut t.content)
            else {
                ui.weak("no model open");
                return;
            };
            let Some(tree) = v.scene.laid().map(|s| s.layout.clone()) else {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("waiting for the layout (rows and columns follow its cluster order)");
                });
                return;
            };
            let tree = &tree.clusters;
            let scope = v.matrix.scope;
            let scope_label = tree
                .clusters
                .get(scope as usize)
                .map_or_else(String::new, |c| c.label.clone());
            ui.horizontal(|ui| {
                if ui
                    .selectable_label(scope == 0, "whole model")
                    .clicked()
                {
                    v.set_matrix_scope(0);
                }
                let sel = v.selection_scope();
                if ui
                    .add_enabled(sel != 0, egui::Button::new("selection's group"))
                    .on_hover_text("the innermost cluster holding the selected node")
                    .clicked()
                {
                    v.set_matrix_scope(sel);
                }
                let parent = tree
                    .clusters
                    .get(scope as usize)
                    .and_then(|c| c.parent);
                if ui
                    .add_enabled(parent.is_some(), egui::Button::new("parent"))
                    .clicked()
                    && let Some(p) = parent
                {
                    v.set_matrix_scope(p);
                }
                ui.strong(&scope_label);
            });
            let Some(m) = v.current_matrix() else {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("building the matrix…");
                });
                return;
            };
            ui.weak(format!(
                "{} nodes · {} edges inside · {}×{} cells ({} node{} per cell) · rows: producers, columns: consumers",
                group_digits(m.len() as u64),
                group_digits(m.edges),
                m.cells,
                m.cells,
                m.len().div_ceil(m.cells.max(1)),
                if m.len().div_ceil(m.cells.max(1)) == 1 { "" } else { "s at most" }
            ));
            if m.is_empty() {
                return;
            }
            let key = std::sync::Arc::as_ptr(&m) as usize;
            if cache.matrix.as_ref().map(|(k, _)| *k) != Some(key) {
                let img = egui::ColorImage::from_rgba_unmultiplied([m.cells, m.cells], &m.rgba());
                let tex = ui
                    .ctx()
                    .load_texture("matrix", img, egui::TextureOptions::NEAREST);
                cache.matrix = Some((key, tex));
            }
            let Some((_, tex)) = &cache.matrix else {
                return;
            };
            let avail = ui.available_size();
            // Leave room for the two hover lines under the picture.
            let info_h = 3.0 * ui.text_style_height(&egui::TextStyle::Body) + 8.0;
            let side = avail.x.min(avail.y - info_h).max(120.0);
            let (rect, resp) = ui.allocate_exact_size(Vec2::splat(side), Sense::click());
            let painter = ui.painter_at(rect.expand(1.0));
            painter.image(
                tex.id(),
                rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
            // Cluster boundaries: children of the scope dark, grandchildren light.
            for (f, depth) in m.boundaries(2) {
                let stroke = if depth <= 1 {
                    Stroke::new(1.0, Color32::from_rgba_unmultiplied(60, 60, 70, 200))
                } else {
                    Stroke::new(0.5, Color32::from_rgba_unmultiplied(120, 120, 130, 110))
                };
                let x = rect.min.x + f * side;
                let y = rect.min.y + f * side;
                painter.line_segment([Pos2::new(x, rect.min.y), Pos2::new(x, rect.max.y)], stroke);
                painter.line_segment([Pos2::new(rect.min.x, y), Pos2::new(rect.max.x, y)], stroke);
            }
            let cell = side / m.cells as f32;
            // The selection's row and column.
            if let Some(p) = v.selected.and_then(|n| m.order.position(n)) {
                let c = m.cell_of(p) as f32;
                let stroke = Stroke::new(1.0, Color32::from_rgba_unmultiplied(230, 90, 20, 170));
                let y = rect.min.y + (c + 0.5) * cell;
                let x = rect.min.x + (c + 0.5) * cell;
                painter.line_segment([Pos2::new(rect.min.x, y), Pos2::new(rect.max.x, y)], stroke);
                painter.line_segment([Pos2::new(x, rect.min.y), Pos2::new(x, rect.max.y)], stroke);
            }
            painter.rect_stroke(
                rect,
                0.0,
                Stroke::new(1.0, Color32::from_gray(90)),
                egui::StrokeKind::Outside,
            );
            // Snap to an edge within ~5 points: a cell of a big matrix is a pixel or two wide.
            let radius = (5.0 / cell).floor() as usize;
            let cell_under = |p: Pos2| {
                let (row, col) = m.cell_at((p.x - rect.min.x) / side, (p.y - rect.min.y) / side)?;
                Some(m.nearest_nonempty(row, col, radius).unwrap_or((row, col)))
            };
            if resp.clicked()
                && let Some((row, col)) = resp.interact_pointer_pos().and_then(cell_under)
            {
                v.matrix_click(row, col, now_s);
            }
            let hovered = resp
                .hover_pos()
                .and_then(cell_under)
                .and_then(|(row, col)| Some((row, col, m.cell_info(&v.model, tree, row, col)?)));
            if let Some((row, col, _)) = &hovered {
                painter.rect_stroke(
                    Rect::from_min_size(
                        rect.min + Vec2::new(*col as f32 * cell, *row as f32 * cell),
                        Vec2::splat(cell.max(2.0)),
                    ),
                    0.0,
                    Stroke::new(1.5, Color32::from_rgb(230, 90, 20)),
                    egui::StrokeKind::Outside,
                );
            }
            // A fixed-height info area, so the window does not jump as the hover text changes.
            ui.allocate_ui_with_layout(
                Vec2::new(side, info_h),
                egui::Layout::top_down(egui::Align::Min),
                |ui| {
                    ui.set_min_size(Vec2::new(side, info_h));
                    if let Some((_, _, info)) = hovered {
                        ui.add(egui::Label::new(format!("from {}", info.row_label)).truncate());
                        ui.add(egui::Label::new(format!("to {}", info.col_label)).truncate());
                        ui.strong(format!(
                            "{} edge{}{}",
                            group_digits(u64::from(info.count)),
                            if info.count == 1 { "" } else { "s" },
                            if info.count > 0 {
                                " · click selects the producer, highlights the consumer"
                            } else {
                                ""
                            }
                        ));
                    } else {
                        ui.weak(
                            "hover a cell to name its ends; dark lines: groups, light: their subgroups",
                        );
                    }
                },
            );
        });
    app.show_matrix &= open;
    shown.filter(|_| open).map(|r| r.response.rect)
}
