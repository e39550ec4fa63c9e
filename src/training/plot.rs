//! Headless curve plots (PNG) and curve data (JSON) for `modelmap curves`.
//!
//! The PNG looks like TensorBoard's scalar dashboard: one card per tag in a grid, the tag as the
//! card title, light grid lines with tick numbers on both axes, one colour per run (TensorBoard's
//! classic palette), the raw curve faint and the smoothed curve solid, and a legend of runs at the
//! bottom. Curves are decimated (M4, `series::decimate`) to the card's pixel width first, so a
//! million-point run draws as a few thousand vertices.
//!
//! Rasterizer: `tiny-skia` (a maintained, pure-Rust port of Skia's CPU rasterizer: anti-aliased
//! strokes with round joins, and its own PNG encoder) with text from `ab_glyph` and egui's Ubuntu
//! Light font bytes, so the headless plot and the window use the same face. Rejected: `plotters`
//! (its bitmap backend pulls a font stack and image crates; styling cards to look like TensorBoard
//! fights its chart builder) and a hand-written line rasterizer (no good anti-aliasing for free).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _};
use tiny_skia::{LineCap, LineJoin, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

use super::series::{XAxis, decimate, smooth_ema};
use super::{Runs, RunsWatcher, TrainingError};

/// TensorBoard's classic run colours (sRGB).
pub const RUN_COLORS: [[u8; 3]; 8] = [
    [0xff, 0x70, 0x43],
    [0x00, 0x77, 0xbb],
    [0xcc, 0x33, 0x11],
    [0x33, 0xbb, 0xee],
    [0xee, 0x33, 0x77],
    [0x00, 0x99, 0x88],
    [0x66, 0x66, 0x66],
    [0x99, 0x66, 0xcc],
];

/// The colour of the `index`-th run.
pub fn run_color(index: usize) -> [u8; 3] {
    RUN_COLORS[index % RUN_COLORS.len()]
}

/// `modelmap curves PATH`: plot or dump the scalar curves of a log folder.
#[derive(Clone, Debug, clap::Args)]
pub struct CurvesArgs {
    /// Log folder (runs = sub-folders), event file, or CSV/JSONL log.
    pub path: PathBuf,
    /// Output file (PNG; with `--json`, JSON). Default `curves.png`, or stdout with `--json`.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Only tags containing this text (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// TensorBoard smoothing weight, 0 to 0.999.
    #[arg(long, default_value_t = 0.6)]
    pub smooth: f64,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1200)]
    pub width: u32,
    /// Image height in pixels (0: from the number of tags).
    #[arg(long, default_value_t = 0)]
    pub height: u32,
    /// Horizontal axis.
    #[arg(long, value_enum, default_value_t = XAxis::Step)]
    pub x_axis: XAxis,
    /// Logarithmic y axis.
    #[arg(long)]
    pub log_y: bool,
    /// Write the curve data as JSON instead of a PNG.
    #[arg(long)]
    pub json: bool,
    /// Keep re-reading the logs as they grow and re-write the output (until interrupted).
    #[arg(long)]
    pub follow: bool,
}

/// What to draw.
#[derive(Clone, Debug)]
pub struct PlotOptions {
    /// Tag filters (substring); empty = all scalar tags.
    pub tags: Vec<String>,
    /// Smoothing weight.
    pub smooth: f64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels (0 = automatic).
    pub height: u32,
    /// Horizontal axis.
    pub x_axis: XAxis,
    /// Logarithmic y.
    pub log_y: bool,
}

impl Default for PlotOptions {
    fn default() -> Self {
        Self {
            tags: Vec::new(),
            smooth: 0.6,
            width: 1200,
            height: 0,
            x_axis: XAxis::Step,
            log_y: false,
        }
    }
}

impl From<&CurvesArgs> for PlotOptions {
    fn from(a: &CurvesArgs) -> Self {
        Self {
            tags: a.tags.clone(),
            smooth: a.smooth,
            width: a.width,
            height: a.height,
            x_axis: a.x_axis,
            log_y: a.log_y,
        }
    }
}

