// Edges: instanced ribbons of constant pixel width, expanded in the vertex shader. Straight edges
// are one quad; CURVE edges are a cubic with vertical tangents tessellated into a strip of up to
// CURVE_SEGMENTS quads (instance x vertex index), the unused ones collapsed; arrowheads are a
// separate triangle per ARROW edge, anti-aliased by a triangle distance function.

// Keep in sync with `CURVE_SEGMENTS` in src/render/edges.rs.
const CURVE_SEGMENTS: u32 = 24u;
// Screen length of one curve segment, pixels.
const CURVE_SEGMENT_PX: f32 = 10.0;
// How far, in pixels, a curve's polyline may stray across its chord (keep in sync with
// `FLATNESS_PX` in src/render/edges.rs).
const FLATNESS_PX: f32 = 0.25;
// Width to fixed point (keep in sync with `WIDTH_SCALE` in src/render/edges.rs).
const WIDTH_SCALE: f32 = 32.0;

// Keep in sync with `EdgeInstance` in src/render/edges.rs (24 bytes).
struct EdgeInstance {
    @location(0) from_pos: vec2<f32>,
    @location(1) to_pos: vec2<f32>,
    @location(2) color: u32,
    // bits 0..16 width_px * WIDTH_SCALE, bits 16..32 flags
    @location(3) packed: u32,
};

struct EdgeVarying {
    @builtin(position) position: vec4<f32>,
    // x: pixels across the centre line; y: pixels along it (from the start).
    @location(0) dist: vec2<f32>,
    @location(1) @interpolate(flat) color: vec4<f32>,
    // x: half width (arrowheads: their length); y: length, for the caps of straight edges.
    @location(2) @interpolate(flat) shape: vec2<f32>,
};

struct EdgeStyle {
    half_w: f32,
    color: vec4<f32>,
    // The arrowhead is wide even when the line is thin: no thin-line alpha.
    arrow_color: vec4<f32>,
};

fn edge_style(e: EdgeInstance) -> EdgeStyle {
    let flags = e.packed >> 16u;
    var w = f32(e.packed & 0xffffu) / WIDTH_SCALE;
    if (flags & (FLAG_SELECTED | FLAG_HIGHLIGHT)) != 0u {
        w = w * 1.5 + 1.0;
    }
    var color = unpack_color(e.color);
    if (flags & FLAG_DIMMED) != 0u {
        color.a = color.a * 0.25;
    }
    var s: EdgeStyle;
    s.arrow_color = color;
    // Lines thinner than a pixel are drawn one pixel wide with proportionally less alpha.
    color.a = color.a * min(w, 1.0);
    s.half_w = max(w, 1.0) * 0.5;
    s.color = color;
    return s;
}

// Grows with the line but slower than it: a thick aggregated edge (count in the hundreds) keeps an
// arrowhead a little wider than itself instead of a 40 px triangle. An edge whose draw-list item
// gave an arrowhead size in world units (bits 24..32 of `packed`, a log₂ code; 0 for none) shrinks
// it with the zoom below the zoom where that size reaches the full one, as the nodes it points at
// shrink: an overview's 3 px nodes are not hit by 9 px arrowheads. Keep in sync with
// `arrow_scale_code` in src/render/edges.rs.
fn arrow_len(e: EdgeInstance, half_w: f32) -> f32 {
    let full = max(9.0, 3.0 * half_w + 6.0);
    let code = e.packed >> 24u;
    let world = exp2((f32(code) - 128.0) / 8.0);
    let scale = select(min(world * globals.zoom / 9.0, 1.0), 1.0, code == 0u);
    return full * scale;
}

// Arrowheads only on edges long enough on screen to show one, and only where the arrowhead is at
// least MIN_ARROW_PX long (at overview zoom they are noise and cost a triangle each). Keep in sync
// with `MIN_ARROW_PX` in src/render/edges.rs.
const MIN_ARROW_PX: f32 = 4.0;

fn has_arrow(e: EdgeInstance, screen_len: f32, len: f32) -> bool {
    return ((e.packed >> 16u) & FLAG_ARROW) != 0u && len >= MIN_ARROW_PX && screen_len >= len * 2.0;
}

fn safe_normalize(v: vec2<f32>, fallback: vec2<f32>) -> vec2<f32> {
    let l = length(v);
    if l < 1e-4 {
        return fallback;
    }
    return v / l;
}

// The curve's screen-space control points: p0, p3 at the ends, p1/p2 giving vertical tangents.
struct Cubic {
    p0: vec2<f32>,
    p1: vec2<f32>,
    p2: vec2<f32>,
    p3: vec2<f32>,
};

