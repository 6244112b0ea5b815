//! The tail sampling stage: the task that runs a pipeline's `tail_sampling` processor and owns
//! the rest of the chain after it ([`crate::processors::tail_sampling`] holds the config, the
//! policies and the contract).
//!
//! The request path ([`TailSamplingHandle::consume`]) decodes the request, splits it by trace
//! id ([`split_by_trace`]) and prices each piece on the memory limiter's account, then hands the
//! pieces to the task through a bounded input queue ([`INPUT_QUEUE`] requests, full-policy
//! `block`). The task files each piece under its trace in one table of at most `num_traces`
//! traces ([`Table`]), decides traces `decision_wait` after their first span, and sends the
//! sampled ones down its chain, at most [`MAX_SEND_SPANS`] spans per request. Spans it could
//! not hand on are counted as `otelgw_dropped_items_total{component=<id>,reason=…}` and logged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use tokio::time::Instant;

use super::Chain;
use crate::admission::{Cost, MemoryGate, Reservation};
use crate::consumer::ConsumeError;
use crate::data::{Payload, RequestMeta, Signal, Telemetry};
use crate::processors::tail_sampling::policy::{Decision, Policies, Trace};
use crate::processors::tail_sampling::TailSamplingConfig;
use crate::telemetry::metrics::{names, Counter, Gauge, Histogram, Registry};

/// Requests waiting to enter one tail sampling stage.
pub const INPUT_QUEUE: usize = 64;

/// Spans per request the stage sends on: a decision round that samples more is sent as several
/// requests, cut between resources (a resource with more spans than this goes whole).
pub const MAX_SEND_SPANS: u64 = 8192;

/// Seconds between a decision and a late span of its trace (`…_sampling_late_span_age`).
const LATE_AGE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// A trace id (a span with a malformed one is filed under the all-zero id).
pub type TraceId = [u8; 16];

/// The spans of one request that belong to one trace.
pub struct Piece {
    pub id: TraceId,
    pub spans: Vec<ResourceSpans>,
    pub count: u64,
    /// Its share of the request's memory on the limiter's account.
    pub memory: Option<Reservation>,
}

/// Splits a request by trace id, in the order each trace first appears; each piece keeps its
/// spans inside copies of their resource and scope.
pub fn split_by_trace(req: ExportTraceServiceRequest) -> Vec<Piece> {
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    let mut out: Vec<Piece> = Vec::new();
    for rs in req.resource_spans {
        // the piece of each trace within this resource: (piece, its ResourceSpans)
        let mut in_resource: HashMap<usize, usize> = HashMap::new();
        for ss in rs.scope_spans {
            let mut in_scope: HashMap<usize, usize> = HashMap::new();
            for span in ss.spans {
                let id: TraceId = span.trace_id.as_slice().try_into().unwrap_or([0; 16]);
                let p = *index.entry(id).or_insert_with(|| {
                    out.push(Piece {
                        id,
                        spans: Vec::new(),
                        count: 0,
                        memory: None,
                    });
                    out.len() - 1
                });
                let piece = &mut out[p];
                let r = *in_resource.entry(p).or_insert_with(|| {
                    piece.spans.push(ResourceSpans {
                        resource: rs.resource.clone(),
                        scope_spans: Vec::new(),
                        schema_url: rs.schema_url.clone(),
                    });
                    piece.spans.len() - 1
                });
                let scopes = &mut piece.spans[r].scope_spans;
                let s = *in_scope.entry(p).or_insert_with(|| {
                    scopes.push(ScopeSpans {
                        scope: ss.scope.clone(),
                        spans: Vec::new(),
                        schema_url: ss.schema_url.clone(),
                    });
                    scopes.len() - 1
                });
                scopes[s].spans.push(span);
                piece.count += 1;
            }
        }
    }
    out
}

/// The handle a pipeline uses to hand requests to its tail sampling stage.
#[derive(Clone)]
pub struct TailSamplingHandle {
    tx: async_channel::Sender<Vec<Piece>>,
    gate: Option<Arc<MemoryGate>>,
}

struct Metrics {
    per_policy: Vec<[Counter; 2]>,
    global: [Counter; 2],
    too_early: Counter,
    late_age: Histogram,
    late_dropped: Counter,
    on_memory: Gauge,
    spans_held: Gauge,
    new_traces: Counter,
    dropped_refused: Counter,
    dropped_shutdown: Counter,
}

