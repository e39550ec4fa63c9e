//! ExecuTorch programs (`.pte`: `to_edge(torch.export.export(…)).to_executorch()`, what
//! ExecuTorch runs on phones and microcontrollers): a flatbuffer (`program.fbs`, identifier
//! `ET12`) with an extended header (`eh00`: the flatbuffer's size and where the segments after it
//! start), read by the checked reader of [`super::flatbuf`].
//!
//! The first execution plan (`forward`) is drawn as its instructions run: a `KernelCall` is a node
//! of its operator (`aten::convolution.out` → `convolution`), a `DelegateCall` one node of its
//! backend (`XnnpackBackend`), its processed blob's size and compile specs as attributes. An
//! out-variant kernel's last argument is what it returns (the out tensor, or a `TensorList` of
//! them): those are its outputs, the other tensors its inputs, and its other arguments (ints,
//! lists, doubles) attributes named from the op's schema where known (`stride [1, 1]`). A view
//! removed by memory planning (`view_copy` becomes an alias) reads from the latest tensor written
//! where the view lies. Constant tensors (`data_buffer_idx` > 0) are weights, slices of the map
//! in the constant segment (or, in older files, the flatbuffer's `constant_buffer`), owned by the
//! first op that reads them and named after it (`convolution_0.weight`).

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

mod xnnpack;
mod xnnpack_schema;

use super::LoadError;
use super::flatbuf::{Fb, Table};
use crate::model::{
    AttrValue, DType, Dim, Format, Model, Node, NodeKind, OpNames, Tensor, TensorData, TensorId,
    TensorOrigin, Value, ValueId,
};

/// Whether the bytes at 4..8 are an ExecuTorch file identifier (`ET12`, or another version).
pub(super) fn sniff(head: &[u8]) -> bool {
    matches!(head.get(4..8), Some([b'E', b'T', a, b]) if a.is_ascii_digit() && b.is_ascii_digit())
}

/// Instructions drawn at most (a plan of more is cut short with a warning).
const MAX_INSTRUCTIONS: usize = 4_000_000;

/// The union tags of `KernelTypes`.
mod kind {
    pub const NULL: u8 = 1;
    pub const INT: u8 = 2;
    pub const BOOL: u8 = 3;
    pub const DOUBLE: u8 = 4;
    pub const TENSOR: u8 = 5;
    pub const STRING: u8 = 6;
    pub const INT_LIST: u8 = 7;
    pub const DOUBLE_LIST: u8 = 8;
    pub const BOOL_LIST: u8 = 9;
    pub const TENSOR_LIST: u8 = 10;
    pub const OPTIONAL_TENSOR_LIST: u8 = 11;
}

/// One `EValue` of a plan, as read.
enum EValue {
    None,
    Int(i64),
    Bool(bool),
    Double(f64),
    String(String),
    /// `IntList` and `BoolList` items are indices of other values.
    Ints(Vec<i64>),
    Doubles(Vec<f64>),
    Bools(Vec<bool>),
    /// Indices of tensor values (`-1`: none, in an optional list).
    Tensors(Vec<i32>),
    Tensor(TensorInfo),
}

struct TensorInfo {
    dtype: DType,
    sizes: Vec<i64>,
    /// Index of its constant data (0: none).
    buffer: u32,
    /// `(memory id, byte offset)` of a planned tensor.
    place: Option<(u32, u64)>,
    /// Its fully qualified name, where the program kept it.
    fqn: Option<String>,
    /// Stored in a separate data file (`.ptd`).
    external: bool,
}

impl TensorInfo {
    fn bytes(&self) -> Option<u64> {
        let es = self.dtype.size_bytes()?;
        self.sizes
            .iter()
            .try_fold(es, |a, &d| a.checked_mul(u64::try_from(d).ok()?))
    }
}

/// An ExecuTorch `ScalarType`.
fn dtype_of(t: i8) -> DType {
    match t {
        0 | 13 => DType::U8,
        1 | 12 => DType::I8,
        2 => DType::I16,
        3 | 14 => DType::I32,
        4 => DType::I64,
        5 => DType::F16,
        6 => DType::F32,
        7 => DType::F64,
        11 => DType::Bool,
        15 => DType::BF16,
        22 | 27 => DType::U16,
        23 => DType::F8E5M2,
        24 => DType::F8E4M3FN,
        25 => DType::F8E5M2FNUZ,
        26 => DType::F8E4M3FNUZ,
        28 => DType::U32,
        29 => DType::U64,
        _ => DType::Unknown("ExecuTorch scalar type"),
    }
}

