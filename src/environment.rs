//! What this machine and this build can do: the first thing chapter 1 prints.

use std::fmt;

use candle_core::Device;

/// A description of the compute environment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Environment {
    pub logogan_version: &'static str,
    /// Cargo features this build was compiled with.
    pub features: Vec<&'static str>,
    /// The build has CUDA support (`--features cuda`).
    pub cuda_compiled: bool,
    /// A CUDA device could be opened.
    pub cuda_device: Option<String>,
    pub cpu_threads: usize,
    pub avx: bool,
    pub f16c: bool,
    pub optimised_build: bool,
}

impl Environment {
    /// Probe the machine. Opening a CUDA device is tried only in CUDA builds.
    pub fn detect() -> Self {
        let mut features = Vec::new();
        if crate::ops::CUDA_BUILD {
            features.push("cuda");
        }
        if cfg!(feature = "gather") {
            features.push("gather");
        }
        let cuda_device = if candle_core::utils::cuda_is_available() {
            match Device::new_cuda(0) {
                Ok(_) => Some("cuda:0".to_string()),
                Err(e) => Some(format!("cuda:0 could not be opened: {e}")),
            }
        } else {
            None
        };
        Self {
            logogan_version: env!("CARGO_PKG_VERSION"),
            features,
            cuda_compiled: candle_core::utils::cuda_is_available(),
            cuda_device,
            cpu_threads: rayon::current_num_threads(),
            avx: candle_core::utils::with_avx(),
            f16c: candle_core::utils::with_f16c(),
            optimised_build: !cfg!(debug_assertions),
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        writeln!(f, "logogan {}", self.logogan_version)?;
        writeln!(
            f,
            "  cargo features : {}",
            if self.features.is_empty() {
                "(none)".to_string()
            } else {
                self.features.join(", ")
            }
        )?;
        writeln!(f, "  CUDA in build  : {}", yes_no(self.cuda_compiled))?;
        match &self.cuda_device {
            Some(d) => writeln!(f, "  CUDA device    : {d}")?,
            None if self.cuda_compiled => writeln!(f, "  CUDA device    : none found")?,
            None => writeln!(
                f,
                "  CUDA device    : not checked (build with --features cuda)"
            )?,
        }
        writeln!(f, "  CPU threads    : {}", self.cpu_threads)?;
        writeln!(
            f,
            "  CPU AVX / F16C : {} / {}",
            yes_no(self.avx),
            yes_no(self.f16c)
        )?;
        write!(
            f,
            "  optimised build: {}",
            if self.optimised_build {
                "yes"
            } else {
                "no (use --release for training)"
            }
        )
    }
}
