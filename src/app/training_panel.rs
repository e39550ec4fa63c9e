//! The Training tab: scalar curves, distributions and stacked histograms of the runs under a log
//! folder, drawn with egui's painter.
//!
//! How it works: [`TrainingPanelState::open`] starts a background thread that loads the folder
//! with [`RunsWatcher`] and keeps polling it once a second (a live run's new points appear),
//! posting each new snapshot over a channel; [`training_ui`] never reads files. Each curve caches
//! its x values and smoothed values (recomputed only when smoothing, log-y, x-axis mode or the data
//! change) and its decimated polylines (recomputed only when the visible range or the plot width
//! change), so a frame without interaction draws at most ~4 vertices per pixel column per curve,
//! however long the runs are. Zoom with the mouse wheel (x; with Shift, y), pan by dragging,
//! double-click to fit; hovering shows every run's value at the nearest step.
//!
//! Rejected: `egui_plot` (another dependency tied to egui's release cadence, with no M4 decimation
//! or TensorBoard smoothing; we need those anyway) and drawing every point (a million points is a
//! million vertices per curve per frame).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::Duration;

use egui::{
    Align2, Color32, CornerRadius, FontId, Pos2, Rect, Sense, Shape, Stroke, StrokeKind, Vec2,
};

use crate::training::plot::{format_tick, format_time_tick, nice_ticks, run_color};
use crate::training::series::{NORMAL_HISTOGRAM_BPS, XAxis, decimate, distribution, smooth_ema};
use crate::training::{HParam, Runs, RunsWatcher, ScalarSeries};

/// Which view of the runs is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrainingTab {
    /// Scalar curves.
    #[default]
    Scalars,
    /// Percentile bands of histograms over time.
    Distributions,
    /// Histograms over time, stacked (offset) by step.
    Histograms,
    /// One row per run: its hyperparameters (TensorBoard's hparams, W&B's config) and the last
    /// value of each scalar, sortable by any column.
    Runs,
    /// Text summaries by tag, step by step.
    Text,
    /// Logged images, one card per tag and run, with a step slider.
    Images,
    /// Precision–recall curves, one card per tag, each run's curve at a chosen step.
    PrCurves,
}

/// The visible range of one plot (`None` = fit the data).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct PlotView {
    x: Option<(f64, f64)>,
    y: Option<(f64, f64)>,
}

/// Cached drawing data of one (run, tag) curve.
#[derive(Default)]
struct CurveCache {
    key: (u64, bool, XAxis, usize),
    xs: Vec<f64>,
    raw: Vec<f64>,
    smooth: Vec<f64>,
    view_key: (u64, u64, usize),
    raw_decimated: Vec<[f64; 2]>,
    smooth_decimated: Vec<[f64; 2]>,
}

/// Everything the Training tab remembers between frames.
#[derive(Default)]
pub struct TrainingPanelState {
    /// The runs shown (replaced by each background snapshot).
    pub runs: Option<Runs>,
    /// Smoothing weight, 0 to 0.999.
    pub smoothing: f32,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Horizontal axis mode.
    pub x_axis: XAxis,
    /// The tab shown.
    pub tab: TrainingTab,
    /// Only tags containing this text.
    pub tag_filter: String,
    /// Runs switched off in the legend.
    pub hidden_runs: BTreeSet<String>,
    /// Last loading error, shown in the panel.
    pub error: Option<String>,
    /// The Runs table's sort column and direction (ascending when true).
    pub sort: Option<(usize, bool)>,
    /// The step shown by each (tag, run) image card, as an index into its steps (`None`: the
    /// newest, following a live run).
    image_step: HashMap<(String, String), usize>,
    /// The step each PR curve card shows, as an index into its steps (`None`: the newest).
    pr_step: HashMap<String, usize>,
    /// A run's logged model graph the user asked to open (the app opens it as a model tab).
    pub open_graph: Option<(String, crate::training::GraphEntry)>,
    /// Decoded images by (file, offset), or why they could not be.
    textures: HashMap<(PathBuf, u64), Result<egui::TextureHandle, String>>,
    views: HashMap<String, PlotView>,
    cache: HashMap<(String, String), CurveCache>,
    receiver: Option<Receiver<Result<Runs, String>>>,
}

impl TrainingPanelState {
    /// A panel with TensorBoard's default smoothing (0.6).
    pub fn new() -> Self {
        Self {
            smoothing: 0.6,
            ..Self::default()
        }
    }

