//! Targets from service discovery, as Prometheus makes them: each address of a
//! `static_configs` or `file_sd_configs` group gets the group's labels plus `__address__`,
//! `__scheme__`, `__metrics_path__`, `__param_<name>`, `__scrape_interval__`,
//! `__scrape_timeout__` and `job`; `relabel_configs` run over that set (a dropped set is no
//! target); `instance` defaults to `__address__`; the URL is built from the `__` labels, which
//! are then removed (as are `__meta_*` and `__tmp*`).
//!
//! File SD files are JSON or YAML lists of `{targets: [...], labels: {...}}` groups; a file that
//! cannot be read or parsed keeps the targets it had (Prometheus does the same) and the error
//! is returned for the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::relabel::{process, Labels, Rule};
use super::translate::TargetMeta;
use super::{Global, ScrapeConfig};
use crate::cardinality::hash_str;

/// A group of addresses sharing labels (a `static_configs` entry or one group of a file).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Group {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// One target to scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub url: String,
    /// The target's labels after relabeling (`job`, `instance` and the rest), sorted, without
    /// `__` labels.
    pub labels: Labels,
    pub meta: TargetMeta,
    /// Identifies the target (URL and labels): spreads scrapes over the interval and tells
    /// targets apart across discovery refreshes.
    pub key: u64,
}

fn fmt_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Percent-encodes a query component.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The targets of one scrape config from its discovered groups.
pub fn targets(sc: &ScrapeConfig, g: &Global, rules: &[Rule], groups: &[Group]) -> Vec<Target> {
    let mut out = Vec::new();
    for group in groups {
        for address in &group.targets {
            let mut l: BTreeMap<String, String> = group.labels.clone();
            l.insert("__address__".into(), address.clone());
            l.insert("__scheme__".into(), sc.scheme.clone());
            l.insert("__metrics_path__".into(), sc.metrics_path.clone());
            l.insert("__scrape_interval__".into(), fmt_duration(sc.interval(g)));
            l.insert("__scrape_timeout__".into(), fmt_duration(sc.timeout(g)));
            l.insert("job".into(), sc.job_name.clone());
            for (k, v) in &sc.params {
                if let Some(first) = v.first() {
                    l.insert(format!("__param_{k}"), first.clone());
                }
            }
            let mut labels: Labels = l.into_iter().collect();
            if !process(rules, &mut labels) {
                continue;
            }
            if let Some(t) = finish(sc, labels) {
                out.push(t);
            }
        }
    }
    out
}

