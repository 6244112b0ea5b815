use super::policy::Trace;
use super::*;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn parse(yaml: &str) -> TailSamplingConfig {
    serde_norway::from_str(yaml).expect("parses")
}

fn errors(cfg: &TailSamplingConfig) -> Vec<String> {
    let mut d = Diagnostics::default();
    cfg.validate("processors.tail_sampling", &mut d);
    d.errors.iter().map(|e| e.path.clone()).collect()
}

#[test]
fn defaults_are_the_collectors_and_policies_are_required() {
    let c = TailSamplingConfig::default();
    assert_eq!(c.decision_wait.get(), std::time::Duration::from_secs(30));
    assert_eq!(c.num_traces, 50_000);
    assert_eq!(errors(&c), ["processors.tail_sampling.policies"]);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let c = parse(
        "decision_wait: 0\nnum_traces: 0\npolicies:\n  - {name: a, type: ottl_condition, ottl_condition: {span: ['attributes[\"x\"] == ']}}\n",
    );
    let e = errors(&c);
    assert!(
        e.contains(&"processors.tail_sampling.decision_wait".to_string()),
        "{e:?}"
    );
    assert!(
        e.contains(&"processors.tail_sampling.num_traces".to_string()),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|p| p.starts_with("processors.tail_sampling.policies[0]")),
        "the bad OTTL condition is named: {e:?}"
    );
}

#[test]
fn the_collectors_readme_example_is_valid() {
    let c = parse(
        r#"
decision_wait: 10s
num_traces: 100
expected_new_traces_per_sec: 10
decision_cache:
  sampled_cache_size: 100000
policies:
  - {name: test-policy-1, type: always_sample}
  - {name: test-policy-2, type: latency, latency: {threshold_ms: 5000, upper_threshold_ms: 10000}}
  - {name: test-policy-3, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}}
  - {name: test-policy-4, type: probabilistic, probabilistic: {sampling_percentage: 10}}
  - {name: test-policy-5, type: status_code, status_code: {status_codes: [ERROR, UNSET]}}
  - {name: test-policy-6, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}}
  - {name: test-policy-7, type: string_attribute, string_attribute: {key: key2, values: [value1, val*], enabled_regex_matching: true, cache_max_size: 10}}
  - {name: test-policy-8, type: rate_limiting, rate_limiting: {spans_per_second: 35}}
  - {name: test-policy-9, type: string_attribute, string_attribute: {key: http.url, values: [\/health, \/metrics], enabled_regex_matching: true, invert_match: true}}
  - {name: test-policy-10, type: span_count, span_count: {min_spans: 2, max_spans: 20}}
  - {name: test-policy-11, type: trace_state, trace_state: {key: key3, values: [value1, value2]}}
  - {name: test-policy-12, type: boolean_attribute, boolean_attribute: {key: key4, value: true}}
  - name: test-policy-13
    type: ottl_condition
    ottl_condition:
      error_mode: ignore
      span:
        - attributes["test_attr_key_1"] == "test_attr_val_1"
        - attributes["test_attr_key_2"] != "test_attr_val_1"
      spanevent:
        - name != "test_span_event_name"
  - name: and-policy-1
    type: and
    and:
      and_sub_policy:
        - {name: test-and-policy-1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}}
        - {name: test-and-policy-2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}}
  - name: composite-policy-1
    type: composite
    composite:
      max_total_spans_per_second: 1000
      policy_order: [test-composite-policy-1, test-composite-policy-2, test-composite-policy-3]
      composite_sub_policy:
        - {name: test-composite-policy-1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}}
        - {name: test-composite-policy-2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}}
        - {name: test-composite-policy-3, type: always_sample}
      rate_allocation:
        - {policy: test-composite-policy-1, percent: 50}
        - {policy: test-composite-policy-2, percent: 25}
  - name: drop-policy-1
    type: drop
    drop:
      drop_sub_policy:
        - {name: test-drop-policy-1, type: string_attribute, string_attribute: {key: url.path, values: [\/health, \/metrics], enabled_regex_matching: true}}
"#,
    );
    assert_eq!(errors(&c), Vec::<String>::new());
    let p = c.policies().expect("builds");
    assert_eq!(p.names().len(), 16);
}

fn trace_with(span: Span) -> Vec<ResourceSpans> {
    vec![ResourceSpans {
        resource: None,
        scope_spans: vec![ScopeSpans {
            scope: None,
            spans: vec![span],
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }]
}

#[test]
fn ottl_conditions_match_spans_and_span_events_of_the_trace() {
    let cfg: policy::OttlConditionConfig = serde_norway::from_str(
        "span: ['name == \"checkout\"']\nspanevent: ['name == \"exception\"']\n",
    )
    .expect("parses");
    let m = ottl_matcher(&cfg).expect("compiles");
    let id = [1; 16];
    let plain = trace_with(Span {
        name: "browse".into(),
        ..Default::default()
    });
    let named = trace_with(Span {
        name: "checkout".into(),
        ..Default::default()
    });
    let with_event = trace_with(Span {
        name: "browse".into(),
        events: vec![Event {
            name: "exception".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    fn t(id: [u8; 16], spans: &[ResourceSpans]) -> Trace<'_> {
        Trace {
            trace_id: id,
            spans,
            span_count: 1,
        }
    }
    assert!(!m.matches(&t(id, &plain)));
    assert!(m.matches(&t(id, &named)));
    assert!(m.matches(&t(id, &with_event)));
    let bad: policy::OttlConditionConfig =
        serde_norway::from_str("span: ['name == ']\n").expect("parses");
    assert!(ottl_matcher(&bad).is_err());
}
