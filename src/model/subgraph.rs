//! Subgraphs inlined into the graph that owns them.
//!
//! Loaders build an `If` branch or a `Loop` body as a graph nested in its owner's attribute
//! ([`Body`](super::Body)); [`Graph::inline_bodies`] appends its nodes, values and edges to the enclosing graph
//! and connects them to the outside, so the structure view, search, statistics and overlays see
//! the nodes inside a branch as they see any other (silero-vad is one `If` whose branches hold all
//! 689 of its ops). A [`Subgraph`] remembers which ranges of nodes and values were a body.

use super::{
    AttrValue, Edge, Graph, GroupId, Hierarchy, Node, NodeId, NodeKind, Subgraph, ValueId,
    hierarchy_split,
};
use rustc_hash::{FxHashMap, FxHashSet};

/// The boxes subgraphs are drawn in: each owner gets a box of its own (named after it) inside the
/// group it was given, holding itself and one box per body (named after the attribute:
/// `If_0/then_branch`), so the branches collapse and open like any module.
#[derive(Debug, Default)]
pub struct SubgraphBoxes {
    owners: FxHashMap<NodeId, GroupId>,
}

impl SubgraphBoxes {
    /// The box for subgraph `k`'s own nodes, creating its owner's box (and moving the owner into
    /// it: `groups[owner]`) the first time. Call for each subgraph in order, after placing the
    /// nodes of the scope its owner is in.
    pub fn body(
        &mut self,
        hierarchy: &mut Hierarchy,
        graph: &Graph,
        k: usize,
        groups: &mut [GroupId],
    ) -> GroupId {
        let Some(s) = graph.subgraphs.get(k) else {
            return 0;
        };
        let owner = s.owner;
        let outer = groups.get(owner as usize).copied().unwrap_or(0);
        let name = graph
            .nodes
            .get(owner as usize)
            .map_or("", |n| n.name.as_str());
        let (owner_box, body) = self.boxes(hierarchy, outer, owner, name, &s.attribute);
        if let Some(g) = groups.get_mut(owner as usize) {
            *g = owner_box;
        }
        body
    }

    /// The box of `owner` (named by the leaf of `name`) inside `outer`, created the first time,
    /// and a new box for its body `attribute` inside that: `(owner's box, body's box)`.
    pub fn boxes(
        &mut self,
        hierarchy: &mut Hierarchy,
        outer: GroupId,
        owner: NodeId,
        name: &str,
        attribute: &str,
    ) -> (GroupId, GroupId) {
        let owner_box = *self.owners.entry(owner).or_insert_with(|| {
            let (_, leaf, _) = hierarchy_split(name);
            let label = if leaf.is_empty() { "subgraph" } else { leaf };
            hierarchy.new_child(outer, label, '/')
        });
        let label = if attribute.is_empty() {
            "body"
        } else {
            attribute
        };
        (owner_box, hierarchy.new_child(owner_box, label, '/'))
    }
}

impl super::Model {
    /// Puts every subgraph's nodes in its box (see [`SubgraphBoxes`]), for loaders that place
    /// only the top level's nodes themselves.
    pub fn box_subgraphs(&mut self, groups: &mut Vec<GroupId>) {
        groups.resize(self.graph.nodes.len(), 0);
        let mut boxes = SubgraphBoxes::default();
        for k in 0..self.graph.subgraphs.len() {
            let body = boxes.body(&mut self.hierarchy, &self.graph, k, groups);
            for i in self.graph.own_node_ids(k) {
                if let Some(g) = groups.get_mut(i as usize) {
                    *g = body;
                }
            }
        }
    }
}

impl Graph {
    /// Moves every nested [`Body`](super::Body) (and the bodies nested in those) into `nodes`, `values` and
    /// `edges`, recording each as a [`Subgraph`] (the owner's [`AttrValue::Graph`] then indexes
    /// `subgraphs`), and connects them to the enclosing graph:
    /// - an input a body reads by name from an enclosing scope (`by_name`: ONNX, where a branch
    ///   uses outer values without declaring them) becomes the outer value, with an edge from its
    ///   producer to the node inside that reads it;
    /// - a body's graph inputs are fed by the owner's inputs, as [`Body::fed_by`](super::Body::fed_by) says or else
    ///   matched from the last (a `Loop`'s `M, cond, v…` feed its body's `i, cond, v…`; a TFLite
    ///   `IF`'s operands after its condition feed each branch);
    /// - a body's graph outputs flow into the owner, which hands them on to its consumers.
    pub fn inline_bodies(&mut self, by_name: bool) {
        if self.bodies.is_empty() {
            return;
        }
        self.flatten();
        if by_name {
            self.bind_captures();
        }
        self.link_inputs_and_outputs();
    }

