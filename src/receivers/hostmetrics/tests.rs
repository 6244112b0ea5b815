use super::*;
use crate::component::typed;
use serde_norway::Value;

fn parse(yaml: &str) -> (Option<HostMetricsConfig>, Diagnostics) {
    let mut diag = Diagnostics::default();
    let v: Value = serde_norway::from_str(yaml).unwrap();
    let c = typed::<HostMetricsConfig>("receivers.hostmetrics", v, &mut diag);
    if let Some(c) = &c {
        c.validate("receivers.hostmetrics", &mut diag);
    }
    (c, diag)
}

#[test]
fn the_collectors_agent_config_validates() {
    let (c, diag) = parse(
        "collection_interval: 30s\nroot_path: /hostfs\nscrapers:\n  cpu:\n  memory:\n    metrics:\n      system.memory.utilization: {enabled: true}\n  load: {cpu_average: true}\n  disk:\n  filesystem:\n    exclude_mount_points: {mount_points: ['/dev/*', '/proc/*', '/sys/*'], match_type: regexp}\n    exclude_fs_types: {fs_types: [autofs, binfmt_misc, cgroup2, proc, sysfs, tmpfs], match_type: strict}\n  network:\n  paging:\n  processes:\n  process:\n    mute_process_name_error: true\n    mute_process_exe_error: true\n    mute_process_io_error: true\n  system:\n",
    );
    assert!(diag.errors.is_empty(), "{:?}", diag.errors);
    let c = c.unwrap();
    assert_eq!(
        c.collection_interval.get(),
        std::time::Duration::from_secs(30)
    );
    assert_eq!(c.root(), std::path::PathBuf::from("/hostfs"));
    let s = &c.scrapers;
    assert!(s.cpu.is_some() && s.memory.is_some() && s.process.is_some() && s.system.is_some());
    let (c, _) = parse("scrapers: {cpu: }\n");
    let c = c.unwrap();
    assert!(c.scrapers.cpu.is_some() && c.scrapers.memory.is_none());
    assert_eq!(c.root(), std::path::PathBuf::from("/"));
}

#[test]
fn problems_are_reported_at_their_paths() {
    let (_, diag) = parse("collection_interval: 0s\nroot_path: hostfs\nscrapers: {}\n");
    let e: Vec<String> = diag.errors.iter().map(|e| e.to_string()).collect();
    for p in [
        "receivers.hostmetrics.collection_interval",
        "receivers.hostmetrics.root_path",
        "receivers.hostmetrics.scrapers: at least one scraper",
    ] {
        assert!(e.iter().any(|x| x.starts_with(p)), "{p} missing in {e:#?}");
    }
    let (_, diag) =
        parse("scrapers:\n  cpu:\n    metrics:\n      system.cpu.nope: {enabled: true}\n");
    assert!(
        diag.errors.iter().any(|e| e
            .path
            .starts_with("receivers.hostmetrics.scrapers.cpu.metrics")),
        "{:?}",
        diag.errors
    );
    let (c, diag) = parse("scrapers:\n  gpu:\n");
    assert!(c.is_none());
    assert!(
        diag.errors.iter().any(|e| e.message.contains("gpu")),
        "{:?}",
        diag.errors
    );
}