fn end_direction(e: EdgeInstance, a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let straight = safe_normalize(b - a, vec2<f32>(1.0, 0.0));
    if ((e.packed >> 16u) & FLAG_CURVE) != 0u && abs(b.y - a.y) > 1e-3 {
        return vec2<f32>(0.0, sign(b.y - a.y));
    }
    return straight;
}

// Screen endpoints, the end pulled back under the arrowhead so translucent edges do not overlap it.
fn endpoints(e: EdgeInstance, half_w: f32) -> Cubic {
    let a = screen_from_rel(e.from_pos);
    var b = screen_from_rel(e.to_pos);
    let len = arrow_len(e, half_w);
    if has_arrow(e, length(b - a), len) {
        let dir = end_direction(e, a, b);
        b = b - dir * len * 0.8;
    }
    var c: Cubic;
    c.p0 = a;
    c.p3 = b;
    let dy = (b.y - a.y) * 0.5;
    c.p1 = a + vec2<f32>(0.0, dy);
    c.p2 = b - vec2<f32>(0.0, dy);
    return c;
}

@vertex
fn vs_straight(@builtin(vertex_index) vertex_index: u32, e: EdgeInstance) -> EdgeVarying {
    let style = edge_style(e);
    let c = endpoints(e, style.half_w);
    let dir = safe_normalize(c.p3 - c.p0, vec2<f32>(1.0, 0.0));
    let normal = vec2<f32>(-dir.y, dir.x);
    let len = length(c.p3 - c.p0);
    let corner = quad_corner(vertex_index);
    // Coverage reaches zero half a pixel beyond the half width and the ends (see fs_edge), so the
    // quad stops there: a 1 px line shades a 2 px band, not 3.
    let ext = style.half_w + 0.5;
    let along = select(-0.5, len + 0.5, corner.x > 0.0);
    let across = corner.y * ext;
    var out: EdgeVarying;
    out.position = clip_from_screen(c.p0 + dir * along + normal * across);
    out.dist = vec2<f32>(across, along);
    out.color = style.color;
    out.shape = vec2<f32>(style.half_w, max(len, 1e-3));
    return out;
}

// Segments that keep a curve with vertical tangents and chord `d` within FLATNESS_PX of its
// polyline across the chord. Uniform subdivision of a cubic into S pieces errs by at most
// 0.75 M / S² along any direction, M the largest second difference of the control points along
// it (Wang); across the chord of these curves M = 1.5 |dx dy| / |d|. A nearly vertical or nearly
// horizontal edge is nearly straight and needs few segments, however long it is on screen.
// Keep in sync with `flat_segments` in src/render/edges.rs.
fn flat_segments(d: vec2<f32>) -> f32 {
    return ceil(sqrt(0.75 * 1.5 * bend_px(d) / FLATNESS_PX));
}

// How far from straight a curve with chord `d` bends, pixels: |dx · dy| / |d|.
fn bend_px(d: vec2<f32>) -> f32 {
    return abs(d.x * d.y) / max(length(d), 1e-3);
}

fn bezier(c: Cubic, t: f32) -> vec2<f32> {
    let s = 1.0 - t;
    return s * s * s * c.p0 + 3.0 * s * s * t * c.p1 + 3.0 * s * t * t * c.p2 + t * t * t * c.p3;
}

fn bezier_tangent(c: Cubic, t: f32) -> vec2<f32> {
    let s = 1.0 - t;
    let d = 3.0 * s * s * (c.p1 - c.p0) + 6.0 * s * t * (c.p2 - c.p1) + 3.0 * t * t * (c.p3 - c.p2);
    return safe_normalize(d, safe_normalize(c.p3 - c.p0, vec2<f32>(1.0, 0.0)));
}

// These curves have monotone coordinates: x(t) = x0 + (x3 − x0)·h(t) with h the smoothstep
// 3t² − 2t³ (control x: x0, x0, x3, x3), and y(t) = y0 + (y3 − y0)·g(t) with g(t) = 1.5t(1 − t) + t³
// (control y: y0, mid, mid, y3). So the parameters where the curve is within a band of rows form one
// interval, found by inverting g. The closed form 0.5 − sinh(asinh(2 − 4v)/3) costs lavapipe a
// transcendental pair per vertex; g' lies within [0.75, 1.5], so an odd cubic about ½ and two
// Newton steps give g⁻¹ to 1e-7 with multiplies. `y_window` widens by WINDOW_SLACK besides.
const WINDOW_SLACK: f32 = 1e-5;

