#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;

use super::split::{Pending, Record, Splitter};
use super::tail::{Known, Options, Tailer};
use super::{FileLogConfig, Multiline, StartAt};
use crate::component::units::ByteSize;

fn cfg(yaml: &str) -> FileLogConfig {
    serde_norway::from_str(yaml).unwrap()
}

fn texts(rs: &[Record]) -> Vec<String> {
    rs.iter()
        .map(|r| String::from_utf8_lossy(&r.bytes).into_owned())
        .collect()
}

#[test]
fn lines_are_split_trimmed_and_a_partial_line_waits() {
    let s = Splitter::new(&FileLogConfig::default()).unwrap();
    let mut p = Pending::default();
    p.buf.extend_from_slice(b"  one\r\n\ntwo  \nthr");
    let mut out = vec![];
    let n = s.split(&mut p, &mut out);
    assert_eq!(texts(&out), ["one", "two"]);
    assert_eq!(n, 14, "everything up to the partial line is consumed");
    assert_eq!(p.buf, b"thr");
    p.buf.extend_from_slice(b"ee\n");
    out.clear();
    assert_eq!(s.split(&mut p, &mut out), 6);
    assert_eq!(texts(&out), ["three"]);
    p.buf.extend_from_slice(b"tail");
    out.clear();
    assert_eq!(s.split(&mut p, &mut out), 0);
    assert_eq!(s.flush(&mut p, &mut out), 4);
    assert_eq!(texts(&out), ["tail"]);
    assert!(p.buf.is_empty());
}

#[test]
fn whitespace_is_kept_when_asked() {
    let s = Splitter::new(&cfg(
        "{include: [x], preserve_leading_whitespaces: true, preserve_trailing_whitespaces: true}",
    ))
    .unwrap();
    let mut p = Pending::default();
    p.buf.extend_from_slice(b"  a b \n");
    let mut out = vec![];
    s.split(&mut p, &mut out);
    assert_eq!(texts(&out), ["  a b "]);
}

#[test]
fn a_long_line_is_cut_into_pieces_and_the_buffer_stays_bounded() {
    let c = FileLogConfig {
        max_log_size: ByteSize(10),
        ..FileLogConfig::default()
    };
    let s = Splitter::new(&c).unwrap();
    let mut p = Pending::default();
    let mut out = vec![];
    let mut consumed = 0;
    // 35 bytes of one line arriving 7 bytes at a time, then its newline
    for chunk in b"abcdefghijklmnopqrstuvwxyz012345678".chunks(7) {
        p.buf.extend_from_slice(chunk);
        consumed += s.split(&mut p, &mut out);
        assert!(p.buf.len() < 10, "pending {} bytes", p.buf.len());
    }
    p.buf.extend_from_slice(b"\nnext\n");
    consumed += s.split(&mut p, &mut out);
    assert_eq!(
        texts(&out),
        ["abcdefghij", "klmnopqrst", "uvwxyz0123", "45678", "next"]
    );
    assert_eq!(
        out.iter().map(|r| r.truncated).collect::<Vec<_>>(),
        [true, true, true, false, false]
    );
    assert_eq!(consumed, 35 + 6);
}

#[test]
fn multiline_start_pattern_groups_a_stack_trace() {
    let c = FileLogConfig {
        multiline: Some(Multiline {
            line_start_pattern: Some(r"^\d{4}-".into()),
            ..Multiline::default()
        }),
        ..FileLogConfig::default()
    };
    let s = Splitter::new(&c).unwrap();
    let mut p = Pending::default();
    let input: &[u8] =
        b"2024-01-01 ERROR boom\n\tat a.B(C.java:1)\n\tat d.E(F.java:2)\n2024-01-01 INFO ok\n2024-";
    p.buf.extend_from_slice(input);
    let mut out = vec![];
    let n = s.split(&mut p, &mut out);
    assert_eq!(
        texts(&out),
        [
            "2024-01-01 ERROR boom\n\tat a.B(C.java:1)\n\tat d.E(F.java:2)",
            "2024-01-01 INFO ok"
        ]
    );
    assert_eq!(&p.buf, b"2024-");
    assert_eq!(
        n,
        input.len() - 5,
        "all but the partial start line is consumed"
    );
    // the last record waits for the next start line (or the flush)
    p.buf.extend_from_slice(b"01-02 WARN w\n  more\n");
    out.clear();
    s.split(&mut p, &mut out);
    assert!(out.is_empty());
    s.flush(&mut p, &mut out);
    assert_eq!(texts(&out), ["2024-01-02 WARN w\n  more"]);
}

#[test]
fn multiline_end_pattern_and_omit_pattern() {
    let c = FileLogConfig {
        multiline: Some(Multiline {
            line_end_pattern: Some(r";$".into()),
            omit_pattern: true,
            ..Multiline::default()
        }),
        ..FileLogConfig::default()
    };
    let s = Splitter::new(&c).unwrap();
    let mut p = Pending::default();
    p.buf
        .extend_from_slice(b"select *\nfrom t;\nupdate x;\ndangling");
    let mut out = vec![];
    s.split(&mut p, &mut out);
    assert_eq!(texts(&out), ["select *\nfrom t", "update x"]);
    assert_eq!(&p.buf, b"dangling");
}

