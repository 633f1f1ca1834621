//! Turning an image file into pixels, safely.
//!
//! Logos arrive as SVG (vector) or as PNG/JPEG/GIF/WebP (raster). Either may be hostile or broken:
//! an SVG can point at `file:///etc/passwd` or an http URL, declare a 50 000 × 50 000 canvas, or
//! embed a huge picture; a PNG can be truncated or be a "decompression bomb" that claims billions
//! of pixels. Every loader here is bounded in bytes read, pixels allocated and files touched:
//! nothing outside the given bytes is ever opened.

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use image::RgbaImage;
use resvg::{tiny_skia, usvg};

use super::format::{sniff, ImageFormat};
use super::svg_cost;

/// Bounds applied to every image that is loaded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadLimits {
    /// Larger files are refused before they are parsed.
    pub max_file_bytes: u64,
    /// Largest width or height a raster image may declare.
    pub max_dimension: u32,
    /// Largest decoded allocation, in bytes, for one raster image.
    pub max_alloc_bytes: u64,
    /// SVGs are rendered so that their longer side has this many pixels (whatever size they
    /// declare), then cleaned and resized like raster images.
    pub svg_render_size: u32,
    /// Largest estimated work of rendering one SVG, in roughly nanoseconds of one core (see
    /// [`svg_cost`]): filters, patterns, masks and strokes are priced before anything is drawn.
    #[serde(default = "default_svg_max_work")]
    pub svg_max_work: f64,
    /// Largest estimated peak of pixel buffers (layers, filter results, pattern tiles) for one
    /// SVG, in bytes.
    #[serde(default = "default_svg_max_bytes")]
    pub svg_max_bytes: u64,
    /// Time budget of one image, in seconds: an image still loading after it is reported as
    /// too slow and skipped (its thread finishes in the background).
    #[serde(default = "default_max_seconds")]
    pub max_seconds: f64,
    /// Bytes that all images being decoded at once may hold together, whatever the number of
    /// threads: a decoder waits for room before it allocates.
    #[serde(default = "default_max_total_bytes")]
    pub max_total_bytes: u64,
}

fn default_svg_max_work() -> f64 {
    2e9
}
fn default_svg_max_bytes() -> u64 {
    256 << 20
}
fn default_max_seconds() -> f64 {
    10.0
}
fn default_max_total_bytes() -> u64 {
    1 << 30
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 20 << 20,
            max_dimension: 8192,
            max_alloc_bytes: 512 << 20,
            svg_render_size: 256,
            svg_max_work: default_svg_max_work(),
            svg_max_bytes: default_svg_max_bytes(),
            max_seconds: default_max_seconds(),
            max_total_bytes: default_max_total_bytes(),
        }
    }
}

/// Why an image could not be loaded. The `Display` text is what the report and the console show.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("file is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("corrupt or truncated {format}: {detail}")]
    Corrupt { format: ImageFormat, detail: String },
    #[error("{format} declares {width}×{height} pixels, over the {limit}-pixel limit per side")]
    Dimensions {
        format: ImageFormat,
        width: u64,
        height: u64,
        limit: u32,
    },
    #[error("svg refers to an outside resource ({0}); only self-contained SVGs are loaded")]
    ExternalReference(String),
    #[error("svg has an empty or invalid size ({0})")]
    BadSvgSize(String),
    #[error(
        "svg would cost too much to draw: {0} (to allow it, raise LoadLimits::svg_max_work or \
         svg_max_bytes in src/data/raster.rs)"
    )]
    TooComplex(String),
    #[error(
        "still loading after {seconds} s, the time budget of one image \
         (LoadLimits::max_seconds in src/data/raster.rs); skipped"
    )]
    TooSlow { seconds: f64 },
    #[error(
        "needs {need} bytes to decode, more than the {total} bytes all decoders may share \
         (LoadLimits::max_total_bytes in src/data/raster.rs)"
    )]
    OverMemoryBudget { need: u64, total: u64 },
}

impl LoadError {
    /// A short, stable identifier of the reason, for `report.csv` and the summary table.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::TooLarge { .. } => "too-large",
            LoadError::NotAnImage(_) => "not-an-image",
            LoadError::Corrupt { .. } => "corrupt",
            LoadError::Dimensions { .. } => "too-many-pixels",
            LoadError::ExternalReference(_) => "svg-external-ref",
            LoadError::BadSvgSize(_) => "svg-bad-size",
            LoadError::TooComplex(_) => "svg-too-complex",
            LoadError::TooSlow { .. } => "too-slow",
            LoadError::OverMemoryBudget { .. } => "over-memory-budget",
        }
    }
}

