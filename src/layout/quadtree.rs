//! Barnes–Hut quadtree over 2-D points, rebuilt every iteration without allocating.
//!
//! How it works: points are quantised to a 2¹⁶ × 2¹⁶ grid over their bounding square and sorted by
//! Morton (Z-order) code with rayon's in-place parallel sort; then the tree is built recursively over
//! the sorted array (a cell's points are a contiguous run, its four children found by binary search
//! on the next two code bits), so a leaf is a range of the sorted array and building is O(n) after
//! the sort. Nodes live in one `Vec` that is cleared and refilled, so after the first build no
//! iteration allocates. Queries walk the tree with a fixed-size stack array.
//!
//! Rejected: pointer-based insertion (one allocation per cell, cache misses, and a serial O(n log n)
//! insertion loop), and a uniform-grid approximation (wrong far field for clustered layouts).

use std::sync::atomic::{AtomicU32, Ordering};

use glam::Vec2;
use rayon::prelude::*;

/// Maximum tree depth (bits per axis of the Morton code).
const MAX_DEPTH: u32 = 16;
/// Points per leaf before splitting.
const LEAF: usize = 8;
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct QNode {
    /// Centre of mass.
    com: Vec2,
    /// Number of points below.
    mass: f32,
    /// Cell corner and side.
    min: Vec2,
    side: f32,
    /// Children (NONE when absent); all NONE for a leaf.
    children: [u32; 4],
    /// Leaf point range in the sorted order.
    start: u32,
    end: u32,
}

/// A reusable Barnes–Hut quadtree (unit mass per point).
#[derive(Debug, Default)]
pub struct QuadTree {
    nodes: Vec<QNode>,
    order: Vec<(u32, u32)>,
    /// Positions in Morton order, so a leaf's points are contiguous in memory.
    sorted: Vec<Vec2>,
    /// `rank[i]`: where point `i` sits in Morton order. Atomic only so that the scatter that fills
    /// it runs in parallel (relaxed stores and loads are plain moves).
    rank: Vec<AtomicU32>,
}

