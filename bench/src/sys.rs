//! The process side shared by the benchmarks: resident memory from `/proc`, child processes,
//! scratch directories and the product's binary.

use std::path::PathBuf;

use anyhow::Context;

/// A field of `/proc/self/status` in MB (`VmRSS` now, `VmHWM` the peak).
pub fn proc_status_mb(field: &str) -> f64 {
    status_mb("/proc/self/status", field)
}

/// A field of a `/proc/<pid>/status` file in MB; 0 when it cannot be read.
pub fn status_mb(path: &str, field: &str) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

/// A child process killed when dropped.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory of this process's own under the system's temporary directory.
pub fn scratch_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("credit-risk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// The product's binary, `credit-risk`, built beside this one (same target directory).
pub fn product_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me
        .parent()
        .context("the benchmark's binary has no directory")?
        .join("credit-risk");
    anyhow::ensure!(
        path.is_file(),
        "{} not found: build the product beside the benchmarks (cargo build --release -p \
         credit-risk)",
        path.display()
    );
    Ok(path)
}
