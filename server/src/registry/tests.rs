//! Unit tests of `registry`.
use super::*;
use std::time::Duration;

#[tokio::test]
async fn full_queue_kills_only_that_socket() {
    let reg = Registry::default();
    let metrics = Metrics::default();
    let fast = reg.register("/p", 1).unwrap();
    let slow = reg.register("/p", 1).unwrap();
    let msg = Utf8Bytes::from("1");
    assert_eq!(reg.deliver("/p", &msg, None, usize::MAX, &metrics), 2);
    fast.outbox.recv().await;
    assert_eq!(reg.deliver("/p", &msg, None, usize::MAX, &metrics), 1);
    assert_eq!(slow.kill.reason(), (CLOSE_SLOW_CONSUMER, "slow consumer"));
    assert_eq!(fast.kill.reason.get(), None);
    assert_eq!(metrics.closed_count(crate::metrics::Closed::Slow), 1);
}

#[tokio::test]
async fn a_path_goes_with_its_last_socket_and_the_sweep_hears_of_it_once() {
    let reg = Registry::new(2);
    let a1 = reg.register("/a", 4).unwrap();
    let a2 = reg.register("/a", 4).unwrap();
    let _b = reg.register("/b", 4).unwrap();
    assert_eq!(reg.register("/c", 4).err(), Some(PathsFull));
    reg.deregister("/a", a1.id);
    assert_eq!(reg.count_clients().len(), 2, "one socket is left at /a");
    reg.deregister("/a", a2.id);
    assert_eq!(reg.count_clients().len(), 1);
    let c = reg.register("/c", 4).unwrap();
    reg.deregister("/c", c.id);
    let again = reg.register("/c", 4).unwrap();
    assert_eq!(
        reg.take_removed(),
        vec!["/a".to_owned()],
        "/c is open again"
    );
    assert!(reg.take_removed().is_empty());
    reg.deregister("/c", again.id);
    assert_eq!(reg.take_removed(), vec!["/c".to_owned()]);
}

/// The socket's task forgets what it wrote as soon as it has written it, while broadcasts
/// from other threads count what they queue. When the count once wrapped below zero in that
/// race, a broadcast saw a huge backlog and killed a healthy socket. Raced here: two
/// broadcasting threads and a writer that takes each message at once.
#[test]
fn the_byte_count_never_wraps_when_the_writer_is_fast() {
    let reg = Arc::new(Registry::default());
    let metrics = Arc::new(Metrics::default());
    let Registration { outbox, id, kill } = reg.register("/p", 1 << 20).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let done = done.clone();
        move || {
            let mut batch = Vec::new();
            while !done.load(Ordering::Relaxed) {
                batch.clear();
                let bytes = outbox.take(&mut batch, 64, 1 << 20);
                outbox.written(bytes);
                if batch.is_empty() {
                    std::hint::spin_loop();
                }
            }
        }
    });
    let broadcasters: Vec<_> = (0..2)
        .map(|_| {
            let (reg, metrics, kill) = (reg.clone(), metrics.clone(), kill.clone());
            std::thread::spawn(move || {
                let msg = Utf8Bytes::from("12345678");
                for _ in 0..200_000 {
                    // A budget no honest backlog reaches here; only a wrapped count does.
                    reg.deliver("/p", &msg, None, usize::MAX / 2, &metrics);
                    if kill.reason.get().is_some() {
                        break;
                    }
                }
            })
        })
        .collect();
    for b in broadcasters {
        b.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    reg.deregister("/p", id);
    writer.join().unwrap();
    assert_eq!(kill.reason.get(), None, "a healthy socket was killed");
    assert_eq!(metrics.closed_count(crate::metrics::Closed::Slow), 0);
}

#[tokio::test]
async fn wait_all_closed_resolves_after_last_deregister() {
    let reg = Arc::new(Registry::default());
    let s = reg.register("/a", 4).unwrap();
    let waiter = tokio::spawn({
        let reg = reg.clone();
        async move { reg.wait_all_closed().await }
    });
    reg.close_all(CLOSE_GOING_AWAY, "bye");
    assert_eq!(s.kill.reason().0, CLOSE_GOING_AWAY);
    reg.deregister("/a", s.id);
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter resolves")
        .expect("waiter task");
}
