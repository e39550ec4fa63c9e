//! Dead-code removal for graphs a loader builds by running code symbolically (TorchScript,
//! TensorFlow SavedModel functions), before edges are connected.

use std::collections::HashMap;

use crate::model::{Graph, GroupId, Node, NodeKind, ValueId};

/// Drops the ops whose results reach no output (inputs and outputs always stay), as TorchScript's
/// and TensorFlow's own dead-code passes do: the argument checks, warnings and message formatting
/// of library code, a `Shape` left over by tracing. `groups[i]` is node `i`'s group and is pruned
/// alongside. An in-place op (`masked_fill_`) is kept when what it writes to is kept.
pub(super) fn dead_ops(graph: &mut Graph, groups: &mut Vec<GroupId>) {
    let n = graph.nodes.len();
    let mut producer: HashMap<ValueId, usize> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.outputs {
            producer.insert(v, i);
        }
    }
    let in_place = |node: &Node| {
        node.kind == NodeKind::Op && node.op.ends_with('_') && !node.op.starts_with("__")
    };
    let mut live = vec![false; n];
    let mut stack: Vec<usize> = (0..n)
        .filter(|&i| matches!(graph.nodes[i].kind, NodeKind::Output | NodeKind::Input))
        .collect();
    loop {
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut live[i], true) {
                continue;
            }
            for v in graph.nodes[i].inputs.iter().flatten() {
                if let Some(&p) = producer.get(v)
                    && !live[p]
                {
                    stack.push(p);
                }
            }
        }
        // In-place ops writing into a live value.
        for (i, node) in graph.nodes.iter().enumerate() {
            if !live[i]
                && in_place(node)
                && node
                    .inputs
                    .first()
                    .copied()
                    .flatten()
                    .is_some_and(|v| producer.get(&v).is_none_or(|&p| live[p]))
            {
                stack.push(i);
            }
        }
        if stack.is_empty() {
            break;
        }
    }
    let mut keep = live.iter();
    graph.nodes.retain(|_| keep.next().copied().unwrap_or(true));
    let mut keep = live.iter();
    groups.retain(|_| keep.next().copied().unwrap_or(true));
}
