//! `zpages`: live HTML pages a person reads in a browser (the Collector's extension, default
//! endpoint `localhost:55679`):
//!
//! - `/debug/servicez`: build, start time, uptime, and a summary of the running config;
//! - `/debug/pipelinez`: every pipeline with its receivers, processors and exporters, and their
//!   live item counts (accepted/refused per receiver, sent/failed/enqueue-failed per exporter,
//!   queue fill), from the self-metrics registry;
//! - `/debug/extensionz`: the extensions and whether they run;
//! - `/debug/cardinalityz`: otelgw's cardinality trackers (`/debug/cardinality` on the admin
//!   listener as JSON) as tables.
//!
//! Pages refresh themselves every 5 seconds. Every value written into a page is HTML-escaped.
//! The Collector's `/debug/tracez` and `/debug/rpcz` (OpenCensus spans) have no counterpart:
//! they answer 404 with a pointer to these pages.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use crate::cardinality::report::Board;
use crate::component::{Diagnostics, Signal};
use crate::telemetry::metrics::{names, Registry};

/// `extensions.zpages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZpagesConfig {
    /// Listen address. Default `127.0.0.1:55679` (the Collector: `localhost:55679`).
    pub endpoint: String,
    /// The Collector's `/debug/expvarz` switch: accepted, no effect (no Go expvars here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expvar: Option<serde_norway::Value>,
}

impl Default for ZpagesConfig {
    fn default() -> Self {
        ZpagesConfig {
            endpoint: "127.0.0.1:55679".into(),
            expvar: None,
        }
    }
}

impl ZpagesConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if let Err(e) = crate::net::check_endpoint(&self.endpoint) {
            diag.error(format!("{path}.endpoint"), e);
        }
        diag.warn_inert(path, &[("expvar", self.expvar.is_some())]);
    }
}

/// One pipeline as the pages show it.
#[derive(Debug, Clone)]
pub struct PipelineView {
    pub id: String,
    pub signal: Signal,
    pub receivers: Vec<String>,
    pub processors: Vec<String>,
    pub exporters: Vec<String>,
}

