//! Synthetic data for benchmarks and tests.
//!
//! Layout graph generators (this section): [`dag`], [`random`], [`model_like`] — deterministic per
//! seed, returning a `(Graph, Hierarchy)`. Checkpoint writers (`modelmap synth`) live in their own
//! functions below them when added.
//!
//! Rejected: drawing graphs from a `rand` distribution crate (one more dependency; a seeded PCG is
//! enough and keeps outputs identical across crate versions).

use crate::graph::Pcg32;
use crate::model::{Edge, Graph, GroupId, Hierarchy, Node, NodeKind, OpNames, Value, ValueId};

const OPS: [&str; 8] = [
    "MatMul",
    "Add",
    "Mul",
    "Relu",
    "Conv",
    "Reshape",
    "Softmax",
    "Transpose",
];

/// Plain nodes named `n{i}` with ops from a small list, one value per node (its output).
fn plain_graph(name: &str, n: usize, rng: &mut Pcg32) -> Graph {
    let mut g = Graph {
        name: name.to_string(),
        ..Graph::default()
    };
    g.nodes.reserve(n);
    g.values.reserve(n);
    let mut names = OpNames::default();
    let ops: Vec<_> = OPS.iter().map(|op| names.get(op)).collect();
    for i in 0..n {
        let op = ops[rng.below(ops.len() as u32) as usize].clone();
        let mut nd = Node::new(format!("n{i}"), op, NodeKind::Op);
        nd.outputs.push(i as ValueId);
        g.nodes.push(nd);
        g.values.push(Value::default());
    }
    g
}

/// A random DAG with `n` nodes and about `m` edges (at least `n - 1`: node `i > 0` always has a
/// producer among the few nodes before it), edges mostly local in id order with a few long ones, like
/// a model graph with skip connections. No hierarchy (root only).
pub fn dag(n: usize, m: usize, seed: u64) -> (Graph, Hierarchy) {
    let mut rng = Pcg32::new(seed);
    let mut g = plain_graph("dag", n, &mut rng);
    let n32 = n as u32;
    g.edges.reserve(m.max(n));
    for j in 1..n32 {
        let back = 1 + rng.below(j.min(3));
        g.edges.push(Edge {
            from: j - back,
            to: j,
            value: j - back,
        });
    }
    while g.edges.len() < m && n32 > 1 {
        let i = rng.below(n32 - 1);
        let span = if rng.below(100) == 0 {
            2 + rng.below(200)
        } else {
            1 + rng.below(6)
        };
        let j = (i + span).min(n32 - 1);
        g.edges.push(Edge {
            from: i,
            to: j,
            value: i,
        });
    }
    (g, Hierarchy::new())
}

/// A random graph for force layouts: `n` nodes on a hidden square lattice, `m` edges, 99 % of them
/// between lattice neighbours (up to 2 cells away) and 1 % between random nodes, so the graph has a
/// 2-D shape to recover plus some long-range noise. No hierarchy.
pub fn random(n: usize, m: usize, seed: u64) -> (Graph, Hierarchy) {
    let mut rng = Pcg32::new(seed);
    let mut g = plain_graph("random", n, &mut rng);
    if n < 2 {
        return (g, Hierarchy::new());
    }
    let side = (n as f64).sqrt().ceil() as i64;
    g.edges.reserve(m);
    while g.edges.len() < m {
        let i = rng.below(n as u32);
        let j = if rng.below(100) == 0 {
            rng.below(n as u32)
        } else {
            let (x, y) = (i as i64 % side, i as i64 / side);
            let dx = rng.below(5) as i64 - 2;
            let dy = rng.below(5) as i64 - 2;
            let (nx, ny) = (x + dx, y + dy);
            if nx < 0 || ny < 0 || nx >= side {
                continue;
            }
            let j = ny * side + nx;
            if j >= n as i64 {
                continue;
            }
            j as u32
        };
        if i != j {
            g.edges.push(Edge {
                from: i,
                to: j,
                value: i,
            });
        }
    }
    (g, Hierarchy::new())
}

/// Nodes per block of [`model_like`] (without the optional attention mask).
pub const MODEL_BLOCK_NODES: usize = 36;

