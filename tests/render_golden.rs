//! Headless renders on the software adapter (lavapipe in CI) compared with `tests/snapshots/*.png`.
//!
//! The tolerance lives in ONE place, [`compare`]. On a mismatch the test writes `<name>.actual.png`
//! and `<name>.diff.png` beside the reference (git-ignored); `UPDATE_SNAPSHOTS=1` rewrites the
//! references. No adapter is a loud failure unless `MODELMAP_SKIP_GPU_TESTS=1`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use glam::{DVec2, Vec2};
use modelmap::lod::{
    Align, ColorMap, DrawList, EdgeItem, HeatmapItem, LabelItem, NodeItem, NodeShape, flags,
};
use modelmap::render::{OffscreenRenderer, RenderContext, RgbaImage, load_png, save_png};
use modelmap::view::Camera;

/// One context for the whole test binary (pipelines compile once per renderer).
fn ctx() -> Option<&'static RenderContext> {
    static CTX: OnceLock<Option<RenderContext>> = OnceLock::new();
    CTX.get_or_init(|| match RenderContext::headless() {
        Ok(ctx) => {
            let info = ctx.adapter.get_info();
            eprintln!("golden tests on {} ({:?})", info.name, info.backend);
            Some(ctx)
        }
        Err(e) if std::env::var("MODELMAP_SKIP_GPU_TESTS").as_deref() == Ok("1") => {
            eprintln!("SKIPPING GPU tests (MODELMAP_SKIP_GPU_TESTS=1): {e}");
            None
        }
        Err(e) => panic!(
            "no GPU adapter for the golden tests: {e}\n(set MODELMAP_SKIP_GPU_TESTS=1 to skip)"
        ),
    })
    .as_ref()
}

/// A shared off-screen renderer (pipelines compile once; lavapipe takes ~0.4 s per compile).
fn render(list: &DrawList, camera: &Camera, w: u32, h: u32) -> Option<RgbaImage> {
    static RENDERER: OnceLock<Mutex<OffscreenRenderer>> = OnceLock::new();
    let ctx = ctx()?;
    let r = RENDERER.get_or_init(|| Mutex::new(OffscreenRenderer::new(ctx)));
    let mut r = r.lock().unwrap_or_else(|e| e.into_inner());
    r.graph_renderer_mut().invalidate();
    Some(r.render(ctx, list, camera, w, h).unwrap())
}

fn snapshot_path(name: &str, suffix: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}{suffix}.png"))
}

/// The tolerance, in one place: a pixel differs when a channel differs by more than
/// `CHANNEL_TOLERANCE`; pictures match when at most `MAX_DIFFERENT_PIXELS` (a fraction) differ.
/// lavapipe is deterministic; Vulkan and GL differ on ~0.3 % of pixels by < 2 % (GPU-NOTES.md).
const CHANNEL_TOLERANCE: u8 = 6;
const MAX_DIFFERENT_PIXELS: f64 = 0.002;

/// Compares two pictures; `Err` says how many pixels differ, with a diff picture (red = differs).
fn compare(expected: &RgbaImage, actual: &RgbaImage) -> Result<(), (String, RgbaImage)> {
    if (expected.width, expected.height) != (actual.width, actual.height) {
        let msg = format!(
            "size {}×{} != {}×{}",
            actual.width, actual.height, expected.width, expected.height
        );
        return Err((msg, actual.clone()));
    }
    let mut diff = expected.clone();
    let mut different = 0usize;
    for (d, (e, a)) in diff.pixels.chunks_exact_mut(4).zip(
        expected
            .pixels
            .chunks_exact(4)
            .zip(actual.pixels.chunks_exact(4)),
    ) {
        let worst = e
            .iter()
            .zip(a)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0);
        if worst > CHANNEL_TOLERANCE {
            different += 1;
            d.copy_from_slice(&[255, 0, 0, 255]);
        } else {
            let grey = ((u16::from(e[0]) + u16::from(e[1]) + u16::from(e[2])) / 6 + 128) as u8;
            d.copy_from_slice(&[grey, grey, grey, 255]);
        }
    }
    let total = (expected.width * expected.height) as f64;
    if different as f64 > total * MAX_DIFFERENT_PIXELS {
        return Err((
            format!("{different} of {total} pixels differ by more than {CHANNEL_TOLERANCE}"),
            diff,
        ));
    }
    Ok(())
}

/// Compares `img` with `tests/snapshots/<name>.png`.
fn check_snapshot(name: &str, img: &RgbaImage) {
    let path = snapshot_path(name, "");
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        save_png(img, &path).unwrap();
        return;
    }
    let actual_path = snapshot_path(name, ".actual");
    let diff_path = snapshot_path(name, ".diff");
    let expected = match load_png(&path) {
        Ok(e) => e,
        Err(e) => {
            save_png(img, &actual_path).unwrap();
            panic!(
                "{name}: no reference ({e}); wrote {} (UPDATE_SNAPSHOTS=1 to accept)",
                actual_path.display()
            );
        }
    };
    match compare(&expected, img) {
        Ok(()) => {
            let _ = std::fs::remove_file(&actual_path);
            let _ = std::fs::remove_file(&diff_path);
        }
        Err((msg, diff)) => {
            save_png(img, &actual_path).unwrap();
            save_png(&diff, &diff_path).unwrap();
            panic!(
                "{name}: {msg}; see {} and {}",
                actual_path.display(),
                diff_path.display()
            );
        }
    }
}

