//! Decoding TensorBoard `Event` records into a [`Run`].
//!
//! The hot path (one small `Event` per scalar) walks the protobuf wire format directly over the
//! record bytes: `Event{wall_time=1, step=2, summary=5}` → `Summary{value=1}` →
//! `Value{tag=1, simple_value=2, histo=5, tensor=8, metadata=9}`, borrowing the tag as `&str` and
//! looking it up in the run's map, so a scalar costs no allocation. The rarer sub-messages
//! (`HistogramProto`, `TensorProto`, `SummaryMetadata`, hparams) are decoded with the prost
//! structs of `proto.rs`. Rejected: decoding every record with `prost::Message::decode` into
//! `Event` (two allocations per scalar — the tag `String` and the values `Vec` — where the walker
//! needs none).
//!
//! As TensorBoard does, the plugin of a tensor value comes from the `SummaryMetadata` of the first
//! value seen for that tag (writers only attach it once).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message as _;

use super::proto::{self, HistogramProto, SummaryMetadata, TensorProto};
use super::tfrecord::{ScanState, scan_records};
use super::{
    Bucket, GraphEntry, GraphKind, HParam, Histogram, ImageEntry, Issue, PrCurve, Run, TextEntry,
    TrainingError,
};

/// Which TensorBoard plugin owns a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plugin {
    Scalars,
    Histograms,
    Text,
    HParams,
    Images,
    KerasModel,
    PrCurves,
    Other,
}

impl Plugin {
    fn from_name(name: &str) -> Self {
        match name {
            "scalars" => Self::Scalars,
            "histograms" | "distributions" => Self::Histograms,
            "text" => Self::Text,
            "images" => Self::Images,
            "graph_keras_model" => Self::KerasModel,
            "pr_curves" => Self::PrCurves,
            "hparams" => Self::HParams,
            _ => Self::Other,
        }
    }
}

/// Reads one event file, incrementally: each [`EventFileReader::read_new`] decodes the records
/// appended since the last call.
#[derive(Debug)]
pub struct EventFileReader {
    path: PathBuf,
    state: ScanState,
    plugins: HashMap<String, Plugin>,
    records: u64,
}

impl EventFileReader {
    /// A reader positioned at the start of `path` (nothing is read yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            state: ScanState::default(),
            plugins: HashMap::new(),
            records: 0,
        }
    }

    /// The file this reader follows.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File offset up to which complete records have been consumed.
    pub fn offset(&self) -> u64 {
        self.state.offset
    }

    /// Number of good records decoded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Reads and decodes everything appended since the last call into `run`; returns the number of
    /// new records. A partial trailing record is left for the next call.
    pub fn read_new(&mut self, run: &mut Run) -> Result<u64, TrainingError> {
        let before = self.records;
        let base = self.state.offset;
        let path = self.path.clone();
        super::with_new_bytes(&path, base, |bytes| self.decode(bytes, base, run))?;
        Ok(self.records - before)
    }

    /// Decodes `buf`, the file's bytes from file offset `base` (which must equal the reader's
    /// offset), into `run`.
    pub fn decode(&mut self, buf: &[u8], base: u64, run: &mut Run) {
        let mut issues = Vec::new();
        let mut frame_issues = Vec::new();
        let mut decoder = Decoder {
            plugins: &mut self.plugins,
            run,
            records: 0,
            issues: &mut issues,
            file: std::sync::Arc::from(self.path.as_path()),
            data_at: 0,
            data_ptr: 0,
        };
        self.state = scan_records(
            buf,
            base,
            self.state,
            |offset, data| decoder.event(offset, data),
            |issue| frame_issues.push((issue.offset, issue.what.to_owned())),
        );
        self.records += decoder.records;
        issues.extend(frame_issues);
        issues.sort_by_key(|i| i.0);
        run.issues
            .extend(issues.into_iter().map(|(offset, what)| Issue {
                path: self.path.clone(),
                offset,
                what,
            }));
    }
}

/// Decodes a whole event file held in memory into `run` (the bench and tests use this); returns
/// the number of good records.
pub fn parse_event_bytes(path: &Path, buf: &[u8], run: &mut Run) -> u64 {
    let mut reader = EventFileReader::new(path);
    reader.decode(buf, 0, run);
    reader.records
}

struct Decoder<'a> {
    plugins: &'a mut HashMap<String, Plugin>,
    run: &'a mut Run,
    records: u64,
    issues: &'a mut Vec<(u64, String)>,
    /// The file, for images (which are read when drawn, from where they lie in it).
    file: std::sync::Arc<Path>,
    /// File offset and address of the current record's data: a slice of it lies at
    /// `data_at + (slice address − data_ptr)` in the file.
    data_at: u64,
    data_ptr: usize,
}