impl TailSamplingHandle {
    /// Starts the stage; `downstream` is the rest of the pipeline. The policies were built
    /// from the validated config.
    pub fn start(
        id: &str,
        pipeline: &str,
        cfg: &TailSamplingConfig,
        policies: Policies,
        downstream: Chain,
        gate: Option<Arc<MemoryGate>>,
        reg: &Registry,
    ) -> (TailSamplingHandle, tokio::task::JoinHandle<()>) {
        let labels = [("processor", id), ("pipeline", pipeline)];
        let sampled = |name: &str, policy: Option<&str>| {
            ["true", "false"].map(|s| match policy {
                Some(p) => reg.counter(
                    name,
                    "Traces each policy sampled (true) or not (false).",
                    &[("processor", id), ("policy", p), ("sampled", s)],
                ),
                None => reg.counter(
                    name,
                    "Traces sampled (true) or not (false) by the final decision.",
                    &[("processor", id), ("sampled", s)],
                ),
            })
        };
        let m = Metrics {
            per_policy: policies
                .names()
                .iter()
                .map(|p| sampled(names::PROCESSOR_TAIL_SAMPLING_COUNT_TRACES_SAMPLED, Some(p)))
                .collect(),
            global: sampled(names::PROCESSOR_TAIL_SAMPLING_GLOBAL_COUNT_TRACES_SAMPLED, None),
            too_early: reg.counter(
                names::PROCESSOR_TAIL_SAMPLING_TRACE_DROPPED_TOO_EARLY,
                "Traces decided before decision_wait because num_traces was reached (otelgw decides them early; the Collector drops them).",
                &labels,
            ),
            late_age: reg.histogram(
                names::PROCESSOR_TAIL_SAMPLING_LATE_SPAN_AGE,
                "Seconds between a trace's decision and a span of it arriving later.",
                LATE_AGE_BUCKETS,
                &labels,
            ),
            late_dropped: reg.counter(
                names::PROCESSOR_TAIL_SAMPLING_LATE_SPANS_DROPPED,
                "Late spans of traces decided not sampled, dropped as their trace.",
                &labels,
            ),
            on_memory: reg.gauge(
                names::PROCESSOR_TAIL_SAMPLING_TRACES_ON_MEMORY,
                "Traces in the table (waiting or decided).",
                &labels,
            ),
            spans_held: reg.gauge(
                names::PROCESSOR_TAIL_SAMPLING_SPANS_HELD,
                "Spans of traces waiting for their decision.",
                &labels,
            ),
            new_traces: reg.counter(
                names::PROCESSOR_TAIL_SAMPLING_NEW_TRACE_ID_RECEIVED,
                "Traces seen for the first time.",
                &labels,
            ),
            dropped_refused: crate::telemetry::metrics::dropped_items(
                reg,
                id,
                "refused_downstream",
                Signal::Traces,
            ),
            dropped_shutdown: crate::telemetry::metrics::dropped_items(
                reg,
                id,
                "shutdown",
                Signal::Traces,
            ),
        };
        let (tx, rx) = async_channel::bounded(INPUT_QUEUE);
        let table = Table::new(cfg);
        let task = tokio::spawn(run(
            cfg.decision_wait.get(),
            table,
            policies,
            rx,
            downstream,
            m,
        ));
        (TailSamplingHandle { tx, gate }, task)
    }

    /// Decodes the request, splits it by trace and hands the pieces to the stage (waits while
    /// its input queue is full). The pieces hold their share of the decoded request's memory on
    /// the limiter's account until their trace is decided and handed on.
    pub async fn consume(&self, data: Payload, meta: Arc<RequestMeta>) -> Result<(), ConsumeError> {
        let wire = match &data {
            Payload::Encoded(e) => e.bytes.len() as u64,
            Payload::Decoded(_) => meta.wire_size,
        };
        let Telemetry::Traces(req) = data.into_decoded() else {
            return Err(ConsumeError::Invalid {
                message: "tail_sampling takes traces only".into(),
            });
        };
        // the decoded request is held while it is split (the pieces copy resources and scopes)
        let _whole = self.gate.as_ref().map(|g| {
            let wire = match wire {
                0 => prost::Message::encoded_len(&req) as u64,
                n => n,
            };
            g.hold(Cost::Decoded(wire))
        });
        let mut pieces = split_by_trace(req);
        if let Some(g) = &self.gate {
            // each piece is priced by its own size: its copy of the resource and scope included
            for p in &mut pieces {
                let len: usize = p.spans.iter().map(prost::Message::encoded_len).sum();
                p.memory = Some(g.hold(Cost::Decoded(len as u64)));
            }
        }
        self.tx
            .send(pieces)
            .await
            .map_err(|_| ConsumeError::ShuttingDown)
    }

