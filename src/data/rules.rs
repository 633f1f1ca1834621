//! The cleaning rules, one small function each. They work on RGB images already flattened onto
//! white; "ink" is any pixel that is not close to white.
//!
//! Each rule returns the *measure* it is based on, and [`crate::data::clean`] compares the measure
//! with a threshold from [`crate::data::clean::CleanConfig`]: the report can then show why an image
//! was kept or dropped, and a reader can move a threshold and see the effect.

use image::{imageops, Rgb, RgbImage, RgbaImage};

/// Alpha-composite onto a white background. Transparent logos (most SVGs and many PNGs) become
/// the "logo on white" the course trains on.
// ANCHOR: flatten_on_white
pub fn flatten_on_white(image: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b, a] = image.get_pixel(x, y).0;
        let a = a as u32;
        let over = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        Rgb([over(r), over(g), over(b)])
    })
}
// ANCHOR_END: flatten_on_white

/// How far a pixel is from white: the largest of the three channel distances (0 = white).
pub fn darkness(p: &Rgb<u8>) -> u8 {
    let [r, g, b] = p.0;
    255 - r.min(g).min(b)
}

/// Ink mask: `true` where a pixel is further than `threshold` from white. Row-major.
pub fn ink_mask(image: &RgbImage, threshold: u8) -> Vec<bool> {
    image.pixels().map(|p| darkness(p) > threshold).collect()
}

/// Fraction of pixels that are ink. A near-blank image (white-on-white brand colour, an empty
/// SVG) has almost none.
pub fn ink_fraction(mask: &[bool]) -> f32 {
    if mask.is_empty() {
        return 0.0;
    }
    mask.iter().filter(|&&m| m).count() as f32 / mask.len() as f32
}

/// Fraction of the pixels on the image's outer ring (the outermost 2 % of each side, at least one
/// pixel) that are near-white. A photo or a logo on a coloured card scores low.
// ANCHOR: border_white_fraction
pub fn border_white_fraction(image: &RgbImage, threshold: u8) -> f32 {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return 0.0;
    }
    let ring_x = (w / 50).max(1);
    let ring_y = (h / 50).max(1);
    let (mut white, mut total) = (0u64, 0u64);
    for (x, y, p) in image.enumerate_pixels() {
        if x < ring_x || x >= w - ring_x || y < ring_y || y >= h - ring_y {
            total += 1;
            white += (darkness(p) <= threshold) as u64;
        }
    }
    white as f32 / total as f32
}
// ANCHOR_END: border_white_fraction

/// An axis-aligned rectangle in pixels: `x..x+width`, `y..y+height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// The smallest rectangle holding all ink, or `None` for a blank image.
pub fn content_bbox(mask: &[bool], width: u32, height: u32) -> Option<Rect> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for y in 0..height {
        for x in 0..width {
            if mask[(y * width + x) as usize] {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
            }
        }
    }
    (x0 != u32::MAX).then(|| Rect {
        x: x0,
        y: y0,
        width: x1 - x0 + 1,
        height: y1 - y0 + 1,
    })
}

/// Crop to `bbox` and centre it on a white square whose side leaves `margin` (a fraction of the
/// side) of white on every side of the longer dimension. The logo keeps its aspect ratio.
// ANCHOR: crop_pad_square
pub fn crop_pad_square(image: &RgbImage, bbox: Rect, margin: f32) -> RgbImage {
    let content = imageops::crop_imm(image, bbox.x, bbox.y, bbox.width, bbox.height).to_image();
    let longest = bbox.width.max(bbox.height) as f32;
    let side = (longest / (1.0 - 2.0 * margin.clamp(0.0, 0.45))).ceil() as u32;
    let mut canvas = RgbImage::from_pixel(side, side, Rgb([255, 255, 255]));
    let ox = (side - bbox.width) / 2;
    let oy = (side - bbox.height) / 2;
    imageops::replace(&mut canvas, &content, ox as i64, oy as i64);
    canvas
}
// ANCHOR_END: crop_pad_square

/// Resize a square image to `size`×`size`. Lanczos3 keeps edges crisp when shrinking, which
/// matters for flat-colour logos; bilinear would blur them, nearest would alias them.
pub fn resize_square(image: &RgbImage, size: u32) -> RgbImage {
    if image.dimensions() == (size, size) {
        return image.clone();
    }
    imageops::resize(image, size, size, imageops::FilterType::Lanczos3)
}

/// Measures behind the text heuristic, computed on the ink inside the content box.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct TextMeasures {
    /// Content width / height (≥ 1 means wide). Wordmarks are long and low.
    pub aspect: f32,
    /// Connected ink regions (8-connected), ignoring specks.
    pub components: usize,
    /// The largest number of letter-like components standing side by side on one line.
    pub glyphs_in_row: usize,
}

