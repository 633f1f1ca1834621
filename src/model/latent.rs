//! The generator's input: noise vectors drawn reproducibly from a seed.

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;

/// `n` latent vectors `(n, latent_dim, 1, 1)` from N(0, 1), drawn from stream `stream` of `seed`.
// ANCHOR: latent_noise
pub fn latent_noise(
    seed: u64,
    stream: u64,
    n: usize,
    latent_dim: usize,
    device: &Device,
) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let values: Vec<f32> = (0..n * latent_dim)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Ok(Tensor::from_vec(values, (n, latent_dim, 1, 1), &Device::Cpu)?.to_device(device)?)
}
// ANCHOR_END: latent_noise

/// Family numbers `labels` `(B,)` (u32, each below `classes`) → one-hot rows `(B, classes)`
/// in f32: a 1 in the family's column, 0 elsewhere. What a conditional GAN reads the family as.
pub fn one_hot(labels: &Tensor, classes: usize) -> candle_core::Result<Tensor> {
    let columns = Tensor::arange(0u32, classes as u32, labels.device())?.unsqueeze(0)?; // (1, K)
    let rows = labels.to_dtype(candle_core::DType::U32)?.unsqueeze(1)?; // (B, 1)
    rows.broadcast_eq(&columns)?
        .to_dtype(candle_core::DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_the_same_whoever_draws_it_and_streams_differ() {
        let dev = Device::Cpu;
        let a = latent_noise(7, 3, 2, 10, &dev).unwrap();
        assert_eq!(a.dims(), [2, 10, 1, 1]);
        let again = latent_noise(7, 3, 2, 10, &dev).unwrap();
        let other = latent_noise(7, 4, 2, 10, &dev).unwrap();
        let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v(&a), v(&again));
        assert_ne!(v(&a), v(&other));
        // The first vector of a larger draw is the same: a stream is read in order.
        let more = latent_noise(7, 3, 4, 10, &dev).unwrap();
        assert_eq!(v(&more)[..20], v(&a)[..]);
    }

    #[test]
    fn one_hot_puts_a_one_in_the_family_column() {
        let labels = Tensor::new(&[2u32, 0, 1], &Device::Cpu).unwrap();
        let rows = one_hot(&labels, 3).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(rows, [[0., 0., 1.], [1., 0., 0.], [0., 1., 0.]]);
    }
}
