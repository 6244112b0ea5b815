//! Config loading and validation: every problem at once, each with its path.

use super::*;

fn load(yaml: &str) -> Result<Config, ConfigError> {
    load_sources(
        &[Source {
            name: "test.yaml".into(),
            text: yaml.into(),
        }],
        &|k| match k {
            "TEMPO" => Some("tempo:4317".into()),
            _ => None,
        },
    )
}

fn messages(e: &ConfigError) -> Vec<String> {
    e.errors.iter().map(|i| i.to_string()).collect()
}

const GOOD: &str = r#"
receivers:
  otlp:
    protocols:
      grpc:
      http:
        endpoint: 127.0.0.1:14318
  otlp/internal:
    protocols:
      grpc:
        endpoint: 127.0.0.1:14317
exporters:
  otlp/tempo:
    endpoint: ${env:TEMPO}
    tls: {insecure: true}
    headers: {X-Scope-OrgID: team-a, authorization: "Bearer s3cret"}
  debug:
    verbosity: normal
processors:
  noop:
extensions:
  health_check:
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [noop]
      exporters: [otlp/tempo, debug]
    metrics/internal:
      receivers: [otlp, otlp/internal]
      exporters: [debug]
    logs:
      receivers: [otlp]
      exporters: [debug]
"#;

#[test]
fn a_collector_shaped_config_loads() {
    let c = load(GOOD).unwrap();
    assert_eq!(c.pipelines.len(), 3);
    let id = ComponentId::parse("otlp/tempo").unwrap();
    match &c.exporters[&id] {
        ExporterConfig::OtlpGrpc(e) => {
            assert_eq!(e.endpoint, "tempo:4317");
            assert_eq!(e.timeout.get(), std::time::Duration::from_secs(5));
        }
        other => panic!("{other:?}"),
    }
    let ReceiverConfig::Otlp(r) = &c.receivers[&ComponentId::parse("otlp").unwrap()] else {
        panic!("otlp is an otlp receiver")
    };
    assert_eq!(
        r.protocols.grpc.as_ref().unwrap().endpoint,
        "127.0.0.1:4317"
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let bad = r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
        max_recv_msg_sise_mib: 4
  otlp/b:
    protocols:
      http:
        endpoint: 127.0.0.1:4317
  kafka: {}
processors:
  groupbytrace:
exporters:
  otlp/tempo:
    endpoint: tempo:4317
    timeout: 5
  otlp_http/loki:
    endpoint: loki:3100
    retry_on_failure:
      max_interval: 1s
      initial_interval: 5s
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp, otlp/missing]
      exporters: []
    logs:
      receivers: [otlp/b]
      exporters: [otlp_http/loki, debug, debug]
    profiles:
      receivers: [otlp]
      exporters: [debug]
unknown_top: 1
"#;
    let e = load(bad).unwrap_err();
    let m = messages(&e);
    let expect = [
        "receivers.otlp.protocols.grpc.max_recv_msg_sise_mib: unknown field `max_recv_msg_sise_mib`, expected one of",
        "receivers.kafka: unknown receiver type \"kafka\"",
        "processors.groupbytrace: unknown processor type \"groupbytrace\"",
        "exporters.otlp/tempo.timeout: invalid duration 5: give a unit",
        "exporters.otlp_http/loki.endpoint: invalid url \"loki:3100\"",
        "exporters.otlp_http/loki.retry_on_failure.max_interval: must not be less than initial_interval",
        "service.pipelines.traces.receivers[1]: receiver \"otlp/missing\" is not defined under receivers",
        "service.pipelines.traces.exporters: a pipeline needs at least one exporter",
        "service.pipelines.logs.exporters[2]: exporter \"debug\" is listed twice",
        "service.pipelines.profiles: unknown signal \"profiles\"",
        "unknown_top: unknown top-level key",
    ];
    for want in expect {
        assert!(
            m.iter().any(|got| got.starts_with(want)),
            "missing {want:?} in:\n{}",
            m.join("\n")
        );
    }
    assert_eq!(
        m.len(),
        expect.len(),
        "unexpected extra errors:\n{}",
        m.join("\n")
    );
    // the Display lists them all, one per line
    assert_eq!(
        e.to_string()
            .lines()
            .filter(|l| l.contains("error:"))
            .count(),
        expect.len()
    );
}

