//! Flax checkpoints: the MessagePack files `flax.serialization.to_bytes` writes (Hugging Face's
//! `flax_model.msgpack`, sharded through `flax_model.msgpack.index.json`; `flax.training`'s
//! `checkpoint_N` files; a `TrainState` with its optimizer state).
//!
//! The file is one MessagePack map: the variables' nested dicts (`params` → `Dense_0` →
//! `kernel`), lists as arrays, each array leaf an extension of type 1 whose payload is itself
//! MessagePack, `[shape, dtype name, bytes]`, the bytes in C order and the machine's (little)
//! endianness. NumPy scalars are type 3 (the same payload), complex numbers type 2. An array over
//! Flax's chunk limit (`MAX_CHUNK_SIZE`, 1 GiB) is a map `{'__msgpack_chunked_array__': True,
//! 'shape': {'0': d0, …}, 'chunks': {'0': flat[:n], …}}`.
//!
//! The walk streams: it keeps only the path to the current value, so memory follows the tensors
//! found, not the file. An array's bytes are a slice of the map; a chunked array is joined into
//! memory (up to [`MAX_JOINED`] bytes in all, with a warning). Tensors are named by their path
//! joined with `.` (`transformer.h.0.attn.c_attn.kernel`; a key that is itself a `/`-joined path,
//! as in transformers' shards, is split the same way), so module lists read as `h.0` and the
//! known families chain as their PyTorch twins do. Other leaves (`step`, a learning rate) become
//! metadata `checkpoint.*`. Flax's conv kernels are `[kh, kw, in, out]`.

use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use rmp::Marker;
use rmp::decode::RmpRead;

use super::LoadError;
use crate::model::{DType, Format, Model, Tensor, TensorData, TensorOrigin};

/// Deepest nesting of maps and arrays walked.
const MAX_DEPTH: usize = 64;
/// Most bytes of chunked arrays joined into memory, in all.
const MAX_JOINED: u64 = 4 << 30;
/// Most non-array leaves kept as metadata.
const MAX_SCALARS: usize = 256;
/// The key that marks a chunked array's map.
const CHUNKED: &str = "__msgpack_chunked_array__";
/// Extension types of Flax's encoder.
const EXT_NDARRAY: i8 = 1;
const EXT_COMPLEX: i8 = 2;
const EXT_SCALAR: i8 = 3;

/// Whether a file is a Flax checkpoint: a `.msgpack` file, or one that starts as a map whose
/// first key is a string (an ONNX file can start with the same byte as a map, but a protobuf
/// tag's next byte is never a string marker).
pub(super) fn sniff(path: &Path, head: &[u8]) -> bool {
    if path.extension().is_some_and(|e| e == "msgpack") {
        return true;
    }
    let key_at = match head.first() {
        Some(0x81..=0x8f) => 1,
        Some(0xde) => 3,
        Some(0xdf) => 5,
        _ => return false,
    };
    matches!(head.get(key_at), Some(0xa0..=0xbf | 0xd9..=0xdb))
}

/// Opens a Flax checkpoint already mapped.
pub(super) fn load(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    let mut model = Model::new(path, Format::Flax);
    add_shard(&mut model, path, &data)?;
    model.metadata.shards = 1;
    finish(&mut model, path.parent());
    Ok(model)
}