/// A loaded image: straight (not premultiplied) RGBA pixels and the format it came from.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub format: ImageFormat,
    pub pixels: RgbaImage,
    /// A large raster keeps its room in the shared decode budget while it is alive, so the
    /// copies cleaning makes of it (flattened, masked: ≈ 12 bytes a pixel in all) are counted.
    _room: Option<Arc<DecodeReservation>>,
}

/// Load an image file's bytes, recognising the format from the bytes themselves, within the
/// time budget `limits.max_seconds`.
///
/// The work runs on a thread of its own; if it is not done in time the image is reported as
/// [`LoadError::TooSlow`] and the caller goes on. Rust cannot stop a thread, so the late one
/// finishes (or the process ends) in the background — the pricing of SVGs in [`svg_cost`] and
/// the memory budget keep such stragglers rare and bounded.
pub fn load_image(bytes: &[u8], limits: &LoadLimits) -> Result<LoadedImage, LoadError> {
    if !(limits.max_seconds > 0.0 && limits.max_seconds.is_finite()) {
        return load_image_now(bytes, limits);
    }
    let (send, receive) = std::sync::mpsc::sync_channel(1);
    let (bytes_owned, limits_owned) = (bytes.to_vec(), limits.clone());
    let given_up = Arc::new(AtomicBool::new(false));
    let flag = given_up.clone();
    let spawned = std::thread::Builder::new()
        .name("image-loader".into())
        // resvg recurses once per nesting level of the SVG.
        .stack_size(16 << 20)
        .spawn(move || {
            GIVEN_UP.with(|g| *g.borrow_mut() = Some(flag));
            let _ = send.send(load_image_now(&bytes_owned, &limits_owned));
        });
    if spawned.is_err() {
        // No thread to spare (a resource limit): load on this one, without a deadline.
        return load_image_now(bytes, limits);
    }
    match receive.recv_timeout(Duration::from_secs_f64(limits.max_seconds)) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => {
            // The straggler stops at its next check (before reserving memory, before drawing).
            given_up.store(true, Ordering::Relaxed);
            Err(LoadError::TooSlow {
                seconds: limits.max_seconds,
            })
        }
        Err(RecvTimeoutError::Disconnected) => Err(LoadError::Corrupt {
            format: sniff(bytes).unwrap_or(ImageFormat::Svg),
            detail: "the decoder stopped unexpectedly (a panic in a library); skipped".into(),
        }),
    }
}

thread_local! {
    /// Set on a loader thread: true once its caller stopped waiting for it.
    static GIVEN_UP: std::cell::RefCell<Option<Arc<AtomicBool>>> =
        const { std::cell::RefCell::new(None) };
}

