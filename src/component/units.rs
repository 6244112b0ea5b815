//! Durations (`200ms`, `5s`, `1m30s`) and byte sizes (`20MiB`, `4MB`, `1048576`) as config
//! values. Both serialize back to the same human form, so `print-config` round-trips.

use std::fmt;
use std::time::Duration as StdDuration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the Go way (`300ms`, `5s`, `1m30s`, `2h`). A bare `0` means zero; other
/// bare numbers are refused because their unit would be a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(pub StdDuration);

impl Duration {
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(StdDuration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Duration {
        Duration(StdDuration::from_secs(s))
    }
    pub fn get(self) -> StdDuration {
        self.0
    }
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

/// Parses `1h2m3s4ms5us6ns`-style durations.
pub fn parse_duration(s: &str) -> Result<StdDuration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(StdDuration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("invalid duration {s:?}: missing unit (ns, us, ms, s, m, h)"))?;
        if num_end == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let number: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: bad number"))?;
        let after = &rest[num_end..];
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let unit = &after[..unit_end];
        let nanos_per: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {unit:?} (ns, us, ms, s, m, h)"
                ))
            }
        };
        total += (number * nanos_per) as u128;
        rest = &after[unit_end..];
    }
    let nanos = u64::try_from(total).map_err(|_| format!("invalid duration {s:?}: too large"))?;
    Ok(StdDuration::from_nanos(nanos))
}

pub fn format_duration(d: StdDuration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0s".into()
    } else if nanos % 1_000_000_000 == 0 {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(0) => Ok(Duration(StdDuration::ZERO)),
            Raw::Int(n) => Err(serde::de::Error::custom(format!(
                "invalid duration {n}: give a unit, e.g. \"{n}s\" or \"{n}ms\""
            ))),
            Raw::Str(s) => parse_duration(&s)
                .map(Duration)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A size in bytes: an integer, or a number with a unit (`B`, `KB`, `KiB`, `MB`, `MiB`, `GB`,
/// `GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n * 1024 * 1024)
    }
    pub fn bytes(self) -> u64 {
        self.0
    }
}

pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let number: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected a number"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "kib" | "ki" => 1024.0,
        "mb" | "m" => 1e6,
        "mib" | "mi" => 1024.0 * 1024.0,
        "gb" | "g" => 1e9,
        "gib" | "gi" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {other:?} (B, KB, KiB, MB, MiB, GB, GiB)"
            ))
        }
    };
    let v = number * mult;
    if !(0.0..1.8e19).contains(&v) {
        return Err(format!("invalid size {s:?}: out of range"));
    }
    Ok(v as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Str(s) => parse_byte_size(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.0;
        if b != 0 && b % (1024 * 1024) == 0 {
            s.serialize_str(&format!("{}MiB", b / (1024 * 1024)))
        } else if b != 0 && b % 1024 == 0 {
            s.serialize_str(&format!("{}KiB", b / 1024))
        } else {
            s.serialize_u64(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("200ms").unwrap(),
            StdDuration::from_millis(200)
        );
        assert_eq!(parse_duration("1m30s").unwrap(), StdDuration::from_secs(90));
        assert_eq!(
            parse_duration("1.5s").unwrap(),
            StdDuration::from_millis(1500)
        );
        assert_eq!(parse_duration("0").unwrap(), StdDuration::ZERO);
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("ms").is_err());
        let d: Duration = serde_norway::from_str("\"2h\"").unwrap();
        assert_eq!(d.to_string(), "7200s");
        assert!(serde_norway::from_str::<Duration>("5")
            .unwrap_err()
            .to_string()
            .contains("give a unit"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("20MiB").unwrap(), 20 * 1024 * 1024);
        assert_eq!(parse_byte_size("4MB").unwrap(), 4_000_000);
        assert_eq!(parse_byte_size("512 KiB").unwrap(), 512 * 1024);
        assert!(parse_byte_size("12 parsecs").is_err());
        let s: ByteSize = serde_norway::from_str("1048576").unwrap();
        assert_eq!(s, ByteSize::mib(1));
        assert_eq!(serde_norway::to_string(&s).unwrap().trim(), "1MiB");
    }
}