fn camera(center: DVec2, zoom: f64, w: u32, h: u32) -> Camera {
    Camera {
        center,
        zoom,
        viewport: DVec2::new(f64::from(w), f64::from(h)),
    }
}

fn node(x: f32, y: f32, hw: f32, hh: f32, fill: [u8; 4], shape: NodeShape, flags: u32) -> NodeItem {
    NodeItem {
        center: Vec2::new(x, y),
        half_size: Vec2::new(hw, hh),
        fill,
        shape,
        flags,
        alpha: 1.0,
    }
}

const BLUE: [u8; 4] = [80, 130, 220, 255];
const GREEN: [u8; 4] = [90, 180, 120, 255];
const GREY: [u8; 4] = [120, 120, 130, 255];

#[test]
fn nodes_shapes_and_flags() {
    // 3 columns x 4 rows of 40x40 cells, world = pixels.
    let mut list = DrawList::new(DVec2::ZERO);
    let cells: [(NodeShape, u32, [u8; 4]); 12] = [
        (NodeShape::RoundedBox, 0, BLUE),
        (NodeShape::Circle, 0, BLUE),
        (NodeShape::RoundedBox, flags::CLUSTER, GREEN),
        (NodeShape::RoundedBox, flags::FRAME, GREEN),
        (NodeShape::RoundedBox, flags::DIMMED, BLUE),
        (NodeShape::RoundedBox, flags::SELECTED, BLUE),
        (NodeShape::Circle, flags::HOVERED, BLUE),
        (NodeShape::RoundedBox, flags::HIGHLIGHT, BLUE),
        (NodeShape::Circle, flags::SELECTED | flags::CLUSTER, GREEN),
        (NodeShape::RoundedBox, 0, [200, 60, 60, 128]),
        (NodeShape::Circle, 0, GREY),
        (NodeShape::RoundedBox, 0, GREY),
    ];
    for (i, (shape, f, fill)) in cells.into_iter().enumerate() {
        let (col, row) = ((i % 3) as f32, (i / 3) as f32);
        let (hw, hh) = match i {
            10 => (1.0, 1.0),  // a 2 px dot
            11 => (0.2, 0.2),  // sub-pixel: still drawn as a 1 px dot
            3 => (16.0, 14.0), // frame around a child
            _ => (14.0, 10.0),
        };
        list.nodes.push(node(
            24.0 + col * 40.0,
            22.0 + row * 40.0,
            hw,
            hh,
            fill,
            shape,
            f,
        ));
        if i == 3 {
            list.nodes.push(node(
                24.0 + col * 40.0,
                22.0 + row * 40.0,
                6.0,
                4.0,
                BLUE,
                NodeShape::RoundedBox,
                0,
            ));
        }
    }
    let Some(img) = render(
        &list,
        &camera(DVec2::new(64.0, 80.0), 1.0, 128, 160),
        128,
        160,
    ) else {
        return;
    };
    // Non-image asserts: the centre of a plain node is its fill, a corner of the picture is background.
    assert_eq!(img.pixel(24, 22).unwrap(), BLUE);
    assert_eq!(img.pixel(0, 0).unwrap(), list.background);
    // The selection ring is orange just outside the box (right edge of cell 5 at x = 104 + 14).
    let ring = img.pixel(104 + 14 + 2, 62).unwrap();
    assert!(
        ring[0] > 200 && ring[1] > 80 && ring[1] < 180 && ring[2] < 80,
        "selection ring {ring:?}"
    );
    check_snapshot("nodes_shapes_and_flags", &img);
}

