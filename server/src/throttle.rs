//! Per-address token buckets in fixed memory: the limit on message-recovery replays.
//!
//! Addresses are hashed into a fixed number of buckets (IPv6 addresses by their /64, which one
//! client usually holds whole), so memory does not grow with the addresses seen. Addresses that
//! share a bucket share its budget: the limit can only get stricter, never looser.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Buckets (a power of two). Two words each: 64 KiB in all.
const BUCKETS: usize = 4096;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Option<Instant>,
}

/// Token buckets refilled at `rate` units per second up to `burst`, one per address hash.
pub(crate) struct AddressBuckets {
    rate: f64,
    burst: f64,
    hasher: std::collections::hash_map::RandomState,
    buckets: Mutex<Vec<Bucket>>,
}

impl AddressBuckets {
    /// `rate` 0: no limit.
    pub(crate) fn new(rate: usize, burst: usize) -> Self {
        let burst = burst.max(rate) as f64;
        Self {
            rate: rate as f64,
            burst,
            hasher: std::collections::hash_map::RandomState::new(),
            buckets: Mutex::new(vec![
                Bucket {
                    tokens: burst,
                    at: None,
                };
                if rate == 0 { 0 } else { BUCKETS }
            ]),
        }
    }

    fn index(&self, ip: IpAddr) -> usize {
        // An IPv4 client on a dual-stack listener arrives as ::ffff:a.b.c.d: its own bucket,
        // not the one of every IPv4-mapped address (whose /64 is all zeros).
        let key: u128 = match ip.to_canonical() {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            // The /64: one host or one home network.
            IpAddr::V6(v6) => u128::from(v6) >> 64 | 1 << 127,
        };
        let mut h = self.hasher.build_hasher();
        key.hash(&mut h);
        (std::hash::Hasher::finish(&h) as usize) & (BUCKETS - 1)
    }

    /// Takes `cost` units for `ip` now; `Err(wait)` (nothing taken) when its bucket does not
    /// hold that many: `wait` is how long until it will (a cost above the burst is charged as
    /// the whole burst). Always `Ok` without a limit or without an address.
    pub(crate) fn take(
        &self,
        ip: Option<IpAddr>,
        cost: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        let Some(ip) = ip else { return Ok(()) };
        if self.rate == 0.0 || cost == 0 {
            return Ok(());
        }
        let i = self.index(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(b) = buckets.get_mut(i) else {
            return Ok(());
        };
        if let Some(at) = b.at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        }
        b.at = Some(now);
        let cost = (cost as f64).min(self.burst);
        if b.tokens >= cost {
            b.tokens -= cost;
            Ok(())
        } else {
            Err(Duration::try_from_secs_f64((cost - b.tokens) / self.rate).unwrap_or(Duration::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_the_rate_and_addresses_are_separate() {
        let t0 = Instant::now();
        let b = AddressBuckets::new(100, 300);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        // Another address in another bucket (the hash is keyed at random: look for one).
        let other = (2..=255u8)
            .map(|i| IpAddr::from([192, 0, 2, i]))
            .find(|o| b.index(*o) != b.index(a))
            .unwrap();
        assert_eq!(b.take(Some(a), 250, t0), Ok(()));
        let wait = b.take(Some(a), 100, t0).err();
        assert_eq!(wait, Some(Duration::from_millis(500)));
        assert_eq!(b.take(Some(other), 300, t0), Ok(()), "another address");
        assert_eq!(
            b.take(Some(a), 100, t0 + Duration::from_millis(500)),
            Ok(())
        );
        // A cost above the burst is charged as the burst: it passes once the bucket is full.
        assert!(b
            .take(Some(a), 10_000, t0 + Duration::from_secs(1))
            .is_err());
        assert_eq!(
            b.take(Some(a), 10_000, t0 + Duration::from_secs(10)),
            Ok(())
        );
        assert_eq!(b.take(None, 10_000, t0), Ok(()));
        let off = AddressBuckets::new(0, 0);
        assert_eq!(off.take(Some(a), usize::MAX, t0), Ok(()));
    }

    #[test]
    fn ipv4_mapped_addresses_share_their_ipv4_bucket_not_one_for_all() {
        let b = AddressBuckets::new(100, 100);
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(b.index(v4), b.index(mapped));
        // Two mapped addresses are as distinct as their IPv4 addresses.
        let spread: std::collections::HashSet<usize> = (1..=64u8)
            .map(|i| b.index(format!("::ffff:198.51.100.{i}").parse().unwrap()))
            .collect();
        assert!(spread.len() > 32, "{}", spread.len());
    }
}
