//! `network` scraper (`scrapers.network`): per-interface traffic, TCP connections by state and
//! the conntrack table.
//!
//! | metric | type | unit | attributes | default | source |
//! | --- | --- | --- | --- | --- | --- |
//! | `system.network.packets` | monotonic sum, int | `{packets}` | `device`, `direction` | on | `/proc/net/dev` packets |
//! | `system.network.dropped` | monotonic sum, int | `{packets}` | `device`, `direction` | on | `/proc/net/dev` drop |
//! | `system.network.errors` | monotonic sum, int | `{errors}` | `device`, `direction` | on | `/proc/net/dev` errs |
//! | `system.network.io` | monotonic sum, int | `By` | `device`, `direction` | on | `/proc/net/dev` bytes |
//! | `system.network.connections` | non-monotonic sum, int | `{connections}` | `protocol` = `tcp`, `state` | on | `/proc/net/tcp` + `/proc/net/tcp6` |
//! | `system.network.conntrack.count` | non-monotonic sum, int | `{entries}` | — | off | `/proc/sys/net/netfilter/nf_conntrack_count` |
//! | `system.network.conntrack.max` | non-monotonic sum, int | `{entries}` | — | off | `/proc/sys/net/netfilter/nf_conntrack_max` |
//!
//! `direction` is `transmit` or `receive` (a device's transmit point first, as the Collector
//! records them). Devices are filtered by `include`/`exclude` `{interfaces: [...], match_type:
//! strict|regexp}` (a regexp matches anywhere in the name, as the Collector's filterset: `eth`
//! matches `veth1`; anchor with `^…$`); `match_type` defaults to `strict` (the Collector
//! requires it); the filterset's `regexp:` cache options are accepted and have no effect.
//!
//! Connections are counted as gopsutil reports them to the Collector: every row of the two
//! tables, a row identical to an earlier one of the same table in local address, remote address
//! and state counted once (several `SO_REUSEPORT` listeners on one address are one), TCP state
//! codes named `ESTABLISHED`, `SYN_SENT`, `SYN_RECV`, `FIN_WAIT1`, `FIN_WAIT2`, `TIME_WAIT`,
//! `CLOSE`, `CLOSE_WAIT`, `LAST_ACK`, `LISTEN`, `CLOSING`. As in the Collector on Linux, the
//! points are its fixed state list `CLOSE_WAIT`, `CLOSE`, `CLOSING`, `DELETE`, `ESTABLISHED`,
//! `FIN_WAIT_1`, `FIN_WAIT_2`, `LAST_ACK`, `LISTEN`, `SYN_SENT`, `SYN_RECV`, `TIME_WAIT` (zeros
//! included), then `FIN_WAIT1`/`FIN_WAIT2` when such connections exist (the Collector's list
//! and gopsutil's names differ there; `FIN_WAIT_1`/`FIN_WAIT_2` stay 0). A row with an unknown
//! state code is not counted.
//!
//! `/proc/net/dev` is the main source (missing: Err; read only when one of its four metrics
//! is on); its malformed rows are skipped. `/proc/net/tcp`, `/proc/net/tcp6` (no IPv6) and the
//! conntrack files (no netfilter) are optional: a missing one is skipped, and with both tables
//! missing there is no connections metric.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{attr, point, sum, Ctx, Filter, MatchType, Matcher, Num, Output, Switches};

pub const PACKETS: &str = "system.network.packets";
pub const DROPPED: &str = "system.network.dropped";
pub const ERRORS: &str = "system.network.errors";
pub const IO: &str = "system.network.io";
pub const CONNECTIONS: &str = "system.network.connections";
pub const CONNTRACK_COUNT: &str = "system.network.conntrack.count";
pub const CONNTRACK_MAX: &str = "system.network.conntrack.max";

/// Every metric of this scraper with its default (enabled by default in the Collector or not).
pub const METRICS: &[(&str, bool)] = &[
    (PACKETS, true),
    (DROPPED, true),
    (ERRORS, true),
    (IO, true),
    (CONNECTIONS, true),
    (CONNTRACK_COUNT, false),
    (CONNTRACK_MAX, false),
];

