//! Timestamp parsing: stanza's `strptime` directives, Go reference layouts (`gotime`) and
//! `epoch` layouts, plus the `location` used when the text carries no zone.

use chrono::{Datelike, LocalResult, NaiveDate, TimeZone};
use serde_json::Value;

/// One piece of a compiled layout.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Lit(char),
    Year4,
    Year2,
    /// Month number; accepts 1–2 digits (optionally space-padded).
    Month,
    MonthAbbr,
    MonthFull,
    Day,
    WeekdayAbbr,
    WeekdayFull,
    Hour24,
    Hour12,
    Minute,
    Second,
    /// Fractional seconds (1–9 digits, scaled by their count).
    Frac,
    /// Go's `.999…`: an optional `[.,]` plus fractional seconds.
    OptFrac,
    AmPm,
    ZoneName,
    /// `Z` or ±HH[:]MM[[:]SS]; `allow_z` for Go's `Z07:00` forms and stanza's `%z`.
    Offset,
    Newline,
    Tab,
}

/// Where naive times are placed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Location {
    Utc,
    Local,
}

impl Location {
    pub fn parse(s: &str) -> Result<Location, String> {
        match s {
            "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Zulu" => Ok(Location::Utc),
            "" | "Local" | "local" => Ok(Location::Local),
            other => Err(format!(
                "location {other:?} is not supported (only UTC and Local; put the offset in the \
                 timestamp or convert upstream)"
            )),
        }
    }
}

/// Compiles a stanza strptime layout.
pub fn strptime(layout: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = layout.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(Tok::Lit(c));
            continue;
        }
        let d = it.next().ok_or("layout ends with a lone '%'")?;
        use Tok::*;
        match d {
            'Y' => out.push(Year4),
            'y' => out.push(Year2),
            'm' | 'o' | 'q' => out.push(Month),
            'b' | 'h' => out.push(MonthAbbr),
            'B' => out.push(MonthFull),
            'd' | 'e' | 'g' => out.push(Day),
            'a' => out.push(WeekdayAbbr),
            'A' => out.push(WeekdayFull),
            'H' => out.push(Hour24),
            'I' | 'l' => out.push(Hour12),
            'p' | 'P' => out.push(AmPm),
            'M' => out.push(Minute),
            'S' => out.push(Second),
            'L' | 'f' | 's' => out.push(Frac),
            'Z' => out.push(ZoneName),
            'z' | 'i' | 'j' | 'k' => out.push(Offset),
            'D' => out.extend([Month, Lit('/'), Day, Lit('/'), Year2]),
            'F' => out.extend([Year4, Lit('-'), Month, Lit('-'), Day]),
            'T' => out.extend([Hour24, Lit(':'), Minute, Lit(':'), Second]),
            'R' => out.extend([Hour24, Lit(':'), Minute]),
            'r' => out.extend([Hour12, Lit(':'), Minute, Lit(':'), Second, Lit(' '), AmPm]),
            'c' => out.extend([
                WeekdayAbbr,
                Lit(' '),
                MonthAbbr,
                Lit(' '),
                Day,
                Lit(' '),
                Hour24,
                Lit(':'),
                Minute,
                Lit(':'),
                Second,
                Lit(' '),
                Year4,
            ]),
            'n' => out.push(Newline),
            't' => out.push(Tab),
            '%' => out.push(Lit('%')),
            other => return Err(format!("unsupported strptime directive %{other}")),
        }
    }
    Ok(out)
}

/// Compiles a Go reference layout (`2006-01-02T15:04:05.999999999Z07:00`).
pub fn gotime(layout: &str) -> Result<Vec<Tok>, String> {
    use Tok::*;
    // Longest/most specific first, as Go's own chunker does.
    const CHUNKS: &[(&str, Tok)] = &[
        ("January", MonthFull),
        ("Jan", MonthAbbr),
        ("Monday", WeekdayFull),
        ("Mon", WeekdayAbbr),
        ("MST", ZoneName),
        ("2006", Year4),
        ("Z07:00:00", Offset),
        ("Z07:00", Offset),
        ("Z0700", Offset),
        ("Z07", Offset),
        ("-07:00:00", Offset),
        ("-07:00", Offset),
        ("-0700", Offset),
        ("-07", Offset),
        ("01", Month),
        ("02", Day),
        ("03", Hour12),
        ("04", Minute),
        ("05", Second),
        ("06", Year2),
        ("_2", Day),
        ("_1", Month),
        ("15", Hour24),
        ("PM", AmPm),
        ("pm", AmPm),
        ("1", Month),
        ("2", Day),
        ("3", Hour12),
        ("4", Minute),
        ("5", Second),
    ];
    let mut out = Vec::new();
    let mut rest = layout;
    'outer: while let Some(c) = rest.chars().next() {
        // Fractional seconds: [.,] followed by 0s or 9s.
        if (c == '.' || c == ',') && rest[1..].starts_with(['0', '9']) {
            let digits = rest[1..]
                .chars()
                .take_while(|d| *d == '0' || *d == '9')
                .count();
            let after = rest[1 + digits..].chars().next();
            if !after.is_some_and(|a| a.is_ascii_digit()) {
                if rest[1..].starts_with('9') {
                    out.push(OptFrac);
                } else {
                    out.push(Lit(c));
                    out.push(Frac);
                }
                rest = &rest[1 + digits..];
                continue;
            }
        }
        for (pat, tok) in CHUNKS {
            if let Some(r) = rest.strip_prefix(pat) {
                out.push(tok.clone());
                rest = r;
                continue 'outer;
            }
        }
        out.push(Lit(c));
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

struct Cur<'a> {
    s: &'a str,
}