    /// Loads `path` (and follows it as it grows) on a background thread.
    pub fn open(&mut self, path: impl Into<PathBuf>) {
        let path = path.into();
        let (sender, receiver) = channel();
        self.receiver = Some(receiver);
        self.cache.clear();
        std::thread::spawn(move || {
            let mut watcher = RunsWatcher::new(&path);
            let mut runs = Runs::default();
            loop {
                let message = match watcher.poll(&mut runs) {
                    Ok(true) => Ok(runs.clone()),
                    Ok(false) => {
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                    Err(e) => Err(e.to_string()),
                };
                let failed = message.is_err();
                if sender.send(message).is_err() || failed {
                    return; // The panel is gone, or the folder cannot be read.
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }

    /// Takes the newest snapshot from the background loader, if any.
    fn receive(&mut self) {
        let Some(receiver) = &self.receiver else {
            return;
        };
        loop {
            match receiver.try_recv() {
                Ok(Ok(runs)) => {
                    self.runs = Some(runs);
                    self.error = None;
                }
                Ok(Err(e)) => self.error = Some(e),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.receiver = None;
                    break;
                }
            }
        }
    }
}

const GRID: Color32 = Color32::from_gray(70);
const TICK_TEXT: Color32 = Color32::from_gray(160);

fn color(index: usize, alpha: u8) -> Color32 {
    let [r, g, b] = run_color(index);
    Color32::from_rgba_unmultiplied(r, g, b, alpha)
}

/// Draws the Training tab.
pub fn training_ui(ui: &mut egui::Ui, state: &mut TrainingPanelState) {
    state.receive();
    if state.receiver.is_some() {
        ui.ctx().request_repaint_after(Duration::from_millis(500));
    }
    ui.horizontal_wrapped(|ui| {
        ui.selectable_value(&mut state.tab, TrainingTab::Scalars, "Scalars");
        ui.selectable_value(&mut state.tab, TrainingTab::Distributions, "Distributions");
        ui.selectable_value(&mut state.tab, TrainingTab::Histograms, "Histograms");
        ui.selectable_value(&mut state.tab, TrainingTab::Runs, "Runs");
        ui.selectable_value(&mut state.tab, TrainingTab::Text, "Text");
        ui.selectable_value(&mut state.tab, TrainingTab::Images, "Images");
        ui.selectable_value(&mut state.tab, TrainingTab::PrCurves, "PR curves");
        ui.separator();
        ui.add(egui::Slider::new(&mut state.smoothing, 0.0..=0.999).text("Smoothing"));
        ui.checkbox(&mut state.log_y, "log y");
        egui::ComboBox::from_id_salt("training_x_axis")
            .selected_text(state.x_axis.label())
            .show_ui(ui, |ui| {
                for axis in [XAxis::Step, XAxis::Relative, XAxis::Wall] {
                    ui.selectable_value(&mut state.x_axis, axis, axis.label());
                }
            });
        ui.label("Filter tags:");
        ui.text_edit_singleline(&mut state.tag_filter);
    });
    if let Some(e) = &state.error {
        ui.colored_label(Color32::from_rgb(0xee, 0x55, 0x55), e);
    }
    let Some(runs) = state.runs.take() else {
        ui.label(if state.receiver.is_some() {
            "Loading logs…"
        } else {
            "No training logs opened."
        });
        return;
    };
    legend_ui(ui, &runs, &mut state.hidden_runs, &mut state.open_graph);
    let issues = runs.issues().count();
    if issues > 0 {
        ui.label(format!(
            "{issues} corrupt or malformed records skipped (see the log)"
        ));
    }
    egui::ScrollArea::vertical().show(ui, |ui| match state.tab {
        TrainingTab::Scalars => {
            let tags: Vec<String> = runs
                .scalar_tags()
                .into_iter()
                .filter(|t| t.contains(state.tag_filter.as_str()))
                .collect();
            if tags.is_empty() {
                ui.label("No scalar tags.");
            }
            let sections = sections(&tags);
            if sections.len() <= 1 {
                grid_ui(ui, &tags, |ui, tag, size| {
                    scalar_plot_ui(ui, state, &runs, tag, size)
                });
            } else {
                // As TensorBoard groups its cards: one section per tag prefix (`train/`,
                // `eval/`); W&B's system metrics start closed.
                for (name, tags) in sections {
                    if name.is_empty() {
                        grid_ui(ui, &tags, |ui, tag, size| {
                            scalar_plot_ui(ui, state, &runs, tag, size)
                        });
                        continue;
                    }
                    egui::CollapsingHeader::new(format!("{name} ({})", tags.len()))
                        .id_salt(("scalar_section", name.as_str()))
                        .default_open(name != "system")
                        .show(ui, |ui| {
                            grid_ui(ui, &tags, |ui, tag, size| {
                                scalar_plot_ui(ui, state, &runs, tag, size)
                            });
                        });
                }
            }
        }
        TrainingTab::Distributions | TrainingTab::Histograms => {
            let tags: Vec<String> = runs
                .histogram_tags()
                .into_iter()
                .filter(|t| t.contains(state.tag_filter.as_str()))
                .collect();
            if tags.is_empty() {
                ui.label("No histogram tags.");
            }
            let cards: Vec<(String, usize)> = tags
                .iter()
                .flat_map(|tag| {
                    runs.runs
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| {
                            r.histograms.contains_key(tag) && !state.hidden_runs.contains(&r.name)
                        })
                        .map(move |(i, _)| (tag.clone(), i))
                })
                .collect();
            let names: Vec<String> = cards.iter().map(|(t, i)| format!("{t}\u{1}{i}")).collect();
            grid_ui(ui, &names, |ui, name, size| {
                let Some((tag, index)) = name.split_once('\u{1}') else {
                    return;
                };
                let Some(run) = index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| runs.runs.get(i).map(|r| (i, r)))
                else {
                    return;
                };
                histogram_card_ui(ui, state.tab, state.x_axis, tag, run.0, run.1, size);
            });
        }
        TrainingTab::Runs => runs_table_ui(ui, &runs, &state.tag_filter, &mut state.sort),
        TrainingTab::Text => text_ui(ui, &runs, &state.tag_filter, &state.hidden_runs),
        TrainingTab::Images => images_ui(ui, state, &runs),
        TrainingTab::PrCurves => {
            let tags: Vec<String> = runs
                .pr_tags()
                .into_iter()
                .filter(|t| t.contains(state.tag_filter.as_str()))
                .collect();
            if tags.is_empty() {
                ui.label("No precision–recall curves.");
            }
            grid_ui(ui, &tags, |ui, tag, size| {
                pr_card_ui(ui, state, &runs, tag, size)
            });
        }
    });
    state.runs = Some(runs);
}

fn legend_ui(
    ui: &mut egui::Ui,
    runs: &Runs,
    hidden: &mut BTreeSet<String>,
    open_graph: &mut Option<(String, crate::training::GraphEntry)>,
) {
    ui.horizontal_wrapped(|ui| {
        for (i, run) in runs.runs.iter().enumerate() {
            let mut shown = !hidden.contains(&run.name);
            let text = egui::RichText::new(&run.name).color(color(i, 255));
            if ui.checkbox(&mut shown, text).changed() {
                if shown {
                    hidden.remove(&run.name);
                } else {
                    hidden.insert(run.name.clone());
                }
            }
            // A run that logged its model's graph (TensorBoard's Graphs tab) opens it as a model.
            if let Some(graph) = &run.graph
                && ui
                    .small_button("graph")
                    .on_hover_text(format!(
                        "Open the model graph this run logged (step {}) in a tab",
                        graph.step
                    ))
                    .clicked()
            {
                *open_graph = Some((run.name.clone(), graph.clone()));
            }
        }
    });
}

/// Tags grouped by what comes before their first `/`, in order of first appearance; tags with no
/// `/` come first, in a section named "".
fn sections(tags: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut plain = Vec::new();
    for tag in tags {
        match tag.split_once('/') {
            Some((prefix, _)) => match out.iter_mut().find(|(p, _)| p == prefix) {
                Some((_, list)) => list.push(tag.clone()),
                None => out.push((prefix.to_owned(), vec![tag.clone()])),
            },
            None => plain.push(tag.clone()),
        }
    }
    if !plain.is_empty() {
        out.insert(0, (String::new(), plain));
    }
    out
}

/// One cell of the Runs table.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Empty,
    Number(f64),
    Text(String),
}

impl Cell {
    fn show(&self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::Number(v) if v.is_nan() => "NaN".to_owned(),
            Self::Number(v) if *v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) => {
                format!("{v:.4e}")
            }
            Self::Number(v) if v.fract() == 0.0 => format!("{v:.0}"),
            Self::Number(v) => format!("{v:.5}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned(),
            Self::Text(t) => t.clone(),
        }
    }