    /// Stops taking requests; the task decides what it holds, sends it on and ends.
    pub fn close(&self) {
        self.tx.close();
    }
}

/// A trace in the table.
enum State {
    Waiting {
        spans: Vec<ResourceSpans>,
        count: u64,
        memory: Vec<Reservation>,
    },
    Decided {
        sampled: bool,
        at: Instant,
    },
}

/// What happens to a piece when it is filed.
#[derive(Debug, PartialEq, Eq)]
enum Filed {
    /// Held until its trace is decided.
    Held,
    /// Its trace was sampled: send it on now (the decision's instant, if known, for the age).
    Follow(Option<Instant>),
    /// Its trace was not sampled: drop it.
    Drop(Option<Instant>),
}

/// At most `num_traces` traces (waiting or decided), oldest first out, plus the decision caches
/// of traces that left it. Bounded in every part: the table and `order` by `num_traces`,
/// `waiting` by the traces that entered the table, the caches by their sizes.
struct Table {
    traces: HashMap<TraceId, State>,
    /// Every trace in the table, oldest first (eviction order).
    order: VecDeque<TraceId>,
    /// Waiting traces with their decision deadline, oldest first (at most `num_traces`: the
    /// entries of traces pushed out go with them; one of a trace decided since is skipped).
    waiting: VecDeque<(Instant, TraceId)>,
    num_traces: usize,
    sampled: Cache,
    not_sampled: Cache,
    spans_held: u64,
}

/// Trace ids remembered after their trace left the table, first in first out.
struct Cache {
    ids: HashSet<TraceId>,
    order: VecDeque<TraceId>,
    size: usize,
}

impl Cache {
    fn new(size: usize) -> Cache {
        Cache {
            ids: HashSet::new(),
            order: VecDeque::new(),
            size,
        }
    }