/// Found by the config fuzz target (tests/fuzz/corpus/config_load/seed-root-scalar,
/// seed-root-sequence, seed-empty-keys): these errors had an empty path.
#[test]
fn a_root_that_is_no_mapping_and_an_empty_top_level_key_have_paths() {
    for yaml in ["42\n", "- receivers\n"] {
        assert_eq!(
            messages(&load(yaml).unwrap_err()),
            ["test.yaml: the config must be a mapping with receivers, processors, exporters, extensions, service"]
        );
    }
    // merging replaces a non-mapping root: the last source decides, and is named
    let src = |name: &str, text: &str| Source {
        name: name.into(),
        text: text.into(),
    };
    let e = load_sources(&[src("a.yaml", "{}"), src("b.yaml", "[1]")], &|_| None).unwrap_err();
    assert_eq!(e.errors[0].path, "b.yaml");
    let later_mapping = load_sources(&[src("a.yaml", "[1]"), src("b.yaml", "{}")], &|_| None);
    let errors = later_mapping.err().map(|e| e.errors).unwrap_or_default();
    assert!(
        errors
            .iter()
            .all(|i| !i.message.contains("must be a mapping")),
        "{errors:?}"
    );
    let e = load("\"\": 1\n").unwrap_err();
    assert_eq!(e.errors[0].path, "\"\"");
}

#[test]
fn two_listeners_on_one_address_clash() {
    let yaml = GOOD.replace("127.0.0.1:14317", "0.0.0.0:14318");
    let e = load(&yaml).unwrap_err();
    assert_eq!(
        messages(&e),
        vec!["receivers.otlp/internal.protocols.grpc.endpoint: listens on 0.0.0.0:14318, which receivers.otlp.protocols.http.endpoint already uses (127.0.0.1:14318)".to_string()]
    );
    let yaml = GOOD.replace("127.0.0.1:14317", "127.0.0.1:8888");
    let e = load(&yaml).unwrap_err();
    assert!(
        messages(&e)[0].contains("service.telemetry.metrics.address"),
        "{:?}",
        messages(&e)
    );
}

#[test]
fn invalid_yaml_and_empty_config_fail_clearly() {
    let e = load("receivers: [").unwrap_err();
    assert!(
        messages(&e)[0].starts_with("test.yaml: invalid yaml"),
        "{:?}",
        messages(&e)
    );
    let e = load("").unwrap_err();
    assert_eq!(
        messages(&e),
        vec!["service.pipelines: at least one pipeline is required".to_string()]
    );
}

#[test]
fn later_sources_deep_merge_over_earlier_ones() {
    let base = Source {
        name: "base.yaml".into(),
        text: GOOD.into(),
    };
    let over = Source {
        name: "override.yaml".into(),
        text: "exporters:\n  otlp/tempo:\n    timeout: 9s\nservice:\n  telemetry:\n    logs:\n      level: debug\n".into(),
    };
    let c = load_sources(&[base, over], &|_| Some("tempo:4317".into())).unwrap();
    let ExporterConfig::OtlpGrpc(e) = &c.exporters[&ComponentId::parse("otlp/tempo").unwrap()]
    else {
        panic!()
    };
    assert_eq!(e.timeout.get(), std::time::Duration::from_secs(9));
    assert_eq!(
        e.endpoint, "tempo:4317",
        "merge keeps keys the override does not name"
    );
    assert_eq!(c.service.telemetry.logs.level, "debug");
}

#[test]
fn unset_env_vars_warn_and_unused_components_warn() {
    let yaml = GOOD.replace("${env:TEMPO}", "${env:NOT_SET}:4317").replace(
        "exporters:\n",
        "exporters:\n  otlphttp/loki:\n    endpoint: http://loki:3100/otlp/v1/logs\n",
    );
    let c = load(&yaml).unwrap();
    let w: Vec<String> = c.warnings.iter().map(|i| i.to_string()).collect();
    assert!(w.iter().any(|m| m.contains("NOT_SET is not set")), "{w:?}");
    assert!(
        w.iter()
            .any(|m| m.starts_with("exporters.otlphttp/loki.endpoint: ends in /v1/logs")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.starts_with("exporters.otlphttp/loki: exporter is defined but not used")),
        "{w:?}"
    );
}

#[test]
fn print_config_fills_defaults_and_redacts_secrets() {
    let c = load(GOOD).unwrap();
    let y = c.to_redacted_yaml();
    assert!(
        y.contains("authorization: '[REDACTED]'") || y.contains("authorization: \"[REDACTED]\""),
        "{y}"
    );
    assert!(!y.contains("s3cret"), "{y}");
    assert!(
        y.contains("X-Scope-OrgID: team-a"),
        "org ids are not secrets: {y}"
    );
    assert!(
        y.contains("max_elapsed_time: 300s"),
        "defaults are shown: {y}"
    );
    // the printed config loads again to the same thing
    let again = load(&y).unwrap();
    assert_eq!(again.pipelines.len(), c.pipelines.len());
}