fn inv_g(v: f32) -> f32 {
    let w = v - 0.5;
    var t = 0.5 + w * (1.2623931 - 1.1302377 * w * w);
    for (var i = 0; i < 2; i++) {
        let g = ((t - 1.5) * t + 1.5) * t;
        t = t - (g - v) / ((3.0 * t - 3.0) * t + 1.5);
    }
    return clamp(t, 0.0, 1.0);
}

// Parameters where the curve's y, running from `a` to `b`, lies in [lo, hi].
fn y_window(a: f32, b: f32, lo: f32, hi: f32) -> vec2<f32> {
    let d = b - a;
    if abs(d) < 1e-3 {
        // A level curve: the hull test decides.
        return vec2<f32>(0.0, 1.0);
    }
    let u0 = clamp((lo - a) / d, 0.0, 1.0);
    let u1 = clamp((hi - a) / d, 0.0, 1.0);
    let u = vec2<f32>(min(u0, u1), max(u0, u1));
    // Exact ends where the window reaches them; slack inside.
    return vec2<f32>(
        select(max(inv_g(u.x) - WINDOW_SLACK, 0.0), 0.0, u.x <= 0.0),
        select(min(inv_g(u.y) + WINDOW_SLACK, 1.0), 1.0, u.y >= 1.0),
    );
}

// Curves of batches that need no more segments than the strip holds (`batch_needs_window` on the
// CPU): the window's branch is constant-folded away, so its arithmetic is not run for every
// vertex as a software rasteriser runs both sides of a branch.
@vertex
fn vs_curve(@builtin(vertex_index) vertex_index: u32, e: EdgeInstance) -> EdgeVarying {
    return curve_vertex(vertex_index, e, false);
}

@vertex
fn vs_curve_windowed(@builtin(vertex_index) vertex_index: u32, e: EdgeInstance) -> EdgeVarying {
    return curve_vertex(vertex_index, e, true);
}

fn curve_vertex(vertex_index: u32, e: EdgeInstance, windowed: bool) -> EdgeVarying {
    let style = edge_style(e);
    let c = endpoints(e, style.half_w);
    let polygon = length(c.p1 - c.p0) + length(c.p2 - c.p1) + length(c.p3 - c.p2);
    // The whole curve's segments: one per CURVE_SEGMENT_PX of control polygon, but no more than
    // flatness needs, from the unshortened ends (as `batch_segments` on the CPU bounds it, so the
    // strip always has min(needed, CURVE_SEGMENTS) segments' vertices). Not capped here.
    let flat = flat_segments(screen_from_rel(e.to_pos) - screen_from_rel(e.from_pos));
    let needed = max(min(ceil(polygon / CURVE_SEGMENT_PX), flat), 1.0);
    var out: EdgeVarying;
    out.color = style.color;
    out.shape = vec2<f32>(style.half_w, 0.0);
    // Off-screen curves (their control hull misses the viewport) collapse: every vertex at the
    // same point, nothing rasterized. This matters for long curves at deep zoom.
    let pad = vec2<f32>(style.half_w + 2.0);
    let lo = min(min(c.p0, c.p1), min(c.p2, c.p3)) - pad;
    let hi = max(max(c.p0, c.p1), max(c.p2, c.p3)) + pad;
    if !(all(hi >= vec2<f32>(0.0)) && all(lo <= globals.viewport)) {
        out.position = vec4<f32>(2.0, 2.0, 0.0, 1.0);
        out.dist = vec2<f32>(0.0);
        return out;
    }
    // A curve that needs more segments than the strip holds (a long one at deep zoom, running
    // across many screens) is tessellated only where it is within the (padded) rows on screen.
    var t0 = 0.0;
    var t1 = 1.0;
    if windowed && needed > f32(CURVE_SEGMENTS) {
        // The rows on screen bound the window; the columns would narrow it further for diagonal
        // curves, but lavapipe shades masked branches for every lane, so each inverse costs every
        // curve vertex of the frame.
        let wy = y_window(c.p0.y, c.p3.y, -pad.y, globals.viewport.y + pad.y);
        t0 = wy.x;
        t1 = wy.y;
        if t0 > t1 {
            out.position = vec4<f32>(2.0, 2.0, 0.0, 1.0);
            out.dist = vec2<f32>(0.0);
            return out;
        }
    }
    // Joints lie on the whole curve's uniform subdivision into `needed` segments: fixed, so they do
    // not slide as the view pans, and a tiled picture has the joints of the whole. Only when the
    // window still needs more than the strip holds are its segments spread over it.
    let j0 = floor(t0 * needed);
    let count = ceil(t1 * needed) - j0;
    let joint = f32(min(vertex_index / 2u, u32(max(min(count, f32(CURVE_SEGMENTS)), 1.0))));
    var t: f32;
    if count <= f32(CURVE_SEGMENTS) {
        t = min((j0 + joint) / needed, 1.0);
    } else {
        t = t0 + (t1 - t0) * (joint / f32(CURVE_SEGMENTS));
    }
    // A triangle strip along the curve: vertex 2j is joint j on the right, 2j+1 on the left.
    // Vertices past the last joint repeat the last two, so their triangles have no area.
    let side = select(-1.0, 1.0, (vertex_index & 1u) == 1u);
    let p = bezier(c, t);
    let dir = bezier_tangent(c, t);
    let normal = vec2<f32>(-dir.y, dir.x);
    // Coverage reaches zero half a pixel beyond the half width (see ribbon_coverage): the ribbon
    // stops there, as straight edges do.
    let across = side * (style.half_w + 0.5);
    out.position = clip_from_screen(p + normal * across);
    out.dist = vec2<f32>(across, 0.0);
    return out;
}