impl Cur<'_> {
    fn digits(&mut self, max: usize) -> Option<(i64, usize)> {
        let t = self.s.trim_start_matches(' ');
        let n = t.bytes().take(max).take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let v = t[..n].parse().ok()?;
        self.s = &t[n..];
        Some((v, n))
    }
    fn name(&mut self, names: &[&str], full: bool) -> Option<usize> {
        for (i, n) in names.iter().enumerate() {
            let want = if full { n.len() } else { 3 };
            let Some(cand) = self.s.get(..want) else {
                continue;
            };
            if cand.eq_ignore_ascii_case(&n[..want]) {
                self.s = &self.s[want..];
                return Some(i);
            }
        }
        None
    }
}

/// Parses `text` against a compiled layout; returns unix nanoseconds.
/// A missing year is taken from `now_ns` (as stanza does).
pub fn parse(toks: &[Tok], text: &str, loc: Location, now_ns: u64) -> Result<u64, String> {
    let bad = || format!("timestamp {text:?} does not match the layout");
    let mut c = Cur { s: text };
    let (mut year, mut month, mut day) = (None::<i64>, 1u32, 1u32);
    let (mut hour, mut min, mut sec, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i32> = None;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Lit(l) => {
                let mut chars = c.s.chars();
                let got = chars.next().ok_or_else(bad)?;
                // Go accepts ',' for '.' before fractional seconds.
                let ok = got == *l
                    || (*l == '.' && got == ',' && toks.get(i + 1) == Some(&Tok::Frac))
                    || (*l == ' ' && got == ' ');
                if !ok {
                    return Err(bad());
                }
                c.s = chars.as_str();
                if *l == ' ' {
                    // Space-padded numbers: tolerate runs of spaces.
                    c.s = c.s.trim_start_matches(' ');
                }
            }
            Tok::Newline | Tok::Tab => {
                let want = if *t == Tok::Newline { '\n' } else { '\t' };
                c.s = c.s.strip_prefix(want).ok_or_else(bad)?;
            }
            Tok::Year4 => year = Some(c.digits(4).ok_or_else(bad)?.0),
            Tok::Year2 => {
                let y = c.digits(2).ok_or_else(bad)?.0;
                year = Some(if y >= 69 { 1900 + y } else { 2000 + y });
            }
            Tok::Month => month = c.digits(2).ok_or_else(bad)?.0 as u32,
            Tok::MonthAbbr | Tok::MonthFull => {
                month = c.name(&MONTHS, *t == Tok::MonthFull).ok_or_else(bad)? as u32 + 1
            }
            Tok::WeekdayAbbr | Tok::WeekdayFull => {
                c.name(&WEEKDAYS, *t == Tok::WeekdayFull).ok_or_else(bad)?;
            }
            Tok::Day => day = c.digits(2).ok_or_else(bad)?.0 as u32,
            Tok::Hour24 | Tok::Hour12 => hour = c.digits(2).ok_or_else(bad)?.0 as u32,
            Tok::Minute => min = c.digits(2).ok_or_else(bad)?.0 as u32,
            Tok::Second => {
                sec = c.digits(2).ok_or_else(bad)?.0 as u32;
                // Go accepts a fractional part after seconds even if the layout has none.
                let next_is_frac = toks.get(i + 1) == Some(&Tok::OptFrac)
                    || (matches!(toks.get(i + 1), Some(Tok::Lit('.' | ',')))
                        && toks.get(i + 2) == Some(&Tok::Frac));
                if !next_is_frac
                    && c.s.starts_with(['.', ','])
                    && c.s[1..].starts_with(|d: char| d.is_ascii_digit())
                {
                    c.s = &c.s[1..];
                    nanos = frac(&mut c).ok_or_else(bad)?;
                }
            }
            Tok::Frac => nanos = frac(&mut c).ok_or_else(bad)?,
            Tok::OptFrac => {
                if c.s.starts_with(['.', ',']) && c.s[1..].starts_with(|d: char| d.is_ascii_digit())
                {
                    c.s = &c.s[1..];
                    nanos = frac(&mut c).ok_or_else(bad)?;
                }
            }
            Tok::AmPm => {
                let s = c.s.get(..2).ok_or_else(bad)?;
                pm = Some(match s.to_ascii_lowercase().as_str() {
                    "am" => false,
                    "pm" => true,
                    _ => return Err(bad()),
                });
                c.s = &c.s[2..];
            }
            Tok::ZoneName => {
                let n = c.s.bytes().take_while(u8::is_ascii_alphabetic).count();
                let name = &c.s[..n];
                if name.is_empty() {
                    return Err(bad());
                }
                c.s = &c.s[n..];
                offset = Some(zone_abbr(name));
                // Forms like "GMT+2" / "UTC-07:00".
                if c.s.starts_with(['+', '-']) {
                    offset = Some(parse_offset(&mut c).ok_or_else(bad)?);
                }
            }
            Tok::Offset => offset = Some(parse_offset(&mut c).ok_or_else(bad)?),
        }
    }
    if !c.s.is_empty() {
        return Err(format!("timestamp {text:?} has extra text {:?}", c.s));
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let year = match year {
        Some(y) => y,
        None => i64::from(
            chrono::DateTime::from_timestamp_nanos(i64::try_from(now_ns).unwrap_or(i64::MAX))
                .year(),
        ),
    };
    let naive = NaiveDate::from_ymd_opt(i32::try_from(year).map_err(|_| bad())?, month, day)
        .and_then(|d| d.and_hms_nano_opt(hour, min, sec, nanos))
        .ok_or_else(|| format!("timestamp {text:?} is not a valid date/time"))?;
    let utc_secs = match (offset, loc) {
        (Some(off), _) => naive.and_utc().timestamp() - i64::from(off),
        (None, Location::Utc) => naive.and_utc().timestamp(),
        (None, Location::Local) => match chrono::Local.from_local_datetime(&naive) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp(),
            LocalResult::None => naive.and_utc().timestamp(),
        },
    };
    to_nanos(utc_secs, nanos).ok_or_else(|| format!("timestamp {text:?} is before 1970"))
}