/// Builder of an ONNX-export-like graph whose node names carry module paths.
struct ModelBuilder {
    g: Graph,
    h: Hierarchy,
    groups: Vec<GroupId>,
    params: Vec<u64>,
    ops: OpNames,
}

impl ModelBuilder {
    /// Adds a node named `name` (its path gives the group) consuming `inputs`; returns its output.
    fn op(&mut self, name: &str, op: &str, inputs: &[ValueId], params: u64) -> ValueId {
        // `/a/b/Op` → groups `a`, `a/b` (the model's `split_path` is private to `model`).
        let mut segs: Vec<&str> = name.split('/').filter(|s| !s.is_empty()).collect();
        segs.pop();
        let group = self.h.insert_path(segs, '/');
        let out = self.g.add_value(Value {
            name: format!("{name}_output_0"),
            ..Value::default()
        });
        let mut nd = Node::new(name, self.ops.get(op), NodeKind::Op);
        nd.inputs = inputs.iter().map(|&v| Some(v)).collect();
        nd.outputs.push(out);
        nd.group = group;
        self.g.add_node(nd);
        self.groups.push(group);
        self.params.push(params);
        out
    }

    fn rms_norm(&mut self, prefix: &str, x: ValueId, hidden: u64) -> ValueId {
        let p = self.op(&format!("{prefix}/Pow"), "Pow", &[x], 0);
        let m = self.op(&format!("{prefix}/ReduceMean"), "ReduceMean", &[p], 0);
        let a = self.op(&format!("{prefix}/Add"), "Add", &[m], 0);
        let s = self.op(&format!("{prefix}/Sqrt"), "Sqrt", &[a], 0);
        let d = self.op(&format!("{prefix}/Div"), "Div", &[x, s], 0);
        self.op(&format!("{prefix}/Mul"), "Mul", &[d], hidden)
    }
}

