// Shared by every modelmap pipeline: prepended to each pipeline's WGSL by `src/render/shaders.rs`.

// Per-frame camera uniform. Keep in sync with `Globals` in src/render/frame.rs.
// Item flags, one set for every pipeline. Keep in sync with `flags` in src/lod/draw_list.rs.
const FLAG_SELECTED: u32 = 1u;
const FLAG_HOVERED: u32 = 2u;
const FLAG_CLUSTER: u32 = 4u;
const FLAG_DIMMED: u32 = 8u;
const FLAG_FRAME: u32 = 16u;
const FLAG_ARROW: u32 = 32u;
const FLAG_CURVE: u32 = 64u;
const FLAG_HIGHLIGHT: u32 = 128u;

struct Globals {
    // Camera centre minus the draw list's origin, in world units (computed in f64 on the CPU).
    cam_rel: vec2<f32>,
    // Viewport (render target) size in pixels.
    viewport: vec2<f32>,
    // Pixels per world unit.
    zoom: f32,
    // Padding to 32 bytes (a vec3 would align to 16 and make it 48).
    _pad0: f32,
    _pad1: vec2<f32>,
};

// True when the render target is not sRGB, so the shader encodes its output itself. A pipeline
// constant, set from the target format when the pipeline is built (src/render/pipeline.rs), not a
// uniform: a software rasteriser evaluates both sides of a branch on a uniform for every pixel,
// three `pow`s included.
override ENCODE_SRGB: bool = false;

@group(0) @binding(0) var<uniform> globals: Globals;

// Screen pixel (origin top-left, y down) of a point relative to the draw list's origin.
fn screen_from_rel(rel: vec2<f32>) -> vec2<f32> {
    return (rel - globals.cam_rel) * globals.zoom + globals.viewport * 0.5;
}

// Clip-space position of a screen pixel.
fn clip_from_screen(px: vec2<f32>) -> vec4<f32> {
    let ndc = px / globals.viewport * 2.0 - vec2<f32>(1.0, 1.0);
    return vec4<f32>(ndc.x, -ndc.y, 0.0, 1.0);
}

fn linear_from_srgb(c: vec3<f32>) -> vec3<f32> {
    let lo = c / 12.92;
    let hi = pow((c + vec3<f32>(0.055)) / 1.055, vec3<f32>(2.4));
    return select(hi, lo, c <= vec3<f32>(0.04045));
}

fn srgb_from_linear(c: vec3<f32>) -> vec3<f32> {
    let lo = c * 12.92;
    let hi = 1.055 * pow(max(c, vec3<f32>(0.0)), vec3<f32>(1.0 / 2.4)) - vec3<f32>(0.055);
    return select(hi, lo, c <= vec3<f32>(0.0031308));
}

// A packed sRGB8 RGBA colour (byte 0 = red) as linear RGB with straight alpha.
fn unpack_color(packed: u32) -> vec4<f32> {
    let c = unpack4x8unorm(packed);
    return vec4<f32>(linear_from_srgb(c.rgb), c.a);
}

// Final fragment colour from linear RGB + straight alpha: premultiplied, encoded when the target is
// not sRGB (the blend state is premultiplied "over").
fn output_color(c: vec4<f32>) -> vec4<f32> {
    var rgb = c.rgb;
    if ENCODE_SRGB {
        rgb = srgb_from_linear(rgb);
    }
    return vec4<f32>(rgb * c.a, c.a);
}

// "Over" compositing of two premultiplied colours.
fn over(top: vec4<f32>, bottom: vec4<f32>) -> vec4<f32> {
    return top + bottom * (1.0 - top.a);
}

// Corner `i` (0..4) of a unit quad drawn as a triangle strip, in -1..1.
fn quad_corner(i: u32) -> vec2<f32> {
    return vec2<f32>(f32(i & 1u) * 2.0 - 1.0, f32((i >> 1u) & 1u) * 2.0 - 1.0);
}

// `output_color` for a premultiplied linear colour.
fn output_premultiplied(p: vec4<f32>) -> vec4<f32> {
    if p.a <= 0.0 {
        return vec4<f32>(0.0);
    }
    return output_color(vec4<f32>(p.rgb / p.a, p.a));
}

// Coverage of a band of half width `half_width` around distance `center` (1 px anti-aliasing).
fn band(d: f32, center: f32, half_width: f32) -> f32 {
    return clamp(half_width + 0.5 - abs(d - center), 0.0, 1.0);
}
