//! Recognising an image by its bytes, never by its name or a server's `Content-Type`.

use std::fmt;

/// The image formats the project accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Gif,
    Webp,
    Svg,
}

impl ImageFormat {
    /// The file extension used when the project names a file of this format.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
            ImageFormat::Svg => "svg",
        }
    }

    /// Formats recognised from a file extension, for listing a folder.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "png" => Some(ImageFormat::Png),
            "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
            "gif" => Some(ImageFormat::Gif),
            "webp" => Some(ImageFormat::Webp),
            "svg" => Some(ImageFormat::Svg),
            _ => None,
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// Identify an image from its first bytes. Returns `Err` with a short description of what the
/// bytes look like instead (an HTML page, a PDF, …) so the caller can say why it was refused.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, String> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageFormat::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageFormat::Jpeg);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(ImageFormat::Gif);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(ImageFormat::Webp);
    }
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    // Text formats: look at the start, past a BOM, whitespace, an XML declaration, comments and
    // a doctype, for the first element.
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}');
    let first_element = first_xml_element(text);
    match first_element {
        Some(name) if name.eq_ignore_ascii_case("svg") || name.ends_with(":svg") => {
            Ok(ImageFormat::Svg)
        }
        Some(name) if name.eq_ignore_ascii_case("html") || name.eq_ignore_ascii_case("head") => {
            Err("an HTML page, not an image".into())
        }
        _ if bytes.starts_with(b"%PDF") => Err("a PDF document, not an image".into()),
        _ if bytes.starts_with(&[0x1f, 0x8b]) => Err("gzip-compressed data".into()),
        _ if bytes.starts_with(b"PK\x03\x04") => Err("a ZIP archive".into()),
        Some(name) => Err(format!("an XML document whose root is <{name}>, not <svg>")),
        None => {
            let shown: String = head
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ");
            Err(format!("unknown format (first bytes: {shown})"))
        }
    }
}

/// Name of the first element in an XML/HTML text, skipping declarations and comments.
fn first_xml_element(mut text: &str) -> Option<&str> {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("<?") {
            text = &rest[rest.find("?>")? + 2..];
        } else if let Some(rest) = text.strip_prefix("<!--") {
            text = &rest[rest.find("-->")? + 3..];
        } else if let Some(rest) = text.strip_prefix("<!") {
            // DOCTYPE, possibly with an internal subset in brackets.
            let end = match (rest.find('['), rest.find('>')) {
                (Some(b), Some(g)) if b < g => rest.find("]>").map(|i| i + 2)?,
                (_, Some(g)) => g + 1,
                _ => return None,
            };
            text = &rest[end..];
        } else if let Some(rest) = text.strip_prefix('<') {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(rest.len());
            let name = &rest[..end];
            return (!name.is_empty()).then_some(name);
        } else {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_raster_magic_numbers() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Ok(ImageFormat::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Ok(ImageFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a...."), Ok(ImageFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Ok(ImageFormat::Webp));
    }

    #[test]
    fn sniffs_svg_past_prolog() {
        let svg = "\u{feff}<?xml version=\"1.0\"?>\n<!-- made by hand -->\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\">\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
        assert_eq!(sniff(svg.as_bytes()), Ok(ImageFormat::Svg));
        assert_eq!(sniff(b"<svg:svg xmlns:svg='x'/>"), Ok(ImageFormat::Svg));
    }

    #[test]
    fn refuses_other_content_with_a_reason() {
        assert!(sniff(b"<!DOCTYPE html><html><body>404</body></html>")
            .unwrap_err()
            .contains("HTML"));
        assert!(sniff(b"%PDF-1.7").unwrap_err().contains("PDF"));
        assert!(sniff(b"").unwrap_err().contains("empty"));
        assert!(sniff(b"<rss version='2.0'/>")
            .unwrap_err()
            .contains("<rss>"));
        assert!(sniff(&[1, 2, 3, 4]).unwrap_err().contains("01 02 03 04"));
    }

    #[test]
    fn extensions_round_trip() {
        for f in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::Webp,
            ImageFormat::Svg,
        ] {
            assert_eq!(ImageFormat::from_extension(f.extension()), Some(f));
        }
        assert_eq!(ImageFormat::from_extension("JPEG"), Some(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::from_extension("txt"), None);
    }
}
