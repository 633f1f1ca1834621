//! Loading a folder of same-size images into candle, and cutting it into shuffled batches.
//!
//! The whole set is decoded once, in parallel, and kept as one `u8` tensor `(N, 3, H, W)` on the
//! training device (12 000 logos of 64×64 are 147 MB as bytes, four times that as `f32`). A batch
//! is an `index_select` of shuffled rows converted to `f32` in [-1, 1], the range of the
//! generator's `tanh` output, so real and fake images look alike to the discriminator.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::clean::list_images;
use crate::error::{Error, IoResultExt, Result};

/// A set of RGB images held on one device.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    /// `(N, 3, H, W)`, `u8`.
    pixels: Tensor,
    /// File name of each image, in row order.
    pub names: Vec<String>,
    pub image_size: usize,
    /// The logo family of each image, in row order (chapter 7), when the set has them.
    families: Option<Vec<u32>>,
}

impl ImageDataset {
    /// Decode every image in `dir` (which must all be `image_size`×`image_size`).
    pub fn load(dir: &Path, image_size: usize, device: &Device) -> Result<Self> {
        let files = list_images(dir)?;
        if files.is_empty() {
            return Err(Error::bad_input(
                dir,
                "no images found: build the dataset with `cargo run --release --bin chapter-03`",
            ));
        }
        let images: Vec<RgbImage> = files
            .par_iter()
            .map(|rel| {
                let path = dir.join(rel);
                let image = image::open(&path)
                    .map_err(|e| Error::bad_input(&path, format!("cannot decode: {e}")))?
                    .to_rgb8();
                if image.dimensions() != (image_size as u32, image_size as u32) {
                    return Err(Error::bad_input(
                        &path,
                        format!(
                            "is {}×{}, expected {image_size}×{image_size}: rebuild with \
                             `chapter-03 --size {image_size}`",
                            image.width(),
                            image.height()
                        ),
                    ));
                }
                Ok(image)
            })
            .collect::<Result<_>>()?;
        let names = files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        Self::from_images(&images, names, device)
    }

    /// Build a dataset from images already in memory (all the same square size).
    pub fn from_images(images: &[RgbImage], names: Vec<String>, device: &Device) -> Result<Self> {
        let size = images.first().map_or(0, |i| i.width() as usize);
        let n = images.len();
        // (N, H, W, 3) as stored by the image crate → (N, 3, H, W) as convolutions expect.
        let mut hwc = Vec::with_capacity(n * size * size * 3);
        for image in images {
            if image.dimensions() != (size as u32, size as u32) {
                return Err(Error::config(
                    "images",
                    "all images must share one square size",
                ));
            }
            hwc.extend_from_slice(image.as_raw());
        }
        let pixels = Tensor::from_vec(hwc, (n, size, size, 3), &Device::Cpu)?
            .permute((0, 3, 1, 2))?
            .contiguous()?
            .to_device(device)?;
        Ok(Self {
            pixels,
            names,
            image_size: size,
            families: None,
        })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn device(&self) -> &Device {
        self.pixels.device()
    }

    /// Images at `indices`, as `f32` `(len, 3, H, W)` in [-1, 1].
    // ANCHOR: batch_get
    pub fn get(&self, indices: &[u32]) -> Result<Tensor> {
        let index = Tensor::new(indices, self.pixels.device())?;
        let bytes = self.pixels.index_select(&index, 0)?;
        Ok(bytes.to_dtype(DType::F32)?.affine(2.0 / 255.0, -1.0)?)
    }
    // ANCHOR_END: batch_get

    /// The same images, each of the logo family `families[i]` (chapter 7).
    pub fn with_families(mut self, families: Vec<u32>) -> Result<Self> {
        if families.len() != self.len() {
            return Err(Error::config(
                "families",
                format!("{} families for {} images", families.len(), self.len()),
            ));
        }
        self.families = Some(families);
        Ok(self)
    }

    /// The family of each image, when the set has them.
    pub fn families(&self) -> Option<&[u32]> {
        self.families.as_deref()
    }

    /// The families of the images at `indices` as a `(len,)` u32 tensor on the set's device, or
    /// `None` when the set has no families.
    pub fn families_of(&self, indices: &[u32]) -> Result<Option<Tensor>> {
        self.families
            .as_ref()
            .map(|f| {
                let picked: Vec<u32> = indices.iter().map(|&i| f[i as usize]).collect();
                Ok(Tensor::new(picked, self.pixels.device())?)
            })
            .transpose()
    }

    /// The images back as RGB images (e.g. to transform them with the image crate).
    pub fn to_images(&self) -> Result<Vec<RgbImage>> {
        let s = self.image_size;
        // (N, 3, H, W) → (N, H, W, 3), the image crate's order.
        let hwc = self
            .pixels
            .permute((0, 2, 3, 1))?
            .flatten_all()?
            .to_vec1::<u8>()?;
        Ok(hwc
            .chunks_exact(s * s * 3)
            .map(|c| RgbImage::from_raw(s as u32, s as u32, c.to_vec()).expect("sized"))
            .collect())
    }

    /// Every pixel, `(N, 3, H, W)` row-major, as bytes (for fingerprints).
    pub fn pixels_u8(&self) -> Result<Vec<u8>> {
        Ok(self.pixels.flatten_all()?.to_vec1::<u8>()?)
    }

    /// Write the images as a NumPy `.npy` file of `u8` `(N, 3, H, W)` (atomically): the exchange
    /// format with other tools, e.g. the PyTorch reference under `reference/`.
    pub fn save_npy(&self, path: &Path) -> Result<()> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let io = |e: std::io::Error| Error::bad_input(path, e.to_string());
        std::fs::create_dir_all(dir).map_err(io)?;
        // Written whole beside the target, then renamed over it: never a half-written file.
        let staging = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempdir_in(dir)
            .map_err(io)?;
        let staged = staging.path().join("images.npy");
        self.pixels.to_device(&Device::Cpu)?.write_npy(&staged)?;
        std::fs::rename(&staged, path).map_err(io)?;
        Ok(())
    }

