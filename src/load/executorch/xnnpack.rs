//! The graph inside an XNNPACK delegate's blob, as ExecuTorch's XNNPACK backend serializes it:
//! an `XH00` header (where the flatbuffer and the constant data lie in the blob), then an
//! `XNNGraph` flatbuffer (`XN01`): its values (tensors with a datatype, dims, a constant index and
//! quantization) and its nodes (a union of 47 node tables, read through [`super::xnnpack_schema`]:
//! every `…_id` field is a value the node reads, `output…_id` ones values it writes, the other
//! fields attributes). Constants are weights: slices of the blob's constant data, or of the
//! program's named data where the backend stored them by key, owned by the first node reading
//! them and named after it (`FullyConnected_0.filter`); int8 ones per tensor or per channel read
//! as the reals they stand for.

use bytes::Bytes;

use super::super::flatbuf::{Fb, Table};
use super::xnnpack_schema::NODES;
use super::{Builder, Kind};
use crate::model::{
    AttrValue, ConvAxes, DType, Dim, Graph, Node, NodeKind, Quant, Tensor, TensorData,
    TensorOrigin, Value, ValueId,
};

/// `XNN_INVALID_VALUE_ID`: no value (a convolution without bias).
const INVALID: u32 = u32::MAX;

/// Scales, zero points and the channel axis of a quantized constant.
type Affine = (Vec<f64>, Vec<f64>, usize);

/// A value of the XNNPACK graph.
struct XValue {
    dtype: DType,
    dims: Vec<u32>,
    /// Index into `constant_data` (0: not a constant).
    constant: u32,
    /// Scales and zero points, and the channel axis, of a quantized constant.
    quant: Option<Affine>,
}

/// An `XNNDatatype`.
fn dtype_of(t: i16) -> DType {
    match t {
        1 | 13 => DType::F32,
        2 => DType::F16,
        3 | 6 | 9 | 11 => DType::I8,
        4 => DType::U8,
        5 | 7 | 12 => DType::I32,
        14 => DType::BF16,
        _ => DType::Unknown("XNNPACK datatype"),
    }
}