/// True on a loader thread whose caller has given up on it: it should stop before more work.
fn given_up() -> bool {
    GIVEN_UP.with(|g| {
        g.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

/// [`load_image`] on the calling thread, without a deadline.
pub fn load_image_now(bytes: &[u8], limits: &LoadLimits) -> Result<LoadedImage, LoadError> {
    let size = bytes.len() as u64;
    if size > limits.max_file_bytes {
        return Err(LoadError::TooLarge {
            size,
            limit: limits.max_file_bytes,
        });
    }
    let format = sniff(bytes).map_err(LoadError::NotAnImage)?;
    let (pixels, room) = match format {
        ImageFormat::Svg => (rasterize_svg(bytes, limits)?, None),
        raster => {
            let (pixels, room) = decode_raster_reserved(bytes, raster, limits)?;
            (pixels, Some(Arc::new(room)))
        }
    };
    Ok(LoadedImage {
        format,
        pixels,
        _room: room,
    })
}

/// Decode PNG/JPEG/GIF/WebP with the `image` crate under dimension and allocation limits.
/// Animated GIF/WebP give their first frame.
pub fn decode_raster(
    bytes: &[u8],
    format: ImageFormat,
    limits: &LoadLimits,
) -> Result<RgbaImage, LoadError> {
    decode_raster_reserved(bytes, format, limits).map(|(pixels, _room)| pixels)
}

/// [`decode_raster`], returning the image's room in the shared decode budget with it.
fn decode_raster_reserved(
    bytes: &[u8],
    format: ImageFormat,
    limits: &LoadLimits,
) -> Result<(RgbaImage, DecodeReservation), LoadError> {
    let image_format = match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Svg => {
            return Err(LoadError::NotAnImage(
                "svg given to the raster decoder".into(),
            ))
        }
    };
    let corrupt = |e: image::ImageError| LoadError::Corrupt {
        format,
        detail: e.to_string(),
    };
    // Read the header first: a bomb is refused before any pixel buffer is allocated.
    let (width, height) = image::ImageReader::with_format(Cursor::new(bytes), image_format)
        .into_dimensions()
        .map_err(corrupt)?;
    check_dimensions(format, width as u64, height as u64, limits)?;
    // The decoder's buffer (up to 8 bytes a pixel: 16-bit RGBA) or the RGBA8 result, and the
    // copies cleaning makes (RGB on white, the ink mask).
    let room = DecodeBudget::reserve(width as u64 * height as u64 * 12, limits)?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_dimension);
    image_limits.max_image_height = Some(limits.max_dimension);
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(image_limits);
    Ok((reader.decode().map_err(corrupt)?.into_rgba8(), room))
}

fn check_dimensions(
    format: ImageFormat,
    width: u64,
    height: u64,
    limits: &LoadLimits,
) -> Result<(), LoadError> {
    let limit = limits.max_dimension;
    if width == 0 || height == 0 {
        return Err(LoadError::Corrupt {
            format,
            detail: format!("zero-sized image ({width}×{height})"),
        });
    }
    if width > limit as u64 || height > limit as u64 {
        return Err(LoadError::Dimensions {
            format,
            width,
            height,
            limit,
        });
    }
    Ok(())
}

/// Render an SVG with resvg so that its longer side is `limits.svg_render_size` pixels.
///
/// Safety measures:
/// * `resources_dir` is unset and the `<image href>` resolver is replaced: a reference to a file
///   or URL is never opened, and the SVG is refused with [`LoadError::ExternalReference`];
/// * images embedded as `data:` URIs are accepted only if their header declares a size within
///   the limits;
/// * no fonts are loaded, so `<text>` is not drawn (logos here should carry no words anyway);
/// * whatever size the SVG declares, the pixel buffer is at most `svg_render_size` squared.
// ANCHOR: rasterize_svg
pub fn rasterize_svg(bytes: &[u8], limits: &LoadLimits) -> Result<RgbaImage, LoadError> {
    let refused: Arc<Mutex<Vec<LoadError>>> = Arc::default();
    let options = safe_svg_options(limits, refused.clone());
    let parsed = parse_svg(bytes, &options, limits);
    if let Some(first) = refused.lock().expect("poisoned").first() {
        return Err(first.clone());
    }
    let tree = parsed?;
    let size = tree.size();
    let (w, h) = (size.width(), size.height());
    if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0) {
        return Err(LoadError::BadSvgSize(format!("{w}×{h}")));
    }
    let target = limits.svg_render_size as f32;
    let scale = target / w.max(h);
    let out_w = ((w * scale).round() as u32).clamp(1, limits.svg_render_size);
    let out_h = ((h * scale).round() as u32).clamp(1, limits.svg_render_size);
    let _room = check_svg_cost(&tree, scale, out_w, out_h, limits)?;
    if given_up() {
        return Err(LoadError::TooSlow { seconds: 0.0 });
    }
    let mut pixmap = tiny_skia::Pixmap::new(out_w, out_h)
        .ok_or_else(|| LoadError::BadSvgSize(format!("{out_w}×{out_h}")))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    // tiny-skia stores premultiplied alpha; the rest of the pipeline wants straight RGBA.
    let mut straight = Vec::with_capacity((out_w * out_h * 4) as usize);
    for p in pixmap.pixels() {
        let c = p.demultiply();
        straight.extend_from_slice(&[c.red(), c.green(), c.blue(), c.alpha()]);
    }
    Ok(RgbaImage::from_raw(out_w, out_h, straight).expect("buffer size matches"))
}
// ANCHOR_END: rasterize_svg

/// Parse an SVG, refusing it first if its references expand into too many elements.
fn parse_svg(
    bytes: &[u8],
    options: &usvg::Options,
    limits: &LoadLimits,
) -> Result<usvg::Tree, LoadError> {
    let corrupt = |detail: String| LoadError::Corrupt {
        format: ImageFormat::Svg,
        detail,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| corrupt(format!("not UTF-8 text: {e}")))?;
    let doc = parse_xml(text)
        .map_err(|e| e.unwrap_or_else(|e| corrupt(format!("SVG data parsing failed cause {e}"))))?;
    check_svg_references(&doc, limits)?;
    usvg::Tree::from_xmltree(&doc, options).map_err(|e| corrupt(e.to_string()))
}

