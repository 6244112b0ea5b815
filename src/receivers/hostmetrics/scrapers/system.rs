//! `system` scraper (`scrapers.system`): how long the host has been up.
//!
//! | metric | type | unit | default | source |
//! | --- | --- | --- | --- | --- |
//! | `system.uptime` | gauge, double | `s` | on (in the Collector's `system` scraper, itself off unless listed) | `/proc/uptime` field 1 |
//!
//! No attributes. `/proc/uptime` is the only source: missing, or without a finite non-negative
//! first number, is an Err. (The Collector derives it from the boot time; `/proc/uptime` is the
//! kernel's own reading, to the centisecond, and needs no clock arithmetic.)

use serde::{Deserialize, Serialize};

use super::{gauge, point, Ctx, Num, Output, Switches};

pub const UPTIME: &str = "system.uptime";

/// Every metric of this scraper with its default (enabled by default in the Collector or not).
pub const METRICS: &[(&str, bool)] = &[(UPTIME, true)];

/// `scrapers.system` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric names under `metrics`.
    pub fn validate(&self) -> Vec<(String, String)> {
        super::unknown_metrics("system", &self.metrics, METRICS)
    }
}

/// Kept between collections: whether the metric is on.
pub struct Scraper {
    uptime: bool,
}

impl Scraper {
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        Ok(Scraper {
            uptime: Ctx::enabled(&cfg.metrics, UPTIME, true),
        })
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        let mut metrics = Vec::new();
        if self.uptime {
            let text = ctx.read("/proc/uptime")?;
            let secs = text
                .split_ascii_whitespace()
                .next()
                .and_then(|f| f.parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!(
                        "{}: expected the uptime in seconds, got {:?}",
                        ctx.path("/proc/uptime").display(),
                        text.chars().take(64).collect::<String>()
                    )
                })?;
            metrics.push(gauge(
                ctx,
                UPTIME,
                "The time the system has been running",
                "s",
                vec![point(Vec::new(), Num::Double(secs))],
            ));
        }
        Ok(vec![(Vec::new(), metrics)])
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::testkit::*;
    use super::*;

    #[test]
    fn uptime_in_seconds() {
        let root = Root::new();
        root.write("proc/uptime", "3482.11 4772.14\n");
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![UPTIME]);
        let pts = gauge_points(find(&out, UPTIME), "s");
        assert_eq!(pts.len(), 1);
        assert!(attrs(&pts[0]).is_empty());
        assert!(close(as_double(&pts[0]), 3482.11));
        assert_eq!(METRICS, &[(UPTIME, true)]);
    }

    #[test]
    fn switch_and_validate() {
        let root = Root::new(); // no /proc/uptime: not read when off
        let cfg: Config =
            serde_norway::from_str("metrics:\n  system.uptime:\n    enabled: false\n").unwrap();
        assert!(cfg.validate().is_empty());
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert!(names(&out).is_empty());
        let cfg = Config {
            metrics: switches(&[("system.boot_time", true)]),
        };
        let errs = cfg.validate();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "metrics.system.boot_time");
        assert!(errs[0].1.contains(UPTIME));
        assert!(serde_norway::from_str::<Config>("uptime: true\n").is_err());
    }

    #[test]
    fn missing_truncated_or_garbage() {
        let root = Root::new();
        let err = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap_err();
        assert!(err.contains("proc/uptime"), "{err}");
        for bad in ["", "abc 1", "-5 1", "NaN", "\u{0}"] {
            root.write("proc/uptime", bad);
            assert!(
                Scraper::new(&Config::default())
                    .unwrap()
                    .scrape(&root.ctx())
                    .is_err(),
                "{bad:?}"
            );
        }
        root.write("proc/uptime", "12");
        assert!(Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .is_ok());
    }

    #[test]
    fn real_host() {
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&host())
            .unwrap();
        assert!(as_double(&gauge_points(find(&out, UPTIME), "s")[0]) > 0.0);
    }
}
