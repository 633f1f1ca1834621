//! The GAN losses, computed from logits in a numerically stable way.
//!
//! Binary cross-entropy of a logit `x` against a target `t` is
//! `-(t·log σ(x) + (1−t)·log(1−σ(x)))`. Computing σ first and then its log overflows to
//! `log(0) = -inf` once |x| is large (about 17 in f32), and a GAN's discriminator gets there
//! quickly; candle-nn's `binary_cross_entropy_with_logit` takes that route and can return NaN
//! (candle issue #2561). The same quantity rewritten,
//!
//! ```text
//! max(x, 0) − x·t + log(1 + exp(−|x|))
//! ```
//!
//! never exponentiates a positive number, so it is finite for every finite `x`: the form
//! PyTorch's `BCEWithLogitsLoss` uses.

use candle_core::{Result, Tensor};

/// Mean binary cross-entropy between `logits` and a constant `target` (1 for "real", 0 for
/// "fake", 0.9 with one-sided label smoothing).
// ANCHOR: bce_with_logits
pub fn bce_with_logits(logits: &Tensor, target: f64) -> Result<Tensor> {
    let positive_part = logits.relu()?;
    let log_term = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((positive_part - (logits * target)?)? + log_term)?.mean_all()
}
// ANCHOR_END: bce_with_logits

/// The game the two networks play.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum GanLoss {
    /// Binary cross-entropy on D's logits, non-saturating for G (the DCGAN paper's game).
    #[default]
    Bce,
    /// Hinge loss (Lim & Ye 2017; used by SAGAN and BigGAN): D is only pushed until a real
    /// image scores above +1 and a fake below −1, so it stops growing over-confident; G raises
    /// D's score of its fakes.
    Hinge,
}

// ANCHOR: gan_loss
impl GanLoss {
    /// D's loss, from its logits on a real batch and on a generated one. `real_label` is the
    /// cross-entropy's target for real images (1, or less with one-sided label smoothing); the
    /// hinge loss has no target, and the configuration refuses smoothing with it.
    pub fn discriminator(
        self,
        real_logits: &Tensor,
        fake_logits: &Tensor,
        real_label: f64,
    ) -> Result<Tensor> {
        match self {
            GanLoss::Bce => {
                bce_with_logits(real_logits, real_label)? + bce_with_logits(fake_logits, 0.0)?
            }
            GanLoss::Hinge => hinge_discriminator(real_logits, fake_logits),
        }
    }

    /// G's loss, from D's logits on G's images: low when D calls them real.
    pub fn generator(self, fake_logits: &Tensor) -> Result<Tensor> {
        match self {
            // Non-saturating: −log D(G(z)), not log(1 − D(G(z))) (chapter 5).
            GanLoss::Bce => bce_with_logits(fake_logits, 1.0),
            GanLoss::Hinge => hinge_generator(fake_logits),
        }
    }
}
// ANCHOR_END: gan_loss

// ANCHOR: hinge
/// The discriminator's hinge loss: `mean(max(0, 1 − D(x))) + mean(max(0, 1 + D(G(z))))`.
pub fn hinge_discriminator(real_logits: &Tensor, fake_logits: &Tensor) -> Result<Tensor> {
    let real = real_logits.neg()?.affine(1.0, 1.0)?.relu()?.mean_all()?;
    let fake = fake_logits.affine(1.0, 1.0)?.relu()?.mean_all()?;
    real + fake
}

