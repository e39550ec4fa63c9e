//! Per-node values from a file, to colour the graph by: Model Explorer's node data JSON (what its
//! node data providers and `model_explorer.node_data_builder` write), so a profiler's latencies, a
//! quantizer's per-op error or any figure computed outside modelmap can be laid over the
//! structure view (`modelmap FILE --node-data data.json`, `render --node-data`, File → Colour by
//! node data…).
//!
//! How it works: the file is a `GraphNodeData` (`{"results": {KEY: {"value": 1.5}, …}}`) or a
//! `ModelNodeData` (`{GRAPH_ID: GraphNodeData, …}`, whose graphs' results are read together,
//! since modelmap draws one graph with its subgraphs inside). A key names a node as Model Explorer
//! does: by one of its output tensors' names, or by the node's own name (its id); modelmap also
//! takes a weight's name for the node that owns it, so a checkpoint's tensors can be coloured. A
//! node named by several keys keeps the largest value. Values map linearly from the smallest to
//! the largest onto the overlay's blue → red scale. Non-numeric values (Model Explorer's label
//! data) and the file's own colours (`gradient`, `thresholds`, `bgColor`) are not used; the
//! numbers of each are counted in [`NodeData::notes`].
//!
//! Rejected: a format of modelmap's own (Model Explorer's is what node data providers and
//! profilers' exporters already write); a log scale (Model Explorer's gradient is linear, and a
//! file made for it should read the same here).

use std::collections::HashMap;

use crate::model::{Model, NodeId};

/// Values per node, read from a node data file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeData {
    /// Per node of the model, its value (`None`: the file has none for it).
    pub values: Vec<Option<f64>>,
    /// Keys of the file that matched a node.
    pub matched: usize,
    /// Keys that matched nothing (the first few are in `notes`).
    pub unmatched: usize,
    /// What was read but not used, and the first keys that matched nothing.
    pub notes: Vec<String>,
    /// Smallest and largest finite value (`(inf, -inf)` when there is none).
    pub range: (f64, f64),
    /// Nodes with a finite value.
    pub with_values: usize,
}

impl NodeData {
    /// The values on the overlay's 0..=1 scale (NaN where a node has none).
    pub fn overlay(&self) -> Vec<f32> {
        let finite = || {
            self.values
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
        };
        let lo = finite().fold(f64::INFINITY, f64::min);
        let hi = finite().fold(f64::NEG_INFINITY, f64::max);
        self.values
            .iter()
            .map(|v| match v {
                Some(v) if v.is_finite() => {
                    if hi > lo {
                        ((v - lo) / (hi - lo)) as f32
                    } else {
                        1.0
                    }
                }
                _ => f32::NAN,
            })
            .collect()
    }
}

/// Keys that matched nothing listed in the notes.
const LISTED_UNMATCHED: usize = 5;