#[test]
fn edges_straight_curve_arrow_widths() {
    let mut list = DrawList::new(DVec2::ZERO);
    let black = [30, 30, 40, 255];
    for (i, w) in [0.5f32, 1.0, 2.0, 4.0, 8.0].into_iter().enumerate() {
        let y = 12.0 + i as f32 * 16.0;
        list.edges.push(EdgeItem {
            from: Vec2::new(8.0, y),
            to: Vec2::new(120.0, y + 6.0),
            color: black,
            width_px: w,
            flags: 0,
            arrow_world: 0.0,
        });
    }
    // Curves with vertical tangents, one with an arrow, one translucent and thick.
    list.edges.push(EdgeItem {
        from: Vec2::new(20.0, 100.0),
        to: Vec2::new(100.0, 180.0),
        color: black,
        width_px: 1.5,
        flags: flags::CURVE,
        arrow_world: 0.0,
    });
    list.edges.push(EdgeItem {
        from: Vec2::new(130.0, 100.0),
        to: Vec2::new(60.0, 180.0),
        color: [200, 40, 40, 255],
        width_px: 2.0,
        flags: flags::CURVE | flags::ARROW,
        arrow_world: 0.0,
    });
    list.edges.push(EdgeItem {
        from: Vec2::new(140.0, 20.0),
        to: Vec2::new(240.0, 180.0),
        color: [40, 90, 200, 110],
        width_px: 10.0,
        flags: flags::CURVE,
        arrow_world: 0.0,
    });
    // Straight arrows, thin and thick, and a selected edge.
    list.edges.push(EdgeItem {
        from: Vec2::new(150.0, 230.0),
        to: Vec2::new(240.0, 200.0),
        color: black,
        width_px: 1.0,
        flags: flags::ARROW,
        arrow_world: 0.0,
    });
    list.edges.push(EdgeItem {
        from: Vec2::new(20.0, 240.0),
        to: Vec2::new(120.0, 200.0),
        color: black,
        width_px: 3.0,
        flags: flags::ARROW,
        arrow_world: 0.0,
    });
    list.edges.push(EdgeItem {
        from: Vec2::new(20.0, 210.0),
        to: Vec2::new(120.0, 250.0),
        color: GREY,
        width_px: 1.0,
        flags: flags::SELECTED,
        arrow_world: 0.0,
    });
    let Some(img) = render(
        &list,
        &camera(DVec2::new(128.0, 128.0), 1.0, 256, 256),
        256,
        256,
    ) else {
        return;
    };
    // An 8 px horizontal-ish line covers its centre row fully.
    assert_eq!(img.pixel(64, 12 + 4 * 16 + 3).unwrap(), black);
    check_snapshot("edges_straight_curve_arrow_widths", &img);
}

/// Widest run of inked pixels across a vertical line at `x`, over rows `rows`: the arrowhead's
/// width where it has one, the line's where not.
fn widest_ink(img: &RgbaImage, x: u32, rows: std::ops::Range<u32>) -> u32 {
    rows.map(|y| {
        (0..img.width)
            .filter(|&c| c.abs_diff(x) <= 20)
            .filter(|&c| img.pixel(c, y).is_some_and(|p| p[0] < 200))
            .count() as u32
    })
    .max()
    .unwrap_or(0)
}

#[test]
fn arrowheads_shrink_with_the_nodes_they_point_at() {
    // A vertical arrow edge 100 world units long into a 28-unit op box (arrow size 9 world units),
    // and the same edge with constant-pixel arrowheads, seen at three zooms.
    let edge = |x: f32, arrow_world: f32| EdgeItem {
        from: Vec2::new(x, 0.0),
        to: Vec2::new(x, 100.0),
        color: [20, 20, 30, 255],
        width_px: 1.0,
        flags: flags::ARROW,
        arrow_world,
    };
    let mut list = DrawList::new(DVec2::ZERO);
    list.edges.push(edge(0.0, EdgeItem::arrow_world_for(28.0)));
    list.edges.push(edge(100.0, 0.0));
    let widths = |zoom: f64| {
        let cam = camera(DVec2::new(50.0, 50.0), zoom, 160, 160);
        let img = render(&list, &cam, 160, 160)?;
        // Screen rows of the last third of the edge, up to its tip.
        let tip = (80.0 + 50.0 * zoom) as u32;
        let rows = tip - (30.0 * zoom) as u32..tip;
        let x = |wx: f64| (80.0 + (wx - 50.0) * zoom).round() as u32;
        Some((
            widest_ink(&img, x(0.0), rows.clone()),
            widest_ink(&img, x(100.0), rows),
        ))
    };
    let Some((scaled_1, fixed_1)) = widths(1.0) else {
        return;
    };
    let (scaled_06, fixed_06) = widths(0.6).unwrap();
    let (scaled_03, fixed_03) = widths(0.3).unwrap();
    // At zoom 1 both are full 9 px arrowheads (about 8 px wide with their anti-aliasing).
    assert!((7..=10).contains(&scaled_1), "{scaled_1}");
    assert!(scaled_1.abs_diff(fixed_1) <= 1, "{scaled_1} vs {fixed_1}");
    // At 0.6 the scaled one is 5.4 px long and narrower; the constant one keeps its size.
    assert!((3..=6).contains(&scaled_06), "{scaled_06}");
    assert!(fixed_06.abs_diff(fixed_1) <= 1, "{fixed_06} vs {fixed_1}");
    // At 0.3 (a 2.7 px arrowhead) the scaled one is gone: the line alone, two pixels at most.
    assert!(scaled_03 <= 2, "{scaled_03}");
    assert!(fixed_03.abs_diff(fixed_1) <= 1, "{fixed_03} vs {fixed_1}");
}