/// Parse SVG text as usvg does (a DTD allowed), after bounding what its entities expand to.
/// `Err(Ok(_))`: refused as too costly; `Err(Err(_))`: not well-formed XML.
fn parse_xml(
    text: &str,
) -> Result<usvg::roxmltree::Document<'_>, Result<LoadError, usvg::roxmltree::Error>> {
    svg_cost::check_entities(text, 4 * text.len() + (1 << 20))
        .map_err(|e| Ok(LoadError::TooComplex(e)))?;
    let options = usvg::roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    usvg::roxmltree::Document::parse_with_options(text, options).map_err(Err)
}

/// Work charged per element of the expanded document (usvg's conversion and its tree).
const ELEMENT_WORK: f64 = 10_000.0;

fn check_svg_references(
    doc: &usvg::roxmltree::Document,
    limits: &LoadLimits,
) -> Result<(), LoadError> {
    let limit = (limits.svg_max_work / ELEMENT_WORK) as u64;
    let elements = svg_cost::expanded_elements(doc, limit);
    if elements > limit {
        return Err(LoadError::TooComplex(format!(
            "its references (use, href, url(#…)) expand to over {limit} elements or nest deeper \
             than {} levels",
            svg_cost::MAX_REFERENCE_DEPTH
        )));
    }
    Ok(())
}

/// Refuse an SVG whose estimated work or memory is over the limits, and reserve its memory.
fn check_svg_cost(
    tree: &usvg::Tree,
    scale: f32,
    width: u32,
    height: u32,
    limits: &LoadLimits,
) -> Result<DecodeReservation, LoadError> {
    let cost = svg_cost::estimate(tree, scale, width, height, limits.svg_max_work);
    let megabytes = cost.peak_bytes / 1e6;
    if !(cost.work <= limits.svg_max_work && cost.peak_bytes <= limits.svg_max_bytes as f64) {
        let what = cost.worst.map_or("the whole drawing", |(_, what)| what);
        return Err(LoadError::TooComplex(format!(
            "mostly {what}; estimated work {:.1e} (limit {:.1e}), buffers {megabytes:.0} MB \
             (limit {:.0} MB)",
            cost.work,
            limits.svg_max_work,
            limits.svg_max_bytes as f64 / 1e6
        )));
    }
    DecodeBudget::reserve(cost.peak_bytes as u64, limits)
}

/// The bytes that images being decoded hold together, shared by every thread of the process.
struct DecodeBudget {
    /// Bytes reserved now, and the most ever reserved at once.
    state: Mutex<(u64, u64)>,
    freed: Condvar,
}

static DECODE_BUDGET: DecodeBudget = DecodeBudget::new();

/// Room taken in a [`DecodeBudget`], given back when dropped.
#[must_use]
#[derive(Debug)]
struct DecodeReservation {
    budget: &'static DecodeBudget,
    bytes: u64,
}

impl std::fmt::Debug for DecodeBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecodeBudget")
    }
}

impl DecodeBudget {
    const fn new() -> Self {
        Self {
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
        }
    }

    /// Take `need` bytes of the process's shared budget (see [`DecodeBudget::take`]).
    fn reserve(need: u64, limits: &LoadLimits) -> Result<DecodeReservation, LoadError> {
        DECODE_BUDGET.take(need, limits.max_total_bytes)
    }

