//! Log records: the Collector's logs tables (`logsprocessor_test.go`).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

use super::*;

fn logs_sampler(yaml: &str) -> (ProbabilisticSampler, Arc<Registry>) {
    build_with(&cfg(yaml), Signal::Logs)
}

/// TestLogsSampling's 100 records: trace ids 0…0 i×8 (i = 0 is empty), `rando` = the hash of
/// the trace id with seed 123, `foo` (bytes) and `bar` (hex string) on even records, `priority`
/// 100 on every fourth.
fn hundred_records() -> Vec<LogRecord> {
    (0..100u8)
        .map(|i| {
            let mut tid = [0u8; 16];
            tid[8..].fill(i);
            let mut attributes = vec![kv("rando", Value::IntValue(i64::from(fnv1a_32(123, &tid))))];
            if i % 2 == 0 {
                attributes.push(kv("foo", Value::BytesValue(tid.to_vec())));
                let s = if i == 0 {
                    String::new()
                } else {
                    tid.iter().map(|b| format!("{b:02x}")).collect()
                };
                attributes.push(kv("bar", Value::StringValue(s)));
            }
            if i % 4 == 0 {
                attributes.push(kv("priority", Value::DoubleValue(100.0)));
            }
            LogRecord {
                trace_id: tid.to_vec(),
                attributes,
                ..Default::default()
            }
        })
        .collect()
}