#[test]
fn labels_sizes_alignment_and_culling() {
    let mut list = DrawList::new(DVec2::ZERO);
    let ink = [20, 20, 30, 255];
    let label = |y: f32, size: f32, align: Align, text: &str| LabelItem {
        pos: Vec2::new(if align == Align::Left { 8.0 } else { 128.0 }, y),
        text: text.into(),
        size_px: size,
        color: ink,
        align,
    };
    list.labels
        .push(label(14.0, 9.0, Align::Center, "Conv2d 3x3 /2"));
    list.labels
        .push(label(36.0, 13.0, Align::Center, "MatMul [4096, 11008]"));
    list.labels
        .push(label(64.0, 18.0, Align::Left, "layers.3.mlp"));
    list.labels.push(label(100.0, 28.0, Align::Left, "Softmax"));
    // Too small to read: not drawn.
    list.labels.push(label(
        120.0,
        3.0,
        Align::Left,
        "INVISIBLE INVISIBLE INVISIBLE",
    ));
    // Off screen: culled (not an error).
    list.labels.push(LabelItem {
        pos: Vec2::new(5000.0, 10.0),
        ..label(0.0, 12.0, Align::Left, "far away")
    });
    let Some(img) = render(
        &list,
        &camera(DVec2::new(128.0, 64.0), 1.0, 256, 128),
        256,
        128,
    ) else {
        return;
    };
    // The tiny label left no ink.
    for x in 8..200 {
        assert_eq!(
            img.pixel(x, 120).unwrap(),
            list.background,
            "tiny label drew at x={x}"
        );
    }
    let inked = img.pixels.chunks_exact(4).filter(|p| p[0] < 128).count();
    assert!(inked > 300, "labels drew only {inked} dark pixels");
    check_snapshot("labels_sizes_alignment_and_culling", &img);
}

/// A label overlapping an earlier one is not drawn (the earlier one wins); one apart from both is.
#[test]
fn overlapping_labels_are_decluttered() {
    let label = |x: f32, y: f32, text: &str| LabelItem {
        pos: Vec2::new(x, y),
        text: text.into(),
        size_px: 14.0,
        color: [20, 20, 30, 255],
        align: Align::Center,
    };
    let cam = camera(DVec2::new(128.0, 64.0), 1.0, 256, 128);
    let mut kept = DrawList::new(DVec2::ZERO);
    kept.labels.push(label(128.0, 40.0, "attention.q_proj"));
    kept.labels.push(label(128.0, 100.0, "mlp.down_proj"));
    let mut piled = kept.clone();
    // Over the first label, a few pixels down: hidden.
    piled
        .labels
        .insert(1, label(120.0, 46.0, "OVERLAPPING TEXT"));
    let (Some(a), Some(b)) = (
        render(&kept, &cam, 256, 128),
        render(&piled, &cam, 256, 128),
    ) else {
        return;
    };
    assert!(a.pixels.chunks_exact(4).filter(|p| p[0] < 128).count() > 100);
    assert!(
        a.pixels == b.pixels,
        "a label over an earlier one changed the picture"
    );
}

fn small_graph(selected: usize) -> DrawList {
    let mut list = DrawList::new(DVec2::ZERO);
    let pos = [(64.0, 24.0), (32.0, 80.0), (96.0, 80.0), (64.0, 136.0)];
    for (a, b) in [(0, 1), (0, 2), (1, 3), (2, 3)] {
        let (pa, pb): ((f32, f32), (f32, f32)) = (pos[a], pos[b]);
        let touches = a == selected || b == selected;
        list.edges.push(EdgeItem {
            from: Vec2::new(pa.0, pa.1 + 10.0),
            to: Vec2::new(pb.0, pb.1 - 10.0),
            color: [90, 90, 100, 255],
            width_px: 1.5,
            flags: flags::CURVE
                | flags::ARROW
                | if touches {
                    flags::HIGHLIGHT
                } else {
                    flags::DIMMED
                },
            arrow_world: 0.0,
        });
    }
    for (i, (x, y)) in pos.into_iter().enumerate() {
        let f = if i == selected {
            flags::SELECTED
        } else if i == 1 || i == 2 {
            flags::HIGHLIGHT
        } else {
            flags::DIMMED
        };
        list.nodes
            .push(node(x, y, 24.0, 10.0, BLUE, NodeShape::RoundedBox, f));
        list.labels.push(LabelItem {
            pos: Vec2::new(x, y),
            text: format!("op{i}"),
            size_px: 11.0,
            color: [255, 255, 255, 255],
            align: Align::Center,
        });
    }
    list
}

#[test]
fn selection_highlight() {
    let list = small_graph(0);
    let Some(img) = render(
        &list,
        &camera(DVec2::new(64.0, 80.0), 1.0, 128, 160),
        128,
        160,
    ) else {
        return;
    };
    check_snapshot("selection_highlight", &img);
    // A different selection gives a different picture (the highlight is not ignored).
    let other = render(
        &small_graph(3),
        &camera(DVec2::new(64.0, 80.0), 1.0, 128, 160),
        128,
        160,
    )
    .unwrap();
    assert!(compare(&img, &other).is_err());
}

fn ramp_heatmap(key: u64, x: f32, colormap: ColorMap) -> HeatmapItem {
    // 8x8 values from -1 to 1 across, one NaN in the top-left corner.
    let mut values: Vec<f32> = (0..64)
        .map(|i| ((i % 8) as f32 / 7.0) * 2.0 - 1.0 + (i / 8) as f32 * 0.01)
        .collect();
    values[0] = f32::NAN;
    HeatmapItem {
        key,
        min: Vec2::new(x, 8.0),
        max: Vec2::new(x + 48.0, 56.0),
        width: 8,
        height: 8,
        values: Arc::from(values),
        lo: -1.0,
        hi: 1.0,
        colormap,
    }
}

