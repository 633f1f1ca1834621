//! A printable table of a network's layers: what chapter 4 shows.

use std::fmt;

use candle_core::{Device, Tensor};

use super::layers::{ConvBlock, Direction};
use super::{Discriminator, Generator};
use crate::error::Result;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerRow {
    pub layer: String,
    /// Output shape for a batch of one.
    pub output: Vec<usize>,
    pub parameters: usize,
}

/// A network's layers, with totals.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerTable {
    pub name: String,
    pub input: Vec<usize>,
    pub rows: Vec<LayerRow>,
}

impl LayerTable {
    pub fn parameters(&self) -> usize {
        self.rows.iter().map(|r| r.parameters).sum()
    }
}

fn describe(block: &ConvBlock) -> String {
    let activation = block.activation.name();
    let c = &block.conv;
    let kind = match c.direction {
        Direction::Down => "conv",
        Direction::Up => "convT",
    };
    let cfg = (c.stride, c.padding, c.out_channels());
    let norm = if block.norm.is_some() { " + BN" } else { "" };
    let act = if activation.is_empty() {
        String::new()
    } else {
        format!(" + {activation}")
    };
    format!("{kind} 4×4 s{} p{} → {}{norm}{act}", cfg.0, cfg.1, cfg.2)
}

fn table(
    name: &str,
    input: Tensor,
    blocks: &[ConvBlock],
    run: impl FnOnce(&Tensor, &mut dyn FnMut(usize, &Tensor)) -> candle_core::Result<Tensor>,
) -> Result<LayerTable> {
    let mut shapes = Vec::new();
    run(&input, &mut |_, t| shapes.push(t.dims().to_vec()))?;
    let rows = blocks
        .iter()
        .zip(shapes)
        .map(|(block, output)| LayerRow {
            layer: describe(block),
            output,
            parameters: block.parameter_count(),
        })
        .collect();
    Ok(LayerTable {
        name: name.to_string(),
        input: input.dims().to_vec(),
        rows,
    })
}

/// The generator's table, from one forward pass of a batch of one in inference mode.
pub fn generator_table(g: &Generator, device: &Device) -> Result<LayerTable> {
    let z = Tensor::zeros(
        (1, g.config().latent_dim, 1, 1),
        candle_core::DType::F32,
        device,
    )?;
    table("generator", z, g.blocks(), |x, obs| {
        g.forward_trace(x, false, obs)
    })
}

/// The discriminator's table, from one forward pass of a batch of one in inference mode.
pub fn discriminator_table(d: &Discriminator, device: &Device) -> Result<LayerTable> {
    let c = d.config();
    let x = Tensor::zeros(
        (1, c.channels, c.image_size, c.image_size),
        candle_core::DType::F32,
        device,
    )?;
    table("discriminator", x, d.blocks(), |x, obs| {
        d.forward_trace(x, false, obs)
    })
}

impl fmt::Display for LayerTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = |s: &[usize]| {
            format!(
                "({})",
                s.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        writeln!(f, "{} — input {}", self.name, shape(&self.input))?;
        writeln!(f, "| layer | output | parameters |\n|---|---|---:|")?;
        for row in &self.rows {
            writeln!(
                f,
                "| {} | {} | {} |",
                row.layer,
                shape(&row.output),
                row.parameters
            )?;
        }
        write!(f, "| **total** | | **{}** |", self.parameters())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Gan, ModelConfig};

