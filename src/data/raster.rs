//! Turning an image file into pixels, safely.
//!
//! Logos arrive as SVG (vector) or as PNG/JPEG/GIF/WebP (raster). Either may be hostile or broken:
//! an SVG can point at `file:///etc/passwd` or an http URL, declare a 50 000 × 50 000 canvas, or
//! embed a huge picture; a PNG can be truncated or be a "decompression bomb" that claims billions
//! of pixels. Every loader here is bounded in bytes read, pixels allocated and files touched:
//! nothing outside the given bytes is ever opened.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use image::RgbaImage;
use resvg::{tiny_skia, usvg};

use super::format::{sniff, ImageFormat};

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
}

impl Default for LoadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 20 << 20,
            max_dimension: 8192,
            max_alloc_bytes: 512 << 20,
            svg_render_size: 256,
        }
    }
}

/// Why an image could not be loaded. The `Display` text is what the report and the console show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
        }
    }
}

/// A loaded image: straight (not premultiplied) RGBA pixels and the format it came from.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub format: ImageFormat,
    pub pixels: RgbaImage,
}

/// Load an image file's bytes, recognising the format from the bytes themselves.
pub fn load_image(bytes: &[u8], limits: &LoadLimits) -> Result<LoadedImage, LoadError> {
    let size = bytes.len() as u64;
    if size > limits.max_file_bytes {
        return Err(LoadError::TooLarge {
            size,
            limit: limits.max_file_bytes,
        });
    }
    let format = sniff(bytes).map_err(LoadError::NotAnImage)?;
    let pixels = match format {
        ImageFormat::Svg => rasterize_svg(bytes, limits)?,
        raster => decode_raster(bytes, raster, limits)?,
    };
    Ok(LoadedImage { format, pixels })
}

/// Decode PNG/JPEG/GIF/WebP with the `image` crate under dimension and allocation limits.
/// Animated GIF/WebP give their first frame.
pub fn decode_raster(
    bytes: &[u8],
    format: ImageFormat,
    limits: &LoadLimits,
) -> Result<RgbaImage, LoadError> {
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
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format);
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_dimension);
    image_limits.max_image_height = Some(limits.max_dimension);
    image_limits.max_alloc = Some(limits.max_alloc_bytes);
    reader.limits(image_limits);
    Ok(reader.decode().map_err(corrupt)?.to_rgba8())
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
    let refused: Arc<Mutex<Vec<String>>> = Arc::default();
    let options = safe_svg_options(limits, refused.clone());
    let parsed = usvg::Tree::from_data(bytes, &options);
    if let Some(first) = refused.lock().expect("poisoned").first() {
        return Err(LoadError::ExternalReference(first.clone()));
    }
    let tree = parsed.map_err(|e| LoadError::Corrupt {
        format: ImageFormat::Svg,
        detail: e.to_string(),
    })?;
    let size = tree.size();
    let (w, h) = (size.width(), size.height());
    if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0) {
        return Err(LoadError::BadSvgSize(format!("{w}×{h}")));
    }
    let target = limits.svg_render_size as f32;
    let scale = target / w.max(h);
    let out_w = ((w * scale).round() as u32).clamp(1, limits.svg_render_size);
    let out_h = ((h * scale).round() as u32).clamp(1, limits.svg_render_size);
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

/// usvg options that never touch the file system or network, and record every refused href.
fn safe_svg_options(
    limits: &LoadLimits,
    refused: Arc<Mutex<Vec<String>>>,
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
                        // A nested SVG is parsed with the same resolver, so the same rules apply.
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
                        .push(format!("embedded {format} image over the size limits"));
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
                refused.lock().expect("poisoned").push(href.to_string());
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
}
