//! [`Events`]: the tokio driver's event stream, with room for `event_buffer` unread events.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, Semaphore};

use crate::session::Event;

/// The events of one [`WebSocket`](crate::WebSocket), in order, as a [`Stream`](futures_core::Stream).
///
/// It ends when the connection is gone for good (every handle dropped and the task ended).
/// The connection waits when [`event_buffer`](crate::WebSocketConfig::event_buffer) events are
/// unread, so keep reading.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Vec<Event>>,
    /// The rest of the batch received last.
    ready: std::vec::IntoIter<Event>,
    /// The sender's room, and the permits of the batch received last (given back once it is
    /// read: at most `event_buffer` events are ever buffered).
    room: Arc<Semaphore>,
    held: usize,
}

impl Events {
    pub(super) fn new(rx: mpsc::UnboundedReceiver<Vec<Event>>, room: Arc<Semaphore>) -> Events {
        Events {
            rx,
            ready: Vec::new().into_iter(),
            room,
            held: 0,
        }
    }

    /// Gives back the room of the batch read (all of it is read: before waiting for more).
    fn release(&mut self) {
        self.room.add_permits(std::mem::take(&mut self.held));
    }

    /// Takes the next batch.
    fn refill(&mut self, batch: Vec<Event>) {
        self.held = batch.len();
        self.ready = batch.into_iter();
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        // The connection must not wait for room nobody will make.
        self.room.close();
    }
}

impl Events {
    /// The next event, or `None` when the stream ended.
    ///
    /// Cancel safe: if the future is dropped before it completes, no event is lost (so it can
    /// be used in `tokio::select!`).
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.ready.next() {
                return Some(event);
            }
            self.release();
            // Cancel safe: the batch is stored in the same poll that receives it.
            let batch = self.rx.recv().await?;
            self.refill(batch);
        }
    }
}

impl futures_core::Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            if let Some(event) = self.ready.next() {
                return Poll::Ready(Some(event));
            }
            self.release();
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.refill(batch),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
