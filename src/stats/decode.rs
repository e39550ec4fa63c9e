//! Decoding every element type of the IR to `f64`, little-endian, straight from the mapped bytes.
//!
//! How it works: [`Elem::of`] turns a [`DType`] into a decoder that knows its block geometry (1
//! element of N bytes for plain types, 32 elements in 34 / 18 bytes for GGML `Q8_0` / `Q4_0`).
//! [`Elem::decode_into`] decodes whole blocks into a caller's buffer (the statistics and heatmap
//! code pass a small L1-sized buffer, so nothing is ever decoded wholesale). Types of one or two bytes
//! also expose [`Elem::code_width`] and [`Elem::value_of_code`]: statistics for those count raw bit
//! patterns instead of decoding (see `stats::compute`).
//!
//! fp8 values come from 256-entry tables built from the OCP FP8 / ONNX definitions by
//! [`fp8_value`]; the tables are checked bit by bit against the spec's reference values in the tests.
//!
//! Rejected: converting through `f32` for everything (loses `f64`/`i64` precision, and `i64` beyond
//! 2^53 would round twice); a generic `num-traits` decoder (the per-type loops are small and the
//! compiler vectorises them as they are).

use std::sync::LazyLock;

use super::ggml::{self, QK_K};
use crate::model::{DType, GgmlType};

/// Elements per GGML quantisation block (`QK8_0`, `QK4_0`).
const QK: usize = 32;

/// Decodes one whole block of a GGML type into its elements.
type BlockFn = fn(&[u8], &mut [f64]);

/// How the elements of one dtype are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// Unsigned 4-bit, two to a byte, the low nibble first.
    U4,
    /// Signed 4-bit, two to a byte, the low nibble first.
    I4,
    /// Unsigned `b`-bit integers as a little-endian bitstream (blocks of 8 values in `b` bytes).
    Bits(u8),
    /// 4-bit NormalFloat codes, two to a byte, the low nibble first.
    Nf4,
    /// FP4 E2M1, two to a byte, the low nibble first.
    F4E2M1,
    /// IEEE binary64.
    F64,
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
    /// One of the fp8 kinds.
    Fp8(Fp8Kind),
    /// Signed 64-bit.
    I64,
    /// Signed 32-bit.
    I32,
    /// Signed 16-bit.
    I16,
    /// Signed 8-bit.
    I8,
    /// Unsigned 64-bit.
    U64,
    /// Unsigned 32-bit.
    U32,
    /// Unsigned 16-bit.
    U16,
    /// Unsigned 8-bit.
    U8,
    /// One byte, zero is false and anything else true (decoded as 0 / 1).
    Bool,
    /// GGML `Q8_0`: an f16 scale and 32 signed bytes per block.
    Q8_0,
    /// GGML `Q4_0`: an f16 scale and 16 bytes of nibbles per block, value = (nibble − 8) · scale.
    Q4_0,
    /// GGML `Q4_1`: an f16 scale and min, 16 bytes of nibbles; value = nibble · scale + min.
    Q4_1,
    /// GGML `Q5_0`: an f16 scale, fifth bits and nibbles; value = (q − 16) · scale.
    Q5_0,
    /// GGML `Q5_1`: an f16 scale and min, fifth bits and nibbles; value = q · scale + min.
    Q5_1,
    /// GGML k-quant `Q2_K` (256 elements in 84 bytes).
    Q2K,
    /// GGML k-quant `Q3_K` (256 elements in 110 bytes).
    Q3K,
    /// GGML k-quant `Q4_K` (256 elements in 144 bytes).
    Q4K,
    /// GGML k-quant `Q5_K` (256 elements in 176 bytes).
    Q5K,
    /// GGML k-quant `Q6_K` (256 elements in 210 bytes).
    Q6K,
    /// GGML `IQ4_NL` (32 elements in 18 bytes, non-linear levels).
    Iq4Nl,
    /// GGML `IQ4_XS` (256 elements in 136 bytes).
    Iq4Xs,
    /// GGML `MXFP4` (32 FP4 elements and an E8M0 scale in 17 bytes).
    Mxfp4,
    /// GGML ternary `TQ1_0` (256 elements in 54 bytes).
    Tq1_0,
    /// GGML ternary `TQ2_0` (256 elements in 66 bytes).
    Tq2_0,
    /// GGML `IQ2_XXS` (256 elements in 66 bytes, a codebook of 8-value groups).
    Iq2Xxs,
    /// GGML `IQ2_XS` (256 elements in 74 bytes).
    Iq2Xs,
    /// GGML `IQ2_S` (256 elements in 82 bytes).
    Iq2S,
    /// GGML `IQ3_XXS` (256 elements in 98 bytes).
    Iq3Xxs,
    /// GGML `IQ3_S` (256 elements in 110 bytes).
    Iq3S,
    /// GGML `IQ1_S` (256 elements in 50 bytes).
    Iq1S,
    /// GGML `IQ1_M` (256 elements in 56 bytes).
    Iq1M,
}

