//! `scrapers.filesystem`: space and inodes of every mounted filesystem, the Collector's
//! `filesystemscraper` (metadata.yaml, semantic conventions 1.9.0).
//!
//! | metric | type | unit | attributes | default |
//! | --- | --- | --- | --- | --- |
//! | `system.filesystem.usage` | non-monotonic int sum | `By` | `device`, `mode`, `mountpoint`, `type`, `state` = `used`\|`free`\|`reserved` | on |
//! | `system.filesystem.inodes.usage` | non-monotonic int sum | `{inodes}` | `device`, `mode`, `mountpoint`, `type`, `state` = `used`\|`free` | on |
//! | `system.filesystem.utilization` | double gauge | `1` | `device`, `mode`, `mountpoint`, `type` | off |
//!
//! Where the values come from:
//! - the mounts: `/proc/1/mountinfo` (the host's init, so a container reading the host at
//!   `root_path` sees the host's mounts), else `/proc/1/mounts`, `/proc/self/mountinfo`,
//!   `/proc/self/mounts` — all under the root; none readable is the scrape's error. `device` is
//!   the mount source (`/dev/root` resolved through `/sys/dev/block/<maj:min>`, `/dev/mapper/*`
//!   symlinks resolved under the root), `type` the filesystem type, `mode` `rw` / `ro` from the
//!   mount's options (else `unknown`), `mountpoint` unescaped (`\040` → space) and as the host
//!   sees it: a mountpoint under the root prefix (read from our own mount table) is reported
//!   with the prefix removed;
//! - the sizes: `statvfs(root + mountpoint)`: used = (`f_blocks` − `f_bfree`) × `f_frsize`,
//!   free = `f_bavail` × `f_frsize`, reserved = (`f_bfree` − `f_bavail`) × `f_frsize` (so the
//!   three add up to `f_blocks` × `f_frsize`); inodes used = `f_files` − `f_ffree`, free =
//!   `f_ffree`; utilization = used / (used + free) (gopsutil's `UsedPercent` / 100). A mount
//!   whose `statvfs` fails (gone, no permission, stale) is skipped, not an error.
//!
//! Which mounts (the Collector, through gopsutil's `Partitions(all = include_virtual_filesystems)`):
//! unless `include_virtual_filesystems: true`, a mount is skipped when its device is `none` or
//! its type is not a device-backed type of `/proc/filesystems` (a line without `nodev`, plus
//! `zfs`): so `proc`, `sysfs`, `tmpfs`, `devtmpfs`, `cgroup*`, `overlay`, `devpts`, `nfs`, … are
//! left out (`/proc/filesystems` unreadable is then the scrape's error). Then `include_devices` /
//! `exclude_devices` (`{devices, match_type}`), `include_fs_types` / `exclude_fs_types`
//! (`{fs_types, match_type}`) and `include_mount_points` / `exclude_mount_points`
//! (`{mount_points, match_type}`, host-side paths) must all pass. The same filesystem mounted
//! twice is reported twice (per mountpoint), as the Collector does.

use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint};
use serde::{Deserialize, Serialize};

use super::{attr, gauge, point, sum, Ctx, Filter, MatchType, Matcher, Num, Output, Switches};

/// `include_devices` / `exclude_devices`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceMatch {
    pub devices: Vec<String>,
    pub match_type: MatchType,
}

/// `include_fs_types` / `exclude_fs_types`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FsTypeMatch {
    pub fs_types: Vec<String>,
    pub match_type: MatchType,
}

/// `include_mount_points` / `exclude_mount_points`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MountPointMatch {
    pub mount_points: Vec<String>,
    pub match_type: MatchType,
}