/// The generator's hinge loss: `−mean(D(G(z)))`.
pub fn hinge_generator(fake_logits: &Tensor) -> Result<Tensor> {
    fake_logits.mean_all()?.neg()
}
// ANCHOR_END: hinge

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    // Reference values printed by PyTorch 2.15.0 (CPU, float32) with:
    //
    // ```python
    // import torch
    // f = torch.nn.BCEWithLogitsLoss()
    // x = torch.tensor([-120.0, -20.0, -3.5, -0.25, 0.0, 0.7, 4.0, 19.0, 150.0], requires_grad=True)
    // for t in (1.0, 0.0, 0.9):
    //     x.grad = None
    //     loss = f(x, torch.full_like(x, t))
    //     loss.backward()
    //     print(t, repr(loss.item()), [repr(g) for g in x.grad.tolist()])
    // ```
    const LOGITS: [f32; 9] = [-120.0, -20.0, -3.5, -0.25, 0.0, 0.7, 4.0, 19.0, 150.0];
    /// (target, loss, gradient of the loss with respect to each logit)
    #[allow(clippy::excessive_precision)]
    const TORCH: [(f64, f32, [f32; 9]); 3] = [
        (
            1.0,
            16.163352966308594,
            [
                -0.1111111119389534,
                -0.1111111119389534,
                -0.1078541949391365,
                -0.06246405094861984,
                -0.0555555559694767,
                -0.036868028342723846,
                -0.001998470863327384,
                0.0,
                0.0,
            ],
        ),
        (
            0.0,
            19.49112892150879,
            [
                0.0,
                2.2901708307543345e-10,
                0.0032569144386798143,
                0.04864705726504326,
                0.0555555559694767,
                0.07424308359622955,
                0.10911264270544052,
                0.1111111119389534,
                0.1111111119389534,
            ],
        ),
        (
            0.9,
            16.496129989624023,
            [
                -0.09999999403953552,
                -0.09999999403953552,
                -0.09674307703971863,
                -0.05135294049978256,
                -0.04444444179534912,
                -0.025756916031241417,
                0.009112643077969551,
                0.011111114174127579,
                0.011111114174127579,
            ],
        ),
    ];

    #[test]
    fn matches_pytorch_bce_with_logits_values_and_gradients() {
        for (target, loss, grads) in TORCH {
            let x = Var::new(&LOGITS, &Device::Cpu).unwrap();
            let l = bce_with_logits(x.as_tensor(), target).unwrap();
            let value = l.to_scalar::<f32>().unwrap();
            assert!(
                (value - loss).abs() <= 1e-5 * loss.abs().max(1.0),
                "target {target}: {value} vs {loss}"
            );
            let g = l
                .backward()
                .unwrap()
                .get(x.as_tensor())
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (i, (ours, theirs)) in g.iter().zip(grads).enumerate() {
                assert!(
                    (ours - theirs).abs() <= 1e-6,
                    "target {target}, logit {}: {ours} vs {theirs}",
                    LOGITS[i]
                );
            }
        }
    }

    #[test]
    fn hinge_losses_match_their_definition() {
        let dev = Device::Cpu;
        let real = Var::new(&[2f32, 0.5, -1.0], &dev).unwrap();
        let fake = Tensor::new(&[-2f32, 0.3, 1.0], &dev).unwrap();
        // real: max(0, 1−2)=0, max(0, 0.5)=0.5, max(0, 2)=2 → mean 5/6;
        // fake: max(0, −1)=0, max(0, 1.3)=1.3, max(0, 2)=2 → mean 3.3/3.
        let d = hinge_discriminator(real.as_tensor(), &fake).unwrap();
        let expected = 2.5 / 3.0 + 3.3 / 3.0;
        assert!((d.to_scalar::<f32>().unwrap() - expected).abs() < 1e-6);
        // Only the real logits inside the margin get a gradient (−1/3 each).
        let g = d
            .backward()
            .unwrap()
            .get(real.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(g, [0.0, -1.0 / 3.0, -1.0 / 3.0]);
        let gen = hinge_generator(&fake).unwrap().to_scalar::<f32>().unwrap();
        assert!((gen - (-(-2.0 + 0.3 + 1.0) / 3.0)).abs() < 1e-6);
    }

    #[test]
    fn each_loss_is_its_formula_for_both_players() {
        let dev = Device::Cpu;
        let real = Tensor::new(&[2f32, 0.5, -1.0], &dev).unwrap();
        let fake = Tensor::new(&[-2f32, 0.3, 1.0], &dev).unwrap();
        let value = |t: Tensor| t.to_scalar::<f32>().unwrap();
        let bce_d = value(GanLoss::Bce.discriminator(&real, &fake, 0.9).unwrap());
        let by_hand = value(bce_with_logits(&real, 0.9).unwrap())
            + value(bce_with_logits(&fake, 0.0).unwrap());
        assert!((bce_d - by_hand).abs() < 1e-6, "{bce_d} vs {by_hand}");
        assert_eq!(
            value(GanLoss::Bce.generator(&fake).unwrap()),
            value(bce_with_logits(&fake, 1.0).unwrap())
        );
        assert_eq!(
            value(GanLoss::Hinge.discriminator(&real, &fake, 1.0).unwrap()),
            value(hinge_discriminator(&real, &fake).unwrap())
        );
        assert_eq!(
            value(GanLoss::Hinge.generator(&fake).unwrap()),
            value(hinge_generator(&fake).unwrap())
        );
    }

    #[test]
    fn stays_finite_where_the_naive_formula_does_not() {
        let x = Tensor::new(&[-1e4f32, 1e4], &Device::Cpu).unwrap();
        let ours = bce_with_logits(&x, 1.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(ours.is_finite() && (ours - 5000.0).abs() < 1e-2, "{ours}");
        let naive = candle_nn::loss::binary_cross_entropy_with_logit(
            &x,
            &Tensor::new(&[1f32, 1.], &Device::Cpu).unwrap(),
        )
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
        assert!(
            !naive.is_finite(),
            "if candle's version became stable, this test can say so: {naive}"
        );
    }
}
