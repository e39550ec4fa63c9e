//! Multilevel coarsening by heavy-edge matching, the hierarchy behind the force layout and its LOD
//! tree (and the computed hierarchy of graphs with no names to group by).
//!
//! How it works, per level: visit nodes in a seeded random order; an unmatched node matches the
//! unmatched neighbour with the heaviest edge (normalised by the pair's node weights, so clusters stay
//! balanced). Nodes left unmatched because all their neighbours are taken join the cluster of their
//! heaviest neighbour (this collapses stars, which plain matching shrinks by one node per level), and
//! isolated leftovers pair up with each other, so every level at least nearly halves. The coarse graph
//! merges parallel edges (weights add) and drops internal ones, using a "last seen" marker array:
//! O(E) per level and no hashing. Stops at `target` nodes or when a level shrinks by less than 5 %.
//!
//! Rejected: label propagation (fast and parallel, but uneven cluster sizes make a poor multilevel
//! hierarchy and flip-flops without extra damping) and Louvain (better communities, several times
//! slower per level; the LOD tree needs bounded fan-out more than modularity).

use super::Pcg32;

/// An undirected weighted graph in CSR form (each edge in both rows).
#[derive(Clone, Debug, Default)]
pub struct WeightedGraph {
    /// Row offsets, `n + 1` entries.
    pub offsets: Vec<u32>,
    /// Neighbours.
    pub targets: Vec<u32>,
    /// Edge weights, parallel to `targets`.
    pub weights: Vec<f32>,
    /// Node weights (members represented).
    pub node_weights: Vec<f32>,
}

impl WeightedGraph {
    /// The undirected unit-weight graph of `edges` over `n` nodes; self-loops and duplicate edges
    /// are merged away (duplicates add weight).
    pub fn from_edges(n: usize, edges: &[(u32, u32)]) -> WeightedGraph {
        let csr = super::Csr::undirected(n, edges);
        let identity: Vec<u32> = (0..n as u32).collect();
        let unit = WeightedGraph {
            offsets: csr.offsets,
            targets: csr.targets,
            weights: Vec::new(),
            node_weights: vec![1.0; n],
        };
        // Merge duplicates and drop self-loops by contracting with the identity map.
        let mut g = unit;
        g.weights = vec![1.0; g.targets.len()];
        contract(&g, &identity, n)
    }

    /// Node count.
    pub fn node_count(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Neighbours and weights of `v`.
    pub fn row(&self, v: usize) -> (&[u32], &[f32]) {
        let a = self.offsets.get(v).copied().unwrap_or(0) as usize;
        let b = self.offsets.get(v + 1).copied().unwrap_or(0) as usize;
        let b = b.max(a);
        (
            self.targets.get(a..b).unwrap_or(&[]),
            self.weights.get(a..b).unwrap_or(&[]),
        )
    }
}

/// One coarsening step: the coarse graph and the map from the finer level's nodes to it.
#[derive(Clone, Debug)]
pub struct CoarseLevel {
    /// `map[v]` = coarse node of fine node `v`.
    pub map: Vec<u32>,
    /// The coarse graph.
    pub graph: WeightedGraph,
}

/// Coarsens until at most `target` nodes remain (or progress stalls, or 48 levels). Level `k` of the
/// result maps level `k` (0 = the input) to level `k + 1`.
pub fn coarsen(fine: &WeightedGraph, target: usize, seed: u64) -> Vec<CoarseLevel> {
    let mut levels: Vec<CoarseLevel> = Vec::new();
    let mut rng = Pcg32::new(seed ^ 0x9e37_79b9_7f4a_7c15);
    loop {
        let g = levels.last().map_or(fine, |l| &l.graph);
        let n = g.node_count();
        if n <= target.max(1) || levels.len() >= 48 {
            break;
        }
        let (map, m) = match_level(g, &mut rng);
        if m as f64 > n as f64 * 0.95 {
            break;
        }
        let graph = contract(g, &map, m);
        levels.push(CoarseLevel { map, graph });
    }
    levels
}

/// Heavy-edge matching plus leftovers (see module notes). Returns the map and the coarse count.
fn match_level(g: &WeightedGraph, rng: &mut Pcg32) -> (Vec<u32>, usize) {
    let n = g.node_count();
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u32 + 1) as usize;
        order.swap(i, j);
    }
    const NONE: u32 = u32::MAX;
    let mut map = vec![NONE; n];
    let mut m = 0u32;
    for &u in &order {
        let u = u as usize;
        if map[u] != NONE {
            continue;
        }
        let (nb, w) = g.row(u);
        let wu = g.node_weights.get(u).copied().unwrap_or(1.0);
        let mut best = NONE;
        let mut best_score = f32::NEG_INFINITY;
        for (&v, &wt) in nb.iter().zip(w) {
            if v as usize == u || map[v as usize] != NONE {
                continue;
            }
            let score = wt / (wu + g.node_weights.get(v as usize).copied().unwrap_or(1.0));
            if score > best_score {
                best_score = score;
                best = v;
            }
        }
        if best != NONE {
            map[u] = m;
            map[best as usize] = m;
            m += 1;
        }
    }
    // Leftovers with neighbours join their heaviest neighbour's cluster.
    let mut lonely: Vec<u32> = Vec::new();
    for &u in &order {
        let u = u as usize;
        if map[u] != NONE {
            continue;
        }
        let (nb, w) = g.row(u);
        let mut best = NONE;
        let mut best_w = f32::NEG_INFINITY;
        for (&v, &wt) in nb.iter().zip(w) {
            if map[v as usize] != NONE && wt > best_w {
                best_w = wt;
                best = map[v as usize];
            }
        }
        if best != NONE {
            map[u] = best;
        } else {
            lonely.push(u as u32);
        }
    }
    lonely.sort_unstable();
    for pair in lonely.chunks(2) {
        for &u in pair {
            map[u as usize] = m;
        }
        m += 1;
    }
    (map, m as usize)
}