/// The scalar tags selected by `filters` (substring match; none = all).
pub fn selected_tags(runs: &Runs, filters: &[String]) -> Vec<String> {
    runs.scalar_tags()
        .into_iter()
        .filter(|t| filters.is_empty() || filters.iter().any(|f| t.contains(f.as_str())))
        .collect()
}

/// "Nice" tick positions (1, 2, 5 × 10^k) covering `min..=max`, about `target` of them.
pub fn nice_ticks(min: f64, max: f64, target: usize) -> Vec<f64> {
    if !(min.is_finite() && max.is_finite()) || max <= min {
        return if min.is_finite() {
            vec![min]
        } else {
            Vec::new()
        };
    }
    let raw = (max - min) / target.max(1) as f64;
    let exponent = raw.log10().floor() as i32;
    let magnitude = 10f64.powi(exponent);
    let mult = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * magnitude >= raw)
        .unwrap_or(10.0);
    let step = mult * magnitude;
    // k × mult / 10^-e is exact for decimal ticks where k × step would give 0.30000000000000004.
    let at = |k: f64| {
        if exponent >= 0 {
            k * mult * magnitude
        } else {
            k * mult / 10f64.powi(-exponent)
        }
    };
    let first = (min / step - 1e-9).ceil();
    (0..1000)
        .map(|i| at(first + f64::from(i)))
        .take_while(|v| *v <= max + step * 1e-9)
        .collect()
}

/// A tick label: SI suffixes for large round numbers (`2k`, `1.5M`, like d3's `~s`), fixed
/// decimals from the tick spacing otherwise, scientific for extreme magnitudes.
pub fn format_tick(value: f64, spacing: f64) -> String {
    let a = value.abs();
    if value == 0.0 {
        return "0".to_owned();
    }
    if !(1e-4..1e9).contains(&a) {
        return format!("{value:.1e}");
    }
    for (scale, suffix) in [(1e6, "M"), (1e3, "k")] {
        if a >= scale && spacing >= scale / 10.0 {
            let decimals = decimals_for(spacing / scale);
            return format!("{:.*}{suffix}", decimals, value / scale);
        }
    }
    format!("{:.*}", decimals_for(spacing), value)
}

fn decimals_for(spacing: f64) -> usize {
    if spacing >= 1.0 || spacing <= 0.0 || !spacing.is_finite() {
        0
    } else {
        (-spacing.log10().floor()).clamp(0.0, 10.0) as usize
    }
}

/// A time-axis label: `HH:MM` (UTC) for wall time, `90s` / `12.5m` / `3.2h` for relative time.
pub fn format_time_tick(axis: XAxis, value: f64, spacing: f64) -> String {
    match axis {
        XAxis::Step => format_tick(value, spacing),
        XAxis::Wall => {
            let secs = value.rem_euclid(86_400.0) as u64;
            format!("{:02}:{:02}", secs / 3600, (secs / 60) % 60)
        }
        XAxis::Relative => {
            if value.abs() < 120.0 {
                format!("{value:.0}s")
            } else if value.abs() < 7200.0 {
                format!("{:.1}m", value / 60.0)
            } else {
                format!("{:.1}h", value / 3600.0)
            }
        }
    }
}

/// One curve ready to draw: x, raw y and smoothed y.
struct Curve {
    run_index: usize,
    xs: Vec<f64>,
    raw: Vec<f64>,
    smooth: Vec<f64>,
}

fn ytransform(log_y: bool, v: f64) -> f64 {
    if log_y {
        if v > 0.0 { v.log10() } else { f64::NAN }
    } else {
        v
    }
}

struct Canvas<'f> {
    pixmap: Pixmap,
    font: FontRef<'f>,
}