/// The four fp8 encodings of ONNX / OCP, and OCP microscaling's E8M0 scale byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fp8Kind {
    /// 4 exponent bits (bias 7), 3 mantissa bits, no infinities, NaN = S.1111.111.
    E4M3FN,
    /// 4 exponent bits (bias 8), no negative zero or infinities, NaN = 0x80 only.
    E4M3FNUZ,
    /// 5 exponent bits (bias 15), IEEE-like infinities and NaNs.
    E5M2,
    /// 5 exponent bits (bias 16), no negative zero or infinities, NaN = 0x80 only.
    E5M2FNUZ,
    /// 8 exponent bits (bias 127) and nothing else: `2^(e − 127)`, NaN = 0xff (OCP MX scales).
    E8M0,
}

/// The value of one fp8 byte, from the format definitions (OCP 8-bit floating point spec v1.0 and
/// ONNX `Float8` docs).
pub fn fp8_value(kind: Fp8Kind, byte: u8) -> f64 {
    if kind == Fp8Kind::E8M0 {
        return match byte {
            0xff => f64::NAN,
            e => 2f64.powi(i32::from(e) - 127),
        };
    }
    let (exp_bits, man_bits, bias): (u32, u32, i32) = match kind {
        Fp8Kind::E8M0 => (8, 0, 127),
        Fp8Kind::E4M3FN => (4, 3, 7),
        Fp8Kind::E4M3FNUZ => (4, 3, 8),
        Fp8Kind::E5M2 => (5, 2, 15),
        Fp8Kind::E5M2FNUZ => (5, 2, 16),
    };
    let sign = if byte & 0x80 != 0 { -1.0 } else { 1.0 };
    let exp = u32::from(byte >> man_bits) & ((1 << exp_bits) - 1);
    let man = u32::from(byte) & ((1 << man_bits) - 1);
    let exp_max = (1u32 << exp_bits) - 1;
    match kind {
        // The FNUZ kinds use 0x80 ("negative zero") as their only NaN.
        Fp8Kind::E4M3FNUZ | Fp8Kind::E5M2FNUZ if byte == 0x80 => return f64::NAN,
        Fp8Kind::E4M3FN if exp == exp_max && man == 7 => return f64::NAN,
        Fp8Kind::E5M2 if exp == exp_max => {
            return if man == 0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            };
        }
        _ => {}
    }
    let frac = f64::from(man) / f64::from(1u32 << man_bits);
    let magnitude = if exp == 0 {
        // Subnormal: no implicit one, exponent 1 − bias.
        frac * 2f64.powi(1 - bias)
    } else {
        (1.0 + frac) * 2f64.powi(exp as i32 - bias)
    };
    sign * magnitude
}

fn fp8_table(kind: Fp8Kind) -> [f64; 256] {
    let mut t = [0.0; 256];
    for (b, slot) in (0u8..=255).zip(t.iter_mut()) {
        *slot = fp8_value(kind, b);
    }
    t
}

static E4M3FN_TABLE: LazyLock<[f64; 256]> = LazyLock::new(|| fp8_table(Fp8Kind::E4M3FN));
static E4M3FNUZ_TABLE: LazyLock<[f64; 256]> = LazyLock::new(|| fp8_table(Fp8Kind::E4M3FNUZ));
static E5M2_TABLE: LazyLock<[f64; 256]> = LazyLock::new(|| fp8_table(Fp8Kind::E5M2));
static E5M2FNUZ_TABLE: LazyLock<[f64; 256]> = LazyLock::new(|| fp8_table(Fp8Kind::E5M2FNUZ));
static E8M0_TABLE: LazyLock<[f64; 256]> = LazyLock::new(|| fp8_table(Fp8Kind::E8M0));

fn fp8_lut(kind: Fp8Kind) -> &'static [f64; 256] {
    match kind {
        Fp8Kind::E4M3FN => &E4M3FN_TABLE,
        Fp8Kind::E4M3FNUZ => &E4M3FNUZ_TABLE,
        Fp8Kind::E5M2 => &E5M2_TABLE,
        Fp8Kind::E5M2FNUZ => &E5M2FNUZ_TABLE,
        Fp8Kind::E8M0 => &E8M0_TABLE,
    }
}