#[test]
fn heatmap_each_colormap() {
    let mut list = DrawList::new(DVec2::ZERO);
    for (i, map) in [
        ColorMap::Diverging,
        ColorMap::Grey,
        ColorMap::Viridis,
        ColorMap::Cividis,
    ]
    .into_iter()
    .enumerate()
    {
        list.heatmaps
            .push(ramp_heatmap(i as u64, 8.0 + i as f32 * 60.0, map));
    }
    let Some(img) = render(
        &list,
        &camera(DVec2::new(124.0, 32.0), 1.0, 248, 64),
        248,
        64,
    ) else {
        return;
    };
    // NaN is magenta; single texels are crisp 6x6 squares (nearest sampling).
    assert_eq!(img.pixel(10, 10).unwrap(), [255, 0, 255, 255]);
    assert_eq!(
        img.pixel(8 + 6 * 7 + 1, 40).unwrap(),
        img.pixel(8 + 6 * 7 + 4, 40).unwrap()
    );
    // Diverging: -1 is blue, +1 is red, the middle column near white.
    let left = img.pixel(9, 40).unwrap();
    let right = img.pixel(8 + 47, 40).unwrap();
    assert!(left[2] > left[0] + 60, "low end {left:?}");
    assert!(right[0] > right[2] + 60, "high end {right:?}");
    // Viridis low end is dark purple, high end yellow.
    let v = img.pixel(128 + 2, 40).unwrap();
    assert!(v[0] < 90 && v[1] < 20 && v[2] > 60, "viridis low {v:?}");
    check_snapshot("heatmap_each_colormap", &img);
}

#[test]
fn heatmap_colormap_change_does_not_reupload() {
    let Some(ctx) = ctx() else { return };
    let mut r = OffscreenRenderer::new(ctx);
    let cam = camera(DVec2::new(32.0, 32.0), 1.0, 64, 64);
    let mut list = DrawList::new(DVec2::ZERO);
    list.heatmaps.push(ramp_heatmap(7, 8.0, ColorMap::Viridis));
    let a = r.render(ctx, &list, &cam, 64, 64).unwrap();
    list.revision += 1;
    list.heatmaps[0].colormap = ColorMap::Grey;
    list.heatmaps[0].lo = -0.5;
    let b = r.render(ctx, &list, &cam, 64, 64).unwrap();
    assert_eq!(
        r.graph_renderer().heatmap_uploads(),
        1,
        "colour-map change re-uploaded values"
    );
    assert!(
        compare(&a, &b).is_err(),
        "the colour map change did not show"
    );
    // Grey: clamped low values are black.
    assert_eq!(b.pixel(9 + 6, 40).unwrap(), [0, 0, 0, 255]);
}

/// A heatmap of `w`×`h` values from `f(col, row)`, one world unit per value, at `min`.
fn heatmap_from(key: u64, min: Vec2, w: u32, h: u32, f: impl Fn(u32, u32) -> f32) -> HeatmapItem {
    let values: Vec<f32> = (0..h)
        .flat_map(|r| (0..w).map(move |c| (c, r)))
        .map(|(c, r)| f(c, r))
        .collect();
    common::heatmap_item(key, min, w, h, values)
}

const RED_ISH: fn([u8; 4]) -> bool = |p| p[0] > p[2] + 60;
const BLUE_ISH: fn([u8; 4]) -> bool = |p| p[2] > p[0] + 60;

