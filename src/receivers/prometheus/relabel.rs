//! Prometheus `relabel_configs` / `metric_relabel_configs`, as Prometheus 2.42 behaves
//! (`model/relabel/relabel.go`).
//!
//! # Contract
//!
//! * [`RelabelConfig`] is one rule as written in YAML, with Prometheus' keys and defaults
//!   (`separator: ";"`, `regex: "(.*)"`, `replacement: "$1"`, `action: replace`). `action` is
//!   matched case-insensitively, as Prometheus does. [`RelabelConfig::check`] reports every
//!   problem Prometheus' config loader would refuse, as `(key, message)` pairs;
//!   [`RelabelConfig::compile`] turns a rule without problems into a [`Rule`].
//! * The regex is anchored by textual wrapping, `^(?:regex)$`, exactly as Prometheus does it.
//!   Go's RE2 dialect is translated to the `regex` crate's before compiling: `\d \w \s \b` (and
//!   their negations) are ASCII-only as in Go, `\Q…\E` quotes, `\123` is an octal escape, a `{`
//!   that does not start a valid repetition is a literal, a `[` inside a class is a literal, and
//!   repetition counts above 1000 are refused. Other RE2 syntax means the same in both.
//! * [`process`] applies the rules in order to a [`Labels`] set. The input may be in any order
//!   (names are expected to be unique); the output is sorted by name. It returns `false` when a
//!   `keep`/`drop`/`keepequal`/`dropequal` rule drops the set, and then `labels` is cleared.
//! * Setting a label to the empty string deletes it (Prometheus' `labels.Builder` semantics);
//!   labels that arrive with an empty value are left alone.
//! * The source value is the values of `source_labels` (a missing label is `""`) joined by
//!   `separator`. Per action:
//!   * `replace`: if the regex matches, `target_label` and `replacement` are expanded with the
//!     captures (Go's `Regexp.Expand`: `$1`, `${1}`, `$name`, `${name}`, `$$`; the longest name
//!     wins, so `$1x` is the group named `1x`, i.e. empty; `$01` is a name, not group 1; a `$`
//!     that starts no reference is literal). An expanded target that is not a valid label name
//!     deletes the label named by the *unexpanded* `target_label`, and so does an empty value
//!     (2.42 behaviour: with a templated `target_label` neither deletes anything). Otherwise
//!     the target is set. No match: nothing happens.
//!   * `keep` / `drop`: by regex match of the source value.
//!   * `keepequal` / `dropequal`: by equality of the source value and `target_label`'s value.
//!   * `hashmod`: target = `u64::from_be_bytes(md5(source)[8..16]) % modulus`, in decimal.
//!   * `labelmap`: every label whose name matches gets its value copied to the name made by
//!     replacing the match(es) in that name with `replacement` (Go's `ReplaceAllString`); the
//!     labels are those the rule started with, and the copies are applied in name order. As in
//!     Prometheus the new name is not validated (it can even be empty).
//!   * `labeldrop` / `labelkeep`: remove labels whose names match / do not match.
//!   * `lowercase` / `uppercase`: target = the source value mapped per character with Go's
//!     simple (one-to-one) Unicode case mapping (`ß` stays `ß`; no final-sigma rule).
//! * [`process_with`] reuses a caller's [`Scratch`] across calls (one per worker). With it,
//!   `keep`, `drop`, `keepequal`, `dropequal`, `labeldrop` and `labelkeep` never allocate;
//!   `replace` allocates only when its regex matches and a `$` template needs the captures, and
//!   setting a label allocates only when the label is new (an equal value is left untouched, a
//!   changed one reuses its buffer); `labelmap` allocates per matching label.
//!
//! Known differences from Prometheus 2.42, all at the edges: an explicit `regex: "(.*)"` is
//! accepted for `keepequal`/`dropequal` (Prometheus compares the compiled regex by identity and
//! refuses any explicit `regex`); non-ASCII letters in `$name` references and in case mapping
//! follow Rust's Unicode tables, not Go's (they differ only for characters of recent Unicode
//! versions); syntax only the `regex` crate knows (`(?x)`, `(?<name>…)`) is accepted, not
//! refused.

use std::fmt;
use std::fmt::Write as _;
use std::str::FromStr;

use md5::{Digest, Md5};
use regex::{Captures, Regex};
use serde::{Deserialize, Deserializer, Serialize};

/// A relabel action. Serialized with Prometheus' names; deserialized case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Set `target_label` to the expanded `replacement` when the regex matches.
    #[default]
    Replace,
    /// Drop the set when the regex does not match the source value.
    Keep,
    /// Drop the set when the regex matches the source value.
    Drop,
    /// Drop the set when the source value differs from `target_label`'s value.
    KeepEqual,
    /// Drop the set when the source value equals `target_label`'s value.
    DropEqual,
    /// Set `target_label` to a hash of the source value modulo `modulus`.
    HashMod,
    /// Copy matching labels to names made from `replacement`.
    LabelMap,
    /// Remove labels whose names match the regex.
    LabelDrop,
    /// Remove labels whose names do not match the regex.
    LabelKeep,
    /// Set `target_label` to the lowercased source value.
    Lowercase,
    /// Set `target_label` to the uppercased source value.
    Uppercase,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// Prometheus' name of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;

    /// Case-insensitive, as Prometheus' `Action.UnmarshalYAML` (`strings.ToLower`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower: String = s.chars().map(go_to_lower).collect();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| format!("unknown relabel action {s:?}"))
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";

/// One rule as written in YAML, Prometheus' keys and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` into the source value.
    pub source_labels: Vec<String>,
    /// Joins the source label values. Default `;`.
    pub separator: String,
    /// Matched against the source value (or label names), fully anchored. Default `(.*)`.
    pub regex: String,
    /// For `hashmod`: the modulus, must be non-zero.
    pub modulus: u64,
    /// The label written (`replace`, `hashmod`, `lowercase`, `uppercase`) or compared
    /// (`keepequal`, `dropequal`). May contain `$` references for `replace`.
    pub target_label: String,
    /// The value written by `replace`, the name written by `labelmap`. Default `$1`.
    pub replacement: String,
    /// What the rule does. Default `replace`.
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            regex: DEFAULT_REGEX.to_owned(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_owned(),
            action: Action::Replace,
        }
    }
}

