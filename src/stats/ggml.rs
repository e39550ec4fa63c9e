//! Dequantization of GGML's block types beyond `Q8_0` / `Q4_0`: the legacy `Q4_1`, `Q5_0`,
//! `Q5_1` (32 elements a block) and the k-quants `Q2_K` … `Q6_K` (256 elements a block, with
//! 6- or 8-bit sub-block scales), as llama.cpp's `dequantize_row_*` in `ggml-quants.c` computes
//! them. `Q4_K_M`, the most common llama.cpp file type, stores `Q4_K` and `Q6_K` tensors.
//!
//! Each function decodes one whole block (`blk` holds exactly its bytes, `out` its elements).

use super::decode::f16_bits;

/// Elements of a k-quant block (`QK_K`).
pub const QK_K: usize = 256;

fn half(b: &[u8], at: usize) -> f64 {
    f16_bits(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// `Q4_1`: `d`, `m` (f16), 16 bytes of nibbles; value = nibble·d + m.
pub fn q4_1(blk: &[u8], out: &mut [f64]) {
    let (d, m) = (half(blk, 0), half(blk, 2));
    let qs = &blk[4..20];
    let (lo, hi) = out.split_at_mut(16);
    for ((&q, a), b) in qs.iter().zip(lo).zip(hi) {
        *a = f64::from(q & 0x0F) * d + m;
        *b = f64::from(q >> 4) * d + m;
    }
}

/// `Q5_0` (`min` = `None`: value = (q − 16)·d) and `Q5_1` (value = q·d + m): `d` [, `m`], 4 bytes
/// of fifth bits, 16 bytes of nibbles.
pub fn q5(blk: &[u8], out: &mut [f64], with_min: bool) {
    let d = half(blk, 0);
    let (m, at) = if with_min {
        (half(blk, 2), 4)
    } else {
        (0.0, 2)
    };
    let qh = u32::from_le_bytes([blk[at], blk[at + 1], blk[at + 2], blk[at + 3]]);
    let qs = &blk[at + 4..at + 20];
    let offset = if with_min { 0 } else { 16 };
    for (j, &q) in qs.iter().enumerate() {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        let x0 = i32::from(q & 0x0F) | h0 as i32;
        let x1 = i32::from(q >> 4) | h1 as i32;
        out[j] = f64::from(x0 - offset) * d + m;
        out[j + 16] = f64::from(x1 - offset) * d + m;
    }
}

/// `Q2_K`: 16 scale/min bytes (4 bits each), 64 bytes of 2-bit values, `d`, `dmin`.
pub fn q2_k(blk: &[u8], out: &mut [f64]) {
    let scales = &blk[0..16];
    let qs = &blk[16..80];
    let (d, min) = (half(blk, 80), half(blk, 82));
    let mut y = 0;
    let mut is = 0;
    for half_block in 0..2 {
        let q = &qs[half_block * 32..half_block * 32 + 32];
        for shift in [0u32, 2, 4, 6] {
            for part in 0..2 {
                let sc = scales[is];
                is += 1;
                let dl = d * f64::from(sc & 0x0F);
                let ml = min * f64::from(sc >> 4);
                for &b in &q[part * 16..part * 16 + 16] {
                    out[y] = dl * f64::from((b >> shift) & 3) - ml;
                    y += 1;
                }
            }
        }
    }
}

/// `Q3_K`: 32 bytes of high bits, 64 bytes of 2-bit values, 12 bytes of 6-bit scales, `d`.
pub fn q3_k(blk: &[u8], out: &mut [f64]) {
    let hm = &blk[0..32];
    let qs = &blk[32..96];
    let raw = &blk[96..108];
    let d = half(blk, 108);
    // Sixteen 6-bit scales: the low 4 bits from bytes 0..8, the high 2 from bytes 8..12.
    let mut scales = [0i32; 16];
    for (i, s) in scales.iter_mut().enumerate() {
        let low = if i < 8 {
            raw[i] & 0x0F
        } else {
            raw[i - 8] >> 4
        };
        let high = (raw[8 + i % 4] >> (2 * (i / 4))) & 3;
        *s = i32::from(low | (high << 4)) - 32;
    }
    let mut y = 0;
    let mut is = 0;
    let mut m = 1u8;
    for half_block in 0..2 {
        let q = &qs[half_block * 32..half_block * 32 + 32];
        for shift in [0u32, 2, 4, 6] {
            for part in 0..2 {
                let dl = d * f64::from(scales[is]);
                is += 1;
                for l in part * 16..part * 16 + 16 {
                    let v = i32::from((q[l] >> shift) & 3) - if hm[l] & m != 0 { 0 } else { 4 };
                    out[y] = dl * f64::from(v);
                    y += 1;
                }
            }
            m = m.wrapping_shl(1);
        }
    }
}

/// Scale and min `j` of the 12 packed bytes of `Q4_K` / `Q5_K` (`get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// `Q4_K`: `d`, `dmin`, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles.
pub fn q4_k(blk: &[u8], out: &mut [f64]) {
    let (d, min) = (half(blk, 0), half(blk, 2));
    let scales = &blk[4..16];
    let qs = &blk[16..144];
    for (k, chunk) in out.chunks_exact_mut(64).enumerate() {
        let q = &qs[k * 32..k * 32 + 32];
        let (sc1, m1) = scale_min_k4(2 * k, scales);
        let (sc2, m2) = scale_min_k4(2 * k + 1, scales);
        let (d1, m1) = (d * f64::from(sc1), min * f64::from(m1));
        let (d2, m2) = (d * f64::from(sc2), min * f64::from(m2));
        let (lo, hi) = chunk.split_at_mut(32);
        for ((&b, a), c) in q.iter().zip(lo).zip(hi) {
            *a = d1 * f64::from(b & 0x0F) - m1;
            *c = d2 * f64::from(b >> 4) - m2;
        }
    }
}

/// `Q5_K`: `d`, `dmin`, 12 bytes of scales and mins, 32 bytes of fifth bits, 128 of nibbles.
pub fn q5_k(blk: &[u8], out: &mut [f64]) {
    let (d, min) = (half(blk, 0), half(blk, 2));
    let scales = &blk[4..16];
    let qh = &blk[16..48];
    let qs = &blk[48..176];
    for (k, chunk) in out.chunks_exact_mut(64).enumerate() {
        let q = &qs[k * 32..k * 32 + 32];
        let (u1, u2) = (1u8 << (2 * k), 2u8 << (2 * k));
        let (sc1, m1) = scale_min_k4(2 * k, scales);
        let (sc2, m2) = scale_min_k4(2 * k + 1, scales);
        let (d1, m1) = (d * f64::from(sc1), min * f64::from(m1));
        let (d2, m2) = (d * f64::from(sc2), min * f64::from(m2));
        let (lo, hi) = chunk.split_at_mut(32);
        for (l, (a, c)) in lo.iter_mut().zip(hi).enumerate() {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            *a = d1 * f64::from((q[l] & 0x0F) + h1) - m1;
            *c = d2 * f64::from((q[l] >> 4) + h2) - m2;
        }
    }
}

/// `Q6_K`: 128 bytes of low nibbles, 64 bytes of high 2 bits, 16 signed 8-bit scales, `d`.
pub fn q6_k(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 208);
    for (n, y) in out.chunks_exact_mut(128).enumerate() {
        let ql = &blk[n * 64..n * 64 + 64];
        let qh = &blk[128 + n * 32..128 + n * 32 + 32];
        let sc = &blk[192 + n * 8..192 + n * 8 + 8];
        let s = |i: usize| d * f64::from(sc[i] as i8);
        for l in 0..32 {
            let is = l / 16;
            let q1 = i32::from((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32;
            let q2 = i32::from((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
            let q3 = i32::from((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            let q4 = i32::from((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = s(is) * f64::from(q1);
            y[l + 32] = s(is + 2) * f64::from(q2);
            y[l + 64] = s(is + 4) * f64::from(q3);
            y[l + 96] = s(is + 6) * f64::from(q4);
        }
    }
}

/// The 16 levels of `IQ4_NL` / `IQ4_XS` (`kvalues_iq4nl`).
const IQ4: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// `IQ4_NL`: `d`, 16 bytes of nibbles indexing a non-linear table; value = d·level.
pub fn iq4_nl(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 0);
    let (lo, hi) = out.split_at_mut(16);
    for ((&q, a), b) in blk[2..18].iter().zip(lo).zip(hi) {
        *a = d * f64::from(IQ4[usize::from(q & 0x0F)]);
        *b = d * f64::from(IQ4[usize::from(q >> 4)]);
    }
}

/// `IQ4_XS`: `d`, 2 + 4 bytes of 6-bit sub-block scales, 128 bytes of nibbles (`IQ4_NL`'s
/// levels), 8 sub-blocks of 32.
pub fn iq4_xs(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 0);
    let scales_h = u16::from_le_bytes([blk[2], blk[3]]);
    let scales_l = &blk[4..8];
    let qs = &blk[8..136];
    for (ib, y) in out.chunks_exact_mut(32).enumerate() {
        let low = (scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F;
        let high = ((scales_h >> (2 * ib)) & 3) as u8;
        let dl = d * f64::from(i32::from(low | (high << 4)) - 32);
        let q = &qs[ib * 16..ib * 16 + 16];
        let (lo, hi) = y.split_at_mut(16);
        for ((&b, a), c) in q.iter().zip(lo).zip(hi) {
            *a = dl * f64::from(IQ4[usize::from(b & 0x0F)]);
            *c = dl * f64::from(IQ4[usize::from(b >> 4)]);
        }
    }
}

/// `MXFP4` (OCP microscaling): an E8M0 scale byte, 16 bytes of FP4 (E2M1) nibbles; value =
/// 2^(e − 128) · (twice the E2M1 value), as ggml stores the levels doubled.
pub fn mxfp4(blk: &[u8], out: &mut [f64]) {
    const LEVELS: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];
    let d = 2f64.powi(i32::from(blk[0]) - 128);
    let (lo, hi) = out.split_at_mut(16);
    for ((&q, a), b) in blk[1..17].iter().zip(lo).zip(hi) {
        *a = d * f64::from(LEVELS[usize::from(q & 0x0F)]);
        *b = d * f64::from(LEVELS[usize::from(q >> 4)]);
    }
}

/// `TQ2_0` (ternary, BitNet): 64 bytes of 2-bit values (q − 1 ∈ {−1, 0, 1}), `d`.
pub fn tq2_0(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 64);
    for (g, y) in out.chunks_exact_mut(128).enumerate() {
        let q = &blk[g * 32..g * 32 + 32];
        for (s, part) in y.chunks_exact_mut(32).enumerate() {
            for (&b, v) in q.iter().zip(part) {
                *v = d * f64::from(i32::from((b >> (2 * s)) & 3) - 1);
            }
        }
    }
}

/// `TQ1_0` (ternary, BitNet): five trits per byte in 48 bytes, four per byte in 4 more, `d`.
/// A trit is read as `((q·3^m mod 256)·3) >> 8`, minus one.
pub fn tq1_0(blk: &[u8], out: &mut [f64]) {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let d = half(blk, 52);
    let trit = |q: u8, m: usize| -> f64 {
        let v = q.wrapping_mul(POW3[m]);
        f64::from(i32::from(((u16::from(v) * 3) >> 8) as u8) - 1)
    };
    let mut y = 0;
    for (bytes, trits) in [(&blk[0..32], 5), (&blk[32..48], 5), (&blk[48..52], 4)] {
        for m in 0..trits {
            for &q in bytes {
                out[y] = d * trit(q, m);
                y += 1;
            }
        }
    }
}

// --- Grid-based types: each group of 4 or 8 values is an entry of a codebook (`iq_grids`).

use super::iq_grids::{IQ1S, IQ2S, IQ2XS, IQ2XXS, IQ3S, IQ3XXS, KSIGNS};

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// ±1 for bit `k` of a sign byte.
fn sign(byte: u8, k: usize) -> f64 {
    if (byte >> k) & 1 == 0 { 1.0 } else { -1.0 }
}

/// `IQ2_XXS`: `d`, then per 32 values two u32: four grid indices, and four 7-bit sign indices
/// with a 4-bit scale.
pub fn iq2_xxs(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 0);
    for (ib, y) in out.chunks_exact_mut(32).enumerate() {
        let aux0 = u32_at(blk, 2 + 8 * ib);
        let aux1 = u32_at(blk, 6 + 8 * ib);
        let db = d * (0.5 + f64::from(aux1 >> 28)) * 0.25;
        for g in 0..4 {
            let grid = &IQ2XXS[((aux0 >> (8 * g)) & 0xFF) as usize];
            let signs = KSIGNS[((aux1 >> (7 * g)) & 0x7F) as usize];
            for k in 0..8 {
                y[g * 8 + k] = db * f64::from(grid[k]) * sign(signs, k);
            }
        }
    }
}

/// `IQ2_XS`: `d`, 32 u16 (9-bit grid index, 7-bit sign index), 8 bytes of 4-bit scales.
pub fn iq2_xs(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 0);
    for (j, y) in out.chunks_exact_mut(16).enumerate() {
        let s = (blk[66 + j / 2] >> (4 * (j % 2))) & 0x0F;
        let db = d * (0.5 + f64::from(s)) * 0.25;
        for h in 0..2 {
            let q = u16_at(blk, 2 + 2 * (2 * j + h));
            let grid = &IQ2XS[usize::from(q & 511)];
            let signs = KSIGNS[usize::from(q >> 9)];
            for k in 0..8 {
                y[h * 8 + k] = db * f64::from(grid[k]) * sign(signs, k);
            }
        }
    }
}

/// `IQ2_S`: `d`, 32 grid index bytes, 32 sign bytes, 8 bytes of high index bits, 8 of scales.
pub fn iq2_s(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 0);
    let (qs, signs, qh, scales) = (&blk[2..34], &blk[34..66], &blk[66..74], &blk[74..82]);
    for (i, y) in out.chunks_exact_mut(8).enumerate() {
        let j = i / 2;
        let s = (scales[j / 2] >> (4 * (j % 2))) & 0x0F;
        let db = d * (0.5 + f64::from(s)) * 0.25;
        let high = (qh[i / 4] >> (2 * (i % 4))) & 3;
        let grid = &IQ2S[usize::from(qs[i]) | usize::from(high) << 8];
        for k in 0..8 {
            y[k] = db * f64::from(grid[k]) * sign(signs[i], k);
        }
    }
}

/// `IQ3_XXS`: `d`, 64 grid index bytes (4 values each), per 32 values a u32 of four 7-bit sign
/// indices and a 4-bit scale.
pub fn iq3_xxs(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 0);
    for (ib, y) in out.chunks_exact_mut(32).enumerate() {
        let aux = u32_at(blk, 66 + 4 * ib);
        let db = d * (0.5 + f64::from(aux >> 28)) * 0.5;
        for g in 0..4 {
            let signs = KSIGNS[((aux >> (7 * g)) & 0x7F) as usize];
            for k in 0..8 {
                let e = g * 8 + k;
                let grid = &IQ3XXS[usize::from(blk[2 + ib * 8 + e / 4])];
                y[e] = db * f64::from(grid[e % 4]) * sign(signs, k);
            }
        }
    }
}

/// `IQ3_S`: `d`, 64 grid index bytes, 8 bytes of ninth index bits, 32 sign bytes, 4 of scales.
pub fn iq3_s(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 0);
    let (qs, qh, signs, scales) = (&blk[2..66], &blk[66..74], &blk[74..106], &blk[106..110]);
    for (e, v) in out.iter_mut().enumerate() {
        let ib = e / 32;
        let s = (scales[ib / 2] >> (4 * (ib % 2))) & 0x0F;
        let db = d * f64::from(1 + 2 * u32::from(s));
        let i = e / 4;
        let high = (qh[i / 8] >> (i % 8)) & 1;
        let grid = &IQ3S[usize::from(qs[i]) | usize::from(high) << 8];
        *v = db * f64::from(grid[e % 4]) * sign(signs[e / 8], e % 8);
    }
}

/// The shift of `IQ1_S` / `IQ1_M` grid values.
const IQ1_DELTA: f64 = 0.125;

/// `IQ1_S`: `d`, 32 grid index bytes, per 32 values a u16 of three high index bits per group,
/// a 3-bit scale and the sign of the shift.
pub fn iq1_s(blk: &[u8], out: &mut [f64]) {
    let d = half(blk, 0);
    for (ib, y) in out.chunks_exact_mut(32).enumerate() {
        let qh = u16_at(blk, 34 + 2 * ib);
        let dl = d * f64::from(2 * ((qh >> 12) & 7) + 1);
        let delta = if qh & 0x8000 == 0 {
            IQ1_DELTA
        } else {
            -IQ1_DELTA
        };
        for g in 0..4 {
            let idx = usize::from(blk[2 + ib * 4 + g]) | usize::from((qh >> (3 * g)) & 7) << 8;
            for k in 0..8 {
                y[g * 8 + k] = dl * (f64::from(IQ1S[idx][k]) + delta);
            }
        }
    }
}

/// `IQ1_M`: 32 grid index bytes, 16 bytes of high bits and shift signs, 8 bytes of 3-bit scales
/// whose top nibbles together hold `d`.
pub fn iq1_m(blk: &[u8], out: &mut [f64]) {
    let (qs, qh, sc) = (&blk[0..32], &blk[32..48], &blk[48..56]);
    let w = |i: usize| u16_at(sc, 2 * i);
    let bits =
        ((w(0) & 0xF000) >> 12) | ((w(1) & 0xF000) >> 8) | ((w(2) & 0xF000) >> 4) | (w(3) & 0xF000);
    let d = f16_bits(bits);
    for (i, y) in out.chunks_exact_mut(8).enumerate() {
        let j = i / 2;
        let s = (w(j / 4) >> (3 * (j % 4))) & 7;
        let dl = d * f64::from(2 * s + 1);
        let nib = (qh[i / 2] >> (4 * (i % 2))) & 0x0F;
        let delta = if nib & 8 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
        let idx = usize::from(qs[i]) | usize::from(nib & 7) << 8;
        for k in 0..8 {
            y[k] = dl * (f64::from(IQ1S[idx][k]) + delta);
        }
    }
}