fn paint(rgb: [u8; 3], alpha: u8) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color_rgba8(rgb[0], rgb[1], rgb[2], alpha);
    p.anti_alias = true;
    p
}

impl Canvas<'_> {
    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, rgb: [u8; 3]) {
        if let Some(r) = Rect::from_xywh(x, y, w, h) {
            self.pixmap
                .fill_rect(r, &paint(rgb, 255), Transform::identity(), None);
        }
    }

    fn polyline(&mut self, points: &[(f32, f32)], rgb: [u8; 3], alpha: u8, width: f32) {
        let mut pb = PathBuilder::new();
        let mut pen_down = false;
        for &(x, y) in points {
            if !(x.is_finite() && y.is_finite()) {
                pen_down = false;
                continue;
            }
            if pen_down {
                pb.line_to(x, y);
            } else {
                pb.move_to(x, y);
                pen_down = true;
            }
        }
        if let [(x, y)] = points {
            self.rect(x - 1.5, y - 1.5, 3.0, 3.0, rgb);
        }
        let Some(path) = pb.finish() else {
            return;
        };
        let stroke = Stroke {
            width,
            line_cap: LineCap::Round,
            line_join: LineJoin::Round,
            ..Stroke::default()
        };
        self.pixmap.stroke_path(
            &path,
            &paint(rgb, alpha),
            &stroke,
            Transform::identity(),
            None,
        );
    }

    fn line(&mut self, a: (f32, f32), b: (f32, f32), rgb: [u8; 3], width: f32) {
        let mut pb = PathBuilder::new();
        pb.move_to(a.0, a.1);
        pb.line_to(b.0, b.1);
        if let Some(path) = pb.finish() {
            let stroke = Stroke {
                width,
                ..Stroke::default()
            };
            let mut p = paint(rgb, 255);
            p.anti_alias = false;
            self.pixmap
                .stroke_path(&path, &p, &stroke, Transform::identity(), None);
        }
    }

    fn text_width(&self, text: &str, size: f32) -> f32 {
        let scaled = self.font.as_scaled(PxScale::from(size));
        let mut width = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                width += scaled.kern(p, id);
            }
            width += scaled.h_advance(id);
            prev = Some(id);
        }
        width
    }

    /// Draws `text` with its left end at `x` and its baseline at `baseline`.
    fn text(&mut self, x: f32, baseline: f32, text: &str, size: f32, rgb: [u8; 3]) {
        let scale = PxScale::from(size);
        let scaled = self.font.as_scaled(scale);
        let (w, h) = (self.pixmap.width() as i64, self.pixmap.height() as i64);
        let mut pen = x;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                pen += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(pen, baseline));
            pen += scaled.h_advance(id);
            prev = Some(id);
            let Some(outlined) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outlined.px_bounds();
            let pixels = self.pixmap.pixels_mut();
            outlined.draw(|gx, gy, coverage| {
                let px = bounds.min.x as i64 + i64::from(gx);
                let py = bounds.min.y as i64 + i64::from(gy);
                if px < 0 || py < 0 || px >= w || py >= h {
                    return;
                }
                let Some(dst) = pixels.get_mut((py * w + px) as usize) else {
                    return;
                };
                let a = coverage.clamp(0.0, 1.0);
                let mix =
                    |s: u8, d: u8| (f32::from(s) * a + f32::from(d) * (1.0 - a)).round() as u8;
                let (r, g, b, da) = (dst.red(), dst.green(), dst.blue(), dst.alpha());
                let out_a = (a * 255.0 + f32::from(da) * (1.0 - a)).round() as u8;
                if let Some(c) = tiny_skia::PremultipliedColorU8::from_rgba(
                    mix(rgb[0], r).min(out_a),
                    mix(rgb[1], g).min(out_a),
                    mix(rgb[2], b).min(out_a),
                    out_a,
                ) {
                    *dst = c;
                }
            });
        }
    }
}

