//! The worker that offers this gateway's messages to the engine, one by one in the order it
//! received them: at once on the gateway that stores (the writer), after a stand-by wait on
//! the others; and the histories recovering clients ask to start.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Engine, Offered, Role};
use crate::history::{Append, HistoryHost, Job, Tip};

/// How long one offer may take before the engine counts as unreachable.
const APPEND_TIMEOUT: Duration = Duration::from_secs(2);
/// After the engine failed, offers are not tried again for this long (the messages meanwhile
/// go out under a local epoch at once, instead of each waiting for a timeout).
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Offers retried when another gateway stored a message of the path in between.
const MAX_TRIES: usize = 8;
/// How long a gateway that is not the history's writer waits, from receiving a message, for
/// the writer to store it before it stores it itself (the writer is gone or stuck).
const STANDBY_WAIT: Duration = Duration::from_secs(1);
/// The same for a sender none of whose messages this gateway has seen stored yet (it joined a
/// moment ago, and may not have received the sender's messages before this one).
const UNSYNCED_WAIT: Duration = Duration::from_secs(10);
/// How often a standing-by gateway looks again whether it has become the writer.
const ROLE_CHECK: Duration = Duration::from_millis(100);
/// Senders remembered as in step with the history; past this many, forgotten all at once.
const MAX_SENDERS: usize = 4096;

/// Offers the queued messages one by one, in the order this gateway received them (and opens
/// the histories recovering clients ask for).
pub(super) async fn offer_loop(
    engine: Arc<dyn Engine>,
    host: Weak<dyn HistoryHost>,
    mut queue: mpsc::Receiver<Job>,
    role: Arc<dyn Fn() -> Role + Send + Sync>,
    own_id: String,
) {
    let mut paused_until: Option<Instant> = None;
    // Senders whose messages this gateway has seen stored: from then on it received every one
    // of theirs, so it may store them itself, in order.
    let mut in_step: std::collections::HashSet<String> = std::collections::HashSet::new();
    while let Some(job) = queue.recv().await {
        let Some(host) = host.upgrade() else {
            return;
        };
        let message = match job {
            Job::Offer(message) => message,
            Job::Open { path, epoch } => {
                if paused_until.is_none_or(|t| Instant::now() >= t) {
                    let opened =
                        tokio::time::timeout(APPEND_TIMEOUT, engine.open(&path, epoch)).await;
                    match opened {
                        Ok(Ok(Some(existing))) => host.stored(existing),
                        Ok(Ok(None)) => {}
                        Ok(Err(error)) => {
                            tracing::debug!(path, %error, "cluster: a shared history not opened");
                        }
                        Err(_) => tracing::debug!(path, "cluster: a shared history not opened"),
                    }
                }
                continue;
            }
        };
        // Its own broadcasts a gateway has all of.
        let known = message.sender == own_id || in_step.contains(&message.sender);
        if stand_by(&*host, &message, &*role, known).await {
            note_in_step(&mut in_step, &message.sender);
            continue; // the writer stored it
        }
        if paused_until.is_some_and(|t| Instant::now() < t) {
            host.unstored(message);
            continue;
        }
        match offer(&*engine, &*host, &message).await {
            Ok(()) => {
                note_in_step(&mut in_step, &message.sender);
                if paused_until.take().is_some() {
                    tracing::info!("cluster: the history engine takes messages again");
                }
                host.engine_up(true);
            }
            Err(NotOffered::Contended) => {
                tracing::debug!(path = %message.path, "cluster: the path changed during each \
                    of {MAX_TRIES} offers; the message goes out under a local epoch");
                host.unstored(message);
            }
            Err(NotOffered::Unreachable(reason)) => {
                if paused_until.is_none() {
                    tracing::warn!(%reason, "cluster: the history engine is unreachable; \
                        recovering sockets get messages under a local epoch meanwhile");
                }
                paused_until = Some(Instant::now() + RETRY_AFTER);
                host.engine_up(false);
                host.unstored(message);
            }
        }
    }
}

/// What the next offer follows, after the engine refused `mine`: the engine's tip `theirs`,
/// unless it is behind what this gateway already read of the same epoch (the engine lost
/// acknowledged messages): then a new epoch after it, so no position is handed out twice.
fn follow_tip(mine: Tip, theirs: Option<Tip>) -> Tip {
    let fresh = crate::history::random_u64;
    match (mine, theirs) {
        (
            Tip::Known { epoch, seq, .. },
            Some(Tip::Known {
                epoch: e,
                seq: s,
                pos,
            }),
        ) if e == epoch && s < seq => Tip::Known {
            epoch: fresh(),
            seq: 0,
            pos,
        },
        (_, Some(t)) => t,
        (Tip::Fresh { epoch }, None) => Tip::Fresh { epoch },
        (Tip::Known { .. }, None) => Tip::Fresh { epoch: fresh() },
    }
}

