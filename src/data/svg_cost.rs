//! What rendering an SVG will cost, estimated from its parsed tree before a pixel is drawn.
//!
//! A few hundred bytes of SVG can ask for minutes of work or gigabytes of memory: a turbulence
//! filter with 10 000 octaves, thousands of chained blurs, a morphology radius of 100 000, a
//! 200 × 200 convolution kernel, a pattern tile 100 000 units wide, patterns nested in patterns.
//! resvg draws whatever it is given and cannot be stopped halfway, so [`estimate`] walks the
//! tree first, the way resvg will, and adds up:
//!
//! * **work**, in units of roughly a nanosecond on a 2020s laptop core: pixels touched times a
//!   weight per operation (a blur pass, a turbulence octave, a kernel tap, a stroke's area);
//! * **peak memory**, in bytes: the pixel buffers alive at once (layers, filter results,
//!   pattern tiles) along the deepest nesting.
//!
//! [`crate::data::raster::rasterize_svg`] refuses the file when either exceeds its limit
//! ([`crate::data::raster::LoadLimits`]). The estimate is deliberately pessimistic (it assumes
//! every filter region covers its whole canvas area it may cover, and control polygons as long
//! as the curves); a logo of a few hundred paths costs well under 1 % of the default budget.
//! Weights were measured on the hostile cases in the tests (e.g. 3 000 chained blurs on a 256 px
//! canvas: 15 s and 1.1 GB without this check).

use std::collections::HashMap;

use resvg::tiny_skia::Transform;
use resvg::usvg::roxmltree::{Document, NodeId};
use resvg::usvg::{self, filter::Kind, Group, Node, Paint};

/// Work of visiting one node (transforms, bounding boxes, the renderer's bookkeeping). It also
/// bounds this walk: it stops once the work is over the limit, so patterns that use patterns
/// that use patterns (exponential in the nesting) are priced in bounded time.
const NODE_WORK: f64 = 1000.0;
/// Work per pixel of a layer: allocating, clearing and compositing it.
const LAYER_WORK: f64 = 4.0;
/// Work per canvas pixel of a mask (drawing its content into a layer, converting it to
/// coverage, applying it) and of a clip path: 300 nested masks on 256² pixels took 0.66 s.
const MASK_WORK: f64 = 30.0;
const CLIP_WORK: f64 = 20.0;
/// Work per pixel of a filled area.
const FILL_WORK: f64 = 2.0;
/// Work per pixel swept by a stroke.
const STROKE_WORK: f64 = 2.0;
/// Work per point of a path (flattening, edge building).
const POINT_WORK: f64 = 30.0;
/// Work per dash of a dashed stroke (tiny-skia itself refuses more than a million dashes).
const DASH_WORK: f64 = 50.0;
const MAX_DASHES: f64 = 1e6;
/// Work per pixel of a Gaussian blur (three box passes each way).
const BLUR_WORK: f64 = 80.0;
/// Work per pixel of a lighting filter.
const LIGHTING_WORK: f64 = 40.0;
/// Work per pixel and octave of turbulence (four channels of noise).
const OCTAVE_WORK: f64 = 20.0;
/// Work per pixel and kernel tap of a convolution; per tap of a morphology window.
const CONVOLVE_TAP_WORK: f64 = 5.0;
const MORPHOLOGY_TAP_WORK: f64 = 1.0;
/// Work per pixel of any other filter primitive (offset, flood, merge, blend, colour matrix…).
const PRIMITIVE_WORK: f64 = 10.0;
/// Work per pixel of an embedded raster image (decoding and drawing it).
const IMAGE_WORK: f64 = 10.0;
/// Bytes per pixel of every buffer resvg allocates (premultiplied RGBA8).
const BYTES_PER_PIXEL: f64 = 4.0;

