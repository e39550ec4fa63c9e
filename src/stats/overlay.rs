//! Per-node figures for colouring the structure view.
//!
//! How it works: a node's figures aggregate the statistics of the parameter tensors it owns
//! (`Node::tensors`): parameter count, combined L2 norm (√Σ‖W‖²), sparsity (zeros / elements), the
//! largest |sibling z-score| of its tensors' norms (see [`super::anomaly`]), and a FLOPs-per-token
//! estimate for dense ops (2 × weight elements for MatMul/Gemm/Linear-like nodes; `None` for
//! convolutions, whose cost depends on the activation size the IR does not know). The renderer maps
//! the chosen [`Figure`] through a colour map; `None` means "no data" (grey).
//!
//! Rejected: computing figures per hierarchy group here (the LOD code already sums child figures
//! where it aggregates clusters, and a mean of z-scores means nothing).

use super::anomaly::OUTLIER_Z;
use super::{StatsError, TensorStats, anomaly};
use crate::model::Model;

/// Figures for one node.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NodeFigures {
    /// Elements of the node's parameter tensors.
    pub params: u64,
    /// √(Σ over its tensors of L2²); `None` without statistics.
    pub weight_norm: Option<f64>,
    /// Zero elements / elements over its tensors; `None` without statistics.
    pub sparsity: Option<f64>,
    /// The largest |robust z-score| of its tensors' norms among their siblings.
    pub sibling_z: Option<f64>,
    /// Multiply-adds × 2 per token for dense ops.
    pub flops_per_token: Option<f64>,
    /// ‖B − A‖ / ‖A‖ over its tensors, against another checkpoint ([`set_change`]).
    pub change: Option<f64>,
}

/// Which figure colours the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Figure {
    /// Parameter count (log scale is up to the colour map).
    #[default]
    Params,
    /// Weight norm.
    WeightNorm,
    /// Sparsity.
    Sparsity,
    /// Sibling z-score.
    SiblingZ,
    /// FLOPs per token.
    Flops,
    /// Relative change against another checkpoint.
    Change,
    /// Values from a node data file ([`super::node_data`]).
    NodeData,
}

impl NodeFigures {
    /// The chosen figure.
    pub fn get(&self, f: Figure) -> Option<f64> {
        match f {
            Figure::Params => (self.params > 0).then_some(self.params as f64),
            Figure::WeightNorm => self.weight_norm,
            Figure::Sparsity => self.sparsity,
            Figure::SiblingZ => self.sibling_z,
            Figure::Flops => self.flops_per_token,
            Figure::Change => self.change,
            // Read from a file, not computed per node here.
            Figure::NodeData => None,
        }
    }
}

fn is_dense(op: &str) -> bool {
    matches!(
        op,
        "MatMul"
            | "Gemm"
            | "Linear"
            | "Dense"
            | "FullyConnected"
            | "InnerProduct"
            | "MatMulInteger"
            | "QLinearMatMul"
            // ATen ops of torch.export graphs.
            | "linear"
            | "addmm"
            | "mm"
            | "matmul"
    )
}

/// Figures for every node of `m.graph`, in node order. `stats` is [`super::model_stats`]'s output.
pub fn node_figures(m: &Model, stats: &[Result<TensorStats, StatsError>]) -> Vec<NodeFigures> {
    let z = anomaly::sibling_zscores(m, stats);
    m.graph
        .nodes
        .iter()
        .map(|n| {
            let mut f = NodeFigures::default();
            let (mut l2sq, mut zeros, mut counted, mut any) = (0.0f64, 0u64, 0u64, false);
            let mut weight_elems = 0u64;
            for &tid in &n.tensors {
                let i = tid as usize;
                let Some(t) = m.tensors.get(i) else { continue };
                f.params += t.elements();
                if t.shape.len() >= 2 {
                    weight_elems += t.elements();
                }
                if let Some(Ok(s)) = stats.get(i) {
                    any = true;
                    l2sq += s.l2 * s.l2;
                    zeros += s.zeros;
                    counted += s.count;
                }
                if let Some(Some(zs)) = z.get(i) {
                    f.sibling_z = Some(f.sibling_z.map_or(zs.abs(), |o: f64| o.max(zs.abs())));
                }
            }
            if any {
                f.weight_norm = Some(l2sq.sqrt());
                f.sparsity = Some(if counted > 0 {
                    zeros as f64 / counted as f64
                } else {
                    0.0
                });
            }
            let module_linear = n.kind == crate::model::NodeKind::Module && weight_elems > 0;
            if weight_elems > 0 && (is_dense(&n.op) || module_linear) {
                f.flops_per_token = Some(2.0 * weight_elems as f64);
            }
            f
        })
        .collect()
}

