// The benchmark's baseline: the minimal instanced SDF-circle pipeline that GPU-NOTES.md measured
// (centre + radius in pixels... here in world units, colour; nothing else), and for the same-scene
// comparison the edges as flat segments. `modelmap bench render` reports our renderer's frame time
// as a ratio of this one over the same nodes (and edges).

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

// The same scene's edges, as minimally as they can be drawn with the circles' anti-aliasing: one
// instanced quad per edge from its start to its end, coverage falling off over one pixel across it
// (the same signed-distance rule as `fs_circle`), one colour; no curve, cap or arrowhead.
// Keep in sync with `BaselineSegment` in src/render/baseline.rs (24 bytes).
struct Segment {
    @location(0) start: vec2<f32>,
    @location(1) end: vec2<f32>,
    @location(2) color: u32,
    @location(3) width: f32,
};

struct SegmentVarying {
    @builtin(position) position: vec4<f32>,
    // Pixels across the centre line.
    @location(0) across: f32,
    @location(1) @interpolate(flat) half_w: f32,
    @location(2) @interpolate(flat) color: vec4<f32>,
};

@vertex
fn vs_segment(@builtin(vertex_index) vertex_index: u32, s: Segment) -> SegmentVarying {
    let a = screen_from_rel(s.start);
    let b = screen_from_rel(s.end);
    let d = b - a;
    let len = length(d);
    let dir = select(vec2<f32>(1.0, 0.0), d / len, len > 1e-6);
    let normal = vec2<f32>(-dir.y, dir.x);
    let corner = quad_corner(vertex_index);
    let half_w = max(s.width, 1.0) * 0.5;
    // Coverage reaches zero half a pixel past the half width: the quad stops there.
    let across = corner.y * (half_w + 0.5);
    var out: SegmentVarying;
    out.position = clip_from_screen(select(a, b, corner.x > 0.0) + normal * across);
    out.across = across;
    out.half_w = half_w;
    out.color = unpack_color(s.color);
    return out;
}

@fragment
fn fs_segment(in: SegmentVarying) -> @location(0) vec4<f32> {
    let coverage = clamp(in.half_w + 0.5 - abs(in.across), 0.0, 1.0);
    return output_color(vec4<f32>(in.color.rgb, in.color.a * coverage));
}
