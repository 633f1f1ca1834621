//! Chapter 6: judging a generator with numbers.
//!
//! A GAN's losses say who is winning the game, not how good the pictures are. Quality metrics
//! compare *sets* of images through feature vectors: [`distances`] holds the measures (Fréchet
//! distance, KID, precision and recall, memorisation), each of which should be read beside its
//! real-vs-real floor (two disjoint halves of the real images scored against each other).

pub mod distances;
pub mod encoder;
pub mod score;

pub use distances::{
    frechet_distance, kernel_inception_distance, memorisation, precision_recall, Features, Kid,
    Memorisation, PrecisionRecall,
};
pub use encoder::{EncoderConfig, FeatureEncoder};
pub use score::{score_images, score_run, RealReference, ScoreConfig, ScoreReport, Scores};
