//! Records from file bytes: lines, or multiline records delimited by a start or end pattern.
//!
//! The reader appends what it read to a file's [`Pending`] buffer; [`Splitter::split`] takes
//! every complete record off its front and says how many bytes that consumed (the reader's
//! committed offset moves by exactly that). An incomplete record stays pending until more
//! bytes arrive or [`Splitter::flush`] (after `force_flush_period` without data, or at the end
//! of a file about to be deleted) emits it as it is. A record longer than `max_log_size` is
//! cut into `max_log_size` pieces, each counted as truncated; nothing is skipped and the pending
//! buffer never grows past `max_log_size` plus one read.

use regex::bytes::Regex;

use super::{FileLogConfig, Multiline};

/// How records end.
#[derive(Debug, Clone)]
enum Mode {
    /// Every `\n`.
    Lines,
    /// A line matching starts a record.
    Start(Regex),
    /// A line matching ends a record.
    End(Regex),
}

/// The split rules of one receiver.
#[derive(Debug, Clone)]
pub struct Splitter {
    mode: Mode,
    max: usize,
    omit: bool,
    trim_leading: bool,
    trim_trailing: bool,
}

/// Bytes of one file read past its committed offset.
#[derive(Debug, Default)]
pub struct Pending {
    pub buf: Vec<u8>,
    /// `buf[..scan]` holds only complete lines of the current record (multiline) or no `\n`
    /// (lines): scanning resumes here.
    scan: usize,
}

impl Pending {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.scan = 0;
    }
}

/// One record taken off a file.
#[derive(Debug, PartialEq)]
pub struct Record {
    pub bytes: Vec<u8>,
    /// Cut at `max_log_size`.
    pub truncated: bool,
}

impl Splitter {
    pub fn new(cfg: &FileLogConfig) -> Result<Splitter, String> {
        let mode = match &cfg.multiline {
            None => Mode::Lines,
            Some(Multiline {
                line_start_pattern: Some(p),
                ..
            }) => Mode::Start(Regex::new(p).map_err(|e| e.to_string())?),
            Some(Multiline {
                line_end_pattern: Some(p),
                ..
            }) => Mode::End(Regex::new(p).map_err(|e| e.to_string())?),
            Some(_) => Mode::Lines,
        };
        Ok(Splitter {
            mode,
            max: usize::try_from(cfg.max_log_size.bytes())
                .unwrap_or(usize::MAX)
                .max(1),
            omit: cfg.multiline.as_ref().is_some_and(|m| m.omit_pattern),
            trim_leading: !cfg.preserve_leading_whitespaces,
            trim_trailing: !cfg.preserve_trailing_whitespaces,
        })
    }

    /// Takes every complete record off the front of `p.buf`; returns the bytes consumed.
    pub fn split(&self, p: &mut Pending, out: &mut Vec<Record>) -> usize {
        let buf = &p.buf;
        let mut start = 0; // start of the current record
        let mut i = p.scan.max(start); // start of the next line not yet looked at
        loop {
            let Some(nl) = memchr(b'\n', &buf[i..]).map(|n| i + n) else {
                // a partial line that already matches the start pattern ends the record before
                if let Mode::Start(re) = &self.mode {
                    if i > start && i < buf.len() && re.is_match(&buf[i..]) {
                        self.emit(&buf[start..i - 1], false, out);
                        start = i;
                    }
                }
                // no complete line left: cut an oversized pending record
                while buf.len() - start > self.max {
                    self.emit(&buf[start..start + self.max], true, out);
                    start += self.max;
                }
                // lines: no `\n` up to here, no need to look again
                i = if matches!(self.mode, Mode::Lines) {
                    buf.len()
                } else {
                    i.max(start)
                };
                break;
            };
            let line = &buf[i..nl];
            match &self.mode {
                Mode::Lines => {
                    while nl - start > self.max {
                        self.emit(&buf[start..start + self.max], true, out);
                        start += self.max;
                    }
                    self.emit(strip_cr(&buf[start..nl]), false, out);
                    start = nl + 1;
                }
                Mode::Start(re) => {
                    if i > start && re.is_match(line) {
                        self.emit(&buf[start..i - 1], false, out);
                        start = i;
                    }
                }
                Mode::End(re) => {
                    if re.is_match(line) {
                        self.emit(&buf[start..nl], false, out);
                        start = nl + 1;
                    }
                }
            }
            i = nl + 1;
            // a multiline record without its delimiter yet may not outgrow max_log_size
            while i.saturating_sub(start) > self.max {
                self.emit(&buf[start..start + self.max], true, out);
                start += self.max;
            }
        }
        p.scan = i - start;
        p.buf.drain(..start);
        start
    }

    /// Emits whatever is pending as one record (or pieces of `max_log_size`); returns the bytes
    /// consumed (all of them).
    pub fn flush(&self, p: &mut Pending, out: &mut Vec<Record>) -> usize {
        let n = p.buf.len();
        for (k, piece) in p.buf.chunks(self.max).enumerate() {
            let truncated = n > self.max && (k + 1) * self.max < n;
            let piece = if matches!(self.mode, Mode::Start(_) | Mode::End(_)) {
                piece.strip_suffix(b"\n").unwrap_or(piece)
            } else {
                strip_cr(piece)
            };
            self.emit(piece, truncated, out);
        }
        p.clear();
        n
    }

    fn emit(&self, rec: &[u8], truncated: bool, out: &mut Vec<Record>) {
        let mut omitted = None;
        if self.omit {
            omitted = match &self.mode {
                Mode::Start(re) => re
                    .find(rec)
                    .filter(|m| m.start() == 0)
                    .map(|m| [&rec[..m.start()], &rec[m.end()..]].concat()),
                Mode::End(re) => {
                    let last = rec.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
                    re.find(&rec[last..])
                        .map(|m| [&rec[..last + m.start()], &rec[last + m.end()..]].concat())
                }
                Mode::Lines => None,
            };
        }
        let mut rec = omitted.as_deref().unwrap_or(rec);
        if self.trim_leading {
            rec = rec.trim_ascii_start();
        }
        if self.trim_trailing {
            rec = rec.trim_ascii_end();
        }
        if rec.is_empty() {
            return;
        }
        out.push(Record {
            bytes: rec.to_vec(),
            truncated,
        });
    }
}

fn strip_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}