const TEXT: [u8; 3] = [0x21, 0x21, 0x21];
const TICK_TEXT: [u8; 3] = [0x61, 0x61, 0x61];
const GRID: [u8; 3] = [0xe6, 0xe6, 0xe6];
const AXIS: [u8; 3] = [0xbd, 0xbd, 0xbd];
const CARD_BORDER: [u8; 3] = [0xdd, 0xdd, 0xdd];
const BACKGROUND: [u8; 3] = [0xf5, 0xf5, 0xf5];

/// Renders one card per selected tag; returns the RGBA8 (premultiplied, opaque) pixmap.
fn render(runs: &Runs, opts: &PlotOptions) -> Result<Pixmap, String> {
    let font = FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT)
        .map_err(|e| format!("font: {e}"))?;
    let tags = selected_tags(runs, &opts.tags);
    let width = opts.width.clamp(200, 16_384);
    let cols = match tags.len() {
        0 | 1 => 1,
        2 | 4 => 2,
        _ => 3,
    }
    .min((width / 300).max(1) as usize);
    let rows = tags.len().div_ceil(cols).max(1);
    let legend_rows = runs
        .runs
        .len()
        .div_ceil(((width / 220).max(1)) as usize)
        .max(1);
    let legend_h = 12 + 20 * legend_rows as u32;
    let height = if opts.height == 0 {
        (rows as u32 * 340 + legend_h).min(16_384)
    } else {
        opts.height.clamp(100, 16_384)
    };
    let pixmap = Pixmap::new(width, height).ok_or("cannot allocate the image")?;
    let mut canvas = Canvas { pixmap, font };
    canvas.rect(0.0, 0.0, width as f32, height as f32, BACKGROUND);

    let card_w = width as f32 / cols as f32;
    let card_h = (height.saturating_sub(legend_h)) as f32 / rows as f32;
    for (i, tag) in tags.iter().enumerate() {
        let (col, row) = (i % cols, i / cols);
        let x0 = col as f32 * card_w;
        let y0 = row as f32 * card_h;
        card(
            &mut canvas,
            runs,
            tag,
            opts,
            x0 + 6.0,
            y0 + 6.0,
            card_w - 12.0,
            card_h - 12.0,
        );
    }
    if tags.is_empty() {
        canvas.text(20.0, 40.0, "no scalar tags", 16.0, TEXT);
    }
    // Legend.
    let per_row = ((width / 220).max(1)) as usize;
    let ly = height.saturating_sub(legend_h) as f32 + 6.0;
    for (i, run) in runs.runs.iter().enumerate() {
        let x = 14.0 + (i % per_row) as f32 * 220.0;
        let y = ly + 20.0 * (i / per_row) as f32;
        canvas.rect(x, y + 4.0, 14.0, 4.0, run_color(i));
        let mut name = run.name.clone();
        if name.chars().count() > 30 {
            name = name.chars().take(29).collect::<String>() + "…";
        }
        canvas.text(x + 20.0, y + 11.0, &name, 13.0, TEXT);
    }
    Ok(canvas.pixmap)
}

