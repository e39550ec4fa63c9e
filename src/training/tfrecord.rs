//! TFRecord framing: `u64 length (LE) | u32 masked CRC32C(length) | data | u32 masked CRC32C(data)`.
//!
//! [`scan_records`] walks a byte buffer and hands each verified record to a callback. Both CRCs are
//! checked (hardware CRC32C through the `crc32c` crate). On a bad length CRC the length cannot be
//! trusted, so the scanner reports the offset and moves forward one byte at a time until a header
//! whose length CRC verifies and whose data CRC verifies too (the chance of a false header passing
//! both is ~2^-64). On a bad data CRC the length is trusted and only that record is skipped. A record
//! that runs past the end of the buffer is a file still being written: scanning stops before it and
//! the returned offset lets the caller re-read from there once the file has grown.
//!
//! Rejected: a `BufRead` streaming reader (one `read` call per record; the whole-buffer scan is what
//! makes 300 MB/s easy) and giving up on the first bad record (TensorBoard's reader does, losing the
//! rest of the file).

/// Bytes of a record header: length + its CRC.
pub const HEADER_LEN: usize = 12;
/// Bytes of the data CRC after the data.
pub const FOOTER_LEN: usize = 4;

/// TFRecord's CRC mask (from `tensorflow/core/lib/hash/crc32c.h`).
#[inline]
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A problem found while scanning; scanning goes on after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordIssue {
    /// Byte offset (in the file) of the bad record's header.
    pub offset: u64,
    /// What is wrong.
    pub what: &'static str,
}

/// Where a scan stopped and whether it is in the middle of a resync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanState {
    /// File offset of the next byte to look at.
    pub offset: u64,
    /// True while looking for the next good header after a corrupt one (no new issue is reported
    /// for the bytes skipped).
    pub resyncing: bool,
}

#[inline]
fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

#[inline]
fn read_u64(buf: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = buf.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Outcome of looking at one position.
enum Probe<'a> {
    /// A good record: its data and the position after it.
    Record(&'a [u8], usize),
    /// Not enough bytes yet to decide.
    Incomplete,
    /// The length CRC does not verify.
    BadLength,
    /// Length verified, data CRC does not: the position after the record.
    BadData(usize),
}

#[inline]
fn probe(buf: &[u8], pos: usize) -> Probe<'_> {
    let (Some(len), Some(len_crc)) = (read_u64(buf, pos), read_u32(buf, pos + 8)) else {
        return Probe::Incomplete;
    };
    let Some(len_bytes) = buf.get(pos..pos + 8) else {
        return Probe::Incomplete;
    };
    if masked_crc32c(len_bytes) != len_crc {
        return Probe::BadLength;
    }
    let data_start = pos + HEADER_LEN;
    // Checked: `len` comes from the file and may be anything.
    let Some(data_end) = usize::try_from(len)
        .ok()
        .and_then(|l| data_start.checked_add(l))
    else {
        return Probe::BadLength;
    };
    let (Some(data), Some(data_crc)) = (buf.get(data_start..data_end), read_u32(buf, data_end))
    else {
        return Probe::Incomplete;
    };
    let next = data_end + FOOTER_LEN;
    if masked_crc32c(data) != data_crc {
        return Probe::BadData(next);
    }
    Probe::Record(data, next)
}

/// Scans `buf`, which holds the file's bytes starting at file offset `base`, from `state.offset`.
///
/// Calls `on_record(file_offset, data)` for every verified record and `on_issue` for every corrupt
/// one; returns the state to resume from (the start of an incomplete trailing record, if any).
pub fn scan_records<'a>(
    buf: &'a [u8],
    base: u64,
    mut state: ScanState,
    mut on_record: impl FnMut(u64, &'a [u8]),
    mut on_issue: impl FnMut(RecordIssue),
) -> ScanState {
    let Some(mut pos) = state
        .offset
        .checked_sub(base)
        .and_then(|p| usize::try_from(p).ok())
    else {
        return state;
    };
    loop {
        if pos >= buf.len() {
            break;
        }
        match probe(buf, pos) {
            Probe::Record(data, next) => {
                state.resyncing = false;
                on_record(base + pos as u64, data);
                pos = next;
            }
            // The rest is a record still being written (or too short to judge): keep it for later.
            Probe::Incomplete => break,
            Probe::BadLength => {
                if !state.resyncing {
                    on_issue(RecordIssue {
                        offset: base + pos as u64,
                        what: "length CRC mismatch; skipping to the next good record",
                    });
                    state.resyncing = true;
                }
                pos += 1;
            }
            Probe::BadData(next) => {
                if state.resyncing {
                    // A chance header match inside garbage; keep scanning byte by byte.
                    pos += 1;
                } else {
                    on_issue(RecordIssue {
                        offset: base + pos as u64,
                        what: "data CRC mismatch; record skipped",
                    });
                    pos = next;
                }
            }
        }
    }
    state.offset = base + pos as u64;
    state
}