fn finish(sc: &ScrapeConfig, labels: Labels) -> Option<Target> {
    let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let scheme = get("__scheme__").unwrap_or("http").to_string();
    let address = get("__address__").filter(|a| !a.is_empty() && !a.contains('/'))?;
    let address = with_port(address, &scheme);
    let path = get("__metrics_path__").unwrap_or("/metrics").to_string();
    // query: every value of `params`, with `__param_<name>` replacing the first
    let mut query: Vec<(String, String)> = Vec::new();
    for (k, vs) in &sc.params {
        let first = get(&format!("__param_{k}")).map(str::to_string);
        for (i, v) in vs.iter().enumerate() {
            let v = if i == 0 {
                first.clone().unwrap_or(v.clone())
            } else {
                v.clone()
            };
            query.push((k.clone(), v));
        }
    }
    for (n, v) in &labels {
        if let Some(k) = n.strip_prefix("__param_") {
            if !sc.params.contains_key(k) {
                query.push((k.to_string(), v.clone()));
            }
        }
    }
    let mut url = format!("{scheme}://{address}{path}");
    if !query.is_empty() {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        url.push(if path.contains('?') { '&' } else { '?' });
        url.push_str(&q.join("&"));
    }
    let mut kept: Labels = labels
        .iter()
        .filter(|(n, _)| !n.starts_with("__"))
        .cloned()
        .collect();
    if !kept.iter().any(|(n, _)| n == "instance") {
        kept.push(("instance".into(), address.clone()));
        kept.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    let find = |k: &str| {
        kept.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let meta = TargetMeta {
        job: find("job"),
        instance: find("instance"),
        scheme,
        labels: kept
            .iter()
            .filter(|(n, _)| n != "job" && n != "instance")
            .cloned()
            .collect(),
    };
    let mut key_text = url.clone();
    for (n, v) in &kept {
        key_text.push('\u{1}');
        key_text.push_str(n);
        key_text.push('=');
        key_text.push_str(v);
    }
    Some(Target {
        key: hash_str(&key_text),
        url,
        labels: kept,
        meta,
    })
}

/// `host` without a port gets the scheme's (80 or 443), as Prometheus 2.42 does; IPv6 literals
/// are bracketed.
fn with_port(address: &str, scheme: &str) -> String {
    let has_port = match address.rsplit_once(':') {
        Some((host, port)) => {
            (host.starts_with('[') && host.ends_with(']') || !host.contains(':'))
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    };
    if has_port {
        return address.to_string();
    }
    let port = if scheme == "https" { 443 } else { 80 };
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// The files a `files` entry names: itself, or with `*` in the file name, the matching files of
/// its directory (sorted).
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let p = Path::new(pattern);
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.contains('*') {
        // a file that is gone names no targets (as Prometheus' glob finds nothing)
        return if p.exists() {
            vec![p.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|f| {
                    f.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| wildcard(name, n))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || !text.ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let Some(mut rest) = text.get(first.len()..text.len() - last.len()) else {
        return false;
    };
    for mid in parts.iter().skip(1).take(parts.len() - 2) {
        match rest.find(mid) {
            Some(i) => rest = rest.get(i + mid.len()..).unwrap_or(""),
            None => return false,
        }
    }
    true
}

/// Reads one file SD file.
pub fn read_file(path: &Path) -> Result<Vec<Group>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let groups: Vec<Group> = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::super::relabel::RelabelConfig;
    use super::*;

    fn sc(yaml: &str) -> ScrapeConfig {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn static_targets_get_job_instance_and_a_url_with_params() {
        let c = sc("job_name: node\nmetrics_path: /probe\nparams: {module: [http_2xx, extra]}\n");
        let g = Global::default();
        let groups = vec![Group {
            targets: vec!["10.0.0.1:9100".into()],
            labels: [("env".to_string(), "prod".to_string())].into(),
        }];
        let t = targets(&c, &g, &[], &groups);
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].url,
            "http://10.0.0.1:9100/probe?module=http_2xx&module=extra"
        );
        assert_eq!(
            t[0].labels,
            vec![
                ("env".to_string(), "prod".to_string()),
                ("instance".into(), "10.0.0.1:9100".into()),
                ("job".into(), "node".into())
            ]
        );
        assert_eq!(t[0].meta.job, "node");
        assert_eq!(t[0].meta.instance, "10.0.0.1:9100");
    }

    #[test]
    fn relabel_configs_drop_targets_rewrite_addresses_and_set_instance() {
        let c = sc("job_name: bb\n");
        let rules: Vec<Rule> = serde_norway::from_str::<Vec<RelabelConfig>>(
            "- {source_labels: [__address__], regex: 'skip.*', action: drop}\n- {source_labels: [__address__], target_label: __param_target}\n- {source_labels: [__param_target], target_label: instance}\n- {target_label: __address__, replacement: 'exporter:9115'}\n",
        )
        .unwrap()
        .iter()
        .map(|r| r.compile().unwrap())
        .collect();
        let groups = vec![Group {
            targets: vec!["https://example.org".into(), "skip.me:1".into()],
            labels: BTreeMap::new(),
        }];
        let t = targets(&c, &Global::default(), &rules, &groups);
        assert_eq!(t.len(), 1, "the drop rule removed one");
        assert_eq!(
            t[0].url,
            "http://exporter:9115/metrics?target=https%3A%2F%2Fexample.org"
        );
        assert_eq!(t[0].meta.instance, "https://example.org");
        assert!(t[0].labels.iter().all(|(n, _)| !n.starts_with("__")));
    }

    #[test]
    fn addresses_without_a_port_get_the_schemes() {
        assert_eq!(with_port("example.org", "http"), "example.org:80");
        assert_eq!(with_port("example.org", "https"), "example.org:443");
        assert_eq!(with_port("h:9100", "https"), "h:9100");
        assert_eq!(with_port("[::1]:9100", "http"), "[::1]:9100");
        assert_eq!(with_port("::1", "http"), "[::1]:80");
        let t = targets(
            &sc("job_name: j\n"),
            &Global::default(),
            &[],
            &[Group {
                targets: vec!["example.org".into(), "http://bad/x".into()],
                labels: BTreeMap::new(),
            }],
        );
        assert_eq!(t.len(), 1, "an address with a path is no target");
        assert_eq!(t[0].meta.instance, "example.org:80");
        assert_eq!(t[0].url, "http://example.org:80/metrics");
    }

    #[test]
    fn file_sd_reads_json_and_yaml_and_globs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"targets": ["h1:1", "h2:2"], "labels": {"team": "x"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: ['h3:3']\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "nope").unwrap();
        let a = read_file(&dir.path().join("a.json")).unwrap();
        assert_eq!(a[0].targets, vec!["h1:1", "h2:2"]);
        assert_eq!(a[0].labels["team"], "x");
        let b = read_file(&dir.path().join("b.yml")).unwrap();
        assert_eq!(b[0].targets, vec!["h3:3"]);
        let pat = format!("{}/*.json", dir.path().display());
        assert_eq!(expand(&pat), vec![dir.path().join("a.json")]);
        assert!(read_file(&dir.path().join("c.txt")).is_err());
        assert!(expand(&format!("{}/gone.json", dir.path().display())).is_empty());
        assert_eq!(expand(&format!("{}/b.yml", dir.path().display())).len(), 1);
        assert!(wildcard("*.y*ml", "x.yaml") && !wildcard("a*b", "ab_") && wildcard("a*", "a"));
    }
}
