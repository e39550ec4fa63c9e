//! GGUF (llama.cpp) loader: header, metadata key/values, tensor infos, data mapped at the aligned
//! offset. Every count and length is checked against the bytes left before it is used, so a hostile
//! header cannot make us allocate or loop by its numbers.

use std::path::Path;

use bytes::Bytes;

use super::{LoadError, family};
use crate::model::{DType, Format, GgmlType, Model, Tensor, TensorData, TensorOrigin};

struct Reader<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: impl std::fmt::Display) -> LoadError {
        LoadError::corrupt(self.path, format!("GGUF: {what} (at byte {})", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LoadError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(self.err(format!(
                "truncated: {n} more bytes needed, {} left",
                self.data.len() - self.pos
            )));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, LoadError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, LoadError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self) -> Result<String, LoadError> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| self.err("string length overflows"))?;
        let b = self.take(n)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    /// Reads one value of `ty`, returning a short display form.
    fn value(&mut self, ty: u32, depth: u32) -> Result<String, LoadError> {
        Ok(match ty {
            0 => self.take(1)?[0].to_string(),
            1 => (self.take(1)?[0] as i8).to_string(),
            2 => {
                let b = self.take(2)?;
                u16::from_le_bytes([b[0], b[1]]).to_string()
            }
            3 => {
                let b = self.take(2)?;
                i16::from_le_bytes([b[0], b[1]]).to_string()
            }
            4 => self.u32()?.to_string(),
            5 => (self.u32()? as i32).to_string(),
            6 => f32::from_bits(self.u32()?).to_string(),
            7 => (self.take(1)?[0] != 0).to_string(),
            8 => self.string()?,
            9 => {
                if depth > 4 {
                    return Err(self.err("arrays nested too deeply"));
                }
                let elem = self.u32()?;
                let count = self.u64()?;
                // Each element takes at least one byte: a count beyond what is left is corrupt.
                if count > (self.data.len() - self.pos) as u64 {
                    return Err(
                        self.err(format!("array of {count} elements is longer than the file"))
                    );
                }
                let mut shown = Vec::new();
                for i in 0..count {
                    let v = self.value(elem, depth + 1)?;
                    if i < 8 {
                        shown.push(v);
                    }
                }
                if count > 8 {
                    format!("[{}, … ({count} items)]", shown.join(", "))
                } else {
                    format!("[{}]", shown.join(", "))
                }
            }
            10 => self.u64()?.to_string(),
            11 => (self.u64()? as i64).to_string(),
            12 => f64::from_bits(self.u64()?).to_string(),
            other => return Err(self.err(format!("unknown metadata value type {other}"))),
        })
    }
}

pub(super) fn load(path: &Path, data: Bytes) -> Result<Model, LoadError> {
    let mut r = Reader {
        path,
        data: &data,
        pos: 0,
    };
    if r.take(4)? != b"GGUF" {
        return Err(r.err("bad magic"));
    }
    let version = r.u32()?;
    if !(1..=3).contains(&version) {
        return Err(r.err(format!("unsupported GGUF version {version}")));
    }
    let (tensor_count, kv_count) = if version == 1 {
        (r.u32()? as u64, r.u32()? as u64)
    } else {
        (r.u64()?, r.u64()?)
    };
    // A tensor info and a KV each take well over 8 bytes.
    let left = (data.len() - r.pos) as u64;
    if tensor_count > left / 8 || kv_count > left / 8 {
        return Err(r.err(format!(
            "{tensor_count} tensors / {kv_count} keys cannot fit in the file"
        )));
    }
    let mut model = Model::new(path, Format::Gguf);
    model.metadata.ir_version = Some(version as i64);
    model.metadata.shards = 1;
    // The header fields, named as gguf-py's GGUFReader lists them among its fields.
    model
        .metadata
        .properties
        .push(("GGUF.version".into(), version.to_string()));
    model
        .metadata
        .properties
        .push(("GGUF.tensor_count".into(), tensor_count.to_string()));
    model
        .metadata
        .properties
        .push(("GGUF.kv_count".into(), kv_count.to_string()));
    let mut alignment = 32u64;
    for _ in 0..kv_count {
        let key = r.string()?;
        let ty = r.u32()?;
        let value = r.value(ty, 0)?;
        match key.as_str() {
            "general.architecture" => model.metadata.architecture = Some(value.clone()),
            "general.alignment" => {
                alignment = value
                    .parse()
                    .ok()
                    .filter(|&a: &u64| a > 0 && a.is_power_of_two())
                    .ok_or_else(|| r.err(format!("bad alignment {value}")))?;
            }
            "general.name" => model.metadata.producer = Some(value.clone()),
            _ => {}
        }
        model.metadata.properties.push((key, value));
    }
    struct Info {
        name: String,
        dims: Vec<u64>,
        ty: u32,
        offset: u64,
    }
    let mut infos = Vec::new();
    for _ in 0..tensor_count {
        let name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims > 8 {
            return Err(r.err(format!("tensor {name:?} has {n_dims} dimensions")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(if version == 1 {
                r.u32()? as u64
            } else {
                r.u64()?
            });
        }
        let ty = r.u32()?;
        let offset = r.u64()?;
        infos.push(Info {
            name,
            dims,
            ty,
            offset,
        });
    }
    let start = (r.pos as u64).div_ceil(alignment) * alignment;
    for info in infos {
        let dtype = match GgmlType(info.ty) {
            GgmlType(0) => DType::F32,
            GgmlType(1) => DType::F16,
            GgmlType(24) => DType::I8,
            GgmlType(25) => DType::I16,
            GgmlType(26) => DType::I32,
            GgmlType(27) => DType::I64,
            GgmlType(28) => DType::F64,
            GgmlType(30) => DType::BF16,
            t => DType::Ggml(t),
        };
        let mut tensor = Tensor {
            name: info.name.clone(),
            dtype,
            shape: info.dims.clone(),
            data: TensorData::Missing,
            origin: TensorOrigin::Checkpoint,
            conv_axes: None,
            quant: None,
        };
        let elements = info.dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let bytes = elements.and_then(|n| dtype.bytes_for(n));
        tensor.data = match (elements, bytes) {
            (None, _) => {
                return Err(r.err(format!(
                    "tensor {:?}: shape {:?} overflows",
                    info.name, info.dims
                )));
            }
            // No GGML type packs more than 8 elements in a byte: a shape beyond that cannot
            // have its data in the file, whatever its type (and its byte count may overflow).
            (Some(n), _) if n / 8 > data.len() as u64 => {
                return Err(r.err(format!(
                    "tensor {:?}: shape {:?} ({n} elements) is larger than the file could hold",
                    info.name, info.dims
                )));
            }
            (Some(_), None) => TensorData::Error(format!(
                "{}: tensor {:?}: GGML type {} unknown or shape not a whole number of blocks",
                path.display(),
                info.name,
                info.ty
            )),
            (Some(_), Some(len)) => {
                let s = start.checked_add(info.offset);
                let e = s.and_then(|s| s.checked_add(len));
                match (s, e) {
                    (Some(s), Some(e)) if e <= data.len() as u64 => {
                        TensorData::Bytes(data.slice(s as usize..e as usize))
                    }
                    _ => {
                        return Err(LoadError::corrupt(
                            path,
                            format!(
                                "GGUF: tensor {:?} data (offset {}, {len} bytes after the data start {start}) lies beyond the file ({} bytes)",
                                info.name,
                                info.offset,
                                data.len()
                            ),
                        ));
                    }
                }
            }
        };
        model.add_tensor(tensor);
    }
    family::build_checkpoint_graph(&mut model);
    Ok(model)
}
