//! CPU visibility culling of uploaded instances, by ranges of the instance buffer.
//!
//! The instance buffers are written once per draw list (not per frame); each frame only picks the
//! instance *ranges* whose items can touch the viewport, so a draw-everything scene zoomed in 1000×
//! issues vertex work for what is on screen rather than for the whole list. This matters most where
//! vertex shading is scarce: lavapipe shades vertices on the CPU, and an H100 runs vertex and
//! fragment shaders on only a couple of its graphics-capable TPCs (see README, GPU numbers).
//!
//! Two schemes:
//! - [`ChunkCuller`]: fixed chunks of consecutive instances, each with its bounding box. Keeps the
//!   list's order (nodes rely on it: a group frame is drawn under its children), and works because
//!   draw lists are emitted in spatially coherent order (cluster by cluster, row by row).
//! - [`CellGrid`]: instances *sorted* into a uniform grid by midpoint, for edges, whose list order
//!   is not spatial. The edge pipeline already reorders edges into kind runs and length batches, so
//!   this adds a key, not a new reordering.

use std::ops::Range;

use glam::{DVec2, Vec2};

use crate::view::Camera;

/// The visible world rectangle of a frame, relative to the draw list's origin (the space instance
/// positions are uploaded in), and the zoom in pixels per world unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// Lower corner.
    pub min: Vec2,
    /// Upper corner.
    pub max: Vec2,
    /// Pixels per world unit.
    pub zoom: f32,
}

impl View {
    /// The view of `camera` over a list whose positions are relative to `origin`.
    pub fn new(camera: &Camera, origin: DVec2) -> Self {
        let r = camera.visible_world();
        View {
            min: (r.min - origin).as_vec2(),
            max: (r.max - origin).as_vec2(),
            zoom: camera.zoom as f32,
        }
    }

    /// Everything at `zoom`: no culling (the zoom still picks curve tessellation).
    pub fn everything(zoom: f32) -> Self {
        View {
            min: Vec2::splat(f32::NEG_INFINITY),
            max: Vec2::splat(f32::INFINITY),
            zoom,
        }
    }

    /// Whether the box `[lo, hi]`, grown by `margin` world units, touches the view. Boxes that are
    /// not finite count as visible (culling must never drop what it cannot place).
    pub fn touches(&self, lo: Vec2, hi: Vec2, margin: f32) -> bool {
        if !(lo.is_finite() && hi.is_finite() && margin.is_finite()) {
            return true;
        }
        lo.x - margin <= self.max.x
            && hi.x + margin >= self.min.x
            && lo.y - margin <= self.max.y
            && hi.y + margin >= self.min.y
    }

    /// `px` screen pixels in world units at this zoom (infinite at zoom 0).
    pub fn px(&self, px: f32) -> f32 {
        if self.zoom > 0.0 {
            px / self.zoom
        } else {
            f32::INFINITY
        }
    }
}

/// Appends `r` to `out`, merging it with the last range when they touch.
pub fn push_range(out: &mut Vec<Range<u32>>, r: Range<u32>) {
    if r.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut()
        && last.end == r.start
    {
        last.end = r.end;
        return;
    }
    out.push(r);
}

/// Bounding boxes of fixed chunks of consecutive instances.
#[derive(Clone, Debug, Default)]
pub struct ChunkCuller {
    chunk: u32,
    len: u32,
    /// Per chunk: min x, min y, max x, max y (NaN-free, or infinite to mean "always draw").
    boxes: Vec<[f32; 4]>,
}

impl ChunkCuller {
    /// Instances per chunk: small enough that a zoomed-in frame draws little beyond the screen,
    /// large enough that a frame tests a million instances in ~250 box tests.
    pub const CHUNK: u32 = 4096;

    /// Chunks over `len` items whose `i`-th box is `item_box(i)`.
    pub fn build(len: usize, item_box: impl Fn(usize) -> (Vec2, Vec2) + Sync) -> Self {
        use rayon::prelude::*;
        let chunk = Self::CHUNK as usize;
        let boxes = (0..len.div_ceil(chunk))
            .into_par_iter()
            .map(|c| {
                let mut lo = Vec2::splat(f32::INFINITY);
                let mut hi = Vec2::splat(f32::NEG_INFINITY);
                for i in c * chunk..((c + 1) * chunk).min(len) {
                    let (a, b) = item_box(i);
                    if !(a.is_finite() && b.is_finite()) {
                        return [
                            f32::NEG_INFINITY,
                            f32::NEG_INFINITY,
                            f32::INFINITY,
                            f32::INFINITY,
                        ];
                    }
                    lo = lo.min(a);
                    hi = hi.max(b);
                }
                [lo.x, lo.y, hi.x, hi.y]
            })
            .collect();
        ChunkCuller {
            chunk: Self::CHUNK,
            len: len.min(u32::MAX as usize) as u32,
            boxes,
        }
    }