/// Measure how much an image looks like written words.
///
/// The heuristic, in plain words: text is a *row of separate shapes of about the same height*
/// (letters), standing on a common line, each no wider than about one and a half times its height.
/// We label the connected regions of ink, then, for every region, count the regions of similar
/// height (0.6×–1.6×) whose vertical centres are within a third of that height; the best count is
/// `glyphs_in_row`. A symbol is usually one or two regions; "Google" is six in a row. The content
/// box's aspect ratio catches wordmarks whose letters touch (script fonts).
///
/// Known misses and false alarms: joined-up lettering of square shape, and symbols made of a
/// row of similar dots or bars. The report lists the measures so they can be checked.
// ANCHOR: text_measures
pub fn text_measures(mask: &[bool], width: u32, height: u32, bbox: Rect) -> TextMeasures {
    let aspect = bbox.width as f32 / bbox.height as f32;
    let boxes = component_boxes(mask, width, height, bbox);
    // Specks (anti-aliasing, dots of an i) are not letters.
    let min_height = (bbox.height.max(bbox.width) as f32 * 0.04).max(2.0);
    let parts: Vec<Rect> = boxes
        .into_iter()
        .filter(|r| r.height as f32 >= min_height)
        .collect();
    let letter_like = |r: &Rect| r.width as f32 <= 1.5 * r.height as f32;
    let mut best = 0;
    for anchor in parts.iter().filter(|r| letter_like(r)) {
        let h = anchor.height as f32;
        let cy = anchor.y as f32 + h / 2.0;
        let row = parts
            .iter()
            .filter(|r| letter_like(r))
            .filter(|r| {
                let rh = r.height as f32;
                let rcy = r.y as f32 + rh / 2.0;
                (0.6 * h..=1.6 * h).contains(&rh) && (rcy - cy).abs() <= h / 3.0
            })
            .count();
        best = best.max(row);
    }
    TextMeasures {
        aspect,
        components: parts.len(),
        glyphs_in_row: best,
    }
}
// ANCHOR_END: text_measures