    /// Order for sorting: empty cells last, numbers before text.
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Self::Empty, Self::Empty) => Ordering::Equal,
            (Self::Empty, _) => Ordering::Greater,
            (_, Self::Empty) => Ordering::Less,
            (Self::Number(a), Self::Number(b)) => a.total_cmp(b),
            (Self::Number(_), Self::Text(_)) => Ordering::Less,
            (Self::Text(_), Self::Number(_)) => Ordering::Greater,
            (Self::Text(a), Self::Text(b)) => a.cmp(b),
        }
    }
}

/// The Runs table: column names and one row of cells per run (with the run's index), in the
/// order `sort` asks for. Columns: each hyperparameter (a run's own `wandb.*` facts last), then
/// the last value of each scalar tag that passes the filter (system metrics left out).
fn runs_table(
    runs: &Runs,
    filter: &str,
    sort: Option<(usize, bool)>,
) -> (Vec<String>, Vec<(usize, Vec<Cell>)>) {
    let mut hparams: Vec<&String> = runs
        .runs
        .iter()
        .flat_map(|r| r.hparams.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    hparams.sort_by_key(|k| (k.starts_with("wandb."), k.as_str()));
    let metrics: Vec<String> = runs
        .scalar_tags()
        .into_iter()
        .filter(|t| !t.starts_with("system/") && t.contains(filter))
        .collect();
    let mut columns = vec!["run".to_owned()];
    columns.extend(hparams.iter().map(|k| (*k).clone()));
    columns.extend(metrics.iter().map(|t| format!("{t} (last)")));
    let mut rows: Vec<(usize, Vec<Cell>)> = runs
        .runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let mut cells = vec![Cell::Text(run.name.clone())];
            cells.extend(hparams.iter().map(|k| match run.hparams.get(*k) {
                Some(HParam::Number(v)) => Cell::Number(*v),
                Some(HParam::Bool(b)) => Cell::Text(b.to_string()),
                Some(HParam::Text(t)) => Cell::Text(t.clone()),
                None => Cell::Empty,
            }));
            cells.extend(metrics.iter().map(|t| {
                run.scalars
                    .get(t)
                    .and_then(|s| s.values.last())
                    .map_or(Cell::Empty, |v| Cell::Number(*v))
            }));
            (i, cells)
        })
        .collect();
    if let Some((column, ascending)) = sort.filter(|(c, _)| *c < columns.len()) {
        rows.sort_by(|a, b| {
            let order = a.1[column].order(&b.1[column]);
            match (ascending, &a.1[column], &b.1[column]) {
                // Empty cells stay last either way.
                (false, x, y) if *x != Cell::Empty && *y != Cell::Empty => order.reverse(),
                _ => order,
            }
        });
    }
    (columns, rows)
}

fn runs_table_ui(ui: &mut egui::Ui, runs: &Runs, filter: &str, sort: &mut Option<(usize, bool)>) {
    let (columns, rows) = runs_table(runs, filter, *sort);
    if columns.len() == 1 {
        ui.label("No hyperparameters or scalars.");
        return;
    }
    ui.label("Click a column's name to sort by it.");
    egui::ScrollArea::horizontal().show(ui, |ui| {
        egui::Grid::new("training_runs_table")
            .striped(true)
            .spacing(Vec2::new(14.0, 4.0))
            .show(ui, |ui| {
                for (c, name) in columns.iter().enumerate() {
                    let arrow = match *sort {
                        Some((s, true)) if s == c => " ▲",
                        Some((s, false)) if s == c => " ▼",
                        _ => "",
                    };
                    let header = egui::RichText::new(format!("{name}{arrow}")).strong();
                    if ui.add(egui::Button::new(header).frame(false)).clicked() {
                        *sort = match *sort {
                            Some((s, true)) if s == c => Some((c, false)),
                            _ => Some((c, true)),
                        };
                    }
                }
                ui.end_row();
                for (index, cells) in &rows {
                    for (c, cell) in cells.iter().enumerate() {
                        let text = egui::RichText::new(cell.show());
                        ui.label(if c == 0 {
                            text.color(color(*index, 255))
                        } else {
                            text
                        });
                    }
                    ui.end_row();
                }
            });
    });
}

/// Text summaries: for each tag, each run's entries in step order.
fn text_ui(ui: &mut egui::Ui, runs: &Runs, filter: &str, hidden: &BTreeSet<String>) {
    let tags: BTreeSet<&String> = runs
        .runs
        .iter()
        .flat_map(|r| r.texts.keys())
        .filter(|t| t.contains(filter))
        .collect();
    if tags.is_empty() {
        ui.label("No text summaries.");
        return;
    }
    for tag in tags {
        egui::CollapsingHeader::new(tag.as_str())
            .default_open(true)
            .show(ui, |ui| {
                for (i, run) in runs.runs.iter().enumerate() {
                    let Some(entries) = run.texts.get(tag).filter(|_| !hidden.contains(&run.name))
                    else {
                        continue;
                    };
                    ui.label(egui::RichText::new(&run.name).color(color(i, 255)));
                    // The newest last, as they were logged; long runs show their last 200.
                    for entry in entries.iter().skip(entries.len().saturating_sub(200)) {
                        ui.horizontal_wrapped(|ui| {
                            ui.label(
                                egui::RichText::new(format!("step {}", entry.step))
                                    .color(TICK_TEXT),
                            );
                            ui.label(&entry.text);
                        });
                    }
                }
            });
    }
}

/// The curve each shown run has for `tag` at `step` or before it (the newest such), by run index.
fn pr_curves_at<'a>(
    runs: &'a Runs,
    hidden: &BTreeSet<String>,
    tag: &str,
    step: i64,
) -> Vec<(usize, &'a crate::training::PrCurve)> {
    runs.runs
        .iter()
        .enumerate()
        .filter(|(_, r)| !hidden.contains(&r.name))
        .filter_map(|(i, r)| {
            let curves = r.pr_curves.get(tag)?;
            curves
                .iter()
                .rev()
                .find(|c| c.step <= step)
                .or_else(|| curves.first())
                .map(|c| (i, c))
        })
        .collect()
}