impl RelabelConfig {
    /// Every problem, as `(key, message)` pairs: the checks of Prometheus' config loader
    /// (source label names, regex syntax, then `Config.Validate`). Empty when the rule is valid.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        self.analyze().0
    }

    /// Compiles the rule. `Err` is the first problem [`check`](Self::check) reports, as
    /// `"key: message"`.
    pub fn compile(&self) -> Result<Rule, String> {
        let (problems, regex) = self.analyze();
        if let Some((key, message)) = problems.into_iter().next() {
            return Err(format!("{key}: {message}"));
        }
        let Some(regex) = regex else {
            return Err("regex: invalid regex".to_owned());
        };
        Ok(Rule {
            action: self.action,
            source_labels: self.source_labels.clone().into_boxed_slice(),
            separator: self.separator.clone(),
            regex,
            modulus: self.modulus,
            target_label: self.target_label.clone(),
            target_is_template: self.target_label.contains('$'),
            replacement: self.replacement.clone(),
            replacement_is_template: self.replacement.contains('$'),
        })
    }

    fn analyze(&self) -> (Vec<(&'static str, String)>, Option<Regex>) {
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        let action = self.action;

        for name in &self.source_labels {
            if !is_valid_label_name(name) {
                problems.push((
                    "source_labels",
                    format!("{name:?} is not a valid label name"),
                ));
            }
        }
        let regex = match compile_anchored(&self.regex) {
            Ok(re) => Some(re),
            Err(e) => {
                problems.push(("regex", format!("invalid regex: {e}")));
                None
            }
        };

        use Action::*;
        let target = self.target_label.as_str();
        if action == HashMod && self.modulus == 0 {
            problems.push((
                "modulus",
                "must be set (non-zero) for hashmod action".to_owned(),
            ));
        }
        let needs_target = matches!(
            action,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && target.is_empty() {
            problems.push(("target_label", format!("required for {action} action")));
        }
        // 2.42 checks these targets only against the template syntax, not as label names.
        let template_target = matches!(
            action,
            Replace | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if template_target && !target.is_empty() && !is_relabel_target(target) {
            problems.push((
                "target_label",
                format!("{target:?} is invalid for {action} action"),
            ));
        }
        if action == HashMod && !target.is_empty() && !is_valid_label_name(target) {
            problems.push((
                "target_label",
                format!("{target:?} is invalid for {action} action"),
            ));
        }
        let no_replacement = matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual);
        if no_replacement && self.replacement != DEFAULT_REPLACEMENT {
            problems.push(("replacement", format!("can not be set for {action} action")));
        }
        if action == LabelMap && !is_relabel_target(&self.replacement) {
            let r = &self.replacement;
            problems.push((
                "replacement",
                format!("{r:?} is invalid for {action} action"),
            ));
        }
        if matches!(action, KeepEqual | DropEqual) {
            let only = "action takes only source_labels and target_label";
            if self.regex != DEFAULT_REGEX {
                problems.push(("regex", format!("can not be set for {action} {only}")));
            }
            if self.modulus != 0 {
                problems.push(("modulus", format!("can not be set for {action} {only}")));
            }
            if self.separator != DEFAULT_SEPARATOR {
                problems.push(("separator", format!("can not be set for {action} {only}")));
            }
        }
        if matches!(action, LabelDrop | LabelKeep) {
            let only = "action takes only regex";
            if !self.source_labels.is_empty() {
                problems.push((
                    "source_labels",
                    format!("can not be set for {action} {only}"),
                ));
            }
            if !target.is_empty() {
                problems.push((
                    "target_label",
                    format!("can not be set for {action} {only}"),
                ));
            }
            if self.modulus != 0 {
                problems.push(("modulus", format!("can not be set for {action} {only}")));
            }
            if self.separator != DEFAULT_SEPARATOR {
                problems.push(("separator", format!("can not be set for {action} {only}")));
            }
            if self.replacement != DEFAULT_REPLACEMENT {
                problems.push(("replacement", format!("can not be set for {action} {only}")));
            }
        }
        (problems, regex)
    }
}

/// A compiled [`RelabelConfig`].
#[derive(Debug, Clone)]
pub struct Rule {
    action: Action,
    source_labels: Box<[String]>,
    separator: String,
    regex: Regex,
    modulus: u64,
    target_label: String,
    target_is_template: bool,
    replacement: String,
    replacement_is_template: bool,
}

impl Rule {
    /// The rule's action.
    pub fn action(&self) -> Action {
        self.action
    }
}

/// A label set being relabelled: (name, value) pairs; order not significant on input; sorted
/// by name on output.
pub type Labels = Vec<(String, String)>;

/// Reusable buffers for [`process_with`]. Keep one per worker to make relabelling allocation-free
/// when rules change nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    joined: String,
    value: String,
    target: String,
    pending: Vec<(String, String)>,
}

/// Applies the rules in order. Returns false when the set is dropped (keep/drop/keepequal/
/// dropequal), and then `labels` is cleared. Labels whose value becomes empty are removed.
pub fn process(rules: &[Rule], labels: &mut Labels) -> bool {
    process_with(rules, labels, &mut Scratch::default())
}

/// [`process`] with caller-owned buffers.
pub fn process_with(rules: &[Rule], labels: &mut Labels, scratch: &mut Scratch) -> bool {
    if !labels.windows(2).all(|w| matches!(w, [a, b] if a.0 <= b.0)) {
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    for rule in rules {
        if !rule.apply(labels, scratch) {
            labels.clear();
            return false;
        }
    }
    true
}

impl Rule {
    fn apply(&self, labels: &mut Labels, scratch: &mut Scratch) -> bool {
        let Scratch {
            joined,
            value,
            target,
            pending,
        } = scratch;
        match self.action {
            Action::Keep => self.regex.is_match(self.source_value(labels, joined)),
            Action::Drop => !self.regex.is_match(self.source_value(labels, joined)),
            Action::KeepEqual => {
                self.source_value(labels, joined) == get(labels, &self.target_label)
            }
            Action::DropEqual => {
                self.source_value(labels, joined) != get(labels, &self.target_label)
            }
            Action::Replace => {
                self.replace(labels, joined, value, target);
                true
            }
            Action::Lowercase | Action::Uppercase => {
                let src = self.source_value(labels, joined);
                value.clear();
                let map = if self.action == Action::Lowercase {
                    go_to_lower
                } else {
                    go_to_upper
                };
                if src.is_ascii() {
                    value.push_str(src);
                    if self.action == Action::Lowercase {
                        value.make_ascii_lowercase();
                    } else {
                        value.make_ascii_uppercase();
                    }
                } else {
                    value.extend(src.chars().map(map));
                }
                set(labels, &self.target_label, value);
                true
            }
            Action::HashMod => {
                let digest: [u8; 16] = Md5::digest(self.source_value(labels, joined)).into();
                let [_, _, _, _, _, _, _, _, a, b, c, d, e, f, g, h] = digest;
                if let Some(shard) =
                    u64::from_be_bytes([a, b, c, d, e, f, g, h]).checked_rem(self.modulus)
                {
                    value.clear();
                    let _ = write!(value, "{shard}");
                    set(labels, &self.target_label, value);
                }
                true
            }
            Action::LabelMap => {
                pending.clear();
                for (name, val) in labels.iter() {
                    if self.regex.is_match(name) {
                        let expander = GoExpander {
                            template: &self.replacement,
                        };
                        let new_name = self.regex.replace_all(name, expander).into_owned();
                        pending.push((new_name, val.clone()));
                    }
                }
                for (name, val) in pending.drain(..) {
                    set(labels, &name, &val);
                }
                true
            }
            Action::LabelDrop => {
                labels.retain(|(name, _)| !self.regex.is_match(name));
                true
            }
            Action::LabelKeep => {
                labels.retain(|(name, _)| self.regex.is_match(name));
                true
            }
        }
    }

    /// The values of `source_labels` joined by `separator`; borrows the label's value when
    /// there is a single source label.
    fn source_value<'a>(&self, labels: &'a [(String, String)], joined: &'a mut String) -> &'a str {
        match &*self.source_labels {
            [] => "",
            [one] => get(labels, one),
            [first, rest @ ..] => {
                joined.clear();
                joined.push_str(get(labels, first));
                for name in rest {
                    joined.push_str(&self.separator);
                    joined.push_str(get(labels, name));
                }
                joined
            }
        }
    }

    fn replace(
        &self,
        labels: &mut Labels,
        joined: &mut String,
        value: &mut String,
        target: &mut String,
    ) {
        let src = self.source_value(labels, joined);
        if !self.regex.is_match(src) {
            return;
        }
        value.clear();
        target.clear();
        if self.target_is_template || self.replacement_is_template {
            let Some(caps) = self.regex.captures(src) else {
                return;
            };
            if self.target_is_template {
                go_expand(&self.target_label, &caps, target);
            }
            if self.replacement_is_template {
                go_expand(&self.replacement, &caps, value);
            }
        }
        let target_name = if self.target_is_template {
            target.as_str()
        } else {
            self.target_label.as_str()
        };
        let new_value = if self.replacement_is_template {
            value.as_str()
        } else {
            self.replacement.as_str()
        };
        if !is_valid_label_name(target_name) || new_value.is_empty() {
            // Prometheus 2.42 deletes the unexpanded target_label in both cases.
            del(labels, &self.target_label);
            return;
        }
        set(labels, target_name, new_value);
    }
}

fn find(labels: &[(String, String)], name: &str) -> Result<usize, usize> {
    labels.binary_search_by(|(n, _)| n.as_str().cmp(name))
}

/// The value of `name`, `""` when missing. `labels` is sorted.
fn get<'a>(labels: &'a [(String, String)], name: &str) -> &'a str {
    match find(labels, name) {
        Ok(i) => labels.get(i).map_or("", |(_, v)| v.as_str()),
        Err(_) => "",
    }
}

