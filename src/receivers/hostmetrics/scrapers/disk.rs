//! `scrapers.disk`: block-device I/O counters from `/proc/diskstats` (under `root_path`), the
//! Collector's `diskscraper` (metadata.yaml, semantic conventions 1.9.0).
//!
//! | metric | type | unit | attributes | default | from (diskstats field, 1-based) |
//! | --- | --- | --- | --- | --- | --- |
//! | `system.disk.io` | monotonic int sum | `By` | `device`, `direction` | on | sectors read (6) / written (10) × 512 |
//! | `system.disk.operations` | monotonic int sum | `{operations}` | `device`, `direction` | on | reads (4) / writes (8) completed |
//! | `system.disk.io_time` | monotonic double sum | `s` | `device` | on | ms doing I/O (13) / 1000 |
//! | `system.disk.operation_time` | monotonic double sum | `s` | `device`, `direction` | on | ms reading (7) / writing (11) / 1000 |
//! | `system.disk.weighted_io_time` | monotonic double sum | `s` | `device` | on | weighted ms doing I/O (14) / 1000 |
//! | `system.disk.pending_operations` | non-monotonic int sum | `{operations}` | `device` | on | I/Os in progress (12) |
//! | `system.disk.merged` | monotonic int sum | `{operations}` | `device`, `direction` | on | reads (5) / writes (9) merged |
//!
//! `direction` is `read` or `write`. Like the Collector (gopsutil reads every line of
//! diskstats), every device is reported — whole disks, partitions, `loop*`, `ram*`, `dm-*` —
//! except a line whose counters are all zero (a never-used device) and a line with fewer than
//! 14 fields or a counter that is not a number (skipped; the scrape goes on). `include` /
//! `exclude` (`{devices: [...], match_type: strict|regexp}`) then filter by device name.
//! Devices keep the file's order. The only error: `/proc/diskstats` cannot be read.

use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint};
use serde::{Deserialize, Serialize};

use super::{attr, point, sum, Ctx, Filter, MatchType, Matcher, Num, Output, Switches};

/// `include` / `exclude` of `scrapers.disk`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceMatch {
    /// Device names as in diskstats (`sda`, `nvme0n1p1`), or regexps.
    pub devices: Vec<String>,
    pub match_type: MatchType,
}

/// `scrapers.disk` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
    /// Only these devices (none: every device).
    pub include: DeviceMatch,
    /// Never these devices.
    pub exclude: DeviceMatch,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric names, bad regexps.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = super::unknown_metrics("disk", &self.metrics, METRICS);
        for (key, m) in [("include", &self.include), ("exclude", &self.exclude)] {
            if let Err(e) = Matcher::new(m.match_type, &m.devices) {
                out.push((format!("{key}.devices"), e));
            }
        }
        out
    }
}

/// Every metric with its Collector default.
pub const METRICS: &[(&str, bool)] = &[
    (IO, true),
    (OPERATIONS, true),
    (IO_TIME, true),
    (OPERATION_TIME, true),
    (WEIGHTED_IO_TIME, true),
    (PENDING_OPERATIONS, true),
    (MERGED, true),
];

const IO: &str = "system.disk.io";
const OPERATIONS: &str = "system.disk.operations";
const IO_TIME: &str = "system.disk.io_time";
const OPERATION_TIME: &str = "system.disk.operation_time";
const WEIGHTED_IO_TIME: &str = "system.disk.weighted_io_time";
const PENDING_OPERATIONS: &str = "system.disk.pending_operations";
const MERGED: &str = "system.disk.merged";

/// Bytes per diskstats sector (the kernel's unit, whatever the device's real sector size).
const SECTOR: u64 = 512;

/// The disk scraper: the compiled device filter and the metric switches.
pub struct Scraper {
    metrics: Switches,
    filter: Filter,
}

/// One diskstats line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Stats {
    device: String,
    reads: u64,
    reads_merged: u64,
    sectors_read: u64,
    read_ms: u64,
    writes: u64,
    writes_merged: u64,
    sectors_written: u64,
    write_ms: u64,
    in_progress: u64,
    io_ms: u64,
    weighted_ms: u64,
}

