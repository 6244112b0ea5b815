//! `memory_limiter`: the Collector's keys, otelgw's semantics. It does not run in the pipeline's
//! processor chain (listing it there is accepted, as Collector configs do, and is a no-op at that
//! position); it configures the process-wide admission gate the receivers consult **before
//! reading or decoding a request** ([`crate::admission`]).
//!
//! Limits: `limit_mib` (or `limit_percentage` of the cgroup v2/v1 memory limit, or of total
//! memory when there is none) is the hard limit; `spike_limit_mib` (or
//! `spike_limit_percentage`; default 20% of the limit) is the headroom below it. Above the soft
//! limit (limit − spike) receivers refuse new requests with 429 + `Retry-After` / gRPC
//! `RESOURCE_EXHAUSTED` + `RetryInfo`; below it they accept again. Above the hard limit `/readyz`
//! answers 503. When several pipelines name memory limiters, the smallest limit wins.

use serde::{Deserialize, Serialize};

use crate::component::units::Duration;
use crate::component::Diagnostics;

/// `processors.memory_limiter`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryLimiterConfig {
    /// How often RSS is sampled (between samples, accounted bytes in flight move the estimate).
    pub check_interval: Duration,
    /// Hard limit in MiB.
    pub limit_mib: u64,
    /// Headroom below the hard limit in MiB (default 20% of the limit).
    pub spike_limit_mib: u64,
    /// Hard limit as a percentage of the container's (cgroup) or machine's memory.
    pub limit_percentage: u64,
    /// Headroom as a percentage of the same total.
    pub spike_limit_percentage: u64,
}

impl Default for MemoryLimiterConfig {
    fn default() -> Self {
        MemoryLimiterConfig {
            check_interval: Duration::from_secs(1),
            limit_mib: 0,
            spike_limit_mib: 0,
            limit_percentage: 0,
            spike_limit_percentage: 0,
        }
    }
}

const MIB: u64 = 1024 * 1024;

/// Total memory available to this process: the cgroup limit, else physical memory.
pub fn total_memory() -> Option<u64> {
    let cgroup_v2 = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
    let cgroup_v1 = std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes").ok();
    let physical = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let cgroup = cgroup_v2
        .or(cgroup_v1)
        .and_then(|v| v.trim().parse::<u64>().ok())
        // v1 reports "no limit" as a huge number
        .filter(|v| physical.is_none_or(|p| *v < p));
    cgroup.or(physical)
}

impl MemoryLimiterConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.check_interval.is_zero() {
            diag.error(format!("{path}.check_interval"), "must be greater than 0");
        }
        match (self.limit_mib > 0, self.limit_percentage > 0) {
            (false, false) => diag.error(path, "set limit_mib or limit_percentage"),
            (true, true) => diag.error(path, "set either limit_mib or limit_percentage, not both"),
            _ => {}
        }
        if self.limit_percentage > 100 {
            diag.error(format!("{path}.limit_percentage"), "must be at most 100");
        }
        if self.limit_mib > 0 && self.spike_limit_mib >= self.limit_mib {
            diag.error(
                format!("{path}.spike_limit_mib"),
                format!("must be less than limit_mib ({})", self.limit_mib),
            );
        }
        if self.limit_percentage > 0 && self.spike_limit_percentage >= self.limit_percentage {
            diag.error(
                format!("{path}.spike_limit_percentage"),
                format!(
                    "must be less than limit_percentage ({})",
                    self.limit_percentage
                ),
            );
        }
        if self.limit_mib > 0 && self.spike_limit_percentage > 0 {
            diag.error(
                format!("{path}.spike_limit_percentage"),
                "goes with limit_percentage; use spike_limit_mib",
            );
        }
    }

    /// (hard, soft) limits in bytes.
    pub fn limits(&self) -> Option<(u64, u64)> {
        let (hard, spike) = if self.limit_mib > 0 {
            let hard = self.limit_mib * MIB;
            let spike = if self.spike_limit_mib > 0 {
                self.spike_limit_mib * MIB
            } else {
                hard / 5
            };
            (hard, spike)
        } else {
            let total = total_memory()?;
            let hard = total / 100 * self.limit_percentage;
            let spike = if self.spike_limit_percentage > 0 {
                total / 100 * self.spike_limit_percentage
            } else {
                hard / 5
            };
            (hard, spike)
        };
        Some((hard, hard.saturating_sub(spike)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Vec<String> {
        let c: MemoryLimiterConfig = serde_norway::from_str(yaml).unwrap();
        let mut d = Diagnostics::default();
        c.validate("processors.memory_limiter", &mut d);
        d.errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn invalid_combinations_are_named() {
        assert_eq!(
            check("{limit_mib: 512, spike_limit_mib: 128}"),
            Vec::<String>::new()
        );
        assert_eq!(
            check("{limit_percentage: 80, spike_limit_percentage: 20}"),
            Vec::<String>::new()
        );
        assert!(check("{}")[0].contains("set limit_mib or limit_percentage"));
        assert!(check("{limit_mib: 100, limit_percentage: 50}")[0].contains("not both"));
        assert!(check("{limit_mib: 100, spike_limit_mib: 100}")[0]
            .starts_with("processors.memory_limiter.spike_limit_mib"));
        assert!(
            check("{limit_percentage: 50, spike_limit_percentage: 60}")[0]
                .contains("less than limit_percentage")
        );
        assert!(check("{limit_mib: 64, check_interval: 0}")[0].contains("check_interval"));
    }

    #[test]
    fn limits_default_the_spike_to_a_fifth() {
        let c: MemoryLimiterConfig = serde_norway::from_str("{limit_mib: 100}").unwrap();
        assert_eq!(c.limits(), Some((100 * MIB, 80 * MIB)));
        let c: MemoryLimiterConfig =
            serde_norway::from_str("{limit_mib: 64, spike_limit_mib: 16}").unwrap();
        assert_eq!(c.limits(), Some((64 * MIB, 48 * MIB)));
        let c: MemoryLimiterConfig = serde_norway::from_str("{limit_percentage: 50}").unwrap();
        let (hard, soft) = c.limits().unwrap();
        assert!(hard > 0 && soft == hard - hard / 5);
    }
}