/// A LLaMA-like decoder as tracing exporters write it: `blocks` repeated blocks (RMSNorm, attention
/// with q/k/v/o projections, residual Add, RMSNorm, gated MLP, residual Add), node names like
/// `/model/layers.N/self_attn/q_proj/MatMul`, so the hierarchy is real; about
/// [`MODEL_BLOCK_NODES`] nodes per block. The seed decides which blocks get an attention-mask Add.
/// Parameter counts (hidden 64) are recorded in the hierarchy.
pub fn model_like(blocks: usize, seed: u64) -> (Graph, Hierarchy) {
    let mut rng = Pcg32::new(seed);
    let hidden = 64u64;
    let mut b = ModelBuilder {
        g: Graph {
            name: "model_like".to_string(),
            ..Graph::default()
        },
        h: Hierarchy::new(),
        groups: Vec::new(),
        params: Vec::new(),
        ops: OpNames::default(),
    };
    let ids = b.g.add_value(Value {
        name: "input_ids".to_string(),
        ..Value::default()
    });
    let mut input = Node::new("input_ids", "Input", NodeKind::Input);
    input.outputs.push(ids);
    b.g.add_node(input);
    b.groups.push(0);
    b.params.push(0);
    b.g.inputs.push(ids);
    let mut x = b.op(
        "/model/embed_tokens/Gather",
        "Gather",
        &[ids],
        1000 * hidden,
    );
    for l in 0..blocks {
        let p = format!("/model/layers.{l}");
        let h1 = b.rms_norm(&format!("{p}/input_layernorm"), x, hidden);
        let a = format!("{p}/self_attn");
        let q = b.op(
            &format!("{a}/q_proj/MatMul"),
            "MatMul",
            &[h1],
            hidden * hidden,
        );
        let k = b.op(
            &format!("{a}/k_proj/MatMul"),
            "MatMul",
            &[h1],
            hidden * hidden,
        );
        let v = b.op(
            &format!("{a}/v_proj/MatMul"),
            "MatMul",
            &[h1],
            hidden * hidden,
        );
        let q = b.op(&format!("{a}/Reshape"), "Reshape", &[q], 0);
        let k = b.op(&format!("{a}/Reshape_1"), "Reshape", &[k], 0);
        let v = b.op(&format!("{a}/Reshape_2"), "Reshape", &[v], 0);
        let q = b.op(&format!("{a}/Transpose"), "Transpose", &[q], 0);
        let k = b.op(&format!("{a}/Transpose_1"), "Transpose", &[k], 0);
        let v = b.op(&format!("{a}/Transpose_2"), "Transpose", &[v], 0);
        let s = b.op(&format!("{a}/MatMul"), "MatMul", &[q, k], 0);
        let mut s = b.op(&format!("{a}/Div"), "Div", &[s], 0);
        if rng.below(2) == 0 {
            s = b.op(&format!("{a}/Add"), "Add", &[s, ids], 0);
        }
        let s = b.op(&format!("{a}/Softmax"), "Softmax", &[s], 0);
        let c = b.op(&format!("{a}/MatMul_1"), "MatMul", &[s, v], 0);
        let c = b.op(&format!("{a}/Transpose_3"), "Transpose", &[c], 0);
        let c = b.op(&format!("{a}/Reshape_3"), "Reshape", &[c], 0);
        let o = b.op(
            &format!("{a}/o_proj/MatMul"),
            "MatMul",
            &[c],
            hidden * hidden,
        );
        let r1 = b.op(&format!("{p}/Add"), "Add", &[x, o], 0);
        let h2 = b.rms_norm(&format!("{p}/post_attention_layernorm"), r1, hidden);
        let m = format!("{p}/mlp");
        let gate = b.op(
            &format!("{m}/gate_proj/MatMul"),
            "MatMul",
            &[h2],
            4 * hidden * hidden,
        );
        let sg = b.op(&format!("{m}/act_fn/Sigmoid"), "Sigmoid", &[gate], 0);
        let silu = b.op(&format!("{m}/act_fn/Mul"), "Mul", &[gate, sg], 0);
        let up = b.op(
            &format!("{m}/up_proj/MatMul"),
            "MatMul",
            &[h2],
            4 * hidden * hidden,
        );
        let prod = b.op(&format!("{m}/Mul"), "Mul", &[silu, up], 0);
        let down = b.op(
            &format!("{m}/down_proj/MatMul"),
            "MatMul",
            &[prod],
            4 * hidden * hidden,
        );
        x = b.op(&format!("{p}/Add_1"), "Add", &[r1, down], 0);
    }
    let x = b.rms_norm("/model/norm", x, hidden);
    let logits = b.op("/lm_head/MatMul", "MatMul", &[x], 1000 * hidden);
    let mut out = Node::new("logits", "Output", NodeKind::Output);
    out.inputs.push(Some(logits));
    b.g.add_node(out);
    b.groups.push(0);
    b.params.push(0);
    b.g.outputs.push(logits);
    b.g.connect_by_values();
    let params = b.params;
    b.h.finish(&b.groups, |i| params.get(i).copied().unwrap_or(0));
    (b.g, b.h)
}

/// [`model_like`] with about `nodes` nodes.
pub fn model_like_nodes(nodes: usize, seed: u64) -> (Graph, Hierarchy) {
    model_like((nodes / (MODEL_BLOCK_NODES + 1)).max(1), seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_deterministic_and_sized() {
        let (a, _) = dag(1000, 3000, 4);
        let (b, _) = dag(1000, 3000, 4);
        assert_eq!(a.edges, b.edges);
        assert_eq!(a.edges.len(), 3000);
        assert!(a.edges.iter().all(|e| e.from < e.to));
        let (r, _) = random(1000, 2000, 4);
        assert_eq!(r.edges.len(), 2000);
        assert!(
            r.edges
                .iter()
                .all(|e| e.from < 1000 && e.to < 1000 && e.from != e.to)
        );
    }

    #[test]
    fn model_like_has_real_hierarchy() {
        let (g, h) = model_like(3, 1);
        let l1 = h.find("model/layers.1/self_attn/q_proj").unwrap();
        assert_eq!(h.get(l1).unwrap().nodes.len(), 1);
        let layer = h.find("model/layers.1").unwrap();
        let n = h.get(layer).unwrap().node_count as usize;
        assert!(
            (MODEL_BLOCK_NODES..=MODEL_BLOCK_NODES + 1).contains(&n),
            "{n}"
        );
        assert!(h.root().param_count > 0);
        // The residual stream: layers.0/Add_1 feeds layers.1's norm and its residual Add.
        assert!(g.edges.len() > g.nodes.len());
    }
}