fn logs_request(records: Vec<LogRecord>) -> Telemetry {
    Telemetry::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

#[test]
fn logs_sampling_matches_the_collectors_table() {
    // TestLogsSampling; the Collector's test configs leave fail_closed false unless set
    let rows = [
        ("sampling_percentage: 100\nfail_closed: false", 100),
        ("sampling_percentage: 0", 0),
        ("sampling_percentage: 50\nmode: hash_seed", 45),
        ("sampling_percentage: 0\nattribute_source: record\nfrom_attribute: foo\nfail_closed: false", 0),
        ("sampling_percentage: 100\nattribute_source: record\nfrom_attribute: foo\nfail_closed: false", 100),
        ("sampling_percentage: 50\nattribute_source: record\nfrom_attribute: foo", 23),
        ("sampling_percentage: 50\nattribute_source: record\nfrom_attribute: bar", 29),
        ("sampling_percentage: 0\nsampling_priority: priority\nattribute_source: record\nfrom_attribute: rando\nfail_closed: false", 25),
        ("sampling_percentage: 50\nsampling_priority: priority\nattribute_source: record\nfrom_attribute: rando\nfail_closed: false", 64),
        ("sampling_percentage: 100\nsampling_priority: priority\nattribute_source: record\nfrom_attribute: rando\nfail_closed: false", 100),
        ("sampling_percentage: 0\nsampling_priority: priority\nfail_closed: false", 25),
        ("sampling_percentage: 50\nsampling_priority: priority\nfail_closed: false", 57),
        ("sampling_percentage: 100\nsampling_priority: priority\nfail_closed: false", 100),
        ("sampling_percentage: 0\nattribute_source: record\nfrom_attribute: foo\nsampling_priority: priority\nfail_closed: false", 25),
    ];
    for (yaml, want) in rows {
        let (p, _) = logs_sampler(yaml);
        let mut t = logs_request(hundred_records());
        p.process(&mut t, &RequestMeta::default(), &mut Rejections::default());
        assert_eq!(t.item_count(), want, "{yaml}");
    }
}

/// Config, trace id, attributes, and the attributes a kept record leaves with (`None`:
/// dropped).
type StateRow = (
    &'static str,
    &'static str,
    Vec<KeyValue>,
    Option<Vec<(&'static str, &'static str)>>,
);

#[test]
fn log_records_carry_sampling_state_in_attributes() {
    // TestLogsSamplingState (rv values: FNV-1a of seed ‖ input, laid out as the module says)
    let s = |v: &str| Value::StringValue(v.into());
    let rows: Vec<StateRow> = vec![
        ("sampling_percentage: 100\nmode: proportional", DEFAULT_TID,
            vec![kv("ignored", s("value"))],
            Some(vec![("ignored", "value"), ("sampling.threshold", "0")])),
        ("sampling_percentage: 100\nmode: hash_seed\nhash_seed: 22", DEFAULT_TID,
            vec![kv("K", s("V"))],
            Some(vec![("K", "V"), ("sampling.randomness", "d109bd35568bbd"), ("sampling.threshold", "0")])),
        ("sampling_percentage: 100\nattribute_source: record\nfrom_attribute: veryrandom\nhash_seed: 49", DEFAULT_TID,
            vec![kv("veryrandom", s("1234"))],
            Some(vec![("sampling.randomness", "16dd4dd3603a48"), ("sampling.threshold", "0"), ("veryrandom", "1234")])),
        ("sampling_percentage: 0", DEFAULT_TID, vec![], None),
        ("sampling_percentage: 0\nsampling_priority: veryrandom\nsampling_precision: 6", DEFAULT_TID,
            vec![kv("sampling.randomness", s("e6147c00000000")), kv("veryrandom", Value::DoubleValue(10.125))],
            Some(vec![("sampling.randomness", "e6147c00000000"), ("sampling.threshold", "e6147b"), ("veryrandom", "double:10.125")])),
        ("sampling_percentage: 50\nmode: proportional", "fefefefefefefefefef0000000000000",
            vec![kv("sampling.threshold", s("c"))],
            Some(vec![("sampling.threshold", "e")])),
        ("sampling_percentage: 50\nmode: equalizing", "fefefefefefefefefeb0000000000000",
            vec![kv("sampling.threshold", s("c"))], None),
        // priority 37 % may not raise an arriving 25 %: th stays c
        ("sampling_percentage: 50\nmode: equalizing\nsampling_priority: prio\nfail_closed: false", "fefefefefefefefefefefefefefefefe",
            vec![kv("sampling.threshold", s("c")), kv("prio", Value::IntValue(37))],
            Some(vec![("prio", "int:37"), ("sampling.threshold", "c")])),
        ("sampling_percentage: 100\nmode: hash_seed\nfail_closed: false", DEFAULT_TID,
            vec![kv("sampling.randomness", s("f2341234123412"))],
            Some(vec![("sampling.randomness", "f2341234123412")])),
    ];
    for (yaml, tid, attributes, want) in rows {
        let (p, _) = logs_sampler(yaml);
        let mut rec = LogRecord {
            trace_id: hex(tid),
            attributes,
            ..Default::default()
        };
        let kept = p.sample_log(&mut rec);
        let want = want.map(|w| {
            w.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        });
        assert_eq!(kept.then(|| attr_map(&rec.attributes)), want, "{yaml}");
    }
}

#[test]
fn log_records_without_randomness_follow_fail_closed() {
    // TestLogsMissingRandomness: empty trace id, empty attribute
    for mode in ["hash_seed", "proportional", "equalizing"] {
        for source in ["record", "traceID"] {
            for (pct, closed, want) in [
                (0, true, false),
                (50, true, false),
                (100, true, false),
                (0, false, false),
                (50, false, true),
                (100, false, true),
            ] {
                let (p, _) = logs_sampler(&format!(
                    "sampling_percentage: {pct}\nmode: {mode}\nfail_closed: {closed}\nattribute_source: {source}\nfrom_attribute: unused\nhash_seed: 4312"
                ));
                let mut rec = LogRecord {
                    trace_id: vec![0; 16],
                    attributes: vec![kv("unused", Value::StringValue(String::new()))],
                    ..Default::default()
                };
                assert_eq!(
                    p.sample_log(&mut rec),
                    want,
                    "{mode} {source} {pct}% {closed}"
                );
            }
        }
    }
}

#[test]
fn log_priority_is_a_percentage_zero_drops_and_hundred_keeps() {
    let (p, _) =
        logs_sampler("sampling_percentage: 50\nsampling_priority: prio\nmode: proportional");
    let rec = |v: Value| LogRecord {
        trace_id: hex(IMPROBABLE_TID),
        attributes: vec![kv("prio", v)],
        ..Default::default()
    };
    assert!(
        !p.sample_log(&mut rec(Value::IntValue(0))),
        "0 never samples"
    );
    assert!(
        p.sample_log(&mut rec(Value::DoubleValue(250.0))),
        "over 100 always samples"
    );
    let mut low = LogRecord {
        trace_id: hex("00000000000000000010000000000000"),
        attributes: vec![kv("prio", Value::IntValue(100))],
        ..Default::default()
    };
    assert!(
        p.sample_log(&mut low),
        "randomness under 50 % still kept at 100"
    );
    assert_eq!(
        attr_map(&low.attributes)[1],
        ("sampling.threshold".into(), "0".into())
    );
}

#[test]
fn a_fully_sampled_out_request_is_emptied() {
    let (p, _) = build_with(&cfg("sampling_percentage: 0"), Signal::Logs);
    let mut t = logs_request(hundred_records());
    p.process(&mut t, &RequestMeta::default(), &mut Rejections::default());
    assert!(t.is_empty());
    let Telemetry::Logs(r) = t else { panic!() };
    assert!(
        r.resource_logs.is_empty(),
        "empty resources and scopes are removed"
    );
}
