// Labels: one instanced quad per glyph, sampled from an R8 coverage atlas. The anchor stays in
// world coordinates (relative to the draw list's origin) and is snapped to a whole pixel here, so
// glyph bitmaps land 1:1 on pixels and stay crisp while the camera moves.

// Keep in sync with `GlyphInstance` in src/render/labels.rs (40 bytes).
struct GlyphInstance {
    @location(0) anchor: vec2<f32>,
    // Top-left of the glyph quad relative to the snapped anchor, pixels.
    @location(1) offset: vec2<f32>,
    // Quad size, pixels.
    @location(2) size: vec2<f32>,
    // Atlas texel rectangle: x | y << 16, w | h << 16.
    @location(3) uv: vec2<u32>,
    @location(4) color: u32,
};

struct GlyphVarying {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) @interpolate(flat) color: vec4<f32>,
};

@group(1) @binding(0) var atlas: texture_2d<f32>;
@group(1) @binding(1) var atlas_sampler: sampler;

@vertex
fn vs_glyph(@builtin(vertex_index) vertex_index: u32, g: GlyphInstance) -> GlyphVarying {
    let corner01 = quad_corner(vertex_index) * 0.5 + vec2<f32>(0.5);
    let anchor = floor(screen_from_rel(g.anchor) + vec2<f32>(0.5));
    let uv_min = vec2<f32>(f32(g.uv.x & 0xffffu), f32(g.uv.x >> 16u));
    let uv_size = vec2<f32>(f32(g.uv.y & 0xffffu), f32(g.uv.y >> 16u));
    let atlas_size = vec2<f32>(textureDimensions(atlas));
    var out: GlyphVarying;
    out.position = clip_from_screen(anchor + g.offset + corner01 * g.size);
    out.uv = (uv_min + corner01 * uv_size) / atlas_size;
    out.color = unpack_color(g.color);
    return out;
}

@fragment
fn fs_glyph(in: GlyphVarying) -> @location(0) vec4<f32> {
    // Blending in linear light makes thin glyph stems look washed out: boost partial coverage
    // (what font renderers call text gamma).
    let coverage = pow(textureSampleLevel(atlas, atlas_sampler, in.uv, 0.0).r, 0.6);
    return output_color(vec4<f32>(in.color.rgb, in.color.a * coverage));
}