/// Per node, `f` mapped to 0..=1 for the overlay colour scale (log scale for counts, norms and
/// changes, linear for sparsity, |z| / 2·threshold for sibling z-scores); NaN where a node has no
/// such figure.
pub fn overlay_values(figures: &[NodeFigures], f: Figure) -> Vec<f32> {
    let raw: Vec<Option<f64>> = figures.iter().map(|x| x.get(f)).collect();
    let finite = || raw.iter().flatten().copied().filter(|v| v.is_finite());
    let map: Box<dyn Fn(f64) -> f64> = match f {
        Figure::Sparsity | Figure::NodeData => Box::new(|v| v),
        Figure::SiblingZ => Box::new(|v| v.abs() / (2.0 * OUTLIER_Z)),
        Figure::Params | Figure::WeightNorm | Figure::Flops | Figure::Change => {
            // Log scale between the smallest and largest positive value.
            let pos = || finite().filter(|&v| v > 0.0);
            let lo = pos().fold(f64::INFINITY, f64::min).ln();
            let hi = pos().fold(0.0f64, f64::max).ln();
            let span = hi - lo;
            // A change of zero (an unchanged node) keeps the bottom of the scale to itself: the
            // smallest change starts a quarter of the way up, so "unchanged" and "changed a
            // little" do not look alike.
            let floor = if f == Figure::Change { 0.25 } else { 0.0 };
            Box::new(move |v| {
                if v <= 0.0 {
                    0.0
                } else if span > 0.0 && span.is_finite() {
                    floor + (1.0 - floor) * (v.ln() - lo) / span
                } else {
                    1.0
                }
            })
        }
    };
    raw.iter()
        .map(|v| match v {
            Some(v) if v.is_finite() => map(*v).clamp(0.0, 1.0) as f32,
            _ => f32::NAN,
        })
        .collect()
}

/// Sets each node's [`NodeFigures::change`] from a comparison of `m` (as A) with another
/// checkpoint: √(Σ‖B − A‖²) / √(Σ‖A‖²) over the node's compared tensors.
pub fn set_change(figs: &mut [NodeFigures], m: &Model, d: &super::diff::ModelDiff) {
    let by_tensor = d.by_tensor(m.tensors.len());
    for (f, n) in figs.iter_mut().zip(&m.graph.nodes) {
        let (mut a2, mut d2, mut any) = (0.0f64, 0.0f64, false);
        for &t in &n.tensors {
            if let Some(Some(x)) = by_tensor.get(t as usize) {
                any = true;
                a2 += x.norm_a * x.norm_a;
                d2 += x.diff_norm * x.diff_norm;
            }
        }
        f.change = any.then(|| if a2 > 0.0 { (d2 / a2).sqrt() } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::super::model_stats;
    use super::super::test_util::*;
    use super::*;
    use crate::model::{Format, Node, NodeKind};

    #[test]
    fn figures_aggregate_owned_tensors() {
        let mut m = Model::new("x.onnx", Format::Onnx);
        let w = m.add_tensor(f32_tensor("fc.w", &[2, 2], &[3.0, 0.0, 0.0, 4.0]));
        let b = m.add_tensor(f32_tensor("fc.b", &[2], &[0.0, 0.0]));
        let mut n = Node::new("fc", "Gemm", NodeKind::Op);
        n.tensors = vec![w, b];
        m.graph.add_node(n);
        m.graph.add_node(Node::new("relu", "Relu", NodeKind::Op));
        let stats = model_stats(&m, &|_, _| {});
        let f = node_figures(&m, &stats);
        assert_eq!(f[0].params, 6);
        assert_eq!(f[0].weight_norm, Some(5.0));
        assert_eq!(f[0].sparsity, Some(4.0 / 6.0));
        assert_eq!(f[0].flops_per_token, Some(8.0));
        assert_eq!(f[0].sibling_z, None);
        assert_eq!(f[1], NodeFigures::default());
        assert_eq!(f[1].get(Figure::Params), None);
        assert_eq!(f[0].get(Figure::WeightNorm), Some(5.0));
    }
}
