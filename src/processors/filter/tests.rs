//! filter: items go when a condition holds, on the decoded request and on the encoding alike;
//! nothing to drop leaves the encoding untouched.

use super::*;
use crate::testdata;

fn config(yaml: &str) -> FilterConfig {
    let cfg: FilterConfig = serde_norway::from_str(yaml).unwrap();
    let mut d = Diagnostics::default();
    cfg.validate("processors.filter", &mut d);
    assert!(d.errors.is_empty(), "{yaml}: {:?}", d.errors);
    cfg
}

/// Two resources of four spans; the third span of each is a health check.
fn spans() -> Telemetry {
    let mut r = testdata::traces(5, 2, 4);
    for rs in &mut r.resource_spans {
        for (i, s) in rs
            .scope_spans
            .iter_mut()
            .flat_map(|ss| &mut ss.spans)
            .enumerate()
        {
            if i == 2 {
                for kv in &mut s.attributes {
                    if kv.key == "http.route" {
                        kv.value = testdata::kv("", testdata::s("/healthz")).value;
                    }
                }
            }
        }
    }
    Telemetry::Traces(r)
}

/// Runs the filter both ways; returns the result and what the filtered counter says.
fn run(signal: Signal, cfg: &FilterConfig, input: &Telemetry) -> (Telemetry, u64) {
    let reg = Registry::default();
    let p = cfg.build("filter/x", signal, &reg);
    let mut decoded = input.clone();
    p.process(
        &mut decoded,
        &RequestMeta::default(),
        &mut Rejections::default(),
    );
    let name = match signal {
        Signal::Traces => names::PROCESSOR_FILTER_SPANS_FILTERED,
        Signal::Logs => names::PROCESSOR_FILTER_LOGS_FILTERED,
        Signal::Metrics => names::PROCESSOR_FILTER_DATAPOINTS_FILTERED,
    };
    let counted = reg.sum(name, "filter", "filter/x");
    if p.reads() == Reads::Items {
        let bytes = input.encode_to_bytes();
        let out = crate::wire::edit_items(signal, &bytes, |item| {
            p.edit_item(item, &RequestMeta::default())
        })
        .unwrap();
        assert_eq!(
            Telemetry::decode_proto(signal, &out.bytes).unwrap(),
            decoded,
            "wire and decoded disagree"
        );
        assert_eq!(out.removed, counted);
        assert_eq!(
            reg.sum(name, "filter", "filter/x"),
            2 * counted,
            "the wire path counts too"
        );
    }
    (decoded, counted)
}

#[test]
fn health_checks_go_and_are_counted_not_rejected() {
    let cfg = config("traces:\n  span:\n    - 'attributes[\"http.route\"] == \"/healthz\"'");
    let input = spans();
    let (out, counted) = run(Signal::Traces, &cfg, &input);
    assert_eq!(counted, 2);
    assert_eq!(out.item_count(), input.item_count() - 2);
    let p = cfg.build("filter/x", Signal::Traces, &Registry::default());
    assert_eq!(p.reads(), Reads::Items);
    let mut rejected = Rejections::default();
    p.process(&mut input.clone(), &RequestMeta::default(), &mut rejected);
    assert_eq!(rejected.count, 0, "dropped on purpose, not refused");
}

#[test]
fn a_condition_that_never_holds_leaves_the_bytes_as_they_came() {
    let cfg = config("traces:\n  span:\n    - 'name == \"never\" or attributes[\"nope\"] != nil'");
    let p = cfg.build("filter/x", Signal::Traces, &Registry::default());
    for seed in 0..20 {
        let bytes = Telemetry::Traces(testdata::traces(
            seed,
            1 + seed as usize % 3,
            1 + seed as usize % 7,
        ))
        .encode_to_bytes();
        let out = crate::wire::edit_items(Signal::Traces, &bytes, |item| {
            p.edit_item(item, &RequestMeta::default())
        })
        .unwrap();
        assert_eq!(
            out.bytes.as_ptr(),
            bytes.as_ptr(),
            "same buffer, not decoded or copied"
        );
    }
}

#[test]
fn every_span_gone_takes_its_scope_and_resource() {
    let cfg = config("traces:\n  span: ['kind == SPAN_KIND_SERVER']");
    let (out, counted) = run(Signal::Traces, &cfg, &spans());
    assert_eq!(counted, 8);
    let Telemetry::Traces(r) = out else { panic!() };
    assert!(r.resource_spans.is_empty());
}

#[test]
fn logs_metrics_and_datapoints() {
    let logs = Telemetry::Logs(testdata::logs(1, 2, 8));
    let cfg = config("logs:\n  log_record: ['severity_number < SEVERITY_NUMBER_WARN', 'IsMatch(body, \"^nothing\")']");
    let (out, counted) = run(Signal::Logs, &cfg, &logs);
    assert_eq!(counted, 8, "DEBUG and INFO of 16 records");
    assert_eq!(out.item_count(), 8);

    let metrics = Telemetry::Metrics(testdata::metrics(1, 1, 4));
    let Telemetry::Metrics(r) = &metrics else {
        panic!()
    };
    let first = r.resource_metrics[0].scope_metrics[0].metrics[0]
        .name
        .clone();
    let cfg = config(&format!("metrics:\n  metric: ['name == \"{first}\"']\n  datapoint: ['attributes[\"tier\"] == \"gold\"']"));
    let (out, counted) = run(Signal::Metrics, &cfg, &metrics);
    assert!(counted > 0);
    assert_eq!(out.item_count(), metrics.item_count() - counted);
    let Telemetry::Metrics(r) = &out else {
        panic!()
    };
    for m in r
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
    {
        assert_ne!(m.name, first);
    }
}

#[test]
fn bad_conditions_are_config_errors() {
    let cfg: FilterConfig = serde_norway::from_str(
        "traces:\n  span: ['name ==', 'Nope(name)']\n  spanevent: ['span.nope == \"x\"']",
    )
    .unwrap();
    let mut d = Diagnostics::default();
    cfg.validate("processors.filter", &mut d);
    let errs: Vec<String> = d.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs
        .iter()
        .any(|e| e.contains("processors.filter.traces.span[0]")));
    assert!(errs
        .iter()
        .any(|e| e.contains("traces.span[1]") && e.contains("unknown function Nope")));
    assert!(
        errs.iter()
            .any(|e| e.contains("traces.spanevent[0]") && e.contains("spanevent context")),
        "{errs:?}"
    );
    assert!(
        serde_norway::from_str::<FilterConfig>("spans: {include: {match_type: strict}}").is_err(),
        "the legacy syntax is refused"
    );
}

#[test]
fn span_events_go_from_their_spans() {
    let input = Telemetry::Traces(testdata::traces(5, 1, 16)); // spans 0 and 8 have a "retry" event
    let cfg = config("traces:\n  spanevent: ['name == \"retry\" and resource.attributes[\"service.name\"] != nil']");
    let (out, _) = run(Signal::Traces, &cfg, &input);
    assert_eq!(out.item_count(), input.item_count(), "the spans stay");
    let Telemetry::Traces(r) = out else { panic!() };
    let events: usize = r.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| s.events.len())
        .sum();
    assert_eq!(events, 0);
}
