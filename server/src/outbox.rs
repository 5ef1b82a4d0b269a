//! A socket's outbound queue, and the fan-out's wakes in slices.
//!
//! The fan-out queues a broadcast for every socket of a path in one pass, but for a path of
//! more than [`SLICE`] sockets it does not wake their tasks there: it hands them to [`Wakes`],
//! one task that wakes a slice of them at a time and yields in between. Woken all at once, the
//! tasks of a large path filled the run queue, and a socket whose `!`, Ping or Close arrived
//! meanwhile was answered only when its turn in that queue came: a task already woken for the
//! broadcast is not moved forward by its read. Woken a slice at a time, a socket woken by its
//! read runs after about a slice of others.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::wire::Outgoing;

/// Most socket tasks the fan-out wakes before it lets them (and any other task) run.
pub(crate) const SLICE: usize = 64;

/// What [`Outbox::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued; `wake`: the queue was empty, so the socket's task must be woken
    /// ([`Outbox::wake`]).
    Queued { wake: bool },
    /// Not queued: the queue holds its most messages, or its most bytes.
    Full,
}

/// One socket's outbound queue: messages (shared frames) in order, bounded in count and bytes.
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    /// Most messages queued.
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Arc<Outgoing>>,
    /// Bytes queued or taken and not yet written ([`Outbox::written`]).
    bytes: usize,
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            notify: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `message` unless the queue holds `capacity` messages, or bytes are queued or
    /// being written and `message` would take them over `max_bytes` (one message alone always
    /// fits).
    pub(crate) fn push(&self, message: &Arc<Outgoing>, max_bytes: usize) -> Pushed {
        let len = message.len();
        let mut inner = self.lock();
        let over_bytes = inner.bytes > 0 && inner.bytes.saturating_add(len) > max_bytes;
        if inner.queue.len() >= self.capacity || over_bytes {
            return Pushed::Full;
        }
        let wake = inner.queue.is_empty();
        inner.queue.push_back(message.clone());
        inner.bytes += len;
        Pushed::Queued { wake }
    }

    /// Wakes the socket's task (once, however often it is called before the task looks).
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }

    /// Resolves once [`wake`](Self::wake) was called since the last time it resolved.
    pub(crate) async fn woken(&self) {
        self.notify.notified().await;
    }

    /// Moves the first messages into `batch`: at least one, at most `max`, and more only while
    /// the batch holds fewer than `gather` bytes (the last one may take it past). Returns their bytes. When messages are left, the task is woken
    /// again, so that it comes back for them after it has looked at its reads.
    pub(crate) fn take(&self, batch: &mut Vec<Arc<Outgoing>>, max: usize, gather: usize) -> usize {
        let mut inner = self.lock();
        let mut bytes = 0;
        while batch.len() < max.max(1) && (batch.is_empty() || bytes < gather) {
            let Some(next) = inner.queue.pop_front() else {
                break;
            };
            bytes += next.len();
            batch.push(next);
        }
        if !inner.queue.is_empty() {
            self.notify.notify_one();
        }
        bytes
    }

    /// Forgets `bytes` taken with [`take`](Self::take): written, or never to be.
    pub(crate) fn written(&self, bytes: usize) {
        let mut inner = self.lock();
        inner.bytes = inner.bytes.saturating_sub(bytes);
    }

    /// The next message, waiting for one (for tests that stand in for a socket's task).
    #[cfg(test)]
    pub(crate) async fn recv(&self) -> Arc<Outgoing> {
        loop {
            if let Some(message) = self.try_recv() {
                return message;
            }
            self.woken().await;
        }
    }

    /// The next message if one is queued, its bytes forgotten at once.
    #[cfg(test)]
    pub(crate) fn try_recv(&self) -> Option<Arc<Outgoing>> {
        let mut batch = Vec::new();
        let bytes = self.take(&mut batch, 1, 0);
        self.written(bytes);
        batch.pop()
    }
}