    /// Appends each body's nodes, values and edges, its own nested bodies first flattened in it.
    fn flatten(&mut self) {
        let bodies = std::mem::take(&mut self.bodies);
        let own_nodes = self.nodes.len();
        let mut index_of: FxHashMap<usize, usize> = FxHashMap::default();
        for (local, body) in bodies.into_iter().enumerate() {
            let mut inner = body.graph;
            inner.flatten();
            let index = self.subgraphs.len();
            index_of.insert(local, index);
            let n0 = self.nodes.len() as NodeId;
            let v0 = self.values.len() as ValueId;
            let shift = |v: &ValueId| v + v0;
            let fed_by = if body.fed_by.is_empty() {
                // Last to last: the owner's input `given - n + j` feeds the body's `j` of `n`.
                let given = self
                    .nodes
                    .get(body.owner as usize)
                    .map_or(0, |n| n.inputs.len());
                let n = inner.inputs.len();
                (0..n)
                    .map(|j| (given + j).checked_sub(n).filter(|&i| i < given))
                    .collect()
            } else {
                body.fed_by
            };
            self.subgraphs.push(Subgraph {
                owner: body.owner,
                fed_by,
                attribute: body.attribute,
                name: inner.name,
                nodes: n0..n0 + inner.nodes.len() as NodeId,
                values: v0..v0 + inner.values.len() as ValueId,
                parent: None,
                inputs: inner.inputs.iter().map(shift).collect(),
                outputs: inner.outputs.iter().map(shift).collect(),
                captures: Vec::new(),
            });
            let nested = index + 1;
            for mut s in inner.subgraphs {
                s.owner += n0;
                s.nodes = s.nodes.start + n0..s.nodes.end + n0;
                s.values = s.values.start + v0..s.values.end + v0;
                s.parent = Some(s.parent.map_or(index, |p| p + nested));
                s.inputs.iter_mut().for_each(|v| *v += v0);
                s.outputs.iter_mut().for_each(|v| *v += v0);
                self.subgraphs.push(s);
            }
            for mut n in inner.nodes {
                n.inputs.iter_mut().flatten().for_each(|v| *v += v0);
                n.outputs.iter_mut().for_each(|v| *v += v0);
                for (_, a) in &mut n.attributes {
                    if let AttrValue::Graph(j) = a {
                        *j += nested;
                    }
                }
                self.nodes.push(n);
            }
            self.values.extend(inner.values);
            self.edges.extend(inner.edges.into_iter().map(|e| Edge {
                from: e.from + n0,
                to: e.to + n0,
                value: e.value + v0,
            }));
        }
        // Owners named their bodies by place in the loader's list.
        for n in &mut self.nodes[..own_nodes] {
            for (_, a) in &mut n.attributes {
                if let AttrValue::Graph(j) = a
                    && let Some(&index) = index_of.get(j)
                {
                    *j = index;
                }
            }
        }
    }