    #[test]
    fn shapes_and_parameter_counts_for_every_size() {
        let dev = Device::Cpu;
        for size in [32, 64, 128] {
            let mut cfg = ModelConfig::logogan(size);
            cfg.generator.base_filters = 8; // small and quick; the layout is what is tested
            cfg.discriminator.filters = crate::model::FilterSchedule::Constant(16);
            let gan = Gan::new(&cfg, &dev, 0).unwrap();
            let g = generator_table(&gan.generator, &dev).unwrap();
            let d = discriminator_table(&gan.discriminator, &dev).unwrap();
            let steps = size.trailing_zeros() as usize - 2;
            assert_eq!(g.rows.len(), steps + 1);
            assert_eq!(g.rows[0].output, vec![1, 8 << (steps - 1), 4, 4]);
            assert_eq!(g.rows.last().unwrap().output, vec![1, 3, size, size]);
            assert_eq!(
                d.rows.len(),
                steps + 1,
                "{size}: strided convs + the output conv"
            );
            assert_eq!(d.rows[0].output, vec![1, 16, size / 2, size / 2]);
            assert_eq!(d.rows[steps - 1].output, vec![1, 16, 4, 4]);
            assert_eq!(d.rows.last().unwrap().output, vec![1]);
            // Every parameter is counted once: the table's total equals the variables' total
            // minus the running statistics.
            let learnable = |vm: &candle_nn::VarMap| -> usize {
                let data = vm.data().lock().unwrap();
                data.iter()
                    .filter(|(k, _)| crate::model::layers::VariableRole::of(k).is_learnt())
                    .map(|(_, v)| v.elem_count())
                    .sum()
            };
            assert_eq!(g.parameters(), learnable(&gan.generator_vars));
            assert_eq!(d.parameters(), learnable(&gan.discriminator_vars));
        }
    }

    #[test]
    fn logogan_at_64_has_five_convs_of_128_with_bn_but_on_the_output() {
        let dev = Device::Cpu;
        let gan = Gan::new(&ModelConfig::logogan(64), &dev, 0).unwrap();
        let d = discriminator_table(&gan.discriminator, &dev).unwrap();
        assert_eq!(d.rows.len(), 5);
        for row in &d.rows[..4] {
            assert!(
                row.layer
                    .starts_with("conv 4×4 s2 p1 → 128 + BN + LeakyReLU"),
                "{}",
                row.layer
            );
        }
        assert_eq!(d.rows[4].layer, "conv 4×4 s1 p0 → 1");
        // 3·128·16 + 3·(128·128·16) + 128·16 weights, 4·2·128 BN parameters.
        assert_eq!(
            d.parameters(),
            3 * 128 * 16 + 3 * 128 * 128 * 16 + 128 * 16 + 4 * 2 * 128
        );

        let dcgan = Gan::new(&ModelConfig::dcgan(64), &dev, 0).unwrap();
        let d = discriminator_table(&dcgan.discriminator, &dev).unwrap();
        assert_eq!(
            d.rows[0].layer, "conv 4×4 s2 p1 → 64 + LeakyReLU",
            "no BN on the input layer"
        );
        assert_eq!(d.rows[3].output, vec![1, 512, 4, 4]);
        // The classic DCGAN of the PyTorch reference: 2 765 568 parameters in D.
        assert_eq!(d.parameters(), 2_765_568);
        let g = generator_table(&dcgan.generator, &dev).unwrap();
        assert_eq!(
            g.parameters(),
            3_576_704,
            "the PyTorch reference generator's count"
        );
    }

    #[test]
    fn initialisation_follows_dcgan_and_the_seed() {
        let dev = Device::Cpu;
        let cfg = ModelConfig::dcgan(32);
        let a = Gan::new(&cfg, &dev, 7).unwrap();
        let b = Gan::new(&cfg, &dev, 7).unwrap();
        let c = Gan::new(&cfg, &dev, 8).unwrap();
        let get = |gan: &Gan, name: &str| {
            gan.generator_vars.data().lock().unwrap()[name]
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let w = get(&a, "block1.conv.weight");
        assert_eq!(w, get(&b, "block1.conv.weight"), "same seed, same weights");
        assert_ne!(w, get(&c, "block1.conv.weight"));
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        let std = (w.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / w.len() as f32).sqrt();
        assert!(
            mean.abs() < 0.002 && (std - 0.02).abs() < 0.001,
            "N(0, 0.02): {mean} {std}"
        );
        let gamma = get(&a, "block1.norm.weight");
        let gmean = gamma.iter().sum::<f32>() / gamma.len() as f32;
        assert!((gmean - 1.0).abs() < 0.01, "γ ~ N(1, 0.02): {gmean}");
        assert!(get(&a, "block1.norm.bias").iter().all(|&x| x == 0.0));
        assert!(get(&a, "block1.norm.running_var").iter().all(|&x| x == 1.0));
    }
}