fn to_nanos(secs: i64, nanos: u32) -> Option<u64> {
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::from(nanos))
}

fn frac(c: &mut Cur) -> Option<u32> {
    let n = c.s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let used = n.min(9);
    let mut v: u32 = c.s[..used].parse().ok()?;
    for _ in used..9 {
        v *= 10;
    }
    c.s = &c.s[n..];
    Some(v)
}

/// `Z`, `±HH`, `±HHMM`, `±HH:MM`, `±HH:MM:SS` → seconds east of UTC.
fn parse_offset(c: &mut Cur) -> Option<i32> {
    if let Some(r) = c.s.strip_prefix(['Z', 'z']) {
        c.s = r;
        return Some(0);
    }
    let sign = match c.s.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    c.s = &c.s[1..];
    let mut parts = [0i32; 3];
    for (i, p) in parts.iter_mut().enumerate() {
        if i > 0 {
            let r = c.s.strip_prefix(':').unwrap_or(c.s);
            if !r.starts_with(|d: char| d.is_ascii_digit()) {
                break;
            }
            c.s = r;
        }
        let n = c.s.bytes().take(2).take_while(u8::is_ascii_digit).count();
        if n != 2 {
            return if i == 0 {
                None
            } else {
                Some(sign * (parts[0] * 3600 + parts[1] * 60))
            };
        }
        *p = c.s[..2].parse().ok()?;
        c.s = &c.s[2..];
    }
    Some(sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]))
}

/// Offsets of common zone abbreviations; unknown ones are UTC (as Go does).
fn zone_abbr(name: &str) -> i32 {
    let h = match name.to_ascii_uppercase().as_str() {
        "EST" => -5,
        "EDT" | "AST" => -4,
        "CST" => -6,
        "CDT" => -5,
        "MST" => -7,
        "MDT" => -6,
        "PST" => -8,
        "PDT" => -7,
        "CET" => 1,
        "CEST" | "EET" => 2,
        "EEST" => 3,
        "JST" | "KST" => 9,
        _ => 0,
    };
    h * 3600
}

/// Epoch layouts: `s`, `ms`, `us`, `ns`, `s.ms`, `s.us`, `s.ns`.
pub fn epoch_unit(layout: &str) -> Option<u64> {
    Some(match layout {
        "s" | "s.ms" | "s.us" | "s.ns" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" => 1_000,
        "ns" => 1,
        _ => return None,
    })
}

/// Parses an epoch value (int, float or numeric string) in units of `unit_ns` nanoseconds.
pub fn parse_epoch(v: &Value, unit_ns: u64) -> Result<u64, String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => return Err(format!("cannot parse {other} as an epoch timestamp")),
    };
    let bad = || format!("cannot parse {text:?} as an epoch timestamp");
    if text.contains(['e', 'E']) {
        let f: f64 = text.parse().map_err(|_| bad())?;
        let ns = f * unit_ns as f64;
        if !(0.0..1.8e19).contains(&ns) {
            return Err(bad());
        }
        return Ok(ns as u64);
    }
    let (int, fr) = text.split_once('.').unwrap_or((&text, ""));
    let int: u64 = int.parse().map_err(|_| bad())?;
    if !fr.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Fraction of one unit, to nanosecond precision.
    let mut frac_ns: u64 = 0;
    let mut scale = unit_ns;
    for d in fr.bytes() {
        scale /= 10;
        frac_ns += u64::from(d - b'0') * scale;
    }
    int.checked_mul(unit_ns)
        .and_then(|v| v.checked_add(frac_ns))
        .ok_or_else(bad)
}
