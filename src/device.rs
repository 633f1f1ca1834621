//! Choosing where tensors live: `--device auto|cpu|cuda|cuda:N`.

use std::str::FromStr;

use candle_core::Device;

use crate::error::{Error, Result};

/// A device as the user asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeviceChoice {
    /// CUDA device 0 when this build has CUDA and a GPU is there, else the CPU.
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| {
                    Error::config(
                        "device",
                        format!("`{s}` is not one of auto, cpu, cuda, cuda:N"),
                    )
                }),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// Open the device.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto if candle_core::utils::cuda_is_available() => {
                Ok(Device::new_cuda(0).unwrap_or(Device::Cpu))
            }
            DeviceChoice::Auto => Ok(Device::Cpu),
            DeviceChoice::Cuda(n) if candle_core::utils::cuda_is_available() => Device::new_cuda(n)
                .map_err(|e| Error::config("device", format!("cuda:{n} could not be opened: {e}"))),
            DeviceChoice::Cuda(_) => Err(Error::config(
                "device",
                "this binary was built without CUDA: rebuild with `--features cuda` (see the book's CUDA appendix)",
            )),
        }
    }
}

/// A device for one more worker thread: the same CPU, or the same GPU through a CUDA stream of
/// its own, so that work queued by several threads can run side by side on the GPU.
pub fn worker_device(device: &Device) -> Result<Device> {
    match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => Device::new_cuda_with_stream(gpu_id)
            .map_err(|e| Error::config("device", format!("cuda:{gpu_id}: a new stream: {e}"))),
        _ => Ok(device.clone()),
    }
}

/// A short description of a device for logs and captions.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => {
            let threads = rayon::current_num_threads();
            format!(
                "cpu ({threads} thread{}, {} matrix products)",
                if threads == 1 { "" } else { "s" },
                crate::ops::cpu_gemm::simd_path()
            )
        }
        Device::Cuda(_) => "cuda".to_string(),
        Device::Metal(_) => "metal".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_cpu_with_its_number_of_threads() {
        let on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| describe(&Device::Cpu))
        };
        assert!(on(1).starts_with("cpu (1 thread, "), "{}", on(1));
        assert!(on(3).starts_with("cpu (3 threads, "), "{}", on(3));
    }

    #[test]
    fn parses_choices_and_refuses_others() {
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "cuda".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert_eq!(
            "cuda:1".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(1)
        );
        let err = "tpu".parse::<DeviceChoice>().unwrap_err().to_string();
        assert!(err.contains("`device`") && err.contains("tpu"), "{err}");
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn auto_and_cpu_always_open() {
        assert!(DeviceChoice::Cpu.open().unwrap().is_cpu());
        DeviceChoice::Auto.open().unwrap();
        if !candle_core::utils::cuda_is_available() {
            let err = DeviceChoice::Cuda(0).open().unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