fn write(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn lines(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("line {i:05}\n")).collect()
}

fn tailer(dir: &Path, yaml: &str, restored: Vec<Known>) -> Tailer {
    let c = cfg(&format!(
        "{{include: ['{}/{}'], fingerprint_size: 16, {yaml}}}",
        dir.display(),
        "*.log*"
    ));
    Tailer::new(Options::new(&c).unwrap(), restored)
}

/// One poll, every batch committed: the records read.
fn poll(t: &mut Tailer) -> Vec<String> {
    t.begin_poll();
    let mut out = vec![];
    while let Some(b) = t.next_batch() {
        for f in &b.files {
            out.extend(texts(&f.records));
        }
        t.commit(&b);
    }
    out
}

#[test]
fn start_at_end_skips_what_was_there_and_reads_what_is_appended() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log");
    write(&a, &lines(0, 3));
    let mut t = tailer(d.path(), "start_at: end", vec![]);
    assert!(poll(&mut t).is_empty());
    write(&a, &lines(3, 5));
    assert_eq!(poll(&mut t), ["line 00003", "line 00004"]);
    // a file created after the first poll is read from its beginning
    write(&d.path().join("b.log"), &lines(10, 12));
    assert_eq!(poll(&mut t), ["line 00010", "line 00011"]);
    assert!(poll(&mut t).is_empty());
}

#[test]
fn rotation_by_rename_and_by_copy_truncate_loses_and_repeats_nothing() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log");
    write(&a, &lines(0, 10));
    let mut t = tailer(d.path(), "start_at: beginning", vec![]);
    let mut got = poll(&mut t);
    // appended, then renamed (still matched): continues at its offset
    write(&a, &lines(10, 12));
    std::fs::rename(&a, d.path().join("a.log.1")).unwrap();
    write(&a, &lines(12, 15));
    got.extend(poll(&mut t));
    // appended, then copied and truncated; the copy is matched and has the old fingerprint
    write(&a, &lines(15, 17));
    std::fs::copy(&a, d.path().join("a.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&a)
        .unwrap();
    write(&a, &lines(17, 20));
    got.extend(poll(&mut t));
    got.extend(poll(&mut t));
    got.sort();
    let want: Vec<String> = (0..20).map(|i| format!("line {i:05}")).collect();
    assert_eq!(got, want);
}

#[test]
fn a_file_renamed_out_of_the_globs_is_read_to_its_end_through_the_open_handle() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log");
    write(&a, &lines(0, 2));
    let c = cfg(&format!(
        "{{include: ['{}'], fingerprint_size: 16, start_at: beginning}}",
        a.display()
    ));
    let mut t = Tailer::new(Options::new(&c).unwrap(), vec![]);
    let mut got = poll(&mut t);
    write(&a, &lines(2, 4));
    std::fs::rename(&a, d.path().join("a.old")).unwrap();
    write(&a, &lines(4, 5));
    got.extend(poll(&mut t));
    assert_eq!(got.len(), 5, "{got:?}");
    got.sort();
    assert_eq!(got[2], "line 00002");
}

#[test]
fn a_truncated_file_is_read_again_from_the_start() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log");
    write(&a, &lines(0, 10));
    let mut t = tailer(d.path(), "start_at: beginning", vec![]);
    assert_eq!(poll(&mut t).len(), 10);
    // truncated and rewritten with the same first bytes but shorter
    std::fs::write(&a, lines(0, 2)).unwrap();
    assert_eq!(poll(&mut t), ["line 00000", "line 00001"]);
}

#[test]
fn a_checkpoint_resumes_at_the_committed_offset() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log");
    write(&a, &lines(0, 4));
    let mut t = tailer(d.path(), "start_at: beginning", vec![]);
    assert_eq!(poll(&mut t).len(), 4);
    let path = d.path().join("cp.json");
    super::tail::save(&path, &t.checkpoint(), true).unwrap();
    write(&a, &lines(4, 6));
    let restored = super::tail::load(&path).unwrap();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].offset, 4 * 11);
    let mut t2 = tailer(d.path(), "start_at: beginning", restored);
    assert_eq!(poll(&mut t2), ["line 00004", "line 00005"]);
    assert!(super::tail::load(&d.path().join("missing.json"))
        .unwrap()
        .is_empty());
    std::fs::write(&path, "{not json").unwrap();
    assert!(super::tail::load(&path).is_err());
}