/// The fields of the extended header (`eh00` at byte 8): the flatbuffer's size and where the
/// segments start.
struct Header {
    segment_base: u64,
}

fn header(data: &[u8]) -> Option<Header> {
    if data.get(8..12)? != b"eh00" {
        return None;
    }
    let u64_at = |at: usize| Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?));
    Some(Header {
        segment_base: u64_at(24)?,
    })
}

/// Opens a `.pte` already mapped.
pub(super) fn load(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    let corrupt = |why: String| LoadError::corrupt(path, why);
    let root = Table::root(&data).map_err(&corrupt)?;
    let mut model = Model::new(path, Format::ExecuTorch);
    model.metadata.shards = 1;
    model.metadata.producer = Some("executorch".into());
    model.metadata.properties.push((
        "executorch.schema_version".into(),
        root.u32(0).map_err(&corrupt)?.to_string(),
    ));
    let plans = root.tables(1).map_err(&corrupt)?;
    let name_of = |p: &Table<'_>| p.str(0).ok().flatten().unwrap_or_default();
    // `forward` (an LLM export's methods come in no fixed order), else the first.
    let Some(plan) = plans
        .iter()
        .find(|p| name_of(p) == "forward")
        .or(plans.first())
    else {
        return Err(corrupt("the program has no execution plan".into()));
    };
    // The other methods: constant ones (`get_max_seq_len`, `use_kv_cache`, as LLM exports carry
    // their settings) are metadata; the rest are named in a warning.
    let mut others = Vec::new();
    for p in &plans {
        let name = name_of(p);
        if p.pos == plan.pos {
            continue;
        }
        match constant_method(p).map_err(&corrupt)? {
            Some(text) => model
                .metadata
                .properties
                .push((format!("executorch.method.{name}"), text)),
            None => others.push(name),
        }
    }
    if !others.is_empty() {
        model.metadata.warnings.push(format!(
            "{}: methods {} are not drawn; {:?} is",
            path.display(),
            others.join(", "),
            name_of(plan)
        ));
    }
    let constants = Constants::read(&root, &data).map_err(&corrupt)?;
    let blobs = Blobs::read(&root, &data).map_err(&corrupt)?;
    let mut b = Builder {
        path,
        data: &data,
        model: &mut model,
        values: Vec::new(),
        current: HashMap::new(),
        written: Vec::new(),
        weights: HashMap::new(),
        constants: &constants,
        blobs: &blobs,
        ops: OpNames::default(),
        counts: HashMap::new(),
        external: 0,
        ptd: None,
    };
    b.plan(plan)
        .map_err(|e| corrupt(format!("execution plan {:?}: {e}", b.plan_name(plan))))?;
    let ptd_files = b.ptd.take().map(|(_, names)| names).unwrap_or_default();
    if b.external > 0 {
        let n = b.external;
        let looked = if ptd_files.is_empty() {
            "no .ptd file is beside it".to_string()
        } else {
            format!("not found in {}", ptd_files.join(", "))
        };
        model.metadata.warnings.push(format!(
            "{}: {n} weights are stored in a separate data file (.ptd): {looked}",
            path.display()
        ));
    }
    model.metadata.shards = 1 + ptd_files.len();
    model.graph.connect_by_values();
    // A delegate's graph takes the delegate's inputs, by position.
    model.graph.inline_bodies(false);
    // A program keeps no module paths: one level, which the layout clusters where it is large,
    // and a box for each delegate's graph.
    let mut groups = vec![0; model.graph.nodes.len()];
    model.box_subgraphs(&mut groups);
    model.finish_hierarchy(&groups);
    Ok(model)
}

