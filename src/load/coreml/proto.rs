//! Core ML protobuf messages, hand-written with the field numbers of coremltools'
//! `mlmodel/format/Model.proto` and `MIL.proto` (ML programs).
//!
//! Only what modelmap reads is declared; prost skips unknown fields. Maps are declared as their
//! repeated entry messages so their order in the file (the converter's) is kept. The other model
//! kinds (`neuralNetwork` and its classifier and regressor, `pipeline`) are kept as raw bytes, to
//! say which kind a file holds.

use bytes::Bytes;

/// `Model`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Model {
    #[prost(int32, tag = "1")]
    pub specification_version: i32,
    #[prost(message, optional, tag = "2")]
    pub description: Option<ModelDescription>,
    #[prost(bytes = "bytes", optional, tag = "200")]
    pub pipeline_classifier: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "201")]
    pub pipeline_regressor: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "202")]
    pub pipeline: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "303")]
    pub neural_network_regressor: Option<Bytes>,
    #[prost(message, optional, tag = "400")]
    pub glm_classifier: Option<GlmClassifier>,
    #[prost(bytes = "bytes", optional, tag = "403")]
    pub neural_network_classifier: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "500")]
    pub neural_network: Option<Bytes>,
    #[prost(message, optional, tag = "502")]
    pub ml_program: Option<Program>,
    #[prost(message, optional, tag = "610")]
    pub non_maximum_suppression: Option<NonMaximumSuppression>,
}

/// `GLMClassifier`: a linear classifier (Create ML's image classifiers end in one).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GlmClassifier {
    /// One row of weights per class (or one, for two classes).
    #[prost(message, repeated, tag = "1")]
    pub weights: Vec<DoubleArray>,
    #[prost(double, repeated, tag = "2")]
    pub offset: Vec<f64>,
    /// 0 logit, 1 probit.
    #[prost(int32, tag = "3")]
    pub post_evaluation_transform: i32,
    /// 0 reference class, 1 one versus the rest.
    #[prost(int32, tag = "4")]
    pub class_encoding: i32,
    #[prost(message, optional, tag = "100")]
    pub string_class_labels: Option<StringVector>,
    #[prost(message, optional, tag = "101")]
    pub int64_class_labels: Option<Int64Vector>,
}

/// `GLMClassifier.DoubleArray`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DoubleArray {
    #[prost(double, repeated, tag = "1")]
    pub value: Vec<f64>,
}

/// `StringVector`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringVector {
    #[prost(string, repeated, tag = "1")]
    pub vector: Vec<String>,
}

/// `Int64Vector`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Int64Vector {
    #[prost(int64, repeated, tag = "1")]
    pub vector: Vec<i64>,
}

/// `NonMaximumSuppression` (an object detector's last model, as Ultralytics exports YOLO).
#[derive(Clone, PartialEq, prost::Message)]
pub struct NonMaximumSuppression {
    #[prost(message, optional, tag = "1")]
    pub pick_top: Option<PickTop>,
    #[prost(message, optional, tag = "100")]
    pub string_class_labels: Option<StringVector>,
    #[prost(message, optional, tag = "101")]
    pub int64_class_labels: Option<Int64Vector>,
    #[prost(double, tag = "110")]
    pub iou_threshold: f64,
    #[prost(double, tag = "111")]
    pub confidence_threshold: f64,
}

/// `NonMaximumSuppression.PickTop`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PickTop {
    #[prost(bool, tag = "1")]
    pub per_class: bool,
}

/// `Pipeline`: models run in order, each reading features by name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Pipeline {
    /// Each a `Model`, kept encoded (its kind is the number of the field it sets).
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub models: Vec<Bytes>,
    #[prost(string, repeated, tag = "2")]
    pub names: Vec<String>,
}

/// `PipelineClassifier` / `PipelineRegressor`: a pipeline (field 1) with a classifier's or
/// regressor's outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PipelineWrapper {
    #[prost(message, optional, tag = "1")]
    pub pipeline: Option<Pipeline>,
}

/// `ModelDescription`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelDescription {
    #[prost(message, repeated, tag = "1")]
    pub input: Vec<FeatureDescription>,
    #[prost(message, repeated, tag = "10")]
    pub output: Vec<FeatureDescription>,
    #[prost(message, optional, tag = "100")]
    pub metadata: Option<Metadata>,
}

/// `FeatureDescription` (name and description).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FeatureDescription {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub short_description: String,
}

/// `Metadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metadata {
    #[prost(string, tag = "1")]
    pub short_description: String,
    #[prost(string, tag = "2")]
    pub version_string: String,
    #[prost(string, tag = "3")]
    pub author: String,
    #[prost(string, tag = "4")]
    pub license: String,
    #[prost(message, repeated, tag = "100")]
    pub user_defined: Vec<StringEntry>,
}

