use super::send::requests;
use super::series::{PointSeries, Settings};
use super::*;
use crate::exporters::prometheus::store::{render_pairs, Applied, Kind, Series, Value};
use prost::Message as _;

fn point(family: &str, job: &str, v: f64) -> PointSeries {
    let labels = render_pairs([("job", job)]);
    let s = Series {
        value: Value::Number(v),
        updated: 0,
        start_ns: 0,
        time_ns: 1_000_000_000,
        exemplar: None,
    };
    Settings::default()
        .point(
            Applied::Series {
                family,
                kind: Kind::Gauge,
                help: "help",
                unit: "",
                labels: &labels,
                series: &s,
            },
            0,
        )
        .unwrap()
}

#[test]
fn requests_respect_the_size_cap_keep_order_and_carry_metadata_once() {
    let points: Vec<PointSeries> = (0..100)
        .map(|i| {
            point(
                if i % 2 == 0 { "a" } else { "b" },
                &format!("j{i:03}"),
                i as f64 + 0.5,
            )
        })
        .collect();
    let one = points[0].series[0].encoded_len() + 4;
    assert_eq!(requests(points.clone(), one * 10, false).len(), 10);
    let reqs = requests(points.clone(), one * 10, true);
    assert!(reqs.len() > 10, "metadata takes room too");
    let values: Vec<f64> = reqs
        .iter()
        .flat_map(|r| r.write.timeseries.iter().map(|t| t.samples[0].value))
        .collect();
    assert_eq!(values, (0..100).map(|i| i as f64 + 0.5).collect::<Vec<_>>());
    for r in &reqs {
        assert!(
            r.write.encoded_len() <= one * 10,
            "{}",
            r.write.encoded_len()
        );
        assert_eq!(r.points, r.write.timeseries.len() as u64);
        let mut fams: Vec<&str> = r
            .write
            .metadata
            .iter()
            .map(|m| m.metric_family_name.as_str())
            .collect();
        fams.sort();
        let mut held: Vec<&str> = r
            .write
            .timeseries
            .iter()
            .map(|t| t.labels[0].value.as_str())
            .collect();
        held.sort();
        held.dedup();
        assert_eq!(
            fams, held,
            "each family's metadata once, only for the families held"
        );
    }
    // without metadata, nothing but series; a cap smaller than one point still sends it
    let reqs = requests(points, 1, false);
    assert_eq!(reqs.len(), 100);
    assert!(reqs.iter().all(|r| r.write.metadata.is_empty()));
}

#[test]
fn config_defaults_queue_and_validation() {
    let mut diag = Diagnostics::default();
    let c: PrometheusRemoteWriteConfig = serde_norway::from_str(
        "endpoint: http://p:9090/api/v1/write\nremote_write_queue: {queue_size: 7, num_consumers: 3}\nexternal_labels: {cluster: c1}\n",
    )
    .unwrap();
    let c = c.resolved();
    c.validate("exporters.prometheusremotewrite", &mut diag);
    assert!(diag.errors.is_empty(), "{:?}", diag.errors);
    assert_eq!((c.queue.queue_size, c.queue.num_consumers), (7, 1));
    assert!(c.target_info.enabled && c.add_metric_suffixes && !c.send_metadata);

    let c: PrometheusRemoteWriteConfig = serde_norway::from_str(
        "endpoint: nope\ncompression: gzip\nexternal_labels: {__x: a, \"bad-name\": b}\nremote_write_queue: {num_consumers: 0}\nsending_queue: {num_consumers: 8, storage: file_storage}\n",
    )
    .unwrap();
    let c = c.resolved();
    assert_eq!(c.queue.num_consumers, 1);
    assert_eq!(c.queue.storage.as_deref(), Some("file_storage"));
    let mut diag = Diagnostics::default();
    c.validate("e", &mut diag);
    let paths: Vec<String> = diag.errors.iter().map(|e| e.path.clone()).collect();
    for p in [
        "e.endpoint",
        "e.compression",
        "e.external_labels.__x",
        "e.external_labels.bad-name",
        "e.remote_write_queue.num_consumers",
    ] {
        assert!(paths.iter().any(|x| x == p), "{p} missing in {paths:?}");
    }
    assert!(
        serde_norway::from_str::<PrometheusRemoteWriteConfig>("wal: {directory: /x}\n").is_err()
    );
}