#[test]
fn heatmap_atlas_pieces_pages_and_budget() {
    let Some(ctx) = ctx() else { return };
    let mut r = OffscreenRenderer::new(ctx);
    // 600×300 values: larger than one 256² atlas slot both ways, so six pieces. +1 left of column
    // 300, -1 right of it, NaN from row 280 down: the picture must change at column 300 and row
    // 280, not at the pieces' seams (256, 512).
    let big = heatmap_from(1, Vec2::ZERO, 600, 300, |c, r| {
        if r >= 280 {
            f32::NAN
        } else if c < 300 {
            1.0
        } else {
            -1.0
        }
    });
    // One texel per pixel.
    let cam = camera(DVec2::new(300.0, 150.0), 1.0, 600, 300);
    let mut list = DrawList::new(DVec2::ZERO);
    list.heatmaps.push(big.clone());
    let img = r.render(ctx, &list, &cam, 600, 300).unwrap();
    for (x, y, want, what) in [
        (10, 10, RED_ISH, "left of column 300"),
        (255, 100, RED_ISH, "left of the first seam"),
        (257, 100, RED_ISH, "right of the first seam"),
        (
            298,
            270,
            RED_ISH,
            "just left of column 300, second piece row",
        ),
        (302, 10, BLUE_ISH, "just right of column 300"),
        (590, 270, BLUE_ISH, "bottom-right piece"),
    ] {
        let p = img.pixel(x, y).unwrap();
        assert!(want(p), "{what} ({x}, {y}): {p:?}");
    }
    assert!(BLUE_ISH(img.pixel(300, 278).unwrap()), "above the NaN rows");
    assert_eq!(img.pixel(100, 282).unwrap(), [255, 0, 255, 255], "NaN rows");
    assert_eq!(img.pixel(550, 299).unwrap(), [255, 0, 255, 255], "NaN rows");
    assert_eq!(r.graph_renderer().heatmap_pages(), 1);
    assert_eq!(r.graph_renderer().heatmap_draw_calls(), 1);

    // 70 more 8×8 items: 76 slots, more than one 64-slot page; still a few draws, not 71.
    list.revision += 1;
    for i in 0..70u32 {
        let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
        let min = Vec2::new((i % 35) as f32 * 16.0 + 10.0, (i / 35) as f32 * 16.0 + 20.0);
        list.heatmaps
            .push(heatmap_from(100 + u64::from(i), min, 8, 8, move |_, _| {
                sign
            }));
    }
    let img = r.render(ctx, &list, &cam, 600, 300).unwrap();
    assert_eq!(r.graph_renderer().heatmap_pages(), 2);
    assert!(r.graph_renderer().heatmap_draw_calls() <= 3);
    assert_eq!(r.graph_renderer().heatmap_uploads(), 71);
    // Item 68 (even: +1, red) and 69 (odd: -1, blue) sit on the second page, over the big item.
    let at = |i: u32| ((i % 35) * 16 + 14, (i / 35) * 16 + 24);
    let (x, y) = at(68);
    assert!(RED_ISH(img.pixel(x, y).unwrap()), "item 68");
    let (x, y) = at(69);
    assert!(BLUE_ISH(img.pixel(x, y).unwrap()), "item 69");
    let (x, y) = at(17);
    assert!(BLUE_ISH(img.pixel(x, y).unwrap()), "item 17");

    // A one-page budget: once the frame draws only the big item, the rest is evicted down to one
    // page, and the big item still draws right without a new upload.
    r.graph_renderer_mut().set_heatmap_budget_bytes(16 << 20);
    list.revision += 1;
    list.heatmaps.truncate(1);
    let img = r.render(ctx, &list, &cam, 600, 300).unwrap();
    assert_eq!(r.graph_renderer().heatmap_pages(), 1);
    assert_eq!(r.graph_renderer().heatmap_uploads(), 71);
    assert!(RED_ISH(img.pixel(10, 30).unwrap()));
    assert!(BLUE_ISH(img.pixel(400, 30).unwrap()));
    // Evicted items come back by uploading again.
    list.revision += 1;
    list.heatmaps
        .push(heatmap_from(169, Vec2::new(20.0, 20.0), 8, 8, |_, _| -1.0));
    let img = r.render(ctx, &list, &cam, 600, 300).unwrap();
    assert_eq!(r.graph_renderer().heatmap_uploads(), 72);
    assert!(BLUE_ISH(img.pixel(24, 24).unwrap()));
}

/// A little scene: nodes, curved arrow edges, a label, at world scale `s` around `center`.
fn scaled_scene(origin: DVec2, s: f32) -> DrawList {
    let mut list = DrawList::new(origin);
    let p = |x: f32, y: f32| Vec2::new(x * s, y * s);
    list.nodes.push(NodeItem {
        center: p(-30.0, -20.0),
        half_size: p(16.0, 8.0),
        fill: BLUE,
        shape: NodeShape::RoundedBox,
        flags: flags::SELECTED,
        alpha: 1.0,
    });
    list.nodes.push(NodeItem {
        center: p(30.0, 25.0),
        half_size: p(9.0, 9.0),
        fill: GREEN,
        shape: NodeShape::Circle,
        flags: 0,
        alpha: 1.0,
    });
    list.edges.push(EdgeItem {
        from: p(-30.0, -12.0),
        to: p(30.0, 16.0),
        color: [40, 40, 50, 255],
        width_px: 1.5,
        flags: flags::CURVE | flags::ARROW,
        arrow_world: 0.0,
    });
    list.edges.push(EdgeItem {
        from: p(-50.0, 40.0),
        to: p(50.0, -40.0),
        color: [200, 40, 40, 255],
        width_px: 1.0,
        flags: 0,
        arrow_world: 0.0,
    });
    list.labels.push(LabelItem {
        pos: p(0.0, 42.0),
        text: "deep zoom".into(),
        size_px: 12.0,
        color: [20, 20, 30, 255],
        align: Align::Center,
    });
    list
}

#[test]
fn deep_zoom_precision() {
    // Camera at a 10^6 zoom, 10^5 world units from the world origin; the list's origin is near the
    // camera (as the LOD stage makes it). It must render exactly like the same scene at zoom 1.
    let far = DVec2::new(123_456.789_012, -98_765.432_1);
    let s = 1e-6f32;
    let deep = scaled_scene(far + DVec2::new(3e-6, -2e-6), s);
    let cam = camera(far + DVec2::new(1.3e-6, 0.7e-6), 1e6, 128, 128);
    let Some(img) = render(&deep, &cam, 128, 128) else {
        return;
    };
    let near = scaled_scene(DVec2::new(3.0, -2.0), 1.0);
    let reference = render(
        &near,
        &camera(DVec2::new(1.3, 0.7), 1.0, 128, 128),
        128,
        128,
    )
    .unwrap();
    if let Err((msg, diff)) = compare(&reference, &img) {
        save_png(&diff, &snapshot_path("deep_zoom_precision", ".diff")).unwrap();
        panic!("deep zoom differs from zoom 1: {msg}");
    }
    check_snapshot("deep_zoom_precision", &img);
}