/// Appends one framed record to `out`.
pub fn write_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            write_record(&mut out, r);
        }
        out
    }

    type Scan = (Vec<(u64, Vec<u8>)>, Vec<RecordIssue>, ScanState);

    fn collect(buf: &[u8], state: ScanState) -> Scan {
        let mut recs = Vec::new();
        let mut issues = Vec::new();
        let end = scan_records(
            buf,
            0,
            state,
            |o, d| recs.push((o, d.to_vec())),
            |i| issues.push(i),
        );
        (recs, issues, end)
    }

    #[test]
    fn known_masked_crc() {
        // The masked CRC of an empty string, as TensorFlow computes it.
        assert_eq!(crc32c::crc32c(b""), 0);
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
        // CRC32C("123456789") = 0xE3069283 (the standard check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn reads_all_records() {
        let buf = framed(&[b"one", b"", b"three"]);
        let (recs, issues, end) = collect(&buf, ScanState::default());
        assert!(issues.is_empty());
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0], (0, b"one".to_vec()));
        assert_eq!(recs[1].0, 19);
        assert_eq!(recs[2].1, b"three".to_vec());
        assert_eq!(end.offset, buf.len() as u64);
    }

    #[test]
    fn corrupt_length_resyncs() {
        let mut buf = framed(&[b"aaaa", b"bbbb", b"cccc"]);
        buf[20 + 2] ^= 0x40; // inside the second record's length
        let (recs, issues, _) = collect(&buf, ScanState::default());
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].offset, 20);
        let data: Vec<_> = recs.iter().map(|r| r.1.clone()).collect();
        assert_eq!(data, vec![b"aaaa".to_vec(), b"cccc".to_vec()]);
    }

    #[test]
    fn corrupt_data_skips_one() {
        let mut buf = framed(&[b"aaaa", b"bbbb", b"cccc"]);
        buf[20 + 12 + 1] ^= 1; // inside the second record's data
        let (recs, issues, _) = collect(&buf, ScanState::default());
        assert_eq!(
            issues,
            vec![RecordIssue {
                offset: 20,
                what: "data CRC mismatch; record skipped"
            }]
        );
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].0, 40);
    }

    #[test]
    fn partial_then_grown() {
        let full = framed(&[b"aaaa", b"bbbbbbbb"]);
        let cut = &full[..full.len() - 3];
        let (recs, issues, end) = collect(cut, ScanState::default());
        assert!(issues.is_empty());
        assert_eq!(recs.len(), 1);
        assert_eq!(end.offset, 20);
        // The file grew: resume from the returned offset with only the new bytes.
        let tail = &full[20..];
        let mut got = Vec::new();
        let end2 = scan_records(
            tail,
            20,
            end,
            |o, d| got.push((o, d.to_vec())),
            |_| panic!(),
        );
        assert_eq!(got, vec![(20, b"bbbbbbbb".to_vec())]);
        assert_eq!(end2.offset, full.len() as u64);
    }

    #[test]
    fn huge_length_is_not_trusted() {
        let mut buf = Vec::new();
        let len = u64::MAX.to_le_bytes();
        buf.extend_from_slice(&len);
        buf.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        buf.extend_from_slice(&framed(&[b"ok"]));
        let (recs, issues, _) = collect(&buf, ScanState::default());
        assert_eq!(issues.len(), 1);
        assert_eq!(recs.len(), 1);
    }
}
