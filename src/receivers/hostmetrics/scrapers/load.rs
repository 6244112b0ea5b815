//! `load` scraper (`scrapers.load`): the kernel's load averages from `/proc/loadavg`.
//!
//! | metric | type | unit | default | source |
//! | --- | --- | --- | --- | --- |
//! | `system.cpu.load_average.1m` | gauge, double | `{thread}` | on | `/proc/loadavg` field 1 |
//! | `system.cpu.load_average.5m` | gauge, double | `{thread}` | on | field 2 |
//! | `system.cpu.load_average.15m` | gauge, double | `{thread}` | on | field 3 |
//!
//! No attributes. `cpu_average: true` divides each average by the logical CPU count: the
//! `cpuN` lines of `/proc/stat` under the root (the Collector divides by its own
//! `runtime.NumCPU()`); if `/proc/stat` cannot be read, this process's available parallelism.
//!
//! `/proc/loadavg` is the only source: missing, or without three finite non-negative numbers
//! first, is an Err.

use serde::{Deserialize, Serialize};

use super::{enabled_in as enabled, gauge, point, unknown_metrics, Ctx, Num, Output, Switches};

pub const LOAD_1M: &str = "system.cpu.load_average.1m";
pub const LOAD_5M: &str = "system.cpu.load_average.5m";
pub const LOAD_15M: &str = "system.cpu.load_average.15m";

/// Every metric of this scraper with its default (enabled by default in the Collector or not).
pub const METRICS: &[(&str, bool)] = &[(LOAD_1M, true), (LOAD_5M, true), (LOAD_15M, true)];

const DESCRIPTIONS: [&str; 3] = [
    "Average CPU Load over 1 minute.",
    "Average CPU Load over 5 minutes.",
    "Average CPU Load over 15 minutes.",
];

/// `scrapers.load` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
    /// Divide the averages by the number of logical CPUs.
    pub cpu_average: bool,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric names under `metrics`.
    pub fn validate(&self) -> Vec<(String, String)> {
        unknown_metrics("load", &self.metrics, METRICS)
    }
}

/// Kept between collections: the enabled metrics.
pub struct Scraper {
    on: [bool; 3],
    cpu_average: bool,
}

impl Scraper {
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        let on = |name| enabled(&cfg.metrics, METRICS, name);
        Ok(Scraper {
            on: [on(LOAD_1M), on(LOAD_5M), on(LOAD_15M)],
            cpu_average: cfg.cpu_average,
        })
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        let text = ctx.read("/proc/loadavg")?;
        let Some(mut loads) = parse_loadavg(&text) else {
            return Err(format!(
                "{}: expected three load averages, got {:?}",
                ctx.path("/proc/loadavg").display(),
                text.chars().take(64).collect::<String>()
            ));
        };
        if self.cpu_average {
            let cpus = logical_cpus(ctx) as f64;
            for l in &mut loads {
                *l /= cpus;
            }
        }
        let mut metrics = Vec::new();
        for (i, (name, _)) in METRICS.iter().enumerate() {
            let (Some(true), Some(load), Some(description)) =
                (self.on.get(i).copied(), loads.get(i), DESCRIPTIONS.get(i))
            else {
                continue;
            };
            metrics.push(gauge(
                ctx,
                name,
                description,
                "{thread}",
                vec![point(Vec::new(), Num::Double(*load))],
            ));
        }
        Ok(vec![(Vec::new(), metrics)])
    }
}

