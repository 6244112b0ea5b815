//! The import graph's promise (ARCHITECTURE.md): no cycle between source files outside
//! `src/pipeline/` (the graph assembler, which imports every component and is imported by the
//! receivers it feeds). A file's edges are its `crate::…`, `super::…` and `self::…` paths (in
//! `use` items and in code), resolved to the file of the longest module prefix that exists;
//! test code (`tests.rs`, `tests/` folders, anything after `#[cfg(test)]`) does not count. A
//! module using its own submodules by relative path (`use child::X`) is ownership, not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `["a", "b"]`; `src/lib.rs` → `[]`.
fn module_of(src: &Path, f: &Path) -> Vec<String> {
    let rel = f.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into()).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// Every `crate::`/`super::`/`self::` path in `code`, `use` groups expanded one level.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !code.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &code[i..];
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|p| rest.starts_with(p));
        if starts && (i == 0 || !is_ident(bytes[i - 1])) {
            let mut j = i;
            while j < bytes.len() && (is_ident(bytes[j]) || bytes[j] == b':') {
                j += 1;
            }
            let base: Vec<String> = code[i..j]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if code[j..].starts_with('{') {
                let end = code[j..].find('}').map_or(bytes.len(), |e| j + e);
                for item in code[j + 1..end].split(',') {
                    let item = item.split(" as ").next().unwrap_or("").trim();
                    if item.is_empty() || item.contains('{') {
                        continue;
                    }
                    let mut p = base.clone();
                    p.extend(item.split("::").map(str::to_string));
                    out.push(p);
                }
                i = end;
            } else {
                out.push(base);
                i = j;
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn no_import_cycle_between_files_outside_the_pipeline_assembler() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let is_test = |f: &Path| {
        let s = f.to_string_lossy();
        s.ends_with("/tests.rs") || s.contains("/tests/")
    };
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let resolve = |p: &[String]| {
        (1..=p.len())
            .rev()
            .map(|n| p[..n].to_vec())
            .find(|m| modules.contains_key(m))
    };
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, f) in &modules {
        if is_test(f) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let code: String = code
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for p in paths(&code) {
            let target = match p[0].as_str() {
                "crate" => p[1..].to_vec(),
                _ => {
                    let mut base = m.clone();
                    let mut rest = &p[..];
                    while rest.first().is_some_and(|s| s == "super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    if rest.first().is_some_and(|s| s == "self") {
                        rest = &rest[1..];
                    }
                    base.extend(rest.iter().cloned());
                    base
                }
            };
            if let Some(t) = resolve(&target) {
                if &t != m {
                    edges.entry(m.clone()).or_default().insert(t);
                }
            }
        }
    }
    // the subgraph of files outside src/pipeline/ must be acyclic: find a cycle by DFS
    let outside =
        |m: &Vec<String>| !modules[m].starts_with(src.join("pipeline")) && !is_test(&modules[m]);
    let nodes: Vec<&Vec<String>> = modules.keys().filter(|m| outside(m)).collect();
    let mut state: BTreeMap<&Vec<String>, u8> = BTreeMap::new(); // 1 on the stack, 2 done
    fn dfs<'a>(
        v: &'a Vec<String>,
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        keep: &dyn Fn(&Vec<String>) -> bool,
        state: &mut BTreeMap<&'a Vec<String>, u8>,
        stack: &mut Vec<&'a Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(v, 1);
        stack.push(v);
        for w in edges.get(v).into_iter().flatten().filter(|w| keep(w)) {
            match state.get(w) {
                Some(1) => {
                    let at = stack.iter().position(|s| *s == w).unwrap_or(0);
                    return Some(stack[at..].iter().map(|m| m.join("::")).collect());
                }
                Some(_) => {}
                None => {
                    if let Some(c) = dfs(w, edges, keep, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(v, 2);
        None
    }
    for v in nodes {
        if !state.contains_key(v) {
            let cycle = dfs(v, &edges, &outside, &mut state, &mut Vec::new());
            assert!(cycle.is_none(), "import cycle: {cycle:?}");
        }
    }
    // the check sees edges at all (a parser that found nothing would pass anything)
    let comp = vec!["component".to_string()];
    assert!(edges.values().filter(|e| e.contains(&comp)).count() > 10);
}