    /// Rebinds what bodies read from enclosing scopes by name (values nothing inside produces)
    /// to the outer values of that name, with edges from their producers, and fills each
    /// subgraph's `captures`.
    fn bind_captures(&mut self) {
        let value_scope = self.value_scopes();
        let producer = self.producers();
        // Each scope's values by name: 0 is the top level, s + 1 subgraph s.
        let mut by_name: FxHashMap<(usize, &str), ValueId> = FxHashMap::default();
        for (v, value) in self.values.iter().enumerate() {
            let key = (value_scope[v].map_or(0, |s| s + 1), value.name.as_str());
            let here = producer[v].is_some();
            by_name
                .entry(key)
                .and_modify(|w| {
                    // A value something produces wins over a placeholder of the same name.
                    if here && producer[*w as usize].is_none() {
                        *w = v as ValueId;
                    }
                })
                .or_insert(v as ValueId);
        }
        let mut rebind: Vec<(usize, usize, ValueId)> = Vec::new();
        let mut captures: Vec<Vec<String>> = vec![Vec::new(); self.subgraphs.len()];
        let mut seen: FxHashSet<(usize, ValueId)> = FxHashSet::default();
        let mut edges: Vec<Edge> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for (slot, v) in node.inputs.iter().enumerate() {
                let Some(v) = *v else { continue };
                if producer.get(v as usize).copied().flatten().is_some() {
                    continue;
                }
                let Some(Some(scope)) = value_scope.get(v as usize).copied() else {
                    continue;
                };
                let name = self.values[v as usize].name.as_str();
                // Up the enclosing scopes, each subgraph passed reading it from outside.
                // A value of that name nothing produces there either (a body between reading it
                // from further out) sends the search on up.
                let mut passed = vec![scope];
                let mut outer = self.subgraphs[scope].parent;
                let mut found = None;
                loop {
                    if let Some(&w) = by_name.get(&(outer.map_or(0, |s| s + 1), name)) {
                        found = Some((w, passed.len()));
                        if producer.get(w as usize).copied().flatten().is_some() {
                            break;
                        }
                    }
                    match outer {
                        Some(s) => {
                            passed.push(s);
                            outer = self.subgraphs[s].parent;
                        }
                        None => break,
                    }
                }
                let Some((w, reached)) = found else {
                    // Not defined anywhere: an initializer of the body itself, or dangling.
                    continue;
                };
                passed.truncate(reached);
                for &s in &passed {
                    if seen.insert((s, w)) {
                        captures[s].push(name.to_string());
                    }
                }
                rebind.push((i, slot, w));
                if let Some(Some(p)) = producer.get(w as usize) {
                    edges.push(Edge {
                        from: *p,
                        to: i as NodeId,
                        value: w,
                    });
                }
            }
        }
        for (i, slot, w) in rebind {
            self.nodes[i].inputs[slot] = Some(w);
        }
        edges.dedup_by_key(|e| (e.from, e.to));
        self.edges.extend(edges);
        for (s, c) in self.subgraphs.iter_mut().zip(captures) {
            s.captures = c;
        }
    }

    /// Owners' inputs into bodies' graph inputs; bodies' graph outputs into their owners.
    fn link_inputs_and_outputs(&mut self) {
        let producer = self.producers();
        let mut edges: Vec<Edge> = Vec::new();
        for (k, s) in self.subgraphs.iter().enumerate() {
            let Some(owner) = self.nodes.get(s.owner as usize) else {
                continue;
            };
            for (&slot, &inner) in s.fed_by.iter().zip(&s.inputs) {
                let outer = slot.and_then(|i| *owner.inputs.get(i)?);
                let from = outer.and_then(|v| Some((producer.get(v as usize).copied()??, v)));
                let to = producer.get(inner as usize).copied().flatten();
                if let (Some((from, value)), Some(to)) = (from, to) {
                    edges.push(Edge { from, to, value });
                }
            }
            for i in self.own_node_ids(k) {
                let n = &self.nodes[i as usize];
                if n.kind == NodeKind::Output
                    && let Some(&Some(value)) = n.inputs.first()
                {
                    edges.push(Edge {
                        from: i,
                        to: s.owner,
                        value,
                    });
                }
            }
        }
        self.edges.extend(edges);
    }

    /// The innermost subgraph holding each node (`None`: the top level).
    pub fn node_scopes(&self) -> Vec<Option<usize>> {
        self.scopes(self.nodes.len(), |s| s.nodes.clone())
    }

    /// The innermost subgraph holding each value (`None`: the top level).
    pub fn value_scopes(&self) -> Vec<Option<usize>> {
        self.scopes(self.values.len(), |s| s.values.clone())
    }

    /// The innermost subgraph whose `range` holds each of `len` ids (nested ones come later in
    /// the list, so they overwrite their parents).
    fn scopes(
        &self,
        len: usize,
        range: impl Fn(&Subgraph) -> std::ops::Range<u32>,
    ) -> Vec<Option<usize>> {
        let mut scope = vec![None; len];
        for (k, s) in self.subgraphs.iter().enumerate() {
            let r = range(s);
            for slot in scope
                .get_mut(r.start as usize..r.end as usize)
                .into_iter()
                .flatten()
            {
                *slot = Some(k);
            }
        }
        scope
    }

    /// The nodes of the top level, outside every subgraph.
    pub fn top_level_nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        // The first subgraph's nodes follow the top level's.
        let end = self
            .subgraphs
            .first()
            .map_or(self.nodes.len(), |s| s.nodes.start as usize);
        self.nodes.iter().take(end)
    }

    /// The ids of subgraph `k`'s own nodes, not those of subgraphs nested in it.
    pub fn own_node_ids(&self, k: usize) -> std::ops::Range<NodeId> {
        let range = self.subgraphs.get(k).map_or(0..0, |s| s.nodes.clone());
        // Subgraphs are listed each before those nested in it, and their nodes follow its own:
        // the first nested one, if any, is the next in the list and starts where its own end.
        let end = match self.subgraphs.get(k + 1) {
            Some(next) if next.parent == Some(k) => next.nodes.start,
            _ => range.end,
        };
        range.start..end.clamp(range.start, range.end)
    }

    /// Subgraph `k`'s own nodes, not those of subgraphs nested in it.
    pub fn own_nodes(&self, k: usize) -> impl Iterator<Item = &Node> + '_ {
        self.own_node_ids(k)
            .filter_map(move |i| self.nodes.get(i as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, Value};

    fn value(g: &mut Graph, name: &str) -> ValueId {
        g.add_value(Value {
            name: name.into(),
            ..Value::default()
        })
    }

    fn node(
        g: &mut Graph,
        name: &str,
        op: &str,
        kind: NodeKind,
        ins: &[ValueId],
        outs: &[ValueId],
    ) -> NodeId {
        let mut n = Node::new(name, op, kind);
        n.inputs = ins.iter().map(|&v| Some(v)).collect();
        n.outputs = outs.to_vec();
        g.add_node(n)
    }

    /// `x → Loop(M, cond, x) → y`, the body `i, c, v → Add(v, w) → c, v'`, where `w` is read from
    /// the top level by name, and the body holds an `If` whose branch reads `w` too.
    fn looped() -> Graph {
        let mut g = Graph::default();
        let (m, c, x, w, y) = (
            value(&mut g, "M"),
            value(&mut g, "cond"),
            value(&mut g, "x"),
            value(&mut g, "w"),
            value(&mut g, "y"),
        );
        node(&mut g, "M", "Input", NodeKind::Input, &[], &[m]);
        node(&mut g, "cond", "Input", NodeKind::Input, &[], &[c]);
        node(&mut g, "x", "Input", NodeKind::Input, &[], &[x]);
        node(&mut g, "w_gen", "Constant", NodeKind::Op, &[], &[w]);
        let mut owner = Node::new("loop", "Loop", NodeKind::Op);
        owner.inputs = vec![Some(m), Some(c), Some(x)];
        owner.outputs = vec![y];
        owner.attributes.push(("body".into(), AttrValue::Graph(0)));
        let owner = g.add_node(owner);
        node(&mut g, "y", "Output", NodeKind::Output, &[y], &[]);
        g.connect_by_values();

        let mut body = Graph {
            name: "loop_body".into(),
            ..Graph::default()
        };
        let (bi, bc, bv, bw, bo, bd) = (
            value(&mut body, "i"),
            value(&mut body, "c"),
            value(&mut body, "v"),
            value(&mut body, "w"),
            value(&mut body, "v_out"),
            value(&mut body, "d"),
        );
        node(&mut body, "i", "Input", NodeKind::Input, &[], &[bi]);
        node(&mut body, "c", "Input", NodeKind::Input, &[], &[bc]);
        node(&mut body, "v", "Input", NodeKind::Input, &[], &[bv]);
        let mut inner_if = Node::new("if", "If", NodeKind::Op);
        inner_if.inputs = vec![Some(bc)];
        inner_if.outputs = vec![bd];
        inner_if
            .attributes
            .push(("then_branch".into(), AttrValue::Graph(0)));
        body.add_node(inner_if);
        node(&mut body, "add", "Add", NodeKind::Op, &[bv, bw, bd], &[bo]);
        node(&mut body, "c_out", "Output", NodeKind::Output, &[bc], &[]);
        node(&mut body, "v_out", "Output", NodeKind::Output, &[bo], &[]);
        body.inputs = vec![bi, bc, bv];
        body.outputs = vec![bc, bo];
        body.connect_by_values();

        let mut branch = Graph {
            name: "then".into(),
            ..Graph::default()
        };
        let (tw, tn) = (value(&mut branch, "w"), value(&mut branch, "neg"));
        node(&mut branch, "neg", "Neg", NodeKind::Op, &[tw], &[tn]);
        node(&mut branch, "out", "Output", NodeKind::Output, &[tn], &[]);
        branch.outputs = vec![tn];
        branch.connect_by_values();
        body.bodies.push(Body {
            owner: 3,
            attribute: "then_branch".into(),
            graph: branch,
            fed_by: Vec::new(),
        });
        g.bodies.push(Body {
            owner,
            attribute: "body".into(),
            graph: body,
            fed_by: Vec::new(),
        });
        g
    }

    fn id(g: &Graph, name: &str) -> NodeId {
        g.nodes.iter().position(|n| n.name == name).unwrap() as NodeId
    }

    fn edge(g: &Graph, from: &str, to: &str) -> bool {
        let (a, b) = (id(g, from), id(g, to));
        g.edges.iter().any(|e| e.from == a && e.to == b)
    }

    #[test]
    fn bodies_are_inlined_and_wired_to_the_outside() {
        let mut g = looped();
        g.inline_bodies(true);
        assert!(g.bodies.is_empty());
        assert_eq!(g.nodes.len(), 6 + 7 + 2);
        assert_eq!(g.top_level_op_node_count(), 2, "w_gen and the Loop");
        assert_eq!(g.op_node_count(), 5);
        let names = |k: usize| -> Vec<&str> { g.own_nodes(k).map(|n| n.name.as_str()).collect() };
        assert_eq!(g.subgraphs.len(), 2);
        assert_eq!(g.subgraphs[0].name, "loop_body");
        assert_eq!(names(0), ["i", "c", "v", "if", "add", "c_out", "v_out"]);
        assert_eq!(g.subgraphs[1].parent, Some(0));
        assert_eq!(g.subgraphs[1].owner, id(&g, "if"));
        assert_eq!(names(1), ["neg", "out"]);
        // The owners' attributes index the flat list.
        let attr = |n: &str| g.nodes[id(&g, n) as usize].attributes[0].1.clone();
        assert!(matches!(attr("loop"), AttrValue::Graph(0)));
        assert!(matches!(attr("if"), AttrValue::Graph(1)));
        // Loop inputs feed the body's inputs, last to last.
        assert!(edge(&g, "M", "i") && edge(&g, "cond", "c") && edge(&g, "x", "v"));
        // `w`, read by name two levels down and one level down, comes from its generator.
        assert!(edge(&g, "w_gen", "add") && edge(&g, "w_gen", "neg"));
        let w = g.values.iter().position(|v| v.name == "w").unwrap() as ValueId;
        assert_eq!(g.nodes[id(&g, "neg") as usize].inputs[0], Some(w));
        assert_eq!(g.subgraphs[0].captures, ["w"]);
        assert_eq!(g.subgraphs[1].captures, ["w"]);
        // Outputs flow into the owners.
        assert!(edge(&g, "c_out", "loop") && edge(&g, "v_out", "loop"));
        assert!(edge(&g, "out", "if") && edge(&g, "if", "add"));
        assert!(edge(&g, "loop", "y"));
        // The node scopes.
        let scopes = g.node_scopes();
        assert_eq!(scopes[id(&g, "loop") as usize], None);
        assert_eq!(scopes[id(&g, "add") as usize], Some(0));
        assert_eq!(scopes[id(&g, "neg") as usize], Some(1));
        // Every edge carries a value its consumer reads, or is a body's input or output.
        for e in &g.edges {
            let to = &g.nodes[e.to as usize];
            let from = &g.nodes[e.from as usize];
            assert!(
                to.inputs.contains(&Some(e.value))
                    || from.kind == NodeKind::Output
                    || (to.kind == NodeKind::Input && from.outputs.contains(&e.value)),
                "{} → {}",
                from.name,
                to.name
            );
        }
    }

    #[test]
    fn without_binding_by_name_a_body_keeps_its_own_values() {
        let mut g = looped();
        g.inline_bodies(false);
        assert!(!edge(&g, "w_gen", "add"));
        assert!(g.subgraphs.iter().all(|s| s.captures.is_empty()));
        assert!(edge(&g, "x", "v") && edge(&g, "v_out", "loop"));
    }
}