/// One `EValue` of a plan.
fn evalue(v: &Table<'_>) -> Fb<EValue> {
    let tag = v.u8(0)?;
    let Some(t) = v.table(1)? else {
        return Ok(EValue::None);
    };
    let longs = |t: &Table<'_>| -> Fb<Vec<i64>> {
        Ok(t.vector(0, 8)?
            .map(|v| {
                v.bytes()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default())
    };
    Ok(match tag {
        kind::NULL => EValue::None,
        kind::INT => EValue::Int(t.scalar::<8>(0)?.map_or(0, i64::from_le_bytes)),
        kind::BOOL => EValue::Bool(t.u8(0)? != 0),
        kind::DOUBLE => EValue::Double(t.scalar::<8>(0)?.map_or(0.0, f64::from_le_bytes)),
        kind::STRING => EValue::String(t.str(0)?.unwrap_or_default()),
        kind::INT_LIST => EValue::Ints(longs(&t)?),
        kind::DOUBLE_LIST => EValue::Doubles(
            longs(&t)?
                .into_iter()
                .map(|b| f64::from_bits(b as u64))
                .collect(),
        ),
        kind::BOOL_LIST => EValue::Bools(
            t.vector(0, 1)?
                .map(|v| v.bytes().iter().map(|&b| b != 0).collect())
                .unwrap_or_default(),
        ),
        kind::TENSOR_LIST | kind::OPTIONAL_TENSOR_LIST => EValue::Tensors(t.i32s(0)?),
        kind::TENSOR => {
            let place = match t.table(6)? {
                Some(a) => {
                    let low = u64::from(a.u32(1)?);
                    let high = u64::from(a.u32(2)?);
                    Some((a.u32(0)?, high << 32 | low))
                }
                None => None,
            };
            let (fqn, external) = match t.table(9)? {
                Some(x) => (x.str(1)?, x.u8(2)? == 1),
                None => (None, false),
            };
            EValue::Tensor(TensorInfo {
                dtype: dtype_of(t.u8(0)? as i8),
                sizes: t.i32s(2)?.into_iter().map(i64::from).collect(),
                buffer: t.u32(5)?,
                place,
                fqn,
                external,
            })
        }
        _ => EValue::None,
    })
}

/// The tensors of the `.ptd` files beside the program (`FlatTensor`, `FT01`: weights exported
/// with `external_constants=True`, by fully qualified name), and those files' names. A damaged
/// one is a warning; its weights stay missing.
fn external_data(path: &Path, model: &mut Model) -> (HashMap<String, Bytes>, Vec<String>) {
    let mut map = HashMap::new();
    let mut names = Vec::new();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (map, names);
    };
    let mut files: Vec<std::path::PathBuf> = entries
        .filter_map(Result::ok)
        .take(4096)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ptd"))
        .collect();
    files.sort();
    for file in files {
        let read = super::map_file(&file)
            .map_err(|e| e.to_string())
            .and_then(|data| flat_tensor(&data).map(|t| (data, t)));
        match read {
            Ok((data, tensors)) => {
                for (key, range) in tensors {
                    map.entry(key).or_insert_with(|| data.slice(range));
                }
                names.push(
                    file.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
            }
            Err(why) => model
                .metadata
                .warnings
                .push(format!("{}: not read: {why}", file.display())),
        }
    }
    (map, names)
}

/// A `.ptd` file's named tensors: key → byte range in the file.
fn flat_tensor(data: &[u8]) -> Fb<Vec<(String, std::ops::Range<usize>)>> {
    if data.get(4..8) != Some(b"FT01") {
        return Err("not an ExecuTorch data file (no FT01 identifier)".into());
    }
    // The `FH01` header at byte 8: …, the segments' base at 32.
    let base = match data.get(8..12) {
        Some(b"FH01") => data
            .get(32..40)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or("its header is cut short")?,
        _ => return Err("no FH01 header saying where its data lies".into()),
    };
    let root = Table::root(data)?;
    // FlatTensor: version, segments, named_data.
    let segments: Vec<(u64, u64)> = root
        .tables(1)?
        .iter()
        .map(|s| Ok((s.u64(0)?, s.u64(1)?)))
        .collect::<Fb<_>>()?;
    let mut out = Vec::new();
    for n in root.tables(2)? {
        let Some(key) = n.str(0)? else { continue };
        let i = n.u32(1)? as usize;
        let &(offset, size) = segments
            .get(i)
            .ok_or_else(|| format!("{key}: segment {i} does not exist"))?;
        let start = base
            .checked_add(offset)
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| format!("{key}: its offset overflows"))?;
        let end = usize::try_from(size)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&e| e <= data.len())
            .ok_or_else(|| format!("{key}: its {size} bytes run past the end of the file"))?;
        out.push((key, start..end));
    }
    Ok(out)
}