#[allow(
    clippy::too_many_arguments,
    reason = "a card is a rectangle plus what goes in it"
)]
fn card(
    canvas: &mut Canvas<'_>,
    runs: &Runs,
    tag: &str,
    opts: &PlotOptions,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
) {
    canvas.rect(x, y, w, h, CARD_BORDER);
    canvas.rect(x + 1.0, y + 1.0, w - 2.0, h - 2.0, [255, 255, 255]);
    canvas.text(x + 12.0, y + 22.0, tag, 14.0, TEXT);

    let curves: Vec<Curve> = runs
        .runs
        .iter()
        .enumerate()
        .filter_map(|(i, run)| {
            let s = run.scalars.get(tag)?;
            let raw: Vec<f64> = s
                .values
                .iter()
                .map(|&v| ytransform(opts.log_y, v))
                .collect();
            let smooth = smooth_ema(&raw, opts.smooth);
            Some(Curve {
                run_index: i,
                xs: opts.x_axis.xs(s),
                raw,
                smooth,
            })
        })
        .collect();
    let finite = |v: &&f64| v.is_finite();
    let (mut x_min, mut x_max) = curves
        .iter()
        .flat_map(|c| c.xs.iter().filter(finite))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (mut y_min, mut y_max) = curves
        .iter()
        .flat_map(|c| c.raw.iter().filter(finite))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !(x_min.is_finite() && y_min.is_finite()) {
        canvas.text(x + 12.0, y + 44.0, "no data", 12.0, TICK_TEXT);
        return;
    }
    if x_max <= x_min {
        x_min -= 0.5;
        x_max += 0.5;
    }
    if y_max <= y_min {
        let pad = if y_min == 0.0 { 1.0 } else { y_min.abs() * 0.1 };
        y_min -= pad;
        y_max += pad;
    }
    let pad = (y_max - y_min) * 0.05;
    y_min -= pad;
    y_max += pad;

    let y_ticks = nice_ticks(y_min, y_max, 5);
    let y_spacing = tick_spacing(&y_ticks);
    let y_label = |v: f64| {
        if opts.log_y {
            format_tick(10f64.powf(v), 10f64.powf(v) * 0.1)
        } else {
            format_tick(v, y_spacing)
        }
    };
    let label_w = y_ticks
        .iter()
        .map(|&v| canvas.text_width(&y_label(v), 11.0))
        .fold(0.0f32, f32::max);
    let plot = (x + 16.0 + label_w, y + 36.0, x + w - 16.0, y + h - 28.0);
    let (pl, pt, pr, pb) = plot;
    if pr - pl < 20.0 || pb - pt < 20.0 {
        return;
    }
    let sx = move |v: f64| pl + ((v - x_min) / (x_max - x_min)) as f32 * (pr - pl);
    let sy = move |v: f64| pb - ((v - y_min) / (y_max - y_min)) as f32 * (pb - pt);

    for &t in &y_ticks {
        let py = sy(t).round() + 0.5;
        canvas.line((pl, py), (pr, py), GRID, 1.0);
        let label = y_label(t);
        let tw = canvas.text_width(&label, 11.0);
        canvas.text(pl - 6.0 - tw, py + 4.0, &label, 11.0, TICK_TEXT);
    }
    let x_ticks = nice_ticks(x_min, x_max, ((pr - pl) / 90.0).max(2.0) as usize);
    let x_spacing = tick_spacing(&x_ticks);
    for &t in &x_ticks {
        let px = sx(t).round() + 0.5;
        canvas.line((px, pt), (px, pb), GRID, 1.0);
        canvas.line((px, pb), (px, pb + 4.0), AXIS, 1.0);
        let label = format_time_tick(opts.x_axis, t, x_spacing);
        let tw = canvas.text_width(&label, 11.0);
        canvas.text(px - tw / 2.0, pb + 17.0, &label, 11.0, TICK_TEXT);
    }
    canvas.line((pl, pb + 0.5), (pr, pb + 0.5), AXIS, 1.0);
    canvas.line((pl - 0.5, pt), (pl - 0.5, pb), AXIS, 1.0);

    let columns = (pr - pl).max(1.0) as usize;
    let smoothing = opts.smooth > 0.0;
    for c in &curves {
        let color = run_color(c.run_index);
        let to_px = |pts: Vec<[f64; 2]>| -> Vec<(f32, f32)> {
            pts.into_iter().map(|[a, b]| (sx(a), sy(b))).collect()
        };
        let raw = to_px(decimate(&c.xs, &c.raw, x_min, x_max, columns));
        if smoothing {
            canvas.polyline(&raw, color, 90, 1.0);
            let smooth = to_px(decimate(&c.xs, &c.smooth, x_min, x_max, columns));
            canvas.polyline(&smooth, color, 255, 1.6);
        } else {
            canvas.polyline(&raw, color, 255, 1.4);
        }
    }
}

