//! Socket slots: the limits on open WebSockets (and event streams) in total and per remote
//! address; and a connection's place under the limit of plain HTTP connections, which one
//! that becomes a socket gives back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Total,
    PerAddress,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open sockets against the limits (0 = no limit).
pub(crate) struct Slots {
    max_total: usize,
    max_per_ip: usize,
    counts: Arc<Mutex<Counts>>,
}

/// One held slot; dropping it frees it (socket closed or upgrade failed).
pub(crate) struct Slot {
    ip: Option<IpAddr>,
    counts: Arc<Mutex<Counts>>,
}

impl Slots {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            max_total,
            max_per_ip,
            counts: Arc::default(),
        }
    }

    /// Takes a slot for a socket from `ip`, or says which limit is reached.
    pub(crate) fn acquire(&self, ip: Option<IpAddr>) -> Result<Slot, Refusal> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if self.max_total > 0 && c.total >= self.max_total {
            return Err(Refusal::Total);
        }
        if let (Some(ip), true) = (ip, self.max_per_ip > 0) {
            if c.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
                return Err(Refusal::PerAddress);
            }
        }
        c.total += 1;
        if let Some(ip) = ip {
            *c.per_ip.entry(ip).or_default() += 1;
        }
        Ok(Slot {
            ip,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(n) = c.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    c.per_ip.remove(&ip);
                }
            }
        }
    }
}

/// A connection's permit under the limit of plain HTTP connections, in the extensions of each of
/// its requests. A WebSocket gives it back when upgraded (its connection task ends with HTTP);
/// an event stream gives it back when it opens ([`release`](Self::release)): both count under
/// the socket limits instead.
#[derive(Clone, Default)]
pub(crate) struct ConnPermit(Arc<Mutex<Option<tokio::sync::OwnedSemaphorePermit>>>);

impl ConnPermit {
    pub(crate) fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        Self(Arc::new(Mutex::new(Some(permit))))
    }

    /// Gives the permit back (once; later calls do nothing).
    pub(crate) fn release(&self) {
        drop(self.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_total_and_per_address_and_frees_on_drop() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = slots.acquire(Some(a)).unwrap();
        let _a2 = slots.acquire(Some(a)).unwrap();
        assert_eq!(slots.acquire(Some(a)).err(), Some(Refusal::PerAddress));
        let _b1 = slots.acquire(Some(b)).unwrap();
        assert_eq!(slots.acquire(Some(b)).err(), Some(Refusal::Total));
        drop(a1);
        assert!(slots.acquire(Some(a)).is_ok());
        let unlimited = Slots::new(0, 0);
        let held: Vec<_> = (0..100)
            .map(|_| unlimited.acquire(Some(a)).unwrap())
            .collect();
        assert_eq!(held.len(), 100);
    }
}