/// Reads the graph in `blob`, adding its constants to the model.
pub(super) fn graph(b: &mut Builder<'_, '_>, blob: &Bytes) -> Fb<Graph> {
    let u32_at = |at: usize| -> Fb<u32> {
        blob.get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| "the blob's header is cut short".to_string())
    };
    let (fb, constants) = if blob.get(4..8) == Some(b"XH00") {
        let (fo, fs, co) = (
            u32_at(10)? as usize,
            u32_at(14)? as usize,
            u32_at(18)? as usize,
        );
        let cs = blob
            .get(22..30)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or("the blob's header is cut short")?;
        let fb_end = fo
            .checked_add(fs)
            .filter(|&e| e <= blob.len())
            .ok_or("the blob's flatbuffer runs past its end")?;
        // Constant data cut short leaves the constants past the end errors.
        let c_end = (co as u64).saturating_add(cs).min(blob.len() as u64) as usize;
        (blob.slice(fo..fb_end), blob.slice(co.min(c_end)..c_end))
    } else {
        (blob.clone(), Bytes::new())
    };
    if !matches!(fb.get(4..8), Some([b'X', b'N', ..])) {
        return Err("the blob is not an XNNPACK graph (no XN01 identifier)".into());
    }
    let root = Table::root(&fb)?;
    let xvalues = root.tables(2)?;
    let constant_data = root.tables(8)?;

    let mut values: std::collections::HashMap<u32, XValue> = std::collections::HashMap::new();
    for v in &xvalues {
        let tag = v.u8(0)?;
        let Some(t) = v.table(1)? else { continue };
        let (tensor, quant) = match tag {
            1 => (t, None),
            2 => match t.table(0)? {
                Some(inner) => (inner, quant_of(&t)?),
                None => continue,
            },
            _ => continue,
        };
        let dtype = dtype_of(tensor.scalar::<2>(0)?.map_or(0, i16::from_le_bytes));
        let dims: Vec<u32> = tensor
            .vector(2, 4)?
            .map(|v| {
                v.bytes()
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let quant = quant.map(|(scales, zeros, axis)| (scales, zeros, axis.min(dims.len())));
        values.insert(
            tensor.u32(6)?,
            XValue {
                dtype,
                dims,
                constant: tensor.u32(3)?,
                quant,
            },
        );
    }

    let mut g = Graph {
        name: "xnnpack".into(),
        ..Graph::default()
    };
    let mut current: std::collections::HashMap<u32, ValueId> = std::collections::HashMap::new();
    let mut weights: std::collections::HashMap<u32, crate::model::TensorId> =
        std::collections::HashMap::new();
    let value = |g: &mut Graph, id: u32, name: String| -> ValueId {
        let (dtype, shape) = match values.get(&id) {
            Some(x) => (
                Some(x.dtype),
                Some(x.dims.iter().map(|&d| Dim::Fixed(i64::from(d))).collect()),
            ),
            None => (None, None),
        };
        g.add_value(Value { name, dtype, shape })
    };
    for (k, id) in u32s(&root, 4)?.into_iter().enumerate() {
        let v = value(&mut g, id, format!("xnnpack input {k}"));
        current.insert(id, v);
        g.inputs.push(v);
        let mut node = Node::new(format!("xnnpack_input_{k}"), "Input", NodeKind::Input);
        node.outputs.push(v);
        g.add_node(node);
    }
    let mut unknown = 0usize;
    for x in root.tables(1)? {
        let tag = x.u8(0)? as usize;
        let (Some(t), Some((op, fields))) =
            (x.table(1)?, tag.checked_sub(1).and_then(|i| NODES.get(i)))
        else {
            unknown += 1;
            continue;
        };
        let mut node = b.node(op, &format!("XNN{op}"));
        for f in *fields {
            let slot = f.slot as usize;
            let attr = match f.kind {
                Kind::U32 if f.name.ends_with("_id") => {
                    let id = t.u32(slot)?;
                    if id == INVALID {
                        continue;
                    }
                    if f.name.starts_with("output") {
                        let v = value(&mut g, id, format!("{}:{id}", node.name));
                        current.insert(id, v);
                        node.outputs.push(v);
                    } else if let Some(&v) = current.get(&id) {
                        node.inputs.push(Some(v));
                    } else if values.get(&id).is_some_and(|x| x.constant > 0) {
                        let arg = f.name.trim_end_matches("_id");
                        let tid = match weights.get(&id) {
                            Some(&tid) => tid,
                            None => {
                                let x = &values[&id];
                                let name = format!("{}.{arg}", node.name);
                                let data = constant(b, &constant_data, &constants, x)
                                    .map(TensorData::Bytes)
                                    .unwrap_or_else(|why| {
                                        TensorData::Error(format!(
                                            "{}: {name}: {why}",
                                            b.path.display()
                                        ))
                                    });
                                let shape: Vec<u64> =
                                    x.dims.iter().map(|&d| u64::from(d)).collect();
                                let quant = x
                                    .quant
                                    .clone()
                                    .filter(|_| !x.dtype.is_float())
                                    .and_then(|(s, z, a)| Quant::new(s, z, a, &shape));
                                // XNNPACK's filters are channels-last, as TFLite's.
                                let conv_axes = match (*op, arg, shape.len()) {
                                    ("Conv2d" | "ConvTranspose2d", "filter", 4) => {
                                        Some(ConvAxes::OHWI)
                                    }
                                    ("DepthwiseConv2d", "filter", 4) => Some(ConvAxes::IHWO),
                                    _ => None,
                                };
                                let tid = b.model.add_tensor(Tensor {
                                    name,
                                    dtype: x.dtype,
                                    shape,
                                    data,
                                    origin: TensorOrigin::Initializer,
                                    conv_axes,
                                    quant,
                                });
                                node.tensors.push(tid);
                                weights.insert(id, tid);
                                tid
                            }
                        };
                        let v = g.add_value(Value::of_tensor(&b.model.tensors[tid as usize]));
                        node.inputs.push(Some(v));
                    } else {
                        let v = value(&mut g, id, format!("v{id}"));
                        current.insert(id, v);
                        node.inputs.push(Some(v));
                    }
                    continue;
                }
                Kind::U32 => AttrValue::Int(i64::from(t.u32(slot)?)),
                Kind::I32 => AttrValue::Int(i64::from(t.i32(slot, 0)?)),
                Kind::F32 => AttrValue::Float(t.scalar::<4>(slot)?.map_or(0.0, f32::from_le_bytes)),
                Kind::Bool => AttrValue::Int(i64::from(t.u8(slot)?)),
                Kind::VecU32 => {
                    AttrValue::Ints(u32s(&t, slot)?.into_iter().map(i64::from).collect())
                }
                Kind::Other => continue,
            };
            node.attributes.push((f.name.to_string(), attr));
        }
        // A clamp fused into the node (`output_min_max`).
        if let Some(mm) = x.table(3)? {
            for (k, name) in ["output_min", "output_max"].into_iter().enumerate() {
                if let Some(v) = mm.scalar::<4>(k)? {
                    node.attributes
                        .push((name.into(), AttrValue::Float(f32::from_le_bytes(v))));
                }
            }
        }
        g.add_node(node);
    }
    if unknown > 0 {
        b.model.metadata.warnings.push(format!(
            "{}: {unknown} XNNPACK nodes of kinds this reader does not know are not drawn",
            b.path.display()
        ));
    }
    for (k, id) in u32s(&root, 5)?.into_iter().enumerate() {
        let v = match current.get(&id) {
            Some(&v) => v,
            None => value(&mut g, id, format!("xnnpack output {k}")),
        };
        g.outputs.push(v);
        let mut node = Node::new(format!("xnnpack_output_{k}"), "Output", NodeKind::Output);
        node.inputs.push(Some(v));
        g.add_node(node);
    }
    g.connect_by_values();
    Ok(g)
}

/// A vector of `u32` at `slot` of `t`.
fn u32s(t: &Table<'_>, slot: usize) -> Fb<Vec<u32>> {
    Ok(t.vector(slot, 4)?
        .map(|v| {
            v.bytes()
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default())
}

/// The scales, zero points and channel axis of an `XNNQuantizedTensorValue`: per tensor, or per
/// channel (the others, per group or dynamic, are not read).
fn quant_of(t: &Table<'_>) -> Fb<Option<Affine>> {
    let Some(q) = t.table(2)? else {
        return Ok(None);
    };
    Ok(match t.u8(1)? {
        // PerChannelQuant: scale, channel_dim.
        1 => {
            let scales: Vec<f64> = q
                .vector(0, 4)?
                .map(|v| {
                    v.bytes()
                        .chunks_exact(4)
                        .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap_or_default())))
                        .collect()
                })
                .unwrap_or_default();
            let axis = usize::try_from(q.i32(1, 0)?).unwrap_or(0);
            let zeros = vec![0.0; scales.len()];
            Some((scales, zeros, axis))
        }
        // PerTensorQuant: scale, zero_point.
        2 => {
            let scale = f64::from(q.scalar::<4>(0)?.map_or(0.0, f32::from_le_bytes));
            Some((vec![scale], vec![f64::from(q.i32(1, 0)?)], 0))
        }
        _ => None,
    })
}