    fn insert(&mut self, id: TraceId) {
        if self.size == 0 || !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > self.size {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    fn contains(&self, id: &TraceId) -> bool {
        self.ids.contains(id)
    }
}

impl Table {
    fn new(cfg: &TailSamplingConfig) -> Table {
        let num_traces = cfg.num_traces.max(1) as usize;
        let expected = (cfg.expected_new_traces_per_sec as u128
            * cfg.decision_wait.get().as_secs().max(1) as u128)
            .min(num_traces as u128) as usize;
        Table {
            traces: HashMap::with_capacity(expected),
            order: VecDeque::with_capacity(expected),
            waiting: VecDeque::with_capacity(expected),
            num_traces,
            sampled: Cache::new(cfg.decision_cache.sampled_cache_size),
            not_sampled: Cache::new(cfg.decision_cache.non_sampled_cache_size),
            spans_held: 0,
        }
    }

    /// Files a piece. A new trace that finds the table full first pushes the oldest out; if
    /// that one was waiting, it is returned to be decided early.
    fn file(&mut self, piece: Piece, deadline: Instant) -> (Filed, Option<Piece>, Option<Evicted>) {
        match self.traces.get_mut(&piece.id) {
            Some(State::Waiting {
                spans,
                count,
                memory,
            }) => {
                spans.extend(piece.spans);
                *count += piece.count;
                memory.extend(piece.memory);
                self.spans_held += piece.count;
                return (Filed::Held, None, None);
            }
            Some(State::Decided { sampled, at }) => {
                let filed = if *sampled {
                    Filed::Follow(Some(*at))
                } else {
                    Filed::Drop(Some(*at))
                };
                return (filed, Some(piece), None);
            }
            None => {}
        }
        if self.sampled.contains(&piece.id) {
            return (Filed::Follow(None), Some(piece), None);
        }
        if self.not_sampled.contains(&piece.id) {
            return (Filed::Drop(None), Some(piece), None);
        }
        let evicted = if self.traces.len() >= self.num_traces {
            self.evict()
        } else {
            None
        };
        self.spans_held += piece.count;
        self.traces.insert(
            piece.id,
            State::Waiting {
                spans: piece.spans,
                count: piece.count,
                memory: piece.memory.into_iter().collect(),
            },
        );
        self.order.push_back(piece.id);
        self.waiting.push_back((deadline, piece.id));
        (Filed::Held, None, evicted)
    }

    /// Pushes the oldest trace out of the table; a waiting one is handed back to be decided.
    fn evict(&mut self) -> Option<Evicted> {
        while let Some(id) = self.order.pop_front() {
            match self.traces.remove(&id) {
                Some(State::Decided { sampled, .. }) => {
                    if sampled {
                        self.sampled.insert(id);
                    } else {
                        self.not_sampled.insert(id);
                    }
                    return None;
                }
                Some(State::Waiting {
                    spans,
                    count,
                    memory,
                }) => {
                    // `waiting` is in arrival order too: every entry ahead of the oldest trace
                    // in the table is stale (decided early or pushed out), so it goes with it
                    // and `waiting` never holds more than `num_traces` entries
                    while let Some((_, w)) = self.waiting.pop_front() {
                        if w == id {
                            break;
                        }
                    }
                    self.spans_held = self.spans_held.saturating_sub(count);
                    return Some(Evicted {
                        id,
                        spans,
                        count,
                        memory,
                    });
                }
                None => {}
            }
        }
        None
    }

    /// Takes a waiting trace out for its decision (it stays in the table as decided).
    fn take_waiting(&mut self, id: &TraceId) -> Option<Evicted> {
        let state = self.traces.get_mut(id)?;
        if !matches!(state, State::Waiting { .. }) {
            return None;
        }
        let placeholder = State::Decided {
            sampled: false,
            at: Instant::now(),
        };
        match std::mem::replace(state, placeholder) {
            State::Waiting {
                spans,
                count,
                memory,
            } => {
                self.spans_held = self.spans_held.saturating_sub(count);
                Some(Evicted {
                    id: *id,
                    spans,
                    count,
                    memory,
                })
            }
            State::Decided { .. } => None,
        }
    }

    /// Records the decision of a trace taken out by [`Table::take_waiting`] (one pushed out of
    /// the table goes to the caches instead).
    fn record(&mut self, id: TraceId, sampled: bool, in_table: bool) {
        if in_table {
            if let Some(s) = self.traces.get_mut(&id) {
                *s = State::Decided {
                    sampled,
                    at: Instant::now(),
                };
            }
        } else if sampled {
            self.sampled.insert(id);
        } else {
            self.not_sampled.insert(id);
        }
    }

    /// Waiting traces whose deadline passed, oldest first.
    fn due(&mut self, now: Instant) -> Vec<TraceId> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.waiting.front() {
            if deadline > now {
                break;
            }
            self.waiting.pop_front();
            if matches!(self.traces.get(&id), Some(State::Waiting { .. })) {
                out.push(id);
            }
        }
        out
    }

    /// Every waiting trace (at shutdown).
    fn all_waiting(&mut self) -> Vec<TraceId> {
        self.waiting
            .drain(..)
            .map(|(_, id)| id)
            .filter(|id| matches!(self.traces.get(id), Some(State::Waiting { .. })))
            .collect()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.waiting.front().map(|(d, _)| *d)
    }
}

/// A waiting trace taken out of the table for its decision.
struct Evicted {
    id: TraceId,
    spans: Vec<ResourceSpans>,
    count: u64,
    memory: Vec<Reservation>,
}

/// Sampled spans waiting to be sent, with their memory.
#[derive(Default)]
struct Outbox {
    spans: Vec<ResourceSpans>,
    count: u64,
    memory: Vec<Reservation>,
}

impl Outbox {
    fn push(&mut self, spans: Vec<ResourceSpans>, count: u64, memory: Vec<Reservation>) {
        self.spans.extend(spans);
        self.count += count;
        self.memory.extend(memory);
    }

