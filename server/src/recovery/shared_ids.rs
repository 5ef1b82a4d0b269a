//! The IDs of the messages the engine stored lately: what a gateway standing by waits for
//! (`cluster::history`), remembered for the engines' deduplication window.

use std::time::Instant;

use super::shared::DEDUP_WINDOW;
use super::Recovery;

/// IDs of the messages read back from the engine that are remembered at most.
const STORED_IDS: usize = 1 << 16;

impl Recovery {
    /// Remembers the ID of a stored message for [`DEDUP_WINDOW`].
    pub(super) fn note_stored(&self, id: &str) {
        let now = Instant::now();
        let mut ids = self.stored_ids.lock().unwrap_or_else(|e| e.into_inner());
        while ids.0.len() >= STORED_IDS
            || ids
                .0
                .front()
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) >= DEDUP_WINDOW)
        {
            let Some((old, _)) = ids.0.pop_front() else {
                break;
            };
            ids.1.remove(&old);
        }
        if ids.1.insert(id.to_owned()) {
            ids.0.push_back((id.to_owned(), now));
        }
    }

    /// Whether a message with this ID was read back from the engine lately.
    pub(crate) fn was_stored(&self, id: &str) -> bool {
        // IDs repeat after the window (a request may send the same text again): the older
        // ones are forgotten first.
        let now = Instant::now();
        let mut ids = self.stored_ids.lock().unwrap_or_else(|e| e.into_inner());
        while ids
            .0
            .front()
            .is_some_and(|(_, at)| now.saturating_duration_since(*at) >= DEDUP_WINDOW)
        {
            if let Some((old, _)) = ids.0.pop_front() {
                ids.1.remove(&old);
            }
        }
        ids.1.contains(id)
    }
}
