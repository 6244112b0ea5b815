//! Round trips through a real directory: order and replay after reopen, segment rolls,
//! a full disk, corrupt and torn records, concurrent appends, stop and close.

use super::record::{header_at, seg_path};
use super::*;

fn opts(fsync: Fsync) -> Options {
    Options {
        fsync,
        max_size: 0,
        segment_size: 4 << 20,
    }
}

fn body(i: u32) -> Bytes {
    Bytes::from(format!("record-{i:05}").into_bytes())
}

async fn drain(q: &PersistentQueue, n: usize, ack: bool) -> Vec<Bytes> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = tokio::time::timeout(Duration::from_secs(5), q.next())
            .await
            .expect("record within 5s")
            .expect("queue open");
        out.push(r.body.clone());
        if ack {
            q.ack(r.id);
        }
    }
    out
}

fn open(dir: &Path, o: Options) -> (Arc<PersistentQueue>, Recovery, QueueMetrics) {
    let m = QueueMetrics::default();
    let (q, r) = PersistentQueue::open(dir, o, m.clone()).unwrap();
    (q, r, m)
}

#[tokio::test]
async fn delivers_in_order_and_replays_only_unacked_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (q, rec, _) = open(dir.path(), opts(Fsync::Always));
    assert_eq!(rec, Recovery::default());
    for i in 0..10 {
        q.append(Signal::Logs, 3, body(i)).await.unwrap();
    }
    let first = q.next().await.unwrap();
    assert_eq!(first.body, body(0));
    assert_eq!((first.signal, first.items), (Signal::Logs, 3));
    // Ack out of order: records 1 and 3 delivered, 0 and 2 taken but not acked.
    let r1 = q.next().await.unwrap();
    let _r2 = q.next().await.unwrap();
    let r3 = q.next().await.unwrap();
    q.ack(r3.id);
    q.ack(r1.id);
    assert_eq!(q.unacked(), 8);
    q.close();
    let (q2, rec, m) = open(dir.path(), opts(Fsync::Always));
    assert_eq!(rec.records, 8);
    assert_eq!(m.recovered.get(), 8);
    let got = drain(&q2, 8, true).await;
    let want: Vec<Bytes> = [0, 2, 4, 5, 6, 7, 8, 9].into_iter().map(body).collect();
    assert_eq!(got, want);
    q2.close();
    // Everything delivered: the directory holds no segments.
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn segments_roll_and_go_once_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        segment_size: 256,
        ..opts(Fsync::Batch(Duration::from_millis(10)))
    };
    let (q, _, m) = open(dir.path(), o);
    for i in 0..40 {
        q.append(Signal::Traces, 1, body(i)).await.unwrap();
    }
    let segs = || {
        fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "wal")
            .count()
    };
    assert!(segs() > 3, "{}", segs());
    assert_eq!(m.disk_bytes.get() as u64, q.disk_bytes());
    let got = drain(&q, 40, true).await;
    assert_eq!(got, (0..40).map(body).collect::<Vec<_>>());
    assert_eq!(segs(), 1, "only the active segment remains");
    q.close();
    assert_eq!(segs(), 0);
    assert_eq!(m.disk_bytes.get(), 0);
}

#[tokio::test]
async fn full_disk_refuses_new_records_and_keeps_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        max_size: 8 + 5 * (8 + 5 + 12),
        ..opts(Fsync::Never)
    };
    let (q, _, _) = open(dir.path(), o.clone());
    for i in 0..5 {
        q.append(Signal::Logs, 1, body(i)).await.unwrap();
    }
    let e = q.append(Signal::Logs, 1, body(5)).await.unwrap_err();
    assert_eq!(e.kind(), "full");
    // Nothing old was dropped to make room.
    q.close();
    let (q2, rec, _) = open(dir.path(), o);
    assert_eq!(rec.records, 5);
    assert_eq!(
        drain(&q2, 5, true).await,
        (0..5).map(body).collect::<Vec<_>>()
    );
    // Once delivered, the space comes back, also when the queue is smaller than a segment.
    for i in 10..15 {
        q2.append(Signal::Logs, 1, body(i)).await.unwrap();
    }
    assert_eq!(
        drain(&q2, 5, true).await,
        (10..15).map(body).collect::<Vec<_>>()
    );
    for i in 20..25 {
        q2.append(Signal::Logs, 1, body(i)).await.unwrap();
    }
    q2.close();
}

