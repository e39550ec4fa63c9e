// Heatmaps: one quad per piece, raw values read with textureLoad from a slot of an atlas page
// (nearest: single weights stay crisp at any zoom) and coloured here, so changing the colour map
// or range never re-uploads.

// Keep in sync with `ColorMap` codes in src/render/heatmap.rs.
const MAP_DIVERGING: u32 = 0u;
const MAP_GREY: u32 = 1u;
const MAP_VIRIDIS: u32 = 2u;
const MAP_CIVIDIS: u32 = 3u;

// Keep in sync with `HeatmapInstance` in src/render/heatmap.rs (36 bytes).
struct HeatmapInstance {
    @location(0) min: vec2<f32>,
    @location(1) max: vec2<f32>,
    // x: value at the low end, y: value at the high end.
    @location(2) range: vec2<f32>,
    @location(3) colormap: u32,
    // First texel of the piece in the page: x | y << 16.
    @location(4) texel_origin: u32,
    // Texels across and down: w | h << 16.
    @location(5) texel_size: u32,
};

struct HeatmapVarying {
    @builtin(position) position: vec4<f32>,
    // 0..1 across the tile.
    @location(0) uv: vec2<f32>,
    @location(1) @interpolate(flat) range: vec2<f32>,
    @location(2) @interpolate(flat) colormap: u32,
    @location(3) @interpolate(flat) texel_origin: vec2<u32>,
    @location(4) @interpolate(flat) texel_size: vec2<u32>,
};

// One atlas page.
@group(1) @binding(0) var values: texture_2d<f32>;

@vertex
fn vs_heatmap(@builtin(vertex_index) vertex_index: u32, h: HeatmapInstance) -> HeatmapVarying {
    let uv = quad_corner(vertex_index) * 0.5 + vec2<f32>(0.5);
    var out: HeatmapVarying;
    out.position = clip_from_screen(screen_from_rel(mix(h.min, h.max, uv)));
    out.uv = uv;
    out.range = h.range;
    out.colormap = h.colormap;
    out.texel_origin = vec2<u32>(h.texel_origin & 0xffffu, h.texel_origin >> 16u);
    out.texel_size = vec2<u32>(h.texel_size & 0xffffu, h.texel_size >> 16u);
    return out;
}

// sRGB stops of matplotlib's viridis and cividis at 0, 1/9, ..., 1.
const VIRIDIS = array<vec3<f32>, 10>(
    vec3<f32>(0.267, 0.004, 0.329), vec3<f32>(0.282, 0.157, 0.471), vec3<f32>(0.243, 0.286, 0.537),
    vec3<f32>(0.192, 0.408, 0.557), vec3<f32>(0.149, 0.510, 0.557), vec3<f32>(0.122, 0.620, 0.537),
    vec3<f32>(0.208, 0.718, 0.475), vec3<f32>(0.431, 0.808, 0.345), vec3<f32>(0.710, 0.871, 0.169),
    vec3<f32>(0.992, 0.906, 0.145)
);
const CIVIDIS = array<vec3<f32>, 10>(
    vec3<f32>(0.000, 0.133, 0.306), vec3<f32>(0.071, 0.208, 0.439), vec3<f32>(0.231, 0.286, 0.424),
    vec3<f32>(0.341, 0.365, 0.427), vec3<f32>(0.439, 0.443, 0.451), vec3<f32>(0.541, 0.525, 0.471),
    vec3<f32>(0.647, 0.612, 0.455), vec3<f32>(0.765, 0.702, 0.412), vec3<f32>(0.882, 0.800, 0.333),
    vec3<f32>(0.996, 0.910, 0.220)
);

// Linear interpolation between the stops of a 10-entry sRGB table; t in 0..1. The stops are picked
// with `select` rather than by indexing a copy of the table: on a software rasteriser the copy (a
// stack array per pixel) cost more than the rest of the shader together.
fn lut_pick(a: array<vec3<f32>, 10>, i: u32) -> vec3<f32> {
    var c = a[0];
    c = select(c, a[1], i >= 1u);
    c = select(c, a[2], i >= 2u);
    c = select(c, a[3], i >= 3u);
    c = select(c, a[4], i >= 4u);
    c = select(c, a[5], i >= 5u);
    c = select(c, a[6], i >= 6u);
    c = select(c, a[7], i >= 7u);
    c = select(c, a[8], i >= 8u);
    c = select(c, a[9], i >= 9u);
    return c;
}

fn lut(table: array<vec3<f32>, 10>, t: f32) -> vec3<f32> {
    let x = clamp(t, 0.0, 1.0) * 9.0;
    let i = min(u32(floor(x)), 8u);
    return mix(lut_pick(table, i), lut_pick(table, i + 1u), x - f32(i));
}

// sRGB colour of value `v` under `map` and `range`.
fn colormap(map: u32, v: f32, range: vec2<f32>) -> vec3<f32> {
    if map == MAP_DIVERGING {
        // Centred on zero: the larger magnitude of the range maps to full colour.
        let m = max(max(abs(range.x), abs(range.y)), 1e-30);
        let s = clamp(v / m, -1.0, 1.0);
        let white = vec3<f32>(0.969, 0.969, 0.969);
        let red = vec3<f32>(0.698, 0.094, 0.169);
        let blue = vec3<f32>(0.129, 0.400, 0.675);
        return select(mix(white, blue, -s), mix(white, red, s), s >= 0.0);
    }
    let span = range.y - range.x;
    let t = select(0.5, (v - range.x) / span, abs(span) > 1e-30);
    if map == MAP_VIRIDIS {
        return lut(VIRIDIS, t);
    }
    if map == MAP_CIVIDIS {
        return lut(CIVIDIS, t);
    }
    return vec3<f32>(clamp(t, 0.0, 1.0));
}

@fragment
fn fs_heatmap(in: HeatmapVarying) -> @location(0) vec4<f32> {
    let size = in.texel_size;
    let texel = min(vec2<u32>(max(in.uv, vec2<f32>(0.0)) * vec2<f32>(size)), size - vec2<u32>(1u));
    let v = textureLoad(values, in.texel_origin + texel, 0).r;
    // NaN by its bits: a `v != v` test may be folded away by the compiler.
    let bits = bitcast<u32>(v) & 0x7fffffffu;
    var rgb: vec3<f32>;
    if bits > 0x7f800000u {
        rgb = vec3<f32>(1.0, 0.0, 1.0);
    } else {
        rgb = colormap(in.colormap, v, in.range);
    }
    // sRGB to linear by a cubic fit (within 0.2% of the exact curve) instead of `pow`: this shader
    // covers the whole screen when zoomed into a tensor, and `pow` per pixel dominated its cost on
    // a software rasteriser.
    let lin = rgb * (rgb * (rgb * 0.305306011 + vec3<f32>(0.682171111)) + vec3<f32>(0.012522878));
    return output_color(vec4<f32>(lin, 1.0));
}