/// One PR curve card: precision against recall for every shown run, a slider over the steps, and
/// on hover the nearest threshold's figures, as TensorBoard's PR curves dashboard.
fn pr_card_ui(
    ui: &mut egui::Ui,
    state: &mut TrainingPanelState,
    runs: &Runs,
    tag: &str,
    size: Vec2,
) {
    let mut steps: Vec<i64> = runs
        .runs
        .iter()
        .filter(|r| !state.hidden_runs.contains(&r.name))
        .filter_map(|r| r.pr_curves.get(tag))
        .flatten()
        .map(|c| c.step)
        .collect();
    steps.sort_unstable();
    steps.dedup();
    let Some(last) = steps.len().checked_sub(1) else {
        return;
    };
    let mut at = state.pr_step.get(tag).copied().unwrap_or(last).min(last);
    if last > 0 {
        let label = format!("step {}", steps[at]);
        let slider = egui::Slider::new(&mut at, 0..=last)
            .show_value(false)
            .text(label);
        if ui.add(slider).changed() {
            if at == last {
                state.pr_step.remove(tag);
            } else {
                state.pr_step.insert(tag.to_owned(), at);
            }
        }
    }
    let step = steps[at];
    let (response, painter, plot) = card(ui, &format!("{tag} · step {step}"), size);
    let frame = Frame {
        rect: plot,
        x: (0.0, 1.0),
        y: (0.0, 1.0),
    };
    axes(&painter, &frame, XAxis::Step, format_tick);
    let curves = pr_curves_at(runs, &state.hidden_runs, tag, step);
    // A threshold nothing passes (TP + FP = 0) has no precision (TensorBoard writes 0 there);
    // such points are left out rather than drawn as a plunge to the origin.
    let defined = |c: &crate::training::PrCurve, k: usize| {
        c.recall[k].is_finite()
            && c.precision[k].is_finite()
            && c.tp
                .get(k)
                .zip(c.fp.get(k))
                .is_none_or(|(t, f)| t + f > 0.0)
    };
    for (index, curve) in &curves {
        let points: Vec<Pos2> = (0..curve.recall.len().min(curve.precision.len()))
            .filter(|&k| defined(curve, k))
            .map(|k| frame.screen(curve.recall[k], curve.precision[k]))
            .collect();
        painter.add(Shape::line(points, Stroke::new(1.5, color(*index, 255))));
    }
    let Some(pos) = response.hover_pos().filter(|p| plot.contains(*p)) else {
        return;
    };
    // The threshold nearest the cursor, over every shown curve.
    let nearest = curves
        .iter()
        .flat_map(|(i, c)| (0..c.recall.len()).map(move |k| (*i, *c, k)))
        .filter(|(_, c, k)| *k < c.precision.len() && defined(c, *k))
        .min_by(|a, b| {
            let d = |(_, c, k): &(usize, &crate::training::PrCurve, usize)| {
                frame.screen(c.recall[*k], c.precision[*k]).distance_sq(pos)
            };
            d(a).total_cmp(&d(b))
        });
    if let Some((index, curve, k)) = nearest {
        let p = frame.screen(curve.recall[k], curve.precision[k]);
        painter.circle_filled(p, 3.5, color(index, 255));
        let threshold = k as f64 / (curve.recall.len().max(2) - 1) as f64;
        let text = format!(
            "{}\nthreshold {threshold:.3}: precision {:.4}, recall {:.4}\nTP {} FP {} TN {} FN {}",
            runs.runs[index].name,
            curve.precision[k],
            curve.recall[k],
            curve.tp[k],
            curve.fp[k],
            curve.tn[k],
            curve.fn_[k],
        );
        painter.text(
            plot.left_bottom() + Vec2::new(6.0, -6.0),
            Align2::LEFT_BOTTOM,
            text,
            FontId::proportional(11.0),
            ui.visuals().strong_text_color(),
        );
    }
}

/// Decoded images kept as textures; past this many the cache starts again (what is on screen is
/// decoded again next frame).
const MAX_TEXTURES: usize = 256;

/// The Images tab: for each image tag and shown run, the images of one step (every sample side by
/// side) with a slider over the steps, as TensorBoard's image dashboard.
fn images_ui(ui: &mut egui::Ui, state: &mut TrainingPanelState, runs: &Runs) {
    let tags: Vec<String> = runs
        .image_tags()
        .into_iter()
        .filter(|t| t.contains(state.tag_filter.as_str()))
        .collect();
    if tags.is_empty() {
        ui.label("No images.");
        return;
    }
    if state.textures.len() > MAX_TEXTURES {
        state.textures.clear();
    }
    let width = ui.available_width().max(200.0);
    for tag in &tags {
        for (index, run) in runs.runs.iter().enumerate() {
            let Some(entries) = run
                .images
                .get(tag)
                .filter(|_| !state.hidden_runs.contains(&run.name))
            else {
                continue;
            };
            let mut steps: Vec<i64> = entries.iter().map(|e| e.step).collect();
            steps.dedup();
            let Some(&newest) = steps.last() else {
                continue;
            };
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new(tag).strong());
                ui.label(egui::RichText::new(&run.name).color(color(index, 255)));
            });
            let key = (tag.clone(), run.name.clone());
            let mut at = state
                .image_step
                .get(&key)
                .copied()
                .unwrap_or(steps.len() - 1)
                .min(steps.len() - 1);
            if steps.len() > 1 {
                let label = format!("step {}", steps[at]);
                let slider = egui::Slider::new(&mut at, 0..=steps.len() - 1)
                    .show_value(false)
                    .text(label);
                if ui.add(slider).changed() {
                    // The newest step follows a live run; any other stays put.
                    if at == steps.len() - 1 {
                        state.image_step.remove(&key);
                    } else {
                        state.image_step.insert(key.clone(), at);
                    }
                }
            } else {
                ui.label(egui::RichText::new(format!("step {newest}")).color(TICK_TEXT));
            }
            let step = steps[at];
            let shown: Vec<&crate::training::ImageEntry> =
                entries.iter().filter(|e| e.step == step).collect();
            ui.horizontal_wrapped(|ui| {
                let each = (width / shown.len().max(1) as f32 - 8.0).clamp(64.0, 512.0);
                for entry in shown {
                    let texture = state
                        .textures
                        .entry((entry.file.to_path_buf(), entry.offset))
                        .or_insert_with(|| {
                            entry.decode_rgba().map(|(w, h, rgba)| {
                                let image = egui::ColorImage::from_rgba_unmultiplied(
                                    [w as usize, h as usize],
                                    &rgba,
                                );
                                // Small pictures (MNIST digits) are scaled up: keep their pixels.
                                ui.ctx().load_texture(
                                    format!("training-image-{}", entry.offset),
                                    image,
                                    egui::TextureOptions::NEAREST,
                                )
                            })
                        });
                    match texture {
                        Ok(texture) => {
                            let [w, h] = texture.size().map(|v| v as f32);
                            // Up to 256 px tall, and never past the card's share of the width.
                            let scale = (256.0 / h).min(each / w).max(f32::MIN_POSITIVE);
                            let size = Vec2::new(w * scale, h * scale);
                            ui.vertical(|ui| {
                                ui.add(egui::Image::new(egui::load::SizedTexture::new(
                                    texture.id(),
                                    size,
                                )));
                                ui.label(
                                    egui::RichText::new(format!(
                                        "#{} · {} × {}",
                                        entry.sample, w as u32, h as u32
                                    ))
                                    .color(TICK_TEXT)
                                    .small(),
                                );
                            });
                        }
                        Err(e) => {
                            ui.colored_label(Color32::from_rgb(0xee, 0x55, 0x55), e.as_str());
                        }
                    }
                }
            });
            ui.add_space(8.0);
        }
    }
}

