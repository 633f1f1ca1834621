//! A trained generator packed into one file, for running it elsewhere: the book's pages load it
//! into the browser (`web/`, compiled to WebAssembly from this library), where the course's own
//! [`Generator`] draws the logos.
//!
//! The file is a safetensors file: every variable of the generator (weights, batch-norm's
//! scale, shift and running statistics, as the checkpoint holds them: what `generate` samples
//! with) by its name in the
//! model (`block0.conv.weight`, …), and the generator's settings as JSON in the header's
//! metadata, so the file alone rebuilds the network.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use nalgebra::DMatrix;

use crate::error::{Error, Result};
use crate::model::layers::new_varmap;
use crate::model::{Generator, GeneratorConfig};

/// The header key whose value is [`PackHeader`] as JSON (one key: safetensors writes several in
/// no fixed order, and the same generator should pack to the same bytes).
pub const HEADER_KEY: &str = "logogan";
/// Most directions a packed file may carry.
pub const MAX_DIRECTIONS: usize = 16;
/// Largest packed file [`PackedGenerator::unpack`] reads: a 64×64 generator of the default
/// preset is about 14 MB; anything much larger is not a course generator.
pub const MAX_PACKED_BYTES: usize = 64 << 20;
/// Most images one call of [`PackedGenerator::sample`] draws.
pub const MAX_IMAGES_PER_CALL: usize = 256;

/// What a packed file says besides its tensors.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PackHeader {
    /// The generator's settings: enough to build the network the tensors fill.
    pub generator: GeneratorConfig,
    /// A few latent directions worth a slider ([`latent_directions`]), unit vectors.
    pub directions: Vec<Vec<f32>>,
}

// ANCHOR: pack
/// The bytes of a packed generator: `variables` (name → tensor, e.g. a generator's
/// [`VarMap`]) and `config`, which must describe the same network, with `directions` in latent
/// space (each of `config.latent_dim` numbers) for the page's sliders.
pub fn pack(
    config: &GeneratorConfig,
    variables: &VarMap,
    directions: &[Vec<f32>],
) -> Result<Vec<u8>> {
    let data = variables.data().lock().expect("poisoned");
    let mut tensors: Vec<(String, Tensor)> = data
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0)); // the same bytes for the same generator
    let header = PackHeader {
        generator: config.clone(),
        directions: directions.to_vec(),
    };
    let metadata = HashMap::from([(HEADER_KEY.to_string(), serde_json::to_string(&header)?)]);
    safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| candle_core::Error::Msg(format!("packing the generator: {e}")).into())
}
// ANCHOR_END: pack

/// `k` directions in latent space along which the generator's first layer varies most, as
/// unit vectors of `latent_dim` numbers: the first layer's outputs for `samples` noise vectors
/// (from `seed`) are split into principal components, and each component's scores are regressed
/// back onto the noise (GANSpace, Härkönen et al. 2020, for a generator fed z directly). Moving z
/// along one changes the picture's broad layout more than a random direction does. `families`
/// are the families `(samples,)` of a conditional generator, `None` for the unconditional one.
pub fn latent_directions(
    generator: &Generator,
    families: Option<&Tensor>,
    k: usize,
    samples: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let latent_dim = generator.config().latent_dim;
    if !(1..=MAX_DIRECTIONS).contains(&k) || samples <= k {
        return Err(Error::config(
            "directions",
            format!("{k} directions from {samples} samples: 1 to {MAX_DIRECTIONS}, fewer than the samples"),
        ));
    }
    let z = crate::model::latent_noise(seed, 0, samples, latent_dim, device)?; // (N, d, 1, 1)
    let mut first = None;
    generator.forward_trace(&generator.input(&z, families)?, false, &mut |i, x| {
        if i == 0 {
            first = Some(x.clone()); // (N, C, 4, 4)
        }
    })?;
    let first = first
        .expect("a generator has a first layer")
        .flatten_from(1)?; // (N, p)
    let rows = |t: &Tensor| -> Result<DMatrix<f64>> {
        let (n, p) = t.dims2()?;
        let values = t
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Ok(DMatrix::from_row_slice(n, p, &values))
    };
    let mut features = rows(&first)?; // (N, p)
    let mean = features.row_mean();
    for mut row in features.row_iter_mut() {
        row -= &mean;
    }
    let noise = rows(&z.flatten_from(1)?)?; // (N, d)
                                            // The principal components' scores are U Σ's columns, largest singular value first.
    let svd = features.svd(true, false);
    let u = svd.u.expect("asked for U");
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
    let mut directions = Vec::with_capacity(k);
    for &c in order.iter().take(k) {
        // Least squares of z on one score column x: (xᵀz) / (xᵀx), then unit length (the
        // scale of U's column does not matter).
        let x = u.column(c);
        let direction = noise.transpose() * x; // (d,)
        let norm = direction.norm().max(f64::MIN_POSITIVE);
        directions.push(direction.iter().map(|v| (v / norm) as f32).collect());
    }
    Ok(directions)
}