#[test]
fn print_config_redacts_every_authenticator_secret() {
    let c = load(
        r#"
extensions:
  bearertokenauth/a: {token: tok-one-secret}
  bearertokenauth/b: {tokens: [tok-two-secret, tok-three-secret]}
  basicauth/c:
    htpasswd: {inline: "u:pw-in-htpasswd"}
    client_auth: {username: svc, password: client-pw-secret}
receivers:
  otlp:
    protocols:
      http:
        tls: {cert_pem: "-----BEGIN CERTIFICATE-----", key_pem: "private-key-secret"}
        auth: {authenticator: bearertokenauth/a}
exporters:
  otlp: {endpoint: "x:4317", auth: {authenticator: bearertokenauth/b}}
service:
  extensions: [bearertokenauth/a, bearertokenauth/b, basicauth/c]
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp]}
"#,
    )
    .unwrap();
    let y = c.to_redacted_yaml();
    for secret in [
        "tok-one-secret",
        "tok-two-secret",
        "tok-three-secret",
        "pw-in-htpasswd",
        "client-pw-secret",
        "private-key-secret",
    ] {
        assert!(!y.contains(secret), "{secret} printed:\n{y}");
    }
    assert!(y.contains("username: svc"), "{y}");
    assert!(y.contains("authenticator: bearertokenauth/b"), "{y}");
}

#[test]
fn the_embedded_quickstart_config_is_valid() {
    let c = load_sources(
        &[Source {
            name: "quickstart".into(),
            text: QUICKSTART_YAML.into(),
        }],
        &|_| None,
    )
    .unwrap();
    assert_eq!(c.pipelines.len(), 3);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn storage_references_are_checked_all_at_once() {
    let base = r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:14317
exporters:
  otlp/a:
    endpoint: a:4317
    sending_queue: {storage: file_storage/missing}
  otlp/b:
    endpoint: b:4317
    sending_queue: {storage: file_storage/unlisted}
  otlp/c:
    endpoint: c:4317
    sending_queue: {storage: health_check}
  otlp/d:
    endpoint: d:4317
    sending_queue: {enabled: false, storage: file_storage/ok}
  otlp/e:
    endpoint: e:4317
    sending_queue: {storage: file_storage/ok, sizer: bytes, queue_size: 1000000}
extensions:
  health_check:
  file_storage/ok: {directory: /tmp/q, fsync: batch, fsync_interval: 0s}
  file_storage/unlisted: {directory: /tmp/q}
service:
  extensions: [health_check, file_storage/ok]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/a, otlp/b, otlp/c, otlp/d, otlp/e]
"#;
    let e = load(base).unwrap_err();
    let mut got = messages(&e);
    got.sort();
    assert_eq!(
        got,
        vec![
            "exporters.otlp/a.sending_queue.storage: extension \"file_storage/missing\" is not defined under extensions".to_string(),
            "exporters.otlp/b.sending_queue.storage: extension \"file_storage/unlisted\" must also be listed in service.extensions".to_string(),
            "exporters.otlp/c.sending_queue.storage: extension \"health_check\" is not a file_storage extension".to_string(),
            "exporters.otlp/d.sending_queue.storage: a persistent queue needs sending_queue.enabled: true".to_string(),
            "extensions.file_storage/ok.fsync_interval: must be greater than 0 with fsync: batch".to_string(),
        ]
    );
    let good = base
        .replace("file_storage/missing", "file_storage/ok")
        .replace("file_storage/unlisted}", "file_storage/ok}")
        .replace("storage: health_check", "storage: file_storage/ok")
        .replace("enabled: false, ", "")
        .replace("fsync_interval: 0s", "fsync_interval: 50ms");
    let cfg = load(&good).unwrap();
    let q = cfg.exporters.values().next().unwrap().queue().unwrap();
    assert_eq!(q.storage.as_deref(), Some("file_storage/ok"));
}

/// Issue 14's validation bugs, one test each.
mod collector_configs {
    use super::*;

    const BASE: &str = r#"
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:14317}
exporters:
  debug: {}