    /// The instance ranges whose chunk, grown by `margin_px` screen pixels, touches `view`.
    pub fn visible(&self, view: &View, margin_px: f32, out: &mut Vec<Range<u32>>) {
        out.clear();
        let margin = view.px(margin_px);
        for (c, b) in self.boxes.iter().enumerate() {
            let infinite = b.iter().any(|v| v.is_infinite());
            if infinite || view.touches(Vec2::new(b[0], b[1]), Vec2::new(b[2], b[3]), margin) {
                let start = c as u32 * self.chunk;
                push_range(out, start..(start + self.chunk).min(self.len));
            }
        }
    }
}

/// A uniform grid over the instances' midpoints; cells are numbered row by row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellGrid {
    /// Cells per side.
    pub side: u32,
    /// Lower corner of cell (0, 0).
    pub min: Vec2,
    /// Size of one cell.
    pub cell: Vec2,
}

impl CellGrid {
    /// Most cells per side: a frame issues at most one draw per visible row of each batch.
    pub const MAX_SIDE: u32 = 32;

    /// A grid over `points` (non-finite ones ignored) with about `per_cell` points a cell.
    pub fn over(points: impl Iterator<Item = Vec2>, count: usize, per_cell: usize) -> Self {
        let mut lo = Vec2::splat(f32::INFINITY);
        let mut hi = Vec2::splat(f32::NEG_INFINITY);
        for p in points.filter(|p| p.is_finite()) {
            lo = lo.min(p);
            hi = hi.max(p);
        }
        if !(lo.is_finite() && hi.is_finite()) {
            return CellGrid::single();
        }
        let side = ((count / per_cell.max(1)) as f64)
            .sqrt()
            .floor()
            .clamp(1.0, Self::MAX_SIDE as f64) as u32;
        let size = (hi - lo).max(Vec2::splat(1e-6));
        CellGrid {
            side,
            min: lo,
            cell: size / side as f32,
        }
    }

    /// One cell holding everything.
    pub fn single() -> Self {
        CellGrid {
            side: 1,
            min: Vec2::ZERO,
            cell: Vec2::ONE,
        }
    }

    fn axis(&self, v: f32, min: f32, cell: f32) -> u32 {
        let c = ((v - min) / cell).floor();
        if c.is_nan() {
            0
        } else {
            c.clamp(0.0, (self.side - 1) as f32) as u32
        }
    }

    /// The cell of point `p` (clamped into the grid; non-finite points go to cell 0).
    pub fn cell_of(&self, p: Vec2) -> u32 {
        if self.side == 1 {
            return 0;
        }
        self.axis(p.y, self.min.y, self.cell.y) * self.side
            + self.axis(p.x, self.min.x, self.cell.x)
    }

    /// Cells whose points may lie in `view` grown by `margin` world units: (columns, rows), or
    /// `None` when the grown view misses the grid.
    pub fn cells_touching(&self, view: &View, margin: f32) -> Option<(Range<u32>, Range<u32>)> {
        if self.side == 1 || !margin.is_finite() {
            return Some((0..self.side, 0..self.side));
        }
        let span = self.cell * self.side as f32;
        let (lo, hi) = (view.min - margin, view.max + margin);
        if hi.x < self.min.x
            || hi.y < self.min.y
            || lo.x > self.min.x + span.x
            || lo.y > self.min.y + span.y
        {
            return None;
        }
        let x =
            self.axis(lo.x, self.min.x, self.cell.x)..self.axis(hi.x, self.min.x, self.cell.x) + 1;
        let y =
            self.axis(lo.y, self.min.y, self.cell.y)..self.axis(hi.y, self.min.y, self.cell.y) + 1;
        Some((x, y))
    }
}