/// `scrapers.filesystem` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
    /// Also report filesystems with no device behind them (`tmpfs`, `proc`, …). Default false.
    pub include_virtual_filesystems: bool,
    pub include_devices: DeviceMatch,
    pub exclude_devices: DeviceMatch,
    pub include_fs_types: FsTypeMatch,
    pub exclude_fs_types: FsTypeMatch,
    /// Host-side mount points (as in the host's mount table, without `root_path`).
    pub include_mount_points: MountPointMatch,
    pub exclude_mount_points: MountPointMatch,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric names, bad regexps.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = super::unknown_metrics("filesystem", &self.metrics, METRICS);
        let lists: [(&str, MatchType, &[String]); 6] = [
            (
                "include_devices.devices",
                self.include_devices.match_type,
                &self.include_devices.devices,
            ),
            (
                "exclude_devices.devices",
                self.exclude_devices.match_type,
                &self.exclude_devices.devices,
            ),
            (
                "include_fs_types.fs_types",
                self.include_fs_types.match_type,
                &self.include_fs_types.fs_types,
            ),
            (
                "exclude_fs_types.fs_types",
                self.exclude_fs_types.match_type,
                &self.exclude_fs_types.fs_types,
            ),
            (
                "include_mount_points.mount_points",
                self.include_mount_points.match_type,
                &self.include_mount_points.mount_points,
            ),
            (
                "exclude_mount_points.mount_points",
                self.exclude_mount_points.match_type,
                &self.exclude_mount_points.mount_points,
            ),
        ];
        for (key, mt, items) in lists {
            if let Err(e) = Matcher::new(mt, items) {
                out.push((key.to_string(), e));
            }
        }
        out
    }
}

/// Every metric with its Collector default.
pub const METRICS: &[(&str, bool)] = &[(USAGE, true), (INODES_USAGE, true), (UTILIZATION, false)];

const USAGE: &str = "system.filesystem.usage";
const INODES_USAGE: &str = "system.filesystem.inodes.usage";
const UTILIZATION: &str = "system.filesystem.utilization";

/// The filesystem scraper: compiled filters and switches.
pub struct Scraper {
    metrics: Switches,
    include_virtual: bool,
    devices: Filter,
    fs_types: Filter,
    mount_points: Filter,
}

/// One mount table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    device: String,
    /// As the mount table says (unescaped).
    mountpoint: String,
    fstype: String,
    /// `rw`, `ro` or `unknown`.
    mode: &'static str,
    /// `maj:min` (mountinfo only).
    dev_id: Option<String>,
}

fn mode_of(opts: &str) -> &'static str {
    let all: Vec<&str> = opts.split(',').collect();
    if all.contains(&"rw") {
        "rw"
    } else if all.contains(&"ro") {
        "ro"
    } else {
        "unknown"
    }
}

/// Undoes the mount table's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash); anything else is kept as is.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            if let Some(oct) = b.get(i + 1..i + 4) {
                if oct.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    let v = oct
                        .iter()
                        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if let Ok(byte) = u8::try_from(v) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `mountinfo` line: `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`.
fn parse_mountinfo_line(line: &str) -> Option<Mount> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let sep = f.iter().skip(6).position(|x| *x == "-")? + 6;
    let dev_id = f.get(2)?;
    let mountpoint = f.get(4)?;
    let opts = f.get(5)?;
    let fstype = f.get(sep + 1)?;
    let source = f.get(sep + 2)?;
    Some(Mount {
        device: (*source).to_string(),
        mountpoint: unescape(mountpoint),
        fstype: (*fstype).to_string(),
        mode: mode_of(opts),
        dev_id: Some((*dev_id).to_string()),
    })
}

/// A `mounts` (fstab-format) line: `source mountpoint fstype opts dump pass`.
fn parse_mounts_line(line: &str) -> Option<Mount> {
    let f: Vec<&str> = line.split_whitespace().collect();
    Some(Mount {
        device: (*f.first()?).to_string(),
        mountpoint: unescape(f.get(1)?),
        fstype: (*f.get(2)?).to_string(),
        mode: mode_of(f.get(3)?),
        dev_id: None,
    })
}