/// The coarse graph of `g` under `map` (m coarse nodes): parallel edges merged, internal ones dropped.
fn contract(g: &WeightedGraph, map: &[u32], m: usize) -> WeightedGraph {
    let n = g.node_count();
    // Members of each coarse node (counting sort).
    let mut start = vec![0u32; m + 1];
    for &c in map.iter().take(n) {
        start[c as usize + 1] += 1;
    }
    for i in 0..m {
        start[i + 1] += start[i];
    }
    let mut fill = start[..m].to_vec();
    let mut members = vec![0u32; n];
    for (v, &c) in map.iter().enumerate().take(n) {
        members[fill[c as usize] as usize] = v as u32;
        fill[c as usize] += 1;
    }
    let mut offsets = Vec::with_capacity(m + 1);
    offsets.push(0u32);
    let mut targets = Vec::with_capacity(g.targets.len() / 2);
    let mut weights = Vec::with_capacity(g.targets.len() / 2);
    let mut node_weights = vec![0f32; m];
    let mut marker = vec![u32::MAX; m];
    let mut slot = vec![0u32; m];
    for c in 0..m {
        let row_start = targets.len();
        for &v in &members[start[c] as usize..start[c + 1] as usize] {
            node_weights[c] += g.node_weights.get(v as usize).copied().unwrap_or(1.0);
            let (nb, w) = g.row(v as usize);
            for (&x, &wt) in nb.iter().zip(w) {
                let cx = map[x as usize];
                if cx as usize == c {
                    continue;
                }
                if marker[cx as usize] == c as u32 {
                    weights[slot[cx as usize] as usize] += wt;
                } else {
                    marker[cx as usize] = c as u32;
                    slot[cx as usize] = targets.len() as u32;
                    targets.push(cx);
                    weights.push(wt);
                }
            }
        }
        debug_assert!(targets.len() >= row_start);
        offsets.push(targets.len() as u32);
    }
    WeightedGraph {
        offsets,
        targets,
        weights,
        node_weights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_collapses_in_one_level() {
        let edges: Vec<(u32, u32)> = (1..1000).map(|i| (0, i)).collect();
        let g = WeightedGraph::from_edges(1000, &edges);
        let levels = coarsen(&g, 10, 1);
        assert_eq!(levels[0].graph.node_count(), 1);
    }

    #[test]
    fn coarsening_keeps_weight_and_shrinks() {
        // A 100-node path plus 50 isolated nodes.
        let edges: Vec<(u32, u32)> = (0..99).map(|i| (i, i + 1)).collect();
        let g = WeightedGraph::from_edges(150, &edges);
        let levels = coarsen(&g, 4, 3);
        assert!(levels.last().unwrap().graph.node_count() <= 4 || levels.len() >= 5);
        for l in &levels {
            let total: f32 = l.graph.node_weights.iter().sum();
            assert_eq!(total, 150.0);
        }
        // Edge weight is conserved minus internal edges: the first level's sum is at most 2·99.
        let w: f32 = levels[0].graph.weights.iter().sum();
        assert!(w < 198.0 && w > 0.0);
    }

    #[test]
    fn duplicates_merge() {
        let g = WeightedGraph::from_edges(2, &[(0, 1), (1, 0), (0, 0)]);
        assert_eq!(g.row(0).0, &[1]);
        assert_eq!(g.row(0).1, &[2.0]);
    }
}