    /// Wait until `need` bytes fit beside what other decoders hold within `total`, then take
    /// them. A need over the whole budget is refused at once (it would never fit); one image
    /// alone always fits, so waiting ends when the others finish.
    fn take(&'static self, need: u64, total: u64) -> Result<DecodeReservation, LoadError> {
        if need > total {
            return Err(LoadError::OverMemoryBudget { need, total });
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.0 > 0 && state.0 + need > total {
            // A loader given up on while it waits takes nothing (and decodes nothing).
            if given_up() {
                return Err(LoadError::TooSlow { seconds: 0.0 });
            }
            state = self
                .freed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if given_up() {
            return Err(LoadError::TooSlow { seconds: 0.0 });
        }
        state.0 += need;
        state.1 = state.1.max(state.0);
        Ok(DecodeReservation {
            budget: self,
            bytes: need,
        })
    }
}

impl Drop for DecodeReservation {
    fn drop(&mut self) {
        let mut state = self.budget.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 -= self.bytes;
        self.budget.freed.notify_all();
    }
}

/// usvg options that never touch the file system or network, and record every refused href.
fn safe_svg_options(
    limits: &LoadLimits,
    refused: Arc<Mutex<Vec<LoadError>>>,
) -> usvg::Options<'static> {
    let refused_data = refused.clone();
    let raster_limits = limits.clone();
    usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(move |mime, data, opts| {
                let format = match mime {
                    "image/png" => ImageFormat::Png,
                    "image/jpg" | "image/jpeg" => ImageFormat::Jpeg,
                    "image/gif" => ImageFormat::Gif,
                    "image/webp" => ImageFormat::Webp,
                    "image/svg+xml" => {
                        // A nested SVG is parsed with the same resolver, so the same rules apply,
                        // after the same check of its references.
                        let text = std::str::from_utf8(&data).ok()?;
                        let xml = match parse_xml(text) {
                            Ok(xml) => xml,
                            Err(Ok(refused)) => {
                                refused_data.lock().expect("poisoned").push(refused);
                                return None;
                            }
                            Err(Err(_)) => return None, // not XML: not drawn
                        };
                        if let Err(e) = check_svg_references(&xml, &raster_limits) {
                            refused_data.lock().expect("poisoned").push(e);
                            return None;
                        }
                        return usvg::Tree::from_data_nested(&data, opts)
                            .ok()
                            .map(usvg::ImageKind::SVG);
                    }
                    _ => return None,
                };
                if sniff(&data) != Ok(format) {
                    return None;
                }
                let header_ok = decode_header_within(&data, format, &raster_limits);
                if !header_ok {
                    refused_data
                        .lock()
                        .expect("poisoned")
                        .push(LoadError::ExternalReference(format!(
                            "embedded {format} image over the size limits"
                        )));
                    return None;
                }
                Some(match format {
                    ImageFormat::Png => usvg::ImageKind::PNG(data),
                    ImageFormat::Jpeg => usvg::ImageKind::JPEG(data),
                    ImageFormat::Gif => usvg::ImageKind::GIF(data),
                    _ => usvg::ImageKind::WEBP(data),
                })
            }),
            resolve_string: Box::new(move |href, _| {
                refused
                    .lock()
                    .expect("poisoned")
                    .push(LoadError::ExternalReference(href.to_string()));
                None
            }),
        },
        ..usvg::Options::default()
    }
}