/// One protobuf field as it is on the wire.
enum Wire<'a> {
    Varint(u64),
    I64(u64),
    I32(u32),
    Len(&'a [u8]),
}

#[inline]
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
        if shift >= 64 {
            return None;
        }
    }
}

/// The next field at `pos`, or `None` on malformed input.
#[inline]
fn field<'a>(buf: &'a [u8], pos: &mut usize) -> Option<(u64, Wire<'a>)> {
    let key = varint(buf, pos)?;
    let wire = match key & 7 {
        0 => Wire::Varint(varint(buf, pos)?),
        1 => {
            let bytes: [u8; 8] = buf.get(*pos..*pos + 8)?.try_into().ok()?;
            *pos += 8;
            Wire::I64(u64::from_le_bytes(bytes))
        }
        2 => {
            let len = usize::try_from(varint(buf, pos)?).ok()?;
            let end = pos.checked_add(len)?;
            let slice = buf.get(*pos..end)?;
            *pos = end;
            Wire::Len(slice)
        }
        5 => {
            let bytes: [u8; 4] = buf.get(*pos..*pos + 4)?.try_into().ok()?;
            *pos += 4;
            Wire::I32(u32::from_le_bytes(bytes))
        }
        _ => return None,
    };
    Some((key >> 3, wire))
}

/// The fields of a `Summary.Value` the reader uses.
#[derive(Default)]
struct ValueView<'a> {
    tag: &'a [u8],
    simple_value: Option<f32>,
    histo: Option<&'a [u8]>,
    tensor: Option<&'a [u8]>,
    metadata: Option<&'a [u8]>,
    image: Option<&'a [u8]>,
}

