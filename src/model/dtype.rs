//! Element types of tensors, as every supported format names them.

use std::fmt;

/// GGML tensor types (llama.cpp's `ggml_type`), kept by number so unknown future types still load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GgmlType(pub u32);

impl GgmlType {
    /// Name, elements per block and bytes per block, or `None` for a type this build does not know.
    pub fn info(self) -> Option<(&'static str, u64, u64)> {
        // (name, block size in elements, bytes per block): from ggml.c's type_traits.
        Some(match self.0 {
            0 => ("F32", 1, 4),
            1 => ("F16", 1, 2),
            2 => ("Q4_0", 32, 18),
            3 => ("Q4_1", 32, 20),
            6 => ("Q5_0", 32, 22),
            7 => ("Q5_1", 32, 24),
            8 => ("Q8_0", 32, 34),
            9 => ("Q8_1", 32, 36),
            10 => ("Q2_K", 256, 84),
            11 => ("Q3_K", 256, 110),
            12 => ("Q4_K", 256, 144),
            13 => ("Q5_K", 256, 176),
            14 => ("Q6_K", 256, 210),
            15 => ("Q8_K", 256, 292),
            16 => ("IQ2_XXS", 256, 66),
            17 => ("IQ2_XS", 256, 74),
            18 => ("IQ3_XXS", 256, 98),
            19 => ("IQ1_S", 256, 50),
            20 => ("IQ4_NL", 32, 18),
            21 => ("IQ3_S", 256, 110),
            22 => ("IQ2_S", 256, 82),
            23 => ("IQ4_XS", 256, 136),
            24 => ("I8", 1, 1),
            25 => ("I16", 1, 2),
            26 => ("I32", 1, 4),
            27 => ("I64", 1, 8),
            28 => ("F64", 1, 8),
            29 => ("IQ1_M", 256, 56),
            30 => ("BF16", 1, 2),
            34 => ("TQ1_0", 256, 54),
            35 => ("TQ2_0", 256, 66),
            39 => ("MXFP4", 32, 17),
            _ => return None,
        })
    }
}

/// The element type of a tensor or of a value flowing on an edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE 754 binary64.
    F64,
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (the top half of an f32).
    BF16,
    /// fp8 e4m3, finite only (NaN = S.1111.111), as in OCP FP8 / ONNX `FLOAT8E4M3FN`.
    F8E4M3FN,
    /// fp8 e4m3, bias 8, NaN = 0x80 (ONNX `FLOAT8E4M3FNUZ`).
    F8E4M3FNUZ,
    /// fp8 e5m2 with infinities and NaNs (ONNX `FLOAT8E5M2`).
    F8E5M2,
    /// fp8 e5m2, bias 16, NaN = 0x80 (ONNX `FLOAT8E5M2FNUZ`).
    F8E5M2FNUZ,
    /// OCP microscaling's 8-bit exponent (E8M0): `2^(e − 127)`, NaN = 0xff, no sign or zero
    /// (MXFP4's block scales, as gpt-oss stores them).
    F8E8M0,
    /// Signed 64-bit integer.
    I64,
    /// Signed 32-bit integer.
    I32,
    /// Signed 16-bit integer.
    I16,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 64-bit integer.
    U64,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 8-bit integer.
    U8,
    /// One byte per element, 0 or 1.
    Bool,
    /// Two f32 (real, imaginary).
    Complex64,
    /// Two f64 (real, imaginary).
    Complex128,
    /// Variable-length strings (ONNX `STRING`): no fixed byte size.
    String,
    /// Unsigned 4-bit integers, two to a byte, the low nibble first (ONNX `UINT4`, OpenVINO `u4`).
    U4,
    /// Signed 4-bit integers, two to a byte, the low nibble first (ONNX `INT4`, OpenVINO `i4`).
    I4,
    /// FP4 E2M1 (OCP microscaling's element type; ONNX `FLOAT4E2M1`, OpenVINO `f4e2m1`): two to a
    /// byte, the low nibble first, each 0, ±0.5, ±1, ±1.5, ±2, ±3, ±4 or ±6.
    F4E2M1,
    /// 4-bit NormalFloat (QLoRA's NF4; OpenVINO `nf4`): two codes to a byte, the low nibble first,
    /// each one of 16 values of a normal distribution's quantiles in [-1, 1].
    NF4,
    /// Unsigned integers of 1, 2, 3, 5, 6 or 7 bits, packed as a little-endian bitstream: value
    /// `i` in bits `i·b .. (i+1)·b` (MLX's 2/3/5/6-bit quantized weights, Core ML's `uint1`..
    /// `uint6` palette indices).
    UBits(u8),
    /// A GGML block-quantized or plain type from a GGUF file.
    Ggml(GgmlType),
    /// A type this build does not know, with the format's own name for it.
    Unknown(&'static str),
}