    /// Read images from a NumPy `.npy` file of `u8` `(N, 3, S, S)` (as [`Self::save_npy`] writes
    /// and the PyTorch reference's samples are), e.g. another program's generated images.
    pub fn load_npy(path: &Path, device: &Device) -> Result<Self> {
        // The header is checked against the file before candle allocates what it declares: a
        // 200-byte file must not ask for a terabyte.
        check_npy_size(path)?;
        let pixels = Tensor::read_npy(path)
            .map_err(|e| Error::bad_input(path, format!("cannot read as a .npy array: {e}")))?;
        let shape_rule = "expected u8 images of shape (N, 3, S, S): values 0–255, channels first";
        if pixels.dtype() != DType::U8 {
            return Err(Error::bad_input(
                path,
                format!("holds {:?} values; {shape_rule}", pixels.dtype()),
            ));
        }
        match *pixels.dims() {
            [n, 3, h, w] if n > 0 && h == w && h > 0 => Ok(Self {
                pixels: pixels.to_device(device)?,
                names: (0..n).map(|i| format!("row {i}")).collect(),
                image_size: h,
                families: None,
            }),
            ref dims => Err(Error::bad_input(
                path,
                format!("has shape {dims:?}; {shape_rule}"),
            )),
        }
    }

    /// A dataset of the images at `indices` (in that order).
    pub fn subset(&self, indices: &[u32]) -> Result<Self> {
        let index = Tensor::new(indices, self.pixels.device())?;
        Ok(Self {
            pixels: self.pixels.index_select(&index, 0)?,
            names: indices
                .iter()
                .map(|&i| self.names[i as usize].clone())
                .collect(),
            image_size: self.image_size,
            families: self
                .families
                .as_ref()
                .map(|f| indices.iter().map(|&i| f[i as usize]).collect()),
        })
    }

    /// Move the images to another device.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        Ok(Self {
            pixels: self.pixels.to_device(device)?,
            names: self.names.clone(),
            image_size: self.image_size,
            families: self.families.clone(),
        })
    }

    /// The order of the images in epoch `epoch`: a permutation that depends only on `seed` and
    /// `epoch`, so a resumed run sees the same batches.
    // ANCHOR: epoch_order
    pub fn epoch_order(&self, seed: u64, epoch: u64) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch);
        order.shuffle(&mut rng);
        order
    }
    // ANCHOR_END: epoch_order

    /// Shuffled batches of one epoch. With `drop_last`, a final short batch is skipped (batch
    /// norm statistics of a batch of 3 are noise).
    pub fn batches(
        &self,
        batch_size: usize,
        seed: u64,
        epoch: u64,
        drop_last: bool,
    ) -> Result<Batches<'_>> {
        if batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        Ok(Batches {
            dataset: self,
            order: self.epoch_order(seed, epoch),
            batch_size,
            drop_last,
            position: 0,
        })
    }

    /// Number of batches per epoch.
    pub fn batches_per_epoch(&self, batch_size: usize, drop_last: bool) -> usize {
        if drop_last {
            self.len() / batch_size.max(1)
        } else {
            self.len().div_ceil(batch_size.max(1))
        }
    }
}