impl Decoder<'_> {
    fn issue(&mut self, offset: u64, what: impl Into<String>) {
        self.issues.push((offset, what.into()));
    }

    fn event(&mut self, offset: u64, data: &[u8]) {
        // TFRecord framing: 8 bytes of length and 4 of its CRC before the data.
        self.data_at = offset + 12;
        self.data_ptr = data.as_ptr() as usize;
        let mut pos = 0;
        let mut wall_time = 0.0;
        let mut step = 0i64;
        let mut summary: Option<&[u8]> = None;
        let mut more_summaries: Vec<&[u8]> = Vec::new();
        let mut graph: Option<&[u8]> = None;
        while pos < data.len() {
            let Some((num, wire)) = field(data, &mut pos) else {
                self.issue(offset, "malformed Event protobuf; record skipped");
                return;
            };
            match (num, wire) {
                (1, Wire::I64(bits)) => wall_time = f64::from_bits(bits),
                (2, Wire::Varint(v)) => step = v as i64,
                (4, Wire::Len(g)) => graph = Some(g),
                (5, Wire::Len(s)) => {
                    if summary.is_none() {
                        summary = Some(s);
                    } else {
                        more_summaries.push(s);
                    }
                }
                _ => {}
            }
        }
        self.records += 1;
        if let Some(g) = graph.filter(|g| !g.is_empty()) {
            self.run.graph = Some(GraphEntry {
                kind: GraphKind::GraphDef,
                step,
                file: self.file.clone(),
                offset: self.file_offset(g),
                len: g.len() as u64,
            });
        }
        for s in summary.into_iter().chain(more_summaries) {
            self.summary(offset, step, wall_time, s);
        }
    }

    fn summary(&mut self, offset: u64, step: i64, wall_time: f64, data: &[u8]) {
        let mut pos = 0;
        while pos < data.len() {
            match field(data, &mut pos) {
                Some((1, Wire::Len(v))) => self.value(offset, step, wall_time, v),
                Some(_) => {}
                None => {
                    self.issue(offset, "malformed Summary protobuf");
                    return;
                }
            }
        }
    }

    fn value(&mut self, offset: u64, step: i64, wall_time: f64, data: &[u8]) {
        let mut view = ValueView::default();
        let mut pos = 0;
        while pos < data.len() {
            match field(data, &mut pos) {
                Some((1, Wire::Len(s))) => view.tag = s,
                Some((2, Wire::I32(bits))) => view.simple_value = Some(f32::from_bits(bits)),
                Some((4, Wire::Len(s))) => view.image = Some(s),
                Some((5, Wire::Len(s))) => view.histo = Some(s),
                Some((8, Wire::Len(s))) => view.tensor = Some(s),
                Some((9, Wire::Len(s))) => view.metadata = Some(s),
                Some(_) => {}
                None => {
                    self.issue(offset, "malformed Summary.Value protobuf");
                    return;
                }
            }
        }
        let Ok(tag) = std::str::from_utf8(view.tag) else {
            self.issue(offset, "summary tag is not UTF-8");
            return;
        };
        // Fast path: old-style scalar, no metadata.
        if let (Some(v), None) = (view.simple_value, view.metadata) {
            self.run.push_scalar(tag, step, wall_time, f64::from(v));
            return;
        }
        let plugin = match view.metadata {
            Some(md) => self.metadata(offset, tag, md),
            None => self.plugins.get(tag).copied(),
        };
        if let Some(v) = view.simple_value {
            self.run.push_scalar(tag, step, wall_time, f64::from(v));
        } else if let Some(image) = view.image {
            self.summary_image(offset, tag, step, wall_time, image);
        } else if let Some(h) = view.histo {
            match HistogramProto::decode(h) {
                Ok(h) => self.push_histogram(tag, histogram_from_proto(step, wall_time, &h)),
                Err(_) => self.issue(offset, format!("malformed HistogramProto for tag {tag}")),
            }
        } else if let Some(t) = view.tensor {
            if plugin == Some(Plugin::Images) {
                self.tensor_images(offset, tag, step, wall_time, t);
                return;
            }
            if plugin == Some(Plugin::KerasModel) {
                self.keras_model(step, t);
                return;
            }
            let Ok(tensor) = TensorProto::decode(t) else {
                self.issue(offset, format!("malformed TensorProto for tag {tag}"));
                return;
            };
            self.tensor(offset, tag, step, wall_time, plugin, &tensor);
        }
    }

    /// Decodes a value's metadata, remembers the tag's plugin (first one wins) and reads hparams.
    fn metadata(&mut self, offset: u64, tag: &str, data: &[u8]) -> Option<Plugin> {
        let Ok(md) = SummaryMetadata::decode(data) else {
            self.issue(offset, format!("malformed SummaryMetadata for tag {tag}"));
            return self.plugins.get(tag).copied();
        };
        let Some(plugin_data) = md.plugin_data else {
            return self.plugins.get(tag).copied();
        };
        let plugin = Plugin::from_name(&plugin_data.plugin_name);
        if plugin == Plugin::HParams {
            self.hparams(offset, &plugin_data.content);
        }
        Some(*self.plugins.entry(tag.to_owned()).or_insert(plugin))
    }

    fn hparams(&mut self, offset: u64, content: &[u8]) {
        let Ok(data) = proto::HParamsPluginData::decode(content) else {
            self.issue(offset, "malformed hparams plugin data");
            return;
        };
        let Some(start) = data.session_start_info else {
            return;
        };
        for (name, value) in start.hparams {
            let value = if let Some(n) = value.number_value {
                HParam::Number(n)
            } else if let Some(s) = value.string_value {
                HParam::Text(s)
            } else if let Some(b) = value.bool_value {
                HParam::Bool(b)
            } else {
                continue;
            };
            self.run.hparams.insert(name, value);
        }
    }

    fn tensor(
        &mut self,
        offset: u64,
        tag: &str,
        step: i64,
        wall_time: f64,
        plugin: Option<Plugin>,
        tensor: &TensorProto,
    ) {
        match plugin {
            Some(Plugin::Scalars) | None => {
                if tensor.dtype == proto::DT_STRING {
                    return;
                }
                match tensor_values(tensor).as_deref() {
                    Some([v]) => self.run.push_scalar(tag, step, wall_time, *v),
                    // Without metadata only a one-element number is taken as a scalar.
                    _ if plugin.is_none() => {}
                    _ => self.issue(
                        offset,
                        format!("scalar tag {tag} holds a non-scalar tensor"),
                    ),
                }
            }
            Some(Plugin::Histograms) => match tensor_values(tensor) {
                Some(values) if values.len().is_multiple_of(3) => {
                    self.push_histogram(tag, histogram_from_triples(step, wall_time, &values));
                }
                _ => self.issue(
                    offset,
                    format!("histogram tag {tag} is not a [k, 3] tensor"),
                ),
            },
            Some(Plugin::Text) => {
                let text: Vec<String> = tensor
                    .string_val
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                self.run
                    .texts
                    .entry(tag.to_owned())
                    .or_default()
                    .push(TextEntry {
                        step,
                        wall_time,
                        text: text.join("\n"),
                    });
            }
            // Read from the wire before decoding (see `value`).
            Some(Plugin::Images) => {}
            Some(Plugin::PrCurves) => match tensor_values(tensor) {
                // Six rows (TP, FP, TN, FN, precision, recall), one column per threshold.
                Some(v) if !v.is_empty() && v.len().is_multiple_of(6) => {
                    let n = v.len() / 6;
                    let row = |k: usize| v[k * n..(k + 1) * n].to_vec();
                    let curve = PrCurve {
                        step,
                        wall_time,
                        tp: row(0),
                        fp: row(1),
                        tn: row(2),
                        fn_: row(3),
                        precision: row(4),
                        recall: row(5),
                    };
                    self.run
                        .pr_curves
                        .entry(tag.to_owned())
                        .or_default()
                        .push(curve);
                }
                _ => self.issue(
                    offset,
                    format!("PR curve tag {tag} is not a [6, thresholds] tensor"),
                ),
            },
            Some(Plugin::HParams | Plugin::KerasModel | Plugin::Other) => {}
        }
    }

    /// Where `slice` (a part of the current record's data) lies in the file.
    fn file_offset(&self, slice: &[u8]) -> u64 {
        self.data_at + (slice.as_ptr() as usize).wrapping_sub(self.data_ptr) as u64
    }

    fn push_image(&mut self, tag: &str, entry: ImageEntry) {
        match self.run.images.get_mut(tag) {
            Some(list) => list.push(entry),
            None => {
                self.run.images.insert(tag.to_owned(), vec![entry]);
            }
        }
    }

    /// An old-style `Summary.Image` (`height = 1, width = 2, colorspace = 3,
    /// encoded_image_string = 4`), as tensorboardX and `torch.utils.tensorboard` write them.
    fn summary_image(&mut self, offset: u64, tag: &str, step: i64, wall_time: f64, data: &[u8]) {
        let (mut height, mut width, mut encoded) = (0u64, 0u64, None);
        let mut pos = 0;
        while pos < data.len() {
            match field(data, &mut pos) {
                Some((1, Wire::Varint(v))) => height = v,
                Some((2, Wire::Varint(v))) => width = v,
                Some((4, Wire::Len(s))) => encoded = Some(s),
                Some(_) => {}
                None => {
                    self.issue(offset, format!("malformed Summary.Image for tag {tag}"));
                    return;
                }
            }
        }
        let Some(encoded) = encoded else { return };
        let entry = ImageEntry {
            step,
            wall_time_bits: wall_time.to_bits(),
            sample: 0,
            size: [
                u32::try_from(width).unwrap_or(0),
                u32::try_from(height).unwrap_or(0),
            ],
            file: self.file.clone(),
            offset: self.file_offset(encoded),
            len: encoded.len() as u64,
        };
        self.push_image(tag, entry);
    }

    /// Keras's model config (a one-string tensor of JSON), noted by where it lies; a `GraphDef`
    /// logged in the same run is preferred (it holds the ops).
    fn keras_model(&mut self, step: i64, tensor: &[u8]) {
        if self
            .run
            .graph
            .as_ref()
            .is_some_and(|g| g.kind == GraphKind::GraphDef)
        {
            return;
        }
        let mut pos = 0;
        while pos < tensor.len() {
            match field(tensor, &mut pos) {
                Some((8, Wire::Len(s))) => {
                    self.run.graph = Some(GraphEntry {
                        kind: GraphKind::KerasConfig,
                        step,
                        file: self.file.clone(),
                        offset: self.file_offset(s),
                        len: s.len() as u64,
                    });
                    return;
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    /// The images plugin's tensor (`tf.summary.image`): a string tensor of the width, the height,
    /// then one encoded image per sample. Walked on the wire (not decoded by prost, which would
    /// copy the images) to keep each image's place in the file.
    fn tensor_images(&mut self, offset: u64, tag: &str, step: i64, wall_time: f64, tensor: &[u8]) {
        let mut strings: Vec<&[u8]> = Vec::new();
        let mut pos = 0;
        while pos < tensor.len() {
            match field(tensor, &mut pos) {
                Some((8, Wire::Len(s))) => strings.push(s),
                Some(_) => {}
                None => {
                    self.issue(offset, format!("malformed image tensor for tag {tag}"));
                    return;
                }
            }
        }
        let number = |s: &[u8]| std::str::from_utf8(s).ok()?.trim().parse::<u32>().ok();
        let (Some(width), Some(height)) = (
            strings.first().and_then(|s| number(s)),
            strings.get(1).and_then(|s| number(s)),
        ) else {
            self.issue(
                offset,
                format!("image tag {tag}: the tensor does not start with width and height"),
            );
            return;
        };
        for (sample, encoded) in strings.iter().skip(2).enumerate() {
            let entry = ImageEntry {
                step,
                wall_time_bits: wall_time.to_bits(),
                sample,
                size: [width, height],
                file: self.file.clone(),
                offset: self.file_offset(encoded),
                len: encoded.len() as u64,
            };
            self.push_image(tag, entry);
        }
    }

    fn push_histogram(&mut self, tag: &str, h: Histogram) {
        match self.run.histograms.get_mut(tag) {
            Some(series) => series.points.push(h),
            None => {
                self.run
                    .histograms
                    .insert(tag.to_owned(), super::HistogramSeries { points: vec![h] });
            }
        }
    }
}

/// The numeric values of a tensor (typed fields or `tensor_content`), or `None` for strings and
/// unknown dtypes.
pub fn tensor_values(t: &TensorProto) -> Option<Vec<f64>> {
    let content = &t.tensor_content;
    let from_content = !content.is_empty();
    let values = match t.dtype {
        proto::DT_FLOAT if from_content => content
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        proto::DT_FLOAT => t.float_val.iter().map(|&v| f64::from(v)).collect(),
        proto::DT_DOUBLE if from_content => content
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        proto::DT_DOUBLE => t.double_val.clone(),
        proto::DT_HALF if from_content => content
            .chunks_exact(2)
            .map(|c| f64::from(half::f16::from_le_bytes([c[0], c[1]])))
            .collect(),
        proto::DT_HALF => t
            .half_val
            .iter()
            .map(|&v| f64::from(half::f16::from_bits(v as u16)))
            .collect(),
        proto::DT_BFLOAT16 if from_content => content
            .chunks_exact(2)
            .map(|c| f64::from(half::bf16::from_le_bytes([c[0], c[1]])))
            .collect(),
        proto::DT_BFLOAT16 => t
            .half_val
            .iter()
            .map(|&v| f64::from(half::bf16::from_bits(v as u16)))
            .collect(),
        proto::DT_INT32 if from_content => content
            .chunks_exact(4)
            .map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        proto::DT_INT32 => t.int_val.iter().map(|&v| f64::from(v)).collect(),
        proto::DT_INT64 if from_content => content
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64)
            .collect(),
        proto::DT_INT64 => t.int64_val.iter().map(|&v| v as f64).collect(),
        proto::DT_BOOL => t.bool_val.iter().map(|&v| f64::from(u8::from(v))).collect(),
        _ => return None,
    };
    Some(values)
}

/// A `HistogramProto` as buckets, the way TensorBoard's `data_compat` migrates it: empty buckets
/// at both ends dropped, the outer edges replaced by `min` and `max`.
pub fn histogram_from_proto(step: i64, wall_time: f64, h: &HistogramProto) -> Histogram {
    let counts = &h.bucket;
    let start = counts.iter().position(|&c| c > 0.0);
    let end = counts.iter().rposition(|&c| c > 0.0);
    let mut buckets = Vec::new();
    if let (Some(start), Some(end)) = (start, end) {
        for i in start..=end {
            let left = if i == start {
                h.min
            } else {
                h.bucket_limit.get(i - 1).copied().unwrap_or(h.min)
            };
            let right = if i == end {
                h.max
            } else {
                h.bucket_limit.get(i).copied().unwrap_or(h.max)
            };
            buckets.push(Bucket {
                left,
                right,
                count: counts.get(i).copied().unwrap_or(0.0),
            });
        }
    }
    Histogram {
        step,
        wall_time,
        min: h.min,
        max: h.max,
        num: h.num,
        sum: h.sum,
        sum_squares: h.sum_squares,
        buckets,
    }
}

/// A tensor-encoded histogram (`[k, 3]` rows of left edge, right edge, count).
pub fn histogram_from_triples(step: i64, wall_time: f64, values: &[f64]) -> Histogram {
    let buckets: Vec<Bucket> = values
        .chunks_exact(3)
        .map(|c| Bucket {
            left: c[0],
            right: c[1],
            count: c[2],
        })
        .collect();
    let num = buckets.iter().map(|b| b.count).sum();
    let sum = buckets
        .iter()
        .map(|b| b.count * 0.5 * (b.left + b.right))
        .sum();
    Histogram {
        step,
        wall_time,
        min: buckets.first().map_or(f64::NAN, |b| b.left),
        max: buckets.last().map_or(f64::NAN, |b| b.right),
        num,
        sum,
        sum_squares: f64::NAN,
        buckets,
    }
}