#[inline]
pub(super) fn f16_bits(bits: u16) -> f64 {
    half::f16::from_bits(bits).to_f64()
}

pub(crate) use crate::model::E2M1;

/// The 16 values of NF4 (QLoRA, Dettmers et al. 2023; OpenVINO's `nf4` uses the same table).
const NF4: [f64; 16] = [
    -1.0,
    -0.696_192_800_998_687_7,
    -0.525_073_051_452_636_7,
    -0.394_917_488_098_144_53,
    -0.284_441_381_692_886_35,
    -0.184_773_430_228_233_34,
    -0.091_050_036_251_544_95,
    0.0,
    0.079_580_299_556_255_34,
    0.160_930_201_411_247_25,
    0.246_112_301_945_686_34,
    0.337_915_241_718_292_24,
    0.440_709_829_330_444_34,
    0.562_617_003_917_694_1,
    0.722_956_836_223_602_3,
    1.0,
];

#[inline]
fn bf16_bits(bits: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(bits) << 16))
}

impl Elem {
    /// The decoder for a dtype, or `None` when statistics are not supported for it (strings, complex,
    /// GGML k-quants and the other block types).
    pub fn of(dtype: DType) -> Option<Elem> {
        Some(match dtype {
            DType::F64 => Elem::F64,
            DType::F32 => Elem::F32,
            DType::F16 => Elem::F16,
            DType::BF16 => Elem::BF16,
            DType::F8E4M3FN => Elem::Fp8(Fp8Kind::E4M3FN),
            DType::F8E4M3FNUZ => Elem::Fp8(Fp8Kind::E4M3FNUZ),
            DType::F8E5M2 => Elem::Fp8(Fp8Kind::E5M2),
            DType::F8E5M2FNUZ => Elem::Fp8(Fp8Kind::E5M2FNUZ),
            DType::F8E8M0 => Elem::Fp8(Fp8Kind::E8M0),
            DType::I64 => Elem::I64,
            DType::I32 => Elem::I32,
            DType::I16 => Elem::I16,
            DType::I8 => Elem::I8,
            DType::U64 => Elem::U64,
            DType::U32 => Elem::U32,
            DType::U16 => Elem::U16,
            DType::U8 => Elem::U8,
            DType::U4 => Elem::U4,
            DType::UBits(b @ 1..=7) => Elem::Bits(b),
            DType::UBits(_) => return None,
            DType::I4 => Elem::I4,
            DType::NF4 => Elem::Nf4,
            DType::F4E2M1 => Elem::F4E2M1,
            DType::Bool => Elem::Bool,
            DType::Ggml(GgmlType(t)) => match t {
                0 => Elem::F32,
                1 => Elem::F16,
                2 => Elem::Q4_0,
                3 => Elem::Q4_1,
                6 => Elem::Q5_0,
                7 => Elem::Q5_1,
                8 => Elem::Q8_0,
                10 => Elem::Q2K,
                11 => Elem::Q3K,
                12 => Elem::Q4K,
                13 => Elem::Q5K,
                14 => Elem::Q6K,
                16 => Elem::Iq2Xxs,
                17 => Elem::Iq2Xs,
                18 => Elem::Iq3Xxs,
                19 => Elem::Iq1S,
                20 => Elem::Iq4Nl,
                21 => Elem::Iq3S,
                22 => Elem::Iq2S,
                29 => Elem::Iq1M,
                23 => Elem::Iq4Xs,
                34 => Elem::Tq1_0,
                35 => Elem::Tq2_0,
                39 => Elem::Mxfp4,
                24 => Elem::I8,
                25 => Elem::I16,
                26 => Elem::I32,
                27 => Elem::I64,
                28 => Elem::F64,
                30 => Elem::BF16,
                _ => return None,
            },
            DType::Complex64 | DType::Complex128 | DType::String | DType::Unknown(_) => {
                return None;
            }
        })
    }

