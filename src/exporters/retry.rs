//! Retry classification and backoff for every push exporter.
//!
//! One place decides what is worth retrying (OTLP spec): gRPC `UNAVAILABLE`, `CANCELLED`,
//! `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `DATA_LOSS`, and `RESOURCE_EXHAUSTED` when the
//! peer sends `RetryInfo`; HTTP 429, 502, 503, 504 and connection errors. A peer's `Retry-After`
//! or `RetryInfo` replaces the computed backoff. Everything else is permanent: counted, logged,
//! never retried.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::component::units::Duration as CfgDuration;
use crate::component::Diagnostics;

/// Why an export failed, and whether trying again can help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExportError {
    #[error("{message}")]
    Retryable {
        kind: &'static str,
        message: String,
        /// The peer's hint (`Retry-After`, `RetryInfo`), which overrides the backoff.
        retry_after: Option<Duration>,
    },
    #[error("{message}")]
    Permanent { kind: &'static str, message: String },
}

impl ExportError {
    pub fn retryable(kind: &'static str, message: impl Into<String>) -> ExportError {
        ExportError::Retryable {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn permanent(kind: &'static str, message: impl Into<String>) -> ExportError {
        ExportError::Permanent {
            kind,
            message: message.into(),
        }
    }
    /// A low-cardinality label (`unavailable`, `http_503`, `timeout`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            ExportError::Retryable { kind, .. } | ExportError::Permanent { kind, .. } => kind,
        }
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, ExportError::Retryable { .. })
    }
}

/// Classifies a gRPC status from a peer.
pub fn classify_grpc(status: &tonic::Status) -> ExportError {
    use tonic::Code;
    let hint = crate::grpc::status::retry_delay_of(status);
    let message = format!("grpc status {:?}: {}", status.code(), status.message());
    let kind = match status.code() {
        Code::Unavailable => "unavailable",
        Code::Cancelled => "cancelled",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::DataLoss => "data_loss",
        Code::ResourceExhausted if hint.is_some() => "resource_exhausted",
        Code::ResourceExhausted => return ExportError::permanent("resource_exhausted", message),
        Code::InvalidArgument => return ExportError::permanent("invalid_argument", message),
        Code::Unauthenticated => return ExportError::permanent("unauthenticated", message),
        Code::PermissionDenied => return ExportError::permanent("permission_denied", message),
        Code::Unimplemented => return ExportError::permanent("unimplemented", message),
        _ => return ExportError::permanent("grpc_error", message),
    };
    ExportError::Retryable {
        kind,
        message,
        retry_after: hint,
    }
}

/// Classifies an HTTP response status (non-2xx).
pub fn classify_http(status: u16, retry_after: Option<Duration>, body: &str) -> ExportError {
    let body: String = body.chars().take(512).collect();
    let message = format!("http status {status}: {body}");
    let kind: &'static str = match status {
        429 => "http_429",
        502 => "http_502",
        503 => "http_503",
        504 => "http_504",
        400 => return ExportError::permanent("http_400", message),
        401 | 403 => return ExportError::permanent("http_unauthorized", message),
        404 => return ExportError::permanent("http_404", message),
        413 => return ExportError::permanent("http_413", message),
        s if (400..500).contains(&s) => return ExportError::permanent("http_4xx", message),
        _ => return ExportError::permanent("http_5xx", message),
    };
    ExportError::Retryable {
        kind,
        message,
        retry_after,
    }
}

/// Classifies the answer of a push API whose 5xx are all transient (Loki, remote write): 5xx
/// and 429 are retried, other 4xx are permanent (OTLP's table would make a 500 permanent).
pub fn classify_http_push(status: u16, retry_after: Option<Duration>, body: &str) -> ExportError {
    if status >= 500 {
        let body: String = body.chars().take(512).collect();
        ExportError::Retryable {
            kind: "http_5xx",
            message: format!("http status {status}: {body}"),
            retry_after,
        }
    } else {
        classify_http(status, retry_after, body)
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// `retry_on_failure`, with the Collector's keys and defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retry retryable failures at all.
    pub enabled: bool,
    /// First wait after a failure.
    pub initial_interval: CfgDuration,
    /// Upper bound for one wait.
    pub max_interval: CfgDuration,
    /// Give up after this long in total (0 = never give up).
    pub max_elapsed_time: CfgDuration,
    /// Growth of the wait per attempt.
    pub multiplier: f64,
    /// Jitter: each wait is drawn from `interval × [1 − r, 1 + r]`.
    pub randomization_factor: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            initial_interval: CfgDuration::from_secs(5),
            max_interval: CfgDuration::from_secs(30),
            max_elapsed_time: CfgDuration::from_secs(300),
            multiplier: 1.5,
            randomization_factor: 0.5,
        }
    }
}