fn tick_spacing(ticks: &[f64]) -> f64 {
    match ticks {
        [a, b, ..] => b - a,
        _ => 1.0,
    }
}

/// Renders the scalar curves of `runs` to PNG bytes.
pub fn render_curves_png(runs: &Runs, opts: &PlotOptions) -> Result<Vec<u8>, TrainingError> {
    let error = |what: String| TrainingError::Plot {
        path: runs.root.clone(),
        what,
    };
    let pixmap = render(runs, opts).map_err(error)?;
    pixmap.encode_png().map_err(|e| error(e.to_string()))
}

/// Renders the scalar curves of `runs` to straight (non-premultiplied; the image is opaque) RGBA8
/// pixels: `(width, height, pixels)`.
pub fn render_curves_rgba(
    runs: &Runs,
    opts: &PlotOptions,
) -> Result<(u32, u32, Vec<u8>), TrainingError> {
    let pixmap = render(runs, opts).map_err(|what| TrainingError::Plot {
        path: runs.root.clone(),
        what,
    })?;
    Ok((pixmap.width(), pixmap.height(), pixmap.data().to_vec()))
}

/// The curve data as JSON: `{"root", "runs": [{"name", "scalars": {tag: {"points": [[wall_time,
/// step, value], …], "smoothed": […]}}, "histograms": {tag: [{"step", "wall_time", "min", "max",
/// "num", "sum", "buckets": [[left, right, count], …]}]}, "texts", "images": {tag: [{"step",
/// "sample", "width", "height", "file", "offset", "bytes"}]}, "pr_curves": {tag: [{"step",
/// "precision": […], "recall": […], "tp", "fp", "tn", "fn"}]}, "hparams", "issues"}]}`.
/// Points use TensorBoard's `[wall_time, step, value]` order; NaN becomes `null`.
pub fn curves_json(runs: &Runs, tags: &[String], smooth: f64) -> serde_json::Value {
    use serde_json::{Value, json};
    let selected = selected_tags(runs, tags);
    let out_runs: Vec<Value> = runs
        .runs
        .iter()
        .map(|run| {
            let mut scalars = serde_json::Map::new();
            for (tag, s) in run.scalars.iter().filter(|(t, _)| selected.contains(t)) {
                let points: Vec<Value> = (0..s.len())
                    .map(|i| json!([s.wall_times[i], s.steps[i], s.values[i]]))
                    .collect();
                let mut entry = serde_json::Map::new();
                entry.insert("points".into(), Value::Array(points));
                if smooth > 0.0 {
                    entry.insert("smoothed".into(), json!(smooth_ema(&s.values, smooth)));
                }
                scalars.insert(tag.clone(), Value::Object(entry));
            }
            let histograms: serde_json::Map<String, Value> = run
                .histograms
                .iter()
                .filter(|(t, _)| tags.is_empty() || tags.iter().any(|f| t.contains(f.as_str())))
                .map(|(tag, h)| {
                    let points: Vec<Value> = h
                        .points
                        .iter()
                        .map(|p| {
                            let buckets: Vec<Value> = p
                                .buckets
                                .iter()
                                .map(|b| json!([b.left, b.right, b.count]))
                                .collect();
                            json!({"step": p.step, "wall_time": p.wall_time, "min": p.min,
                                   "max": p.max, "num": p.num, "sum": p.sum, "buckets": buckets})
                        })
                        .collect();
                    (tag.clone(), Value::Array(points))
                })
                .collect();
            let texts: serde_json::Map<String, Value> = run
                .texts
                .iter()
                .map(|(tag, entries)| {
                    let v: Vec<Value> = entries
                        .iter()
                        .map(|e| json!({"step": e.step, "wall_time": e.wall_time, "text": e.text}))
                        .collect();
                    (tag.clone(), Value::Array(v))
                })
                .collect();
            let hparams: serde_json::Map<String, Value> = run
                .hparams
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        super::HParam::Number(n) => json!(n),
                        super::HParam::Text(s) => json!(s),
                        super::HParam::Bool(b) => json!(b),
                    };
                    (k.clone(), v)
                })
                .collect();
            let images: serde_json::Map<String, Value> = run
                .images
                .iter()
                .map(|(tag, entries)| {
                    let v: Vec<Value> = entries
                        .iter()
                        .map(|e| {
                            json!({"step": e.step, "sample": e.sample, "width": e.size[0],
                                   "height": e.size[1], "file": e.file.display().to_string(),
                                   "offset": e.offset, "bytes": e.len})
                        })
                        .collect();
                    (tag.clone(), Value::Array(v))
                })
                .collect();
            let pr_curves: serde_json::Map<String, Value> = run
                .pr_curves
                .iter()
                .map(|(tag, curves)| {
                    let v: Vec<Value> = curves
                        .iter()
                        .map(|c| {
                            json!({"step": c.step, "precision": c.precision, "recall": c.recall,
                                   "tp": c.tp, "fp": c.fp, "tn": c.tn, "fn": c.fn_})
                        })
                        .collect();
                    (tag.clone(), Value::Array(v))
                })
                .collect();
            let issues: Vec<Value> = run.issues.iter().map(|i| json!(i.to_string())).collect();
            json!({"name": run.name, "scalars": scalars, "histograms": histograms,
                   "texts": texts, "images": images, "pr_curves": pr_curves,
                   "hparams": hparams, "issues": issues})
        })
        .collect();
    json!({"root": runs.root.display().to_string(), "runs": out_runs})
}

