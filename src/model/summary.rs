//! `modelmap info`: a summary of a model, as text (like Keras' `model.summary()`) or JSON.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::{Dim, Model, NodeKind, Tensor, TensorOrigin, Value, format_shape};

/// One graph input or output.
#[derive(Clone, Debug, Serialize)]
pub struct IoSummary {
    /// Value name.
    pub name: String,
    /// Element type in the format's own spelling (`FLOAT`, `INT64`), or null.
    pub dtype: Option<String>,
    /// Dimensions: numbers, symbolic names, or null for unknown; null when no shape is known.
    pub shape: Option<Vec<serde_json::Value>>,
}

/// One of the largest tensors.
#[derive(Clone, Debug, Serialize)]
pub struct TensorSummary {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Elements.
    pub elements: u64,
    /// Bytes, where the dtype has a size.
    pub bytes: Option<u64>,
}

/// A hierarchy group to depth 2.
#[derive(Clone, Debug, Serialize)]
pub struct GroupSummary {
    /// Full path.
    pub path: String,
    /// Nodes below.
    pub nodes: u64,
    /// Parameters below.
    pub parameters: u64,
    /// Child groups (only to depth 2).
    pub children: Vec<GroupSummary>,
}

/// Everything `info` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The file.
    pub file: String,
    /// Format name.
    pub format: &'static str,
    /// Producer.
    pub producer: Option<String>,
    /// Producer version.
    pub producer_version: Option<String>,
    /// IR / file version.
    pub ir_version: Option<i64>,
    /// Opset imports.
    pub opset: BTreeMap<String, i64>,
    /// Architecture.
    pub architecture: Option<String>,
    /// How the weights are quantized, as the checkpoint's config says (`gptq: bits 4, …`).
    pub quantization: Option<String>,
    /// Shards read.
    pub shards: usize,
    /// Op/module nodes in the top-level graph.
    pub nodes: usize,
    /// Op nodes including every subgraph.
    pub nodes_with_subgraphs: usize,
    /// Edges, subgraphs' included (with those into and out of them).
    pub edges: usize,
    /// Parameter elements (initializers; checkpoint tensors).
    pub parameters: u64,
    /// Elements held in `Constant` nodes.
    pub constant_parameters: u64,
    /// Parameter tensors (initializers; checkpoint tensors).
    pub tensors: usize,
    /// Tensors in `Constant` nodes.
    pub constant_tensors: usize,
    /// Elements of the tensors held in subgraphs (`If` branches' initializers and constants).
    pub subgraph_parameters: u64,
    /// Tensors held in subgraphs.
    pub subgraph_tensors: usize,
    /// Op type → count (top-level graph).
    pub op_types: BTreeMap<String, usize>,
    /// Graph inputs (not initializers).
    pub inputs: Vec<IoSummary>,
    /// Graph outputs.
    pub outputs: Vec<IoSummary>,
    /// Parameters by dtype.
    pub parameters_by_dtype: BTreeMap<String, u64>,
    /// Bytes by dtype.
    pub bytes_by_dtype: BTreeMap<String, u64>,
    /// The 10 largest tensors.
    pub largest_tensors: Vec<TensorSummary>,
    /// The hierarchy to depth 2.
    pub hierarchy: Vec<GroupSummary>,
    /// Number of metadata key/values (GGUF KVs, ONNX metadata_props, safetensors `__metadata__`).
    pub metadata_keys: usize,
    /// Metadata key/values (long values shortened).
    pub metadata: BTreeMap<String, String>,
    /// Problems found while loading that did not stop it.
    pub warnings: Vec<String>,
}

fn dim_json(d: &Dim) -> serde_json::Value {
    match d {
        Dim::Fixed(n) => json!(n),
        Dim::Symbol(s) => json!(s),
        Dim::Unknown => serde_json::Value::Null,
    }
}

fn io(model: &Model, v: &Value) -> IoSummary {
    let dtype = v.dtype.map(|d| match model.format {
        super::Format::Onnx => d.onnx_name().to_string(),
        _ => d.name().to_string(),
    });
    IoSummary {
        name: v.name.clone(),
        dtype,
        shape: v.shape.as_ref().map(|s| s.iter().map(dim_json).collect()),
    }
}

fn is_parameter(t: &Tensor) -> bool {
    matches!(
        t.origin,
        TensorOrigin::Initializer | TensorOrigin::Checkpoint
    )
}