impl RetryConfig {
    pub fn validate(&self, path: &str, diag: &mut Diagnostics) {
        if self.multiplier < 1.0 || !self.multiplier.is_finite() {
            diag.error(format!("{path}.multiplier"), "must be at least 1.0");
        }
        if !(0.0..=1.0).contains(&self.randomization_factor) {
            diag.error(
                format!("{path}.randomization_factor"),
                "must be between 0 and 1",
            );
        }
        if self.enabled && self.initial_interval.is_zero() {
            diag.error(
                format!("{path}.initial_interval"),
                "must be greater than 0 when retries are enabled",
            );
        }
        if self.max_interval < self.initial_interval {
            diag.error(
                format!("{path}.max_interval"),
                "must not be less than initial_interval",
            );
        }
    }
}

/// Exponential backoff state for one batch.
pub struct Backoff {
    cfg: RetryConfig,
    next: Duration,
    started: std::time::Instant,
}

impl Backoff {
    pub fn new(cfg: &RetryConfig) -> Backoff {
        Backoff {
            cfg: cfg.clone(),
            next: cfg.initial_interval.get(),
            started: std::time::Instant::now(),
        }
    }

    /// The wait before the next attempt, or `None` when the retry budget is spent.
    pub fn next_delay(&mut self, hint: Option<Duration>) -> Option<Duration> {
        if !self.cfg.enabled {
            return None;
        }
        let r = self.cfg.randomization_factor;
        let base = self.next.as_secs_f64();
        let jittered = if r > 0.0 {
            base * (1.0 - r + rand::random::<f64>() * 2.0 * r)
        } else {
            base
        };
        let delay = hint.unwrap_or_else(|| Duration::from_secs_f64(jittered.max(0.0)));
        let grown = (base * self.cfg.multiplier).min(self.cfg.max_interval.get().as_secs_f64());
        self.next = Duration::from_secs_f64(grown);
        let budget = self.cfg.max_elapsed_time.get();
        if !budget.is_zero()
            && self
                .started
                .elapsed()
                .checked_add(delay)
                .is_none_or(|t| t > budget)
        {
            return None;
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_classification_follows_otlp() {
        for s in [429, 502, 503, 504] {
            assert!(classify_http(s, None, "").is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 500, 501] {
            assert!(!classify_http(s, None, "").is_retryable(), "{s}");
        }
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").is_some());
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn grpc_classification_honours_retry_info() {
        let st = crate::grpc::status::grpc_status(8, "full", Some(Duration::from_secs(2)));
        match classify_grpc(&st) {
            ExportError::Retryable { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)))
            }
            e => panic!("{e:?}"),
        }
        assert!(!classify_grpc(&tonic::Status::resource_exhausted("too big")).is_retryable());
        assert!(classify_grpc(&tonic::Status::unavailable("down")).is_retryable());
        assert!(!classify_grpc(&tonic::Status::invalid_argument("bad")).is_retryable());
    }

    #[test]
    fn backoff_grows_caps_and_gives_up() {
        let cfg = RetryConfig {
            initial_interval: CfgDuration::from_millis(100),
            max_interval: CfgDuration::from_millis(300),
            max_elapsed_time: CfgDuration::from_millis(1000),
            randomization_factor: 0.0,
            ..Default::default()
        };
        let mut b = Backoff::new(&cfg);
        assert_eq!(b.next_delay(None), Some(Duration::from_millis(100)));
        assert_eq!(b.next_delay(None), Some(Duration::from_millis(150)));
        assert_eq!(b.next_delay(None), Some(Duration::from_millis(225)));
        assert_eq!(b.next_delay(None), Some(Duration::from_millis(300)));
        assert_eq!(
            b.next_delay(Some(Duration::from_millis(5))),
            Some(Duration::from_millis(5))
        );
        assert_eq!(b.next_delay(Some(Duration::from_secs(5))), None);
        // max_elapsed_time 0: never gives up, even past any budget.
        let mut forever = Backoff::new(&RetryConfig {
            initial_interval: CfgDuration::from_millis(100),
            max_interval: CfgDuration::from_millis(300),
            max_elapsed_time: CfgDuration::from_secs(0),
            randomization_factor: 0.0,
            ..Default::default()
        });
        for _ in 0..1000 {
            assert!(forever
                .next_delay(Some(Duration::from_secs(3600)))
                .is_some());
        }
        let mut off = Backoff::new(&RetryConfig {
            enabled: false,
            ..Default::default()
        });
        assert_eq!(off.next_delay(None), None);
    }
}