@vertex
fn vs_arrow(@builtin(vertex_index) vertex_index: u32, e: EdgeInstance) -> EdgeVarying {
    let style = edge_style(e);
    let a = screen_from_rel(e.from_pos);
    let tip = screen_from_rel(e.to_pos);
    let dir = end_direction(e, a, tip);
    let normal = vec2<f32>(-dir.y, dir.x);
    let len = arrow_len(e, style.half_w);
    var out: EdgeVarying;
    if !has_arrow(e, length(tip - a), len) {
        out.position = vec4<f32>(2.0, 2.0, 0.0, 1.0);
        out.dist = vec2<f32>(0.0);
        out.color = vec4<f32>(0.0);
        out.shape = vec2<f32>(0.0);
        return out;
    }
    // One triangle, not a quad around it: arrowheads are many small shapes, and lavapipe's cost is
    // the pixels covered. Arrow-local frame: x along (tip at 0, base at -len), y across. The
    // triangle grows by the half pixel where fs_arrow's coverage reaches zero: every side moves
    // out by 0.5, which for a triangle is scaling about its incentre by (r + 0.5) / r, r the
    // inradius.
    let hw = len * 0.45;
    let r = hw * len / (hw + sqrt(len * len + hw * hw));
    let k = (r + 0.5) / r;
    let tip_vertex = vertex_index == 0u;
    let corner = vec2<f32>(
        select(-len, 0.0, tip_vertex),
        select(select(-hw, hw, vertex_index == 1u), 0.0, tip_vertex),
    );
    let incentre = vec2<f32>(r - len, 0.0);
    let local = incentre + (corner - incentre) * k;
    out.position = clip_from_screen(tip + dir * local.x + normal * local.y);
    out.dist = vec2<f32>(local.y, local.x);
    out.color = style.arrow_color;
    out.shape = vec2<f32>(len, 0.0);
    return out;
}

// Coverage across a ribbon: 1 inside the half width, falling to 0 over one pixel.
fn ribbon_coverage(in: EdgeVarying) -> f32 {
    return clamp(in.shape.x + 0.5 - abs(in.dist.x), 0.0, 1.0);
}

@fragment
fn fs_straight(in: EdgeVarying) -> @location(0) vec4<f32> {
    // Square-ish caps at both ends.
    let cap = clamp(min(in.dist.y, in.shape.y - in.dist.y) + 0.5, 0.0, 1.0);
    return output_color(vec4<f32>(in.color.rgb, in.color.a * ribbon_coverage(in) * cap));
}

@fragment
fn fs_curve(in: EdgeVarying) -> @location(0) vec4<f32> {
    return output_color(vec4<f32>(in.color.rgb, in.color.a * ribbon_coverage(in)));
}

@fragment
fn fs_arrow(in: EdgeVarying) -> @location(0) vec4<f32> {
    // Isosceles triangle, tip at the origin pointing along +x.
    let len = in.shape.x;
    let hw = len * 0.45;
    let p = vec2<f32>(in.dist.y, abs(in.dist.x));
    let side = dot(p, vec2<f32>(hw, len)) / length(vec2<f32>(hw, len));
    let d = max(side, -len - p.x);
    let coverage = clamp(0.5 - d, 0.0, 1.0);
    return output_color(vec4<f32>(in.color.rgb, in.color.a * coverage));
}