/// The four `/proc/net/dev` metrics: (name, description, unit, receive column, transmit
/// column).
const COUNTERS: [(&str, &str, &str, usize, usize); 4] = [
    (
        PACKETS,
        "The number of packets transferred.",
        "{packets}",
        1,
        9,
    ),
    (
        DROPPED,
        "The number of packets dropped.",
        "{packets}",
        3,
        11,
    ),
    (
        ERRORS,
        "The number of errors encountered.",
        "{errors}",
        2,
        10,
    ),
    (
        IO,
        "The number of bytes transmitted and received.",
        "By",
        0,
        8,
    ),
];

/// The Collector's Linux state list, emitted even when 0.
const FIXED_STATES: [&str; 12] = [
    "CLOSE_WAIT",
    "CLOSE",
    "CLOSING",
    "DELETE",
    "ESTABLISHED",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "LAST_ACK",
    "LISTEN",
    "SYN_SENT",
    "SYN_RECV",
    "TIME_WAIT",
];

/// gopsutil's names of the kernel's TCP state codes (`include/net/tcp_states.h`).
fn tcp_state(code: u8) -> Option<&'static str> {
    Some(match code {
        0x01 => "ESTABLISHED",
        0x02 => "SYN_SENT",
        0x03 => "SYN_RECV",
        0x04 => "FIN_WAIT1",
        0x05 => "FIN_WAIT2",
        0x06 => "TIME_WAIT",
        0x07 => "CLOSE",
        0x08 => "CLOSE_WAIT",
        0x09 => "LAST_ACK",
        0x0A => "LISTEN",
        0x0B => "CLOSING",
        _ => return None,
    })
}

/// `include` / `exclude` of `scrapers.network`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterfaceMatch {
    pub interfaces: Vec<String>,
    pub match_type: MatchType,
    /// The Collector filterset's regexp cache options: accepted, no effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regexp: Option<RegexpOptions>,
}

/// `regexp:` of a Collector filterset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegexpOptions {
    pub cacheenabled: bool,
    pub cachemaxnumentries: usize,
}

/// `scrapers.network` (the Collector's keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub metrics: Switches,
    pub include: InterfaceMatch,
    pub exclude: InterfaceMatch,
}

impl Config {
    /// Every problem as (sub-path, message): unknown metric names under `metrics`, bad regexps
    /// under `include`/`exclude`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = super::unknown_metrics("network", &self.metrics, METRICS);
        for (key, m) in [("include", &self.include), ("exclude", &self.exclude)] {
            if m.match_type != MatchType::Regexp {
                continue;
            }
            for (i, pattern) in m.interfaces.iter().enumerate() {
                if let Err(e) = Matcher::new(MatchType::Regexp, std::slice::from_ref(pattern)) {
                    errors.push((format!("{key}.interfaces[{i}]"), e));
                }
            }
        }
        errors
    }
}

/// Kept between collections: the enabled metrics and the compiled device filter.
pub struct Scraper {
    on: Vec<bool>,
    filter: Filter,
}

impl Scraper {
    /// Compiles the `include`/`exclude` filters.
    pub fn new(cfg: &Config) -> Result<Scraper, String> {
        let filter = Filter {
            include: Matcher::new(cfg.include.match_type, &cfg.include.interfaces)
                .map_err(|e| format!("include: {e}"))?,
            exclude: Matcher::new(cfg.exclude.match_type, &cfg.exclude.interfaces)
                .map_err(|e| format!("exclude: {e}"))?,
        };
        let on = METRICS
            .iter()
            .map(|(name, default)| Ctx::enabled(&cfg.metrics, name, *default))
            .collect();
        Ok(Scraper { on, filter })
    }

    fn on(&self, name: &str) -> bool {
        METRICS
            .iter()
            .position(|(m, _)| *m == name)
            .and_then(|i| self.on.get(i).copied())
            .unwrap_or(false)
    }

