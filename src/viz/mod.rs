//! Pictures: grids of images, tensors to images, charts, GIFs, and a wrapper that shows inline
//! in Jupyter.

pub mod gif;
pub mod plot;

use candle_core::{DType, Tensor};
use image::{imageops, Rgb, RgbImage};

use crate::error::Result;

/// Colour of the gaps between grid tiles: a light grey, so white logos keep visible edges.
pub const GRID_GAP_COLOUR: Rgb<u8> = Rgb([200, 200, 200]);

/// Lay equally sized tiles out in rows of `columns`, with `gap` pixels of grey between and around
/// them. Tiles of another size than the first are resized to match.
pub fn image_grid(tiles: &[RgbImage], columns: usize, gap: u32) -> RgbImage {
    let Some(first) = tiles.first() else {
        return RgbImage::from_pixel(1, 1, GRID_GAP_COLOUR);
    };
    let (tw, th) = first.dimensions();
    let columns = columns.clamp(1, tiles.len()) as u32;
    let rows = (tiles.len() as u32).div_ceil(columns);
    let mut grid = RgbImage::from_pixel(
        columns * tw + (columns + 1) * gap,
        rows * th + (rows + 1) * gap,
        GRID_GAP_COLOUR,
    );
    for (i, tile) in tiles.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        let resized;
        let tile = if tile.dimensions() == (tw, th) {
            tile
        } else {
            resized = imageops::resize(tile, tw, th, imageops::FilterType::Triangle);
            &resized
        };
        let x = gap + col * (tw + gap);
        let y = gap + row * (th + gap);
        imageops::replace(&mut grid, tile, x as i64, y as i64);
    }
    grid
}

/// Put two images next to each other, top-aligned, with a white gap.
pub fn side_by_side(left: &RgbImage, right: &RgbImage, gap: u32) -> RgbImage {
    let width = left.width() + gap + right.width();
    let height = left.height().max(right.height());
    let mut out = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    imageops::replace(&mut out, left, 0, 0);
    imageops::replace(&mut out, right, (left.width() + gap) as i64, 0);
    out
}

/// Scale an upscaled copy with nearest-neighbour, so small samples stay crisp when shown.
pub fn upscale(image: &RgbImage, factor: u32) -> RgbImage {
    imageops::resize(
        image,
        image.width() * factor,
        image.height() * factor,
        imageops::FilterType::Nearest,
    )
}

/// Convert a batch of images `(N, 3, H, W)` with values in [-1, 1] (what the generator's tanh
/// gives) into RGB images. Values outside the range are clipped.
pub fn tensor_to_images(batch: &Tensor) -> Result<Vec<RgbImage>> {
    let (n, c, h, w) = batch.dims4()?;
    if c != 3 {
        return Err(candle_core::Error::Msg(format!("expected 3 channels, got {c}")).into());
    }
    // [-1, 1] → [0, 255], rounded, then (N, H, W, 3) for the image crate's row-major layout.
    let bytes = ((batch.to_dtype(DType::F32)?.clamp(-1f32, 1f32)? + 1.0)? * 127.5)?
        .round()?
        .permute((0, 2, 3, 1))?
        .to_dtype(DType::U8)?
        .flatten_all()?
        .to_vec1::<u8>()?;
    let per = h * w * 3;
    Ok((0..n)
        .map(|i| {
            RgbImage::from_raw(w as u32, h as u32, bytes[i * per..(i + 1) * per].to_vec())
                .expect("size matches")
        })
        .collect())
}

/// A picture that Jupyter's evcxr kernel shows inline when it is the value of a cell.
#[derive(Debug, Clone)]
pub struct Figure(pub RgbImage);

impl Figure {
    /// PNG bytes of the figure.
    pub fn png_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.0
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
        Ok(out)
    }

    /// Called by evcxr to display the value: prints the PNG as base64 between its markers.
    pub fn evcxr_display(&self) {
        use base64::Engine;
        let png = self.png_bytes().unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        println!("EVCXR_BEGIN_CONTENT image/png\n{b64}\nEVCXR_END_CONTENT");
    }
}

impl From<RgbImage> for Figure {
    fn from(image: RgbImage) -> Self {
        Figure(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn grid_places_tiles_row_by_row() {
        let red = RgbImage::from_pixel(4, 4, Rgb([255, 0, 0]));
        let blue = RgbImage::from_pixel(4, 4, Rgb([0, 0, 255]));
        let grid = image_grid(&[red.clone(), blue.clone(), red], 2, 1);
        assert_eq!(grid.dimensions(), (2 * 4 + 3, 2 * 4 + 3));
        assert_eq!(grid.get_pixel(1, 1), &Rgb([255, 0, 0]));
        assert_eq!(grid.get_pixel(6, 1), &Rgb([0, 0, 255]));
        assert_eq!(grid.get_pixel(1, 6), &Rgb([255, 0, 0]));
        assert_eq!(
            grid.get_pixel(6, 6),
            &GRID_GAP_COLOUR,
            "empty cell stays grey"
        );
        assert_eq!(grid.get_pixel(0, 0), &GRID_GAP_COLOUR);
    }

    #[test]
    fn tensor_to_images_maps_range_and_layout() {
        // One 1×2 image: left pixel (-1, 0, 1), right pixel (1, 1, -1).
        let t = Tensor::new(&[[[[-1f32, 1.]], [[0., 1.]], [[1., -1.]]]], &Device::Cpu).unwrap();
        let images = tensor_to_images(&t).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].dimensions(), (2, 1));
        assert_eq!(images[0].get_pixel(0, 0), &Rgb([0, 128, 255]));
        assert_eq!(images[0].get_pixel(1, 0), &Rgb([255, 255, 0]));
    }

    #[test]
    fn figure_encodes_png() {
        let fig = Figure(RgbImage::new(3, 2));
        let bytes = fig.png_bytes().unwrap();
        assert!(bytes.starts_with(b"\x89PNG"));
    }
}