fn decode_header_within(data: &[u8], format: ImageFormat, limits: &LoadLimits) -> bool {
    let image_format = match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Svg => return false,
    };
    match image::ImageReader::with_format(Cursor::new(data), image_format).into_dimensions() {
        Ok((w, h)) => check_dimensions(format, w as u64, h as u64, limits).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(image: &RgbaImage) -> Vec<u8> {
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn renders_a_simple_svg_at_the_requested_size() {
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 12"><rect x="0" y="0" width="12" height="12" fill="#ff0000"/></svg>"##;
        let limits = LoadLimits {
            svg_render_size: 64,
            ..LoadLimits::default()
        };
        let img = load_image(svg, &limits).unwrap();
        assert_eq!(img.format, ImageFormat::Svg);
        assert_eq!(img.pixels.dimensions(), (64, 32));
        assert_eq!(img.pixels.get_pixel(10, 10).0, [255, 0, 0, 255]);
        assert_eq!(
            img.pixels.get_pixel(50, 10).0[3],
            0,
            "right half is transparent"
        );
    }

    #[test]
    fn huge_declared_svg_canvas_renders_small() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="50000" height="50000"><circle cx="25000" cy="25000" r="20000"/></svg>"#;
        let img = load_image(svg, &LoadLimits::default()).unwrap();
        assert_eq!(img.pixels.dimensions(), (256, 256));
    }

    #[test]
    fn svg_with_file_or_http_reference_is_refused_without_reading_it() {
        for href in [
            "file:///etc/passwd",
            "http://127.0.0.1:9/logo.png",
            "../secret.png",
        ] {
            let svg = format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10"><image xlink:href="{href}" width="10" height="10"/></svg>"#
            );
            let err = load_image(svg.as_bytes(), &LoadLimits::default()).unwrap_err();
            assert_eq!(err, LoadError::ExternalReference(href.to_string()));
            assert_eq!(err.code(), "svg-external-ref");
        }
    }

    #[test]
    fn corrupt_svg_is_reported() {
        let err = load_image(
            b"<svg xmlns='http://www.w3.org/2000/svg'><path d=",
            &LoadLimits::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "corrupt");
        assert!(err.to_string().contains("svg"), "{err}");
    }

    #[test]
    fn truncated_png_is_reported_as_corrupt() {
        let bytes = png_bytes(&RgbaImage::from_pixel(32, 32, image::Rgba([1, 2, 3, 255])));
        let err = load_image(&bytes[..bytes.len() / 2], &LoadLimits::default()).unwrap_err();
        assert_eq!(err.code(), "corrupt", "{err}");
    }

    #[test]
    fn png_bomb_is_refused_before_decoding() {
        // A valid PNG header (IHDR) claiming 50 000 × 50 000 pixels, followed by nothing useful.
        let mut bytes = png_bytes(&RgbaImage::new(1, 1));
        bytes[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&bytes[12..29]); // chunk type + IHDR data
        bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        let err = load_image(&bytes, &LoadLimits::default()).unwrap_err();
        assert_eq!(err.code(), "too-many-pixels", "{err}");
        assert!(err.to_string().contains("50000×50000"), "{err}");
    }

    #[test]
    fn oversized_file_is_refused_by_size() {
        let limits = LoadLimits {
            max_file_bytes: 10,
            ..LoadLimits::default()
        };
        let err = load_image(b"\x89PNG\r\n\x1a\n0123456789", &limits).unwrap_err();
        assert_eq!(err.code(), "too-large");
    }

    #[test]
    fn non_images_are_named() {
        let err = load_image(b"<html><body>hi</body></html>", &LoadLimits::default()).unwrap_err();
        assert_eq!(err.code(), "not-an-image");
        assert!(err.to_string().contains("HTML"));
    }

    /// Hostile SVGs of a few bytes to a few hundred kilobytes, each of which took seconds to
    /// minutes (or aborted the process) before it was priced: (name, document).
    fn hostile_svgs() -> Vec<(&'static str, String)> {
        let head = r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100">"#;
        let filtered = |primitives: String| {
            format!(
                r#"{head}<filter id="f">{primitives}</filter><rect width="100" height="100" filter="url(#f)"/></svg>"#
            )
        };
        let mut uses = String::from(r#"<g id="g0"><rect width="1" height="1"/></g>"#);
        for level in 1..9 {
            uses += &format!(r#"<g id="g{level}">"#);
            for _ in 0..10 {
                uses += &format!(r##"<use xlink:href="#g{}"/>"##, level - 1);
            }
            uses += "</g>";
        }
        let mut patterns = String::from(
            r#"<pattern id="p0" width="50" height="50" patternUnits="userSpaceOnUse"><rect width="25" height="25"/></pattern>"#,
        );
        for level in 1..30 {
            patterns += &format!(
                r#"<pattern id="p{level}" width="50" height="50" patternUnits="userSpaceOnUse"><rect width="50" height="50" fill="url(#p{0})"/><rect width="25" height="25" fill="url(#p{0})"/></pattern>"#,
                level - 1
            );
        }
        let kernel = vec!["1"; 200 * 200].join(" ");
        vec![
            (
                "turbulence octaves",
                filtered(r#"<feTurbulence baseFrequency="0.9" numOctaves="10000"/>"#.into()),
            ),
            (
                "chained blurs",
                filtered(r#"<feGaussianBlur stdDeviation="5"/>"#.repeat(3000)),
            ),
            (
                "morphology radius",
                filtered(r#"<feMorphology radius="100000"/>"#.into()),
            ),
            (
                "convolution order",
                filtered(format!(
                    r#"<feConvolveMatrix order="200" kernelMatrix="{kernel}"/>"#
                )),
            ),
            (
                "lighting chain",
                filtered(
                    r#"<feDiffuseLighting><feDistantLight/></feDiffuseLighting>"#.repeat(2000),
                ),
            ),
            (
                "one filter on many shapes",
                format!(
                    r#"{head}<filter id="f"><feGaussianBlur stdDeviation="3"/></filter>{}</svg>"#,
                    r#"<rect width="100" height="100" filter="url(#f)"/>"#.repeat(20_000)
                ),
            ),
            (
                "huge pattern tile",
                format!(
                    r#"{head}<pattern id="p" width="100000" height="100000" patternUnits="userSpaceOnUse"><rect width="50000" height="50000"/></pattern><rect width="100" height="100" fill="url(#p)"/></svg>"#
                ),
            ),
            (
                "patterns in patterns",
                format!(
                    r#"{head}{patterns}<rect width="100" height="100" fill="url(#p29)"/></svg>"#
                ),
            ),
            (
                "use bomb",
                format!(r##"{head}<defs>{uses}</defs><use xlink:href="#g8"/></svg>"##),
            ),
            (
                "deep nesting",
                format!(
                    "{head}{}<rect width=\"1\" height=\"1\"/>{}</svg>",
                    "<g>".repeat(5000),
                    "</g>".repeat(5000)
                ),
            ),
            // Found by review: an entity used 5 000 times, and entities of entities.
            (
                "entity expansion",
                format!(
                    r#"<!DOCTYPE svg [<!ENTITY a "{}">]>{head}<desc>{}</desc></svg>"#,
                    "A".repeat(1000),
                    "&a;".repeat(5000)
                ),
            ),
            (
                "entities of entities",
                format!(
                    r#"<!DOCTYPE svg [<!ENTITY a "AAAA"><!ENTITY b "&a;&a;">]>{head}<desc>&b;</desc></svg>"#
                ),
            ),
            // References written with a space, and decoys sharing an id with the real element.
            (
                "use bomb with spaced hrefs",
                format!(
                    r##"{head}<defs>{}</defs><use xlink:href=" #g8"/></svg>"##,
                    uses.replace("href=\"#", "href=\" #")
                ),
            ),
            (
                "patterns behind decoys",
                format!(
                    r#"{head}{}{patterns}<rect width="100" height="100" fill="url( '#p29' )"/></svg>"#,
                    (0..30)
                        .map(|i| format!(r#"<pattern id="p{i}" width="1" height="1"/>"#))
                        .collect::<String>()
                ),
            ),
            (
                "a marker on 100 000 vertices",
                format!(
                    r#"{head}<marker id="m">{}</marker><path d="M0 0{}" marker-mid="url(#m)"/></svg>"#,
                    r#"<rect width="1" height="1"/>"#.repeat(150),
                    " L1 1".repeat(100_000)
                ),
            ),
            (
                "filter regions 30 times the canvas",
                format!(
                    r#"{head}<filter id="f" x="-1500%" y="-1500%" width="3000%" height="3000%">{}</filter><rect width="100" height="100" filter="url(#f)"/></svg>"#,
                    r#"<feGaussianBlur stdDeviation="2"/>"#.repeat(380)
                ),
            ),
            (
                "a pattern that fills itself",
                format!(
                    r#"{head}<pattern id="p" width="10" height="10" patternUnits="userSpaceOnUse">{}</pattern><rect width="100" height="100" fill="url(#p)"/></svg>"#,
                    r#"<rect width="5" height="5" fill="url(#p)"/>"#.repeat(1000)
                ),
            ),
        ]
    }

    #[test]
    fn hostile_svgs_are_priced_and_refused_before_drawing() {
        for (name, svg) in hostile_svgs() {
            let start = std::time::Instant::now();
            let err = load_image(svg.as_bytes(), &LoadLimits::default()).unwrap_err();
            let seconds = start.elapsed().as_secs_f64();
            assert_eq!(err.code(), "svg-too-complex", "{name}: {err}");
            assert!(
                err.to_string().contains("LoadLimits::svg_max_work"),
                "{name}: {err}"
            );
            // Refused by the estimate, not by the time budget: well under a second.
            assert!(seconds < 2.0, "{name} took {seconds:.1} s");
        }
    }

    #[test]
    fn a_heavy_svg_passes_when_its_limits_are_raised() {
        // What the refusal message promises: the limit is a setting, not a wall.
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><filter id="f">{}</filter><rect width="10" height="10" filter="url(#f)"/></svg>"#,
            r#"<feGaussianBlur stdDeviation="1"/>"#.repeat(60)
        );
        let small = LoadLimits {
            svg_render_size: 32,
            svg_max_work: 1e6,
            ..LoadLimits::default()
        };
        assert_eq!(
            load_image(svg.as_bytes(), &small).unwrap_err().code(),
            "svg-too-complex"
        );
        let raised = LoadLimits {
            svg_max_work: 1e9,
            ..small
        };
        assert_eq!(
            load_image(svg.as_bytes(), &raised)
                .unwrap()
                .pixels
                .dimensions(),
            (32, 32)
        );
    }

    #[test]
    fn ordinary_logos_cost_a_small_share_of_the_budget() {
        let logo = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><defs><linearGradient id="g"><stop offset="0" stop-color="#f00"/><stop offset="1" stop-color="#00f"/></linearGradient><clipPath id="c"><circle cx="12" cy="12" r="11"/></clipPath></defs><g opacity="0.9" clip-path="url(#c)"><path fill="url(#g)" d="M0 0h24v24H0z"/><path stroke="#000" stroke-width="2" stroke-dasharray="2 1" d="M2 12C2 6 6 2 12 2s10 4 10 10-4 10-10 10S2 18 2 12z"/></g></svg>"##;
        let limits = LoadLimits::default();
        let tree = parse_svg(logo, &usvg::Options::default(), &limits).unwrap();
        let cost = svg_cost::estimate(&tree, 256.0 / 24.0, 256, 256, limits.svg_max_work);
        assert!(cost.work < 0.01 * limits.svg_max_work, "{cost:?}");
        assert!(
            cost.peak_bytes < 0.05 * limits.svg_max_bytes as f64,
            "{cost:?}"
        );
        // The same logo is drawn.
        assert!(load_image(logo, &limits).is_ok());
    }

    #[test]
    fn an_image_over_its_time_budget_is_skipped() {
        // Priced under the limits (300 nested masks ≈ 0.5 s), but over a 1 ms time budget.
        let mut masks =
            String::from(r#"<mask id="m0"><rect width="100" height="100" fill="white"/></mask>"#);
        for i in 1..300 {
            masks += &format!(
                r#"<mask id="m{i}"><rect width="100" height="100" fill="white" mask="url(#m{})"/></mask>"#,
                i - 1
            );
        }
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">{masks}<rect width="100" height="100" mask="url(#m299)"/></svg>"#
        );
        let limits = LoadLimits {
            max_seconds: 0.001,
            ..LoadLimits::default()
        };
        let start = std::time::Instant::now();
        let err = load_image(svg.as_bytes(), &limits).unwrap_err();
        assert_eq!(err, LoadError::TooSlow { seconds: 0.001 });
        assert!(err.to_string().contains("LoadLimits::max_seconds"), "{err}");
        assert!(
            start.elapsed().as_secs_f64() < 0.25,
            "the caller did not wait for the straggler"
        );
    }

    #[test]
    fn a_decoder_waits_for_room_and_gets_it_when_another_finishes() {
        let budget: &'static DecodeBudget = Box::leak(Box::new(DecodeBudget::new()));
        let first = budget.take(600, 1000).unwrap();
        let second_has_room = Arc::new(AtomicBool::new(false));
        let flag = second_has_room.clone();
        let waiter = std::thread::spawn(move || {
            let room = budget.take(600, 1000).unwrap();
            flag.store(true, Ordering::SeqCst);
            drop(room);
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !second_has_room.load(Ordering::SeqCst),
            "600 + 600 bytes held at once in a budget of 1000"
        );
        let small = budget.take(400, 1000).unwrap(); // 600 + 400 fits beside the first
        drop(small);
        drop(first);
        waiter.join().unwrap();
        assert!(second_has_room.load(Ordering::SeqCst));
        let (in_use, peak) = *budget.state.lock().unwrap();
        assert_eq!((in_use, peak), (0, 1000), "every reservation given back");
        assert_eq!(
            budget.take(1001, 1000).unwrap_err(),
            LoadError::OverMemoryBudget {
                need: 1001,
                total: 1000
            }
        );
    }

    #[test]
    fn a_raster_larger_than_the_whole_decode_budget_is_refused_by_name() {
        let bytes = png_bytes(&RgbaImage::from_pixel(
            100,
            100,
            image::Rgba([9, 9, 9, 255]),
        ));
        let limits = LoadLimits {
            max_total_bytes: 100 * 100 * 12 - 1,
            ..LoadLimits::default()
        };
        let err = load_image(&bytes, &limits).unwrap_err();
        assert_eq!(err.code(), "over-memory-budget");
        assert!(
            err.to_string().contains("LoadLimits::max_total_bytes"),
            "{err}"
        );
        let fits = LoadLimits {
            max_total_bytes: 100 * 100 * 12,
            ..limits
        };
        assert!(load_image(&bytes, &fits).is_ok());
    }
}