/// Lays cards out in rows that fill the width.
fn grid_ui(ui: &mut egui::Ui, names: &[String], mut card: impl FnMut(&mut egui::Ui, &str, Vec2)) {
    let width = ui.available_width().max(200.0);
    let cols = ((width / 420.0).floor() as usize).clamp(1, 4);
    let card_w = width / cols as f32 - 8.0;
    let size = Vec2::new(card_w, (card_w * 0.7).clamp(180.0, 360.0));
    for row in names.chunks(cols) {
        ui.horizontal(|ui| {
            for name in row {
                ui.vertical(|ui| {
                    ui.set_width(size.x);
                    card(ui, name, size);
                });
            }
        });
        ui.add_space(6.0);
    }
}

/// Maps data to screen inside `rect`.
#[derive(Clone, Copy)]
struct Frame {
    rect: Rect,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn screen(&self, x: f64, y: f64) -> Pos2 {
        let fx = ((x - self.x.0) / (self.x.1 - self.x.0)) as f32;
        let fy = ((y - self.y.0) / (self.y.1 - self.y.0)) as f32;
        Pos2::new(
            self.rect.left() + fx * self.rect.width(),
            self.rect.bottom() - fy * self.rect.height(),
        )
    }

    fn data_x(&self, px: f32) -> f64 {
        self.x.0 + f64::from((px - self.rect.left()) / self.rect.width()) * (self.x.1 - self.x.0)
    }

    fn data_y(&self, py: f32) -> f64 {
        self.y.0 + f64::from((self.rect.bottom() - py) / self.rect.height()) * (self.y.1 - self.y.0)
    }
}

fn axes(
    painter: &egui::Painter,
    frame: &Frame,
    x_axis: XAxis,
    y_label: impl Fn(f64, f64) -> String,
) {
    let font = FontId::proportional(10.0);
    let y_ticks = nice_ticks(frame.y.0, frame.y.1, 5);
    let y_spacing = match y_ticks.as_slice() {
        [a, b, ..] => b - a,
        _ => 1.0,
    };
    for &t in &y_ticks {
        let p = frame.screen(frame.x.0, t);
        painter.line_segment(
            [
                Pos2::new(frame.rect.left(), p.y),
                Pos2::new(frame.rect.right(), p.y),
            ],
            Stroke::new(0.5, GRID),
        );
        painter.text(
            Pos2::new(frame.rect.left() - 4.0, p.y),
            Align2::RIGHT_CENTER,
            y_label(t, y_spacing),
            font.clone(),
            TICK_TEXT,
        );
    }
    let x_ticks = nice_ticks(
        frame.x.0,
        frame.x.1,
        (frame.rect.width() / 90.0).max(2.0) as usize,
    );
    let x_spacing = match x_ticks.as_slice() {
        [a, b, ..] => b - a,
        _ => 1.0,
    };
    for &t in &x_ticks {
        let p = frame.screen(t, frame.y.0);
        painter.line_segment(
            [
                Pos2::new(p.x, frame.rect.top()),
                Pos2::new(p.x, frame.rect.bottom()),
            ],
            Stroke::new(0.5, GRID),
        );
        painter.text(
            Pos2::new(p.x, frame.rect.bottom() + 3.0),
            Align2::CENTER_TOP,
            format_time_tick(x_axis, t, x_spacing),
            font.clone(),
            TICK_TEXT,
        );
    }
    painter.rect_stroke(
        frame.rect,
        CornerRadius::ZERO,
        Stroke::new(1.0, GRID),
        StrokeKind::Inside,
    );
}

/// Allocates a card: title, plot rectangle with margins for tick labels.
fn card(ui: &mut egui::Ui, title: &str, size: Vec2) -> (egui::Response, egui::Painter, Rect) {
    let (response, painter) = ui.allocate_painter(size, Sense::click_and_drag());
    let outer = response.rect;
    painter.rect_filled(outer, CornerRadius::same(3), ui.visuals().extreme_bg_color);
    painter.text(
        outer.left_top() + Vec2::new(8.0, 6.0),
        Align2::LEFT_TOP,
        title,
        FontId::proportional(13.0),
        ui.visuals().strong_text_color(),
    );
    let plot = Rect::from_min_max(
        outer.left_top() + Vec2::new(56.0, 28.0),
        outer.right_bottom() - Vec2::new(12.0, 22.0),
    );
    (response, painter, plot)
}

fn fit(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    if hi > lo {
        let pad = (hi - lo) * 0.05;
        Some((lo - pad, hi + pad))
    } else {
        Some((lo - 0.5, hi + 0.5))
    }
}

fn transform_y(log_y: bool, v: f64) -> f64 {
    if log_y {
        if v > 0.0 { v.log10() } else { f64::NAN }
    } else {
        v
    }
}