/// Sets `name` to `value` keeping `labels` sorted; an empty value deletes. Does not allocate
/// when the value is unchanged, and reuses the old value's buffer when it changes.
fn set(labels: &mut Labels, name: &str, value: &str) {
    if value.is_empty() {
        del(labels, name);
        return;
    }
    match find(labels, name) {
        Ok(i) => {
            if let Some((_, old)) = labels.get_mut(i) {
                if old != value {
                    value.clone_into(old);
                }
            }
        }
        Err(i) => labels.insert(i, (name.to_owned(), value.to_owned())),
    }
}

fn del(labels: &mut Labels, name: &str) {
    if let Ok(i) = find(labels, name) {
        labels.remove(i);
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Prometheus' `relabelTarget`, `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`: word characters
/// and `$name` / `${name}` references, not starting with a digit.
fn is_relabel_target(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(&c) if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {}
        _ => return false,
    }
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if is_word_byte(c) {
            i += 1;
        } else if c == b'$' {
            let braced = b.get(i + 1) == Some(&b'{');
            let start = if braced { i + 2 } else { i + 1 };
            let mut end = start;
            while b.get(end).is_some_and(|&c| is_word_byte(c)) {
                end += 1;
            }
            if end == start {
                return false;
            }
            if braced {
                if b.get(end) != Some(&b'}') {
                    return false;
                }
                end += 1;
            }
            i = end;
        } else {
            return false;
        }
    }
    true
}

/// Appends `template` expanded with `caps` to `dst`, following Go's `Regexp.Expand`.
fn go_expand(template: &str, caps: &Captures<'_>, dst: &mut String) {
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        let (before, after) = rest.split_at(pos);
        dst.push_str(before);
        let after = after.strip_prefix('$').unwrap_or(after);
        if let Some(r) = after.strip_prefix('$') {
            dst.push('$');
            rest = r;
            continue;
        }
        match go_extract(after) {
            Some((name, r)) => {
                let group = match go_group_number(name) {
                    Some(n) => caps.get(n),
                    None => caps.name(name),
                };
                if let Some(m) = group {
                    dst.push_str(m.as_str());
                }
                rest = r;
            }
            None => {
                dst.push('$');
                rest = after;
            }
        }
    }
    dst.push_str(rest);
}

/// Go's `extract`: the reference name after a `$` (`name` or `{name}`, name made of letters,
/// digits and `_`) and the text after it; `None` when malformed.
fn go_extract(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let (name, rest) = body.split_at(end);
    if braced {
        return rest.strip_prefix('}').map(|r| (name, r));
    }
    Some((name, rest))
}

/// Go's group-number rule: ASCII digits only, below 1e8 while parsing, no leading zero.
fn go_group_number(name: &str) -> Option<usize> {
    let mut num: usize = 0;
    for b in name.bytes() {
        if !b.is_ascii_digit() || num >= 100_000_000 {
            return None;
        }
        num = num * 10 + usize::from(b - b'0');
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    Some(num)
}

/// `Regex::replace_all` with Go's expansion of the replacement.
struct GoExpander<'t> {
    template: &'t str,
}

impl regex::Replacer for GoExpander<'_> {
    fn replace_append(&mut self, caps: &Captures<'_>, dst: &mut String) {
        go_expand(self.template, caps, dst);
    }
}

/// Go's `unicode.ToLower`: the simple (one-to-one) mapping.
fn go_to_lower(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        // Only U+0130 (İ) has a multi-character full lowercase; its simple one is `i`.
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

/// Go's `unicode.ToUpper`: the simple (one-to-one) mapping.
fn go_to_upper(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        // Full mappings that expand (ß → SS, ligatures, Greek with iota subscript): the simple
        // mapping is the character itself, except for the lowercase Greek letters with
        // ypogegrammeni, which map to their titlecase forms.
        _ => {
            let simple = match u32::from(c) {
                cp @ (0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7) => cp + 8,
                0x1FB3 => 0x1FBC,
                0x1FC3 => 0x1FCC,
                0x1FF3 => 0x1FFC,
                _ => return c,
            };
            char::from_u32(simple).unwrap_or(c)
        }
    }
}

/// Compiles `^(?:pattern)$` after translating Go's regex dialect.
fn compile_anchored(pattern: &str) -> Result<Regex, String> {
    let translated = translate_go_regex(pattern)?;
    Regex::new(&format!("^(?:{translated})$")).map_err(|e| {
        let text = e.to_string();
        // The crate's message quotes the (translated) pattern over several lines; keep the
        // line that says what is wrong.
        text.lines()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .map_or_else(|| text.replace('\n', " "), str::to_owned)
    })
}

const ASCII_WORD: &str = "0-9A-Za-z_";
const ASCII_DIGIT: &str = "0-9";
const ASCII_SPACE: &str = r"\t\n\x0C\r\x20";

/// The ASCII ranges for a Perl class letter (`d`, `s`, `w`), if it is one.
fn perl_class(c: char) -> Option<(&'static str, bool)> {
    match c {
        'd' => Some((ASCII_DIGIT, false)),
        'D' => Some((ASCII_DIGIT, true)),
        's' => Some((ASCII_SPACE, false)),
        'S' => Some((ASCII_SPACE, true)),
        'w' => Some((ASCII_WORD, false)),
        'W' => Some((ASCII_WORD, true)),
        _ => None,
    }
}

