//! Dead-code removal for graphs a loader builds by running code symbolically (TorchScript,
//! TensorFlow SavedModel functions), before edges are connected.

use std::collections::HashMap;

use crate::model::{AttrValue, Graph, GroupId, Node, NodeKind, ValueId};

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
    // Bodies still nested follow their owners to their new places; a dead owner's go with it.
    let mut new_id = vec![None; n];
    let mut next = 0u32;
    for (i, slot) in new_id.iter_mut().enumerate() {
        if live[i] {
            *slot = Some(next);
            next += 1;
        }
    }
    let mut body_index = Vec::with_capacity(graph.bodies.len());
    let mut kept = 0;
    graph
        .bodies
        .retain_mut(|b| match new_id.get(b.owner as usize).copied().flatten() {
            Some(id) => {
                b.owner = id;
                body_index.push(Some(kept));
                kept += 1;
                true
            }
            None => {
                body_index.push(None);
                false
            }
        });
    if body_index.iter().any(Option::is_none) {
        for node in &mut graph.nodes {
            for (_, a) in &mut node.attributes {
                if let AttrValue::Graph(j) = a
                    && let Some(&Some(k)) = body_index.get(*j)
                {
                    *j = k;
                }
            }
        }
    }
    let mut keep = live.iter();
    graph.nodes.retain(|_| keep.next().copied().unwrap_or(true));
    let mut keep = live.iter();
    groups.retain(|_| keep.next().copied().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, Value};

    #[test]
    fn bodies_follow_their_owners_and_die_with_them() {
        let mut g = Graph::default();
        let x = g.add_value(Value::default());
        let dead_out = g.add_value(Value::default());
        let y = g.add_value(Value::default());
        let mut input = Node::new("x", "Input", NodeKind::Input);
        input.outputs.push(x);
        g.add_node(input);
        // A dead If (nothing reads it) and a live one, each with a branch.
        for (name, out) in [("dead", dead_out), ("live", y)] {
            let mut n = Node::new(name, "If", NodeKind::Op);
            n.inputs.push(Some(x));
            n.outputs.push(out);
            let index = g.bodies.len();
            n.attributes
                .push(("then_branch".into(), AttrValue::Graph(index)));
            let id = g.add_node(n);
            g.bodies.push(Body {
                owner: id,
                attribute: "then_branch".into(),
                graph: Graph::default(),
                fed_by: Vec::new(),
            });
        }
        let mut out = Node::new("y", "Output", NodeKind::Output);
        out.inputs.push(Some(y));
        g.add_node(out);
        let mut groups = vec![0; 4];
        dead_ops(&mut g, &mut groups);
        let names: Vec<&str> = g.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["x", "live", "y"]);
        assert_eq!(groups.len(), 3);
        assert_eq!(g.bodies.len(), 1);
        assert_eq!(g.bodies[0].owner, 1);
        assert!(matches!(g.nodes[1].attributes[0].1, AttrValue::Graph(0)));
    }
}
