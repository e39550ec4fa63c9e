// Nodes: one instanced quad per node, shaped in the fragment shader by a rounded-box signed
// distance function (a circle is a rounded box whose radius is its half size).

// Keep in sync with `SHAPE_CIRCLE` in src/render/nodes.rs.
const SHAPE_CIRCLE: u32 = 1u;

// Pixels outside the shape the quad covers: anti-aliasing, plus the ring of a selected, hovered
// or highlighted node. Kept tight: at overview zoom nodes are a few pixels and the quad's area is
// the fill cost.
const OUTSET_PX: f32 = 1.0;
const RING_OUTSET_PX: f32 = 5.0;

// Keep in sync with `NodeInstance` in src/render/nodes.rs (24 bytes).
struct NodeInstance {
    @location(0) center: vec2<f32>,
    @location(1) half_size: vec2<f32>,
    @location(2) fill: u32,
    // bits 0..16 flags, 16..24 shape, 24..32 alpha * 255
    @location(3) packed: u32,
};

struct NodeVarying {
    @builtin(position) position: vec4<f32>,
    // Fragment position relative to the node centre, pixels.
    @location(0) local_px: vec2<f32>,
    @location(1) @interpolate(flat) half_px: vec2<f32>,
    @location(2) @interpolate(flat) fill: vec4<f32>,
    @location(3) @interpolate(flat) packed: u32,
};

@vertex
fn vs_node(@builtin(vertex_index) vertex_index: u32, node: NodeInstance) -> NodeVarying {
    // Never smaller than a pixel, so far-zoomed nodes stay visible as dots.
    let half_px = max(node.half_size * globals.zoom, vec2<f32>(0.5));
    let corner = quad_corner(vertex_index);
    let ringed = (node.packed & (FLAG_SELECTED | FLAG_HOVERED | FLAG_HIGHLIGHT)) != 0u;
    let outset = select(OUTSET_PX, RING_OUTSET_PX, ringed);
    let local = corner * (half_px + vec2<f32>(outset));
    var out: NodeVarying;
    out.position = clip_from_screen(screen_from_rel(node.center) + local);
    out.local_px = local;
    out.half_px = half_px;
    out.fill = unpack_color(node.fill);
    out.packed = node.packed;
    return out;
}

// Signed distance to a rounded box of half size `half` and corner radius `r` (negative inside).
fn sd_round_box(p: vec2<f32>, half: vec2<f32>, r: f32) -> f32 {
    let q = abs(p) - half + vec2<f32>(r);
    return length(max(q, vec2<f32>(0.0))) + min(max(q.x, q.y), 0.0) - r;
}

fn premul(rgb: vec3<f32>, a: f32) -> vec4<f32> {
    return vec4<f32>(rgb * a, a);
}

@fragment
fn fs_node(in: NodeVarying) -> @location(0) vec4<f32> {
    let flags = in.packed & 0xffffu;
    let shape = (in.packed >> 16u) & 0xffu;
    let alpha = f32(in.packed >> 24u) / 255.0;
    let min_half = min(in.half_px.x, in.half_px.y);
    var radius = min(min_half * 0.3, 6.0);
    if shape == SHAPE_CIRCLE {
        radius = min_half;
    }
    let d = sd_round_box(in.local_px, in.half_px, radius);

    var fill = in.fill;
    let border_rgb = fill.rgb * 0.45;
    var border_w = select(0.0, 1.0, min_half >= 3.0);
    if (flags & FLAG_FRAME) != 0u {
        fill.a = fill.a * 0.12;
        border_w = 1.5;
    }
    // Body: fill inside, border along the inside of the outline.
    let inside = clamp(0.5 - d, 0.0, 1.0);
    var border = band(d, -border_w * 0.5, border_w * 0.5) * select(0.0, 1.0, border_w > 0.0);
    if (flags & FLAG_CLUSTER) != 0u && min_half >= 7.0 {
        // The second ring of the double border.
        border = max(border, band(d, -3.5, 0.5));
    }
    var color = over(premul(border_rgb, border * inside), premul(fill.rgb, fill.a * inside));

    // Rings outside the outline.
    if (flags & FLAG_HOVERED) != 0u {
        color = over(color, premul(vec3<f32>(0.25, 0.55, 1.0), band(d, 1.25, 0.75)));
    }
    if (flags & FLAG_HIGHLIGHT) != 0u {
        color = over(color, premul(vec3<f32>(0.05, 0.65, 0.55), band(d, 1.5, 1.0)));
    }
    if (flags & FLAG_SELECTED) != 0u {
        color = over(color, premul(vec3<f32>(1.0, 0.45, 0.0), band(d, 2.25, 1.75)));
    }
    var a = alpha;
    if (flags & FLAG_DIMMED) != 0u {
        a = a * 0.3;
    }
    return output_premultiplied(color * a);
}