impl QuadTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cells of the last build.
    pub fn cell_count(&self) -> usize {
        self.nodes.len()
    }

    /// Rebuilds the tree over `pos`. Allocation-free once the buffers have grown to size.
    pub fn build(&mut self, pos: &[Vec2]) {
        self.nodes.clear();
        self.order.clear();
        if pos.is_empty() {
            return;
        }
        let (lo, hi) = pos
            .par_iter()
            .with_min_len(4096)
            .fold(
                || (Vec2::splat(f32::INFINITY), Vec2::splat(f32::NEG_INFINITY)),
                |(a, b), &p| {
                    if p.is_finite() {
                        (a.min(p), b.max(p))
                    } else {
                        (a, b)
                    }
                },
            )
            .reduce(
                || (Vec2::splat(f32::INFINITY), Vec2::splat(f32::NEG_INFINITY)),
                |(a, b), (c, d)| (a.min(c), b.max(d)),
            );
        let (lo, hi) = if lo.x <= hi.x {
            (lo, hi)
        } else {
            (Vec2::ZERO, Vec2::ONE)
        };
        let side = (hi - lo).max_element().max(1e-3) * 1.0001;
        let scale = ((1u32 << MAX_DEPTH) - 1) as f32 / side;
        self.order.resize(pos.len(), (0, 0));
        self.order
            .par_iter_mut()
            .with_min_len(4096)
            .enumerate()
            .for_each(|(i, slot)| {
                let p = pos[i];
                let q = if p.is_finite() {
                    ((p - lo) * scale).max(Vec2::ZERO)
                } else {
                    Vec2::ZERO
                };
                *slot = (morton(q.x as u32, q.y as u32), i as u32);
            });
        self.order.par_sort_unstable();
        self.sorted.resize(pos.len(), Vec2::ZERO);
        let order = &self.order;
        self.sorted
            .par_iter_mut()
            .with_min_len(4096)
            .enumerate()
            .for_each(|(k, s)| {
                let p = pos[order[k].1 as usize];
                *s = if p.is_finite() { p } else { Vec2::ZERO };
            });
        self.rank.resize_with(pos.len(), || AtomicU32::new(0));
        let rank = &self.rank;
        self.order
            .par_iter()
            .with_min_len(4096)
            .enumerate()
            .for_each(|(k, &(_, i))| {
                if let Some(r) = rank.get(i as usize) {
                    r.store(k as u32, Ordering::Relaxed);
                }
            });
        self.build_rec(0, pos.len(), 0, lo, side);
    }

    /// Point indices in Morton order (iterate in this order for cache locality).
    pub fn order(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.order.iter().map(|e| e.1)
    }

    /// The point at Morton position `k`: its index and position.
    pub fn sorted_point(&self, k: usize) -> Option<(u32, Vec2)> {
        Some((self.order.get(k)?.1, *self.sorted.get(k)?))
    }

    /// Morton position of point `i`.
    pub fn rank(&self, i: u32) -> Option<u32> {
        self.rank.get(i as usize).map(|r| r.load(Ordering::Relaxed))
    }

    /// Centre of mass of all points.
    pub fn center(&self) -> Vec2 {
        self.nodes.first().map_or(Vec2::ZERO, |n| n.com)
    }

    fn build_rec(&mut self, lo: usize, hi: usize, depth: u32, min: Vec2, side: f32) -> u32 {
        let idx = self.nodes.len() as u32;
        self.nodes.push(QNode {
            com: Vec2::ZERO,
            mass: 0.0,
            min,
            side,
            children: [NONE; 4],
            start: lo as u32,
            end: hi as u32,
        });
        if hi - lo <= LEAF || depth >= MAX_DEPTH {
            let c: Vec2 = self.sorted[lo..hi].iter().copied().sum();
            let m = (hi - lo) as f32;
            let node = &mut self.nodes[idx as usize];
            node.com = c / m.max(1.0);
            node.mass = m;
            return idx;
        }
        let shift = 2 * (MAX_DEPTH - 1 - depth);
        let half = side * 0.5;
        let mut start = lo;
        let mut children = [NONE; 4];
        let (mut com, mut mass) = (Vec2::ZERO, 0.0f32);
        for (q, child) in children.iter_mut().enumerate() {
            let end = start
                + self.order[start..hi]
                    .partition_point(|&(code, _)| ((code >> shift) & 3) as usize <= q);
            if end > start {
                let cmin = min
                    + Vec2::new(
                        if q & 1 != 0 { half } else { 0.0 },
                        if q & 2 != 0 { half } else { 0.0 },
                    );
                let c = self.build_rec(start, end, depth + 1, cmin, half);
                let cn = self.nodes[c as usize];
                com += cn.com * cn.mass;
                mass += cn.mass;
                *child = c;
            }
            start = end;
        }
        let node = &mut self.nodes[idx as usize];
        node.children = children;
        node.mass = mass;
        node.com = com / mass.max(1.0);
        idx
    }

    /// Sum over other points `j` of `(p - p_j) / |p - p_j|²` (the 2-D Coulomb field of unit masses,
    /// magnitude 1/d), with cells far enough away (`side / d < theta`) taken as one mass at their
    /// centre. `me` is the index of the point at `p` (skipped).
    pub fn field(&self, me: u32, p: Vec2, theta: f32) -> Vec2 {
        let mut f = Vec2::ZERO;
        if self.nodes.is_empty() {
            return f;
        }
        let theta2 = theta * theta;
        let mut stack = [0u32; 72];
        let mut sp = 1usize;
        while sp > 0 {
            sp -= 1;
            let Some(nd) = self.nodes.get(stack[sp] as usize) else {
                continue;
            };
            if nd.children == [NONE; 4] {
                let range = nd.start as usize..nd.end as usize;
                let (Some(ids), Some(pts)) =
                    (self.order.get(range.clone()), self.sorted.get(range))
                else {
                    continue;
                };
                for (&(_, j), &q) in ids.iter().zip(pts) {
                    if j == me {
                        continue;
                    }
                    let mut d = p - q;
                    let mut d2 = d.length_squared();
                    if d2 < 1e-8 {
                        // Coincident points: a fixed tiny push, direction by index, so they separate.
                        d = Vec2::new(if me < j { 0.01 } else { -0.01 }, 0.0);
                        d2 = 1e-4;
                    }
                    f += d / d2;
                }
                continue;
            }
            let d = p - nd.com;
            let d2 = d.length_squared();
            let inside = p.x >= nd.min.x
                && p.y >= nd.min.y
                && p.x < nd.min.x + nd.side
                && p.y < nd.min.y + nd.side;
            if !inside && nd.side * nd.side < theta2 * d2 {
                f += d * (nd.mass / d2);
            } else {
                for &c in &nd.children {
                    if c != NONE && sp < stack.len() {
                        stack[sp] = c;
                        sp += 1;
                    }
                }
            }
        }
        f
    }
}

/// Interleaves the low 16 bits of x (even bits) and y (odd bits).
fn morton(x: u32, y: u32) -> u32 {
    fn spread(mut v: u32) -> u32 {
        v &= 0xffff;
        v = (v | (v << 8)) & 0x00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f;
        v = (v | (v << 2)) & 0x3333_3333;
        v = (v | (v << 1)) & 0x5555_5555;
        v
    }
    spread(x) | (spread(y) << 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_matches_direct_sum() {
        let mut rng = crate::graph::Pcg32::new(5);
        let pos: Vec<Vec2> = (0..2000)
            .map(|_| Vec2::new(rng.unit_f32() * 1000.0, rng.unit_f32() * 1000.0))
            .collect();
        let mut t = QuadTree::new();
        t.build(&pos);
        for i in [0u32, 17, 999, 1999] {
            let p = pos[i as usize];
            let exact: Vec2 = pos
                .iter()
                .enumerate()
                .filter(|(j, _)| *j as u32 != i)
                .map(|(_, &q)| (p - q) / (p - q).length_squared())
                .sum();
            let approx = t.field(i, p, 0.5);
            assert!(
                (approx - exact).length() <= 0.05 * exact.length().max(1e-3),
                "{i}: {approx} vs {exact}"
            );
            let all = t.field(i, p, 0.0);
            assert!((all - exact).length() <= 1e-3 * exact.length().max(1e-3));
        }
    }

    #[test]
    fn morton_interleaves() {
        assert_eq!(morton(1, 0), 1);
        assert_eq!(morton(0, 1), 2);
        assert_eq!(morton(3, 3), 15);
    }
}