fn refresh_curve(
    cache: &mut CurveCache,
    series: &ScalarSeries,
    smoothing: f32,
    log_y: bool,
    x_axis: XAxis,
) {
    let key = (f64::from(smoothing).to_bits(), log_y, x_axis, series.len());
    if cache.key == key && !cache.xs.is_empty() {
        return;
    }
    cache.key = key;
    cache.xs = x_axis.xs(series);
    cache.raw = series
        .values
        .iter()
        .map(|&v| transform_y(log_y, v))
        .collect();
    cache.smooth = smooth_ema(&cache.raw, f64::from(smoothing));
    cache.view_key = (0, 0, 0);
}

fn zoom_and_pan(ui: &egui::Ui, response: &egui::Response, frame: &Frame, view: &mut PlotView) {
    if response.double_clicked() {
        *view = PlotView::default();
        return;
    }
    if response.dragged() {
        let d = response.drag_delta();
        let dx = -f64::from(d.x / frame.rect.width()) * (frame.x.1 - frame.x.0);
        let dy = f64::from(d.y / frame.rect.height()) * (frame.y.1 - frame.y.0);
        view.x = Some((frame.x.0 + dx, frame.x.1 + dx));
        view.y = Some((frame.y.0 + dy, frame.y.1 + dy));
    }
    if let Some(pos) = response.hover_pos() {
        let (scroll, shift) = ui.ctx().input_mut(|i| {
            let s = i.smooth_scroll_delta.y;
            i.smooth_scroll_delta = Vec2::ZERO;
            (s, i.modifiers.shift)
        });
        if scroll != 0.0 {
            let factor = f64::from((-scroll * 0.003).exp());
            if shift {
                let c = frame.data_y(pos.y);
                view.y = Some((c + (frame.y.0 - c) * factor, c + (frame.y.1 - c) * factor));
                view.x = Some(frame.x);
            } else {
                let c = frame.data_x(pos.x);
                view.x = Some((c + (frame.x.0 - c) * factor, c + (frame.x.1 - c) * factor));
                view.y = Some(frame.y);
            }
        }
    }
}

fn scalar_plot_ui(
    ui: &mut egui::Ui,
    state: &mut TrainingPanelState,
    runs: &Runs,
    tag: &str,
    size: Vec2,
) {
    let (response, painter, plot) = card(ui, tag, size);
    let (smoothing, log_y, x_axis) = (state.smoothing, state.log_y, state.x_axis);
    let mut shown = Vec::new();
    for (i, run) in runs.runs.iter().enumerate() {
        if state.hidden_runs.contains(&run.name) {
            continue;
        }
        let Some(series) = run.scalars.get(tag) else {
            continue;
        };
        let cache = state
            .cache
            .entry((run.name.clone(), tag.to_owned()))
            .or_default();
        refresh_curve(cache, series, smoothing, log_y, x_axis);
        shown.push((i, run.name.clone()));
    }
    let caches: Vec<(usize, &CurveCache)> = shown
        .iter()
        .filter_map(|(i, name)| {
            state
                .cache
                .get(&(name.clone(), tag.to_owned()))
                .map(|c| (*i, c))
        })
        .collect();
    let view = state.views.get(tag).copied().unwrap_or_default();
    let x = view
        .x
        .or_else(|| fit(caches.iter().flat_map(|(_, c)| c.xs.iter().copied())));
    let y = view
        .y
        .or_else(|| fit(caches.iter().flat_map(|(_, c)| c.raw.iter().copied())));
    let (Some(x), Some(y)) = (x, y) else {
        painter.text(
            plot.center(),
            Align2::CENTER_CENTER,
            "no data",
            FontId::proportional(12.0),
            TICK_TEXT,
        );
        return;
    };
    let frame = Frame { rect: plot, x, y };
    axes(&painter, &frame, x_axis, |v, spacing| {
        if log_y {
            format_tick(10f64.powf(v), 10f64.powf(v) * 0.1)
        } else {
            format_tick(v, spacing)
        }
    });
    let clipped = painter.with_clip_rect(plot);
    let columns = plot.width().max(1.0) as usize;
    let view_key = (
        x.0.to_bits() ^ y.0.to_bits().rotate_left(1),
        x.1.to_bits() ^ y.1.to_bits().rotate_left(1),
        columns,
    );
    for (i, name) in &shown {
        let Some(cache) = state.cache.get_mut(&(name.clone(), tag.to_owned())) else {
            continue;
        };
        if cache.view_key != view_key {
            cache.raw_decimated = decimate(&cache.xs, &cache.raw, x.0, x.1, columns);
            cache.smooth_decimated = decimate(&cache.xs, &cache.smooth, x.0, x.1, columns);
            cache.view_key = view_key;
        }
        let to_screen = |pts: &[[f64; 2]]| -> Vec<Pos2> {
            pts.iter().map(|p| frame.screen(p[0], p[1])).collect()
        };
        if smoothing > 0.0 {
            clipped.add(Shape::line(
                to_screen(&cache.raw_decimated),
                Stroke::new(1.0, color(*i, 70)),
            ));
            clipped.add(Shape::line(
                to_screen(&cache.smooth_decimated),
                Stroke::new(1.6, color(*i, 255)),
            ));
        } else {
            clipped.add(Shape::line(
                to_screen(&cache.raw_decimated),
                Stroke::new(1.4, color(*i, 255)),
            ));
        }
    }
    // Hover readout: the nearest point of every run.
    if let Some(pos) = response.hover_pos().filter(|p| plot.contains(*p)) {
        let hx = frame.data_x(pos.x);
        painter.line_segment(
            [
                Pos2::new(pos.x, plot.top()),
                Pos2::new(pos.x, plot.bottom()),
            ],
            Stroke::new(1.0, TICK_TEXT),
        );
        let mut lines = Vec::new();
        for (i, name) in &shown {
            let Some(cache) = state.cache.get(&(name.clone(), tag.to_owned())) else {
                continue;
            };
            let Some(series) = runs.runs.get(*i).and_then(|r| r.scalars.get(tag)) else {
                continue;
            };
            let k = cache.xs.partition_point(|&v| v < hx);
            let nearest = [k.saturating_sub(1), k]
                .into_iter()
                .filter(|&j| j < cache.xs.len())
                .min_by(|&a, &b| {
                    (cache.xs[a] - hx)
                        .abs()
                        .total_cmp(&(cache.xs[b] - hx).abs())
                });
            if let Some(j) = nearest {
                let (Some(value), Some(smooth), Some(step)) = (
                    series.values.get(j),
                    cache.smooth.get(j),
                    series.steps.get(j),
                ) else {
                    continue;
                };
                let smooth = if log_y { 10f64.powf(*smooth) } else { *smooth };
                lines.push((
                    *i,
                    format!("{name}: {value:.5} (smoothed {smooth:.5}) @ step {step}"),
                ));
                if let (Some(&px), Some(&py)) = (cache.xs.get(j), cache.smooth.get(j)) {
                    painter.circle_filled(frame.screen(px, py), 3.0, color(*i, 255));
                }
            }
        }
        let mut at = plot.left_top() + Vec2::new(6.0, 4.0);
        for (i, text) in lines {
            let r = painter.text(
                at,
                Align2::LEFT_TOP,
                text,
                FontId::proportional(11.0),
                color(i, 255),
            );
            at.y = r.bottom() + 1.0;
        }
    }
    let mut new_view = view;
    zoom_and_pan(ui, &response, &frame, &mut new_view);
    if new_view != view {
        state.views.insert(tag.to_owned(), new_view);
        ui.ctx().request_repaint();
    }
}

