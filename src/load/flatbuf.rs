//! A bounds-checked flatbuffer reader for the formats that are flatbuffers (TFLite, ExecuTorch):
//! every offset, vtable and vector is checked against the buffer, so a damaged file is an error
//! naming the byte, never a panic.

pub(super) type Fb<T> = Result<T, String>;

pub(super) fn bytes_at<const N: usize>(buf: &[u8], at: usize) -> Fb<[u8; N]> {
    at.checked_add(N)
        .and_then(|end| buf.get(at..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("a read of {N} bytes at byte {at} runs past the end"))
}

pub(super) fn u32_at(buf: &[u8], at: usize) -> Fb<u32> {
    bytes_at::<4>(buf, at).map(u32::from_le_bytes)
}

/// A table: its position and its vtable's.
#[derive(Clone, Copy)]
pub(super) struct Table<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
    vtable: usize,
    vt_len: usize,
}

/// A vector: where its elements start, how many, and each one's size.
#[derive(Clone, Copy)]
pub(super) struct Vector<'a> {
    pub buf: &'a [u8],
    pub start: usize,
    pub len: usize,
    pub elem: usize,
}

impl<'a> Table<'a> {
    pub fn root(buf: &'a [u8]) -> Fb<Self> {
        let at = u32_at(buf, 0)? as usize;
        Table::at(buf, at)
    }

    pub fn at(buf: &'a [u8], pos: usize) -> Fb<Self> {
        let soff = i32::from_le_bytes(bytes_at::<4>(buf, pos)?);
        let vtable = (pos as i64)
            .checked_sub(i64::from(soff))
            .filter(|&v| v >= 0)
            .map(|v| v as usize)
            .ok_or_else(|| format!("the table at byte {pos} points its vtable before the file"))?;
        let vt_len = u16::from_le_bytes(bytes_at::<2>(buf, vtable)?) as usize;
        let obj_len = u16::from_le_bytes(bytes_at::<2>(buf, vtable + 2)?) as usize;
        if vt_len < 4 || !vt_len.is_multiple_of(2) || vtable + vt_len > buf.len() {
            return Err(format!(
                "the table at byte {pos} has a bad vtable at byte {vtable}"
            ));
        }
        if pos + obj_len > buf.len() {
            return Err(format!("the table at byte {pos} runs past the end"));
        }
        Ok(Table {
            buf,
            pos,
            vtable,
            vt_len,
        })
    }

    /// Where field `id` is stored, `None` when absent (its default applies).
    pub fn slot(&self, id: usize) -> Fb<Option<usize>> {
        let entry = 4 + 2 * id;
        if entry + 2 > self.vt_len {
            return Ok(None);
        }
        let off = u16::from_le_bytes(bytes_at::<2>(self.buf, self.vtable + entry)?) as usize;
        Ok((off != 0).then_some(self.pos + off))
    }

    pub fn scalar<const N: usize>(&self, id: usize) -> Fb<Option<[u8; N]>> {
        match self.slot(id)? {
            Some(at) => bytes_at::<N>(self.buf, at).map(Some),
            None => Ok(None),
        }
    }

    pub fn u8(&self, id: usize) -> Fb<u8> {
        Ok(self.scalar::<1>(id)?.map_or(0, |b| b[0]))
    }

    pub fn i32(&self, id: usize, default: i32) -> Fb<i32> {
        Ok(self.scalar::<4>(id)?.map_or(default, i32::from_le_bytes))
    }

    pub fn u32(&self, id: usize) -> Fb<u32> {
        Ok(self.scalar::<4>(id)?.map_or(0, u32::from_le_bytes))
    }

    pub fn u64(&self, id: usize) -> Fb<u64> {
        Ok(self.scalar::<8>(id)?.map_or(0, u64::from_le_bytes))
    }

    /// The target of an offset field.
    pub fn follow(&self, id: usize) -> Fb<Option<usize>> {
        let Some(at) = self.slot(id)? else {
            return Ok(None);
        };
        let off = u32_at(self.buf, at)? as usize;
        at.checked_add(off)
            .filter(|&t| t < self.buf.len())
            .map(Some)
            .ok_or_else(|| format!("the offset at byte {at} points past the end"))
    }

    pub fn table(&self, id: usize) -> Fb<Option<Table<'a>>> {
        match self.follow(id)? {
            Some(at) => Table::at(self.buf, at).map(Some),
            None => Ok(None),
        }
    }

    pub fn vector(&self, id: usize, elem: usize) -> Fb<Option<Vector<'a>>> {
        let Some(at) = self.follow(id)? else {
            return Ok(None);
        };
        let len = u32_at(self.buf, at)? as usize;
        let start = at + 4;
        let fits = len
            .checked_mul(elem)
            .and_then(|n| n.checked_add(start))
            .is_some_and(|end| end <= self.buf.len());
        if !fits {
            return Err(format!(
                "the vector of {len} elements at byte {at} runs past the end"
            ));
        }
        Ok(Some(Vector {
            buf: self.buf,
            start,
            len,
            elem,
        }))
    }

    pub fn str(&self, id: usize) -> Fb<Option<String>> {
        Ok(self
            .vector(id, 1)?
            .map(|v| String::from_utf8_lossy(v.bytes()).into_owned()))
    }

    pub fn i32s(&self, id: usize) -> Fb<Vec<i32>> {
        Ok(self.vector(id, 4)?.map(|v| v.i32s()).unwrap_or_default())
    }

    /// A vector of tables.
    pub fn tables(&self, id: usize) -> Fb<Vec<Table<'a>>> {
        let Some(v) = self.vector(id, 4)? else {
            return Ok(Vec::new());
        };
        (0..v.len).map(|i| v.table(i)).collect()
    }
}

impl<'a> Vector<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        &self.buf[self.start..self.start + self.len * self.elem]
    }

    pub fn i32s(&self) -> Vec<i32> {
        self.bytes()
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    pub fn table(&self, i: usize) -> Fb<Table<'a>> {
        let at = self.start + 4 * i;
        let off = u32_at(self.buf, at)? as usize;
        Table::at(self.buf, at + off)
    }
}
