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
//! node named by several keys keeps the largest value (and that value's colour).
//!
//! Colours: without colours of its own, a file's values map linearly from the smallest to the
//! largest onto the overlay's blue → red scale. A file that chooses them is drawn as Model Explorer
//! draws it (its web app's `processNodeDataProviderDataForGraph` and `getBgColor`), per graph:
//! a result's own `bgColor` (any CSS colour) first; else the `gradient`, its stops sorted, 0 at the
//! graph's smallest numeric value and 1 at its largest, each channel interpolated linearly between
//! the two stops around the value and rounded down; else the first of the `thresholds`, in the
//! file's order, whose `value` is at least the node's. A node with a value that no band colours
//! (past the last threshold, or `transparent`) is drawn in a neutral fill, as Model Explorer leaves
//! it white. Non-numeric values (Model Explorer's label data) and `textColor` (labels here are
//! dark or light for contrast with their fill) are not used; each is counted in
//! [`NodeData::notes`].
//!
//! Rejected: a format of modelmap's own (Model Explorer's is what node data providers and
//! profilers' exporters already write); a log scale (Model Explorer's gradient is linear, and a
//! file made for it should read the same here).

use std::collections::HashMap;

use crate::lod::{NodeOverlay, Rgba8};
use crate::model::{Model, NodeId};
use serde_json::{Map, Value};

/// Values per node, read from a node data file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeData {
    /// Per node of the model, its value (`None`: the file has none for it).
    pub values: Vec<Option<f64>>,
    /// Per node, the colour the file chose for it (`None`: outside every band it coloured); `None`
    /// as a whole when the file chooses no colours.
    pub fills: Option<Vec<Option<Rgba8>>>,
    /// The colours the file chose, for a legend (of the first graph that has any).
    pub legend: Option<Legend>,
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

/// A node data file's own colours.
#[derive(Clone, Debug, PartialEq)]
pub enum Legend {
    /// A gradient: each stop's value (between the graph's smallest and largest) and colour
    /// (`None`: the stop has none, so values beside it are not coloured).
    Gradient(Vec<(f64, Option<Rgba8>)>),
    /// Thresholds, in the file's order: an upper bound and the colour of values up to it.
    Thresholds(Vec<(f64, Option<Rgba8>)>),
}

impl NodeData {
    /// What colours the graph: the values on the overlay's 0..=1 scale (NaN where a node has
    /// none), and the file's colours where it chose them.
    pub fn overlay(&self) -> NodeOverlay {
        NodeOverlay {
            values: self.scale(),
            fills: self.fills.clone().unwrap_or_default(),
        }
    }