/// The first three fields of `/proc/loadavg` ("0.18 0.49 0.75 3/96 11596").
fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text
        .split_ascii_whitespace()
        .map(|f| f.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0));
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// Logical CPUs: `cpuN` lines of `/proc/stat`, else this process's parallelism; at least 1.
fn logical_cpus(ctx: &Ctx) -> usize {
    let from_stat = ctx.read("/proc/stat").ok().map(|stat| {
        stat.lines()
            .filter(|l| {
                l.strip_prefix("cpu")
                    .is_some_and(|r| r.as_bytes().first().is_some_and(u8::is_ascii_digit))
            })
            .count()
    });
    match from_stat {
        Some(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::testkit::*;
    use super::*;

    #[test]
    fn load_averages() {
        let root = Root::new();
        root.write("proc/loadavg", "0.18 0.49 3.75 3/96 11596\n");
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![LOAD_1M, LOAD_5M, LOAD_15M]);
        for (name, want) in [(LOAD_1M, 0.18), (LOAD_5M, 0.49), (LOAD_15M, 3.75)] {
            let pts = gauge_points(find(&out, name), "{thread}");
            assert_eq!(pts.len(), 1);
            assert!(attrs(&pts[0]).is_empty());
            assert!(close(as_double(&pts[0]), want), "{name}");
        }
        assert_eq!(
            find(&out, LOAD_5M).description,
            "Average CPU Load over 5 minutes."
        );
    }

    #[test]
    fn cpu_average_divides_by_logical_cpus() {
        let root = Root::new();
        root.write("proc/loadavg", "1.00 2.00 4.00 3/96 11596\n");
        root.write(
            "proc/stat",
            "cpu  1 1 1 1\ncpu0 1 1 1 1\ncpu1 1 1 1 1\ncpu2 1 1 1 1\ncpu3 1 1 1 1\nctxt 5\n",
        );
        let cfg: Config = serde_norway::from_str("cpu_average: true\n").unwrap();
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert!(close(
            as_double(&gauge_points(find(&out, LOAD_1M), "{thread}")[0]),
            0.25
        ));
        assert!(close(
            as_double(&gauge_points(find(&out, LOAD_15M), "{thread}")[0]),
            1.0
        ));
        // no /proc/stat: this process's parallelism, never a division by zero
        root.remove("proc/stat");
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        let v = as_double(&gauge_points(find(&out, LOAD_15M), "{thread}")[0]);
        assert!(v > 0.0 && v <= 4.0);
    }

    #[test]
    fn switches_and_validate() {
        let root = Root::new();
        root.write("proc/loadavg", "0.18 0.49 0.75 3/96 11596\n");
        let cfg = Config {
            metrics: switches(&[(LOAD_1M, false), (LOAD_15M, false)]),
            cpu_average: false,
        };
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert_eq!(names(&out), vec![LOAD_5M]);
        let cfg = Config {
            metrics: switches(&[("system.cpu.load_average.10m", true)]),
            cpu_average: false,
        };
        let errs = cfg.validate();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "metrics.system.cpu.load_average.10m");
        assert!(errs[0].1.contains(LOAD_15M));
        assert!(serde_norway::from_str::<Config>("cpu_averages: true\n").is_err());
        assert!(Config::default().validate().is_empty());
    }

    #[test]
    fn missing_truncated_or_garbage() {
        let root = Root::new();
        let err = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap_err();
        assert!(err.contains("proc/loadavg"), "{err}");
        for bad in [
            "",
            "0.18 0.49",
            "0.18 x 0.75",
            "NaN 1 1",
            "-1 0 0",
            "inf 1 1",
            "\u{0}\u{1}",
        ] {
            root.write("proc/loadavg", bad);
            assert!(
                Scraper::new(&Config::default())
                    .unwrap()
                    .scrape(&root.ctx())
                    .is_err(),
                "{bad:?}"
            );
        }
        root.write("proc/loadavg", "0.1 0.2 0.3");
        assert!(Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .is_ok());
    }

    #[test]
    fn real_host() {
        let cfg = Config {
            metrics: Switches::new(),
            cpu_average: true,
        };
        let out = Scraper::new(&cfg).unwrap().scrape(&host()).unwrap();
        assert_eq!(names(&out).len(), 3);
        for (name, _) in METRICS {
            let v = as_double(&gauge_points(find(&out, name), "{thread}")[0]);
            assert!((0.0..10_000.0).contains(&v), "{name}: {v}");
        }
    }
}