impl Stats {
    fn all_zero(&self) -> bool {
        [
            self.reads,
            self.reads_merged,
            self.sectors_read,
            self.read_ms,
            self.writes,
            self.writes_merged,
            self.sectors_written,
            self.write_ms,
            self.in_progress,
            self.io_ms,
            self.weighted_ms,
        ]
        .iter()
        .all(|v| *v == 0)
    }
}

/// Parses one line: `major minor name` then at least 11 counters (newer kernels add discard
/// and flush fields, ignored). `None` for a short or non-numeric line.
fn parse_line(line: &str) -> Option<Stats> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 14 {
        return None;
    }
    let n = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
    Some(Stats {
        device: (*f.get(2)?).to_string(),
        reads: n(3)?,
        reads_merged: n(4)?,
        sectors_read: n(5)?,
        read_ms: n(6)?,
        writes: n(7)?,
        writes_merged: n(8)?,
        sectors_written: n(9)?,
        write_ms: n(10)?,
        in_progress: n(11)?,
        io_ms: n(12)?,
        weighted_ms: n(13)?,
    })
}

fn int(v: u64) -> Num {
    Num::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn secs(ms: u64) -> Num {
    Num::Double(ms as f64 / 1e3)
}

impl Scraper {
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        Ok(Scraper {
            metrics: cfg.metrics.clone(),
            filter: Filter {
                include: Matcher::new(cfg.include.match_type, &cfg.include.devices)
                    .map_err(|e| format!("include: {e}"))?,
                exclude: Matcher::new(cfg.exclude.match_type, &cfg.exclude.devices)
                    .map_err(|e| format!("exclude: {e}"))?,
            },
        })
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        let text = ctx.read("/proc/diskstats")?;
        let disks: Vec<Stats> = text
            .lines()
            .filter_map(parse_line)
            .filter(|s| !s.all_zero() && self.filter.allows(&s.device))
            .collect();
        let on = |name: &str| {
            let default = METRICS.iter().any(|(n, d)| *n == name && *d);
            Ctx::enabled(&self.metrics, name, default)
        };
        let mut metrics: Vec<Metric> = Vec::new();
        if disks.is_empty() {
            return Ok(vec![(Vec::new(), metrics)]);
        }
        // (device, read, write) points of a per-direction metric
        let rw = |read: &dyn Fn(&Stats) -> Num, write: &dyn Fn(&Stats) -> Num| {
            let mut pts: Vec<NumberDataPoint> = Vec::with_capacity(disks.len() * 2);
            for d in &disks {
                pts.push(point(
                    vec![attr("device", &d.device), attr("direction", "read")],
                    read(d),
                ));
                pts.push(point(
                    vec![attr("device", &d.device), attr("direction", "write")],
                    write(d),
                ));
            }
            pts
        };
        let per_device = |value: &dyn Fn(&Stats) -> Num| {
            disks
                .iter()
                .map(|d| point(vec![attr("device", &d.device)], value(d)))
                .collect::<Vec<_>>()
        };
        if on(IO) {
            let pts = rw(&|d| int(d.sectors_read.saturating_mul(SECTOR)), &|d| {
                int(d.sectors_written.saturating_mul(SECTOR))
            });
            metrics.push(sum(ctx, IO, "Disk bytes transferred.", "By", true, pts));
        }
        if on(OPERATIONS) {
            let pts = rw(&|d| int(d.reads), &|d| int(d.writes));
            metrics.push(sum(
                ctx,
                OPERATIONS,
                "Disk operations count.",
                "{operations}",
                true,
                pts,
            ));
        }
        if on(IO_TIME) {
            metrics.push(sum(
                ctx,
                IO_TIME,
                "Time disk spent activated. On Windows, this is calculated as the inverse of disk idle time.",
                "s",
                true,
                per_device(&|d| secs(d.io_ms)),
            ));
        }
        if on(OPERATION_TIME) {
            let pts = rw(&|d| secs(d.read_ms), &|d| secs(d.write_ms));
            metrics.push(sum(
                ctx,
                OPERATION_TIME,
                "Time spent in disk operations.",
                "s",
                true,
                pts,
            ));
        }
        if on(WEIGHTED_IO_TIME) {
            metrics.push(sum(
                ctx,
                WEIGHTED_IO_TIME,
                "Time disk spent activated multiplied by the queue length.",
                "s",
                true,
                per_device(&|d| secs(d.weighted_ms)),
            ));
        }
        if on(PENDING_OPERATIONS) {
            metrics.push(sum(
                ctx,
                PENDING_OPERATIONS,
                "The queue size of pending I/O operations.",
                "{operations}",
                false,
                per_device(&|d| int(d.in_progress)),
            ));
        }
        if on(MERGED) {
            let pts = rw(&|d| int(d.reads_merged), &|d| int(d.writes_merged));
            metrics.push(sum(
                ctx,
                MERGED,
                "The number of disk reads/writes merged into single physical disk access operations.",
                "{operations}",
                true,
                pts,
            ));
        }
        Ok(vec![(Vec::new(), metrics)])
    }
}