/// The estimated cost of rendering a tree.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SvgCost {
    /// Estimated work, in roughly nanoseconds of one core.
    pub work: f64,
    /// Estimated peak bytes of pixel buffers alive at once.
    pub peak_bytes: f64,
    /// The most expensive single feature, for the message that refuses the file.
    pub worst: Option<(f64, &'static str)>,
    /// The walk stops adding once `work` is over this: the answer is already "too much".
    stop_above: f64,
}

impl SvgCost {
    fn over(&self) -> bool {
        // NaN work (it cannot happen, but) counts as over.
        self.work.is_nan() || self.work > self.stop_above
    }

    fn add_work(&mut self, work: f64, what: &'static str) {
        self.work += work;
        if self.worst.is_none_or(|(w, _)| work > w) {
            self.worst = Some((work, what));
        }
    }
}

/// Estimate the cost of rendering `tree` into a `width` × `height` pixmap, scaled by `scale`
/// (the transform [`crate::data::raster::rasterize_svg`] gives resvg). Once the work passes
/// `stop_above` the walk ends early: the estimate is then only known to be above it.
pub fn estimate(
    tree: &usvg::Tree,
    scale: f32,
    width: u32,
    height: u32,
    stop_above: f64,
) -> SvgCost {
    let mut cost = SvgCost {
        stop_above,
        ..SvgCost::default()
    };
    let canvas = Canvas {
        base: Transform::from_scale(scale, scale),
        pixels: width as f64 * height as f64,
    };
    cost.peak_bytes = canvas.pixels * BYTES_PER_PIXEL + group(tree.root(), canvas, &mut cost, 0);
    cost
}

/// Where a subtree is drawn: the transform from its absolute coordinates to pixels, and the
/// area of the buffer it is drawn into (the image, or a pattern's tile).
#[derive(Clone, Copy)]
struct Canvas {
    base: Transform,
    pixels: f64,
}

impl Canvas {
    /// Pixels of `rect` (absolute coordinates) once drawn, never more than the canvas.
    fn area(&self, rect: usvg::Rect) -> f64 {
        self.area_within(rect, self.pixels)
    }

    /// Pixels of a layer or filter region: resvg lets these reach five times the canvas's width
    /// and height (`max_filter_bbox`), so up to 25 canvases.
    fn region(&self, rect: usvg::Rect) -> f64 {
        self.area_within(rect, 25.0 * self.pixels)
    }

    fn area_within(&self, rect: usvg::Rect, most: f64) -> f64 {
        let (sx, sy) = self.base.get_scale();
        let area = (rect.width() * sx) as f64 * (rect.height() * sy) as f64;
        if area.is_finite() {
            area.clamp(1.0, most)
        } else {
            most
        }
    }
}

/// Nesting beyond this is charged as a whole canvas per level (usvg itself stops far deeper
/// documents while parsing); it only keeps this walk's own recursion bounded.
const MAX_DEPTH: usize = 1024;

/// Adds the work of `g` to `cost` and returns the peak bytes it holds while drawn.
fn group(g: &Group, canvas: Canvas, cost: &mut SvgCost, depth: usize) -> f64 {
    cost.add_work(NODE_WORK, "nodes (uses, patterns in patterns)");
    if cost.over() {
        return 0.0;
    }
    if depth > MAX_DEPTH {
        cost.add_work(f64::INFINITY, "nesting deeper than 1024 levels");
        return f64::INFINITY;
    }
    let region = canvas.region(g.abs_layer_bounding_box().to_rect());
    let mut own_bytes = 0.0;
    if g.should_isolate() {
        // A layer of the group's region, composited back onto its parent.
        own_bytes += region * BYTES_PER_PIXEL;
        cost.add_work(region * LAYER_WORK, "layers (opacity, masks, filters)");
    }
    let mut side_bytes: f64 = 0.0;
    for filter in g.filters() {
        // Every primitive's result stays alive: later primitives may name it as their input.
        own_bytes += region * BYTES_PER_PIXEL * (filter.primitives().len() + 1) as f64;
        for primitive in filter.primitives() {
            let (work, what) = primitive_work(primitive.kind(), region, canvas, cost, depth);
            cost.add_work(work, what);
        }
    }
    if let Some(clip) = g.clip_path() {
        side_bytes = side_bytes.max(clip_path(clip, canvas, cost, depth));
    }
    if let Some(mask) = g.mask() {
        side_bytes = side_bytes.max(mask_cost(mask, canvas, cost, depth));
    }
    let mut children_bytes: f64 = 0.0;
    for child in g.children() {
        let bytes = node(child, canvas, cost, depth + 1);
        children_bytes = children_bytes.max(bytes);
    }
    own_bytes + side_bytes.max(children_bytes)
}