/// Rewrites a Go (RE2) pattern so the `regex` crate gives it Go's meaning.
fn translate_go_regex(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => translate_escape(&mut it, &mut out, false),
            '[' => translate_class(&mut it, &mut out)?,
            '{' => match go_repeat(it.as_str()) {
                Some((len, min, max)) => {
                    if min > 1000 || max.is_some_and(|m| m > 1000 || m < min) {
                        let rep = it.as_str().get(..len).unwrap_or("");
                        return Err(format!("invalid repeat count: {{{rep}"));
                    }
                    out.push('{');
                    for _ in 0..len {
                        if let Some(c) = it.next() {
                            out.push(c);
                        }
                    }
                }
                None => out.push_str(r"\{"),
            },
            '}' => out.push_str(r"\}"),
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Go's `parseRepeat` on the text after `{`: `Some((length through '}', min, max))` when it is a
/// repetition (`max` `None` = unbounded). Counts of 1e8 and more are reported as 1e8.
fn go_repeat(s: &str) -> Option<(usize, u64, Option<u64>)> {
    fn int(s: &str) -> Option<(u64, &str)> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (num, rest) = s.split_at(digits);
        if num.is_empty() || (num.len() > 1 && num.starts_with('0')) {
            return None;
        }
        let value = if num.len() >= 9 {
            100_000_000
        } else {
            num.parse().ok()?
        };
        Some((value, rest))
    }
    let (min, rest) = int(s)?;
    let (max, rest) = match rest.strip_prefix(',') {
        None => (Some(min), rest),
        Some(r) if r.starts_with('}') => (None, r),
        Some(r) => {
            let (max, r) = int(r)?;
            (Some(max), r)
        }
    };
    let rest = rest.strip_prefix('}')?;
    Some((s.len() - rest.len(), min, max))
}

/// Copies the escape after a `\`; `in_class` selects the form for Perl classes.
fn translate_escape(it: &mut std::str::Chars<'_>, out: &mut String, in_class: bool) {
    let Some(e) = it.next() else {
        out.push('\\');
        return;
    };
    if let Some((ranges, negated)) = perl_class(e) {
        match (in_class, negated) {
            (true, false) => out.push_str(ranges),
            _ => {
                out.push_str(if negated { "[^" } else { "[" });
                out.push_str(ranges);
                out.push(']');
            }
        }
        return;
    }
    match e {
        'b' | 'B' if !in_class => {
            out.push_str("(?-u:\\");
            out.push(e);
            out.push(')');
        }
        'Q' if !in_class => {
            let rest = it.as_str();
            let (quoted, after) = match rest.find(r"\E") {
                Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i + 2..).unwrap_or("")),
                None => (rest, ""),
            };
            out.push_str(&regex::escape(quoted));
            *it = after.chars();
        }
        '0'..='7' => {
            let rest = it.as_str();
            let more = rest
                .bytes()
                .take(2)
                .take_while(|b| (b'0'..=b'7').contains(b))
                .count();
            if e != '0' && more == 0 {
                // A backreference: Go refuses it, and so will the regex crate.
                out.push('\\');
                out.push(e);
                return;
            }
            let digits = rest.get(..more).unwrap_or("");
            let value = digits.bytes().fold(u32::from(e) - u32::from('0'), |v, b| {
                v * 8 + u32::from(b - b'0')
            });
            let _ = write!(out, "\\x{{{value:X}}}");
            *it = rest.get(more..).unwrap_or("").chars();
        }
        'p' | 'P' | 'x' => {
            // `\pL`, `\p{Greek}`, `\x41`, `\x{263a}`: copy through so the braces stay intact.
            out.push('\\');
            out.push(e);
            let rest = it.as_str();
            let len = if rest.starts_with('{') {
                rest.find('}').map_or(rest.len(), |i| i + 1)
            } else if e == 'x' {
                rest.chars().take(2).map(char::len_utf8).sum()
            } else {
                rest.chars().next().map_or(0, char::len_utf8)
            };
            out.push_str(rest.get(..len).unwrap_or(""));
            *it = rest.get(len..).unwrap_or("").chars();
        }
        _ => {
            out.push('\\');
            out.push(e);
        }
    }
}

/// Go's POSIX class names (`[:alpha:]`, `[:^alpha:]`); the regex crate has the same ones.
const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Translates a bracketed class; `it` is just after the `[`.
fn translate_class(it: &mut std::str::Chars<'_>, out: &mut String) -> Result<(), String> {
    out.push('[');
    if it.as_str().starts_with('^') {
        it.next();
        out.push('^');
    }
    let mut first = true;
    loop {
        let rest = it.as_str();
        if rest.is_empty() {
            // Unclosed: the regex crate reports it, as Go does.
            return Ok(());
        }
        if rest.starts_with(']') && !first {
            it.next();
            out.push(']');
            return Ok(());
        }
        first = false;
        // POSIX class `[:alpha:]` (same names and meaning in both dialects).
        if let Some(after) = rest.strip_prefix("[:") {
            if let Some(i) = after.find(":]") {
                let name = after.get(..i).unwrap_or("");
                if !POSIX_CLASSES.contains(&name.strip_prefix('^').unwrap_or(name)) {
                    return Err(format!("invalid character class range: [:{name}:]"));
                }
                let len = i + 4;
                out.push_str(rest.get(..len).unwrap_or(""));
                *it = rest.get(len..).unwrap_or("").chars();
                continue;
            }
        }
        // Perl and Unicode classes cannot start a range.
        let mut probe = it.clone();
        if probe.next() == Some('\\') {
            if let Some(e) = probe.next() {
                if perl_class(e).is_some() || e == 'p' || e == 'P' {
                    it.next();
                    translate_escape(it, out, true);
                    continue;
                }
            }
        }
        class_char(it, out);
        // `a-z` is a range unless the `-` is followed by the closing `]`.
        let rest = it.as_str();
        if rest.starts_with('-') && !rest.starts_with("-]") && rest.len() > 1 {
            it.next();
            out.push('-');
            class_char(it, out);
        }
    }
}

