// The benchmark's baseline: the minimal instanced SDF-circle pipeline that GPU-NOTES.md measured
// (centre + radius in pixels... here in world units, colour; nothing else). `modelmap bench render`
// reports our renderer's frame time as a ratio of this one over the same nodes.

// Keep in sync with `BaselineInstance` in src/render/baseline.rs (16 bytes).
struct Circle {
    @location(0) center: vec2<f32>,
    @location(1) radius: f32,
    @location(2) color: u32,
};

struct CircleVarying {
    @builtin(position) position: vec4<f32>,
    @location(0) local: vec2<f32>,
    @location(1) @interpolate(flat) radius_px: f32,
    @location(2) @interpolate(flat) color: vec4<f32>,
};

@vertex
fn vs_circle(@builtin(vertex_index) vertex_index: u32, c: Circle) -> CircleVarying {
    let r = max(c.radius * globals.zoom, 0.5);
    let local = quad_corner(vertex_index) * (r + 1.0);
    var out: CircleVarying;
    out.position = clip_from_screen(screen_from_rel(c.center) + local);
    out.local = local;
    out.radius_px = r;
    out.color = unpack_color(c.color);
    return out;
}

@fragment
fn fs_circle(in: CircleVarying) -> @location(0) vec4<f32> {
    let coverage = clamp(in.radius_px + 0.5 - length(in.local), 0.0, 1.0);
    return output_color(vec4<f32>(in.color.rgb, in.color.a * coverage));
}