fn clip_path(clip: &usvg::ClipPath, canvas: Canvas, cost: &mut SvgCost, depth: usize) -> f64 {
    cost.add_work(canvas.pixels * CLIP_WORK, "clip paths");
    let mut bytes = canvas.pixels * BYTES_PER_PIXEL + group(clip.root(), canvas, cost, depth + 1);
    if let Some(inner) = clip.clip_path() {
        bytes = bytes.max(clip_path(inner, canvas, cost, depth + 1));
    }
    bytes
}

fn mask_cost(mask: &usvg::Mask, canvas: Canvas, cost: &mut SvgCost, depth: usize) -> f64 {
    cost.add_work(canvas.pixels * MASK_WORK, "masks");
    let mut bytes = canvas.pixels * BYTES_PER_PIXEL + group(mask.root(), canvas, cost, depth + 1);
    if let Some(inner) = mask.mask() {
        bytes = bytes.max(mask_cost(inner, canvas, cost, depth + 1));
    }
    bytes
}

fn node(n: &Node, canvas: Canvas, cost: &mut SvgCost, depth: usize) -> f64 {
    match n {
        Node::Group(g) => group(g, canvas, cost, depth),
        Node::Path(p) => path(p, canvas, cost, depth),
        Node::Image(image) => match image.kind() {
            usvg::ImageKind::SVG(tree) => {
                // Drawn into a pixmap of its own, the size of the canvas at most.
                let inner = Canvas {
                    base: canvas.base.pre_concat(image.abs_transform()),
                    pixels: canvas.pixels,
                };
                cost.add_work(canvas.pixels * LAYER_WORK, "embedded SVG images");
                canvas.pixels * BYTES_PER_PIXEL + group(tree.root(), inner, cost, depth + 1)
            }
            _ => {
                // Embedded rasters passed the header check in raster.rs; each copy is decoded
                // whole, at its own size, then drawn.
                let size = image.size();
                let decoded = (size.width() as f64 * size.height() as f64).max(1.0);
                let drawn = canvas.area(image.abs_bounding_box());
                cost.add_work((decoded + drawn) * IMAGE_WORK, "embedded images");
                (decoded + drawn) * BYTES_PER_PIXEL
            }
        },
        // No fonts are loaded, so text has no outlines to draw.
        Node::Text(_) => 0.0,
    }
}