/// Adds a Flax file's tensors and scalars to `model` (one shard of a sharded checkpoint).
pub(super) fn add_shard(model: &mut Model, path: &Path, data: &Bytes) -> Result<(), LoadError> {
    let mut walk = Walk {
        data,
        pos: 0,
        path: Vec::new(),
        tensors: Vec::new(),
        scalars: Vec::new(),
        scalars_left_out: 0,
        joined: 0,
        joined_count: 0,
        name_budget: data.len().saturating_mul(16).saturating_add(1 << 20),
        file: path,
        within: "the file",
    };
    walk.value(0).map_err(|e| LoadError::corrupt(path, e))?;
    if walk.pos != data.len() {
        model.metadata.warnings.push(format!(
            "{}: {} bytes after the checkpoint's map are not read",
            path.display(),
            data.len() - walk.pos
        ));
    }
    if walk.name_budget == 0 {
        model.metadata.warnings.push(format!(
            "{}: the file names more values than it could hold; the rest are not shown",
            path.display()
        ));
    }
    if walk.joined_count > 0 {
        model.metadata.warnings.push(format!(
            "{}: {} array(s) saved in chunks (over Flax's 1 GiB limit) were joined into memory \
             ({} MiB)",
            path.display(),
            walk.joined_count,
            walk.joined >> 20
        ));
    }
    if walk.scalars_left_out > 0 {
        model.metadata.warnings.push(format!(
            "{}: {} more non-array values are not listed",
            path.display(),
            walk.scalars_left_out
        ));
    }
    for (key, value) in walk.scalars {
        model
            .metadata
            .properties
            .push((format!("checkpoint.{key}"), value));
    }
    for t in walk.tensors {
        if model.tensor(&t.name).is_some() {
            return Err(LoadError::corrupt(
                path,
                format!("tensor {:?} appears twice", t.name),
            ));
        }
        model.add_tensor(t);
    }
    Ok(())
}

/// Conv axes, producer and the checkpoint's module graph.
pub(super) fn finish(model: &mut Model, dir: Option<&Path>) {
    super::numpy::kernel_axes(model);
    if model.tensors.is_empty() {
        model.metadata.warnings.push(format!(
            "{}: the checkpoint holds no arrays",
            model.source.display()
        ));
    }
    model.metadata.producer = Some("Flax".into());
    super::safetensors::finish(model, dir);
}

/// An array leaf's header: what its payload says.
struct Array {
    dtype: Result<DType, String>,
    shape: Vec<u64>,
    /// The data's byte range in the file.
    bytes: Range<usize>,
}

/// A streaming walk over the file's values.
struct Walk<'a> {
    data: &'a Bytes,
    pos: usize,
    /// Keys from the root to the current value.
    path: Vec<String>,
    tensors: Vec<Tensor>,
    scalars: Vec<(String, String)>,
    scalars_left_out: usize,
    joined: u64,
    joined_count: usize,
    /// Bytes of names still allowed (a file can repeat a long key under many leaves).
    name_budget: usize,
    file: &'a Path,
    /// What `data` ends with, for errors: the file, or an array's extension.
    within: &'static str,
}