impl Summary {
    /// Summarises a model.
    pub fn of(model: &Model) -> Summary {
        let g = &model.graph;
        let mut by_op: BTreeMap<&str, usize> = BTreeMap::new();
        for n in g
            .top_level_nodes()
            .filter(|n| matches!(n.kind, NodeKind::Op | NodeKind::Module))
        {
            *by_op.entry(&n.op).or_insert(0) += 1;
        }
        let op_types: BTreeMap<String, usize> =
            by_op.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut parameters_by_dtype = BTreeMap::new();
        let mut bytes_by_dtype = BTreeMap::new();
        for t in model.tensors.iter().filter(|t| is_parameter(t)) {
            // Saturating: a malformed file's tensor may claim up to u64::MAX elements.
            let n = parameters_by_dtype
                .entry(t.dtype.name().to_string())
                .or_insert(0u64);
            *n = n.saturating_add(t.elements());
            let b = bytes_by_dtype
                .entry(t.dtype.name().to_string())
                .or_insert(0u64);
            *b = b.saturating_add(t.expected_bytes().unwrap_or(0));
        }
        let mut largest: Vec<&Tensor> = model.tensors.iter().collect();
        largest.sort_by_key(|t| std::cmp::Reverse(t.elements()));
        let largest_tensors = largest
            .iter()
            .take(10)
            .map(|t| TensorSummary {
                name: t.name.clone(),
                dtype: t.dtype.name().to_string(),
                shape: t.shape.clone(),
                elements: t.elements(),
                bytes: t.expected_bytes(),
            })
            .collect();
        let h = &model.hierarchy;
        let group = |id: u32, children: Vec<GroupSummary>| {
            let grp = h.get(id);
            GroupSummary {
                path: grp.map_or_else(String::new, |g| g.path.clone()),
                nodes: grp.map_or(0, |g| g.node_count),
                parameters: grp.map_or(0, |g| g.param_count),
                children,
            }
        };
        let hierarchy = h
            .root()
            .children
            .iter()
            .map(|&c| {
                let kids = h.get(c).map_or(&[][..], |g| &g.children[..]);
                let kids = kids
                    .iter()
                    .take(64)
                    .map(|&k| group(k, Vec::new()))
                    .collect();
                group(c, kids)
            })
            .collect();
        let metadata = model
            .metadata
            .properties
            .iter()
            .map(|(k, v)| {
                let v = if v.chars().count() > 200 {
                    format!("{}…", v.chars().take(200).collect::<String>())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        Summary {
            file: model.source.display().to_string(),
            format: model.format.name(),
            producer: model.metadata.producer.clone(),
            producer_version: model.metadata.producer_version.clone(),
            ir_version: model.metadata.ir_version,
            opset: model.metadata.opsets.iter().cloned().collect(),
            architecture: model.metadata.architecture.clone(),
            quantization: model
                .metadata
                .properties
                .iter()
                .find(|(k, _)| k == "quantization")
                .map(|(_, v)| v.clone()),
            shards: model.metadata.shards,
            nodes: g.top_level_op_node_count(),
            nodes_with_subgraphs: g.op_node_count(),
            edges: g.edges.len(),
            parameters: model.parameter_count(),
            constant_parameters: model.constant_parameter_count(),
            subgraph_parameters: model.subgraph_tensor_count().0,
            subgraph_tensors: model.subgraph_tensor_count().1,
            tensors: model.tensors.iter().filter(|t| is_parameter(t)).count(),
            constant_tensors: model
                .tensors
                .iter()
                .filter(|t| t.origin == TensorOrigin::ConstantNode)
                .count(),
            op_types,
            inputs: g
                .inputs
                .iter()
                .filter_map(|&v| g.values.get(v as usize))
                .map(|v| io(model, v))
                .collect(),
            outputs: g
                .outputs
                .iter()
                .filter_map(|&v| g.values.get(v as usize))
                .map(|v| io(model, v))
                .collect(),
            parameters_by_dtype,
            bytes_by_dtype,
            largest_tensors,
            hierarchy,
            metadata_keys: model.metadata.properties.len(),
            metadata,
            warnings: model.metadata.warnings.clone(),
        }
    }

    /// The summary as readable text.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.file);
        let _ = writeln!(
            s,
            "  format      {}{}",
            self.format,
            if self.shards > 1 {
                format!(" ({} shards)", self.shards)
            } else {
                String::new()
            }
        );
        if let Some(p) = &self.producer {
            match self.producer_version.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => {
                    let _ = writeln!(s, "  producer    {p} {v}");
                }
                None => {
                    let _ = writeln!(s, "  producer    {p}");
                }
            }
        }
        if let Some(a) = &self.architecture {
            let _ = writeln!(s, "  arch        {a}");
        }
        if let Some(q) = &self.quantization {
            let _ = writeln!(s, "  quantized   {q}");
        }
        if !self.opset.is_empty() {
            let o: Vec<String> = self.opset.iter().map(|(d, v)| format!("{d} {v}")).collect();
            let _ = writeln!(s, "  opset       {}", o.join(", "));
        }
        let _ = writeln!(
            s,
            "  nodes       {} ({} with subgraphs), edges {}",
            self.nodes, self.nodes_with_subgraphs, self.edges
        );
        let _ = writeln!(
            s,
            "  parameters  {} in {} tensors ({})",
            group_digits(self.parameters),
            self.tensors,
            human_bytes(
                self.bytes_by_dtype
                    .values()
                    .fold(0u64, |a, &b| a.saturating_add(b)),
            )
        );
        if self.constant_parameters > 0 {
            let _ = writeln!(
                s,
                "  constants   {} in {} Constant nodes",
                group_digits(self.constant_parameters),
                self.constant_tensors
            );
        }
        if self.subgraph_tensors > 0 {
            let _ = writeln!(
                s,
                "  subgraphs   {} in {} tensors of If/Loop bodies",
                group_digits(self.subgraph_parameters),
                self.subgraph_tensors
            );
        }
        for (d, n) in &self.parameters_by_dtype {
            let _ = writeln!(
                s,
                "    {d:<8} {:>16} params {:>10}",
                group_digits(*n),
                human_bytes(*self.bytes_by_dtype.get(d).unwrap_or(&0))
            );
        }
        let show_io = |s: &mut String, title: &str, list: &[IoSummary]| {
            if list.is_empty() {
                return;
            }
            let _ = writeln!(s, "  {title}");
            for i in list {
                let shape = i.shape.as_ref().map_or("?".to_string(), |sh| {
                    let d: Vec<String> = sh
                        .iter()
                        .map(|x| {
                            if x.is_null() {
                                "?".into()
                            } else {
                                x.to_string().trim_matches('"').to_string()
                            }
                        })
                        .collect();
                    format!("[{}]", d.join(", "))
                });
                let _ = writeln!(
                    s,
                    "    {:<32} {:<8} {shape}",
                    i.name,
                    i.dtype.as_deref().unwrap_or("?")
                );
            }
        };
        show_io(&mut s, "inputs", &self.inputs);
        show_io(&mut s, "outputs", &self.outputs);
        if !self.op_types.is_empty() {
            let mut ops: Vec<_> = self.op_types.iter().collect();
            ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let _ = writeln!(s, "  op types");
            for (op, n) in ops.iter().take(30) {
                let _ = writeln!(s, "    {op:<28} {n:>8}");
            }
            if ops.len() > 30 {
                let _ = writeln!(s, "    … {} more", ops.len() - 30);
            }
        }
        if !self.largest_tensors.is_empty() {
            let _ = writeln!(s, "  largest tensors");
            for t in &self.largest_tensors {
                let _ = writeln!(
                    s,
                    "    {:<48} {:<6} {:<20} {:>14}",
                    t.name,
                    t.dtype,
                    format!("{:?}", t.shape),
                    group_digits(t.elements)
                );
            }
        }
        if !self.hierarchy.is_empty() {
            let _ = writeln!(s, "  hierarchy (nodes, parameters)");
            for g in self.hierarchy.iter().take(40) {
                let _ = writeln!(
                    s,
                    "    {:<46} {:>8} {:>16}",
                    g.path,
                    g.nodes,
                    group_digits(g.parameters)
                );
                for c in g.children.iter().take(12) {
                    let _ = writeln!(
                        s,
                        "      {:<44} {:>8} {:>16}",
                        c.path,
                        c.nodes,
                        group_digits(c.parameters)
                    );
                }
                if g.children.len() > 12 {
                    let _ = writeln!(s, "      … {} more", g.children.len() - 12);
                }
            }
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        s
    }
}

/// `1234567` → `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in KiB/MiB/GiB.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[allow(
    dead_code,
    reason = "used by the inspector once shapes are shown there"
)]
fn shape_text(v: &Value) -> String {
    v.shape.as_deref().map_or_else(|| "?".into(), format_shape)
}