    pub fn scrape(&mut self, ctx: &Ctx) -> Result<Output, String> {
        let mut metrics = Vec::new();
        if COUNTERS.iter().any(|c| self.on(c.0)) {
            let text = ctx.read("/proc/net/dev")?;
            let devices: Vec<Device<'_>> = parse_net_dev(&text)
                .filter(|d| self.filter.allows(d.name))
                .collect();
            if !devices.is_empty() {
                for (name, description, unit, rx, tx) in COUNTERS {
                    if !self.on(name) {
                        continue;
                    }
                    let mut points = Vec::with_capacity(devices.len() * 2);
                    for d in &devices {
                        for (direction, col) in [("transmit", tx), ("receive", rx)] {
                            points.push(point(
                                vec![attr("device", d.name), attr("direction", direction)],
                                int(d.counters.get(col).copied().unwrap_or(0)),
                            ));
                        }
                    }
                    metrics.push(sum(ctx, name, description, unit, true, points));
                }
            }
        }
        if self.on(CONNECTIONS) {
            let tables = [
                ctx.read("/proc/net/tcp").ok(),
                ctx.read("/proc/net/tcp6").ok(),
            ];
            if tables.iter().any(Option::is_some) {
                let mut counts: Vec<(&str, u64)> = FIXED_STATES.iter().map(|s| (*s, 0)).collect();
                for table in tables.iter().flatten() {
                    count_connections(table, &mut counts);
                }
                let points = counts
                    .into_iter()
                    .map(|(state, n)| {
                        point(vec![attr("protocol", "tcp"), attr("state", state)], int(n))
                    })
                    .collect();
                metrics.push(sum(
                    ctx,
                    CONNECTIONS,
                    "The number of connections.",
                    "{connections}",
                    false,
                    points,
                ));
            }
        }
        for (name, file, description) in [
            (
                CONNTRACK_COUNT,
                "/proc/sys/net/netfilter/nf_conntrack_count",
                "The count of entries in conntrack table.",
            ),
            (
                CONNTRACK_MAX,
                "/proc/sys/net/netfilter/nf_conntrack_max",
                "The limit for entries in the conntrack table.",
            ),
        ] {
            if !self.on(name) {
                continue;
            }
            let value = ctx
                .read(file)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok());
            if let Some(v) = value {
                metrics.push(sum(
                    ctx,
                    name,
                    description,
                    "{entries}",
                    false,
                    vec![point(Vec::new(), int(v))],
                ));
            }
        }
        Ok(vec![(Vec::new(), metrics)])
    }
}

fn int(v: u64) -> Num {
    Num::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

/// One `/proc/net/dev` row: the name and its first 12 counters (receive bytes packets errs
/// drop fifo frame compressed multicast, transmit bytes packets errs drop).
struct Device<'a> {
    name: &'a str,
    counters: [u64; 12],
}

/// The rows of `/proc/net/dev` (the two header lines and malformed rows skipped).
fn parse_net_dev(text: &str) -> impl Iterator<Item = Device<'_>> {
    text.lines().filter_map(|line| {
        let (name, rest) = line.rsplit_once(':')?;
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let mut counters = [0u64; 12];
        let mut fields = rest.split_ascii_whitespace();
        for slot in &mut counters {
            *slot = fields.next()?.parse().ok()?;
        }
        Some(Device { name, counters })
    })
}