impl Walk<'_> {
    fn reader(&self) -> rmp::decode::Bytes<'_> {
        rmp::decode::Bytes::new(self.data.get(self.pos..).unwrap_or(&[]))
    }

    fn marker(&mut self) -> Result<Marker, String> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        self.pos += 1;
        Ok(Marker::from_u8(b))
    }

    /// A big-endian length of `n` bytes (1, 2 or 4).
    fn len(&mut self, n: usize) -> Result<usize, String> {
        let mut rd = self.reader();
        let v = match n {
            1 => rd.read_data_u8().map(usize::from),
            2 => rd.read_data_u16().map(usize::from),
            _ => rd.read_data_u32().map(|v| v as usize),
        }
        .map_err(|_| format!("truncated length at byte {}", self.pos))?;
        self.pos += n;
        Ok(v)
    }

    /// Skips `n` bytes, returning their range.
    fn take(&mut self, n: usize) -> Result<Range<usize>, String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                format!(
                    "a value of {n} bytes at byte {} runs past the end of {} (byte {})",
                    self.pos,
                    self.within,
                    self.data.len()
                )
            })?;
        let r = self.pos..end;
        self.pos = end;
        Ok(r)
    }

    fn text(&self, r: Range<usize>) -> String {
        String::from_utf8_lossy(&self.data[r]).into_owned()
    }

    /// Reads one value; arrays become tensors, other leaves scalars.
    fn value(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "values nested more than {MAX_DEPTH} deep at byte {}",
                self.pos
            ));
        }
        let at = self.pos;
        let marker = self.marker()?;
        if let Some(n) = self.map_len(marker)? {
            if n > 0 && self.next_key_is(CHUNKED) {
                return self.chunked(n, depth);
            }
            for _ in 0..n {
                let key = self.key()?;
                self.path.push(key);
                let r = self.value(depth + 1);
                self.path.pop();
                r?;
            }
            return Ok(());
        }
        if let Some(n) = self.array_len(marker)? {
            for i in 0..n {
                self.path.push(i.to_string());
                let r = self.value(depth + 1);
                self.path.pop();
                r?;
            }
            return Ok(());
        }
        if let Some((kind, payload)) = self.ext(marker)? {
            return self.ext_leaf(kind, payload);
        }
        let scalar = self.scalar(marker, at)?;
        self.scalar_leaf(scalar);
        Ok(())
    }

    fn map_len(&mut self, m: Marker) -> Result<Option<usize>, String> {
        Ok(Some(match m {
            Marker::FixMap(n) => usize::from(n),
            Marker::Map16 => self.len(2)?,
            Marker::Map32 => self.len(4)?,
            _ => return Ok(None),
        }))
    }

    fn array_len(&mut self, m: Marker) -> Result<Option<usize>, String> {
        Ok(Some(match m {
            Marker::FixArray(n) => usize::from(n),
            Marker::Array16 => self.len(2)?,
            Marker::Array32 => self.len(4)?,
            _ => return Ok(None),
        }))
    }

    fn str_len(&mut self, m: Marker) -> Result<Option<usize>, String> {
        Ok(Some(match m {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 | Marker::Bin8 => self.len(1)?,
            Marker::Str16 | Marker::Bin16 => self.len(2)?,
            Marker::Str32 | Marker::Bin32 => self.len(4)?,
            _ => return Ok(None),
        }))
    }

    /// An extension's type and payload range.
    fn ext(&mut self, m: Marker) -> Result<Option<(i8, Range<usize>)>, String> {
        let n = match m {
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            Marker::Ext8 => self.len(1)?,
            Marker::Ext16 => self.len(2)?,
            Marker::Ext32 => self.len(4)?,
            _ => return Ok(None),
        };
        let kind = self.take(1)?;
        let kind = self.data[kind.start] as i8;
        Ok(Some((kind, self.take(n)?)))
    }

    /// A leaf that is neither a container nor an extension, as text.
    fn scalar(&mut self, m: Marker, at: usize) -> Result<String, String> {
        let mut rd = self.reader();
        let (text, used) = match m {
            Marker::Null => ("None".to_string(), 0),
            Marker::True => ("True".to_string(), 0),
            Marker::False => ("False".to_string(), 0),
            Marker::FixPos(v) => (v.to_string(), 0),
            Marker::FixNeg(v) => (v.to_string(), 0),
            Marker::U8 => (
                rd.read_data_u8()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                1,
            ),
            Marker::U16 => (
                rd.read_data_u16()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                2,
            ),
            Marker::U32 => (
                rd.read_data_u32()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                4,
            ),
            Marker::U64 => (
                rd.read_data_u64()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                8,
            ),
            Marker::I8 => (
                rd.read_data_i8()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                1,
            ),
            Marker::I16 => (
                rd.read_data_i16()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                2,
            ),
            Marker::I32 => (
                rd.read_data_i32()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                4,
            ),
            Marker::I64 => (
                rd.read_data_i64()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                8,
            ),
            Marker::F32 => (
                rd.read_data_f32()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                4,
            ),
            Marker::F64 => (
                rd.read_data_f64()
                    .map(|v| v.to_string())
                    .ok()
                    .unwrap_or_default(),
                8,
            ),
            Marker::Reserved => {
                return Err(format!("an invalid MessagePack byte 0xc1 at byte {at}"));
            }
            m => {
                let Some(n) = self.str_len(m)? else {
                    return Err(format!("an unexpected {m:?} at byte {at}"));
                };
                let r = self.take(n)?;
                let text = if matches!(m, Marker::Bin8 | Marker::Bin16 | Marker::Bin32) {
                    format!("<{n} bytes>")
                } else {
                    let mut t = self.text(r);
                    if t.len() > 200 {
                        let cut = (0..=200)
                            .rev()
                            .find(|&i| t.is_char_boundary(i))
                            .unwrap_or(0);
                        t.truncate(cut);
                        t.push('…');
                    }
                    t
                };
                return Ok(text);
            }
        };
        // A fixed-size number: its bytes must be there.
        self.take(used)?;
        Ok(text)
    }

    /// A map key: a string, or a number (a dict with integer keys).
    fn key(&mut self) -> Result<String, String> {
        let at = self.pos;
        let m = self.marker()?;
        if let Some(n) = self.str_len(m)? {
            let r = self.take(n)?;
            return Ok(self.text(r));
        }
        if self.map_len(m)?.is_some() || self.array_len(m)?.is_some() || self.ext(m)?.is_some() {
            return Err(format!(
                "a map key at byte {at} is not a string or a number"
            ));
        }
        self.scalar(m, at)
    }

    /// Whether the next map key is the string `key` (without consuming it).
    fn next_key_is(&self, key: &str) -> bool {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        let (n, start) = match rest.first() {
            Some(&b @ 0xa0..=0xbf) => (usize::from(b & 0x1f), 1),
            Some(0xd9) => (rest.get(1).map_or(0, |&b| usize::from(b)), 2),
            _ => return false,
        };
        n == key.len() && rest.get(start..start + n) == Some(key.as_bytes())
    }

    /// Skips one value.
    fn skip(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "values nested more than {MAX_DEPTH} deep at byte {}",
                self.pos
            ));
        }
        let at = self.pos;
        let m = self.marker()?;
        if let Some(n) = self.map_len(m)? {
            for _ in 0..n {
                self.skip(depth + 1)?;
                self.skip(depth + 1)?;
            }
        } else if let Some(n) = self.array_len(m)? {
            for _ in 0..n {
                self.skip(depth + 1)?;
            }
        } else if self.ext(m)?.is_none() {
            self.scalar(m, at)?;
        }
        Ok(())
    }

    /// The current path as a name, within the name budget. A key holding a `/`-joined path (the
    /// flat maps of transformers' shards) is that path's segments.
    fn name(&mut self) -> Option<String> {
        let name = self.path.join(".").replace('/', ".");
        if name.len() > self.name_budget {
            self.name_budget = 0;
            return None;
        }
        self.name_budget -= name.len();
        Some(name)
    }

    fn scalar_leaf(&mut self, value: String) {
        if self.scalars.len() >= MAX_SCALARS {
            self.scalars_left_out += 1;
            return;
        }
        if let Some(name) = self.name() {
            self.scalars.push((name, value));
        }
    }

    fn ext_leaf(&mut self, kind: i8, payload: Range<usize>) -> Result<(), String> {
        match kind {
            EXT_NDARRAY => {
                let Some(name) = self.name() else {
                    return Ok(());
                };
                let t = match self.array(payload) {
                    Ok(a) => self.tensor(name, a),
                    Err(why) => self.broken(name, why),
                };
                self.tensors.push(t);
            }
            EXT_SCALAR => {
                let text = self
                    .array(payload)
                    .map(|a| scalar_text(&a, &self.data[a.bytes.clone()]))
                    .unwrap_or_else(|e| format!("<unreadable NumPy scalar: {e}>"));
                self.scalar_leaf(text);
            }
            EXT_COMPLEX => {
                let text = self.complex(payload).unwrap_or_else(|| "<complex>".into());
                self.scalar_leaf(text);
            }
            k => self.scalar_leaf(format!("<MessagePack extension {k}>")),
        }
        Ok(())
    }

    /// Parses an array payload: `[shape, dtype name, data]`.
    fn array(&self, payload: Range<usize>) -> Result<Array, String> {
        // Read within the payload only (ranges still count from the file's start).
        let bounded = self.data.slice(..payload.end);
        let mut sub = Walk {
            data: &bounded,
            pos: payload.start,
            path: Vec::new(),
            tensors: Vec::new(),
            scalars: Vec::new(),
            scalars_left_out: 0,
            joined: 0,
            joined_count: 0,
            name_budget: 0,
            file: self.file,
            within: "its array's extension",
        };
        let m = sub.marker()?;
        if sub.array_len(m)? != Some(3) {
            return Err("its payload is not [shape, dtype, data]".into());
        }
        let m = sub.marker()?;
        let rank = sub
            .array_len(m)?
            .ok_or("its shape is not a list of sizes")?;
        let mut shape = Vec::with_capacity(rank.min(32));
        for _ in 0..rank {
            let at = sub.pos;
            let m = sub.marker()?;
            let dim = sub
                .scalar(m, at)?
                .parse::<u64>()
                .map_err(|_| format!("a size at byte {at} is not a whole number"))?;
            shape.push(dim);
        }
        let m = sub.marker()?;
        let n = sub.str_len(m)?.ok_or("its dtype is not a name")?;
        let r = sub.take(n)?;
        let dname = sub.text(r);
        let m = sub.marker()?;
        let n = sub.str_len(m)?.ok_or("its data is not a byte string")?;
        let bytes = sub.take(n)?;
        let dtype = DType::from_numpy_name(&dname).ok_or(format!("dtype {dname:?} is not read"));
        Ok(Array {
            dtype,
            shape,
            bytes,
        })
    }

    /// A tensor of an array leaf, its data checked against its shape and dtype.
    fn tensor(&self, name: String, a: Array) -> Tensor {
        let dtype = match a.dtype {
            Ok(d) => d,
            Err(why) => return self.broken(name, why),
        };
        let mut t = Tensor {
            name,
            dtype,
            shape: a.shape,
            data: TensorData::Missing,
            origin: TensorOrigin::Checkpoint,
            conv_axes: None,
            quant: None,
        };
        let need = t
            .shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.size_bytes()?));
        t.data = match need {
            Some(n) if n == a.bytes.len() as u64 => TensorData::Bytes(self.data.slice(a.bytes)),
            Some(n) => TensorData::Error(format!(
                "{}: {}: {n} bytes expected for its shape and dtype, the file holds {}",
                self.file.display(),
                t.name,
                a.bytes.len()
            )),
            None => TensorData::Error(format!(
                "{}: {}: its size overflows",
                self.file.display(),
                t.name
            )),
        };
        t
    }

    /// A tensor whose data cannot be read, with why.
    fn broken(&self, name: String, why: String) -> Tensor {
        Tensor {
            data: TensorData::Error(format!("{}: {name}: {why}", self.file.display())),
            name,
            dtype: DType::Unknown("flax"),
            shape: Vec::new(),
            origin: TensorOrigin::Checkpoint,
            conv_axes: None,
            quant: None,
        }
    }

    /// A chunked array's map of `n` entries (the first key already seen to be [`CHUNKED`]).
    fn chunked(&mut self, n: usize, depth: usize) -> Result<(), String> {
        let mut shape = Vec::new();
        let mut chunks = Vec::new();
        for _ in 0..n {
            let key = self.key()?;
            let at = self.pos;
            let m = self.marker()?;
            match key.as_str() {
                "shape" => {
                    let len = self
                        .map_len(m)?
                        .ok_or("a chunked array's shape is not a map")?;
                    for _ in 0..len {
                        self.key()?;
                        let at = self.pos;
                        let m = self.marker()?;
                        let d = self.scalar(m, at)?.parse::<u64>().map_err(|_| {
                            format!("a chunked array's size at byte {at} is not a whole number")
                        })?;
                        shape.push(d);
                    }
                }
                "chunks" => {
                    let len = self
                        .map_len(m)?
                        .ok_or("a chunked array's chunks are not a map")?;
                    for _ in 0..len {
                        self.key()?;
                        let at = self.pos;
                        let m = self.marker()?;
                        match self.ext(m)? {
                            Some((EXT_NDARRAY, payload)) => chunks.push(self.array(payload)),
                            Some(_) => chunks.push(Err("a chunk is not an array".into())),
                            None => {
                                self.pos = at;
                                self.skip(depth + 1)?;
                                chunks.push(Err("a chunk is not an array".into()));
                            }
                        }
                    }
                }
                _ => {
                    self.pos = at;
                    self.skip(depth + 1)?;
                }
            }
        }
        let Some(name) = self.name() else {
            return Ok(());
        };
        let t = match self.join(shape, chunks) {
            Ok(a) => a,
            Err(why) => self.broken(name.clone(), why),
        };
        let t = Tensor { name, ..t };
        self.tensors.push(t);
        Ok(())
    }

    /// Joins a chunked array's chunks into one tensor (its name set by the caller).
    fn join(
        &mut self,
        shape: Vec<u64>,
        chunks: Vec<Result<Array, String>>,
    ) -> Result<Tensor, String> {
        let chunks: Vec<Array> = chunks.into_iter().collect::<Result<_, _>>()?;
        let first = chunks.first().ok_or("a chunked array without chunks")?;
        let dtype = first.dtype.clone()?;
        if chunks.iter().any(|c| c.dtype.as_ref().ok() != Some(&dtype)) {
            return Err("its chunks disagree on the dtype".into());
        }
        let size = dtype.size_bytes().ok_or("its dtype has no fixed size")?;
        let total: u64 = chunks.iter().map(|c| c.bytes.len() as u64).sum();
        let need = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(size))
            .ok_or("its size overflows")?;
        if need != total {
            return Err(format!(
                "{need} bytes expected for its shape and dtype, its {} chunks hold {total}",
                chunks.len()
            ));
        }
        if self.joined.saturating_add(total) > MAX_JOINED {
            return Err(format!(
                "an array saved in chunks, not joined: over {} GiB of chunked arrays in all",
                MAX_JOINED >> 30
            ));
        }
        let mut out = Vec::with_capacity(total as usize);
        for c in &chunks {
            out.extend_from_slice(&self.data[c.bytes.clone()]);
        }
        self.joined += total;
        self.joined_count += 1;
        Ok(Tensor {
            name: String::new(),
            dtype,
            shape,
            data: TensorData::Bytes(Bytes::from(out)),
            origin: TensorOrigin::Checkpoint,
            conv_axes: None,
            quant: None,
        })
    }

    /// A complex scalar's payload: `[real, imag]`.
    fn complex(&self, payload: Range<usize>) -> Option<String> {
        let mut rd = rmp::decode::Bytes::new(self.data.get(payload)?);
        if rmp::decode::read_array_len(&mut rd).ok()? != 2 {
            return None;
        }
        let re: f64 = rmp::decode::read_f64(&mut rd).ok()?;
        let im: f64 = rmp::decode::read_f64(&mut rd).ok()?;
        Some(format!("({re}{im:+}j)"))
    }
}