fn path(p: &usvg::Path, canvas: Canvas, cost: &mut SvgCost, depth: usize) -> f64 {
    cost.add_work(NODE_WORK, "nodes (uses, patterns in patterns)");
    if cost.over() {
        return 0.0;
    }
    let points = p.data().points();
    cost.add_work(points.len() as f64 * POINT_WORK, "path points");
    let mut bytes: f64 = 0.0;
    let transform = canvas.base.pre_concat(p.abs_transform());
    if let Some(fill) = p.fill() {
        cost.add_work(canvas.area(p.abs_bounding_box()) * FILL_WORK, "fills");
        bytes = bytes.max(paint(fill.paint(), transform, cost, depth));
    }
    if let Some(stroke) = p.stroke() {
        // The control polygon is at least as long as the curve: a pessimistic length.
        let length: f64 = points
            .windows(2)
            .map(|w| (w[1].x - w[0].x).hypot(w[1].y - w[0].y) as f64)
            .sum();
        let (sx, sy) = transform.get_scale();
        let px_per_unit = (sx.max(sy)) as f64;
        let width_px = (stroke.width().get() as f64 * px_per_unit).max(1.0);
        // Every piece of the outline is filled, overlaps included: thick strokes along long
        // zigzags cost their whole swept area (200 000 segments 128 px wide: 2 s).
        // (The width once more for the caps: a zero-length stroke with round caps is a disc.)
        let swept = (length * px_per_unit + width_px) * width_px;
        cost.add_work(swept * STROKE_WORK, "strokes (length × width)");
        if let Some(dashes) = stroke.dasharray() {
            let period: f64 = dashes.iter().map(|d| *d as f64).sum();
            let count = if period > 0.0 {
                (length / period).min(MAX_DASHES)
            } else {
                0.0
            };
            cost.add_work(count * DASH_WORK, "dashes");
        }
        bytes = bytes.max(paint(stroke.paint(), transform, cost, depth));
    }
    bytes
}

/// A pattern is drawn into a tile of its own size once per use.
fn paint(paint: &Paint, transform: Transform, cost: &mut SvgCost, depth: usize) -> f64 {
    let Paint::Pattern(pattern) = paint else {
        return 0.0;
    };
    if depth > MAX_DEPTH {
        cost.add_work(f64::INFINITY, "nesting deeper than 1024 levels");
        return f64::INFINITY;
    }
    let (sx, sy) = transform.pre_concat(pattern.transform()).get_scale();
    let rect = pattern.rect();
    // Unlike layers, a tile is not clipped to the canvas: resvg allocates it whole.
    let tile = (rect.width() * sx).round() as f64 * (rect.height() * sy).round() as f64;
    let tile = if tile.is_finite() {
        tile.max(1.0)
    } else {
        f64::INFINITY
    };
    cost.add_work(tile * LAYER_WORK, "pattern tiles");
    let inner = Canvas {
        base: Transform::from_scale(sx, sy),
        pixels: tile,
    };
    tile * BYTES_PER_PIXEL + group(pattern.root(), inner, cost, depth + 1)
}

fn primitive_work(
    kind: &Kind,
    region: f64,
    canvas: Canvas,
    cost: &mut SvgCost,
    depth: usize,
) -> (f64, &'static str) {
    let (sx, sy) = canvas.base.get_scale();
    let side = region.sqrt();
    match kind {
        Kind::GaussianBlur(_) => (region * BLUR_WORK, "blur filters"),
        Kind::DropShadow(_) => (region * (BLUR_WORK + PRIMITIVE_WORK), "drop-shadow filters"),
        Kind::DiffuseLighting(_) | Kind::SpecularLighting(_) => {
            (region * LIGHTING_WORK, "lighting filters")
        }
        Kind::Turbulence(t) => (
            region * OCTAVE_WORK * t.num_octaves().max(1) as f64,
            "turbulence octaves (numOctaves)",
        ),
        Kind::ConvolveMatrix(c) => {
            let taps = c.matrix().columns() as f64 * c.matrix().rows() as f64;
            (
                region * CONVOLVE_TAP_WORK * taps,
                "convolution kernels (order)",
            )
        }
        Kind::Morphology(m) => {
            // The window is clipped to the region by the implementation's loops at worst.
            let wx = (2.0 * (m.radius_x().get() * sx) as f64 + 1.0).min(side.max(1.0) * 2.0);
            let wy = (2.0 * (m.radius_y().get() * sy) as f64 + 1.0).min(side.max(1.0) * 2.0);
            (region * MORPHOLOGY_TAP_WORK * wx * wy, "morphology radius")
        }
        Kind::Image(image) => {
            group(image.root(), canvas, cost, depth + 1);
            (region * PRIMITIVE_WORK, "feImage")
        }
        _ => (region * PRIMITIVE_WORK, "filter primitives"),
    }
}