/// One class character (literal or escape), written so the regex crate reads it literally.
fn class_char(it: &mut std::str::Chars<'_>, out: &mut String) {
    match it.next() {
        Some('\\') => translate_escape(it, out, true),
        Some(c) => {
            if matches!(c, '[' | ']' | '&' | '~' | '-' | '^') {
                out.push('\\');
            }
            out.push(c);
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn yaml_rules(yaml: &str) -> Vec<Rule> {
        let configs: Vec<RelabelConfig> = serde_norway::from_str(yaml).expect("yaml");
        configs
            .iter()
            .map(|c| c.compile().unwrap_or_else(|e| panic!("compile {c:?}: {e}")))
            .collect()
    }

    /// Runs `yaml` rules over `input`; `None` = dropped.
    fn run(yaml: &str, input: &[(&str, &str)]) -> Option<Labels> {
        let rules = yaml_rules(yaml);
        let mut set = labels(input);
        let kept = process(&rules, &mut set);
        if kept {
            Some(set)
        } else {
            assert!(set.is_empty(), "a dropped set is cleared");
            None
        }
    }

    struct Case {
        name: &'static str,
        yaml: &'static str,
        input: &'static [(&'static str, &'static str)],
        want: Option<&'static [(&'static str, &'static str)]>,
    }

    fn table(cases: &[Case]) {
        for case in cases {
            let got = run(case.yaml, case.input);
            let want = case.want.map(labels);
            assert_eq!(got, want, "case {:?}", case.name);
            // The scratch-reusing path gives the same answer, twice in a row.
            let rules = yaml_rules(case.yaml);
            let mut scratch = Scratch::default();
            for _ in 0..2 {
                let mut set = labels(case.input);
                let kept = process_with(&rules, &mut set, &mut scratch);
                assert_eq!(
                    kept.then_some(set),
                    case.want.map(labels),
                    "case {:?} (scratch)",
                    case.name
                );
            }
        }
    }

    #[test]
    fn replace() {
        table(&[
            Case {
                name: "docs: __address__ host to instance",
                yaml: r#"
- source_labels: [__address__]
  regex: '(.*):\d+'
  target_label: instance
  replacement: '${1}'
"#,
                input: &[("__address__", "node1.example.com:9100"), ("job", "node")],
                want: Some(&[
                    ("__address__", "node1.example.com:9100"),
                    ("instance", "node1.example.com"),
                    ("job", "node"),
                ]),
            },
            Case {
                name: "defaults copy the source value",
                yaml: "- {source_labels: [__address__], target_label: instance}",
                input: &[("__address__", "10.0.0.1:9100")],
                want: Some(&[
                    ("__address__", "10.0.0.1:9100"),
                    ("instance", "10.0.0.1:9100"),
                ]),
            },
            Case {
                name: "several sources, templated target",
                yaml: r#"
- source_labels: [__address__, __metrics_path__]
  regex: '([^:]+):(\d+);/(.*)'
  target_label: 'relabel_${2}'
  replacement: '${1}_${2}_${3}'
"#,
                input: &[
                    ("__metrics_path__", "/metrics"),
                    ("__address__", "localhost:9100"),
                ],
                want: Some(&[
                    ("__address__", "localhost:9100"),
                    ("__metrics_path__", "/metrics"),
                    ("relabel_9100", "localhost_9100_metrics"),
                ]),
            },
            Case {
                name: "custom separator, missing source label is empty",
                yaml: "- {source_labels: [a, missing, b], separator: '|', target_label: t}",
                input: &[("b", "2"), ("a", "1")],
                want: Some(&[("a", "1"), ("b", "2"), ("t", "1||2")]),
            },
            Case {
                name: "no source labels: value is empty string, literal replacement",
                yaml: "- {target_label: env, replacement: prod}",
                input: &[("job", "x")],
                want: Some(&[("env", "prod"), ("job", "x")]),
            },
            Case {
                name: "no match: nothing happens",
                yaml: "- {source_labels: [a], regex: 'x(.*)', target_label: a, replacement: 'z'}",
                input: &[("a", "yes")],
                want: Some(&[("a", "yes")]),
            },
            Case {
                name: "anchored: foo does not match foobar",
                yaml: "- {source_labels: [a], regex: foo, target_label: hit, replacement: 'yes'}",
                input: &[("a", "foobar")],
                want: Some(&[("a", "foobar")]),
            },
            Case {
                name: "overwrites an existing target",
                yaml: "- {source_labels: [a], target_label: b}",
                input: &[("a", "new"), ("b", "old")],
                want: Some(&[("a", "new"), ("b", "new")]),
            },
            Case {
                name: "empty replacement deletes the target",
                yaml: "- {source_labels: [a], regex: 'x', target_label: b, replacement: ''}",
                input: &[("a", "x"), ("b", "old")],
                want: Some(&[("a", "x")]),
            },
            Case {
                name: "empty source value with $1 deletes the target",
                yaml: "- {source_labels: [missing], target_label: b}",
                input: &[("b", "old")],
                want: Some(&[]),
            },
            Case {
                name: "invalid expanded target is ignored",
                yaml: "- {source_labels: [a], regex: '(.*)', target_label: '$1', replacement: v}",
                input: &[("a", "1abc")],
                want: Some(&[("a", "1abc")]),
            },
            Case {
                name: "expanded target naming an existing label",
                yaml: "- {source_labels: [a], regex: '(.*)', target_label: '${1}', replacement: v}",
                input: &[("a", "b"), ("b", "old")],
                want: Some(&[("a", "b"), ("b", "v")]),
            },
            Case {
                name: "2.42: empty value with a templated target deletes nothing",
                yaml:
                    "- {source_labels: [a], regex: '(.*)', target_label: '${1}', replacement: ''}",
                input: &[("a", "b"), ("b", "old")],
                want: Some(&[("a", "b"), ("b", "old")]),
            },
            Case {
                name: "$1x is the group named 1x (empty), ${1}x is group 1 then x",
                yaml: r#"
- {source_labels: [a], regex: '(.*)', target_label: t1, replacement: '$1x'}
- {source_labels: [a], regex: '(.*)', target_label: t2, replacement: '${1}x'}
"#,
                input: &[("a", "v"), ("t1", "old")],
                want: Some(&[("a", "v"), ("t2", "vx")]),
            },
            Case {
                name: "named groups, $$, dangling $",
                yaml: r#"
- {source_labels: [a], regex: '(?P<host>[^:]+):(?P<port>\d+)', target_label: t, replacement: '$host-${port}$$ $ ${x'}
"#,
                input: &[("a", "h:80")],
                want: Some(&[("a", "h:80"), ("t", "h-80$ $ ${x")]),
            },
        ]);
    }

    #[test]
    fn keep_and_drop() {
        table(&[
            Case {
                name: "keep matching",
                yaml: "- {source_labels: [__name__], regex: 'up|scrape_.*', action: keep}",
                input: &[("__name__", "scrape_duration_seconds")],
                want: Some(&[("__name__", "scrape_duration_seconds")]),
            },
            Case {
                name: "keep is anchored: foo does not match foobar",
                yaml: "- {source_labels: [a], regex: foo, action: keep}",
                input: &[("a", "foobar")],
                want: None,
            },
            Case {
                name: "docs: drop by metric name",
                yaml: r#"
- source_labels: [__name__]
  separator: ','
  regex: '(container_tasks_state|container_memory_failures_total)'
  action: drop
"#,
                input: &[("__name__", "container_tasks_state"), ("id", "/")],
                want: None,
            },
            Case {
                name: "drop not matching keeps",
                yaml: "- {source_labels: [__name__], regex: 'go_.*', action: drop}",
                input: &[("__name__", "up")],
                want: Some(&[("__name__", "up")]),
            },
            Case {
                name: "drop on joined sources",
                yaml: "- {source_labels: [a, b], regex: '1;2', action: drop}",
                input: &[("a", "1"), ("b", "2")],
                want: None,
            },
            Case {
                name: "rules after a drop do not run",
                yaml: "- {source_labels: [a], action: drop, regex: '1'}\n- {target_label: x, replacement: y}",
                input: &[("a", "1")],
                want: None,
            },
        ]);
    }

    #[test]
    fn keepequal_and_dropequal() {
        table(&[
            Case {
                name: "keepequal equal",
                yaml: "- {source_labels: [__meta_port], target_label: __port__, action: keepequal}",
                input: &[("__meta_port", "80"), ("__port__", "80")],
                want: Some(&[("__meta_port", "80"), ("__port__", "80")]),
            },
            Case {
                name: "keepequal different",
                yaml: "- {source_labels: [a], target_label: b, action: KeepEqual}",
                input: &[("a", "1"), ("b", "2")],
                want: None,
            },
            Case {
                name: "keepequal: missing target equals empty source",
                yaml: "- {source_labels: [missing], target_label: b, action: keepequal}",
                input: &[("a", "1")],
                want: Some(&[("a", "1")]),
            },
            Case {
                name: "dropequal equal",
                yaml: "- {source_labels: [a, b], target_label: c, action: dropequal}",
                input: &[("a", "1"), ("b", "2"), ("c", "1;2")],
                want: None,
            },
            Case {
                name: "dropequal different",
                yaml: "- {source_labels: [a], target_label: b, action: dropequal}",
                input: &[("a", "1"), ("b", "2")],
                want: Some(&[("a", "1"), ("b", "2")]),
            },
        ]);
    }

    #[test]
    fn hashmod() {
        // Expected shards from python3: int.from_bytes(hashlib.md5(s).digest()[8:], "big") % m
        // md5("baz") = 73feffa4b7f6bb68 e44cf984c85f6e88 → 976 (mod 1000, Prometheus' own test)
        // md5("10.0.0.1:9100") = …4cfeac4083628b3d → 1 (mod 4)
        // md5("a;b") = …21960bf46f2ebd0a → 2 (mod 7); md5("") = …e9800998ecf8427e → 1 (mod 3)
        assert_eq!(0xe44c_f984_c85f_6e88_u64 % 1000, 976);
        assert_eq!(0x4cfe_ac40_8362_8b3d_u64 % 4, 1);
        table(&[
            Case {
                name: "prometheus test vector",
                yaml: "- {source_labels: [c], target_label: d, action: hashmod, modulus: 1000}",
                input: &[("a", "foo"), ("b", "bar"), ("c", "baz")],
                want: Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
            },
            Case {
                name: "docs: sharding, keep shard 1 of 4",
                yaml: r#"
- source_labels: [__address__]
  modulus: 4
  target_label: __tmp_hash
  action: hashmod
- source_labels: [__tmp_hash]
  regex: '1'
  action: keep
"#,
                input: &[("__address__", "10.0.0.1:9100")],
                want: Some(&[("__address__", "10.0.0.1:9100"), ("__tmp_hash", "1")]),
            },
            Case {
                name: "sharding drops other shards",
                yaml: "- {source_labels: [__address__], modulus: 4, target_label: h, action: hashmod}\n- {source_labels: [h], regex: '0', action: keep}",
                input: &[("__address__", "10.0.0.1:9100")],
                want: None,
            },
            Case {
                name: "joined sources",
                yaml: "- {source_labels: [x, y], target_label: h, action: hashmod, modulus: 7}",
                input: &[("x", "a"), ("y", "b")],
                want: Some(&[("h", "2"), ("x", "a"), ("y", "b")]),
            },
            Case {
                name: "empty source",
                yaml: "- {target_label: h, action: hashmod, modulus: 3}",
                input: &[],
                want: Some(&[("h", "1")]),
            },
        ]);
    }

    #[test]
    fn labelmap() {
        table(&[
            Case {
                name: "docs: kubernetes node labels",
                yaml: "- {action: labelmap, regex: '__meta_kubernetes_node_label_(.+)'}",
                input: &[
                    ("__meta_kubernetes_node_label_zone", "eu-1"),
                    ("__meta_kubernetes_node_label_kubernetes_io_os", "linux"),
                    ("__meta_kubernetes_node_name", "n1"),
                    ("job", "k8s"),
                ],
                want: Some(&[
                    ("__meta_kubernetes_node_label_kubernetes_io_os", "linux"),
                    ("__meta_kubernetes_node_label_zone", "eu-1"),
                    ("__meta_kubernetes_node_name", "n1"),
                    ("job", "k8s"),
                    ("kubernetes_io_os", "linux"),
                    ("zone", "eu-1"),
                ]),
            },
            Case {
                name: "replacement template, overwriting an existing label",
                yaml: "- {action: labelmap, regex: '__meta_(\\w+)_name', replacement: 'svc_$1'}",
                input: &[("__meta_consul_name", "web"), ("svc_consul", "old")],
                want: Some(&[("__meta_consul_name", "web"), ("svc_consul", "web")]),
            },
            Case {
                name: "a second labelmap sees the first one's output only where it matches",
                yaml: "- {action: labelmap, regex: '(a)|(b)', replacement: '${1}${2}_x'}\n- {action: labelmap, regex: '([ab])', replacement: '${1}2'}",
                input: &[("a", "1"), ("b", "2")],
                want: Some(&[
                    ("a", "1"),
                    ("a2", "1"),
                    ("a_x", "1"),
                    ("b", "2"),
                    ("b2", "2"),
                    ("b_x", "2"),
                ]),
            },
            Case {
                name: "snapshot: a target that also matches is not remapped",
                yaml: "- {action: labelmap, regex: '(.)(.*)', replacement: '${2}'}",
                input: &[("ab", "1"), ("b", "2")],
                // ab → b (overwrites b=2 with 1); b → "" name: an empty-named label, as Go.
                want: Some(&[("", "2"), ("ab", "1"), ("b", "1")]),
            },
            Case {
                name: "no match: nothing",
                yaml: "- {action: labelmap, regex: '__meta_(.+)'}",
                input: &[("job", "x")],
                want: Some(&[("job", "x")]),
            },
        ]);
    }

    #[test]
    fn labeldrop_and_labelkeep() {
        table(&[
            Case {
                name: "docs: labeldrop",
                yaml: "- {regex: 'kernelVersion', action: labeldrop}",
                input: &[
                    ("kernelVersion", "6.1"),
                    ("kernelVersionX", "1"),
                    ("job", "x"),
                ],
                want: Some(&[("job", "x"), ("kernelVersionX", "1")]),
            },
            Case {
                name: "labeldrop pattern",
                yaml: "- {regex: '__meta_.*|__tmp.*', action: labeldrop}",
                input: &[("__meta_a", "1"), ("__tmp_b", "2"), ("__address__", "h:1")],
                want: Some(&[("__address__", "h:1")]),
            },
            Case {
                name: "labelkeep",
                yaml: "- {regex: '__name__|job|instance', action: labelkeep}",
                input: &[
                    ("__name__", "up"),
                    ("job", "j"),
                    ("pod", "p"),
                    ("instancex", "i"),
                ],
                want: Some(&[("__name__", "up"), ("job", "j")]),
            },
            Case {
                name: "labelkeep everything away still keeps the (empty) set",
                yaml: "- {regex: 'nothing', action: labelkeep}",
                input: &[("a", "1")],
                want: Some(&[]),
            },
        ]);
    }

    #[test]
    fn lowercase_and_uppercase() {
        table(&[
            Case {
                name: "lowercase",
                yaml: "- {source_labels: [a], target_label: a_lower, action: lowercase}",
                input: &[("a", "Hello-WORLD")],
                want: Some(&[("a", "Hello-WORLD"), ("a_lower", "hello-world")]),
            },
            Case {
                name: "uppercase joined sources, into an existing label",
                yaml: "- {source_labels: [a, b], separator: '-', target_label: b, action: Uppercase}",
                input: &[("a", "x"), ("b", "y")],
                want: Some(&[("a", "x"), ("b", "X-Y")]),
            },
            Case {
                name: "Go's simple mapping: ß stays, final sigma not special, İ lowers to i",
                yaml: "- {source_labels: [a], target_label: u, action: uppercase}\n- {source_labels: [b], target_label: l, action: lowercase}",
                input: &[("a", "straße ﬁ ᾳ é"), ("b", "ΟΔΟΣ İ É")],
                want: Some(&[
                    ("a", "straße ﬁ ᾳ é"),
                    ("b", "ΟΔΟΣ İ É"),
                    ("l", "οδοσ i é"),
                    ("u", "STRAßE ﬁ ᾼ É"),
                ]),
            },
            Case {
                name: "empty source deletes the target",
                yaml: "- {source_labels: [missing], target_label: a, action: lowercase}",
                input: &[("a", "x")],
                want: Some(&[]),
            },
        ]);
    }

    #[test]
    fn sorts_unsorted_input_and_chains_rules() {
        let got = run(
            r#"
- {source_labels: [__address__], regex: '(.*):.*', target_label: instance}
- {regex: '__.*', action: labeldrop}
- {source_labels: [instance], regex: 'db.*', action: drop}
"#,
            &[("zone", "z"), ("__address__", "web:80"), ("app", "a")],
        );
        assert_eq!(
            got,
            Some(labels(&[("app", "a"), ("instance", "web"), ("zone", "z")]))
        );
        let mut set = labels(&[("b", "2"), ("a", "1")]);
        assert!(process(&[], &mut set));
        assert_eq!(set, labels(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn unchanged_values_keep_their_buffers() {
        let rules = yaml_rules("- {source_labels: [a], target_label: b}");
        let mut set = labels(&[("a", "same"), ("b", "same")]);
        let before = set.get(1).map(|(_, v)| v.as_ptr());
        assert!(process(&rules, &mut set));
        assert_eq!(set.get(1).map(|(_, v)| v.as_ptr()), before);
    }

    #[test]
    fn yaml_defaults() {
        let c: RelabelConfig =
            serde_norway::from_str("source_labels: [a]\ntarget_label: b\n").expect("yaml");
        assert_eq!(
            c,
            RelabelConfig {
                source_labels: vec!["a".to_owned()],
                separator: ";".to_owned(),
                regex: "(.*)".to_owned(),
                modulus: 0,
                target_label: "b".to_owned(),
                replacement: "$1".to_owned(),
                action: Action::Replace,
            }
        );
        assert_eq!(
            c,
            RelabelConfig {
                source_labels: vec!["a".into()],
                target_label: "b".into(),
                ..Default::default()
            }
        );
        let c: RelabelConfig = serde_norway::from_str("{}").expect("yaml");
        assert_eq!(c, RelabelConfig::default());
        for (text, want) in [
            ("HashMod", Action::HashMod),
            ("LABELMAP", Action::LabelMap),
            ("keepequal", Action::KeepEqual),
        ] {
            let c: RelabelConfig =
                serde_norway::from_str(&format!("action: {text}")).expect("yaml");
            assert_eq!(c.action, want);
        }
        for action in Action::ALL {
            let text = serde_norway::to_string(&action).expect("yaml");
            assert_eq!(text.trim(), action.as_str());
            let back: Action = serde_norway::from_str(&text).expect("yaml");
            assert_eq!(back, action);
        }
        let err =
            serde_norway::from_str::<RelabelConfig>("action: rename").expect_err("unknown action");
        assert!(
            err.to_string()
                .contains("unknown relabel action \"rename\""),
            "{err}"
        );
        let err = serde_norway::from_str::<RelabelConfig>("target: x").expect_err("unknown field");
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    fn problems(yaml: &str) -> Vec<(&'static str, String)> {
        let c: RelabelConfig = serde_norway::from_str(yaml).expect("yaml");
        c.check()
    }

    #[test]
    fn check_errors() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("{source_labels: [a], target_label: b}", &[]),
            ("{action: keep, source_labels: [a], regex: x}", &[]),
            ("{action: labelmap, regex: 'x_(.+)', replacement: 'y_${1}'}", &[]),
            ("{action: hashmod, source_labels: [a], target_label: t, modulus: 2}", &[]),
            ("{target_label: '${1}_x'}", &[]),
            ("{action: lowercase, target_label: l}", &[]),
            ("{action: keepequal, source_labels: [a], target_label: b}", &[]),
            ("{action: labeldrop, regex: a}", &[]),
            ("{source_labels: ['a-b', '1x'], target_label: t}", &[
                ("source_labels", "\"a-b\" is not a valid label name"),
                ("source_labels", "\"1x\" is not a valid label name"),
            ]),
            ("{regex: '(', target_label: t}", &[("regex", "invalid regex: ")]),
            ("{regex: 'a{1001}', action: keep}", &[("regex", "invalid regex: invalid repeat count")]),
            ("{regex: '(a)\\1', action: keep}", &[("regex", "invalid regex: ")]),
            ("{source_labels: [a]}", &[("target_label", "required for replace action")]),
            ("{target_label: 'a-b'}", &[("target_label", "\"a-b\" is invalid for replace action")]),
            ("{target_label: '1a'}", &[("target_label", "\"1a\" is invalid for replace action")]),
            ("{target_label: 'a$'}", &[("target_label", "\"a$\" is invalid for replace action")]),
            ("{action: hashmod, target_label: t}", &[("modulus", "must be set (non-zero) for hashmod action")]),
            ("{action: hashmod, modulus: 3}", &[("target_label", "required for hashmod action")]),
            ("{action: hashmod, modulus: 3, target_label: '$1'}", &[("target_label", "\"$1\" is invalid for hashmod action")]),
            ("{action: lowercase}", &[("target_label", "required for lowercase action")]),
            ("{action: uppercase, target_label: u, replacement: x}", &[("replacement", "can not be set for uppercase action")]),
            ("{action: labelmap, replacement: 'a-$1'}", &[("replacement", "\"a-$1\" is invalid for labelmap action")]),
            ("{action: keepequal}", &[("target_label", "required for keepequal action")]),
            ("{action: dropequal, target_label: t, regex: x, separator: ',', modulus: 2, replacement: r}", &[
                ("replacement", "can not be set for dropequal action"),
                ("regex", "can not be set for dropequal action takes only source_labels and target_label"),
                ("modulus", "can not be set for dropequal action takes only source_labels and target_label"),
                ("separator", "can not be set for dropequal action takes only source_labels and target_label"),
            ]),
            ("{action: labelkeep, source_labels: [a], target_label: t, modulus: 1, separator: ',', replacement: r}", &[
                ("source_labels", "can not be set for labelkeep action takes only regex"),
                ("target_label", "can not be set for labelkeep action takes only regex"),
                ("modulus", "can not be set for labelkeep action takes only regex"),
                ("separator", "can not be set for labelkeep action takes only regex"),
                ("replacement", "can not be set for labelkeep action takes only regex"),
            ]),
            ("{action: labeldrop, target_label: t}", &[("target_label", "can not be set for labeldrop action takes only regex")]),
        ];
        for (yaml, want) in cases {
            let got = problems(yaml);
            assert_eq!(got.len(), want.len(), "{yaml}: {got:?}");
            for ((gk, gm), (wk, wm)) in got.iter().zip(want.iter()) {
                assert_eq!(gk, wk, "{yaml}: {got:?}");
                assert!(
                    gm.starts_with(wm),
                    "{yaml}: {gm:?} should start with {wm:?}"
                );
                assert_eq!(gm.to_lowercase(), *gm, "lowercase message: {gm}");
            }
            let c: RelabelConfig = serde_norway::from_str(yaml).expect("yaml");
            match (c.compile(), want.first()) {
                (Ok(_), None) => {}
                (Err(e), Some((k, m))) => {
                    assert!(e.starts_with(&format!("{k}: {m}")), "{yaml}: {e}")
                }
                (got, want) => panic!(
                    "{yaml}: compile {:?} vs first problem {want:?}",
                    got.map(|_| ())
                ),
            }
        }
        // The crate's multi-line parse error is reduced to its message.
        let got = problems("{regex: '(', action: keep}");
        assert_eq!(got.len(), 1);
        assert!(!got[0].1.contains('\n'), "{got:?}");
    }

    #[test]
    fn relabel_target_syntax() {
        for ok in [
            "a", "_a1", "$1", "${1}", "${1}_x", "x_$1", "$a$b", "${1}2", "$1x",
        ] {
            assert!(is_relabel_target(ok), "{ok}");
        }
        for bad in [
            "", "1a", "a-b", "$", "a$", "${", "${}", "${1", "$$", "a b", "é",
        ] {
            assert!(!is_relabel_target(bad), "{bad}");
        }
        for ok in ["a", "_", "__name__", "A9_"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "9", "a:b", "a-b", "é"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }

    fn expand(pattern: &str, haystack: &str, template: &str) -> String {
        let re = Regex::new(pattern).expect("regex");
        let caps = re.captures(haystack).expect("match");
        let mut out = String::new();
        go_expand(template, &caps, &mut out);
        out
    }

    #[test]
    fn go_expand_rules() {
        let p = r"(?P<first>a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)";
        let h = "abcdefghijk";
        for (template, want) in [
            ("$1", "a"),
            ("${1}", "a"),
            ("$1x", ""),
            ("${1}x", "ax"),
            ("$11", "k"),
            ("$12", ""),
            ("$01", ""),
            ("${01}", ""),
            ("$0", "abcdefghijk"),
            ("$first-$2", "a-b"),
            ("${first}_", "a_"),
            ("$first_", ""),
            ("$$1", "$1"),
            ("$", "$"),
            ("x$-", "x$-"),
            ("${1", "${1"),
            ("${1 }", "${1 }"),
            ("${}", "${}"),
            ("$999999999", ""),
        ] {
            assert_eq!(expand(p, h, template), want, "template {template:?}");
        }
    }

    fn matches(pattern: &str, haystack: &str) -> bool {
        compile_anchored(pattern).expect("regex").is_match(haystack)
    }

    #[test]
    fn go_regex_dialect() {
        // Anchoring by textual wrapping, as Prometheus.
        assert!(matches("foo", "foo"));
        assert!(!matches("foo", "foobar"));
        assert!(!matches("foo", "xfoo"));
        assert!(matches("a|b", "b"));
        // Perl classes and word boundaries are ASCII in Go.
        assert!(matches(r"\d+", "123"));
        assert!(!matches(r"\d", "٣"));
        assert!(matches(r"\D", "٣"));
        assert!(!matches(r"\w", "é"));
        assert!(matches(r"\W", "é"));
        assert!(!matches(r"\s", "\u{a0}"));
        assert!(!matches(r"\s", "\u{b}"));
        assert!(matches(r"\s", "\u{c}"));
        assert!(matches(r"[\w.-]+", "a_b.c-d"));
        assert!(!matches(r"[\w.-]+", "aé"));
        assert!(matches(r"[^\d]", "x"));
        assert!(matches(r"[\D]", "٣"));
        assert!(!matches(r"[\D]", "3"));
        assert!(matches(r".*\bx\b.*", "a x b"));
        assert!(
            matches(r".*\bx\b.*", "éxé"),
            "é is not a word character for Go's \\b"
        );
        assert!(!matches(r".*\Bx.*", "éx"));
        assert!(matches(r".*\Bx.*", "ax"));
        // Unicode still works for `.` and \p.
        assert!(matches(r".", "é"));
        assert!(matches(r"\p{Greek}+", "αβ"));
        assert!(matches(r"\pL", "é"));
        assert!(matches(r"[\p{Greek}x]+", "αx"));
        // \Q…\E, octal, literal braces and brackets.
        assert!(matches(r"\Qa.b*\Ec", "a.b*c"));
        assert!(!matches(r"\Qa.b\E", "axb"));
        assert!(matches(r"\Q[x", "[x"));
        assert!(matches(r"\101\0", "A\0"));
        assert!(matches(r"\x41\x{42}", "AB"));
        assert!(matches(r"a{", "a{"));
        assert!(matches(r"a{x}", "a{x}"));
        assert!(matches(r"a{,2}", "a{,2}"));
        assert!(matches(r"a{01}", "a{01}"));
        assert!(matches(r"a{2}", "aa"));
        assert!(matches(r"a{2,}", "aaa"));
        assert!(matches(r"a{1,2}?b", "ab"));
        assert!(matches(r"{}", "{}"));
        assert!(matches(r"[[]", "["));
        assert!(matches(r"[]a]+", "]a"));
        assert!(matches(r"[^]a]", "b"));
        assert!(matches(r"[a-]+", "a-"));
        assert!(matches(r"[+--]+", "+,-"));
        assert!(matches(r"[a&&b]+", "a&b"));
        assert!(matches(r"[a~~b]+", "~"));
        assert!(matches(r"[[:alpha:]]+", "ab"));
        assert!(!matches(r"[[:alpha:]]", "é"));
        assert!(matches(r"[[:^digit:]x]", "a"));
        assert!(matches(r"(?i)K", "\u{212a}"));
        assert!(compile_anchored(r"a{1001}").is_err());
        assert!(compile_anchored(r"a{2,1}").is_err());
        assert!(compile_anchored(r"a{1000}").is_ok());
        assert!(compile_anchored(r"\1").is_err());
        assert!(compile_anchored(r"[").is_err());
        assert!(compile_anchored(r"[[:foo:]]").is_err());
        assert!(compile_anchored(r"\").is_err());
        // Prometheus wraps textually: an unbalanced pattern escapes the anchors, as in Go.
        assert!(matches(r"a)|(b", "xxb"));
    }
}