#[test]
fn uncommitted_batches_are_not_counted_as_read() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log");
    write(&a, &lines(0, 3));
    let mut t = tailer(d.path(), "start_at: beginning", vec![]);
    t.begin_poll();
    let b = t.next_batch().unwrap();
    assert_eq!(b.records(), 3);
    // not committed (the pipelines refused and otelgw stopped): the checkpoint has offset 0
    assert_eq!(t.checkpoint().files[0].offset, 0);
    t.commit(&b);
    assert_eq!(t.checkpoint().files[0].offset, 33);
    assert_eq!(t.checkpoint().files[0].records, 3);
}

#[test]
fn gzip_files_and_appended_members_are_read() {
    use flate2::write::GzEncoder;
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log.gz");
    let member = |text: &str| {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(&a, member(&lines(0, 3))).unwrap();
    let mut t = tailer(d.path(), "start_at: beginning, compression: auto", vec![]);
    assert_eq!(poll(&mut t).len(), 3);
    assert!(
        poll(&mut t).is_empty(),
        "an unchanged file is not read again"
    );
    let mut f = std::fs::OpenOptions::new().append(true).open(&a).unwrap();
    f.write_all(&member(&lines(3, 5))).unwrap();
    assert_eq!(poll(&mut t), ["line 00003", "line 00004"]);
}

#[test]
fn delete_after_read_deletes_only_committed_files() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.log");
    write(&a, &lines(0, 2));
    write(&a, "no newline at the end");
    let mut t = tailer(
        d.path(),
        "start_at: beginning, delete_after_read: true",
        vec![],
    );
    t.begin_poll();
    let b = t.next_batch().unwrap();
    assert_eq!(b.records(), 3, "the last partial line is flushed at once");
    assert!(t.next_batch().is_none());
    assert!(a.exists(), "not deleted before its records are committed");
    t.commit(&b);
    assert!(t.next_batch().is_none());
    assert!(!a.exists());
}

#[test]
fn more_files_than_max_concurrent_files_are_read_in_turns() {
    let d = tempfile::tempdir().unwrap();
    for n in 0..5 {
        write(
            &d.path().join(format!("f{n}.log")),
            &lines(n * 10, n * 10 + 1),
        );
    }
    let mut t = tailer(
        d.path(),
        "start_at: beginning, max_concurrent_files: 2",
        vec![],
    );
    let mut got = vec![];
    for _ in 0..3 {
        got.extend(poll(&mut t));
    }
    got.sort();
    assert_eq!(got.len(), 5, "{got:?}");
}

#[test]
fn validation_lists_every_problem() {
    let c = cfg(
        "{include: [], exclude: ['[x'], start_at: end, delete_after_read: true, encoding: utf-16le, \
         compression: zip, multiline: {line_start_pattern: '(', line_end_pattern: x}, \
         header: {pattern: x}, poll_interval: 0s}",
    );
    let mut d = crate::component::Diagnostics::default();
    c.validate("receivers.filelog", &mut d);
    let paths: Vec<&str> = d.errors.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "receivers.filelog.include",
        "receivers.filelog.exclude[0]",
        "receivers.filelog.delete_after_read",
        "receivers.filelog.encoding",
        "receivers.filelog.compression",
        "receivers.filelog.multiline",
        "receivers.filelog.header",
        "receivers.filelog.poll_interval",
    ] {
        assert!(paths.contains(&p), "{p} missing in {paths:?}");
    }
    let ok = cfg("{include: [/var/log/*.log], start_at: beginning}");
    let mut d = crate::component::Diagnostics::default();
    ok.validate("r", &mut d);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(ok.start_at, StartAt::Beginning);
    assert!(serde_norway::from_str::<FileLogConfig>("{include: [x], bogus: 1}").is_err());
}

#[test]
fn start_at_end_holds_for_files_opened_in_later_turns_and_for_gzip() {
    use flate2::write::GzEncoder;
    let d = tempfile::tempdir().unwrap();
    for n in 0..5 {
        write(
            &d.path().join(format!("f{n}.log")),
            &lines(n * 10, n * 10 + 3),
        );
    }
    let member = |text: &str| {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let gz = d.path().join("z.log.gz");
    std::fs::write(&gz, member(&lines(100, 103))).unwrap();
    let mut t = tailer(
        d.path(),
        "start_at: end, max_concurrent_files: 2, compression: auto",
        vec![],
    );
    for _ in 0..4 {
        assert!(
            poll(&mut t).is_empty(),
            "what existed at startup is skipped"
        );
    }
    for n in 0..5 {
        write(
            &d.path().join(format!("f{n}.log")),
            &lines(n * 10 + 5, n * 10 + 6),
        );
    }
    let mut f = std::fs::OpenOptions::new().append(true).open(&gz).unwrap();
    f.write_all(&member(&lines(105, 106))).unwrap();
    let mut got = vec![];
    for _ in 0..4 {
        got.extend(poll(&mut t));
    }
    got.sort();
    assert_eq!(
        got,
        [5, 15, 25, 35, 45, 105]
            .iter()
            .map(|i| format!("line {i:05}"))
            .collect::<Vec<_>>()
    );
}
