//! The anomaly panel's data: a background scan of every tensor's statistics, the findings of
//! [`crate::stats::anomaly::find_anomalies`] tied to the node that owns each tensor, and the per-node
//! figures that colour the graph ("colour by").
//!
//! How it works: [`scan`] runs on a job thread (`AppState::scan_anomalies`): it streams every tensor
//! through `stats::model_stats_cached` (rayon, memory stays flat; the user's stats cache makes a
//! second scan of the same file instant), reporting tensors done into the progress bar, then finds
//! the anomalies (already sorted most severe first) and the owner of each tensor (the first node
//! listing it in `Node::tensors`). [`overlay_values`] maps a chosen [`Figure`] to 0..=1 per node
//! (log scale for counts and norms, linear for sparsity, |z| / 2·threshold for sibling z-scores);
//! nodes without the figure get NaN, which the LOD cut draws in their own colour.
//!
//! Cancelling the job stops the pass within one tensor's time (`stats::model_stats_until`): tensors
//! not yet begun are skipped, and those computed are kept in the cache, so the next scan resumes.
//!
//! Rejected: computing statistics on the UI thread when the panel opens (a 2.5 GB checkpoint takes
//! seconds).

use std::sync::Arc;

use super::jobs::JobProgress;
use crate::model::{Model, NodeId};
use crate::stats::anomaly::Anomaly;
use crate::stats::cache::StatsCache;
use crate::stats::overlay::{Figure, NodeFigures};

/// One finding and the node that owns its tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// What stands out.
    pub anomaly: Anomaly,
    /// The node owning the tensor (`None` for a tensor no node lists).
    pub node: Option<NodeId>,
}

/// The result of one scan of a model.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Per-node figures for the colour-by overlay.
    pub figures: Arc<Vec<NodeFigures>>,
    /// Tensors scanned.
    pub tensors: usize,
    /// Tensors with statistics.
    pub with_stats: usize,
    /// Seconds the scan took.
    pub seconds: f64,
}

/// Per tensor, the first node listing it in `Node::tensors`.
pub fn tensor_owners(model: &Model) -> Vec<Option<NodeId>> {
    let mut owner: Vec<Option<NodeId>> = vec![None; model.tensors.len()];
    for (i, n) in model.graph.nodes.iter().enumerate() {
        for &t in &n.tensors {
            if let Some(slot) = owner.get_mut(t as usize) {
                slot.get_or_insert(i as NodeId);
            }
        }
    }
    owner
}

/// Computes statistics for every tensor of `model` (through `cache` when given), then its
/// anomalies and per-node figures. Reports progress into `progress`.
pub fn scan(model: &Model, cache: Option<&StatsCache>, progress: &JobProgress) -> Scan {
    let started = std::time::Instant::now();
    progress.set("statistics of every tensor", 0.0);
    let stats = crate::stats::model_stats_until(
        model,
        cache,
        &|done, total| {
            progress.set_fraction(0.95 * done as f32 / total.max(1) as f32);
        },
        &|| progress.is_cancelled(),
    );
    if progress.is_cancelled() {
        // The job's result is dropped; what was computed is already in the cache.
        return Scan::default();
    }
    progress.set("finding anomalies", 0.95);
    let owners = tensor_owners(model);
    let findings = crate::stats::anomaly::find_anomalies(model, &stats)
        .into_iter()
        .map(|a| Finding {
            node: owners.get(a.tensor_id as usize).copied().flatten(),
            anomaly: a,
        })
        .collect();
    let figures = Arc::new(crate::stats::overlay::node_figures(model, &stats));
    Scan {
        findings,
        figures,
        tensors: stats.len(),
        with_stats: stats.iter().filter(|s| s.is_ok()).count(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Per-node overlay values (0..=1, NaN for no data, and a file's own colours) shared with the
/// draw list; two are equal when they are the same allocation, so comparing scene inputs stays
/// cheap.
#[derive(Clone, Debug)]
pub struct OverlayValues(pub Arc<crate::lod::NodeOverlay>);

impl PartialEq for OverlayValues {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for OverlayValues {}

/// The figures the colour-by menu offers, with their labels.
pub const FIGURES: [(Figure, &str); 5] = [
    (Figure::Params, "parameter count"),
    (Figure::WeightNorm, "weight norm"),
    (Figure::Sparsity, "sparsity"),
    (Figure::SiblingZ, "norm z-score among siblings"),
    (Figure::Flops, "FLOPs per token"),
];

/// The label of [`Figure::Change`], offered when a view compares two checkpoints.
pub const CHANGE_LABEL: &str = "change against B (norm of B − A / norm of A)";

pub use crate::stats::overlay::overlay_values;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_is_log_scaled_and_nan_without_data() {
        let figs = vec![
            NodeFigures {
                params: 10,
                ..Default::default()
            },
            NodeFigures {
                params: 1000,
                ..Default::default()
            },
            NodeFigures {
                params: 100,
                ..Default::default()
            },
            NodeFigures::default(),
        ];
        let v = overlay_values(&figs, Figure::Params);
        assert_eq!(v[0], 0.0);
        assert_eq!(v[1], 1.0);
        assert!((v[2] - 0.5).abs() < 1e-6, "{v:?}");
        assert!(v[3].is_nan());
        assert!(
            overlay_values(&figs, Figure::Sparsity)
                .iter()
                .all(|x| x.is_nan())
        );
    }
}