"#;

    #[test]
    fn one_unknown_telemetry_key_is_reported_alone_and_the_rest_is_still_checked() {
        let e = load(&format!(
            "{BASE}service:\n  telemetry:\n    traces: {{level: basic}}\n    logs: {{level: debug}}\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [debug]}}\n"
        ))
        .unwrap_err();
        assert_eq!(
            messages(&e),
            vec!["service.telemetry.traces: not supported by otelgw (supported: logs, metrics, resource)"]
        );
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        // and a bad key in one pipeline keeps the others
        let e = load(&format!(
            "{BASE}service:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [debug], typo: 1}}\n    logs: {{receivers: [otlp], exporters: [nope]}}\n"
        ))
        .unwrap_err();
        let m = messages(&e);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(
            m[0].starts_with("service.pipelines.traces.typo")
                || m[0].starts_with("service.pipelines.traces: unknown field"),
            "{m:?}"
        );
        assert!(
            m[1].starts_with("service.pipelines.logs.exporters[0]"),
            "{m:?}"
        );
    }

    #[test]
    fn validate_never_resolves_listen_addresses_and_reports_a_bad_one_once() {
        let c = load(
            "receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: otel-collector.invalid:4317}\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug]}\n",
        );
        assert!(c.is_ok(), "{:?}", c.err().map(|e| messages(&e)));
        let e = load(
            "receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: \"collector:port\"}\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug]}\n",
        )
        .unwrap_err();
        assert_eq!(messages(&e).len(), 1, "{:?}", messages(&e));
        assert!(messages(&e)[0].starts_with("receivers.otlp.protocols.grpc.endpoint"));
    }

    #[test]
    fn component_names_may_contain_slashes() {
        let c = load(&format!(
            "{BASE}processors:\n  batch/otlp/copy_service: {{}}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], processors: [batch/otlp/copy_service], exporters: [debug]}}\n"
        ))
        .unwrap();
        let id = ComponentId::parse("batch/otlp/copy_service").unwrap();
        assert_eq!(id.kind, "batch");
        assert_eq!(id.name.as_deref(), Some("otlp/copy_service"));
        assert_eq!(id.to_string(), "batch/otlp/copy_service");
        assert!(c.processors.contains_key(&id));
        assert!(ComponentId::parse("batch/").is_err());
        assert!(ComponentId::parse("batch/a b").is_err());
    }

    #[test]
    fn a_broken_component_does_not_hide_a_listener_clash() {
        let e = load(
            "receivers:\n  otlp/a:\n    protocols:\n      grpc: {endpoint: 127.0.0.1:14317}\n  otlp/b:\n    protocols:\n      grpc: {endpoint: 127.0.0.1:14317}\n  otlp/typo:\n    protocols:\n      grpc: {endpont: 127.0.0.1:1}\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    traces: {receivers: [otlp/a, otlp/b, otlp/typo], exporters: [debug]}\n",
        )
        .unwrap_err();
        let m = messages(&e);
        assert!(m.iter().any(|x| x.contains("endpont")), "{m:?}");
        assert!(
            m.iter().any(|x| x.starts_with(
                "receivers.otlp/b.protocols.grpc.endpoint: listens on 127.0.0.1:14317"
            )),
            "{m:?}"
        );
    }

    #[test]
    fn an_extension_not_in_service_extensions_is_named_as_such() {
        let c = load(&format!(
            "{BASE}extensions:\n  health_check: {{}}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [debug]}}\n"
        ))
        .unwrap();
        assert!(
            c.warnings.iter().any(|w| w.to_string()
                == "extensions.health_check: extension is defined but not enabled in service.extensions; it will not start"),
            "{:?}",
            c.warnings
        );
    }
}

/// `service.telemetry` in the shapes the Collector documents today.
mod telemetry {
    use super::*;

    const PIPE: &str = r#"
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:14317}
exporters:
  debug: {}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