/// The 16 values of an FP4 (E2M1) code: sign bit 3, magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6.
pub const E2M1: [f64; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];

impl DType {
    /// Bytes per element for fixed-size, non-blocked types.
    pub fn size_bytes(self) -> Option<u64> {
        Some(match self {
            DType::F64 | DType::I64 | DType::U64 | DType::Complex64 => 8,
            DType::Complex128 => 16,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::F8E4M3FN
            | DType::F8E4M3FNUZ
            | DType::F8E5M2
            | DType::F8E5M2FNUZ
            | DType::F8E8M0
            | DType::I8
            | DType::U8
            | DType::Bool => 1,
            DType::Ggml(t) => match t.info() {
                Some((_, 1, b)) => b,
                _ => return None,
            },
            DType::String
            | DType::Unknown(_)
            | DType::U4
            | DType::I4
            | DType::NF4
            | DType::F4E2M1
            | DType::UBits(_) => return None,
        })
    }

    /// Bytes needed for `elements` elements, including GGML blocks; `None` when unknown or on overflow
    /// or when the element count is not a whole number of blocks.
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        if let DType::Ggml(t) = self {
            let (_, block, bytes) = t.info()?;
            if !elements.is_multiple_of(block) {
                return None;
            }
            return (elements / block).checked_mul(bytes);
        }
        if matches!(self, DType::U4 | DType::I4 | DType::NF4 | DType::F4E2M1) {
            // Two to a byte, read as blocks of two.
            return elements.is_multiple_of(2).then_some(elements / 2);
        }
        if let DType::UBits(b) = self {
            // Read as blocks of eight values in `b` bytes.
            return elements
                .is_multiple_of(8)
                .then_some(elements / 8)?
                .checked_mul(u64::from(b));
        }
        elements.checked_mul(self.size_bytes()?)
    }

    /// Whether values of this type are floating point (statistics count NaN/Inf for these).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::F64
                | DType::F32
                | DType::F16
                | DType::BF16
                | DType::F8E4M3FN
                | DType::F8E4M3FNUZ
                | DType::F8E5M2
                | DType::F8E5M2FNUZ
                | DType::F8E8M0
        )
    }

    /// Whether this is one of the fp8 kinds.
    pub fn is_fp8(self) -> bool {
        matches!(
            self,
            DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ
        )
    }

    /// The name the formats' reference libraries print: `F32`, `BF16`, `F8_E4M3`, `I64`, `Q4_K`…
    pub fn name(self) -> &'static str {
        match self {
            DType::F64 => "F64",
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F8E4M3FN => "F8_E4M3",
            DType::F8E4M3FNUZ => "F8_E4M3FNUZ",
            DType::F8E5M2 => "F8_E5M2",
            DType::F8E5M2FNUZ => "F8_E5M2FNUZ",
            DType::F8E8M0 => "F8_E8M0",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::I16 => "I16",
            DType::I8 => "I8",
            DType::U64 => "U64",
            DType::U32 => "U32",
            DType::U16 => "U16",
            DType::U8 => "U8",
            DType::Bool => "BOOL",
            DType::Complex64 => "C64",
            DType::Complex128 => "C128",
            DType::String => "STRING",
            DType::U4 => "U4",
            DType::UBits(1) => "U1",
            DType::UBits(2) => "U2",
            DType::UBits(3) => "U3",
            DType::UBits(5) => "U5",
            DType::UBits(6) => "U6",
            DType::UBits(7) => "U7",
            DType::UBits(_) => "UBITS",
            DType::I4 => "I4",
            DType::NF4 => "NF4",
            DType::F4E2M1 => "F4_E2M1",
            DType::Ggml(t) => t.info().map_or("GGML?", |i| i.0),
            DType::Unknown(name) => name,
        }
    }

    /// ONNX `TensorProto.DataType` number to dtype.
    pub fn from_onnx(code: i32) -> DType {
        match code {
            1 => DType::F32,
            2 => DType::U8,
            3 => DType::I8,
            4 => DType::U16,
            5 => DType::I16,
            6 => DType::I32,
            7 => DType::I64,
            8 => DType::String,
            9 => DType::Bool,
            10 => DType::F16,
            11 => DType::F64,
            12 => DType::U32,
            13 => DType::U64,
            14 => DType::Complex64,
            15 => DType::Complex128,
            16 => DType::BF16,
            17 => DType::F8E4M3FN,
            18 => DType::F8E4M3FNUZ,
            19 => DType::F8E5M2,
            20 => DType::F8E5M2FNUZ,
            21 => DType::U4,
            22 => DType::I4,
            23 => DType::F4E2M1,
            24 => DType::F8E8M0,
            _ => DType::Unknown("UNDEFINED"),
        }
    }

    /// The ONNX spelling (`FLOAT`, `INT64`…), as `onnx.TensorProto.DataType.Name` prints it.
    pub fn onnx_name(self) -> &'static str {
        match self {
            DType::F32 => "FLOAT",
            DType::U4 => "UINT4",
            DType::I4 => "INT4",
            DType::U8 => "UINT8",
            DType::I8 => "INT8",
            DType::U16 => "UINT16",
            DType::I16 => "INT16",
            DType::I32 => "INT32",
            DType::I64 => "INT64",
            DType::String => "STRING",
            DType::Bool => "BOOL",
            DType::F16 => "FLOAT16",
            DType::F64 => "DOUBLE",
            DType::U32 => "UINT32",
            DType::U64 => "UINT64",
            DType::Complex64 => "COMPLEX64",
            DType::Complex128 => "COMPLEX128",
            DType::BF16 => "BFLOAT16",
            DType::F8E4M3FN => "FLOAT8E4M3FN",
            DType::F8E4M3FNUZ => "FLOAT8E4M3FNUZ",
            DType::F8E5M2 => "FLOAT8E5M2",
            DType::F8E5M2FNUZ => "FLOAT8E5M2FNUZ",
            DType::F8E8M0 => "FLOAT8E8M0",
            DType::F4E2M1 => "FLOAT4E2M1",
            other => other.name(),
        }
    }

    /// A NumPy dtype name (`np.dtype(...).name`: `float32`, `int8`), as Keras and Flax write
    /// them, including `ml_dtypes`' `bfloat16` and fp8 kinds; `None` for others.
    pub fn from_numpy_name(name: &str) -> Option<DType> {
        Some(match name {
            "float64" => DType::F64,
            "float32" => DType::F32,
            "float16" => DType::F16,
            "bfloat16" => DType::BF16,
            "float8_e4m3fn" => DType::F8E4M3FN,
            "float8_e4m3fnuz" => DType::F8E4M3FNUZ,
            "float8_e5m2" => DType::F8E5M2,
            "float8_e5m2fnuz" => DType::F8E5M2FNUZ,
            "int64" => DType::I64,
            "int32" => DType::I32,
            "int16" => DType::I16,
            "int8" => DType::I8,
            "uint64" => DType::U64,
            "uint32" => DType::U32,
            "uint16" => DType::U16,
            "uint8" => DType::U8,
            "bool" => DType::Bool,
            "complex64" => DType::Complex64,
            "complex128" => DType::Complex128,
            _ => return None,
        })
    }

    /// safetensors dtype string to dtype.
    pub fn from_safetensors(name: &str) -> DType {
        match name {
            "F64" => DType::F64,
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "F8_E4M3" => DType::F8E4M3FN,
            "F8_E5M2" => DType::F8E5M2,
            "I64" => DType::I64,
            "I32" => DType::I32,
            "I16" => DType::I16,
            "I8" => DType::I8,
            "U64" => DType::U64,
            "U32" => DType::U32,
            "U16" => DType::U16,
            "U8" => DType::U8,
            "BOOL" => DType::Bool,
            "C64" => DType::Complex64,
            _ => DType::Unknown("safetensors?"),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