/// Iterator over the batches of one epoch, from [`ImageDataset::batches`].
pub struct Batches<'a> {
    dataset: &'a ImageDataset,
    order: Vec<u32>,
    batch_size: usize,
    drop_last: bool,
    position: usize,
}

impl Iterator for Batches<'_> {
    type Item = Result<Tensor>;

    fn next(&mut self) -> Option<Self::Item> {
        let end = (self.position + self.batch_size).min(self.order.len());
        let len = end - self.position;
        if len == 0 || (self.drop_last && len < self.batch_size) {
            return None;
        }
        let batch = self.dataset.get(&self.order[self.position..end]);
        self.position = end;
        Some(batch)
    }
}

/// Most images a `.npy` file given to the judge may hold, and the largest side.
pub const MAX_NPY_IMAGES: usize = 1_000_000;
pub const MAX_NPY_SIDE: usize = 1024;

/// Read a `.npy` header and refuse it unless its `u8` array of shape `(N, C, H, W)` is exactly
/// what follows the header in the file and within [`MAX_NPY_IMAGES`] × [`MAX_NPY_SIDE`]².
fn check_npy_size(path: &Path) -> Result<()> {
    use std::io::Read;
    let bad = |why: String| Error::bad_input(path, why);
    let mut file = std::fs::File::open(path).at(path)?;
    let file_len = file.metadata().at(path)?.len();
    let mut magic = [0u8; 10];
    file.read_exact(&mut magic)
        .map_err(|_| bad("not a .npy file (too short)".into()))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file (no NUMPY magic)".into()));
    }
    let (header_len, prefix) = match magic[6] {
        1 => (u16::from_le_bytes([magic[8], magic[9]]) as u64, 10u64),
        2 | 3 => {
            let mut more = [0u8; 2];
            file.read_exact(&mut more)
                .map_err(|_| bad("truncated .npy header".into()))?;
            (
                u32::from_le_bytes([magic[8], magic[9], more[0], more[1]]) as u64,
                12u64,
            )
        }
        v => return Err(bad(format!(".npy format version {v} is not supported"))),
    };
    if header_len > 64 * 1024 || prefix + header_len > file_len {
        return Err(bad(format!(
            "its header claims {header_len} bytes; the file is {file_len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|_| bad("truncated .npy header".into()))?;
    let header = String::from_utf8_lossy(&header);
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .ok_or_else(|| bad(format!("no shape in the .npy header `{}`", header.trim())))?;
    let dims: Vec<u64> = shape_text
        .trim()
        .trim_start_matches('(')
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<u64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            bad(format!(
                "unreadable shape ({shape_text}) in the .npy header"
            ))
        })?;
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|rest| rest.split('\'').nth(1))
        .unwrap_or("?");
    if !matches!(descr, "|u1" | "u1" | "<u1" | ">u1") {
        return Err(bad(format!(
            "holds values of type `{descr}`; expected u8 images (N, 3, S, S), values 0–255"
        )));
    }
    let fits = |d: &[u64]| {
        d[0] as usize <= MAX_NPY_IMAGES
            && d[2] as usize <= MAX_NPY_SIDE
            && d[3] as usize <= MAX_NPY_SIDE
            && d[1] <= 4
    };
    if dims.len() != 4 || !fits(&dims) {
        return Err(bad(format!(
            "declares shape {dims:?}: expected (N, 3, S, S) with N ≤ {MAX_NPY_IMAGES} and S ≤ {MAX_NPY_SIDE}"
        )));
    }
    let bytes: u64 = dims.iter().product(); // u8: one byte per value; the bounds keep this small
    if prefix + header_len + bytes != file_len {
        return Err(bad(format!(
            "declares shape {dims:?} ({bytes} bytes of data) but holds {} bytes after its header: \
             a truncated or mislabelled file",
            file_len - prefix - header_len
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn solid(v: u8) -> RgbImage {
        RgbImage::from_pixel(4, 4, Rgb([v, v / 2, 255 - v]))
    }

    fn dataset(n: usize) -> ImageDataset {
        let images: Vec<_> = (0..n).map(|i| solid(i as u8 * 10)).collect();
        let names = (0..n).map(|i| format!("{i}.png")).collect();
        ImageDataset::from_images(&images, names, &Device::Cpu).unwrap()
    }

    #[test]
    fn npy_round_trip_keeps_every_pixel_and_bad_arrays_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset(5);
        let path = dir.path().join("sub/images.npy");
        ds.save_npy(&path).unwrap();
        let back = ImageDataset::load_npy(&path, &Device::Cpu).unwrap();
        assert_eq!((back.len(), back.image_size), (5, 4));
        assert_eq!(back.pixels_u8().unwrap(), ds.pixels_u8().unwrap());

        // Floats, wrong channel count, not square, not a .npy at all: refused, file named.
        let floats = dir.path().join("floats.npy");
        ds.get(&[0, 1]).unwrap().write_npy(&floats).unwrap();
        let wrong_channels = dir.path().join("gray.npy");
        Tensor::zeros((2, 1, 4, 4), DType::U8, &Device::Cpu)
            .unwrap()
            .write_npy(&wrong_channels)
            .unwrap();
        let not_square = dir.path().join("wide.npy");
        Tensor::zeros((2, 3, 4, 8), DType::U8, &Device::Cpu)
            .unwrap()
            .write_npy(&not_square)
            .unwrap();
        let garbage = dir.path().join("garbage.npy");
        std::fs::write(&garbage, b"not numpy").unwrap();
        // Hostile headers: a tiny file that declares 10¹² images (candle would try to allocate
        // them), and a file cut short after its header.
        let header = |shape: &str| {
            let mut text =
                format!("{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}");
            while (10 + text.len() + 1) % 64 != 0 {
                text.push(' ');
            }
            text.push('\n');
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            bytes.extend((text.len() as u16).to_le_bytes());
            bytes.extend(text.as_bytes());
            bytes
        };
        let bomb = dir.path().join("bomb.npy");
        std::fs::write(&bomb, header("(1000000000000, 3, 32, 32)")).unwrap();
        let truncated = dir.path().join("truncated.npy");
        let mut bytes = header("(10, 3, 32, 32)");
        bytes.extend(vec![0u8; 100]);
        std::fs::write(&truncated, bytes).unwrap();
        for (path, says) in [
            (&floats, "expected u8"),
            (&wrong_channels, "[2, 1, 4, 4]"),
            (&not_square, "[2, 3, 4, 8]"),
            (&garbage, "not a .npy"),
            (&bomb, "N ≤ 1000000"),
            (&truncated, "truncated or mislabelled"),
        ] {
            let message = ImageDataset::load_npy(path, &Device::Cpu)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains(path.file_name().unwrap().to_str().unwrap())
                    && message.contains(says),
                "{message}"
            );
        }
    }

    #[test]
    fn values_are_scaled_to_minus_one_one_in_chw_order() {
        let ds = ImageDataset::from_images(
            &[solid(255), solid(0)],
            vec!["a".into(), "b".into()],
            &Device::Cpu,
        )
        .unwrap();
        let t = ds.get(&[0, 1]).unwrap();
        assert_eq!(t.dims(), &[2, 3, 4, 4]);
        let first: Vec<f32> = t.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        // Channel 0 is all 255 → 1.0, channel 1 is 127 → ~0, channel 2 is 0 → -1.
        assert!(first[..16].iter().all(|&x| x == 1.0));
        assert!(first[16..32]
            .iter()
            .all(|&x| (x - (127.0 / 127.5 - 1.0)).abs() < 1e-6));
        assert!(first[32..].iter().all(|&x| x == -1.0));
    }

    #[test]
    fn batches_cover_every_image_once_per_epoch_and_are_seeded() {
        let ds = dataset(10);
        let sizes: Vec<usize> = ds
            .batches(4, 0, 0, false)
            .unwrap()
            .map(|b| b.unwrap().dim(0).unwrap())
            .collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        assert_eq!(ds.batches(4, 0, 0, true).unwrap().count(), 2);
        assert_eq!(ds.batches_per_epoch(4, true), 2);
        assert_eq!(ds.batches_per_epoch(4, false), 3);

        let mut order = ds.epoch_order(3, 1);
        assert_eq!(
            order,
            ds.epoch_order(3, 1),
            "same seed and epoch, same order"
        );
        assert_ne!(order, ds.epoch_order(3, 2), "next epoch is reshuffled");
        assert_ne!(order, ds.epoch_order(4, 1), "other seed, other order");
        order.sort();
        assert_eq!(order, (0..10).collect::<Vec<u32>>());
        assert!(ds.batches(0, 0, 0, false).is_err());
    }

    #[test]
    fn load_refuses_wrong_sizes_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        crate::fsutil::save_png(&dir.path().join("a.png"), &solid(1)).unwrap();
        crate::fsutil::save_png(&dir.path().join("b.png"), &RgbImage::new(8, 8)).unwrap();
        let err = ImageDataset::load(dir.path(), 4, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.png") && err.contains("expected 4×4"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join("b.png")).unwrap();
        let ds = ImageDataset::load(dir.path(), 4, &Device::Cpu).unwrap();
        assert_eq!((ds.len(), ds.names[0].as_str()), (1, "a.png"));
    }
}