/// Offsets of every record in a segment file, walking the format.
fn record_offsets(data: &[u8]) -> Vec<usize> {
    let mut offs = Vec::new();
    let mut off = 8;
    while off < data.len() {
        offs.push(off);
        let (len, _) = header_at(data, off).unwrap();
        off += 8 + len as usize;
    }
    offs
}

#[tokio::test]
async fn corrupt_records_are_skipped_counted_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _, _) = open(dir.path(), opts(Fsync::Always));
    for i in 0..10 {
        q.append(Signal::Logs, 1, body(i)).await.unwrap();
    }
    q.close();
    let seg = seg_path(dir.path(), 1);
    let mut data = fs::read(&seg).unwrap();
    let offs = record_offsets(&data);
    assert_eq!(offs.len(), 10);
    // Record 2: a flipped payload byte (checksum fails, length sane).
    data[offs[2] + 8 + 7] ^= 0xff;
    // Record 6: an impossible length (resync to record 7).
    data[offs[6] + 3] = 0x7f;
    fs::write(&seg, &data).unwrap();
    let (q2, rec, m) = open(dir.path(), opts(Fsync::Always));
    assert_eq!(rec.corrupt, 2);
    assert_eq!(m.corrupt.get(), 2);
    assert_eq!(rec.records, 8);
    let got = drain(&q2, 8, true).await;
    let want: Vec<Bytes> = [0, 1, 3, 4, 5, 7, 8, 9].into_iter().map(body).collect();
    assert_eq!(got, want);
    q2.close();
}

#[tokio::test]
async fn damage_after_the_start_scan_is_reported_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _, m) = open(dir.path(), opts(Fsync::Always));
    for i in 0..3 {
        q.append(Signal::Logs, 4, body(i)).await.unwrap();
    }
    let seg = seg_path(dir.path(), 1);
    let mut data = fs::read(&seg).unwrap();
    let offs = record_offsets(&data);
    data[offs[1] + 8 + 9] ^= 1;
    fs::write(&seg, &data).unwrap();
    let r0 = q.next().await.unwrap();
    let r1 = q.next().await.unwrap();
    let r2 = q.next().await.unwrap();
    assert!(!r0.damaged && !r2.damaged);
    assert_eq!(r2.body, body(2));
    assert!(r1.damaged);
    assert_eq!((r1.items, r1.body_len), (4, 12));
    assert_eq!(m.corrupt.get(), 1);
    q.ack(r0.id);
    q.ack(r2.id);
    assert_eq!(q.unacked(), 0, "the damaged record was removed");
    q.close();
}

#[tokio::test]
async fn torn_tail_is_ignored_not_counted_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _, _) = open(dir.path(), opts(Fsync::Always));
    for i in 0..3 {
        q.append(Signal::Metrics, 2, body(i)).await.unwrap();
    }
    q.close();
    let seg = seg_path(dir.path(), 1);
    let mut data = fs::read(&seg).unwrap();
    // Half of a fourth record, as a kill during write(2) leaves it.
    data.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]);
    fs::write(&seg, &data).unwrap();
    let (q2, rec, _) = open(dir.path(), opts(Fsync::Always));
    assert_eq!(
        rec,
        Recovery {
            records: 3,
            corrupt: 0,
            torn_bytes: 11,
            items: 6,
            body_bytes: 36,
        }
    );
    assert_eq!(
        drain(&q2, 3, true).await,
        (0..3).map(body).collect::<Vec<_>>()
    );
    q2.close();
}

#[tokio::test]
async fn concurrent_appends_share_syncs_and_all_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _, _) = open(dir.path(), opts(Fsync::Always));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move { q.append(Signal::Traces, 1, body(i)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut got = drain(&q, 200, true).await;
    got.sort();
    assert_eq!(got, (0..200).map(body).collect::<Vec<_>>());
    q.close();
}

#[tokio::test]
async fn stop_reading_wakes_waiting_consumers_and_close_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _, _) = open(dir.path(), opts(Fsync::Never));
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.next().await.is_none() })
    };
    tokio::task::yield_now().await;
    q.stop_reading();
    assert!(waiter.await.unwrap());
    q.close();
    let e = q.append(Signal::Logs, 1, body(0)).await.unwrap_err();
    assert_eq!(e.kind(), "closed");
}