fn write_output(args: &CurvesArgs, runs: &Runs) -> Result<(), TrainingError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainingError::Io { path, source }
    };
    if args.json {
        let value = curves_json(runs, &args.tags, args.smooth);
        let text = value.to_string();
        match &args.output {
            Some(path) => std::fs::write(path, text).map_err(io(path))?,
            None => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{text}").map_err(io(Path::new("<stdout>")))?;
            }
        }
    } else {
        let path = args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from("curves.png"));
        let png = render_curves_png(runs, &PlotOptions::from(args))?;
        std::fs::write(&path, png).map_err(io(&path))?;
    }
    Ok(())
}

/// Runs `modelmap curves`: loads the logs, logs skipped records as warnings, writes the PNG or
/// JSON; with `--follow`, re-reads once a second and re-writes the output whenever a log grew.
pub fn run_curves(args: &CurvesArgs) -> Result<(), TrainingError> {
    let mut watcher = RunsWatcher::new(&args.path);
    let mut runs = Runs::default();
    let mut reported = 0;
    loop {
        let changed = watcher.poll(&mut runs)?;
        if runs.runs.is_empty() && !args.follow {
            return Err(TrainingError::NoLogs {
                path: args.path.clone(),
            });
        }
        let issues: Vec<String> = runs.issues().map(ToString::to_string).collect();
        for issue in issues.iter().skip(reported) {
            log::warn!("{issue}");
        }
        reported = issues.len();
        if changed || !args.follow {
            write_output(args, &runs)?;
        }
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(nice_ticks(0.0, 1999.0, 4), vec![0.0, 500.0, 1000.0, 1500.0]);
        assert_eq!(nice_ticks(0.13, 0.61, 5), vec![0.2, 0.3, 0.4, 0.5, 0.6]);
        assert_eq!(format_tick(1500.0, 500.0), "1.5k");
        assert_eq!(format_tick(2000.0, 1000.0), "2k");
        assert_eq!(format_tick(0.25, 0.05), "0.25");
        assert_eq!(format_tick(0.3, 0.1), "0.3");
        assert_eq!(
            format_time_tick(XAxis::Wall, 3600.0 * 25.0 + 120.0, 60.0),
            "01:02"
        );
    }
}