/// A `map<string, string>` entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringEntry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `MILSpec.Program`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Program {
    #[prost(int64, tag = "1")]
    pub version: i64,
    #[prost(message, repeated, tag = "2")]
    pub functions: Vec<FunctionEntry>,
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// A `map<string, Function>` entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionEntry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Function>,
}

/// `MILSpec.Function`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    #[prost(message, repeated, tag = "1")]
    pub inputs: Vec<NamedValueType>,
    #[prost(string, tag = "2")]
    pub opset: String,
    #[prost(message, repeated, tag = "3")]
    pub block_specializations: Vec<BlockEntry>,
}

/// A `map<string, Block>` entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlockEntry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Block>,
}

/// `MILSpec.Block`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Block {
    #[prost(message, repeated, tag = "1")]
    pub inputs: Vec<NamedValueType>,
    #[prost(string, repeated, tag = "2")]
    pub outputs: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub operations: Vec<Operation>,
}

/// `MILSpec.Operation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Operation {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(message, repeated, tag = "2")]
    pub inputs: Vec<ArgumentEntry>,
    #[prost(message, repeated, tag = "3")]
    pub outputs: Vec<NamedValueType>,
    #[prost(message, repeated, tag = "4")]
    pub blocks: Vec<Block>,
    #[prost(message, repeated, tag = "5")]
    pub attributes: Vec<ValueEntry>,
}

/// A `map<string, Argument>` entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArgumentEntry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Argument>,
}

/// A `map<string, Value>` entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueEntry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Value>,
}

/// `MILSpec.Argument`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Argument {
    #[prost(message, repeated, tag = "1")]
    pub arguments: Vec<Binding>,
}

/// `MILSpec.Argument.Binding`: a value's name, or a value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Binding {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Value>,
}

/// `MILSpec.NamedValueType`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamedValueType {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<ValueType>,
}

/// `MILSpec.ValueType` (tensor types only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorType>,
}

/// `MILSpec.TensorType`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorType {
    #[prost(int32, tag = "1")]
    pub data_type: i32,
    #[prost(int64, tag = "2")]
    pub rank: i64,
    #[prost(message, repeated, tag = "3")]
    pub dimensions: Vec<Dimension>,
}

/// `MILSpec.Dimension`: a constant size, or unknown.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    #[prost(message, optional, tag = "1")]
    pub constant: Option<ConstantDimension>,
}

/// `MILSpec.Dimension.ConstantDimension`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConstantDimension {
    #[prost(uint64, tag = "1")]
    pub size: u64,
}

/// `MILSpec.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<ValueType>,
    #[prost(message, optional, tag = "3")]
    pub immediate_value: Option<ImmediateValue>,
    #[prost(message, optional, tag = "5")]
    pub blob_file_value: Option<BlobFileValue>,
}

/// `MILSpec.Value.ImmediateValue` (tensors only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImmediateValue {
    #[prost(message, optional, tag = "1")]
    pub tensor: Option<TensorValue>,
}

/// `MILSpec.Value.BlobFileValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlobFileValue {
    #[prost(string, tag = "1")]
    pub file_name: String,
    #[prost(uint64, tag = "2")]
    pub offset: u64,
}

/// `MILSpec.TensorValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorValue {
    #[prost(message, optional, tag = "1")]
    pub floats: Option<RepeatedFloats>,
    #[prost(message, optional, tag = "2")]
    pub ints: Option<RepeatedInts>,
    #[prost(message, optional, tag = "3")]
    pub bools: Option<RepeatedBools>,
    #[prost(message, optional, tag = "4")]
    pub strings: Option<RepeatedStrings>,
    #[prost(message, optional, tag = "5")]
    pub long_ints: Option<RepeatedLongInts>,
    #[prost(message, optional, tag = "6")]
    pub doubles: Option<RepeatedDoubles>,
    #[prost(message, optional, tag = "7")]
    pub bytes: Option<RepeatedBytes>,
}

/// `TensorValue.RepeatedFloats`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepeatedFloats {
    #[prost(float, repeated, tag = "1")]
    pub values: Vec<f32>,
}

/// `TensorValue.RepeatedInts`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepeatedInts {
    #[prost(int32, repeated, tag = "1")]
    pub values: Vec<i32>,
}

/// `TensorValue.RepeatedBools`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepeatedBools {
    #[prost(bool, repeated, tag = "1")]
    pub values: Vec<bool>,
}

/// `TensorValue.RepeatedStrings`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepeatedStrings {
    #[prost(string, repeated, tag = "1")]
    pub values: Vec<String>,
}

/// `TensorValue.RepeatedLongInts`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepeatedLongInts {
    #[prost(int64, repeated, tag = "1")]
    pub values: Vec<i64>,
}

/// `TensorValue.RepeatedDoubles`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepeatedDoubles {
    #[prost(double, repeated, tag = "1")]
    pub values: Vec<f64>,
}

/// `TensorValue.RepeatedBytes` (one byte string).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepeatedBytes {
    #[prost(bytes = "bytes", tag = "1")]
    pub values: Bytes,
}