#[test]
fn deep_zoom_curve_follows_the_true_curve() {
    // One curve from (0, 0) to (400, 300), seen 20× where it bends most (near t = 0.1): the whole
    // curve would need ~150 segments for 0.25 px flatness at that zoom, more than a strip holds.
    // Drawn as 24 segments over the whole curve it strays ~8 px from the true curve there; the
    // shader tessellates only the part on screen, so every point of the true curve on screen is on
    // the drawn line.
    let mut list = DrawList::new(DVec2::ZERO);
    list.edges.push(EdgeItem {
        from: Vec2::ZERO,
        to: Vec2::new(400.0, 300.0),
        color: [0, 0, 0, 255],
        width_px: 1.5,
        flags: flags::CURVE,
        arrow_world: 0.0,
    });
    let (w, h) = (128u32, 128u32);
    let cam = camera(DVec2::new(11.2, 40.8), 20.0, w, h);
    let Some(img) = render(&list, &cam, w, h) else {
        return;
    };
    // The same cubic as the shader: vertical tangents, control points at half the height.
    let (a, b) = (DVec2::ZERO, DVec2::new(400.0, 300.0));
    let dy = (b.y - a.y) * 0.5;
    let (p1, p2) = (a + DVec2::new(0.0, dy), b - DVec2::new(0.0, dy));
    let mut checked = 0;
    for i in 0..=20_000 {
        let t = f64::from(i) / 20_000.0;
        let s = 1.0 - t;
        let world =
            a * (s * s * s) + p1 * (3.0 * s * s * t) + p2 * (3.0 * s * t * t) + b * (t * t * t);
        let px = cam.screen_from_world(world);
        if px.x < 2.0 || px.y < 2.0 || px.x > f64::from(w) - 2.0 || px.y > f64::from(h) - 2.0 {
            continue;
        }
        // The 1.5 px line's core (nearly full coverage) lies within a pixel of the true point.
        let (x, y) = (px.x as u32, px.y as u32);
        let darkest = (x - 1..=x + 1)
            .flat_map(|x| (y - 1..=y + 1).map(move |y| (x, y)))
            .filter_map(|(x, y)| img.pixel(x, y))
            .map(|[r, g, b, _]| r.max(g).max(b))
            .min()
            .unwrap();
        assert!(
            darkest < 100,
            "t = {t:.4}: no line within a pixel of the true curve at ({:.1}, {:.1})",
            px.x,
            px.y
        );
        checked += 1;
    }
    assert!(
        checked > 100,
        "the curve should cross the view ({checked} points)"
    );
}

#[test]
fn tiles_stitch_to_the_untiled_picture() {
    let Some(ctx) = ctx() else { return };
    let list = small_graph(1);
    let cam = camera(DVec2::new(64.0, 80.0), 1.3, 1, 1);
    let whole = render(&list, &cam, 170, 210).unwrap();
    // 64-pixel tiles: 3 x 4 tiles, the last row and column partial.
    let tiled = OffscreenRenderer::new(ctx)
        .with_max_tile(64)
        .render(ctx, &list, &cam, 170, 210)
        .unwrap();
    if let Err((msg, diff)) = compare(&whole, &tiled) {
        save_png(&tiled, &snapshot_path("tiling", ".actual")).unwrap();
        save_png(&diff, &snapshot_path("tiling", ".diff")).unwrap();
        panic!("tiled picture differs: {msg}");
    }
    assert!(
        compare(&RgbaImage::filled(170, 210, list.background), &whole).is_err(),
        "nothing was drawn"
    );
}

#[test]
fn non_srgb_target_encodes_in_the_shader() {
    let Some(ctx) = ctx() else { return };
    let list = small_graph(2);
    let cam = camera(DVec2::new(64.0, 80.0), 1.0, 128, 160);
    let srgb = render(&list, &cam, 128, 160).unwrap();
    let linear = OffscreenRenderer::with_format(ctx, wgpu::TextureFormat::Rgba8Unorm)
        .render(ctx, &list, &cam, 128, 160)
        .unwrap();
    // Flat colours are identical; blended edges differ slightly (blending in sRGB space).
    assert_eq!(linear.pixel(78, 80), srgb.pixel(78, 80));
    let differing = srgb
        .pixels
        .chunks_exact(4)
        .zip(linear.pixels.chunks_exact(4))
        .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > 40))
        .count();
    assert!(
        differing < 200,
        "{differing} pixels differ a lot between sRGB and non-sRGB targets"
    );
}

#[test]
fn bad_sizes_are_errors() {
    let Some(ctx) = ctx() else { return };
    let list = DrawList::new(DVec2::ZERO);
    let cam = camera(DVec2::ZERO, 1.0, 1, 1);
    assert!(modelmap::render::render_to_rgba(ctx, &list, &cam, 0, 10).is_err());
    assert!(modelmap::render::render_to_rgba(ctx, &list, &cam, 100_000, 100_000).is_err());
}