/// Start offsets of each cell's instances within a batch sorted by cell (`side² + 1` entries).
pub fn cell_starts(grid: &CellGrid, cells: impl Iterator<Item = u32>) -> Vec<u32> {
    let n = (grid.side * grid.side) as usize;
    let mut starts = vec![0u32; n + 1];
    for c in cells {
        if let Some(s) = starts.get_mut(c as usize + 1) {
            *s += 1;
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    starts
}

/// Appends the ranges (offset by `base`) of the cells in `cols × rows`, row by row.
pub fn cell_ranges(
    grid: &CellGrid,
    starts: &[u32],
    base: u32,
    cols: Range<u32>,
    rows: Range<u32>,
    out: &mut Vec<Range<u32>>,
) {
    for row in rows {
        let first = (row * grid.side + cols.start) as usize;
        let last = (row * grid.side + cols.end) as usize;
        if let (Some(&s), Some(&e)) = (starts.get(first), starts.get(last)) {
            push_range(out, base + s..base + e);
        }
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init, reason = "expected lists of ranges")]
mod tests {
    use super::*;

    fn view(min: (f32, f32), max: (f32, f32), zoom: f32) -> View {
        View {
            min: Vec2::new(min.0, min.1),
            max: Vec2::new(max.0, max.1),
            zoom,
        }
    }

    #[test]
    fn view_follows_the_camera_relative_to_the_origin() {
        let mut cam = Camera::new(DVec2::new(200.0, 100.0));
        cam.center = DVec2::new(1e9 + 10.0, 5.0);
        cam.zoom = 2.0;
        let v = View::new(&cam, DVec2::new(1e9, 0.0));
        assert_eq!(v.min, Vec2::new(-40.0, -20.0));
        assert_eq!(v.max, Vec2::new(60.0, 30.0));
        assert_eq!(v.px(10.0), 5.0);
    }

    #[test]
    fn chunks_keep_order_and_drop_what_is_off_screen() {
        // 3 chunks in a row along x: chunk c spans x in [c*100, c*100 + 99].
        let n = ChunkCuller::CHUNK as usize * 2 + 10;
        let culler = ChunkCuller::build(n, |i| {
            let x = (i / ChunkCuller::CHUNK as usize) as f32 * 100.0
                + (i % ChunkCuller::CHUNK as usize) as f32 * 99.0 / 4096.0;
            (Vec2::new(x, 0.0), Vec2::new(x + 0.5, 1.0))
        });
        let mut out = Vec::new();
        culler.visible(&view((110.0, 0.0), (150.0, 1.0), 1.0), 0.0, &mut out);
        let c = ChunkCuller::CHUNK;
        assert_eq!(out, [c..2 * c]);
        // Chunks next to each other merge into one range; the short last chunk ends at len.
        culler.visible(&view((50.0, 0.0), (500.0, 1.0), 1.0), 0.0, &mut out);
        assert_eq!(out, [0..n as u32]);
        // The margin is in pixels: 20 px at zoom 2 reaches 10 world units further.
        culler.visible(&view((-10.0, 0.0), (-1.0, 1.0), 2.0), 0.0, &mut out);
        assert!(out.is_empty());
        culler.visible(&view((-10.0, 0.0), (-1.0, 1.0), 2.0), 20.0, &mut out);
        assert_eq!(out, [0..c]);
    }

    #[test]
    fn a_chunk_with_a_non_finite_item_is_always_drawn() {
        let culler = ChunkCuller::build(3, |i| {
            let p = if i == 1 {
                Vec2::NAN
            } else {
                Vec2::splat(i as f32)
            };
            (p, p)
        });
        let mut out = Vec::new();
        culler.visible(
            &view((1e6, 1e6), (1e6 + 1.0, 1e6 + 1.0), 1.0),
            0.0,
            &mut out,
        );
        assert_eq!(out, [0..3]);
    }

    #[test]
    fn grid_cells_and_row_ranges() {
        // 4×4 grid over [0, 40]²; one point per cell centre, sorted by cell.
        let pts: Vec<Vec2> = (0..16)
            .map(|c| Vec2::new((c % 4) as f32 * 10.0 + 5.0, (c / 4) as f32 * 10.0 + 5.0))
            .collect();
        let mut grid = CellGrid::over(pts.iter().copied(), 16, 1);
        assert_eq!(grid.side, 4);
        // Points span [5, 35]; stretch to [0, 40] for round numbers.
        grid.min = Vec2::ZERO;
        grid.cell = Vec2::splat(10.0);
        let cells: Vec<u32> = pts.iter().map(|&p| grid.cell_of(p)).collect();
        assert_eq!(cells, (0..16).collect::<Vec<u32>>());
        let starts = cell_starts(&grid, cells.iter().copied());
        assert_eq!(starts, (0..=16).collect::<Vec<u32>>());
        // A view over cells (1..3, 1..2) → rows 1 and 2, columns 1..=2.
        let (cols, rows) = grid
            .cells_touching(&view((12.0, 12.0), (28.0, 28.0), 1.0), 0.0)
            .expect("touches");
        assert_eq!((cols.clone(), rows.clone()), (1..3, 1..3));
        let mut out = Vec::new();
        cell_ranges(&grid, &starts, 100, cols, rows, &mut out);
        assert_eq!(out, [105..107, 109..111]);
        // Whole rows merge into one range.
        let (cols, rows) = grid
            .cells_touching(&view((-5.0, 11.0), (50.0, 29.0), 1.0), 0.0)
            .expect("touches");
        out.clear();
        cell_ranges(&grid, &starts, 0, cols, rows, &mut out);
        assert_eq!(out, [4..12]);
        // Off the grid entirely; the margin brings it back.
        assert!(
            grid.cells_touching(&view((50.0, 50.0), (60.0, 60.0), 1.0), 0.0)
                .is_none()
        );
        assert_eq!(
            grid.cells_touching(&view((50.0, 50.0), (60.0, 60.0), 1.0), 15.0),
            Some((3..4, 3..4))
        );
        // Non-finite points land in cell 0 rather than out of range.
        assert_eq!(grid.cell_of(Vec2::NAN), 0);
        assert_eq!(grid.cell_of(Vec2::splat(1e30)), 15);
    }
}