    /// The values on the overlay's 0..=1 scale (NaN where a node has none).
    fn scale(&self) -> Vec<f32> {
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
    let json: Value = serde_json::from_str(text).map_err(|e| format!("{file}: not JSON: {e}"))?;
    let obj = json
        .as_object()
        .ok_or_else(|| format!("{file}: not a JSON object of node data"))?;
    // A GraphNodeData has `results`; a ModelNodeData maps graph ids to GraphNodeData.
    let graphs: Vec<&Map<String, Value>> = if obj.contains_key("results") {
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
    let mut fills: Vec<Option<Rgba8>> = vec![None; m.graph.nodes.len()];
    let (mut not_numbers, mut text_colours, mut chose_colours) = (0usize, 0usize, false);
    let mut bad_colours: Vec<String> = Vec::new();
    let mut unmatched_names = Vec::new();
    for g in &graphs {
        let Some(results) = g.get("results").and_then(|r| r.as_object()) else {
            return Err(format!("{file}: \"results\" is not an object"));
        };
        let colours = GraphColours::read(g, results, &mut bad_colours);
        chose_colours |= colours.any;
        if out.legend.is_none() {
            out.legend = colours.legend();
        }
        for (key, r) in results {
            if r.get("textColor").is_some() {
                text_colours += 1;
            }
            let Some(v) = r.get("value").and_then(Value::as_f64) else {
                not_numbers += 1;
                continue;
            };
            match by_key.get(key.as_str()) {
                Some(nodes) => {
                    out.matched += 1;
                    let fill = colours.of(v, r, &mut bad_colours);
                    for &n in nodes {
                        let slot = &mut out.values[n as usize];
                        if slot.is_none_or(|o| v > o) {
                            *slot = Some(v);
                            fills[n as usize] = fill;
                        }
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
        if colours
            .thresholds
            .iter()
            .chain(colours.gradient.iter())
            .any(|x| x.2)
        {
            text_colours += 1;
        }
    }
    if chose_colours {
        out.fills = Some(fills);
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
    if !bad_colours.is_empty() {
        bad_colours.sort();
        bad_colours.dedup();
        out.notes.push(format!(
            "colours that are not CSS colours are drawn as Model Explorer draws them (white in a \
             gradient, no colour elsewhere): {}",
            bad_colours.join(", ")
        ));
    }
    if text_colours > 0 {
        out.notes.push(
            "textColor is not used: labels are dark or light for contrast with their fill".into(),
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

/// One graph's colours: its gradient (sorted by stop) and thresholds, each item's value, colour,
/// and whether it sets a text colour.
struct GraphColours {
    gradient: Vec<(f64, Option<Rgba8>, bool)>,
    thresholds: Vec<(f64, Option<Rgba8>, bool)>,
    /// The smallest and largest numeric value among the graph's results (the gradient's 0 and 1).
    range: (f64, f64),
    /// Whether the graph colours anything (a gradient, thresholds or a result's `bgColor`).
    any: bool,
}

impl GraphColours {
    fn read(
        g: &Map<String, Value>,
        results: &Map<String, Value>,
        bad: &mut Vec<String>,
    ) -> GraphColours {
        let items = |key: &str, number: &str, gradient: bool, bad: &mut Vec<String>| {
            let mut v: Vec<(f64, Option<Rgba8>, bool)> = g
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|item| {
                    let at = item.get(number)?.as_f64()?;
                    let colour = item.get("bgColor").and_then(Value::as_str).map(|c| {
                        // Model Explorer reads a gradient's colours itself, an unknown one as
                        // white; other colours go to the browser, which ignores an unknown one.
                        css_colour(c).unwrap_or_else(|| {
                            bad.push(format!("\"{c}\""));
                            gradient.then_some([255, 255, 255, 255])
                        })
                    });
                    Some((at, colour.flatten(), item.get("textColor").is_some()))
                })
                .collect();
            if gradient {
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            v
        };
        let gradient = items("gradient", "stop", true, bad);
        let thresholds = items("thresholds", "value", false, bad);
        let numbers = || results.values().filter_map(|r| r.get("value")?.as_f64());
        let range = (
            numbers().fold(f64::INFINITY, f64::min),
            numbers().fold(f64::NEG_INFINITY, f64::max),
        );
        let any = !gradient.is_empty()
            || !thresholds.is_empty()
            || results.values().any(|r| r.get("bgColor").is_some());
        GraphColours {
            gradient,
            thresholds,
            range,
            any,
        }
    }

    /// The colour of a result `r` whose value is `v`.
    fn of(&self, v: f64, r: &Value, bad: &mut Vec<String>) -> Option<Rgba8> {
        if let Some(c) = r.get("bgColor").and_then(Value::as_str) {
            let colour = css_colour(c);
            if colour.is_none() {
                bad.push(format!("\"{c}\""));
            }
            return colour.flatten();
        }
        if !self.gradient.is_empty() {
            let (lo, hi) = self.range;
            let t = (v - lo) / (hi - lo);
            for w in self.gradient.windows(2) {
                let [(a, ca, _), (b, cb, _)] = [w[0], w[1]];
                if t >= a && t <= b {
                    let (ca, cb) = (ca?, cb?);
                    let f = if b > a { (t - a) / (b - a) } else { 0.0 };
                    let mix = |i: usize| {
                        (ca[i] as f64 + (cb[i] as f64 - ca[i] as f64) * f)
                            .floor()
                            .clamp(0.0, 255.0) as u8
                    };
                    return Some([mix(0), mix(1), mix(2), 255]);
                }
            }
            return None;
        }
        self.thresholds.iter().find(|x| v <= x.0).and_then(|x| x.1)
    }

    fn legend(&self) -> Option<Legend> {
        let (lo, hi) = self.range;
        if !self.gradient.is_empty() {
            return Some(Legend::Gradient(
                self.gradient
                    .iter()
                    .map(|&(s, c, _)| (lo + s * (hi - lo), c))
                    .collect(),
            ));
        }
        (!self.thresholds.is_empty())
            .then(|| Legend::Thresholds(self.thresholds.iter().map(|&(v, c, _)| (v, c)).collect()))
    }
}

/// A CSS colour, opaque; `Some(None)` for `transparent`, `None` for what is not a colour.
fn css_colour(text: &str) -> Option<Option<Rgba8>> {
    if text.trim().eq_ignore_ascii_case("transparent") {
        return Some(None);
    }
    let [r, g, b, _] = csscolorparser::parse(text).ok()?.to_rgba8();
    Some(Some([r, g, b, 255]))
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
        let o = d.overlay().values;
        assert_eq!((o[0], o[2]), (0.0, 1.0));
        assert!(o[1].is_nan());
        assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
        assert!(d.notes[0].contains("gone"));
        // A gradient of one stop colours nothing: every value lies outside its (empty) bands.
        assert_eq!(d.fills, Some(vec![None, None, None]));
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

    #[test]
    fn a_gradient_interpolates_between_the_stops_around_a_value() {
        let m = model();
        // Stops out of order, one by name; 0 at the smallest value (1), 1 at the largest (5).
        let text = r##"{"results": {"conv": {"value": 1}, "relu": {"value": 2},
            "fc": {"value": 5}}, "gradient": [{"stop": 1, "bgColor": "#ff0000"},
            {"stop": 0, "bgColor": "#0000ff"}, {"stop": 0.5, "bgColor": "white"}]}"##;
        let d = parse(text, "d.json", &m).unwrap();
        // relu: t = 0.25, halfway from blue to white; each channel rounded down.
        let fills = d.fills.clone().unwrap();
        assert_eq!(
            fills,
            [
                Some([0, 0, 255, 255]),
                Some([127, 127, 255, 255]),
                Some([255, 0, 0, 255])
            ]
        );
        assert_eq!(
            d.legend,
            Some(Legend::Gradient(vec![
                (1.0, Some([0, 0, 255, 255])),
                (3.0, Some([255, 255, 255, 255])),
                (5.0, Some([255, 0, 0, 255]))
            ]))
        );
        let o = d.overlay();
        assert_eq!(o.fill(1), Some([127, 127, 255, 255]));
        // A gradient whose stops do not reach a value leaves it uncoloured.
        let text = r#"{"results": {"conv": {"value": 1}, "fc": {"value": 5}},
            "gradient": [{"stop": 0.5, "bgColor": "red"}, {"stop": 1, "bgColor": "red"}]}"#;
        let d = parse(text, "d.json", &m).unwrap();
        assert_eq!(d.fills, Some(vec![None, None, Some([255, 0, 0, 255])]));
        assert_eq!(d.overlay().fill(0), Some(crate::lod::NO_BAND));
        assert_eq!(d.overlay().fill(1), None, "no value: the op colour");
    }

    #[test]
    fn thresholds_take_the_first_band_in_file_order_and_own_colours_win() {
        let m = model();
        let text = r#"{"g": {"results": {"conv": {"value": 10}, "relu": {"value": 60},
            "fc": {"value": 500}, "logits": {"value": 7, "bgColor": "rgb(1, 2, 3)",
            "textColor": "white"}}, "thresholds": [{"value": 50, "bgColor": "red"},
            {"value": 10, "bgColor": "green"}, {"value": 100, "bgColor": "nonsense"}]}}"#;
        let d = parse(text, "d.json", &m).unwrap();
        // conv (10) is ≤ 50 before it is ≤ 10; relu (60) falls in a band with an unknown colour;
        // fc holds 500 (logits names it too, with 7): the larger value and its band, none.
        assert_eq!(d.values, [Some(10.0), Some(60.0), Some(500.0)]);
        assert_eq!(d.fills, Some(vec![Some([255, 0, 0, 255]), None, None]));
        assert!(
            d.notes.iter().any(|n| n.contains("\"nonsense\"")),
            "{:?}",
            d.notes
        );
        assert!(
            d.notes.iter().any(|n| n.contains("textColor")),
            "{:?}",
            d.notes
        );
        assert!(matches!(&d.legend, Some(Legend::Thresholds(t)) if t.len() == 3));
        // A result's own colour wins over the bands.
        let text = r#"{"results": {"relu": {"value": 1, "bgColor": "rgb(1, 2, 3)"},
            "fc": {"value": 2, "bgColor": "transparent"}},
            "thresholds": [{"value": 100, "bgColor": "red"}]}"#;
        let d = parse(text, "d.json", &m).unwrap();
        assert_eq!(d.fills, Some(vec![None, Some([1, 2, 3, 255]), None]));
        // Without colours of its own, a file keeps the overlay's scale.
        let d = parse(r#"{"results": {"relu": {"value": 1}}}"#, "d.json", &m).unwrap();
        assert_eq!((&d.fills, &d.legend), (&None, &None));
        assert!(d.overlay().fills.is_empty());
    }
}