#[test]
fn export_png_fits_and_round_trips() {
    let Some(ctx) = ctx() else { return };
    let list = small_graph(0);
    let bounds = modelmap::view::Rect::new(DVec2::new(40.0, 14.0), DVec2::new(120.0, 146.0));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graph.png");
    let img = modelmap::render::export_png(ctx, &list, bounds, 90, 120, &path).unwrap();
    assert_eq!(load_png(&path).unwrap(), img);
    // Fitted: the selected node's orange ring is inside the picture, corners are background.
    assert!(img.pixels.chunks_exact(4).any(|p| p[0] > 200 && p[2] < 60));
    assert_eq!(img.pixel(0, 119).unwrap(), list.background);
}

/// A LLaMA-like synthetic decoder through layout and the LOD cut: the whole model (blocks collapsed
/// into boxes with counts) and one block zoomed in (its ops open, labelled).
fn lod_scene() -> (modelmap::model::Model, modelmap::layout::Layout) {
    let (graph, hierarchy) = modelmap::bench::synth::model_like(4, 3);
    let mut m = modelmap::model::Model::new("synthetic", modelmap::model::Format::Onnx);
    m.graph = graph;
    m.hierarchy = hierarchy;
    let l = modelmap::layout::dataflow(
        &m.graph,
        &m.hierarchy,
        &modelmap::layout::DataflowOptions::default(),
        &modelmap::layout::Progress::new(),
    )
    .unwrap();
    (m, l)
}

#[test]
fn lod_collapsed_and_expanded() {
    let (m, l) = lod_scene();
    let opts = modelmap::lod::LodOptions {
        fade_s: 0.0,
        ..Default::default()
    };
    let mut lod = modelmap::lod::LodState::new(&l, opts.clone());
    let mut cam = camera(DVec2::ZERO, 1.0, 256, 256);
    cam.fit(l.bounds, 6.0);
    let list = lod
        .cut(&m, &l, &cam, &modelmap::lod::ViewState::default(), 0.0)
        .clone();
    assert!(
        lod.stats.clusters_drawn > 0,
        "the whole model shows collapsed clusters"
    );
    let Some(img) = render(&list, &cam, 256, 256) else {
        return;
    };
    check_snapshot("lod_collapsed", &img);

    let block = m.hierarchy.find("model/layers.1/self_attn").unwrap();
    let mut lod = modelmap::lod::LodState::new(&l, opts);
    let mut cam2 = camera(DVec2::ZERO, 1.0, 256, 256);
    cam2.fit(l.groups[block as usize], 4.0);
    let list = lod
        .cut(&m, &l, &cam2, &modelmap::lod::ViewState::default(), 0.0)
        .clone();
    assert!(
        lod.stats.nodes_drawn > 5,
        "zoomed in, the block's ops are drawn: {:?}",
        lod.stats
    );
    let img = render(&list, &cam2, 256, 256).unwrap();
    check_snapshot("lod_expanded", &img);
}

/// Viewport culling (chunks of nodes, grid cells of edges) must never change the picture: a dense
/// synthetic scene rendered with and without it, fitted, 30× and 300× in, matches pixel
/// for pixel, and the zoomed-in frames really did draw only a small part of the scene.
#[test]
fn culling_never_changes_the_picture() {
    let Some(ctx) = ctx() else { return };
    let scene = modelmap::bench::render::SyntheticScene::new(20_000, 40_000, 3);
    let list = scene.list();
    let (w, h) = (320u32, 200u32);
    let mut fit = Camera::new(DVec2::new(f64::from(w), f64::from(h)));
    let bounds = modelmap::bench::render::SceneSource::bounds(&scene);
    fit.fit(bounds, 10.0);
    let off_centre = fit.center + bounds.size() * DVec2::new(0.21, -0.13);
    let cameras = [
        fit,
        Camera {
            zoom: fit.zoom * 30.0,
            center: off_centre,
            ..fit
        },
        Camera {
            zoom: fit.zoom * 300.0,
            center: list.nodes[12_345].center.as_dvec2() + list.origin + DVec2::new(3.0, 1.0),
            ..fit
        },
    ];
    let mut culled = OffscreenRenderer::new(ctx);
    let mut full = OffscreenRenderer::new(ctx);
    full.graph_renderer_mut().set_culling(false);
    for (i, cam) in cameras.iter().enumerate() {
        let a = culled.render(ctx, list, cam, w, h).unwrap();
        let drawn = culled.graph_renderer().last_prepare();
        let b = full.render(ctx, list, cam, w, h).unwrap();
        assert_eq!(full.graph_renderer().last_prepare().edges_drawn, 40_000);
        if a.pixels != b.pixels {
            save_png(&a, &snapshot_path(&format!("culling{i}"), ".actual")).unwrap();
            save_png(&b, &snapshot_path(&format!("culling{i}"), ".expected")).unwrap();
            panic!("camera {i}: culling changed the picture");
        }
        if i > 0 {
            assert!(
                drawn.edges_drawn < 40_000 / 4 && drawn.nodes_drawn < 20_000,
                "camera {i} drew {} nodes / {} edges",
                drawn.nodes_drawn,
                drawn.edges_drawn
            );
        }
        assert!(
            compare(&RgbaImage::filled(w, h, list.background), &a).is_err(),
            "camera {i} drew nothing"
        );
    }
}
