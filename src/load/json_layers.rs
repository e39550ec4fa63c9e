//! The JSON layer-list format: `{"inputs": [{"name","type","shape"}], "layers": [{"type","name",
//! "config", "inputs"?}], "outputs": [...]}`. Layers form a chain in file order unless a layer names
//! its `inputs` (layer or input names).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value as Json;

use super::LoadError;
use crate::model::{AttrValue, DType, Dim, Format, Model, Node, NodeKind, Value};

fn shape_of(v: &Json) -> Option<Vec<Dim>> {
    v.get("shape")?.as_array().map(|dims| {
        dims.iter()
            .map(|d| match d {
                Json::Number(n) => n.as_i64().map_or(Dim::Unknown, Dim::Fixed),
                Json::String(s) => Dim::Symbol(s.clone()),
                _ => Dim::Unknown,
            })
            .collect()
    })
}

fn dtype_of(v: &Json) -> Option<DType> {
    match v.get("dtype").or_else(|| v.get("type"))?.as_str()? {
        "float32" | "float" | "FLOAT" => Some(DType::F32),
        "float16" => Some(DType::F16),
        "int64" => Some(DType::I64),
        "int32" => Some(DType::I32),
        "uint8" => Some(DType::U8),
        _ => None,
    }
}

pub(super) fn load(path: &Path, json: &Json) -> Result<Model, LoadError> {
    let layers = json
        .get("layers")
        .and_then(Json::as_array)
        .ok_or_else(|| LoadError::UnknownFormat {
            path: path.to_path_buf(),
            why: "a JSON file with neither \"layers\" (a layer list) nor \"weight_map\" (a safetensors index)".into(),
        })?;
    let mut model = Model::new(path, Format::JsonLayers);
    model.metadata.shards = 1;
    if let Some(name) = json.get("name").and_then(Json::as_str) {
        model
            .metadata
            .properties
            .push(("name".into(), name.to_string()));
    }
    let g = &mut model.graph;
    let mut by_name: HashMap<String, u32> = HashMap::new();
    let list = |key: &str| {
        json.get(key)
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut last: Option<u32> = None;
    for (i, inp) in list("inputs").iter().enumerate() {
        let name = inp
            .get("name")
            .and_then(Json::as_str)
            .map_or_else(|| format!("input_{i}"), String::from);
        let v = g.add_value(Value {
            name: name.clone(),
            dtype: dtype_of(inp),
            shape: shape_of(inp),
        });
        g.inputs.push(v);
        let mut node = Node::new(name.clone(), "Input", NodeKind::Input);
        node.outputs.push(v);
        let id = g.add_node(node);
        by_name.insert(name, id);
        last = Some(id);
    }
    for (i, layer) in layers.iter().enumerate() {
        let op = layer
            .get("type")
            .or_else(|| layer.get("class_name"))
            .and_then(Json::as_str)
            .unwrap_or("Layer");
        let name = layer
            .get("name")
            .and_then(Json::as_str)
            .map_or_else(|| format!("{op}_{i}"), String::from);
        let mut node = Node::new(name.clone(), op, NodeKind::Op);
        let out = g.add_value(Value {
            name: name.clone(),
            dtype: dtype_of(layer),
            shape: shape_of(layer),
        });
        node.outputs.push(out);
        let named_inputs: Vec<String> = layer
            .get("inputs")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if named_inputs.is_empty() {
            if let Some(prev) = last
                .and_then(|l| g.nodes.get(l as usize))
                .and_then(|n| n.outputs.first().copied())
            {
                node.inputs.push(Some(prev));
            }
        } else {
            for n in named_inputs {
                let Some(&src) = by_name.get(&n) else {
                    return Err(LoadError::corrupt(
                        path,
                        format!("layer {name:?} names an unknown input {n:?}"),
                    ));
                };
                node.inputs.push(
                    g.nodes
                        .get(src as usize)
                        .and_then(|s| s.outputs.first().copied()),
                );
            }
        }
        if let Some(cfg) = layer.get("config").and_then(Json::as_object) {
            for (k, v) in cfg {
                let val = match v {
                    Json::Number(n) if n.is_i64() => AttrValue::Int(n.as_i64().unwrap_or_default()),
                    Json::Number(n) => AttrValue::Float(n.as_f64().unwrap_or_default() as f32),
                    Json::String(s) => AttrValue::String(s.clone()),
                    Json::Array(a) if a.iter().all(Json::is_i64) => {
                        AttrValue::Ints(a.iter().filter_map(Json::as_i64).collect())
                    }
                    other => AttrValue::Other(other.to_string()),
                };
                node.attributes.push((k.clone(), val));
            }
        }
        let id = g.add_node(node);
        by_name.insert(name, id);
        last = Some(id);
    }
    for (i, outp) in list("outputs").iter().enumerate() {
        let name = outp
            .get("name")
            .and_then(Json::as_str)
            .map_or_else(|| format!("output_{i}"), String::from);
        let v = g.add_value(Value {
            name: name.clone(),
            dtype: dtype_of(outp),
            shape: shape_of(outp),
        });
        g.outputs.push(v);
        let mut node = Node::new(name, "Output", NodeKind::Output);
        let src = outp
            .get("from")
            .and_then(Json::as_str)
            .and_then(|f| by_name.get(f).copied())
            .or(last);
        if let Some(prev) = src
            .and_then(|l| g.nodes.get(l as usize))
            .and_then(|n| n.outputs.first().copied())
        {
            node.inputs.push(Some(prev));
        }
        g.add_node(node);
    }
    model.graph.connect_by_values();
    let groups = vec![0; model.graph.nodes.len()];
    model.hierarchy.finish(&groups, |_| 0);
    Ok(model)
}
