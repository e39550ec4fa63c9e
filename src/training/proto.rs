//! TensorBoard protobuf messages, hand-written with the field numbers of TensorBoard's protos
//! (`tensorboard/compat/proto/{event,summary,tensor,tensor_shape,types,histogram}.proto` and
//! `plugins/hparams/plugin_data.proto`, `google/protobuf/struct.proto`).
//!
//! Only what modelmap reads or writes is declared; prost skips unknown fields. The hot scalar path
//! does not decode `Event` through these structs (see `events.rs`, which walks the wire format
//! without allocating); they serve the writer, the rarer sub-messages (histograms, tensors,
//! metadata, hparams) and the tests.

use std::collections::HashMap;

/// `tensorflow.Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global training step.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// `"brain.Event:2"` in the first record of a file.
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    /// The summary values of this step.
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values (field 1, repeated).
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The tag, e.g. `train/loss`.
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Old-style scalar.
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    /// Old-style histogram.
    #[prost(message, optional, tag = "5")]
    pub histo: Option<HistogramProto>,
    /// New-style (tensor) summary; its meaning comes from `metadata.plugin_data.plugin_name`.
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    /// Usually present only on the first value of a tag.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

/// `tensorflow.HistogramProto`: bucket `i` spans `bucket_limit[i-1] .. bucket_limit[i]`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// Smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// Largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// Number of values.
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Sum of values.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// Sum of squared values.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// Right edge of each bucket.
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// Count of each bucket.
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// `tensorflow.SummaryMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// Which plugin owns the value.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
    /// Display name.
    #[prost(string, tag = "2")]
    pub display_name: String,
    /// Description.
    #[prost(string, tag = "3")]
    pub summary_description: String,
    /// `DataClass` enum (1 scalar, 2 tensor, 3 blob sequence).
    #[prost(int32, tag = "4")]
    pub data_class: i32,
}

/// `tensorflow.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// `scalars`, `histograms`, `text`, `hparams`, …
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// Plugin-specific bytes (for hparams a serialized [`HParamsPluginData`]).
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorflow.TensorProto` (the value fields TensorBoard summaries use).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// `DataType` enum, see the `DT_*` constants.
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// The shape.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// Raw little-endian contents (used instead of the typed fields when set).
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    /// `DT_FLOAT` values.
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    /// `DT_DOUBLE` values.
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    /// `DT_INT32` (and smaller) values.
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    /// `DT_STRING` values.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
    /// `DT_INT64` values.
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    /// `DT_BOOL` values.
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
    /// `DT_HALF` / `DT_BFLOAT16` values, as the 16 low bits of each int.
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
}

/// `tensorflow.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions, outermost first.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorShapeDim>,
    /// True when even the rank is unknown.
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

/// `tensorflow.TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeDim {
    /// Size (-1 for unknown).
    #[prost(int64, tag = "1")]
    pub size: i64,
    /// Optional name.
    #[prost(string, tag = "2")]
    pub name: String,
}

/// `DataType::DT_FLOAT`.
pub const DT_FLOAT: i32 = 1;
/// `DataType::DT_DOUBLE`.
pub const DT_DOUBLE: i32 = 2;
/// `DataType::DT_INT32`.
pub const DT_INT32: i32 = 3;
/// `DataType::DT_STRING`.
pub const DT_STRING: i32 = 7;
/// `DataType::DT_INT64`.
pub const DT_INT64: i32 = 9;
/// `DataType::DT_BOOL`.
pub const DT_BOOL: i32 = 10;
/// `DataType::DT_BFLOAT16`.
pub const DT_BFLOAT16: i32 = 14;
/// `DataType::DT_HALF`.
pub const DT_HALF: i32 = 19;

/// `tensorboard.hparams.HParamsPluginData` (only the session start, which holds the values).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// Schema version.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// The hyperparameter values of one session (run).
    #[prost(message, optional, tag = "3")]
    pub session_start_info: Option<SessionStartInfo>,
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// Hyperparameter name → value.
    #[prost(map = "string, message", tag = "1")]
    pub hparams: HashMap<String, ProtoValue>,
    /// Group name.
    #[prost(string, tag = "4")]
    pub group_name: String,
    /// Start time, seconds since the epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `google.protobuf.Value` (the scalar kinds; struct and list values are skipped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoValue {
    /// A number.
    #[prost(double, optional, tag = "2")]
    pub number_value: Option<f64>,
    /// A string.
    #[prost(string, optional, tag = "3")]
    pub string_value: Option<String>,
    /// A boolean.
    #[prost(bool, optional, tag = "4")]
    pub bool_value: Option<bool>,
}