/// Reads node data (`text`, from `file`) for `m`'s nodes.
pub fn parse(text: &str, file: &str, m: &Model) -> Result<NodeData, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{file}: not JSON: {e}"))?;
    let obj = json
        .as_object()
        .ok_or_else(|| format!("{file}: not a JSON object of node data"))?;
    // A GraphNodeData has `results`; a ModelNodeData maps graph ids to GraphNodeData.
    let graphs: Vec<&serde_json::Map<String, serde_json::Value>> = if obj.contains_key("results") {
        vec![obj]
    } else {
        obj.values()
            .filter_map(|g| g.as_object())
            .filter(|g| g.contains_key("results"))
            .collect()
    };
    if graphs.is_empty() {
        return Err(format!(
            "{file}: no \"results\": not Model Explorer node data (a GraphNodeData \
             {{\"results\": {{KEY: {{\"value\": …}}}}}} or an object of them by graph id)"
        ));
    }
    let mut by_key: HashMap<&str, Vec<NodeId>> = HashMap::new();
    for (i, n) in m.graph.nodes.iter().enumerate() {
        let id = i as NodeId;
        by_key.entry(n.name.as_str()).or_default().push(id);
        for &v in &n.outputs {
            if let Some(value) = m.graph.values.get(v as usize) {
                by_key.entry(value.name.as_str()).or_default().push(id);
            }
        }
        for &t in &n.tensors {
            if let Some(t) = m.tensors.get(t as usize) {
                by_key.entry(t.name.as_str()).or_default().push(id);
            }
        }
    }
    let mut out = NodeData {
        values: vec![None; m.graph.nodes.len()],
        ..Default::default()
    };
    let (mut not_numbers, mut own_colours) = (0usize, 0usize);
    let mut unmatched_names = Vec::new();
    for g in &graphs {
        if g.get("gradient")
            .or_else(|| g.get("thresholds"))
            .is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            own_colours += 1;
        }
        let Some(results) = g.get("results").and_then(|r| r.as_object()) else {
            return Err(format!("{file}: \"results\" is not an object"));
        };
        for (key, r) in results {
            let Some(v) = r.get("value").and_then(serde_json::Value::as_f64) else {
                not_numbers += 1;
                continue;
            };
            match by_key.get(key.as_str()) {
                Some(nodes) => {
                    out.matched += 1;
                    for &n in nodes {
                        let slot = &mut out.values[n as usize];
                        *slot = Some(slot.map_or(v, |o: f64| o.max(v)));
                    }
                }
                None => {
                    out.unmatched += 1;
                    if unmatched_names.len() < LISTED_UNMATCHED {
                        unmatched_names.push(key.clone());
                    }
                }
            }
        }
    }
    if out.unmatched > 0 {
        out.notes.push(format!(
            "{} keys name no node, output or weight of the model: {}{}",
            out.unmatched,
            unmatched_names.join(", "),
            if out.unmatched > unmatched_names.len() {
                ", …"
            } else {
                ""
            }
        ));
    }
    if not_numbers > 0 {
        out.notes.push(format!(
            "{not_numbers} results without a numeric value (label data) are not shown"
        ));
    }
    if own_colours > 0 {
        out.notes.push(
            "the file's gradient / thresholds are not used: values run blue (least) to red (most)"
                .into(),
        );
    }
    let finite = || {
        out.values
            .iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
    };
    out.range = (
        finite().fold(f64::INFINITY, f64::min),
        finite().fold(f64::NEG_INFINITY, f64::max),
    );
    out.with_values = finite().count();
    if out.matched == 0 {
        return Err(format!(
            "{file}: none of its {} keys names a node, an output or a weight of {}",
            out.unmatched,
            m.source.display()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Format, Node, NodeKind, Value};

    fn model() -> Model {
        let mut m = Model::new("m.onnx", Format::Onnx);
        for (name, out) in [("conv", "conv_out"), ("relu", "relu_out"), ("fc", "logits")] {
            let v = m.graph.add_value(Value {
                name: out.into(),
                dtype: None,
                shape: None,
            });
            let mut n = Node::new(name, "Op", NodeKind::Op);
            n.outputs.push(v);
            m.graph.add_node(n);
        }
        m
    }

    #[test]
    fn results_name_nodes_by_output_or_id() {
        let m = model();
        let text = r#"{"main": {"results": {
            "conv_out": {"value": 2.0}, "fc": {"value": 4}, "gone": {"value": 1},
            "relu_out": {"value": "slow"}}, "gradient": [{"stop": 0, "bgColor": "green"}]}}"#;
        let d = parse(text, "d.json", &m).unwrap();
        assert_eq!(d.values, [Some(2.0), None, Some(4.0)]);
        assert_eq!((d.matched, d.unmatched), (2, 1));
        let o = d.overlay();
        assert_eq!((o[0], o[2]), (0.0, 1.0));
        assert!(o[1].is_nan());
        assert_eq!(d.notes.len(), 3, "{:?}", d.notes);
        assert!(d.notes[0].contains("gone"));
        // A bare GraphNodeData reads the same.
        let bare = parse(r#"{"results": {"relu": {"value": 1}}}"#, "d.json", &m).unwrap();
        assert_eq!(bare.values, [None, Some(1.0), None]);
        // Nothing that matches, or not node data at all: errors naming the file.
        let e = parse(r#"{"results": {"x": {"value": 1}}}"#, "d.json", &m).unwrap_err();
        assert!(
            e.contains("d.json") && e.contains("none of its 1 keys"),
            "{e}"
        );
        let e = parse("[1, 2]", "d.json", &m).unwrap_err();
        assert!(e.contains("d.json"), "{e}");
        let e = parse(r#"{"a": 1}"#, "d.json", &m).unwrap_err();
        assert!(e.contains("no \"results\""), "{e}");
    }
}
