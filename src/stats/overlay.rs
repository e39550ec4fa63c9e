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
