//! TEMPORARY stub until the operators module lands (replaced wholesale).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub body: serde_json::Value,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub resource: serde_json::Map<String, serde_json::Value>,
    pub timestamp: Option<u64>,
    pub severity: i32,
    pub severity_text: String,
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub trace_flags: u32,
}
#[derive(Debug, Clone, Default)]
pub struct OperatorsConfig(Vec<serde_norway::Value>);
impl OperatorsConfig {
    pub fn parse(path: &str, v: &serde_norway::Value, diag: &mut crate::component::Diagnostics) -> OperatorsConfig {
        if v.as_sequence().is_some_and(|s| !s.is_empty()) {
            diag.error(path, "operators are not supported yet");
        }
        OperatorsConfig(vec![])
    }
    pub fn build(&self) -> Result<Operators, String> {
        Ok(Operators)
    }
}
pub struct Operators;
impl Operators {
    pub fn process(&mut self, entry: Entry, _now_ns: u64, out: &mut Vec<Entry>) {
        out.push(entry)
    }
    pub fn flush(&mut self, _now_ns: u64, _all: bool, _out: &mut Vec<Entry>) {}
    pub fn errors(&self) -> u64 {
        0
    }
    pub fn dropped(&self) -> u64 {
        0
    }
}