    /// `(elements, bytes)` of one block: `(1, size)` for plain types, `(32, 34)` / `(32, 18)` for
    /// `Q8_0` / `Q4_0`.
    pub fn block(self) -> (usize, usize) {
        match self {
            Elem::F64 | Elem::I64 | Elem::U64 => (1, 8),
            Elem::F32 | Elem::I32 | Elem::U32 => (1, 4),
            Elem::F16 | Elem::BF16 | Elem::I16 | Elem::U16 => (1, 2),
            Elem::Fp8(_) | Elem::I8 | Elem::U8 | Elem::Bool => (1, 1),
            Elem::U4 | Elem::I4 | Elem::Nf4 | Elem::F4E2M1 => (2, 1),
            Elem::Bits(b) => (8, usize::from(b)),
            Elem::Q8_0 => (QK, 34),
            Elem::Q4_0 => (QK, 18),
            Elem::Q4_1 => (QK, 20),
            Elem::Q5_0 => (QK, 22),
            Elem::Q5_1 => (QK, 24),
            Elem::Q2K => (QK_K, 84),
            Elem::Q3K => (QK_K, 110),
            Elem::Q4K => (QK_K, 144),
            Elem::Q5K => (QK_K, 176),
            Elem::Q6K => (QK_K, 210),
            Elem::Iq4Nl => (QK, 18),
            Elem::Iq4Xs => (QK_K, 136),
            Elem::Mxfp4 => (QK, 17),
            Elem::Tq1_0 => (QK_K, 54),
            Elem::Tq2_0 => (QK_K, 66),
            Elem::Iq2Xxs => (QK_K, 66),
            Elem::Iq2Xs => (QK_K, 74),
            Elem::Iq2S => (QK_K, 82),
            Elem::Iq3Xxs => (QK_K, 98),
            Elem::Iq3S => (QK_K, 110),
            Elem::Iq1S => (QK_K, 50),
            Elem::Iq1M => (QK_K, 56),
        }
    }