/// Bounding boxes of the 8-connected ink regions inside `area`.
fn component_boxes(mask: &[bool], width: u32, _height: u32, area: Rect) -> Vec<Rect> {
    let (w, h) = (area.width as usize, area.height as usize);
    let at =
        |x: usize, y: usize| mask[(area.y as usize + y) * width as usize + area.x as usize + x];
    let mut seen = vec![false; w * h];
    let mut boxes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if seen[start] || !at(start % w, start / w) {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if !seen[j] && at(nx, ny) {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        boxes.push(Rect {
            x: (area.x as usize + x0) as u32,
            y: (area.y as usize + y0) as u32,
            width: (x1 - x0 + 1) as u32,
            height: (y1 - y0 + 1) as u32,
        });
    }
    boxes
}

/// A perceptual hash: a gradient ("difference") hash of 16×16 bits of the grey image. Two
/// renderings of the same logo (another colour, a slightly different drawing) differ in few bits;
/// different logos differ in many.
// ANCHOR: perceptual_hash
pub fn perceptual_hash(image: &RgbImage) -> image_hasher::ImageHash {
    let grey = imageops::grayscale(image);
    image_hasher::HasherConfig::new()
        .hash_size(16, 16)
        .hash_alg(image_hasher::HashAlg::Gradient)
        .to_hasher()
        .hash_image(&grey)
}
// ANCHOR_END: perceptual_hash

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
    const BLACK: Rgb<u8> = Rgb([0, 0, 0]);

    fn blank(w: u32, h: u32) -> RgbImage {
        RgbImage::from_pixel(w, h, WHITE)
    }

    fn fill(img: &mut RgbImage, r: Rect, c: Rgb<u8>) {
        for y in r.y..r.y + r.height {
            for x in r.x..r.x + r.width {
                img.put_pixel(x, y, c);
            }
        }
    }

    fn rect(x: u32, y: u32, width: u32, height: u32) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn flatten_blends_alpha_onto_white() {
        let mut img = RgbaImage::new(3, 1);
        img.put_pixel(0, 0, Rgba([0, 0, 0, 0]));
        img.put_pixel(1, 0, Rgba([0, 0, 0, 255]));
        img.put_pixel(2, 0, Rgba([255, 0, 0, 128]));
        let flat = flatten_on_white(&img);
        assert_eq!(flat.get_pixel(0, 0), &WHITE);
        assert_eq!(flat.get_pixel(1, 0), &BLACK);
        assert_eq!(flat.get_pixel(2, 0), &Rgb([255, 127, 127]));
    }

    #[test]
    fn ink_fraction_counts_non_white() {
        let mut img = blank(10, 10);
        fill(&mut img, rect(0, 0, 5, 2), Rgb([200, 30, 30]));
        fill(&mut img, rect(0, 5, 10, 1), Rgb([250, 250, 250])); // off-white is not ink
        assert_eq!(ink_fraction(&ink_mask(&img, 40)), 0.10);
        assert_eq!(ink_fraction(&[]), 0.0);
    }

    #[test]
    fn border_fraction_sees_coloured_backgrounds() {
        let mut logo = blank(100, 100);
        fill(&mut logo, rect(30, 30, 40, 40), BLACK);
        assert_eq!(border_white_fraction(&logo, 40), 1.0);
        let card = RgbImage::from_pixel(100, 100, Rgb([20, 60, 200]));
        assert_eq!(border_white_fraction(&card, 40), 0.0);
        let mut half = blank(100, 100);
        fill(&mut half, rect(0, 0, 50, 100), BLACK);
        let f = border_white_fraction(&half, 40);
        assert!((0.45..0.55).contains(&f), "{f}");
    }

    #[test]
    fn bbox_and_square_padding_centre_the_logo() {
        let mut img = blank(40, 20);
        fill(&mut img, rect(10, 5, 20, 10), BLACK);
        let mask = ink_mask(&img, 40);
        let bbox = content_bbox(&mask, 40, 20).unwrap();
        assert_eq!(bbox, rect(10, 5, 20, 10));
        let square = crop_pad_square(&img, bbox, 0.1);
        assert_eq!(square.dimensions(), (25, 25));
        let inner = content_bbox(&ink_mask(&square, 40), 25, 25).unwrap();
        assert_eq!((inner.width, inner.height), (20, 10));
        assert_eq!(
            (inner.x, inner.y),
            (2, 7),
            "centred with equal white on both sides"
        );
        assert_eq!(content_bbox(&ink_mask(&blank(5, 5), 40), 5, 5), None);
    }

    #[test]
    fn resize_gives_requested_size_and_keeps_colour() {
        let img = RgbImage::from_pixel(256, 256, Rgb([10, 120, 240]));
        let small = resize_square(&img, 64);
        assert_eq!(small.dimensions(), (64, 64));
        assert_eq!(small.get_pixel(32, 32), &Rgb([10, 120, 240]));
    }

    #[test]
    fn a_row_of_letters_is_text_and_a_symbol_is_not() {
        // "Word": five letter-sized blocks on one line.
        let mut word = blank(200, 60);
        for i in 0..5 {
            fill(&mut word, rect(10 + i * 36, 15, 26, 30), BLACK);
        }
        let mask = ink_mask(&word, 40);
        let bbox = content_bbox(&mask, 200, 60).unwrap();
        let m = text_measures(&mask, 200, 60, bbox);
        assert_eq!((m.components, m.glyphs_in_row), (5, 5));
        assert!(m.aspect > 5.0);

        // A symbol: a ring (one component) with a dot inside.
        let mut symbol = blank(100, 100);
        fill(&mut symbol, rect(10, 10, 80, 80), BLACK);
        fill(&mut symbol, rect(20, 20, 60, 60), WHITE);
        fill(&mut symbol, rect(45, 45, 10, 10), BLACK);
        let mask = ink_mask(&symbol, 40);
        let bbox = content_bbox(&mask, 100, 100).unwrap();
        let m = text_measures(&mask, 100, 100, bbox);
        assert_eq!(m.components, 2);
        assert!(m.glyphs_in_row < 4, "{m:?}");
        assert_eq!(m.aspect, 1.0);
    }

    #[test]
    fn diagonal_pixels_are_one_component() {
        let mut img = blank(10, 10);
        for i in 0..10 {
            img.put_pixel(i, i, BLACK);
        }
        let mask = ink_mask(&img, 40);
        let bbox = content_bbox(&mask, 10, 10).unwrap();
        assert_eq!(component_boxes(&mask, 10, 10, bbox).len(), 1);
    }

    #[test]
    fn perceptual_hash_is_close_for_recolours_and_far_for_other_shapes() {
        let mut a = blank(64, 64);
        fill(&mut a, rect(10, 10, 30, 44), Rgb([200, 0, 0]));
        let mut recoloured = blank(64, 64);
        fill(&mut recoloured, rect(10, 10, 30, 44), Rgb([150, 0, 40]));
        let mut other = blank(64, 64);
        fill(&mut other, rect(30, 5, 30, 20), Rgb([200, 0, 0]));
        fill(&mut other, rect(5, 40, 54, 10), Rgb([200, 0, 0]));
        let (ha, hr, ho) = (
            perceptual_hash(&a),
            perceptual_hash(&recoloured),
            perceptual_hash(&other),
        );
        assert!(ha.dist(&hr) <= 4, "{}", ha.dist(&hr));
        assert!(ha.dist(&ho) > 30, "{}", ha.dist(&ho));
    }
}