/// The bytes of constant `x`: `constant_data[x.constant]` in the blob's constant data, or the
/// program's named data its key names.
fn constant(
    b: &Builder<'_, '_>,
    offsets: &[Table<'_>],
    data: &Bytes,
    x: &XValue,
) -> Result<Bytes, String> {
    let c = offsets
        .get(x.constant as usize)
        .ok_or_else(|| format!("constant {} does not exist", x.constant))?;
    let (offset, size) = (c.u64(0)?, c.u64(1)?);
    let want = x
        .dtype
        .size_bytes()
        .and_then(|es| {
            x.dims
                .iter()
                .try_fold(es, |a, &d| a.checked_mul(u64::from(d)))
        })
        .ok_or("a constant of a type this reader cannot size")?;
    let source = match c.str(2)? {
        Some(key) if !key.is_empty() => b
            .blobs
            .named(b.data, &key)
            .ok_or_else(|| format!("named data {key:?} is not in the program"))?,
        _ => {
            let start = usize::try_from(offset).map_err(|_| "its offset overflows")?;
            let end = start
                .checked_add(usize::try_from(size).map_err(|_| "its size overflows")?)
                .filter(|&e| e <= data.len())
                .ok_or_else(|| {
                    format!("its {size} bytes at {offset} run past the blob's constant data")
                })?;
            data.slice(start..end)
        }
    };
    if (source.len() as u64) < want {
        return Err(format!(
            "{} bytes stored for the {want} its type and shape take",
            source.len()
        ));
    }
    Ok(source.slice(..want as usize))
}
