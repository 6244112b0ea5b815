//! The batch stage: the task that runs a pipeline's `batch` processor and owns the rest of the
//! chain after it ([`crate::processors::batch`] holds the config and the contract).
//!
//! A pipeline hands requests to the stage through a bounded input queue ([`INPUT_QUEUE`]
//! requests, full-policy `block`: a full queue makes the request path wait). The stage keeps
//! one pending batch per `metadata_keys` combination, joins requests into it (protobuf bytes by
//! concatenation, decoded requests by [`merge`]), and sends it down its chain at
//! `send_batch_size` items or `timeout` after its first item, cut under `send_batch_max_size`
//! ([`split_front`]). Each request holds its memory on the admission gate's account until the
//! batch it joined has been handed on. Items it could not hand on are counted as
//! `otelgw_dropped_items_total{component="batch",reason=…}` and logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use tokio::time::Instant;

use super::Chain;
use crate::admission::Reservation;
use crate::consumer::ConsumeError;
use crate::data::split::{merge, split_front};
use crate::data::{Encoded, Payload, RequestMeta, Signal, Telemetry};
use crate::processors::batch::BatchConfig;
use crate::telemetry::metrics::{names, Counter, Gauge, Histogram, Registry, BATCH_SIZE_BUCKETS};

/// Requests waiting to enter one batch stage.
pub const INPUT_QUEUE: usize = 64;

/// What a pending batch holds. Requests that arrive as protobuf ([`Payload::Encoded`]) stay
/// bytes: OTLP export requests are one repeated field, so the concatenation of two encodings is
/// the encoding of the merged request, and the batch is joined with one copy when it is sent.
/// The first decoded request (or a split) turns the batch into prost structs.
enum Held {
    Encoded { signal: Signal, parts: Vec<Encoded> },
    Decoded(Telemetry),
}

impl Held {
    /// Adds a request (of the same signal; another signal is handed back).
    fn add(&mut self, more: Payload) -> Result<(), Payload> {
        if more.signal() != self.signal() {
            return Err(more);
        }
        match (&mut *self, more) {
            (Held::Encoded { parts, .. }, Payload::Encoded(e)) => parts.push(e),
            (Held::Decoded(t), more) => {
                if let Err(other) = merge(t, more.into_decoded()) {
                    return Err(Payload::Decoded(other));
                }
            }
            (Held::Encoded { signal, parts }, Payload::Decoded(more)) => {
                let mut t = Telemetry::empty(*signal);
                for e in parts.drain(..) {
                    if let Err(other) = merge(&mut t, Payload::Encoded(e).into_decoded()) {
                        return Err(Payload::Decoded(other));
                    }
                }
                if let Err(other) = merge(&mut t, more) {
                    return Err(Payload::Decoded(other));
                }
                *self = Held::Decoded(t);
            }
        }
        Ok(())
    }

    fn signal(&self) -> Signal {
        match self {
            Held::Encoded { signal, .. } => *signal,
            Held::Decoded(t) => t.signal(),
        }
    }

    /// The batch as one request.
    fn finish(self) -> Payload {
        match self {
            Held::Decoded(t) => Payload::Decoded(t),
            Held::Encoded { signal, mut parts } => {
                if parts.len() == 1 {
                    if let Some(e) = parts.pop() {
                        return Payload::Encoded(e);
                    }
                }
                let len = parts.iter().map(|e| e.bytes.len()).sum();
                let mut buf = bytes::BytesMut::with_capacity(len);
                let mut items = 0;
                for e in parts {
                    buf.extend_from_slice(&e.bytes);
                    items += e.items;
                }
                Payload::Encoded(Encoded {
                    signal,
                    items,
                    bytes: buf.freeze(),
                })
            }
        }
    }
}

struct Item {
    data: Payload,
    meta: Arc<RequestMeta>,
    /// Its protobuf size as received (what its batch is priced from).
    wire: u64,
    /// The request's memory on the admission gate's account, held until its batch is handed on.
    memory: Option<Reservation>,
}

/// The handle a pipeline uses to hand requests to its batch stage.
#[derive(Clone)]
pub struct BatchHandle {
    id: String,
    tx: async_channel::Sender<Item>,
    keys: Vec<String>,
    limit: usize,
    /// Metadata value combinations seen (as in the Collector, a combination keeps its batcher).
    known: Arc<std::sync::Mutex<std::collections::HashSet<Vec<Option<String>>>>>,
    cardinality: Gauge,
    /// Whether the chain after the stage reads the items ([`Chain::reads_items`]).
    reads_items: bool,
}

struct Metrics {
    size: Histogram,
    size_trigger: Counter,
    timeout_trigger: Counter,
    dropped_refused: [Counter; 3],
    dropped_shutdown: [Counter; 3],
}