/// What a method without instructions returns, as text, when it returns only numbers, truth
/// values and strings (`128`; `2, 7`).
fn constant_method(p: &Table<'_>) -> Fb<Option<String>> {
    let runs = p
        .tables(5)?
        .iter()
        .map(|c| Ok(c.vector(2, 4)?.map_or(0, |v| v.len)))
        .sum::<Fb<usize>>()?;
    if runs > 0 {
        return Ok(None);
    }
    let values = p.tables(2)?;
    let mut out = Vec::new();
    for o in p.i32s(4)? {
        let Some(v) = usize::try_from(o).ok().and_then(|o| values.get(o)) else {
            return Ok(None);
        };
        out.push(match evalue(v)? {
            EValue::Int(i) => i.to_string(),
            EValue::Double(d) => d.to_string(),
            EValue::Bool(b) => b.to_string(),
            EValue::String(s) if s.len() <= 200 => s,
            _ => return Ok(None),
        });
    }
    Ok((!out.is_empty()).then(|| out.join(", ")))
}

/// `(offset, size)` of each data segment, from the start of the segments.
fn segments(root: &Table<'_>) -> Fb<Vec<(u64, u64)>> {
    root.tables(4)?
        .iter()
        .map(|s| Ok((s.u64(0)?, s.u64(1)?)))
        .collect()
}

/// Where constant data lies: the constant segment's offsets, or the flatbuffer's buffers.
struct Constants {
    /// Byte range in the file of each constant's start … the end of its segment.
    segment: Option<(Vec<u64>, u64, u64)>,
    /// `constant_buffer[i]`'s bytes, as a range of the file.
    buffers: Vec<std::ops::Range<usize>>,
}