/// The socket tasks the fan-out has yet to wake, woken a [`SLICE`] at a time by one task
/// that yields in between: however many broadcasts to large paths are in progress, they put
/// about a slice of socket tasks at a time in the run queue. The task runs on the runtime the
/// sockets registered on (the gateway's), whichever thread the fan-out runs on (a shared
/// history fans out from a thread of its own).
#[derive(Default)]
pub(crate) struct Wakes {
    inner: Mutex<WakesInner>,
    runtime: std::sync::OnceLock<tokio::runtime::Handle>,
}

#[derive(Default)]
struct WakesInner {
    queue: VecDeque<Arc<Outbox>>,
    /// A task is waking the queue.
    running: bool,
}

impl Wakes {
    fn lock(&self) -> MutexGuard<'_, WakesInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers the current runtime (the first call's) as the one to wake sockets from.
    /// Called where sockets register, on the gateway's runtime.
    pub(crate) fn bind(&self) {
        if self.runtime.get().is_none() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let _ = self.runtime.set(runtime);
            }
        }
    }

    /// Wakes the tasks of `outboxes`: at once when they are at most a [`SLICE`] (a small path
    /// does not wait behind a large one), else in slices. Before [`bind`](Self::bind) found a
    /// runtime (unit tests), all at once.
    pub(crate) fn wake(self: &Arc<Self>, outboxes: Vec<Arc<Outbox>>) {
        let runtime = match self.runtime.get() {
            Some(runtime) if outboxes.len() > SLICE => runtime,
            _ => {
                outboxes.iter().for_each(|o| o.wake());
                return;
            }
        };
        {
            let mut inner = self.lock();
            inner.queue.extend(outboxes);
            if inner.running {
                return;
            }
            inner.running = true;
        }
        let wakes = self.clone();
        runtime.spawn(async move { wakes.run(tokio::task::yield_now).await });
    }

    /// Wakes a slice, awaits `between`, and so on until the queue is empty. Dropped before
    /// that (its runtime shut down), it lets the next [`wake`](Self::wake) start a task again.
    async fn run<F: std::future::Future<Output = ()>>(&self, mut between: impl FnMut() -> F) {
        /// Clears `running` unless disarmed.
        struct Running<'a>(&'a Wakes, bool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.lock().running = false;
                }
            }
        }
        let mut running = Running(self, true);
        loop {
            let slice: Vec<Arc<Outbox>> = {
                let mut inner = self.lock();
                if inner.queue.is_empty() {
                    inner.running = false;
                    running.1 = false;
                    return;
                }
                let n = inner.queue.len().min(SLICE);
                inner.queue.drain(..n).collect()
            };
            slice.iter().for_each(|o| o.wake());
            between().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Utf8Bytes;

    fn message(text: &'static str) -> Arc<Outgoing> {
        Arc::new(Outgoing::text(Utf8Bytes::from_static(text)))
    }

    #[test]
    fn only_the_first_message_into_an_empty_queue_asks_for_a_wake() {
        let outbox = Outbox::new(8);
        assert_eq!(
            outbox.push(&message("1"), 100),
            Pushed::Queued { wake: true }
        );
        assert_eq!(
            outbox.push(&message("2"), 100),
            Pushed::Queued { wake: false }
        );
        let mut batch = Vec::new();
        outbox.take(&mut batch, 8, 1 << 20);
        assert_eq!(batch.len(), 2);
        assert_eq!(
            outbox.push(&message("3"), 100),
            Pushed::Queued { wake: true }
        );
    }

    #[test]
    fn full_by_count_or_by_bytes_but_one_message_always_fits() {
        let outbox = Outbox::new(2);
        let big = message("0123456789");
        // Over the byte budget, but the queue is empty: queued.
        assert_eq!(outbox.push(&big, 4), Pushed::Queued { wake: true });
        assert_eq!(outbox.push(&message("1"), 4), Pushed::Full);
        // Taken but not written: still counted.
        let mut batch = Vec::new();
        let bytes = outbox.take(&mut batch, 8, 1 << 20);
        assert_eq!(outbox.push(&message("1"), 4), Pushed::Full);
        outbox.written(bytes);
        assert_eq!(outbox.push(&message("1"), 4), Pushed::Queued { wake: true });
        assert_eq!(
            outbox.push(&message("2"), 4),
            Pushed::Queued { wake: false }
        );
        assert_eq!(
            outbox.push(&message("3"), 4),
            Pushed::Full,
            "two messages at most"
        );
    }

    #[tokio::test]
    async fn a_batch_stops_at_its_count_or_bytes_and_the_rest_wakes_the_task_again() {
        let outbox = Outbox::new(8);
        for text in ["aaaa", "bbbb", "cccc", "dddd"] {
            outbox.push(&message(text), usize::MAX);
        }
        let mut batch = Vec::new();
        // The first message always; then until 6 bytes are reached.
        assert_eq!(outbox.take(&mut batch, 8, 6), 8);
        assert_eq!(batch.len(), 2);
        // Messages are left: the task is woken to come back for them.
        outbox.woken().await;
        batch.clear();
        assert_eq!(outbox.take(&mut batch, 1, 1 << 20), 4);
        assert_eq!(batch[0].payload(), b"cccc");
    }

    /// Whether the task of `outbox` was woken (and forgets the wake).
    fn was_woken(outbox: &Outbox) -> bool {
        let notified = outbox.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable()
    }

    #[tokio::test]
    async fn a_large_fan_out_wakes_a_slice_at_a_time() {
        let outboxes: Vec<Arc<Outbox>> = (0..SLICE * 2 + 5)
            .map(|_| Arc::new(Outbox::new(1)))
            .collect();
        let wakes = Wakes::default();
        {
            let mut inner = wakes.lock();
            inner.queue.extend(outboxes.iter().cloned());
            inner.running = true;
        }
        let mut seen = Vec::new();
        wakes
            .run(|| {
                seen.push(outboxes.iter().filter(|o| was_woken(o)).count());
                std::future::ready(())
            })
            .await;
        assert_eq!(seen, vec![SLICE, SLICE, 5]);
        assert!(
            !wakes.lock().running,
            "the next large fan-out starts a task again"
        );
    }

    /// A waking task dropped half-way (its runtime shut down) does not leave the queue
    /// thinking a task is running: the next large fan-out starts one again.
    #[tokio::test]
    async fn a_waking_task_dropped_half_way_lets_the_next_fan_out_start_one() {
        let wakes = Arc::new(Wakes::default());
        let outboxes: Vec<Arc<Outbox>> = (0..SLICE * 2).map(|_| Arc::new(Outbox::new(1))).collect();
        {
            let mut inner = wakes.lock();
            inner.queue.extend(outboxes.iter().cloned());
            inner.running = true;
        }
        let mut run = Box::pin(wakes.run(std::future::pending::<()>));
        // The first slice is woken, then the task waits between slices: dropped there.
        assert!(futures_util::FutureExt::now_or_never(run.as_mut()).is_none());
        drop(run);
        assert!(!wakes.lock().running);
        assert_eq!(outboxes.iter().filter(|o| was_woken(o)).count(), SLICE);
        // The rest is woken by the next large fan-out's task.
        wakes.bind();
        wakes.wake((0..SLICE + 1).map(|_| Arc::new(Outbox::new(1))).collect());
        assert!(wakes.lock().running);
    }

    #[test]
    fn small_fan_outs_and_fan_outs_before_a_runtime_is_bound_wake_at_once() {
        let wakes = Arc::new(Wakes::default());
        let many: Vec<Arc<Outbox>> = (0..SLICE * 2).map(|_| Arc::new(Outbox::new(1))).collect();
        wakes.wake(many.clone());
        assert_eq!(many.iter().filter(|o| was_woken(o)).count(), SLICE * 2);
        assert!(!wakes.lock().running);
    }
}