#[cfg(test)]
mod tests {
    use super::super::MetricSwitch;
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
    use std::path::Path;

    const DISKSTATS: &str = "\
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       1 loop1 57 0 2248 11 0 0 0 0 0 24 11 0 0 0 0 0 0
   8       0 sda 400402 11157 21750866 499807 32032 57146 55740960 159578 3 33272 664498 12090 71 20257216 5009 1463 102
   8       1 sda1 1200 10 80000 900 300 20 4000 120 0 700 1020
 259       0 nvme0n1 10 1 20 30 40 50 60 70 0 80 90
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
";

    fn fixture(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/diskstats"), text).unwrap();
        dir
    }

    fn ctx(root: &Path) -> Ctx<'_> {
        Ctx {
            root,
            now_ns: 2_000,
            boot_ns: 1_000,
        }
    }

    fn kv(v: &opentelemetry_proto::tonic::common::v1::KeyValue) -> (String, String) {
        let val = match v.value.as_ref().and_then(|a| a.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => format!("{other:?}"),
        };
        (v.key.clone(), val)
    }

    fn find<'a>(out: &'a Output, name: &str) -> &'a Metric {
        out[0].1.iter().find(|m| m.name == name).unwrap()
    }

    /// (attributes "k=v,k=v", value) of a sum's points; and (monotonic).
    fn points(m: &Metric) -> (Vec<(String, Num)>, bool) {
        let Some(metric::Data::Sum(s)) = &m.data else {
            panic!("{} is not a sum", m.name)
        };
        let pts = s
            .data_points
            .iter()
            .map(|p| {
                assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (1_000, 2_000));
                let attrs: Vec<String> = p
                    .attributes
                    .iter()
                    .map(|a| {
                        let (k, v) = kv(a);
                        format!("{k}={v}")
                    })
                    .collect();
                let v = match p.value {
                    Some(number_data_point::Value::AsInt(i)) => Num::Int(i),
                    Some(number_data_point::Value::AsDouble(d)) => Num::Double(d),
                    None => panic!("no value"),
                };
                (attrs.join(","), v)
            })
            .collect();
        (pts, s.is_monotonic)
    }

    #[test]
    fn all_metrics_from_diskstats() {
        let dir = fixture(DISKSTATS);
        let mut sc = Scraper::new(&Config::default()).unwrap();
        let out = sc.scrape(&ctx(dir.path())).unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].0.is_empty());
        let names: Vec<&str> = out[0].1.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "system.disk.io",
                "system.disk.operations",
                "system.disk.io_time",
                "system.disk.operation_time",
                "system.disk.weighted_io_time",
                "system.disk.pending_operations",
                "system.disk.merged"
            ]
        );
        let io = find(&out, "system.disk.io");
        assert_eq!(
            (io.unit.as_str(), io.description.as_str()),
            ("By", "Disk bytes transferred.")
        );
        let (pts, mono) = points(io);
        assert!(mono);
        // all-zero loop0/zram0 skipped; loop1 (used) and the partition sda1 kept
        assert_eq!(
            pts,
            vec![
                ("device=loop1,direction=read".into(), Num::Int(2248 * 512)),
                ("device=loop1,direction=write".into(), Num::Int(0)),
                ("device=sda,direction=read".into(), Num::Int(21750866 * 512)),
                (
                    "device=sda,direction=write".into(),
                    Num::Int(55740960 * 512)
                ),
                ("device=sda1,direction=read".into(), Num::Int(80000 * 512)),
                ("device=sda1,direction=write".into(), Num::Int(4000 * 512)),
                ("device=nvme0n1,direction=read".into(), Num::Int(20 * 512)),
                ("device=nvme0n1,direction=write".into(), Num::Int(60 * 512)),
            ]
        );
        let (pts, _) = points(find(&out, "system.disk.operations"));
        assert_eq!(
            pts[2],
            ("device=sda,direction=read".into(), Num::Int(400402))
        );
        assert_eq!(
            pts[3],
            ("device=sda,direction=write".into(), Num::Int(32032))
        );
        assert_eq!(find(&out, "system.disk.operations").unit, "{operations}");
        let m = find(&out, "system.disk.io_time");
        assert_eq!(m.unit, "s");
        let (pts, mono) = points(m);
        assert!(mono);
        assert_eq!(pts[1], ("device=sda".into(), Num::Double(33.272)));
        let (pts, _) = points(find(&out, "system.disk.operation_time"));
        assert_eq!(
            pts[2],
            ("device=sda,direction=read".into(), Num::Double(499.807))
        );
        assert_eq!(
            pts[3],
            ("device=sda,direction=write".into(), Num::Double(159.578))
        );
        let (pts, _) = points(find(&out, "system.disk.weighted_io_time"));
        assert_eq!(pts[1], ("device=sda".into(), Num::Double(664.498)));
        let m = find(&out, "system.disk.pending_operations");
        assert_eq!(m.unit, "{operations}");
        let (pts, mono) = points(m);
        assert!(!mono);
        assert_eq!(pts[1], ("device=sda".into(), Num::Int(3)));
        let (pts, mono) = points(find(&out, "system.disk.merged"));
        assert!(mono);
        assert_eq!(
            pts[2],
            ("device=sda,direction=read".into(), Num::Int(11157))
        );
        assert_eq!(
            pts[3],
            ("device=sda,direction=write".into(), Num::Int(57146))
        );
        assert_eq!(
            pts[6],
            ("device=nvme0n1,direction=read".into(), Num::Int(1))
        );
    }

    fn devices(out: &Output) -> Vec<String> {
        let (pts, _) = points(find(out, "system.disk.io_time"));
        pts.into_iter()
            .map(|(a, _)| a.trim_start_matches("device=").to_string())
            .collect()
    }

    #[test]
    fn include_exclude_strict_and_regexp() {
        let dir = fixture(DISKSTATS);
        let cfg: Config = serde_norway::from_str(
            "include: {devices: ['sd[a-z]+[0-9]*', 'nvme.*'], match_type: regexp}\nexclude: {devices: [sda1], match_type: strict}\n",
        )
        .unwrap();
        assert!(cfg.validate().is_empty());
        let out = Scraper::new(&cfg)
            .unwrap()
            .scrape(&ctx(dir.path()))
            .unwrap();
        assert_eq!(devices(&out), ["sda", "nvme0n1"]);
        // strict include: exact names only
        let cfg: Config = serde_norway::from_str("include: {devices: [sda, sd]}\n").unwrap();
        let out = Scraper::new(&cfg)
            .unwrap()
            .scrape(&ctx(dir.path()))
            .unwrap();
        assert_eq!(devices(&out), ["sda"]);
        // regexps match anywhere in the name (the Collector's filterset): `sd` excludes `sda`
        // and `sda1`; `^sd$` would not
        let cfg: Config =
            serde_norway::from_str("exclude: {devices: ['loop.*', sd], match_type: regexp}\n")
                .unwrap();
        let out = Scraper::new(&cfg)
            .unwrap()
            .scrape(&ctx(dir.path()))
            .unwrap();
        assert_eq!(devices(&out), ["nvme0n1"]);
        let cfg: Config =
            serde_norway::from_str("exclude: {devices: ['^loop', '^sd$'], match_type: regexp}\n")
                .unwrap();
        let out = Scraper::new(&cfg)
            .unwrap()
            .scrape(&ctx(dir.path()))
            .unwrap();
        assert_eq!(devices(&out), ["sda", "sda1", "nvme0n1"]);
    }

    #[test]
    fn switches_and_validate() {
        let dir = fixture(DISKSTATS);
        let mut cfg = Config::default();
        cfg.metrics.insert(
            "system.disk.io".into(),
            MetricSwitch {
                enabled: Some(false),
            },
        );
        cfg.metrics.insert(
            "system.disk.merged".into(),
            MetricSwitch {
                enabled: Some(false),
            },
        );
        let out = Scraper::new(&cfg)
            .unwrap()
            .scrape(&ctx(dir.path()))
            .unwrap();
        assert_eq!(out[0].1.len(), 5);
        assert!(out[0]
            .1
            .iter()
            .all(|m| m.name != "system.disk.io" && m.name != "system.disk.merged"));

        let cfg: Config = serde_norway::from_str(
            "metrics: {system.disk.bogus: {enabled: true}}\ninclude: {devices: ['('], match_type: regexp}\n",
        )
        .unwrap();
        let errs = cfg.validate();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].0, "metrics.system.disk.bogus");
        assert!(errs[0].1.contains("system.disk.weighted_io_time"));
        assert_eq!(errs[1].0, "include.devices");
        assert!(Scraper::new(&cfg).is_err());
        assert!(serde_norway::from_str::<Config>("devices: [sda]\n").is_err());
        assert!(serde_norway::from_str::<Config>("include: {names: [sda]}\n").is_err());
        assert!(serde_norway::from_str::<Config>("{}").is_ok());
    }

    #[test]
    fn missing_and_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&ctx(dir.path()))
            .unwrap_err();
        assert!(err.contains("proc/diskstats"), "{err}");
        for text in [
            "",
            "\n\n",
            "   8 0 sda 1 2 3\n",
            "8 0 sda x 2 3 4 5 6 7 8 9 10 11\n",
            "8 0 sda 99999999999999999999999 2 3 4 5 6 7 8 9 10 11\n",
            "8 0 sda -1 2 3 4 5 6 7 8 9 10 11\n",
            "\u{0}\u{1} ☃ é 1 2 3 4 5 6 7 8 9 10 11 12 13\n",
            "8 0 sda 18446744073709551615 0 18446744073709551615 0 0 0 0 0 0 0 0\n",
        ] {
            let dir = fixture(text);
            let out = Scraper::new(&Config::default())
                .unwrap()
                .scrape(&ctx(dir.path()))
                .unwrap();
            assert_eq!(out.len(), 1);
        }
        // huge values saturate instead of wrapping
        let dir = fixture("8 0 sda 18446744073709551615 0 18446744073709551615 0 0 0 0 0 0 0 0\n");
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&ctx(dir.path()))
            .unwrap();
        let (pts, _) = points(find(&out, "system.disk.io"));
        assert_eq!(pts[0].1, Num::Int(i64::MAX));
    }

    #[test]
    fn this_machine() {
        let root = Path::new("/");
        let text = std::fs::read_to_string("/proc/diskstats").unwrap();
        let expected: Vec<String> = text
            .lines()
            .filter_map(parse_line)
            .filter(|s| !s.all_zero())
            .map(|s| s.device)
            .collect();
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&ctx(root))
            .unwrap();
        if expected.is_empty() {
            assert!(out[0].1.is_empty());
        } else {
            assert_eq!(out[0].1.len(), 7);
            assert_eq!(devices(&out), expected);
        }
    }
}
