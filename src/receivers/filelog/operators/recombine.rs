//! `recombine`: holds consecutive entries per source and combines one field of them.

use super::expr::Expr;
use super::field::Field;
use super::{Cfg, Entry, COMMON};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct RecombineCfg {
    /// `is_first_entry` or `is_last_entry` (exactly one): the boundary condition.
    pub rule: Rule,
    /// `combine_field` (default `body`): the field whose string values are joined.
    pub combine_field: Field,
    /// `combine_with` (default `"\n"`): the separator.
    pub combine_with: String,
    /// `source_identifier` (default `attributes["log.file.path"]`): batches are kept per value.
    pub source_identifier: Field,
    /// `max_batch_size` (default 1000, 0 = unlimited): entries per batch before a flush.
    pub max_batch_size: usize,
    /// `max_unmatched_batch_size` (default 100, 0 = unlimited): entries combined before any match.
    pub max_unmatched_batch_size: usize,
    /// `max_log_size` (bytes, default 0 = unlimited): combined size that forces a flush.
    pub max_log_size: u64,
    /// `max_sources` (default 1000): more sources flush all batches.
    pub max_sources: usize,
    /// `force_flush_period` (default 5s), in nanoseconds: batches older than this are flushed.
    pub force_flush_ns: u64,
    /// `overwrite_with` (default `oldest`): whose non-combined fields the result keeps.
    pub newest: bool,
}

#[derive(Debug, Clone)]
pub enum Rule {
    First(Expr),
    Last(Expr),
}

pub fn parse(c: &mut Cfg) -> Option<RecombineCfg> {
    c.allow(&[
        COMMON,
        &[
            "combine_field",
            "is_first_entry",
            "is_last_entry",
            "combine_with",
            "source_identifier",
            "max_batch_size",
            "max_unmatched_batch_size",
            "max_log_size",
            "max_sources",
            "force_flush_period",
            "overwrite_with",
        ],
    ]);
    let first = c.expr("is_first_entry");
    let last = c.expr("is_last_entry");
    let rule = match (
        c.get("is_first_entry").is_some(),
        c.get("is_last_entry").is_some(),
    ) {
        (true, true) | (false, false) => {
            c.err(
                "is_first_entry",
                "exactly one of is_first_entry and is_last_entry is required",
            );
            None
        }
        (true, false) => first.map(Rule::First),
        (false, true) => last.map(Rule::Last),
    };
    let newest = match c.str_or("overwrite_with", "oldest").as_str() {
        "oldest" => false,
        "newest" => true,
        other => {
            c.err(
                "overwrite_with",
                format!("unknown value {other:?} (oldest, newest)"),
            );
            false
        }
    };
    let cfg = RecombineCfg {
        rule: rule?,
        combine_field: c.field_or("combine_field", Field::body()),
        combine_with: c.str_or("combine_with", "\n"),
        source_identifier: c.field_or("source_identifier", Field::attr("log.file.path")),
        max_batch_size: c.uint("max_batch_size", 1000) as usize,
        max_unmatched_batch_size: c.uint("max_unmatched_batch_size", 100) as usize,
        max_log_size: c.bytes("max_log_size", 0),
        max_sources: c.uint("max_sources", 1000) as usize,
        force_flush_ns: c.duration("force_flush_period", 5_000_000_000),
        newest,
    };
    Some(cfg)
}

/// Entries held for one source.
struct Batch {
    entries: Vec<Entry>,
    /// Bytes of the combine field so far.
    size: u64,
    /// When the first entry arrived.
    started_ns: u64,
    /// Whether the batch began with an `is_first_entry` match.
    matched: bool,
    /// Arrival order, so flushes are deterministic.
    seq: u64,
}

pub struct Recombine {
    cfg: RecombineCfg,
    batches: HashMap<String, Batch>,
    seq: u64,
}

impl Recombine {
    pub fn new(cfg: RecombineCfg) -> Self {
        Recombine {
            cfg,
            batches: HashMap::new(),
            seq: 0,
        }
    }

    pub fn process(&mut self, e: Entry, now_ns: u64, out: &mut Vec<Entry>) {
        let source = match self.cfg.source_identifier.get(&e) {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => "DefaultSourceIdentifier".to_string(),
        };
        match &self.cfg.rule {
            Rule::First(x) if x.eval_bool(&e) => {
                self.flush_source(&source, out);
                self.add(source, e, now_ns, true, out);
            }
            Rule::Last(x) if x.eval_bool(&e) => {
                self.add(source.clone(), e, now_ns, false, out);
                self.flush_source(&source, out);
            }
            _ => {
                self.add(source.clone(), e, now_ns, false, out);
                let limit = self.cfg.max_unmatched_batch_size;
                if let Some(b) = self.batches.get(&source) {
                    if !b.matched && limit > 0 && b.entries.len() >= limit {
                        self.flush_source(&source, out);
                    }
                }
            }
        }
    }

    fn add(&mut self, source: String, e: Entry, now_ns: u64, first: bool, out: &mut Vec<Entry>) {
        if !self.batches.contains_key(&source) && self.batches.len() >= self.cfg.max_sources {
            self.flush(now_ns, true, out);
        }
        let size = self
            .cfg
            .combine_field
            .get_str(&e)
            .map_or(0, |s| s.len() as u64);
        self.seq += 1;
        let seq = self.seq;
        let b = self.batches.entry(source.clone()).or_insert_with(|| Batch {
            entries: Vec::new(),
            size: 0,
            started_ns: now_ns,
            matched: first,
            seq,
        });
        b.size += size;
        b.entries.push(e);
        let full = (self.cfg.max_batch_size > 0 && b.entries.len() >= self.cfg.max_batch_size)
            || (self.cfg.max_log_size > 0 && b.size >= self.cfg.max_log_size);
        if full {
            self.flush_source(&source, out);
        }
    }

    fn flush_source(&mut self, source: &str, out: &mut Vec<Entry>) {
        if let Some(b) = self.batches.remove(source) {
            out.extend(self.combine(b.entries));
        }
    }

    /// Emits batches older than `force_flush_period`, or all of them.
    pub fn flush(&mut self, now_ns: u64, all: bool, out: &mut Vec<Entry>) {
        let period = self.cfg.force_flush_ns;
        let mut due: Vec<(u64, String)> = self
            .batches
            .iter()
            .filter(|(_, b)| all || now_ns.saturating_sub(b.started_ns) >= period)
            .map(|(k, b)| (b.seq, k.clone()))
            .collect();
        due.sort();
        for (_, k) in due {
            self.flush_source(&k, out);
        }
    }

    fn combine(&self, mut entries: Vec<Entry>) -> Option<Entry> {
        let texts: Vec<String> = entries
            .iter()
            .filter_map(|e| match self.cfg.combine_field.get(e)? {
                Value::String(s) => Some(s),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect();
        let mut base = if self.cfg.newest {
            entries.pop()?
        } else {
            entries.into_iter().next()?
        };
        // The combine field always exists here unless it was missing in every entry.
        if !texts.is_empty() {
            let _ = self
                .cfg
                .combine_field
                .set(&mut base, Value::String(texts.join(&self.cfg.combine_with)));
        }
        Some(base)
    }
}