/// Adds one `/proc/net/tcp{,6}` table's connections to `counts` (by gopsutil state name).
fn count_connections(table: &str, counts: &mut Vec<(&str, u64)>) {
    let mut seen: HashSet<(&str, &str, u8)> = HashSet::new();
    for line in table.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(_sl), Some(local), Some(remote), Some(st)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let Ok(code) = u8::from_str_radix(st, 16) else {
            continue; // the header ("st")
        };
        let Some(state) = tcp_state(code) else {
            continue;
        };
        if !seen.insert((local, remote, code)) {
            continue;
        }
        match counts.iter_mut().find(|(s, _)| *s == state) {
            Some((_, n)) => *n += 1,
            None => counts.push((state, 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::testkit::*;
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 687262760   61642    0    0    0     0          0         0 687262760   61642    0    0    0     0       0          0
  eth0: 342239296   10395    3    7    0     0          0         0   618550    6343    1    2    0     0       0          0
docker0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
";

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1077 1 00000000189e5bc0 100 0 0 10 0
   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1078 1 00000000189e5bc0 100 0 0 10 0
   2: 0100007F:0016 0100007F:A2B4 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:A2B4 0100007F:0016 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:A2B6 0100007F:0016 06 00000000:00000000 03:00000F9C 00000000     0        0 0 3 0000000000000000
   5: 0100007F:A2B8 0100007F:0016 04 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000
   6: 0100007F:A2BA 0100007F:0016 0C 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:C350 08 00000000:00000000 00:00000000 00000000     0        0 3002 1 0000000000000000 20 4 30 10 -1
";

    fn root() -> Root {
        let root = Root::new();
        root.write("proc/net/dev", NET_DEV)
            .write("proc/net/tcp", TCP)
            .write("proc/net/tcp6", TCP6)
            .write("proc/sys/net/netfilter/nf_conntrack_count", "42\n")
            .write("proc/sys/net/netfilter/nf_conntrack_max", "262144\n");
        root
    }

    #[test]
    fn interface_counters() {
        let root = root();
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert_eq!(names(&out), vec![PACKETS, DROPPED, ERRORS, IO, CONNECTIONS]);
        let get = |name, unit, dev, dir| {
            as_int(point_with(
                sum_points(find(&out, name), unit, true),
                &[("device", dev), ("direction", dir)],
            ))
        };
        assert_eq!(get(IO, "By", "eth0", "receive"), 342239296);
        assert_eq!(get(IO, "By", "eth0", "transmit"), 618550);
        assert_eq!(get(PACKETS, "{packets}", "eth0", "receive"), 10395);
        assert_eq!(get(PACKETS, "{packets}", "eth0", "transmit"), 6343);
        assert_eq!(get(ERRORS, "{errors}", "eth0", "receive"), 3);
        assert_eq!(get(ERRORS, "{errors}", "eth0", "transmit"), 1);
        assert_eq!(get(DROPPED, "{packets}", "eth0", "receive"), 7);
        assert_eq!(get(DROPPED, "{packets}", "eth0", "transmit"), 2);
        assert_eq!(get(IO, "By", "lo", "transmit"), 687262760);
        let io = sum_points(find(&out, IO), "By", true);
        assert_eq!(io.len(), 6);
        assert_eq!(attrs(&io[0]), [("device", "lo"), ("direction", "transmit")]);
        assert_eq!(
            attrs(&io[5]),
            [("device", "docker0"), ("direction", "receive")]
        );
    }

    #[test]
    fn connections_by_state_as_the_collector() {
        let root = root();
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        let pts = sum_points(find(&out, CONNECTIONS), "{connections}", false);
        let get = |s| as_int(point_with(pts, &[("protocol", "tcp"), ("state", s)]));
        assert_eq!(
            get("LISTEN"),
            2,
            "two reuseport listeners on :2024 are one, plus [::]:80"
        );
        assert_eq!(get("ESTABLISHED"), 2);
        assert_eq!(get("TIME_WAIT"), 1);
        assert_eq!(get("CLOSE_WAIT"), 1);
        assert_eq!(get("FIN_WAIT1"), 1);
        assert_eq!(get("FIN_WAIT_1"), 0);
        assert_eq!(get("DELETE"), 0);
        assert_eq!(get("SYN_RECV"), 0);
        assert_eq!(
            pts.len(),
            13,
            "the fixed 12 and FIN_WAIT1; the 0C row is not counted"
        );
        let states: Vec<&str> = pts.iter().map(|p| attrs(p)[1].1).collect();
        assert_eq!(&states[..12], FIXED_STATES);
    }

    #[test]
    fn include_exclude_filters() {
        let root = root();
        let cfg: Config = serde_norway::from_str(
            "include:\n  interfaces: [eth, \"^docker\"]\n  match_type: regexp\nexclude:\n  interfaces: [docker0]\n  match_type: strict\n",
        )
        .unwrap();
        assert!(cfg.validate().is_empty());
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        let io = sum_points(find(&out, IO), "By", true);
        assert_eq!(io.len(), 2);
        assert!(io.iter().all(|p| attrs(p)[0] == ("device", "eth0")));
        // anchored by the user: "^eth$" matches nothing; nothing left means no counter metrics
        let cfg: Config = serde_norway::from_str(
            "include:\n  interfaces: [\"^eth$\"]\n  match_type: regexp\n  regexp:\n    cacheenabled: true\n    cachemaxnumentries: 10\n",
        )
        .unwrap();
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert_eq!(names(&out), vec![CONNECTIONS]);
        // strict by default
        let cfg: Config = serde_norway::from_str("exclude:\n  interfaces: [lo]\n").unwrap();
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert_eq!(sum_points(find(&out, PACKETS), "{packets}", true).len(), 4);
    }

    #[test]
    fn conntrack_and_switches() {
        let root = root();
        let cfg = Config {
            metrics: switches(&[
                (CONNTRACK_COUNT, true),
                (CONNTRACK_MAX, true),
                (CONNECTIONS, false),
                (IO, false),
            ]),
            ..Config::default()
        };
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert_eq!(
            names(&out),
            vec![PACKETS, DROPPED, ERRORS, CONNTRACK_COUNT, CONNTRACK_MAX]
        );
        let count = sum_points(find(&out, CONNTRACK_COUNT), "{entries}", false);
        assert_eq!((count.len(), as_int(&count[0])), (1, 42));
        assert!(attrs(&count[0]).is_empty());
        assert_eq!(
            as_int(&sum_points(find(&out, CONNTRACK_MAX), "{entries}", false)[0]),
            262144
        );
        // no netfilter: skipped
        root.remove("proc/sys/net/netfilter/nf_conntrack_count");
        let out = Scraper::new(&cfg).unwrap().scrape(&root.ctx()).unwrap();
        assert!(!has(&out, CONNTRACK_COUNT) && has(&out, CONNTRACK_MAX));
        let defaults: Vec<&str> = METRICS.iter().filter(|m| m.1).map(|m| m.0).collect();
        assert_eq!(defaults, [PACKETS, DROPPED, ERRORS, IO, CONNECTIONS]);
    }

    #[test]
    fn validate_and_new() {
        let cfg: Config = serde_norway::from_str(
            "metrics:\n  system.network.bandwidth:\n    enabled: true\ninclude:\n  interfaces: [\"eth(\", ok]\n  match_type: regexp\nexclude:\n  interfaces: [\"[\"]\n  match_type: strict\n",
        )
        .unwrap();
        let errs = cfg.validate();
        let paths: Vec<&str> = errs.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            ["metrics.system.network.bandwidth", "include.interfaces[0]"]
        );
        assert!(errs[0].1.contains(CONNTRACK_MAX));
        assert!(errs[1].1.contains("eth("), "{}", errs[1].1);
        assert!(Scraper::new(&cfg).is_err());
        assert!(serde_norway::from_str::<Config>("include:\n  devices: [a]\n").is_err());
        assert!(serde_norway::from_str::<Config>("include:\n  match_type: glob\n").is_err());
        assert!(serde_norway::from_str::<Config>("interfaces: [a]\n").is_err());
    }

    #[test]
    fn missing_truncated_or_garbage() {
        let root = Root::new();
        let err = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap_err();
        assert!(err.contains("proc/net/dev"), "{err}");
        root.write(
            "proc/net/dev",
            "garbage\n  eth0: 1 2 3\n  : 1 2 3 4 5 6 7 8 9 10 11 12\n  bad: x 2 3 4 5 6 7 8 9 10 11 12\n  ok: 1 2 3 4 5 6 7 8 9 10 11 12\n\u{0}:\n",
        );
        root.write(
            "proc/net/tcp",
            "sl local rem st\n 0: a b\n 1: a b ZZ\n 2: a b 0A\n 3: a b 1FF\n\n",
        );
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        let io = sum_points(find(&out, IO), "By", true);
        assert_eq!(io.len(), 2);
        assert_eq!(
            as_int(point_with(
                io,
                &[("device", "ok"), ("direction", "transmit")]
            )),
            9
        );
        let pts = sum_points(find(&out, CONNECTIONS), "{connections}", false);
        assert_eq!(
            as_int(point_with(pts, &[("protocol", "tcp"), ("state", "LISTEN")])),
            1
        );
        assert_eq!(pts.len(), 12);
        // no tcp tables: no connections metric; empty dev: no counter metrics
        root.remove("proc/net/tcp");
        root.write("proc/net/dev", "");
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&root.ctx())
            .unwrap();
        assert!(names(&out).is_empty());
    }

    #[test]
    fn real_host() {
        let out = Scraper::new(&Config::default())
            .unwrap()
            .scrape(&host())
            .unwrap();
        let io = sum_points(find(&out, IO), "By", true);
        assert!(
            as_int(point_with(
                io,
                &[("device", "lo"), ("direction", "receive")]
            )) >= 0
        );
        let pts = sum_points(find(&out, CONNECTIONS), "{connections}", false);
        assert!(pts.len() >= 12);
        assert!(pts
            .iter()
            .all(|p| as_int(p) >= 0 && attrs(p)[0] == ("protocol", "tcp")));
    }
}