/// The mount table: the first readable of the candidates (see the module docs).
fn read_mounts(ctx: &Ctx) -> Result<Vec<Mount>, String> {
    let mut last_err = String::new();
    for pid in ["1", "self"] {
        match ctx.read(&format!("/proc/{pid}/mountinfo")) {
            Ok(t) => return Ok(t.lines().filter_map(parse_mountinfo_line).collect()),
            Err(e) => last_err = e,
        }
        if let Ok(t) = ctx.read(&format!("/proc/{pid}/mounts")) {
            return Ok(t.lines().filter_map(parse_mounts_line).collect());
        }
    }
    Err(last_err)
}

/// Device-backed filesystem types from `/proc/filesystems` (lines without `nodev`, plus zfs).
fn physical_types(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| match l.strip_prefix("nodev") {
            None => Some(l.trim().to_string()),
            Some(rest) if rest.trim() == "zfs" => Some("zfs".to_string()),
            Some(_) => None,
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// `root` joined with an absolute path (`/` → the root itself).
fn under(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// The host-side form of a path under `root` (`/hostfs/boot` → `/boot`); `None` when it is
/// not under the root (or the root is `/`).
fn strip_root(root: &Path, p: &Path) -> Option<String> {
    if root == Path::new("/") {
        return None;
    }
    let rest = p.strip_prefix(root).ok()?;
    Some(format!("/{}", rest.display()))
}

/// `/dev/root` and `/dev/mapper/*` to the real device (as gopsutil does).
fn resolve_device(ctx: &Ctx, m: &Mount) -> String {
    if m.device == "/dev/root" {
        if let Some(id) = &m.dev_id {
            if let Ok(target) = std::fs::read_link(ctx.path(&format!("/sys/dev/block/{id}"))) {
                if let Some(name) = target.file_name() {
                    return format!("/dev/{}", name.to_string_lossy());
                }
            }
        }
    } else if m.device.starts_with("/dev/mapper/") {
        if let Ok(real) = std::fs::canonicalize(ctx.path(&m.device)) {
            return match strip_root(ctx.root, &real) {
                Some(s) => s,
                None if ctx.root == Path::new("/") => real.to_string_lossy().into_owned(),
                None => m.device.clone(),
            };
        }
    }
    m.device.clone()
}

/// What `statvfs` says of one mount, in bytes and inodes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Usage {
    used: u64,
    free: u64,
    reserved: u64,
    inodes_used: u64,
    inodes_free: u64,
}

impl Usage {
    fn from_statvfs(s: &rustix::fs::StatVfs) -> Usage {
        let size = if s.f_frsize > 0 {
            s.f_frsize
        } else {
            s.f_bsize
        };
        Usage {
            used: s.f_blocks.saturating_sub(s.f_bfree).saturating_mul(size),
            free: s.f_bavail.saturating_mul(size),
            reserved: s.f_bfree.saturating_sub(s.f_bavail).saturating_mul(size),
            inodes_used: s.f_files.saturating_sub(s.f_ffree),
            inodes_free: s.f_ffree,
        }
    }

    fn utilization(&self) -> f64 {
        let total = self.used as f64 + self.free as f64;
        if total > 0.0 {
            self.used as f64 / total
        } else {
            0.0
        }
    }
}

fn int(v: u64) -> Num {
    Num::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

impl Scraper {
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        let m = |key: &str, mt: MatchType, items: &[String]| {
            Matcher::new(mt, items).map_err(|e| format!("{key}: {e}"))
        };
        Ok(Scraper {
            metrics: cfg.metrics.clone(),
            include_virtual: cfg.include_virtual_filesystems,
            devices: Filter {
                include: m(
                    "include_devices",
                    cfg.include_devices.match_type,
                    &cfg.include_devices.devices,
                )?,
                exclude: m(
                    "exclude_devices",
                    cfg.exclude_devices.match_type,
                    &cfg.exclude_devices.devices,
                )?,
            },
            fs_types: Filter {
                include: m(
                    "include_fs_types",
                    cfg.include_fs_types.match_type,
                    &cfg.include_fs_types.fs_types,
                )?,
                exclude: m(
                    "exclude_fs_types",
                    cfg.exclude_fs_types.match_type,
                    &cfg.exclude_fs_types.fs_types,
                )?,
            },
            mount_points: Filter {
                include: m(
                    "include_mount_points",
                    cfg.include_mount_points.match_type,
                    &cfg.include_mount_points.mount_points,
                )?,
                exclude: m(
                    "exclude_mount_points",
                    cfg.exclude_mount_points.match_type,
                    &cfg.exclude_mount_points.mount_points,
                )?,
            },
        })
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        let mounts = read_mounts(ctx)?;
        let physical = if self.include_virtual {
            None
        } else {
            Some(physical_types(&ctx.read("/proc/filesystems")?))
        };
        let on = |name: &str| {
            let default = METRICS.iter().any(|(n, d)| *n == name && *d);
            Ctx::enabled(&self.metrics, name, default)
        };
        let (want_usage, want_inodes, want_util) = (on(USAGE), on(INODES_USAGE), on(UTILIZATION));
        let mut usage: Vec<NumberDataPoint> = Vec::new();
        let mut inodes: Vec<NumberDataPoint> = Vec::new();
        let mut util: Vec<NumberDataPoint> = Vec::new();
        if !(want_usage || want_inodes || want_util) {
            return Ok(vec![(Vec::new(), Vec::new())]);
        }
        for m in &mounts {
            if let Some(types) = &physical {
                if m.device == "none" || !types.contains(&m.fstype) {
                    continue;
                }
            }
            let device = resolve_device(ctx, m);
            // a mountpoint read from our own table may already carry the root prefix
            let (stat_path, mountpoint) = match strip_root(ctx.root, Path::new(&m.mountpoint)) {
                Some(host) => (PathBuf::from(&m.mountpoint), host),
                None => (under(ctx.root, &m.mountpoint), m.mountpoint.clone()),
            };
            if !(self.devices.allows(&device)
                && self.fs_types.allows(&m.fstype)
                && self.mount_points.allows(&mountpoint))
            {
                continue;
            }
            let Ok(st) = rustix::fs::statvfs(&stat_path) else {
                continue;
            };
            let u = Usage::from_statvfs(&st);
            let base = || -> Vec<KeyValue> {
                vec![
                    attr("device", &device),
                    attr("mode", m.mode),
                    attr("mountpoint", &mountpoint),
                    attr("type", &m.fstype),
                ]
            };
            let with_state = |state: &str| {
                let mut a = base();
                a.push(attr("state", state));
                a
            };
            if want_usage {
                usage.push(point(with_state("used"), int(u.used)));
                usage.push(point(with_state("free"), int(u.free)));
                usage.push(point(with_state("reserved"), int(u.reserved)));
            }
            if want_inodes {
                inodes.push(point(with_state("used"), int(u.inodes_used)));
                inodes.push(point(with_state("free"), int(u.inodes_free)));
            }
            if want_util {
                util.push(point(base(), Num::Double(u.utilization())));
            }
        }
        let mut metrics: Vec<Metric> = Vec::new();
        if want_usage && !usage.is_empty() {
            metrics.push(sum(
                ctx,
                USAGE,
                "Filesystem bytes used.",
                "By",
                false,
                usage,
            ));
        }
        if want_inodes && !inodes.is_empty() {
            metrics.push(sum(
                ctx,
                INODES_USAGE,
                "FileSystem inodes used.",
                "{inodes}",
                false,
                inodes,
            ));
        }
        if want_util && !util.is_empty() {
            metrics.push(gauge(
                ctx,
                UTILIZATION,
                "Fraction of filesystem bytes used.",
                "1",
                util,
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

    const FILESYSTEMS: &str = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tcgroup2\n\text4\n\txfs\n\tvfat\nnodev\tzfs\nnodev\toverlay\n";

    /// A root with `proc/self/mountinfo` whose mountpoints are real directories under the
    /// root, so `statvfs` works (they all live on the tempdir's filesystem).
    fn fixture(mountinfo: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(dir.path().join("proc/self/mountinfo"), mountinfo).unwrap();
        std::fs::write(dir.path().join("proc/filesystems"), FILESYSTEMS).unwrap();
        for d in [
            "boot", "data dir", "run", "proc", "media/ro", "srv/zfs", "x",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        dir
    }

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
27 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
28 27 259:1 / /boot rw,relatime shared:30 - vfat /dev/nvme0n1p1 rw,fmask=0022
29 27 8:17 / /data\\040dir rw,noatime shared:31 - xfs /dev/sdb1 rw,attr2
30 27 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=1630040k,mode=755
31 27 8:33 / /media/ro ro,relatime shared:32 - ext4 /dev/sdc1 ro
32 27 0:40 / /srv/zfs rw,relatime shared:33 - zfs tank/srv rw,xattr
33 27 0:41 / /gone rw,relatime shared:34 - ext4 /dev/sdd1 rw
34 27 0:42 / /x rw - ext4 none rw
";

    fn ctx(root: &Path) -> Ctx<'_> {
        Ctx {
            root,
            now_ns: 2_000,
            boot_ns: 1_000,
        }
    }

    fn attrs(a: &[KeyValue]) -> String {
        a.iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    other => format!("{other:?}"),
                };
                format!("{}={v}", kv.key)
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn find<'a>(out: &'a Output, name: &str) -> Option<&'a Metric> {
        out[0].1.iter().find(|m| m.name == name)
    }

    fn sum_points(m: &Metric) -> Vec<(String, i64)> {
        let Some(metric::Data::Sum(s)) = &m.data else {
            panic!("not a sum")
        };
        assert!(!s.is_monotonic);
        s.data_points
            .iter()
            .map(|p| {
                assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (1_000, 2_000));
                let Some(number_data_point::Value::AsInt(v)) = p.value else {
                    panic!("not an int")
                };
                (attrs(&p.attributes), v)
            })
            .collect()
    }

    fn mountpoints(out: &Output) -> Vec<String> {
        let mut v: Vec<String> = sum_points(find(out, USAGE).unwrap())
            .into_iter()
            .filter_map(|(a, _)| {
                a.split(',')
                    .find_map(|kv| kv.strip_prefix("mountpoint=").map(String::from))
            })
            .collect();
        v.dedup();
        v
    }

    fn scrape(cfg: &Config, root: &Path) -> Output {
        Scraper::new(cfg).unwrap().scrape(&ctx(root)).unwrap()
    }

    #[test]
    fn usage_inodes_and_utilization() {
        let dir = fixture(MOUNTINFO);
        let st = rustix::fs::statvfs(dir.path()).unwrap();
        let u = Usage::from_statvfs(&st);
        let mut cfg = Config::default();
        cfg.metrics.insert(
            UTILIZATION.into(),
            MetricSwitch {
                enabled: Some(true),
            },
        );
        let out = scrape(&cfg, dir.path());
        assert_eq!(out.len(), 1);
        assert!(out[0].0.is_empty());
        // virtual (proc, tmpfs), device `none`, and the missing /gone are left out
        assert_eq!(
            mountpoints(&out),
            ["/", "/boot", "/data dir", "/media/ro", "/srv/zfs"]
        );
        let m = find(&out, USAGE).unwrap();
        assert_eq!(
            (m.unit.as_str(), m.description.as_str()),
            ("By", "Filesystem bytes used.")
        );
        let pts = sum_points(m);
        assert_eq!(pts.len(), 15);
        let v = |x: u64| i64::try_from(x).unwrap();
        // other tests write to the same filesystem meanwhile: used/free may move a little
        let near = |a: i64, b: u64| (a - v(b)).abs() <= v(b) / 100 + 1_000_000;
        assert_eq!(
            pts[0].0,
            "device=/dev/nvme0n1p2,mode=rw,mountpoint=/,type=ext4,state=used"
        );
        assert!(
            near(pts[0].1, u.used) && near(pts[1].1, u.free),
            "{pts:?} {u:?}"
        );
        assert_eq!(pts[2].1, v(u.reserved));
        let (used0, free0) = (pts[0].1 as f64, pts[1].1 as f64);
        assert_eq!(
            pts[1].0,
            "device=/dev/nvme0n1p2,mode=rw,mountpoint=/,type=ext4,state=free"
        );
        assert_eq!(
            pts[2].0,
            "device=/dev/nvme0n1p2,mode=rw,mountpoint=/,type=ext4,state=reserved"
        );
        assert_eq!(
            pts[1].1 + pts[2].1 + pts[0].1,
            v(st.f_blocks * st.f_frsize),
            "used + free + reserved = blocks × frsize"
        );
        assert_eq!(
            pts[9].0,
            "device=/dev/sdc1,mode=ro,mountpoint=/media/ro,type=ext4,state=used"
        );
        assert_eq!(
            pts[12].0,
            "device=tank/srv,mode=rw,mountpoint=/srv/zfs,type=zfs,state=used"
        );
        let m = find(&out, INODES_USAGE).unwrap();
        assert_eq!(
            (m.unit.as_str(), m.description.as_str()),
            ("{inodes}", "FileSystem inodes used.")
        );
        let pts = sum_points(m);
        assert_eq!(pts.len(), 10);
        assert_eq!(
            pts[2].0,
            "device=/dev/nvme0n1p1,mode=rw,mountpoint=/boot,type=vfat,state=used"
        );
        assert_eq!(
            pts[3].0,
            "device=/dev/nvme0n1p1,mode=rw,mountpoint=/boot,type=vfat,state=free"
        );
        assert!(near(pts[2].1, st.f_files - st.f_ffree) && near(pts[3].1, st.f_ffree));
        assert_eq!(pts[2].1 + pts[3].1, v(st.f_files));
        let m = find(&out, UTILIZATION).unwrap();
        assert_eq!(m.unit, "1");
        let Some(metric::Data::Gauge(g)) = &m.data else {
            panic!("not a gauge")
        };
        assert_eq!(g.data_points.len(), 5);
        assert_eq!(
            attrs(&g.data_points[3].attributes),
            "device=/dev/sdc1,mode=ro,mountpoint=/media/ro,type=ext4"
        );
        let Some(number_data_point::Value::AsDouble(d)) = g.data_points[0].value else {
            panic!()
        };
        assert!((d - used0 / (used0 + free0)).abs() < 1e-12);
        assert!((0.0..=1.0).contains(&d));
        // default: utilization off
        let out = scrape(&Config::default(), dir.path());
        assert!(find(&out, UTILIZATION).is_none());
        assert_eq!(out[0].1.len(), 2);
    }

    #[test]
    fn virtual_filesystems_and_filters() {
        let dir = fixture(MOUNTINFO);
        let cfg: Config = serde_norway::from_str("include_virtual_filesystems: true\n").unwrap();
        assert_eq!(
            mountpoints(&scrape(&cfg, dir.path())),
            [
                "/proc",
                "/",
                "/boot",
                "/data dir",
                "/run",
                "/media/ro",
                "/srv/zfs",
                "/x"
            ]
        );
        let cfg: Config = serde_norway::from_str(
            "include_virtual_filesystems: true\nexclude_fs_types: {fs_types: [proc, tmpfs], match_type: strict}\nexclude_mount_points: {mount_points: ['/media/.*', '/x'], match_type: regexp}\n",
        )
        .unwrap();
        assert!(cfg.validate().is_empty());
        assert_eq!(
            mountpoints(&scrape(&cfg, dir.path())),
            ["/", "/boot", "/data dir", "/srv/zfs"]
        );
        let cfg: Config = serde_norway::from_str(
            "include_devices: {devices: ['/dev/nvme.*'], match_type: regexp}\nexclude_devices: {devices: [/dev/nvme0n1p1]}\n",
        )
        .unwrap();
        assert_eq!(mountpoints(&scrape(&cfg, dir.path())), ["/"]);
        let cfg: Config =
            serde_norway::from_str("include_fs_types: {fs_types: [ext4, xfs]}\n").unwrap();
        assert_eq!(
            mountpoints(&scrape(&cfg, dir.path())),
            ["/", "/data dir", "/media/ro"]
        );
        let cfg: Config = serde_norway::from_str(
            "include_mount_points: {mount_points: [/boot, '/data dir'], match_type: strict}\n",
        )
        .unwrap();
        assert_eq!(
            mountpoints(&scrape(&cfg, dir.path())),
            ["/boot", "/data dir"]
        );
        // nothing passes: the metrics are left out, the scrape still succeeds
        let cfg: Config =
            serde_norway::from_str("include_fs_types: {fs_types: [btrfs]}\n").unwrap();
        let out = scrape(&cfg, dir.path());
        assert!(out[0].1.is_empty());
    }

    #[test]
    fn root_prefixed_mountpoints_are_reported_host_side() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::write(root.join("proc/filesystems"), FILESYSTEMS).unwrap();
        let r = root.display();
        std::fs::write(
            root.join("proc/self/mountinfo"),
            format!("1 0 8:1 / {r} rw - ext4 /dev/sda1 rw\n2 1 8:2 / {r}/boot ro - ext4 /dev/sda2 ro\n3 1 8:3 / /var rw - ext4 /dev/sda3 rw\n"),
        )
        .unwrap();
        // /var does not exist under the root: skipped
        assert_eq!(
            mountpoints(&scrape(&Config::default(), root)),
            ["/", "/boot"]
        );
    }

    #[test]
    fn device_resolution_and_mounts_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc/1")).unwrap();
        std::fs::create_dir_all(root.join("sys/dev/block")).unwrap();
        std::fs::create_dir_all(root.join("sys/devices/virtual/block/vda2")).unwrap();
        std::fs::create_dir_all(root.join("dev/mapper")).unwrap();
        std::fs::create_dir_all(root.join("srv")).unwrap();
        std::fs::write(root.join("dev/dm-0"), "").unwrap();
        std::os::unix::fs::symlink("../dm-0", root.join("dev/mapper/vg-srv")).unwrap();
        std::os::unix::fs::symlink(
            "../../devices/virtual/block/vda2",
            root.join("sys/dev/block/252:2"),
        )
        .unwrap();
        std::fs::write(root.join("proc/filesystems"), FILESYSTEMS).unwrap();
        std::fs::write(
            root.join("proc/1/mountinfo"),
            "1 0 252:2 / / rw - ext4 /dev/root rw\n2 1 253:0 / /srv rw - xfs /dev/mapper/vg-srv rw\n",
        )
        .unwrap();
        let pts = sum_points(find(&scrape(&Config::default(), root), USAGE).unwrap());
        assert_eq!(
            pts[0].0,
            "device=/dev/vda2,mode=rw,mountpoint=/,type=ext4,state=used"
        );
        assert_eq!(
            pts[3].0,
            "device=/dev/dm-0,mode=rw,mountpoint=/srv,type=xfs,state=used"
        );
        // /proc/1/mounts (old kernels' format) when there is no mountinfo
        std::fs::remove_file(root.join("proc/1/mountinfo")).unwrap();
        std::fs::write(
            root.join("proc/1/mounts"),
            "/dev/sda1 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n/dev/sdb1 /srv xfs ro 0 0\n",
        )
        .unwrap();
        let pts = sum_points(find(&scrape(&Config::default(), root), USAGE).unwrap());
        assert_eq!(pts.len(), 6);
        assert_eq!(
            pts[0].0,
            "device=/dev/sda1,mode=rw,mountpoint=/,type=ext4,state=used"
        );
        assert_eq!(
            pts[3].0,
            "device=/dev/sdb1,mode=ro,mountpoint=/srv,type=xfs,state=used"
        );
    }

    #[test]
    fn validate_and_switches() {
        let cfg: Config = serde_norway::from_str(
            "metrics: {system.filesystem.usage: {enabled: false}, system.filesystem.io: {enabled: true}}\ninclude_mount_points: {mount_points: ['[z-a]'], match_type: regexp}\nexclude_fs_types: {fs_types: ['('], match_type: regexp}\n",
        )
        .unwrap();
        let errs = cfg.validate();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].0, "metrics.system.filesystem.io");
        assert!(errs[0].1.contains("system.filesystem.inodes.usage"));
        assert_eq!(errs[1].0, "exclude_fs_types.fs_types");
        assert_eq!(errs[2].0, "include_mount_points.mount_points");
        assert!(Scraper::new(&cfg).is_err());
        assert!(serde_norway::from_str::<Config>("root_path: /hostfs\n").is_err());
        assert!(serde_norway::from_str::<Config>("include_devices: {fs_types: [x]}\n").is_err());

        let dir = fixture(MOUNTINFO);
        let cfg: Config =
            serde_norway::from_str("metrics: {system.filesystem.usage: {enabled: false}}\n")
                .unwrap();
        let out = scrape(&cfg, dir.path());
        let names: Vec<&str> = out[0].1.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, [INODES_USAGE]);
    }

    #[test]
    fn missing_and_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&ctx(dir.path()))
            .unwrap_err();
        assert!(err.contains("proc/self/mountinfo"), "{err}");
        // no /proc/filesystems: an error unless virtual filesystems are included
        let dir = fixture(MOUNTINFO);
        std::fs::remove_file(dir.path().join("proc/filesystems")).unwrap();
        let err = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&ctx(dir.path()))
            .unwrap_err();
        assert!(err.contains("proc/filesystems"), "{err}");
        let cfg: Config = serde_norway::from_str("include_virtual_filesystems: true\n").unwrap();
        assert!(!scrape(&cfg, dir.path())[0].1.is_empty());
        for text in [
            "",
            "\n \n",
            "1 2 3\n",
            "1 0 8:1 / / rw - \n",
            "1 0 8:1 / / rw - ext4\n",
            "- - - - - - - - -\n",
            "1 0 8:1 / /\\0 rw - ext4 /dev/x rw\n",
            "1 0 8:1 / /\\777\\1 rw - ext4 /dev/x rw\n",
            "1 0 8:1 / /é☃\\ rw - ext4 /dev/x rw\n",
            "1 0 8:1 / /../../.. rw - ext4 /dev/root rw\n",
            "\u{0}\u{1}\u{2}\u{3}\u{4}\u{5} - \u{6} \u{7}\n",
        ] {
            let dir = fixture(text);
            let out = scrape(&Config::default(), dir.path());
            assert_eq!(out.len(), 1);
        }
        assert_eq!(unescape("/a\\040b\\134c\\011"), "/a b\\c\t");
        assert_eq!(unescape("/a\\04"), "/a\\04");
        assert_eq!(unescape("\\777"), "\\777");
    }

    #[test]
    fn this_machine() {
        let root = Path::new("/");
        // default: no virtual filesystem is reported
        let out = scrape(&Config::default(), root);
        if let Some(m) = find(&out, USAGE) {
            for (a, _) in sum_points(m) {
                assert!(
                    !a.contains("type=proc,")
                        && !a.contains("type=sysfs,")
                        && !a.contains("type=tmpfs,"),
                    "{a}"
                );
            }
        }
        // the `/` mount (whatever its type): used + free + reserved = blocks × frsize
        let cfg: Config = serde_norway::from_str(
            "include_virtual_filesystems: true\ninclude_mount_points: {mount_points: [/]}\n",
        )
        .unwrap();
        let pts = sum_points(find(&scrape(&cfg, root), USAGE).unwrap());
        assert!(pts.len() >= 3, "{pts:?}");
        let st = rustix::fs::statvfs("/").unwrap();
        let total: i64 = pts[..3].iter().map(|(_, v)| v).sum();
        assert!(pts[0].0.contains("mountpoint=/,") && pts[0].0.ends_with("state=used"));
        let expected = (st.f_blocks * st.f_frsize) as i64;
        assert_eq!(total, expected);
        assert!(pts[0].1 > 0);
    }
}