impl Constants {
    fn read(root: &Table<'_>, data: &[u8]) -> Fb<Constants> {
        let mut buffers = Vec::new();
        for b in root.tables(2)? {
            let range = match b.vector(0, 1)? {
                Some(v) => v.start..v.start + v.len,
                None => 0..0,
            };
            buffers.push(range);
        }
        let segment = match root.table(5)? {
            Some(cs) => {
                let offsets: Vec<u64> = cs
                    .vector(1, 8)?
                    .map(|v| {
                        v.bytes()
                            .chunks_exact(8)
                            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default();
                if offsets.is_empty() {
                    None
                } else {
                    let index = cs.u32(0)? as usize;
                    let (offset, size) = *segments(root)?
                        .get(index)
                        .ok_or_else(|| format!("the constant segment {index} does not exist"))?;
                    // No extended header: no segment data (a program whose constants all live
                    // in a .ptd file lists an empty one); reading from it is an error.
                    let Some(base) = header(data).map(|h| h.segment_base) else {
                        return Ok(Constants {
                            segment: Some((offsets, 0, 0)),
                            buffers,
                        });
                    };
                    let start = base
                        .checked_add(offset)
                        .ok_or("the constant segment's offset overflows")?;
                    // A segment cut short (a truncated file) leaves the constants past the end
                    // errors, each saying so; the program still opens.
                    let end = start.saturating_add(size).min(data.len() as u64);
                    Some((offsets, start, end))
                }
            }
            None => None,
        };
        Ok(Constants { segment, buffers })
    }

    /// The bytes of constant `index`, `len` of them.
    fn bytes(&self, data: &Bytes, index: u32, len: u64) -> Result<Bytes, String> {
        let i = index as usize;
        if let Some((offsets, start, end)) = &self.segment {
            let at = offsets
                .get(i)
                .ok_or_else(|| format!("constant {i} is beyond the segment's {}", offsets.len()))?;
            let from = start.checked_add(*at).ok_or("its offset overflows")?;
            let to = from
                .checked_add(len)
                .filter(|&t| t <= *end)
                .ok_or_else(|| {
                    format!(
                        "its {len} bytes at {from} run past the constant segment's end (or the \
                         file's) at {end}"
                    )
                })?;
            return Ok(data.slice(from as usize..to as usize));
        }
        let range = self
            .buffers
            .get(i)
            .ok_or_else(|| format!("constant buffer {i} does not exist"))?;
        if (range.len() as u64) < len {
            return Err(format!(
                "constant buffer {i} holds {} bytes, not {len}",
                range.len()
            ));
        }
        Ok(data.slice(range.start..range.start + len as usize))
    }
}

struct Builder<'a, 'm> {
    path: &'a Path,
    data: &'a Bytes,
    model: &'m mut Model,
    values: Vec<EValue>,
    /// The graph value each `EValue` holds now.
    current: HashMap<usize, ValueId>,
    /// Tensors written so far, in order: `(EValue, memory id, byte range)`.
    written: Vec<(usize, u32, std::ops::Range<u64>)>,
    /// The weight of each constant `EValue`, once read.
    weights: HashMap<usize, TensorId>,
    constants: &'a Constants,
    blobs: &'a Blobs,
    ops: OpNames,
    /// Nodes of each op so far (for names).
    counts: HashMap<String, usize>,
    /// Weights stored outside the file and not found there.
    external: usize,
    /// The named tensors of the `.ptd` files beside the program, and those files' names: read
    /// when a weight first needs them.
    ptd: Option<(HashMap<String, Bytes>, Vec<String>)>,
}

impl Builder<'_, '_> {
    /// The tensors of the `.ptd` files beside the program, read on first use.
    fn ptd(&mut self) -> &HashMap<String, Bytes> {
        if self.ptd.is_none() {
            self.ptd = Some(external_data(self.path, self.model));
        }
        &self.ptd.get_or_insert_default().0
    }

    fn plan_name(&self, plan: &Table<'_>) -> String {
        plan.str(0).ok().flatten().unwrap_or_default()
    }

    fn plan(&mut self, plan: &Table<'_>) -> Fb<()> {
        self.model.graph.name = self.plan_name(plan);
        for v in plan.tables(2)? {
            let value = evalue(&v)?;
            self.values.push(value);
        }
        let operators: Vec<(String, String)> = plan
            .tables(6)?
            .iter()
            .map(|o| Ok((o.str(0)?.unwrap_or_default(), o.str(1)?.unwrap_or_default())))
            .collect::<Fb<_>>()?;
        let delegates = plan.tables(7)?;
        for (k, &i) in plan.i32s(3)?.iter().enumerate() {
            let i = self.index(i)?;
            let v = self.fresh(i, format!("input_{k}"));
            let mut node = Node::new(format!("input_{k}"), "Input", NodeKind::Input);
            node.outputs.push(v);
            self.model.graph.inputs.push(v);
            self.model.graph.add_node(node);
        }
        let mut drawn = 0usize;
        let mut jumps = 0usize;
        for chain in plan.tables(5)? {
            for ins in chain.tables(2)? {
                if drawn >= MAX_INSTRUCTIONS {
                    self.model.metadata.warnings.push(format!(
                        "{}: the plan was cut short after {MAX_INSTRUCTIONS} instructions",
                        self.path.display()
                    ));
                    break;
                }
                drawn += 1;
                let tag = ins.u8(0)?;
                let Some(args) = ins.table(1)? else { continue };
                match tag {
                    // KernelCall
                    1 => {
                        let op = usize::try_from(args.i32(0, 0)?)
                            .ok()
                            .and_then(|i| operators.get(i))
                            .ok_or("a kernel call names an operator that does not exist")?;
                        let list = args.i32s(1)?;
                        self.kernel(&op.0, &op.1, &list)?;
                    }
                    // DelegateCall
                    2 => {
                        let d = usize::try_from(args.i32(0, 0)?)
                            .ok()
                            .and_then(|i| delegates.get(i))
                            .ok_or("a delegate call names a delegate that does not exist")?;
                        let list = args.i32s(1)?;
                        self.delegate(d, &list)?;
                    }
                    // MoveCall: the destination holds what the source holds.
                    3 => {
                        let from = self.index(args.i32(0, 0)?)?;
                        let to = self.index(args.i32(1, 0)?)?;
                        if let Some(&v) = self.current.get(&from) {
                            self.current.insert(to, v);
                        }
                    }
                    4 => jumps += 1,
                    _ => {}
                }
            }
        }
        if jumps > 0 {
            self.model.metadata.warnings.push(format!(
                "{}: {jumps} conditional jumps (control flow) are not drawn; the instructions \
                 are laid out in order",
                self.path.display()
            ));
        }
        for (k, &o) in plan.i32s(4)?.iter().enumerate() {
            let o = self.index(o)?;
            let v = self.read(o, None);
            let Some(v) = v else { continue };
            let mut node = Node::new(format!("output_{k}"), "Output", NodeKind::Output);
            node.inputs.push(Some(v));
            self.model.graph.outputs.push(v);
            self.model.graph.add_node(node);
        }
        Ok(())
    }

    fn index(&self, i: i32) -> Fb<usize> {
        usize::try_from(i)
            .ok()
            .filter(|&i| i < self.values.len())
            .ok_or_else(|| {
                format!(
                    "value {i} does not exist (the plan has {})",
                    self.values.len()
                )
            })
    }

    /// A new graph value for tensor `EValue` `i`, now what it holds.
    fn fresh(&mut self, i: usize, name: String) -> ValueId {
        let (dtype, shape) = match self.values.get(i) {
            Some(EValue::Tensor(t)) => (
                Some(t.dtype),
                Some(t.sizes.iter().map(|&d| Dim::Fixed(d)).collect()),
            ),
            _ => (None, None),
        };
        let v = self.model.graph.add_value(Value { name, dtype, shape });
        self.current.insert(i, v);
        if let Some(EValue::Tensor(t)) = self.values.get(i)
            && let (Some((mem, at)), Some(n)) = (t.place, t.bytes())
        {
            self.written.push((i, mem, at..at.saturating_add(n)));
        }
        v
    }

    /// The value tensor `EValue` `i` holds when `node` reads it: a weight (read first by `node`,
    /// which then owns it), what an instruction wrote, or, for a view that memory planning made
    /// an alias, what was last written where it lies.
    fn read(&mut self, i: usize, node: Option<(&mut Node, &str)>) -> Option<ValueId> {
        if let Some(&v) = self.current.get(&i) {
            return Some(v);
        }
        let EValue::Tensor(t) = self.values.get(i)? else {
            return None;
        };
        if t.buffer > 0 || t.external {
            return Some(self.weight(i, node));
        }
        if let Some((mem, at)) = t.place
            && let Some(&(src, ..)) = self
                .written
                .iter()
                .rev()
                .find(|(_, m, r)| *m == mem && r.contains(&at))
            && let Some(&v) = self.current.get(&src)
        {
            return Some(v);
        }
        Some(self.fresh(i, format!("v{i}")))
    }

    /// Constant `EValue` `i` as a weight, owned by the first node to read it.
    fn weight(&mut self, i: usize, node: Option<(&mut Node, &str)>) -> ValueId {
        let owner = node.as_ref().map(|(n, arg)| format!("{}.{arg}", n.name));
        let id = match self.weights.get(&i) {
            Some(&id) => id,
            None => {
                let Some(EValue::Tensor(t)) = self.values.get(i) else {
                    return self.model.graph.add_value(Value::default());
                };
                let (dtype, buffer, external, len) = (t.dtype, t.buffer, t.external, t.bytes());
                let shape: Vec<u64> = t.sizes.iter().map(|&d| d.max(0) as u64).collect();
                let fqn = t.fqn.clone();
                let name = fqn
                    .clone()
                    .or(owner)
                    .unwrap_or_else(|| format!("constant_{i}"));
                let data = if external {
                    let found = fqn.as_ref().and_then(|k| self.ptd().get(k)).cloned();
                    match (found, len) {
                        (Some(b), Some(len)) if b.len() as u64 >= len => {
                            TensorData::Bytes(b.slice(..len as usize))
                        }
                        (Some(b), _) => TensorData::Error(format!(
                            "{}: {name}: {} bytes in the data file for its type and shape",
                            self.path.display(),
                            b.len()
                        )),
                        (None, _) => {
                            self.external += 1;
                            TensorData::Missing
                        }
                    }
                } else {
                    match len {
                        Some(len) => self
                            .constants
                            .bytes(self.data, buffer, len)
                            .map(TensorData::Bytes)
                            .unwrap_or_else(|why| {
                                TensorData::Error(format!("{}: {name}: {why}", self.path.display()))
                            }),
                        None => TensorData::Error(format!(
                            "{}: {name}: a tensor of a type or shape this reader cannot size",
                            self.path.display()
                        )),
                    }
                };
                let tensor = Tensor {
                    name,
                    dtype,
                    shape,
                    data,
                    origin: TensorOrigin::Initializer,
                    conv_axes: None,
                    quant: None,
                };
                let id = self.model.add_tensor(tensor);
                self.weights.insert(i, id);
                if let Some((n, _)) = node {
                    n.tensors.push(id);
                }
                id
            }
        };
        let t = &self.model.tensors[id as usize];
        let v = self.model.graph.add_value(Value::of_tensor(t));
        self.current.insert(i, v);
        v
    }

    /// A node named by its op and a running count (`convolution_0`).
    fn node(&mut self, op: &str, target: &str) -> Node {
        let n = self.counts.entry(op.to_string()).or_default();
        let name = format!("{op}_{n}");
        *n += 1;
        let mut node = Node::new(name, self.ops.get(op), NodeKind::Op);
        node.attributes
            .push(("target".into(), AttrValue::String(target.to_string())));
        node
    }

    /// The tensor `EValue`s an instruction's returned value stands for.
    fn returned(&self, ret: usize) -> Vec<usize> {
        match self.values.get(ret) {
            Some(EValue::Tensor(_)) => vec![ret],
            Some(EValue::Tensors(items)) => items
                .iter()
                .filter_map(|&i| usize::try_from(i).ok())
                .filter(|&i| matches!(self.values.get(i), Some(EValue::Tensor(_))))
                .collect(),
            _ => Vec::new(),
        }
    }

    fn kernel(&mut self, name: &str, overload: &str, args: &[i32]) -> Fb<()> {
        let op = name.strip_prefix("aten::").unwrap_or(name);
        let target = if overload.is_empty() {
            name.to_string()
        } else {
            format!("{name}.{overload}")
        };
        let mut node = self.node(op, &target);
        let schema = super::torchscript::arg_names(op.strip_suffix("_copy").unwrap_or(op));
        let args: Vec<usize> = args.iter().map(|&a| self.index(a)).collect::<Fb<_>>()?;
        let Some((&ret, rest)) = args.split_last() else {
            self.model.graph.add_node(node);
            return Ok(());
        };
        let outs = self.returned(ret);
        for (k, &a) in rest.iter().enumerate() {
            let arg = schema
                .get(k)
                .copied()
                .map_or_else(|| format!("arg{k}"), str::to_string);
            // An out argument not yet written is where the kernel writes, not an input.
            if outs.contains(&a) && !self.current.contains_key(&a) {
                continue;
            }
            self.argument(&mut node, a, &arg);
        }
        for o in outs {
            let v = self.fresh(o, format!("{}:{o}", node.name));
            node.outputs.push(v);
        }
        self.model.graph.add_node(node);
        Ok(())
    }

    /// Argument `a` of `node`: a tensor (or tensor list) it reads, or an attribute.
    fn argument(&mut self, node: &mut Node, a: usize, arg: &str) {
        let attr = match self.values.get(a) {
            Some(EValue::Tensor(_)) => {
                let v = self.read(a, Some((node, arg)));
                node.inputs.push(v);
                return;
            }
            Some(EValue::Tensors(items)) => {
                let items: Vec<usize> = items
                    .iter()
                    .filter_map(|&i| usize::try_from(i).ok())
                    .collect();
                for (j, i) in items.into_iter().enumerate() {
                    let v = self.read(i, Some((node, &format!("{arg}.{j}"))));
                    node.inputs.push(v);
                }
                return;
            }
            Some(EValue::None) | None => return,
            Some(EValue::Int(i)) => AttrValue::Int(*i),
            Some(EValue::Bool(b)) => AttrValue::Int(i64::from(*b)),
            Some(EValue::Double(d)) => AttrValue::Float(*d as f32),
            Some(EValue::String(s)) => AttrValue::String(s.clone()),
            Some(EValue::Doubles(d)) => AttrValue::Floats(d.iter().map(|&x| x as f32).collect()),
            Some(EValue::Bools(b)) => AttrValue::Ints(b.iter().map(|&x| i64::from(x)).collect()),
            // IntList items are indices of Int values.
            Some(EValue::Ints(items)) => AttrValue::Ints(
                items
                    .iter()
                    .filter_map(|&i| {
                        match usize::try_from(i).ok().and_then(|i| self.values.get(i)) {
                            Some(EValue::Int(x)) => Some(*x),
                            _ => None,
                        }
                    })
                    .collect(),
            ),
        };
        node.attributes.push((arg.to_string(), attr));
    }

    fn delegate(&mut self, d: &Table<'_>, args: &[i32]) -> Fb<()> {
        let id = d.str(0)?.unwrap_or_else(|| "delegate".into());
        let node_id = self.model.graph.nodes.len() as crate::model::NodeId;
        let mut node = self.node(&id, &id);
        let mut blob = None;
        if let Some(p) = d.table(1)? {
            match self.blobs.get(self.data, p.u8(0)?, p.u32(1)? as usize) {
                Ok(b) => {
                    node.attributes.push((
                        "processed bytes".into(),
                        AttrValue::Int(i64::try_from(b.len()).unwrap_or(i64::MAX)),
                    ));
                    blob = Some(b);
                }
                Err(why) => node
                    .attributes
                    .push(("processed".into(), AttrValue::String(why))),
            }
        }
        for spec in d.tables(2)? {
            let key = spec.str(0)?.unwrap_or_default();
            let value = spec.vector(1, 1)?.map(|v| v.bytes()).unwrap_or_default();
            let text = if !value.is_empty()
                && value.len() <= 256
                && value.iter().all(|c| c.is_ascii_graphic() || *c == b' ')
            {
                String::from_utf8_lossy(value).into_owned()
            } else {
                format!("<{} bytes>", value.len())
            };
            node.attributes.push((key, AttrValue::String(text)));
        }
        // A delegate's arguments are its inputs, then its outputs: those not written yet.
        let args: Vec<usize> = args.iter().map(|&a| self.index(a)).collect::<Fb<_>>()?;
        for (k, &a) in args.iter().enumerate() {
            let fresh_tensor = matches!(self.values.get(a), Some(EValue::Tensor(t)) if t.buffer == 0 && !t.external)
                && !self.current.contains_key(&a)
                && k > 0;
            if fresh_tensor {
                let v = self.fresh(a, format!("{}:{a}", node.name));
                node.outputs.push(v);
            } else {
                self.argument(&mut node, a, &format!("arg{k}"));
            }
        }
        // XNNPACK's own graph, inside the node's box.
        if id == "XnnpackBackend"
            && let Some(blob) = blob
        {
            match xnnpack::graph(self, &blob) {
                Ok(graph) => {
                    self.model.graph.bodies.push(crate::model::Body {
                        owner: node_id,
                        attribute: "xnnpack".into(),
                        graph,
                        fed_by: Vec::new(),
                    });
                    let at = self.model.graph.bodies.len() - 1;
                    node.attributes.push(("graph".into(), AttrValue::Graph(at)));
                }
                Err(why) => self.model.metadata.warnings.push(format!(
                    "{}: {}: the XNNPACK graph is not drawn: {why}",
                    self.path.display(),
                    node.name
                )),
            }
        }
        self.model.graph.add_node(node);
        Ok(())
    }
}

/// Where each delegate's processed blob lies: inline in the flatbuffer, or in a segment; and the
/// named data (weights a backend shares through the program's `named_data`).
struct Blobs {
    inline: Vec<std::ops::Range<usize>>,
    /// File byte range of each segment (clamped to the file).
    segments: Vec<std::ops::Range<u64>>,
    /// Named data's key → its segment.
    named: HashMap<String, usize>,
}

impl Blobs {
    fn read(root: &Table<'_>, data: &[u8]) -> Fb<Blobs> {
        let inline = root
            .tables(3)?
            .iter()
            .map(|d| Ok(d.vector(0, 1)?.map_or(0..0, |v| v.start..v.start + v.len)))
            .collect::<Fb<_>>()?;
        let base = header(data).map_or(0, |h| h.segment_base);
        let end = data.len() as u64;
        let segments = segments(root)?
            .into_iter()
            .map(|(o, n)| {
                let s = base.saturating_add(o).min(end);
                s..s.saturating_add(n).min(end)
            })
            .collect();
        let mut named = HashMap::new();
        for n in root.tables(7)? {
            if let Some(key) = n.str(0)? {
                named.insert(key, n.u32(1)? as usize);
            }
        }
        Ok(Blobs {
            inline,
            segments,
            named,
        })
    }

    /// The blob a `BackendDelegateDataReference` names (`location` 0: inline, 1: a segment).
    fn get(&self, data: &Bytes, location: u8, index: usize) -> Result<Bytes, String> {
        let range = if location == 0 {
            self.inline.get(index).cloned()
        } else {
            self.segments
                .get(index)
                .map(|r| r.start as usize..r.end as usize)
        };
        range
            .map(|r| data.slice(r))
            .ok_or_else(|| format!("its data ({location}, {index}) does not exist"))
    }

    /// The bytes of named data `key`.
    fn named(&self, data: &Bytes, key: &str) -> Option<Bytes> {
        let r = self.segments.get(*self.named.get(key)?)?;
        Some(data.slice(r.start as usize..r.end as usize))
    }
}

/// How a field of an XNNPACK node table is stored ([`xnnpack_schema`]).
#[derive(Clone, Copy)]
#[allow(
    dead_code,
    reason = "every field type the generator knows; today's schema uses only some"
)]
enum Kind {
    U32,
    I32,
    F32,
    Bool,
    VecU32,
    Other,
}

/// One field of an XNNPACK node table.
struct Field {
    name: &'static str,
    slot: u16,
    kind: Kind,
}