"#;

    #[test]
    fn a_pull_prometheus_reader_sets_the_metrics_address() {
        let c = load(&format!(
            "{PIPE}  telemetry:\n    metrics:\n      level: detailed\n      readers:\n        - pull:\n            exporter:\n              prometheus:\n                host: 0.0.0.0\n                port: 18899\n                without_units: true\n    resource:\n      service.name: gw\n"
        ))
        .unwrap();
        assert_eq!(c.service.telemetry.metrics.address, "0.0.0.0:18899");
        // the resource now applies (to pushed self-metrics): no warning
        assert!(!c
            .warnings
            .iter()
            .any(|w| w.path == "service.telemetry.resource"));
    }

    #[test]
    fn a_bad_periodic_reader_and_a_file_log_path_are_named_at_their_paths() {
        let e = load(&format!(
            "{PIPE}  telemetry:\n    logs:\n      output_paths: [/var/log/otel.log]\n      sampling: {{enabled: true}}\n    metrics:\n      readers:\n        - periodic:\n            exporter: {{otlp: {{protocol: http/json, endpoint: http://x:4317}}}}\n"
        ))
        .unwrap_err();
        let m = messages(&e);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(
            m.iter()
                .any(|x| x.starts_with("service.telemetry.logs.output_paths:")),
            "{m:?}"
        );
        assert!(
            m.iter().any(|x| x.starts_with(
                "service.telemetry.metrics.readers[0].periodic.exporter.otlp.protocol:"
            )),
            "{m:?}"
        );
        assert!(e
            .warnings
            .iter()
            .any(|w| w.path == "service.telemetry.logs.sampling"));
    }

    #[test]
    fn logs_to_stdout_with_zap_keys_validate() {
        let c = load(&format!(
            "{PIPE}  telemetry:\n    logs:\n      level: debug\n      encoding: json\n      output_paths: [stdout]\n      initial_fields: {{service: gw}}\n"
        ))
        .unwrap();
        assert!(c.service.telemetry.logs.to_stdout());
        assert!(c
            .warnings
            .iter()
            .any(|w| w.path == "service.telemetry.logs.initial_fields"));
    }
}

/// Keys the Collector's components have that otelgw accepts (honoured, or warned about).
#[test]
fn collector_exporter_keys_are_accepted_and_the_inert_ones_warned_about() {
    let c = load(
        r#"
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:14317}
exporters:
  debug:
    verbosity: detailed
    sampling_initial: 5
    sampling_thereafter: 200
  otlp/tempo:
    endpoint: tempo:4317
    balancer_name: round_robin
    keepalive: {time: 20s, timeout: 5s, permit_without_stream: true}
    compression_params: {level: 3}
    tls: {insecure_skip_verify: true}
    sending_queue: {batch: {flush_timeout: 200ms, min_size: 1000}}
  loki:
    endpoint: http://loki:3100/loki/api/v1/push
    default_labels_enabled: {exporter: false, job: true}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug, otlp/tempo]}
    logs: {receivers: [otlp], exporters: [loki]}
"#,
    )
    .unwrap();
    let warned: Vec<String> = c.warnings.iter().map(|w| w.path.clone()).collect();
    for p in [
        "exporters.debug.sampling_initial",
        "exporters.debug.sampling_thereafter",
        "exporters.otlp/tempo.balancer_name",
        "exporters.otlp/tempo.compression_params",
        "exporters.otlp/tempo.tls.insecure_skip_verify",
        "exporters.otlp/tempo.sending_queue.batch",
        "exporters.loki.default_labels_enabled",
    ] {
        assert!(
            warned.iter().any(|w| w == p),
            "no warning at {p}: {warned:?}"
        );
    }
    // keepalive is honoured, so it is not warned about
    assert!(
        !warned.iter().any(|w| w.contains("keepalive")),
        "{warned:?}"
    );
}

#[test]
fn listener_clashes_respect_address_families() {
    let cfg = |a: &str, b: &str| {
        format!(
            "receivers:\n  otlp/a:\n    protocols:\n      grpc: {{endpoint: \"{a}\"}}\n  otlp/b:\n    protocols:\n      grpc: {{endpoint: \"{b}\"}}\nexporters:\n  debug: {{}}\nservice:\n  pipelines:\n    traces: {{receivers: [otlp/a, otlp/b], exporters: [debug]}}\n"
        )
    };
    // an IPv4 wildcard and an IPv6 address share a port on Linux
    assert!(load(&cfg("0.0.0.0:14400", "[::1]:14400")).is_ok());
    // the IPv4 wildcard covers 127.0.0.1; the dual-stack wildcard covers both families
    assert!(load(&cfg("0.0.0.0:14400", "127.0.0.1:14400")).is_err());
    assert!(load(&cfg("[::]:14400", "127.0.0.1:14400")).is_err());
}