    /// Whether NaN and infinity can occur.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Elem::F64 | Elem::F32 | Elem::F16 | Elem::BF16 | Elem::Fp8(_) | Elem::Q8_0 | Elem::Q4_0
        ) || self.ggml_block().is_some()
    }

    /// The block decoder of the GGML types in [`ggml`] (every block type but `Q8_0` / `Q4_0`,
    /// which decode inline).
    fn ggml_block(self) -> Option<BlockFn> {
        Some(match self {
            Elem::Q4_1 => ggml::q4_1,
            Elem::Q5_0 => |b, o| ggml::q5(b, o, false),
            Elem::Q5_1 => |b, o| ggml::q5(b, o, true),
            Elem::Q2K => ggml::q2_k,
            Elem::Q3K => ggml::q3_k,
            Elem::Q4K => ggml::q4_k,
            Elem::Q5K => ggml::q5_k,
            Elem::Q6K => ggml::q6_k,
            Elem::Iq4Nl => ggml::iq4_nl,
            Elem::Iq4Xs => ggml::iq4_xs,
            Elem::Mxfp4 => ggml::mxfp4,
            Elem::Tq1_0 => ggml::tq1_0,
            Elem::Tq2_0 => ggml::tq2_0,
            Elem::Iq2Xxs => ggml::iq2_xxs,
            Elem::Iq2Xs => ggml::iq2_xs,
            Elem::Iq2S => ggml::iq2_s,
            Elem::Iq3Xxs => ggml::iq3_xxs,
            Elem::Iq3S => ggml::iq3_s,
            Elem::Iq1S => ggml::iq1_s,
            Elem::Iq1M => ggml::iq1_m,
            _ => return None,
        })
    }

    /// Bytes per element for types whose every bit pattern can be enumerated (1 or 2), `None` otherwise.
    pub fn code_width(self) -> Option<usize> {
        match self {
            Elem::F16 | Elem::BF16 | Elem::I16 | Elem::U16 => Some(2),
            Elem::Fp8(_) | Elem::I8 | Elem::U8 | Elem::Bool => Some(1),
            _ => None,
        }
    }

    /// The value of a raw bit pattern for a type with a [`code_width`](Self::code_width)
    /// (little-endian code, so `u16::from_le_bytes`). Other types return NaN.
    pub fn value_of_code(self, code: u32) -> f64 {
        let c16 = code as u16;
        let c8 = code as u8;
        match self {
            Elem::F16 => f16_bits(c16),
            Elem::BF16 => bf16_bits(c16),
            Elem::I16 => f64::from(c16 as i16),
            Elem::U16 => f64::from(c16),
            Elem::Fp8(k) => fp8_lut(k)[usize::from(c8)],
            Elem::I8 => f64::from(c8 as i8),
            Elem::U8 => f64::from(c8),
            Elem::Bool => f64::from(u8::from(c8 != 0)),
            _ => f64::NAN,
        }
    }

    /// Decodes whole blocks: `bytes.len()` must be a multiple of the block bytes and `out` must hold
    /// the matching number of elements; extra bytes or slots are ignored.
    pub fn decode_into(self, bytes: &[u8], out: &mut [f64]) {
        macro_rules! plain {
            ($n:literal, $conv:expr) => {
                for (c, o) in bytes.chunks_exact($n).zip(out.iter_mut()) {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    *o = $conv(a);
                }
            };
        }
        match self {
            Elem::F64 => plain!(8, f64::from_le_bytes),
            Elem::F32 => plain!(4, |a| f64::from(f32::from_le_bytes(a))),
            Elem::F16 => plain!(2, |a| f16_bits(u16::from_le_bytes(a))),
            Elem::BF16 => plain!(2, |a| bf16_bits(u16::from_le_bytes(a))),
            Elem::I64 => plain!(8, |a| i64::from_le_bytes(a) as f64),
            Elem::U64 => plain!(8, |a| u64::from_le_bytes(a) as f64),
            Elem::I32 => plain!(4, |a| f64::from(i32::from_le_bytes(a))),
            Elem::U32 => plain!(4, |a| f64::from(u32::from_le_bytes(a))),
            Elem::I16 => plain!(2, |a| f64::from(i16::from_le_bytes(a))),
            Elem::U16 => plain!(2, |a| f64::from(u16::from_le_bytes(a))),
            Elem::Fp8(k) => {
                let lut = fp8_lut(k);
                for (&b, o) in bytes.iter().zip(out.iter_mut()) {
                    *o = lut[usize::from(b)];
                }
            }
            Elem::I8 => {
                for (&b, o) in bytes.iter().zip(out.iter_mut()) {
                    *o = f64::from(b as i8);
                }
            }
            Elem::U8 => {
                for (&b, o) in bytes.iter().zip(out.iter_mut()) {
                    *o = f64::from(b);
                }
            }
            Elem::U4 | Elem::I4 | Elem::Nf4 | Elem::F4E2M1 => {
                for (&b, pair) in bytes.iter().zip(out.chunks_mut(2)) {
                    for (o, n) in pair.iter_mut().zip([b & 0x0f, b >> 4]) {
                        *o = match self {
                            Elem::I4 => f64::from(((n << 4) as i8) >> 4),
                            Elem::Nf4 => NF4[usize::from(n)],
                            Elem::F4E2M1 => E2M1[usize::from(n)],
                            _ => f64::from(n),
                        };
                    }
                }
            }
            Elem::Bool => {
                for (&b, o) in bytes.iter().zip(out.iter_mut()) {
                    *o = f64::from(u8::from(b != 0));
                }
            }
            Elem::Bits(b) => {
                let (width, mask) = (u32::from(b), (1u64 << b) - 1);
                for (blk, o) in bytes
                    .chunks_exact(usize::from(b))
                    .zip(out.chunks_exact_mut(8))
                {
                    let mut word = [0u8; 8];
                    word[..blk.len()].copy_from_slice(blk);
                    let x = u64::from_le_bytes(word);
                    for (i, v) in o.iter_mut().enumerate() {
                        *v = ((x >> (width * i as u32)) & mask) as f64;
                    }
                }
            }
            Elem::Q8_0 => {
                for (blk, o) in bytes.chunks_exact(34).zip(out.chunks_exact_mut(QK)) {
                    let (d, qs) = blk.split_at(2);
                    let d = f16_bits(u16::from_le_bytes([d[0], d[1]]));
                    for (&q, v) in qs.iter().zip(o.iter_mut()) {
                        *v = f64::from(q as i8) * d;
                    }
                }
            }
            Elem::Q4_0 => {
                for (blk, o) in bytes.chunks_exact(18).zip(out.chunks_exact_mut(QK)) {
                    let (d, qs) = blk.split_at(2);
                    let d = f16_bits(u16::from_le_bytes([d[0], d[1]]));
                    // ggml's dequantize_row_q4_0: low nibbles are elements 0..16, high nibbles 16..32.
                    let (lo, hi) = o.split_at_mut(QK / 2);
                    for ((&q, a), b) in qs.iter().zip(lo.iter_mut()).zip(hi.iter_mut()) {
                        *a = f64::from(i32::from(q & 0x0F) - 8) * d;
                        *b = f64::from(i32::from(q >> 4) - 8) * d;
                    }
                }
            }
            other => {
                let Some(f) = other.ggml_block() else {
                    return;
                };
                let (be, bb) = other.block();
                for (blk, o) in bytes.chunks_exact(bb).zip(out.chunks_exact_mut(be)) {
                    f(blk, o);
                }
            }
        }
    }

    /// Decodes one element at `index` (for hover readouts); `None` when the bytes do not reach it.
    pub fn value_at(self, bytes: &[u8], index: u64) -> Option<f64> {
        let (be, bb) = self.block();
        let block = usize::try_from(index / be as u64).ok()?;
        let start = block.checked_mul(bb)?;
        let blk = bytes.get(start..start.checked_add(bb)?)?;
        let mut buf = [0.0f64; QK_K];
        self.decode_into(blk, &mut buf[..be]);
        buf.get((index % be as u64) as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(e: Elem, bytes: &[u8]) -> Vec<f64> {
        let (be, bb) = e.block();
        let mut out = vec![0.0; bytes.len() / bb * be];
        e.decode_into(bytes, &mut out);
        out
    }

    #[test]
    fn e4m3fn_matches_spec_table() {
        let k = Fp8Kind::E4M3FN;
        // OCP FP8 spec, table 1: max normal S.1111.110 = 448, min normal 2^-6, max subnormal 0.875·2^-6,
        // min subnormal 2^-9, NaN S.1111.111, zeros ±0, no infinities.
        assert_eq!(fp8_value(k, 0x7E), 448.0);
        assert_eq!(fp8_value(k, 0xFE), -448.0);
        assert_eq!(fp8_value(k, 0x08), 2f64.powi(-6));
        assert_eq!(fp8_value(k, 0x07), 0.875 * 2f64.powi(-6));
        assert_eq!(fp8_value(k, 0x01), 2f64.powi(-9));
        assert_eq!(fp8_value(k, 0x38), 1.0);
        assert_eq!(fp8_value(k, 0x40), 2.0);
        assert_eq!(fp8_value(k, 0x3C), 1.5);
        assert!(fp8_value(k, 0x7F).is_nan());
        assert!(fp8_value(k, 0xFF).is_nan());
        assert_eq!(fp8_value(k, 0x00), 0.0);
        assert!(fp8_value(k, 0x80) == 0.0 && fp8_value(k, 0x80).is_sign_negative());
        // 0x78 (exponent all ones, mantissa 0) is a normal number here, not infinity.
        assert_eq!(fp8_value(k, 0x78), 256.0);
        let nans = (0u8..=255).filter(|&b| fp8_value(k, b).is_nan()).count();
        assert_eq!(nans, 2);
        assert!((0u8..=255).all(|b| !fp8_value(k, b).is_infinite()));
    }

    #[test]
    fn e4m3fnuz_matches_spec_table() {
        let k = Fp8Kind::E4M3FNUZ;
        // ONNX Float8 docs: bias 8, max 240, min normal 2^-7, min subnormal 2^-10, NaN only 0x80.
        assert_eq!(fp8_value(k, 0x7F), 240.0);
        assert_eq!(fp8_value(k, 0xFF), -240.0);
        assert_eq!(fp8_value(k, 0x08), 2f64.powi(-7));
        assert_eq!(fp8_value(k, 0x01), 2f64.powi(-10));
        assert_eq!(fp8_value(k, 0x40), 1.0);
        assert!(fp8_value(k, 0x80).is_nan());
        assert_eq!((0u8..=255).filter(|&b| fp8_value(k, b).is_nan()).count(), 1);
        assert!((0u8..=255).all(|b| !fp8_value(k, b).is_infinite()));
        assert_eq!(fp8_value(k, 0x00), 0.0);
    }

    #[test]
    fn e5m2_matches_spec_table() {
        let k = Fp8Kind::E5M2;
        // OCP FP8 spec: bias 15, max normal S.11110.11 = 57344, infinities S.11111.00, NaN S.11111.{01,10,11},
        // min normal 2^-14, max subnormal 0.75·2^-14, min subnormal 2^-16.
        assert_eq!(fp8_value(k, 0x7B), 57344.0);
        assert_eq!(fp8_value(k, 0xFB), -57344.0);
        assert_eq!(fp8_value(k, 0x7C), f64::INFINITY);
        assert_eq!(fp8_value(k, 0xFC), f64::NEG_INFINITY);
        for b in [0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF] {
            assert!(fp8_value(k, b).is_nan(), "{b:#x}");
        }
        assert_eq!(fp8_value(k, 0x04), 2f64.powi(-14));
        assert_eq!(fp8_value(k, 0x03), 0.75 * 2f64.powi(-14));
        assert_eq!(fp8_value(k, 0x01), 2f64.powi(-16));
        assert_eq!(fp8_value(k, 0x3C), 1.0);
        // E5M2 is the top byte of an f16: every finite code agrees with half's decoding.
        for b in 0u8..=255 {
            let h = f16_bits(u16::from(b) << 8);
            let v = fp8_value(k, b);
            assert!(v == h || (v.is_nan() && h.is_nan()), "{b:#x}: {v} vs {h}");
        }
    }

    #[test]
    fn e5m2fnuz_matches_spec_table() {
        let k = Fp8Kind::E5M2FNUZ;
        // ONNX Float8 docs: bias 16, max 57344, min normal 2^-15, min subnormal 2^-17, NaN only 0x80.
        assert_eq!(fp8_value(k, 0x7F), 57344.0);
        assert_eq!(fp8_value(k, 0x04), 2f64.powi(-15));
        assert_eq!(fp8_value(k, 0x01), 2f64.powi(-17));
        assert_eq!(fp8_value(k, 0x40), 1.0);
        assert!(fp8_value(k, 0x80).is_nan());
        assert_eq!((0u8..=255).filter(|&b| fp8_value(k, b).is_nan()).count(), 1);
        assert!((0u8..=255).all(|b| !fp8_value(k, b).is_infinite()));
    }

    #[test]
    fn fp8_tables_agree_with_definition_through_decode() {
        for (dt, k) in [
            (DType::F8E4M3FN, Fp8Kind::E4M3FN),
            (DType::F8E4M3FNUZ, Fp8Kind::E4M3FNUZ),
            (DType::F8E5M2, Fp8Kind::E5M2),
            (DType::F8E5M2FNUZ, Fp8Kind::E5M2FNUZ),
        ] {
            let e = Elem::of(dt).unwrap();
            let all: Vec<u8> = (0u8..=255).collect();
            let out = dec(e, &all);
            for (b, v) in all.iter().zip(&out) {
                let r = fp8_value(k, *b);
                assert!(*v == r || (v.is_nan() && r.is_nan()));
                let c = e.value_of_code(u32::from(*b));
                assert!(c == r || (c.is_nan() && r.is_nan()));
            }
        }
    }

    #[test]
    fn floats_decode_little_endian() {
        assert_eq!(dec(Elem::F64, &(-2.5f64).to_le_bytes()), vec![-2.5]);
        assert_eq!(
            dec(Elem::F32, &0.1f32.to_le_bytes()),
            vec![f64::from(0.1f32)]
        );
        // f16: 0x3C00 = 1, 0x7BFF = 65504, 0x0001 = 2^-24 (subnormal), 0x7C00 = inf, 0x7E00 = NaN.
        let h: Vec<u8> = [0x3C00u16, 0x7BFF, 0x0001, 0x7C00, 0xFC00, 0xC000]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            dec(Elem::F16, &h),
            vec![
                1.0,
                65504.0,
                2f64.powi(-24),
                f64::INFINITY,
                f64::NEG_INFINITY,
                -2.0
            ]
        );
        assert!(dec(Elem::F16, &0x7E00u16.to_le_bytes())[0].is_nan());
        // bf16: 0x3F80 = 1, 0x4049 ≈ 3.140625, 0x0001 = smallest subnormal 2^-133, 0x7F80 = inf, 0x7FC0 NaN.
        let b: Vec<u8> = [0x3F80u16, 0x4049, 0x0001, 0x7F80, 0xBF80]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            dec(Elem::BF16, &b),
            vec![1.0, 3.140625, 2f64.powi(-133), f64::INFINITY, -1.0]
        );
        assert!(dec(Elem::BF16, &0x7FC0u16.to_le_bytes())[0].is_nan());
        assert_eq!(Elem::of(DType::Ggml(GgmlType(30))), Some(Elem::BF16));
    }

    #[test]
    fn integers_decode_with_sign() {
        let le = |v: &[i64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        assert_eq!(
            dec(Elem::I64, &le(&[-3, i64::MAX])),
            vec![-3.0, 9.223372036854776e18]
        );
        assert_eq!(
            dec(Elem::U64, &u64::MAX.to_le_bytes()),
            vec![1.8446744073709552e19]
        );
        assert_eq!(dec(Elem::I32, &(-7i32).to_le_bytes()), vec![-7.0]);
        assert_eq!(
            dec(Elem::U32, &0xFFFF_FFFFu32.to_le_bytes()),
            vec![4294967295.0]
        );
        assert_eq!(dec(Elem::I16, &(-300i16).to_le_bytes()), vec![-300.0]);
        assert_eq!(dec(Elem::U16, &65535u16.to_le_bytes()), vec![65535.0]);
        assert_eq!(
            dec(Elem::I8, &[0x80, 0x7F, 0xFF]),
            vec![-128.0, 127.0, -1.0]
        );
        assert_eq!(dec(Elem::U8, &[0x80, 0xFF]), vec![128.0, 255.0]);
        // Two nibbles a byte, the low one first (ONNX and OpenVINO pack them so).
        assert_eq!(dec(Elem::U4, &[0x21, 0xF0]), vec![1.0, 2.0, 0.0, 15.0]);
        // 3-bit values 0..8 as a little-endian bitstream: 0b111_110_101_100_011_010_001_000.
        let packed = 0o76543210u32.to_le_bytes();
        assert_eq!(
            dec(Elem::Bits(3), &packed[..3]),
            (0..8).map(f64::from).collect::<Vec<_>>()
        );
        assert_eq!(Elem::Bits(3).value_at(&packed[..3], 6), Some(6.0));
        assert_eq!(dec(Elem::I4, &[0x87, 0x1F]), vec![7.0, -8.0, -1.0, 1.0]);
        assert_eq!(Elem::I4.value_at(&[0x87, 0x1F], 3), Some(1.0));
        // NF4 codes index its table: 0 is -1, 7 is 0, 15 is 1.
        let nf4 = dec(Elem::Nf4, &[0xF0, 0x87]);
        assert_eq!(&nf4[..3], &[-1.0, 1.0, 0.0]);
        assert!((nf4[3] - 0.0796).abs() < 1e-4);
        // FP4 E2M1, low nibble first: 1 is 0.5, 2 is 1, 8 is -0, 15 is -6.
        let fp4 = dec(Elem::F4E2M1, &[0x21, 0xF8]);
        assert_eq!(fp4, vec![0.5, 1.0, -0.0, -6.0]);
        assert!(fp4[2].is_sign_negative());
        assert_eq!(Elem::of(DType::F4E2M1), Some(Elem::F4E2M1));
        // E8M0: a bare exponent, bias 127; 0xff is NaN.
        let e8m0 = Elem::of(DType::F8E8M0).unwrap();
        assert_eq!(
            dec(e8m0, &[127, 128, 0, 120]),
            vec![1.0, 2.0, 2f64.powi(-127), 2f64.powi(-7)]
        );
        assert!(e8m0.value_of_code(0xff).is_nan());
        assert_eq!(dec(Elem::Bool, &[0, 1, 2]), vec![0.0, 1.0, 1.0]);
        assert_eq!(Elem::I16.value_of_code(0xFFFF), -1.0);
        assert_eq!(Elem::Bool.value_of_code(7), 1.0);
    }

    #[test]
    fn q8_0_and_q4_0_decode_like_ggml() {
        // Q8_0: scale 0.5 (f16 0x3800), then q = -128, -1, 0, 1, …
        let mut q8 = 0x3800u16.to_le_bytes().to_vec();
        let qs: Vec<i8> = (0..32)
            .map(|i| if i == 0 { -128 } else { i as i8 - 2 })
            .collect();
        q8.extend(qs.iter().map(|&q| q as u8));
        let v = dec(Elem::Q8_0, &q8);
        assert_eq!(v.len(), 32);
        assert_eq!(v[0], -64.0);
        assert_eq!(v[1], -0.5);
        assert_eq!(v[2], 0.0);
        assert_eq!(v[31], 14.5);
        // Q4_0: scale 2 (0x4000); byte j holds element j (low nibble) and j + 16 (high nibble).
        let mut q4 = 0x4000u16.to_le_bytes().to_vec();
        q4.extend((0..16u8).map(|j| (j & 0x0F) | ((15 - j) << 4)));
        let v = dec(Elem::Q4_0, &q4);
        assert_eq!(v[0], -16.0); // (0 - 8) * 2
        assert_eq!(v[15], 14.0); // (15 - 8) * 2
        assert_eq!(v[16], 14.0); // high nibble of byte 0 = 15
        assert_eq!(v[31], -16.0);
        assert_eq!(Elem::Q4_0.value_at(&q4, 16), Some(14.0));
        assert_eq!(Elem::Q4_0.value_at(&q4, 32), None);
        assert_eq!(Elem::of(DType::Ggml(GgmlType(36))), None); // not a GGML type in use
    }
}