/// How many elements the document becomes once every reference is followed: each `<use>`,
/// `href="#…"` and `url(#…)` (in attributes, `style` and `<style>` sheets) copies what it names,
/// a marker is copied onto every vertex of the path that names it, and an embedded `data:` image
/// counts one element per KiB (usvg decodes it again for every copy).
///
/// usvg expands references while it converts the document, so a few kilobytes of patterns that
/// fill with patterns, or groups that use groups ten times each, cost it exponential time (a
/// 4 KB file of 30 nested patterns: 50 s) before [`estimate`] could see the tree. This runs on
/// the XML first, in time linear in the document. The count saturates at `limit + 1`, which is
/// also the answer for references that form a cycle (usvg's repair of cycles is quadratic) or
/// nest deeper than [`MAX_REFERENCE_DEPTH`].
pub fn expanded_elements(doc: &Document, limit: u64) -> u64 {
    let mut ids: HashMap<&str, Vec<NodeId>> = HashMap::new();
    let mut stylesheet_refs = Vec::new();
    for node in doc.descendants() {
        if let Some(id) = node.attribute("id") {
            ids.entry(id.trim()).or_default().push(node.id());
        }
        if node.is_element() && node.tag_name().name() == "style" {
            for text in node.children().filter_map(|c| c.text()) {
                stylesheet_refs.extend(url_references(text));
            }
        }
    }
    stylesheet_refs.sort_unstable();
    stylesheet_refs.dedup();
    let mut walk = Expansion {
        doc,
        ids,
        stylesheet_refs,
        stylesheet_size: None,
        memo: HashMap::new(),
        limit,
        cycle: false,
    };
    let size = walk.size(doc.root().id(), 0);
    if walk.cycle {
        limit.saturating_add(1)
    } else {
        size
    }
}

/// Reference chains and nesting deeper than this are refused (usvg recurses along them).
pub const MAX_REFERENCE_DEPTH: usize = 2048;

struct Expansion<'a, 'input> {
    doc: &'a Document<'input>,
    /// Every element of each id: usvg resolves some references to the first, some to the last,
    /// so a reference counts as the largest.
    ids: HashMap<&'a str, Vec<NodeId>>,
    /// Ids named by `url(#…)` in `<style>` sheets: a rule may apply to any element.
    stylesheet_refs: Vec<&'a str>,
    /// What the style sheets' references add to each element, computed once.
    stylesheet_size: Option<u64>,
    /// Finished sizes, and `None` for nodes being expanded.
    memo: HashMap<NodeId, Option<u64>>,
    limit: u64,
    /// A reference led back into an element being expanded.
    cycle: bool,
}