fn sig_idx(s: Signal) -> usize {
    match s {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

impl BatchHandle {
    /// Starts the stage; `downstream` is the rest of the pipeline.
    pub fn start(
        id: &str,
        pipeline: &str,
        cfg: &BatchConfig,
        downstream: Chain,
        reg: &Registry,
    ) -> (BatchHandle, tokio::task::JoinHandle<()>) {
        let labels = [("processor", id), ("pipeline", pipeline)];
        let dropped =
            |reason: &str, s: Signal| crate::telemetry::metrics::dropped_items(reg, id, reason, s);
        let m = Metrics {
            size: reg.histogram(
                names::PROCESSOR_BATCH_BATCH_SEND_SIZE,
                "Items in each batch sent.",
                BATCH_SIZE_BUCKETS,
                &labels,
            ),
            size_trigger: reg.counter(
                names::PROCESSOR_BATCH_BATCH_SIZE_TRIGGER_SEND,
                "Batches sent because they reached send_batch_size.",
                &labels,
            ),
            timeout_trigger: reg.counter(
                names::PROCESSOR_BATCH_TIMEOUT_TRIGGER_SEND,
                "Batches sent because the timeout expired.",
                &labels,
            ),
            dropped_refused: Signal::ALL.map(|s| dropped("refused_downstream", s)),
            dropped_shutdown: Signal::ALL.map(|s| dropped("shutdown", s)),
        };
        let cardinality = reg.gauge(
            names::PROCESSOR_BATCH_METADATA_CARDINALITY,
            "Distinct metadata value combinations being batched.",
            &labels,
        );
        let (tx, rx) = async_channel::bounded(INPUT_QUEUE);
        let handle = BatchHandle {
            id: id.to_string(),
            tx,
            keys: cfg
                .metadata_keys
                .iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
            limit: cfg.metadata_cardinality_limit,
            known: Default::default(),
            cardinality,
            reads_items: downstream.reads_items(),
        };
        let task = tokio::spawn(run(cfg.clone(), rx, downstream, m, handle.keys.clone()));
        (handle, task)
    }

    /// Hands a request to the stage (waits while its input queue is full). A request that
    /// would open a metadata combination past `metadata_cardinality_limit` is refused.
    /// `wire` is the request's protobuf size as received; `memory` is what it holds on the
    /// admission gate's account, which the stage keeps until the batch the request joins has
    /// been handed on.
    pub async fn consume(
        &self,
        data: Payload,
        meta: Arc<RequestMeta>,
        wire: u64,
        memory: Option<Reservation>,
    ) -> Result<(), ConsumeError> {
        if !self.keys.is_empty() {
            let key = key_of(&self.keys, &meta);
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            if !known.contains(&key) {
                if known.len() >= self.limit {
                    return Err(ConsumeError::Invalid {
                        message: format!(
                            "batch processor {}: the limit of {} distinct values of {:?} is reached",
                            self.id, self.limit, self.keys
                        ),
                    });
                }
                known.insert(key);
                self.cardinality.set(known.len() as i64);
            }
        }
        self.tx
            .send(Item {
                data,
                meta,
                wire,
                memory,
            })
            .await
            .map_err(|_| ConsumeError::ShuttingDown)
    }

    /// True when the chain after this stage reads the contents.
    pub fn reads_items(&self) -> bool {
        self.reads_items
    }

    /// Stops taking requests; the task flushes what it holds and ends.
    pub fn close(&self) {
        self.tx.close();
    }
}

/// The context a batch carries: the `metadata_keys` values it was batched by, nothing else.
fn batch_meta(keys: &[String], key: &[Option<String>]) -> Arc<RequestMeta> {
    Arc::new(RequestMeta {
        client_address: None,
        auth: None,
        wire_size: 0,
        headers: keys
            .iter()
            .zip(key)
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect(),
    })
}

fn key_of(keys: &[String], meta: &RequestMeta) -> Vec<Option<String>> {
    keys.iter()
        .map(|k| {
            meta.headers
                .iter()
                .find(|(h, _)| h == k)
                .map(|(_, v)| v.clone())
        })
        .collect()
}

struct Pending {
    data: Held,
    items: u64,
    deadline: Instant,
    meta: Arc<RequestMeta>,
    /// The protobuf size of the requests it holds, as received (the price of the batch).
    wire: u64,
    /// What its requests hold on the admission gate's account, released once it is sent.
    memory: Vec<Reservation>,
}

async fn send(down: &Chain, data: Payload, meta: Arc<RequestMeta>, m: &Metrics) {
    let items = data.item_count();
    let signal = data.signal();
    m.size.observe(items);
    if let Err(e) = down.consume(data, meta).await {
        let counter = match e {
            ConsumeError::ShuttingDown => &m.dropped_shutdown[sig_idx(signal)],
            _ => &m.dropped_refused[sig_idx(signal)],
        };
        counter.add(items);
        tracing::error!(error = %e, items, "batch could not be handed on; items dropped");
    }
}

/// Sends `p`, split into pieces of at most `max` items (0 = no limit). Encoded requests are
/// never cut: each piece is as many whole requests as fit under `max`, and only a request
/// larger than `max` on its own is decoded and split.
async fn flush(down: &Chain, p: Pending, max: u64, m: &Metrics) {
    let meta = Arc::new(RequestMeta {
        wire_size: p.wire,
        ..(*p.meta).clone()
    });
    match p.data {
        Held::Encoded { signal, parts } if max > 0 && p.items > max => {
            for piece in pieces(parts, max) {
                match piece {
                    Piece::Whole(parts) => {
                        // priced by its own size, not the whole batch's
                        let piece = Arc::new(RequestMeta {
                            wire_size: parts.iter().map(|e| e.bytes.len() as u64).sum(),
                            ..(*meta).clone()
                        });
                        let whole = Held::Encoded { signal, parts };
                        send(down, whole.finish(), piece, m).await;
                    }
                    Piece::Cut(e) => {
                        let items = e.items;
                        let one = Arc::new(RequestMeta {
                            wire_size: e.bytes.len() as u64,
                            ..(*meta).clone()
                        });
                        send_split(down, Payload::Encoded(e), items, max, &one, m).await;
                    }
                }
            }
        }
        held => send_split(down, held.finish(), p.items, max, &meta, m).await,
    }
    // the requests' own memory goes now that the next hop holds theirs
    drop(p.memory);
}

/// One piece of a batch of encoded requests sent under `send_batch_max_size`.
#[derive(Debug)]
enum Piece {
    /// Whole requests, at most `max` items together.
    Whole(Vec<Encoded>),
    /// A request above `max` on its own, to be decoded and cut.
    Cut(Encoded),
}

/// Splits `parts` (in order) into runs of whole requests of at most `max` items, and the
/// requests that exceed `max` alone.
fn pieces(parts: Vec<Encoded>, max: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut group = Vec::new();
    let mut n = 0;
    for e in parts {
        if n + e.items > max && !group.is_empty() {
            out.push(Piece::Whole(std::mem::take(&mut group)));
            n = 0;
        }
        if e.items > max {
            out.push(Piece::Cut(e));
        } else {
            n += e.items;
            group.push(e);
        }
    }
    if !group.is_empty() {
        out.push(Piece::Whole(group));
    }
    out
}

/// Sends `data` (`items` long) in pieces of at most `max` items (0 = no limit), decoding it if
/// it has to be cut.
async fn send_split(
    down: &Chain,
    mut data: Payload,
    mut items: u64,
    max: u64,
    meta: &Arc<RequestMeta>,
    m: &Metrics,
) {
    let mut meta = meta.clone();
    if max > 0 && items > max {
        // each piece is priced by its share of the protobuf size
        let piece_wire = |n: u64| (meta.wire_size as u128 * n as u128 / items as u128) as u64;
        let piece_meta = Arc::new(RequestMeta {
            wire_size: piece_wire(max),
            ..(*meta).clone()
        });
        let mut t = data.into_decoded();
        let mut left = items;
        while left > max {
            let head = split_front(&mut t, max);
            left -= max;
            send(down, Payload::Decoded(head), piece_meta.clone(), m).await;
        }
        meta = Arc::new(RequestMeta {
            wire_size: piece_wire(left),
            ..(*meta).clone()
        });
        data = Payload::Decoded(t);
        items = left;
    }
    if items > 0 {
        send(down, data, meta, m).await;
    }
}

async fn run(
    cfg: BatchConfig,
    rx: async_channel::Receiver<Item>,
    down: Chain,
    m: Metrics,
    keys: Vec<String>,
) {
    let timeout: StdDuration = cfg.timeout.get();
    let size = cfg.send_batch_size;
    let max = cfg.send_batch_max_size;
    let mut pending: HashMap<Vec<Option<String>>, Pending> = HashMap::new();
    loop {
        let next_deadline = pending.values().map(|p| p.deadline).min();
        let item = tokio::select! {
            item = rx.recv() => item,
            _ = async {
                match next_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = Instant::now();
                let due: Vec<_> = pending.iter().filter(|(_, p)| p.deadline <= now).map(|(k, _)| k.clone()).collect();
                for k in due {
                    if let Some(p) = pending.remove(&k) {
                        m.timeout_trigger.inc();
                        flush(&down, p, max, &m).await;
                    }
                }
                continue;
            }
        };
        let Ok(Item {
            data,
            meta,
            wire,
            memory,
        }) = item
        else {
            // closed and empty: flush everything and stop
            for (_, p) in pending.drain() {
                flush(&down, p, max, &m).await;
            }
            return;
        };
        let key = key_of(&keys, &meta);
        let items = data.item_count();
        let signal = data.signal();
        let p = pending.entry(key.clone()).or_insert_with(|| Pending {
            data: Held::Encoded {
                signal,
                parts: Vec::new(),
            },
            items: 0,
            deadline: Instant::now() + timeout,
            meta: batch_meta(&keys, &key),
            wire: 0,
            memory: Vec::new(),
        });
        if let Err(other) = p.data.add(data) {
            // a pipeline carries one signal; this cannot happen, but never lose data over it
            send(&down, other, meta, &m).await;
            continue;
        }
        p.wire += wire;
        p.memory.extend(memory);
        p.items += items;
        if p.items >= size || timeout.is_zero() {
            if let Some(p) = pending.remove(&key) {
                m.size_trigger.inc();
                flush(&down, p, max, &m).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::split::tests::{build, flat};
    use crate::testdata;

    fn encoded(t: &Telemetry) -> Payload {
        Payload::Encoded(Encoded {
            signal: t.signal(),
            items: t.item_count(),
            bytes: t.encode_to_bytes(),
        })
    }

    #[test]
    fn encoded_requests_batch_as_their_concatenated_bytes() {
        let (a, b, c) = (
            build(&[vec![2, 1]]),
            build(&[vec![3]]),
            build(&[vec![1], vec![4]]),
        );
        let mut held = Held::Encoded {
            signal: Signal::Traces,
            parts: vec![],
        };
        for t in [&a, &b, &c] {
            held.add(encoded(t)).unwrap();
        }
        let Payload::Encoded(e) = held.finish() else {
            panic!("encoded requests must stay encoded")
        };
        assert_eq!(e.items, 11);
        let expected = [
            a.encode_to_bytes(),
            b.encode_to_bytes(),
            c.encode_to_bytes(),
        ]
        .concat();
        assert_eq!(e.bytes.as_ref(), expected.as_slice());
        let mut merged = a.clone();
        merge(&mut merged, b.clone()).unwrap();
        merge(&mut merged, c.clone()).unwrap();
        assert_eq!(
            Telemetry::decode_proto(Signal::Traces, &e.bytes).unwrap(),
            merged
        );
    }

    #[test]
    fn a_decoded_request_turns_the_batch_decoded_in_order() {
        let (a, b, c) = (build(&[vec![2]]), build(&[vec![1, 1]]), build(&[vec![3]]));
        let mut held = Held::Encoded {
            signal: Signal::Traces,
            parts: vec![],
        };
        held.add(encoded(&a)).unwrap();
        held.add(Payload::Decoded(b.clone())).unwrap();
        held.add(encoded(&c)).unwrap();
        let Payload::Decoded(t) = held.finish() else {
            panic!("a decoded request decodes the batch")
        };
        assert_eq!(flat(&t), [flat(&a), flat(&b), flat(&c)].concat());
        // another signal is handed back, never merged
        let back = held_of(&a).add(encoded(&testdata_logs()));
        assert!(back.is_err());
    }

    fn held_of(t: &Telemetry) -> Held {
        Held::Decoded(t.clone())
    }

    fn testdata_logs() -> Telemetry {
        Telemetry::Logs(testdata::logs(1, 1, 2))
    }

    #[test]
    fn encoded_pieces_keep_requests_whole_and_cut_only_the_oversized() {
        let part = |items: u64| Encoded {
            signal: Signal::Traces,
            items,
            bytes: Default::default(),
        };
        let shape = |sizes: &[u64], max: u64| -> Vec<Vec<u64>> {
            pieces(sizes.iter().map(|&n| part(n)).collect(), max)
                .into_iter()
                .map(|p| match p {
                    Piece::Whole(v) => v.iter().map(|e| e.items).collect(),
                    Piece::Cut(e) => vec![0, e.items],
                })
                .collect()
        };
        // [0, n] marks a cut request
        assert_eq!(shape(&[5, 30, 4], 12), [vec![5], vec![0, 30], vec![4]]);
        assert_eq!(shape(&[6, 6, 6], 12), [vec![6, 6], vec![6]]);
        assert_eq!(shape(&[12, 1], 12), [vec![12], vec![1]]);
        assert_eq!(
            shape(&[3, 4, 5, 13, 13], 12),
            [vec![3, 4, 5], vec![0, 13], vec![0, 13]]
        );
    }
}