/// The numbers (weights, batch-norm's four vectors) of the generator `config` describes, or
/// `None` for an image size it cannot make; counted without overflow.
fn parameter_count(config: &GeneratorConfig) -> Option<usize> {
    let steps = crate::model::config::upsamplings(config.image_size)?;
    let mut inputs = config.input_channels();
    let mut count = 0usize;
    for i in 0..=steps {
        let last = i == steps;
        let outputs = if last {
            config.channels
        } else {
            config.base_filters.checked_shl((steps - 1 - i) as u32)?
        };
        // A 4×4 transposed convolution, then batch-norm (scale, shift, mean, variance).
        count = count.checked_add(inputs.checked_mul(outputs)?.checked_mul(16)?)?;
        if !last {
            count = count.checked_add(4 * outputs)?;
        }
        inputs = outputs;
    }
    Some(count)
}

/// A generator rebuilt from [`pack`]'s bytes, in inference mode.
pub struct PackedGenerator {
    pub generator: Generator,
    /// Latent directions worth a slider (unit vectors), as packed.
    pub directions: Vec<Vec<f32>>,
    device: Device,
}

impl PackedGenerator {
    /// Rebuild the generator that `bytes` hold. `source` names them in errors (a file, a URL).
    pub fn unpack(bytes: &[u8], source: &str, device: &Device) -> Result<Self> {
        let damaged = |why: String| Error::bad_input(source, format!("{why}; pack it again"));
        if bytes.len() > MAX_PACKED_BYTES {
            return Err(damaged(format!(
                "{} bytes, more than the {MAX_PACKED_BYTES} a packed generator may have",
                bytes.len()
            )));
        }
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| damaged(format!("not a safetensors file ({e})")))?;
        let header_json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(HEADER_KEY))
            .ok_or_else(|| damaged(format!("no `{HEADER_KEY}` in its header")))?;
        let PackHeader {
            generator: config,
            directions,
        } = serde_json::from_str(header_json).map_err(|e| {
            damaged(format!(
                "`{HEADER_KEY}` is not a packed generator's header ({e})"
            ))
        })?;
        // Bounded before any layer is made: the header must not make us allocate without end.
        // A file holds every weight of its network as f32, so the network its settings describe
        // can be no larger than the file.
        let bounded = config.image_size <= 256
            && (1..=4096).contains(&config.latent_dim)
            && (1..=1024).contains(&config.base_filters)
            && config.classes <= 64
            && config.channels == 3;
        let parameters = if bounded {
            parameter_count(&config)
        } else {
            None
        };
        match parameters {
            Some(count) if count.saturating_mul(4) <= bytes.len() => {}
            _ => {
                return Err(damaged(format!(
                "`{HEADER_KEY}` describes no course generator that fits in {} bytes: {config:?}",
                bytes.len()
            )))
            }
        }
        if directions.len() > MAX_DIRECTIONS
            || directions
                .iter()
                .any(|d| d.len() != config.latent_dim || d.iter().any(|v| !v.is_finite()))
        {
            return Err(damaged(format!(
                "`{HEADER_KEY}`'s directions must be at most {MAX_DIRECTIONS} finite vectors of {} numbers",
                config.latent_dim
            )));
        }
        let saved = candle_core::safetensors::load_buffer(bytes, device)
            .map_err(|e| damaged(format!("its tensors cannot be read ({e})")))?;
        let (variables, vb) = new_varmap(device);
        let generator = Generator::new(&config, vb)
            .map_err(|e| damaged(format!("its settings make no generator ({e})")))?;
        let data = variables.data().lock().expect("poisoned");
        if saved.len() != data.len() {
            return Err(damaged(format!(
                "{} tensors, where the generator of its settings has {}",
                saved.len(),
                data.len()
            )));
        }
        for (name, var) in data.iter() {
            let tensor = saved
                .get(name)
                .ok_or_else(|| damaged(format!("tensor `{name}` is missing")))?;
            if tensor.dims() != var.dims() || tensor.dtype() != var.dtype() {
                return Err(damaged(format!(
                    "tensor `{name}` is {:?} {:?}, the generator expects {:?} {:?}",
                    tensor.dtype(),
                    tensor.dims(),
                    var.dtype(),
                    var.dims()
                )));
            }
            var.set(tensor)?;
        }
        drop(data);
        Ok(Self {
            generator,
            directions,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &GeneratorConfig {
        self.generator.config()
    }

    /// Images `(n, 3, S, S)` in [-1, 1] for the `n` latent vectors laid end to end in `latents`
    /// (`n × latent_dim` numbers), of `family` for a conditional generator (which needs one).
    pub fn sample(&self, latents: &[f32], family: Option<u32>) -> Result<Tensor> {
        let latent_dim = self.config().latent_dim;
        let n = latents.len() / latent_dim;
        if n == 0 || n * latent_dim != latents.len() || n > MAX_IMAGES_PER_CALL {
            return Err(Error::config(
                "latents",
                format!(
                    "{} numbers are not 1 to {MAX_IMAGES_PER_CALL} latent vectors of {latent_dim}",
                    latents.len()
                ),
            ));
        }
        let classes = self.config().classes as u32;
        let labels = match family {
            Some(k) if k < classes => Some(Tensor::new(vec![k; n], &self.device)?),
            None if classes == 0 => None,
            _ => {
                return Err(Error::config(
                    "family",
                    format!("{family:?} asked of a generator of {classes} families"),
                ))
            }
        };
        let z = Tensor::from_slice(latents, (n, latent_dim, 1, 1), &self.device)?;
        let input = self.generator.input(&z, labels.as_ref())?;
        Ok(self.generator.forward_t(&input, false)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    /// A small generator (8 filters) with weights drawn by candle's initialiser, its variables
    /// and some running statistics moved away from their start, so a lost statistic shows.
    fn small_generator() -> (GeneratorConfig, VarMap, Generator) {
        let mut config = ModelConfig::logogan(32).generator;
        config.base_filters = 8;
        let (variables, vb) = new_varmap(&Device::Cpu);
        let generator = Generator::new(&config, vb).unwrap();
        let z = crate::model::latent_noise(3, 0, 16, config.latent_dim, &Device::Cpu).unwrap();
        generator.forward_t(&z, true).unwrap(); // updates batch-norm's running averages
        (config, variables, generator)
    }

    #[test]
    fn a_packed_generator_draws_what_the_original_draws() {
        let (config, variables, generator) = small_generator();
        let z = crate::model::latent_noise(5, 0, 3, config.latent_dim, &Device::Cpu).unwrap();
        let want = generator.forward_t(&z, false).unwrap();
        let directions = latent_directions(&generator, None, 2, 64, 0, &Device::Cpu).unwrap();
        let bytes = pack(&config, &variables, &directions).unwrap();
        let packed = PackedGenerator::unpack(&bytes, "test.safetensors", &Device::Cpu).unwrap();
        assert_eq!(packed.config(), &config);
        assert_eq!(packed.directions, directions);
        let latents = z.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = packed.sample(&latents, None).unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        // The same generator packs to the same bytes.
        assert!(pack(&config, &variables, &directions).unwrap() == bytes);
        // Two unit directions, of the latent's length, not the same one.
        for d in &directions {
            let norm: f32 = d.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert_eq!(d.len(), config.latent_dim);
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        }
        let cosine: f32 = directions[0]
            .iter()
            .zip(&directions[1])
            .map(|(a, b)| a * b)
            .sum();
        assert!(cosine.abs() < 0.99, "{cosine}");
        // Wrong numbers of latent numbers and families are refused by name.
        let e = packed.sample(&latents[1..], None).unwrap_err().to_string();
        assert!(e.contains("latents"), "{e}");
        let e = packed.sample(&latents, Some(0)).unwrap_err().to_string();
        assert!(e.contains("family"), "{e}");
    }

    #[test]
    fn a_damaged_or_foreign_file_is_refused_with_its_name() {
        let (config, variables, _) = small_generator();
        let bytes = pack(&config, &variables, &[]).unwrap();
        let refuse =
            |bytes: &[u8]| match PackedGenerator::unpack(bytes, "page.safetensors", &Device::Cpu) {
                Ok(_) => panic!("accepted"),
                Err(e) => e.to_string(),
            };
        let e = refuse(&bytes[..bytes.len() / 2]);
        assert!(e.contains("page.safetensors"), "{e}");
        // A plain safetensors file without the generator's settings.
        let tensors = [(
            "w",
            Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap(),
        )];
        let foreign = safetensors::serialize(tensors, None).unwrap();
        assert!(refuse(&foreign).contains(HEADER_KEY));
        // Settings of another network than the tensors: a tensor of the wrong shape.
        let mut other = config.clone();
        other.latent_dim -= 1;
        let e = refuse(&pack(&other, &variables, &[]).unwrap());
        assert!(e.contains("expects"), "{e}");
        // Settings that would allocate without end are refused before any layer is made.
        let mut huge = config.clone();
        huge.base_filters = 1 << 20;
        assert!(refuse(&pack(&huge, &variables, &[]).unwrap()).contains("no course generator"));
        // Within every bound, but a network of billions of numbers in a file of kilobytes.
        let mut large = config.clone();
        (large.base_filters, large.image_size) = (1024, 256);
        assert!(refuse(&pack(&large, &variables, &[]).unwrap()).contains("fits in"));
        // A file larger than any course generator is refused before it is read.
        let e = refuse(&vec![0u8; MAX_PACKED_BYTES + 1]);
        assert!(e.contains("more than"), "{e}");
        // A direction of the wrong length.
        let e = refuse(&pack(&config, &variables, &[vec![1.0; 3]]).unwrap());
        assert!(e.contains("directions"), "{e}");
    }
}
