#![cfg_attr(not(feature = "std"), no_std)]

pub mod gemm;
pub mod microkernel;

#[macro_use]
extern crate gemm_common;

/// The widest SIMD the matrix products may use: the best the CPU has (the default), or less when
/// the environment variable `LOGOGAN_SIMD` says `avx2` or `portable` (LogoGAN's addition: the
/// course checks that its judge gives the same verdict whichever path the CPU takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdCap {
    /// Scalar code, no SIMD beyond the target's baseline.
    Portable,
    /// AVX2 with FMA (x86-64-v3).
    Avx2,
    /// AVX-512 (x86-64-v4), the widest gemm has.
    Avx512,
}

/// The cap set by `LOGOGAN_SIMD` (`avx512`, `avx2` or `portable`; unset or `auto`: no cap), read
/// once. Any other value panics with a message: a misspelt setting must not silently measure
/// the wrong path.
#[cfg(feature = "std")]
pub fn simd_cap() -> SimdCap {
    static CAP: std::sync::OnceLock<SimdCap> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| match std::env::var("LOGOGAN_SIMD").as_deref() {
        Err(_) | Ok("") | Ok("auto") | Ok("avx512") => SimdCap::Avx512,
        Ok("avx2") => SimdCap::Avx2,
        Ok("portable") => SimdCap::Portable,
        Ok(other) => panic!(
            "LOGOGAN_SIMD={other:?} is not a SIMD path: use auto, avx512, avx2 or portable"
        ),
    })
}

#[cfg(not(feature = "std"))]
pub fn simd_cap() -> SimdCap {
    SimdCap::Avx512
}
