//! An animated GIF of the per-epoch sample grids: the course's favourite picture, noise turning
//! into logos.

use std::path::Path;

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbImage};

use crate::error::Result;
use crate::fsutil::write_atomic_with;

/// Write `frames` as a looping GIF, `frame_ms` per frame and the last one held three times as
/// long. GIF has 256 colours per frame; the encoder picks them per frame (NeuQuant).
pub fn save_gif(path: &Path, frames: &[RgbImage], frame_ms: u32) -> Result<()> {
    write_atomic_with(path, |file| {
        let mut encoder = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
        encoder
            .set_repeat(Repeat::Infinite)
            .map_err(std::io::Error::other)?;
        for (i, image) in frames.iter().enumerate() {
            let ms = if i + 1 == frames.len() {
                frame_ms * 3
            } else {
                frame_ms
            };
            let rgba = image::DynamicImage::ImageRgb8(image.clone()).to_rgba8();
            let frame = Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(ms, 1));
            encoder.encode_frame(frame).map_err(std::io::Error::other)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_animation_with_every_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.gif");
        let frames: Vec<RgbImage> = (0..3)
            .map(|i| RgbImage::from_pixel(8, 8, image::Rgb([i * 100, 0, 0])))
            .collect();
        save_gif(&path, &frames, 100).unwrap();
        let decoder = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).unwrap(),
        ))
        .unwrap();
        use image::AnimationDecoder;
        let decoded = decoder.into_frames().collect_frames().unwrap();
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[2].delay().numer_denom_ms(), (300, 1));
        assert_eq!(decoded[1].buffer().get_pixel(4, 4).0[0], 100);
    }
}