/// Notes that `sender`'s messages are seen stored (the set is emptied when full).
fn note_in_step(in_step: &mut std::collections::HashSet<String>, sender: &str) {
    if in_step.contains(sender) {
        return;
    }
    if in_step.len() >= MAX_SENDERS {
        in_step.clear();
    }
    in_step.insert(sender.to_owned());
}

/// On a gateway that is not the writer: waits until the writer stored `message` (`true`),
/// this gateway became the writer, or [`STANDBY_WAIT`] passed since it was received
/// ([`UNSYNCED_WAIT`] when an older gateway is the writer and this one has not seen any
/// message of the sender stored yet).
/// Only the writer stores as messages come, so they are stored in the order it received them
/// (the order the sender sent them in), not in the order of whichever gateway was quickest,
/// which may be one that did not receive the ones before (it joined a moment ago).
async fn stand_by(
    host: &dyn HistoryHost,
    message: &Append,
    role: &(dyn Fn() -> Role + Send + Sync),
    in_step: bool,
) -> bool {
    loop {
        let wait = match role() {
            // The writer offers whatever it has (the engine drops what is stored already).
            Role::Writer => return false,
            Role::Follower if !in_step => UNSYNCED_WAIT,
            Role::Follower | Role::Settling => STANDBY_WAIT,
        };
        if host.was_stored(&message.id) {
            return true;
        }
        let deadline = message.received + wait;
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        // Woken by the next stored message, and at least every ROLE_CHECK: the writer may
        // have left meanwhile.
        host.changed((deadline - now).min(ROLE_CHECK)).await;
    }
}

/// Why an offer did not get the message into the engine.
enum NotOffered {
    /// The engine did not answer, or answered with an error.
    Unreachable(String),
    /// Other gateways stored messages of the path all the while (the engine works).
    Contended,
}

impl From<String> for NotOffered {
    fn from(reason: String) -> Self {
        NotOffered::Unreachable(reason)
    }
}

/// One message offered until the engine has it (stored by us or by another gateway).
async fn offer(
    engine: &dyn Engine,
    host: &dyn HistoryHost,
    message: &Append,
) -> Result<(), NotOffered> {
    let mut tip = host.tip(&message.path);
    for _ in 0..MAX_TRIES {
        let offered = tokio::time::timeout(APPEND_TIMEOUT, engine.offer(message, tip))
            .await
            .map_err(|_| NotOffered::Unreachable("no answer in time".to_owned()))??;
        match offered {
            Offered::Stored(stored) => {
                // This gateway's sockets need not wait for the reader to bring it back.
                host.stored_here(stored);
                return Ok(());
            }
            Offered::Done => return Ok(()),
            Offered::WrongTip => {
                let mine = host.tip(&message.path);
                let theirs = tokio::time::timeout(APPEND_TIMEOUT, engine.tip(&message.path))
                    .await
                    .map_err(|_| NotOffered::Unreachable("no answer in time".to_owned()))??;
                tip = follow_tip(mine, theirs);
            }
        }
    }
    Err(NotOffered::Contended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_behind_what_was_read_gets_a_new_epoch() {
        let known = |epoch, seq, pos| Tip::Known { epoch, seq, pos };
        // The engine has what was read, or more: follow it.
        assert_eq!(
            follow_tip(known(7, 3, 30), Some(known(7, 5, 50))),
            known(7, 5, 50)
        );
        assert_eq!(
            follow_tip(known(7, 3, 30), Some(known(8, 1, 60))),
            known(8, 1, 60)
        );
        assert_eq!(
            follow_tip(Tip::Fresh { epoch: 5 }, None),
            Tip::Fresh { epoch: 5 }
        );
        // It lost messages of the epoch read here: a new epoch, after its newest message.
        match follow_tip(known(7, 3, 30), Some(known(7, 2, 20))) {
            Tip::Known {
                epoch,
                seq: 0,
                pos: 20,
            } => assert_ne!(epoch, 7),
            other => panic!("{other:?}"),
        }
        // It has nothing of a path read here: a new epoch too.
        match follow_tip(known(7, 3, 30), None) {
            Tip::Fresh { epoch } => assert_ne!(epoch, 7),
            other => panic!("{other:?}"),
        }
    }
}