    /// Sends what it holds in requests of at most [`MAX_SEND_SPANS`] spans (cut between
    /// resources, so a trace may span two requests but is never lost).
    async fn flush(&mut self, down: &Chain, m: &Metrics) {
        let spans = std::mem::take(&mut self.spans);
        let memory = std::mem::take(&mut self.memory);
        self.count = 0;
        let mut batch = Vec::new();
        let mut n = 0;
        for rs in spans {
            let c: u64 = rs.scope_spans.iter().map(|s| s.spans.len() as u64).sum();
            if n + c > MAX_SEND_SPANS && !batch.is_empty() {
                send(down, std::mem::take(&mut batch), n, m).await;
                n = 0;
            }
            n += c;
            batch.push(rs);
        }
        if !batch.is_empty() {
            send(down, batch, n, m).await;
        }
        // the held spans' memory goes now that the next hop holds theirs
        drop(memory);
    }
}

async fn send(down: &Chain, spans: Vec<ResourceSpans>, count: u64, m: &Metrics) {
    let data = Payload::Decoded(Telemetry::Traces(ExportTraceServiceRequest {
        resource_spans: spans,
    }));
    let meta = Arc::new(RequestMeta {
        client_address: None,
        auth: None,
        wire_size: 0,
        headers: Vec::new(),
    });
    if let Err(e) = down.consume(data, meta).await {
        match e {
            ConsumeError::ShuttingDown => m.dropped_shutdown.add(count),
            _ => m.dropped_refused.add(count),
        }
        tracing::error!(error = %e, spans = count, "sampled traces could not be handed on; spans dropped");
    }
}

/// Decides one trace, counts the decision, and queues it to be sent when sampled.
fn decide(policies: &mut Policies, t: Evicted, out: &mut Outbox, m: &Metrics) -> bool {
    let trace = Trace {
        trace_id: t.id,
        spans: &t.spans,
        span_count: t.count,
    };
    let (sampled, decisions) = policies.decide(&trace, std::time::Instant::now());
    for (d, c) in decisions.iter().zip(&m.per_policy) {
        let yes = matches!(d, Decision::Sampled | Decision::InvertSampled);
        c[usize::from(!yes)].inc();
    }
    m.global[usize::from(!sampled)].inc();
    if sampled {
        out.push(t.spans, t.count, t.memory);
    }
    sampled
}

async fn run(
    decision_wait: StdDuration,
    mut table: Table,
    mut policies: Policies,
    rx: async_channel::Receiver<Vec<Piece>>,
    down: Chain,
    m: Metrics,
) {
    let mut out = Outbox::default();
    loop {
        let next = table.next_deadline();
        let pieces = tokio::select! {
            p = rx.recv() => p,
            _ = async {
                match next {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                for id in table.due(Instant::now()) {
                    if let Some(t) = table.take_waiting(&id) {
                        let sampled = decide(&mut policies, t, &mut out, &m);
                        table.record(id, sampled, true);
                    }
                }
                m.on_memory.set(table.traces.len() as i64);
                m.spans_held.set(table.spans_held as i64);
                out.flush(&down, &m).await;
                continue;
            }
        };
        let Ok(pieces) = pieces else {
            // closed and empty: decide every waiting trace now, send, stop
            let waiting = table.all_waiting();
            if !waiting.is_empty() {
                tracing::info!(
                    traces = waiting.len(),
                    "stopping: deciding waiting traces before their decision_wait"
                );
            }
            for id in waiting {
                if let Some(t) = table.take_waiting(&id) {
                    let sampled = decide(&mut policies, t, &mut out, &m);
                    table.record(id, sampled, true);
                }
            }
            m.spans_held.set(0);
            out.flush(&down, &m).await;
            return;
        };
        let deadline = Instant::now() + decision_wait;
        for piece in pieces {
            let is_new = !table.traces.contains_key(&piece.id);
            let (filed, back, evicted) = table.file(piece, deadline);
            if let Some(t) = evicted {
                m.too_early.inc();
                let id = t.id;
                let sampled = decide(&mut policies, t, &mut out, &m);
                table.record(id, sampled, false);
            }
            match (filed, back) {
                (Filed::Held, _) => {
                    if is_new {
                        m.new_traces.inc();
                    }
                }
                (Filed::Follow(at), Some(p)) => {
                    if let Some(at) = at {
                        m.late_age.observe(at.elapsed().as_secs());
                    }
                    out.push(p.spans, p.count, p.memory.into_iter().collect());
                }
                (Filed::Drop(at), Some(p)) => {
                    if let Some(at) = at {
                        m.late_age.observe(at.elapsed().as_secs());
                    }
                    m.late_dropped.add(p.count);
                }
                (_, None) => {}
            }
        }
        m.on_memory.set(table.traces.len() as i64);
        m.spans_held.set(table.spans_held as i64);
        if out.count > 0 {
            out.flush(&down, &m).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::Span;

    fn span(trace: u8, n: u8) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![n; 8],
            name: format!("s{trace}-{n}"),
            ..Default::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn piece(trace: u8, n: u8) -> Piece {
        split_by_trace(request(vec![span(trace, n)]))
            .pop()
            .expect("one piece")
    }

    #[test]
    fn split_keeps_every_span_under_its_trace_in_order() {
        let req = request(vec![
            span(1, 1),
            span(2, 1),
            span(1, 2),
            span(3, 1),
            span(2, 2),
        ]);
        let pieces = split_by_trace(req);
        let ids: Vec<u8> = pieces.iter().map(|p| p.id[0]).collect();
        assert_eq!(ids, [1, 2, 3]);
        let names = |p: &Piece| -> Vec<String> {
            p.spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| s.name.clone())
                .collect()
        };
        assert_eq!(names(&pieces[0]), ["s1-1", "s1-2"]);
        assert_eq!(names(&pieces[1]), ["s2-1", "s2-2"]);
        assert_eq!(pieces.iter().map(|p| p.count).sum::<u64>(), 5);
        // one resource and one scope per piece, not one per span
        assert_eq!(pieces[0].spans.len(), 1);
        assert_eq!(pieces[0].spans[0].scope_spans.len(), 1);
    }

    fn cfg(num_traces: u64, sampled_cache: usize) -> TailSamplingConfig {
        let mut c = TailSamplingConfig {
            num_traces,
            ..Default::default()
        };
        c.decision_cache.sampled_cache_size = sampled_cache;
        c
    }

    #[tokio::test]
    async fn the_table_is_bounded_and_pushes_out_the_oldest_waiting_trace() {
        let mut t = Table::new(&cfg(3, 0));
        let d = Instant::now();
        for i in 1..=3 {
            let (f, back, ev) = t.file(piece(i, 1), d);
            assert_eq!(f, Filed::Held);
            assert!(back.is_none() && ev.is_none());
        }
        // a span of a known trace joins it without pushing anything out
        assert!(t.file(piece(2, 2), d).2.is_none());
        let (_, _, ev) = t.file(piece(4, 1), d);
        let ev = ev.expect("the oldest waiting trace is handed back");
        assert_eq!((ev.id[0], ev.count), (1, 1));
        assert_eq!(t.traces.len(), 3);
        assert_eq!(t.spans_held, 4);
        // its stale deadline entry is skipped
        let due: Vec<u8> = t.due(d).iter().map(|id| id[0]).collect();
        assert_eq!(due, [2, 3, 4]);
    }

    #[tokio::test]
    async fn late_spans_follow_the_decision_while_the_trace_is_remembered() {
        let mut t = Table::new(&cfg(2, 1));
        let d = Instant::now();
        t.file(piece(1, 1), d);
        t.file(piece(2, 1), d);
        for id in t.due(d) {
            let w = t.take_waiting(&id).expect("waiting");
            t.record(w.id, w.id[0] == 1, true);
        }
        assert!(matches!(t.file(piece(1, 2), d).0, Filed::Follow(Some(_))));
        assert!(matches!(t.file(piece(2, 2), d).0, Filed::Drop(Some(_))));
        // two new traces push both decided ones out; the sampled cache (size 1) keeps trace 1
        t.file(piece(3, 1), d);
        t.file(piece(4, 1), d);
        assert!(matches!(t.file(piece(1, 3), d).0, Filed::Follow(None)));
        // trace 2 is forgotten (no non-sampled cache): a late span starts a new trace
        let (f, _, ev) = t.file(piece(2, 3), d);
        assert_eq!(f, Filed::Held);
        assert_eq!(ev.map(|e| e.id[0]), Some(3));
    }
}