fn histogram_card_ui(
    ui: &mut egui::Ui,
    tab: TrainingTab,
    x_axis: XAxis,
    tag: &str,
    run_index: usize,
    run: &crate::training::Run,
    size: Vec2,
) {
    let Some(series) = run.histograms.get(tag) else {
        return;
    };
    let (response, painter, plot) = card(ui, &format!("{tag} — {}", run.name), size);
    let start = series.points.first().map_or(0.0, |h| h.wall_time);
    let x_of = |step: i64, wall: f64| match x_axis {
        XAxis::Step => step as f64,
        XAxis::Relative => wall - start,
        XAxis::Wall => wall,
    };
    let base = run_color(run_index);
    if tab == TrainingTab::Distributions {
        let bands = distribution(series);
        let x = fit(bands.iter().map(|(s, w, _)| x_of(*s, *w)));
        let y = fit(bands.iter().flat_map(|(_, _, b)| [b[0], b[8]]));
        let (Some(x), Some(y)) = (x, y) else { return };
        let frame = Frame { rect: plot, x, y };
        axes(&painter, &frame, x_axis, format_tick);
        // Nested bands, outermost faintest, as TensorBoard draws them.
        for (k, alpha) in [(0usize, 40u8), (1, 70), (2, 100), (3, 140)] {
            let lo = k;
            let hi = NORMAL_HISTOGRAM_BPS.len() - 1 - k;
            for pair in bands.windows(2) {
                let [(s0, w0, b0), (s1, w1, b1)] = pair else {
                    continue;
                };
                let (x0, x1) = (x_of(*s0, *w0), x_of(*s1, *w1));
                let quad = vec![
                    frame.screen(x0, b0[hi]),
                    frame.screen(x1, b1[hi]),
                    frame.screen(x1, b1[lo]),
                    frame.screen(x0, b0[lo]),
                ];
                painter.add(Shape::convex_polygon(
                    quad,
                    Color32::from_rgba_unmultiplied(base[0], base[1], base[2], alpha),
                    Stroke::NONE,
                ));
            }
        }
        let median: Vec<Pos2> = bands
            .iter()
            .map(|(s, w, b)| frame.screen(x_of(*s, *w), b[4]))
            .collect();
        painter.add(Shape::line(median, Stroke::new(1.2, color(run_index, 255))));
        if let Some(pos) = response.hover_pos().filter(|p| plot.contains(*p)) {
            let hx = frame.data_x(pos.x);
            if let Some((s, _, b)) = bands.iter().min_by(|a, b| {
                (x_of(a.0, a.1) - hx)
                    .abs()
                    .total_cmp(&(x_of(b.0, b.1) - hx).abs())
            }) {
                let text = format!(
                    "step {s}: min {:.4}  median {:.4}  max {:.4}",
                    b[0], b[4], b[8]
                );
                painter.text(
                    plot.left_top() + Vec2::new(6.0, 4.0),
                    Align2::LEFT_TOP,
                    text,
                    FontId::proportional(11.0),
                    TICK_TEXT,
                );
            }
        }
    } else {
        // Stacked histograms: oldest at the back (top), newest in front (bottom), each offset.
        let n = series.points.len();
        let stride = n.div_ceil(40).max(1);
        let shown: Vec<_> = series.points.iter().step_by(stride).collect();
        let x = fit(shown.iter().flat_map(|h| [h.min, h.max]));
        let peak = shown
            .iter()
            .flat_map(|h| {
                h.buckets
                    .iter()
                    .map(|b| b.count / (b.right - b.left).max(f64::MIN_POSITIVE))
            })
            .fold(0.0f64, f64::max);
        let (Some(x), true) = (x, peak > 0.0) else {
            return;
        };
        let rows = shown.len().max(1) as f64;
        let frame = Frame {
            rect: plot,
            x,
            y: (0.0, rows + 3.0),
        };
        axes(&painter, &frame, XAxis::Step, |_, _| String::new());
        for (k, h) in shown.iter().enumerate() {
            let offset = rows - 1.0 - k as f64;
            let mut line = Vec::with_capacity(h.buckets.len() * 2);
            for b in &h.buckets {
                let density = b.count / (b.right - b.left).max(f64::MIN_POSITIVE) / peak * 4.0;
                line.push(frame.screen(b.left, offset + density));
                line.push(frame.screen(b.right, offset + density));
            }
            let shade = 80 + (175 * k / shown.len().max(1)) as u8;
            painter.add(Shape::line(
                line,
                Stroke::new(
                    1.0,
                    Color32::from_rgba_unmultiplied(base[0], base[1], base[2], shade),
                ),
            ));
        }
        if let (Some(first), Some(last)) = (shown.first(), shown.last()) {
            let text = format!("steps {} (back) → {} (front)", first.step, last.step);
            painter.text(
                plot.left_top() + Vec2::new(6.0, 4.0),
                Align2::LEFT_TOP,
                text,
                FontId::proportional(11.0),
                TICK_TEXT,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::{Histogram, HistogramSeries, Run};

    fn runs() -> Runs {
        let mut run = Run::new("a");
        for i in 0..5000 {
            run.push_scalar("loss", i, 1.7e9 + i as f64, 1.0 / (1.0 + i as f64));
        }
        let buckets = vec![
            crate::training::Bucket {
                left: -1.0,
                right: 0.0,
                count: 3.0,
            },
            crate::training::Bucket {
                left: 0.0,
                right: 1.0,
                count: 5.0,
            },
        ];
        let points = (0..10)
            .map(|s| Histogram {
                step: s,
                wall_time: s as f64,
                min: -1.0,
                max: 1.0,
                num: 8.0,
                sum: 0.0,
                sum_squares: 0.0,
                buckets: buckets.clone(),
            })
            .collect();
        run.histograms
            .insert("w".into(), HistogramSeries { points });
        Runs {
            root: "r".into(),
            runs: vec![run],
        }
    }

    #[test]
    fn tags_in_sections_by_prefix() {
        let tags: Vec<String> = [
            "loss",
            "eval/acc",
            "train/loss",
            "eval/f1",
            "lr",
            "system/cpu",
        ]
        .map(String::from)
        .to_vec();
        let s = sections(&tags);
        let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["", "eval", "train", "system"]);
        assert_eq!(s[0].1, ["loss", "lr"]);
        assert_eq!(s[1].1, ["eval/acc", "eval/f1"]);
    }

    /// The Runs table: hyperparameters, then last values; sorting keeps empty cells last.
    #[test]
    fn runs_table_sorts_by_any_column() {
        let mut runs = Runs::default();
        for (name, lr, loss) in [
            ("a", Some(3e-4), 0.5),
            ("b", Some(1e-3), 0.25),
            ("c", None, 0.75),
        ] {
            let mut run = Run::new(name);
            if let Some(lr) = lr {
                run.hparams.insert("lr".into(), HParam::Number(lr));
            }
            run.hparams
                .insert("wandb.project".into(), HParam::Text("p".into()));
            run.push_scalar("loss", 0, 0.0, 9.0);
            run.push_scalar("loss", 1, 1.0, loss);
            run.push_scalar("system/cpu", 0, 0.0, 1.0);
            runs.runs.push(run);
        }
        let (columns, rows) = runs_table(&runs, "", None);
        assert_eq!(columns, ["run", "lr", "wandb.project", "loss (last)"]);
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(rows[1].1[3], Cell::Number(0.25));
        let order = |sort| {
            runs_table(&runs, "", Some(sort))
                .1
                .iter()
                .map(|r| r.0)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            order((1, true)),
            [0, 1, 2],
            "by lr, the run without one last"
        );
        assert_eq!(order((1, false)), [1, 0, 2]);
        assert_eq!(order((3, true)), [1, 0, 2], "by final loss");
        assert_eq!(order((3, false)), [2, 0, 1]);
        assert_eq!(Cell::Number(3e-4).show(), "3.0000e-4");
        assert_eq!(Cell::Number(0.25).show(), "0.25");
        assert_eq!(Cell::Number(32.0).show(), "32");
        // The tag filter narrows the metric columns.
        assert_eq!(runs_table(&runs, "acc", None).0.len(), 3);
    }

    /// The PR tab shows each run's newest curve at or before the chosen step.
    #[test]
    fn pr_curves_at_a_step() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/training/pr");
        let runs = crate::training::load_runs(root).unwrap();
        let hidden = BTreeSet::new();
        let at = pr_curves_at(&runs, &hidden, "val/pr", 1);
        assert_eq!(at.len(), 2, "both runs");
        assert!(at.iter().all(|(_, c)| c.step == 1));
        let at = pr_curves_at(&runs, &hidden, "val/pr", 99);
        assert!(at.iter().all(|(_, c)| c.step == 2), "the newest");
        let hidden: BTreeSet<String> = [runs.runs[0].name.clone()].into();
        assert_eq!(pr_curves_at(&runs, &hidden, "val/pr", 2).len(), 1);

        let ctx = egui::Context::default();
        let mut state = TrainingPanelState::new();
        state.runs = Some(runs);
        state.tab = TrainingTab::PrCurves;
        let input = egui::RawInput {
            screen_rect: Some(Rect::from_min_size(Pos2::ZERO, Vec2::new(1000.0, 800.0))),
            ..Default::default()
        };
        let mut output = ctx.run_ui(input, |ui| {
            egui::CentralPanel::default().show(ui, |ui| training_ui(ui, &mut state));
        });
        output.textures_delta.clear();
        assert!(!output.shapes.is_empty());
    }

    /// The Images tab decodes what is shown: each tag's newest step, every sample of it.
    #[test]
    fn draws_logged_images() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/training/images");
        let runs = crate::training::load_runs(root).unwrap();
        let ctx = egui::Context::default();
        let mut state = TrainingPanelState::new();
        state.runs = Some(runs);
        state.tab = TrainingTab::Images;
        let input = egui::RawInput {
            screen_rect: Some(Rect::from_min_size(Pos2::ZERO, Vec2::new(1200.0, 3000.0))),
            ..Default::default()
        };
        let mut output = ctx.run_ui(input, |ui| {
            egui::CentralPanel::default().show(ui, |ui| training_ui(ui, &mut state));
        });
        output.textures_delta.clear();
        // torch: two tags, one image each at the newest step; tf: one tag, three samples.
        assert_eq!(state.textures.len(), 5);
        for texture in state.textures.values() {
            let texture = texture.as_ref().unwrap();
            assert!(texture.size()[0] >= 24);
        }
    }

    /// Runs the panel headless for a frame in each tab and checks that it drew the curves.
    #[test]
    fn draws_every_tab() {
        let ctx = egui::Context::default();
        let mut state = TrainingPanelState::new();
        state.runs = Some(runs());
        for tab in [
            TrainingTab::Scalars,
            TrainingTab::Distributions,
            TrainingTab::Histograms,
            TrainingTab::Runs,
            TrainingTab::Text,
            TrainingTab::Images,
            TrainingTab::PrCurves,
        ] {
            state.tab = tab;
            let input = egui::RawInput {
                screen_rect: Some(Rect::from_min_size(Pos2::ZERO, Vec2::new(1000.0, 800.0))),
                ..Default::default()
            };
            let mut output = ctx.run_ui(input, |ui| {
                egui::CentralPanel::default().show(ui, |ui| training_ui(ui, &mut state));
            });
            assert!(!output.shapes.is_empty());
            output.textures_delta.clear();
        }
        // The scalar curve was decimated to the plot width, not drawn point by point.
        let cache = &state.cache[&("a".to_owned(), "loss".to_owned())];
        assert_eq!(cache.xs.len(), 5000);
        assert!(!cache.raw_decimated.is_empty() && cache.raw_decimated.len() < 5000);
    }
}
