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