#[test]
fn probabilistic_sampler_runs_in_traces_and_logs_pipelines_only() {
    let yaml = r#"
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:14318
processors:
  probabilistic_sampler:
    sampling_percentage: 15.3
    hash_seed: 22
  probabilistic_sampler/logs:
    sampling_percentage: 15
    attribute_source: record
    from_attribute: logID
    sampling_priority: priority
exporters:
  debug:
service:
  pipelines:
    traces: {receivers: [otlp], processors: [probabilistic_sampler], exporters: [debug]}
    logs: {receivers: [otlp], processors: [probabilistic_sampler/logs], exporters: [debug]}
"#;
    let c = load(yaml).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let in_metrics = format!(
        "{yaml}    metrics: {{receivers: [otlp], processors: [probabilistic_sampler], exporters: [debug]}}\n"
    );
    let e = load(&in_metrics).unwrap_err();
    assert_eq!(
        messages(&e),
        ["service.pipelines.metrics.processors[0]: processor \"probabilistic_sampler\" does not \
          support metrics: probabilistic_sampler supports traces and logs"]
    );
}

#[test]
fn connectors_join_pipelines_and_are_checked_on_both_sides() {
    let head = r#"
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:14318
exporters:
  debug:
connectors:
  forward:
  forward/b:
service:
  pipelines:
"#;
    // two sources joined into one common pipeline
    let ok = format!(
        "{head}    traces/a: {{receivers: [otlp], exporters: [forward]}}\n    traces/b: {{receivers: [otlp], exporters: [forward]}}\n    traces: {{receivers: [forward], exporters: [debug]}}\n"
    );
    let c = load(&ok).unwrap();
    assert_eq!(
        c.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        ["connectors.forward/b: connector is defined but not used by any pipeline; it will not start"]
    );
    assert_eq!(c.pipelines.len(), 3);

    // every problem at once: one side only, a signal pair forward does not join, a cycle
    let bad = format!(
        "{head}    traces/a: {{receivers: [otlp], exporters: [forward/b]}}\n    metrics: {{receivers: [forward/b], exporters: [debug]}}\n    logs/x: {{receivers: [otlp], exporters: [forward]}}\n    logs/y: {{receivers: [forward], exporters: [forward]}}\n    traces/lonely: {{receivers: [otlp], exporters: [forward]}}\n"
    );
    let e = load(&bad).unwrap_err();
    let m = messages(&e);
    assert!(
        m.iter().any(|x| x.starts_with("connectors.forward/b: connector forward/b cannot connect traces/a (traces) to metrics (metrics)")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|x| x.contains("cannot connect traces/lonely (traces) to logs/y (logs)")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|x| x == "service.pipelines: connectors form a cycle: logs/y → logs/y"),
        "{m:?}"
    );

    let one_side = format!("{head}    traces: {{receivers: [otlp], exporters: [forward]}}\n");
    let m = messages(&load(&one_side).unwrap_err());
    assert_eq!(
        m,
        ["connectors.forward: connector forward is an exporter of traces but no pipeline lists it under receivers"]
    );
    let unknown = "connectors:\n  servicegraph:\n    store: {}\n";
    let m = messages(&load(unknown).unwrap_err());
    assert!(
        m.iter()
            .any(|x| x
                .starts_with("connectors.servicegraph: unknown connector type \"servicegraph\"")),
        "{m:?}"
    );
    // a route names a pipeline that does not receive from the routing connector
    let routes = "receivers:\n  otlp:\n    protocols: {grpc: {endpoint: 127.0.0.1:4317}}\nexporters:\n  debug:\nconnectors:\n  routing:\n    default_pipelines: [traces/all]\n    table:\n      - condition: attributes[\"tenant\"] == \"a\"\n        pipelines: [traces/a]\nservice:\n  pipelines:\n    traces/in: {receivers: [otlp], exporters: [routing]}\n    traces/all: {receivers: [routing], exporters: [debug]}\n    traces/a: {receivers: [otlp], exporters: [debug]}\n";
    let m = messages(&load(routes).unwrap_err());
    assert!(
        m.iter()
            .any(|x| x.contains("route pipeline \"traces/a\" does not list routing")),
        "{m:?}"
    );
    // spanmetrics takes traces to metrics, nothing else
    let wrong = "receivers:\n  otlp:\n    protocols: {grpc: {endpoint: 127.0.0.1:4317}}\nexporters:\n  debug:\nconnectors:\n  spanmetrics:\nservice:\n  pipelines:\n    logs: {receivers: [otlp], exporters: [spanmetrics]}\n    metrics: {receivers: [spanmetrics], exporters: [debug]}\n";
    let m = messages(&load(wrong).unwrap_err());
    assert!(m.iter().any(|x| x.contains("traces → metrics")), "{m:?}");
}