impl<'a> Expansion<'a, '_> {
    fn size(&mut self, id: NodeId, depth: usize) -> u64 {
        let over = self.limit.saturating_add(1);
        if depth > MAX_REFERENCE_DEPTH || self.cycle {
            return over;
        }
        match self.memo.get(&id) {
            Some(Some(size)) => return *size,
            Some(None) => {
                self.cycle = true;
                return over;
            }
            None => {}
        }
        self.memo.insert(id, None);
        let node = self.doc.get_node(id).expect("id from this document");
        let mut total: u64 = u64::from(node.is_element());
        let mut targets: Vec<&'a str> = Vec::new();
        if node.is_element() {
            for attribute in node.attributes() {
                let value = attribute.value();
                if attribute.name() == "href" {
                    let value = value.trim();
                    if let Some(target) = value.strip_prefix('#') {
                        targets.push(target.trim());
                    } else if value.starts_with("data:image/svg") {
                        // A document inside: parsed again for every copy, and checked on its own
                        // against the whole limit, so each copy may cost that much.
                        total = total.saturating_add(self.limit / 100);
                    } else if value.starts_with("data:") {
                        total = total.saturating_add(1 + value.len() as u64 / 1024);
                    }
                }
                targets.extend(url_references(value));
            }
            total = total.saturating_add(self.stylesheet_size(depth));
        }
        let vertices = || {
            ["d", "points"]
                .iter()
                .filter_map(|a| node.attribute(*a))
                .map(|v| {
                    v.split(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E')))
                        .filter(|t| !t.is_empty())
                        .count() as u64
                })
                .sum::<u64>()
                / 2
                + 1
        };
        for target in targets {
            let copies = match self.ids.get(target) {
                Some(nodes) if self.is_marker(nodes) => vertices(),
                _ => 1,
            };
            let size = self.size_of_id(target, depth);
            total = total.saturating_add(size.saturating_mul(copies));
            if total > self.limit {
                break;
            }
        }
        for child in node.children() {
            if total > self.limit {
                break;
            }
            total = total.saturating_add(self.size(child.id(), depth + 1));
        }
        let total = total.min(over);
        self.memo.insert(id, Some(total));
        total
    }

    fn size_of_id(&mut self, id: &str, depth: usize) -> u64 {
        let nodes = self.ids.get(id).cloned().unwrap_or_default();
        nodes
            .into_iter()
            .map(|node| self.size(node, depth + 1))
            .max()
            .unwrap_or(0)
    }

    fn is_marker(&self, nodes: &[NodeId]) -> bool {
        nodes.iter().any(|n| {
            self.doc
                .get_node(*n)
                .is_some_and(|n| n.tag_name().name() == "marker")
        })
    }

    /// The size the style sheets' references add to an element (0 while it is being computed).
    fn stylesheet_size(&mut self, depth: usize) -> u64 {
        if let Some(size) = self.stylesheet_size {
            return size;
        }
        self.stylesheet_size = Some(0);
        let mut size: u64 = 0;
        for target in self.stylesheet_refs.clone() {
            size = size.saturating_add(self.size_of_id(target, depth));
        }
        self.stylesheet_size = Some(size);
        size
    }
}

/// The ids in every `url(#id)` of a value (an attribute, a style, a style sheet).
fn url_references(value: &str) -> impl Iterator<Item = &str> {
    value.split("url(").skip(1).filter_map(|rest| {
        let inside = rest
            .split(')')
            .next()?
            .trim()
            .trim_matches(['"', '\''])
            .trim();
        inside.strip_prefix('#').map(str::trim)
    })
}

/// Refuse a document type definition whose entities would expand the text past `max_bytes`:
/// roxmltree bounds entities nested in entities, but not how often a large one is used, so 20 MB
/// of `&big;` could become terabytes while parsing. Entities that refer to other entities are
/// refused outright (no logo needs them; Illustrator's namespace entities do not).
pub fn check_entities(text: &str, max_bytes: usize) -> Result<(), String> {
    let mut expanded: usize = 0;
    for declaration in text.split("<!ENTITY").skip(1) {
        let rest = declaration.trim_start();
        if rest.starts_with('%') {
            return Err("it declares a parameter entity".into());
        }
        let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (name, rest) = rest.split_at(name_end);
        let rest = rest.trim_start();
        let Some(quote) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
            continue; // SYSTEM or PUBLIC: never loaded
        };
        let value = rest[1..].split(quote).next().unwrap_or_default();
        if value.contains(['&', '%']) {
            return Err(format!("its entity `{name}` refers to other entities"));
        }
        let uses = text.matches(&format!("&{name};")).count();
        expanded = expanded.saturating_add(uses.saturating_mul(value.len()));
    }
    if expanded > max_bytes {
        return Err(format!(
            "its entities expand to {expanded} bytes of text (limit {max_bytes})"
        ));
    }
    Ok(())
}