/// A NumPy scalar's value as text.
fn scalar_text(a: &Array, b: &[u8]) -> String {
    let Ok(dtype) = &a.dtype else {
        return "<NumPy scalar of an unread dtype>".into();
    };
    let v = |n: usize| b.get(..n).filter(|_| b.len() == n);
    let text = match dtype {
        DType::F64 => v(8).map(|x| f64::from_le_bytes(x.try_into().unwrap_or([0; 8])).to_string()),
        DType::F32 => v(4).map(|x| f32::from_le_bytes(x.try_into().unwrap_or([0; 4])).to_string()),
        DType::F16 => v(2).map(|x| half::f16::from_le_bytes([x[0], x[1]]).to_string()),
        DType::BF16 => v(2).map(|x| half::bf16::from_le_bytes([x[0], x[1]]).to_string()),
        DType::I64 => v(8).map(|x| i64::from_le_bytes(x.try_into().unwrap_or([0; 8])).to_string()),
        DType::I32 => v(4).map(|x| i32::from_le_bytes(x.try_into().unwrap_or([0; 4])).to_string()),
        DType::I16 => v(2).map(|x| i16::from_le_bytes([x[0], x[1]]).to_string()),
        DType::I8 => v(1).map(|x| (x[0] as i8).to_string()),
        DType::U64 => v(8).map(|x| u64::from_le_bytes(x.try_into().unwrap_or([0; 8])).to_string()),
        DType::U32 => v(4).map(|x| u32::from_le_bytes(x.try_into().unwrap_or([0; 4])).to_string()),
        DType::U16 => v(2).map(|x| u16::from_le_bytes([x[0], x[1]]).to_string()),
        DType::U8 => v(1).map(|x| x[0].to_string()),
        DType::Bool => v(1).map(|x| if x[0] != 0 { "True" } else { "False" }.to_string()),
        _ => None,
    };
    text.unwrap_or_else(|| format!("<{dtype} scalar>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_maps_with_string_keys_but_not_protobuf_tags() {
        let p = Path::new("x.bin");
        assert!(sniff(p, b"\x82\xa6params"));
        assert!(sniff(p, b"\xde\x00\x20\xa4step"));
        assert!(sniff(Path::new("flax_model.msgpack"), b"\x00"));
        // ONNX: field 16 (length-delimited) is 0x82 0x01.
        assert!(!sniff(p, b"\x82\x01\x0a"));
        assert!(!sniff(p, b"\x08\x07\x12"));
    }

    #[test]
    fn a_claimed_length_past_the_end_is_an_error_not_an_allocation() {
        // A map of 2^32-1 entries, then nothing.
        let data = Bytes::from_static(b"\xdf\xff\xff\xff\xff");
        let err = load(Path::new("big.msgpack"), data)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("big.msgpack") && err.contains("truncated"),
            "{err}"
        );
        // A bin of 4 GiB.
        let data = Bytes::from_static(b"\x81\xa1a\xc6\xff\xff\xff\xf0");
        let err = load(Path::new("bin.msgpack"), data)
            .unwrap_err()
            .to_string();
        assert!(err.contains("runs past the end"), "{err}");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_an_error() {
        let mut b = Vec::new();
        for _ in 0..200 {
            b.extend_from_slice(b"\x81\xa1k");
        }
        b.push(0xc0);
        let err = load(Path::new("deep.msgpack"), Bytes::from(b))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nested more than"), "{err}");
    }

    #[test]
    fn an_array_whose_bytes_disagree_with_its_shape_is_an_error_for_that_tensor() {
        // {'w': ext1([[2, 3], 'float32', 8 bytes]), 'b': ext1([[2], 'float32', 8 bytes])}
        let mut file = vec![0x82];
        for (key, shape, data) in [("w", &[2u8, 3][..], [0u8; 8]), ("b", &[2u8][..], [0u8; 8])] {
            let mut payload = vec![0x93, 0x90 | shape.len() as u8];
            payload.extend_from_slice(shape);
            payload.push(0xa7);
            payload.extend_from_slice(b"float32");
            payload.extend_from_slice(&[0xc4, 8]);
            payload.extend_from_slice(&data);
            file.extend_from_slice(&[0xa1, key.as_bytes()[0], 0xc7, payload.len() as u8, 1]);
            file.extend_from_slice(&payload);
        }
        let model = load(Path::new("t.msgpack"), Bytes::from(file)).unwrap();
        let w = model.tensor("w").unwrap();
        match &w.data {
            TensorData::Error(e) => assert!(e.contains("24 bytes expected"), "{e}"),
            _ => panic!("w should be an error"),
        }
        let b = model.tensor("b").unwrap();
        assert!(matches!(&b.data, TensorData::Bytes(d) if d.len() == 8));
        assert_eq!(b.shape, [2]);
    }
}