/// What the pages read: the running config's shape and the live registries.
pub struct Pages {
    pub registry: Arc<Registry>,
    pub board: Arc<Board>,
    pub started: SystemTime,
    pub pipelines: Vec<PipelineView>,
    /// Extension ids and whether they were started.
    pub extensions: Vec<(String, bool)>,
    /// `(kind, count)` of configured components.
    pub components: Vec<(&'static str, usize)>,
}

fn esc(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn page(title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    out.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\"><title>");
    esc(&mut out, title);
    out.push_str("</title><style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}nav a{margin-right:1em}</style></head><body><nav><a href=\"/debug/servicez\">servicez</a><a href=\"/debug/pipelinez\">pipelinez</a><a href=\"/debug/extensionz\">extensionz</a><a href=\"/debug/cardinalityz\">cardinalityz</a></nav><h1>");
    esc(&mut out, title);
    out.push_str("</h1>");
    out.push_str(body);
    out.push_str("</body></html>");
    out
}

fn secs_since(t: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Pages {
    /// Sums a counter over every series whose labels include `(key, value)`.
    fn count(&self, name: &str, key: &'static str, value: &str) -> u64 {
        self.registry.sum(name, key, value)
    }

    fn servicez(&self) -> String {
        let mut b = String::new();
        let started = self
            .started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let up = secs_since(self.started);
        let _ = write!(
            b,
            "<table><tr><th>build</th><td>otelgw {}</td></tr><tr><th>started (unix)</th><td class=\"n\" id=\"started\">{started}</td></tr><tr><th>uptime</th><td class=\"n\" id=\"uptime\">{}h {}m {}s</td></tr></table>",
            env!("CARGO_PKG_VERSION"),
            up / 3600,
            up / 60 % 60,
            up % 60
        );
        b.push_str("<h2>config</h2><table><tr><th>kind</th><th>configured</th></tr>");
        for (kind, n) in &self.components {
            let _ = write!(b, "<tr><td>{kind}</td><td class=\"n\">{n}</td></tr>");
        }
        let _ = write!(
            b,
            "<tr><td>pipelines</td><td class=\"n\">{}</td></tr></table>",
            self.pipelines.len()
        );
        page("otelgw service", &b)
    }

    fn pipelinez(&self) -> String {
        let mut b = String::new();
        for p in &self.pipelines {
            let noun = p.signal.item_noun();
            b.push_str("<h2>pipeline ");
            esc(&mut b, &p.id);
            b.push_str("</h2><table class=\"pipeline\"><tr><th>role</th><th>component</th><th>counts</th></tr>");
            for r in &p.receivers {
                let accepted = self.count(&names::receiver_accepted(p.signal), "receiver", r);
                let refused = self.count(&names::receiver_refused(p.signal), "receiver", r);
                b.push_str("<tr><td>receiver</td><td>");
                esc(&mut b, r);
                let _ = write!(
                    b,
                    "</td><td class=\"n\">accepted {noun}: <span class=\"accepted\">{accepted}</span>, refused: {refused}</td></tr>"
                );
            }
            for pr in &p.processors {
                b.push_str("<tr><td>processor</td><td>");
                esc(&mut b, pr);
                b.push_str("</td><td></td></tr>");
            }
            for e in &p.exporters {
                let sent = self.count(&names::exporter_sent(p.signal), "exporter", e);
                let failed = self.count(&names::exporter_send_failed(p.signal), "exporter", e);
                let refused = self.count(&names::exporter_enqueue_failed(p.signal), "exporter", e);
                let queued = self.count(names::EXPORTER_QUEUE_SIZE, "exporter", e);
                b.push_str("<tr><td>exporter</td><td>");
                esc(&mut b, e);
                let _ = write!(
                    b,
                    "</td><td class=\"n\">sent {noun}: <span class=\"sent\">{sent}</span>, failed: {failed}, enqueue failed: {refused}, queued: {queued}</td></tr>"
                );
            }
            b.push_str("</table>");
        }
        if self.pipelines.is_empty() {
            b.push_str("<p>no pipelines</p>");
        }
        page("otelgw pipelines", &b)
    }

    fn extensionz(&self) -> String {
        let mut b = String::from("<table><tr><th>extension</th><th>state</th></tr>");
        for (id, on) in &self.extensions {
            b.push_str("<tr><td>");
            esc(&mut b, id);
            let _ = write!(
                b,
                "</td><td>{}</td></tr>",
                if *on {
                    "running"
                } else {
                    "defined, not in service.extensions"
                }
            );
        }
        b.push_str("</table>");
        page("otelgw extensions", &b)
    }

    fn cardinalityz(&self) -> String {
        let report = self.board.render(20);
        let mut b = String::new();
        let components = report["data"]["components"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if components.is_empty() {
            b.push_str("<p>no cardinality tracker is running (cardinality_limit, prometheus max_series)</p>");
        }
        for c in components {
            b.push_str("<h2>");
            esc(&mut b, c["component"].as_str().unwrap_or("?"));
            let _ = write!(
                b,
                "</h2><p>series: <span class=\"series\">{}</span> of {}</p><table><tr><th>metric</th><th>series</th></tr>",
                c["headStats"]["numSeries"].as_u64().unwrap_or(0),
                c["headStats"]["maxSeries"].as_u64().unwrap_or(0)
            );
            for m in c["seriesCountByMetricName"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                b.push_str("<tr><td>");
                esc(&mut b, m["name"].as_str().unwrap_or(""));
                let _ = write!(
                    b,
                    "</td><td class=\"n\">{}</td></tr>",
                    m["value"].as_u64().unwrap_or(0)
                );
            }
            b.push_str("</table>");
        }
        page("otelgw cardinality", &b)
    }

    /// The answer for one path.
    pub fn route(&self, path: &str) -> Response<Full<Bytes>> {
        let html = match path {
            "/" | "/debug" | "/debug/" | "/debug/servicez" => self.servicez(),
            "/debug/pipelinez" => self.pipelinez(),
            "/debug/extensionz" => self.extensionz(),
            "/debug/cardinalityz" => self.cardinalityz(),
            _ => {
                let mut r = Response::new(Full::new(Bytes::from_static(
                    b"not found; see /debug/servicez, /debug/pipelinez, /debug/extensionz, /debug/cardinalityz\n",
                )));
                *r.status_mut() = StatusCode::NOT_FOUND;
                return r;
            }
        };
        let mut r = Response::new(Full::new(Bytes::from(html)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    }
}

/// Serves the pages on `listener` until `stop` fires.
pub fn serve(
    edge: crate::net::Edge,
    listener: tokio::net::TcpListener,
    pages: Arc<Pages>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    crate::net::serve(edge, listener, stop, move |_| {
        let pages = pages.clone();
        hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let r = pages.route(req.uri().path());
            async move { Ok::<_, Infallible>(r) }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages() -> Pages {
        let registry = Registry::new();
        registry
            .counter(
                &names::receiver_accepted(Signal::Traces),
                "h",
                &[("receiver", "otlp"), ("transport", "grpc")],
            )
            .add(5);
        registry
            .counter(
                &names::receiver_accepted(Signal::Traces),
                "h",
                &[("receiver", "otlp"), ("transport", "http")],
            )
            .add(2);
        Pages {
            registry,
            board: Arc::new(Board::default()),
            started: SystemTime::now(),
            pipelines: vec![PipelineView {
                id: "traces/<script>".into(),
                signal: Signal::Traces,
                receivers: vec!["otlp".into()],
                processors: vec!["batch".into()],
                exporters: vec!["otlp/tempo".into()],
            }],
            extensions: vec![("zpages".into(), true), ("health_check".into(), false)],
            components: vec![("receivers", 1)],
        }
    }

    #[test]
    fn pipelinez_sums_transports_and_escapes_names() {
        let r = pages().route("/debug/pipelinez");
        assert_eq!(r.status(), 200);
        let body =
            futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(r.into_body()))
                .unwrap()
                .unwrap()
                .to_bytes();
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains("<span class=\"accepted\">7</span>"), "{html}");
        assert!(html.contains("traces/&lt;script&gt;") && !html.contains("<script>"));
        assert_eq!(pages().route("/debug/tracez").status(), 404);
    }
}
