//! The reconnect policy: when to try again, built on `backon`.

use std::time::Duration;

use backon::{BackoffBuilder, ConstantBuilder, ExponentialBuilder};

use super::text::{message, Part};

/// How the delay between reconnect attempts grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackoffKind {
    /// Doubling from `delay` up to `max_delay`, with optional jitter.
    Exponential,
    /// Always `delay`: the behaviour of the original clients (3000 ms every time).
    Fixed,
}

/// When and how often a lost connection is opened again.
///
/// The default is exponential: the first retry after [`delay`](Self::delay) (3 s, as the Java
/// client's `reconnectDelay`), doubling up to [`max_delay`](Self::max_delay) (30 s), with
/// jitter, without an attempt limit. The attempt count and the delay start over only after a
/// connection was healthy (a heartbeat round trip completed), so a server that accepts and
/// drops every socket is still backed off. [`ReconnectPolicy::fixed`] reproduces the original.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Whether to reconnect at all. Default `true`. With `false`, the first lost connection
    /// stops the session with an error.
    pub enabled: bool,
    /// Growth of the delay. Default [`BackoffKind::Exponential`].
    pub kind: BackoffKind,
    /// First delay (and the only one for [`BackoffKind::Fixed`]). Default 3 s.
    pub delay: Duration,
    /// Cap of the delay, jitter included. Default 30 s. Larger caps spare a struggling server;
    /// smaller ones reconnect sooner after a long outage.
    pub max_delay: Duration,
    /// Randomise each delay within `[step, 2 * step)` (never above `max_delay`; the steps then
    /// double only up to `max_delay / 2`), so that many clients dropped at once do not return at
    /// once. Default `true` for exponential. With [`BackoffKind::Fixed`] each delay is
    /// randomised within `[delay, 2 * delay)` (the browser client's default; off in
    /// [`ReconnectPolicy::fixed`], the original's exact 3000 ms).
    pub jitter: bool,
    /// Stop after this many failed attempts in a row. Default `None` (never give up).
    pub max_attempts: Option<u32>,
    /// The smallest delay after a close with code 1013 (try again later). Default 30 s.
    pub try_again_later_delay: Duration,
    /// HTTP statuses answering the upgrade that stop the session instead of retrying.
    /// Default 401, 403 and 404: a wrong token or path does not heal by retrying.
    pub stop_on_http_status: Vec<u16>,
    /// With the heartbeat off there is no round trip to prove health: a connection that stayed
    /// open this long counts as healthy instead. Default 30 s.
    pub healthy_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            kind: BackoffKind::Exponential,
            delay: Duration::from_secs(3),
            max_delay: Duration::from_secs(30),
            jitter: true,
            max_attempts: None,
            try_again_later_delay: Duration::from_secs(30),
            stop_on_http_status: vec![401, 403, 404],
            healthy_after: Duration::from_secs(30),
        }
    }
}

impl ReconnectPolicy {
    /// The default exponential policy.
    pub fn exponential() -> ReconnectPolicy {
        ReconnectPolicy::default()
    }

    /// The original clients' policy: 3000 ms before every attempt, no jitter, no limit.
    pub fn fixed() -> ReconnectPolicy {
        ReconnectPolicy {
            kind: BackoffKind::Fixed,
            jitter: false,
            ..ReconnectPolicy::default()
        }
    }

    /// Never reconnect.
    pub fn disabled() -> ReconnectPolicy {
        ReconnectPolicy {
            enabled: false,
            ..ReconnectPolicy::default()
        }
    }

    /// Sets [`enabled`](Self::enabled).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets [`kind`](Self::kind).
    pub fn kind(mut self, kind: BackoffKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets [`delay`](Self::delay).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets [`max_delay`](Self::max_delay).
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`max_attempts`](Self::max_attempts).
    pub fn max_attempts(mut self, max_attempts: Option<u32>) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets [`try_again_later_delay`](Self::try_again_later_delay).
    pub fn try_again_later_delay(mut self, delay: Duration) -> Self {
        self.try_again_later_delay = delay;
        self
    }

    /// Sets [`stop_on_http_status`](Self::stop_on_http_status).
    pub fn stop_on_http_status(mut self, statuses: impl Into<Vec<u16>>) -> Self {
        self.stop_on_http_status = statuses.into();
        self
    }

    /// Sets [`healthy_after`](Self::healthy_after).
    pub fn healthy_after(mut self, healthy_after: Duration) -> Self {
        self.healthy_after = healthy_after;
        self
    }

    /// Cross-field checks.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.kind == BackoffKind::Exponential && self.max_delay < self.delay {
            return Err(message(&[
                Part::Str("reconnect max_delay ("),
                Part::Duration(self.max_delay),
                Part::Str(") is below delay ("),
                Part::Duration(self.delay),
                Part::Str(")"),
            ]));
        }
        Ok(())
    }
}

type DelayIter = Box<dyn Iterator<Item = Duration> + Send + Sync>;

/// The delays of one run of failed attempts; rebuilt when the connection was healthy.
pub(crate) struct ReconnectBackoff {
    policy: ReconnectPolicy,
    seed: u64,
    delays: DelayIter,
    attempt: u32,
}

impl std::fmt::Debug for ReconnectBackoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectBackoff")
            .field("policy", &self.policy)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl ReconnectBackoff {
    /// `seed` feeds the jitter; the core reads no randomness of its own.
    pub(crate) fn new(policy: ReconnectPolicy, seed: u64) -> ReconnectBackoff {
        let delays = build(&policy, seed);
        ReconnectBackoff {
            policy,
            seed,
            delays,
            attempt: 0,
        }
    }

    pub(crate) fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Attempts made since the last reset.
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt, or `None` when the attempt limit is reached.
    pub(crate) fn next_delay(&mut self) -> Option<Duration> {
        let delay = self.delays.next()?;
        self.attempt = self.attempt.saturating_add(1);
        Some(match self.policy.kind {
            BackoffKind::Exponential => delay.min(self.policy.max_delay),
            _ => delay,
        })
    }

    /// Starts over: the connection was healthy.
    pub(crate) fn reset(&mut self) {
        self.seed = splitmix64(self.seed);
        self.delays = build(&self.policy, self.seed);
        self.attempt = 0;
    }
}

fn build(policy: &ReconnectPolicy, seed: u64) -> DelayIter {
    let times = policy.max_attempts.map(|n| n as usize);
    match policy.kind {
        BackoffKind::Fixed => {
            let mut b = ConstantBuilder::new().with_delay(policy.delay);
            if policy.jitter {
                // Each delay is `delay` plus up to `delay` more (3 s becomes 3 to 6 s): a restart
                // does not bring every client back in the same instant.
                b = b.with_jitter().with_jitter_seed(seed);
            }
            let b = match times {
                Some(n) => b.with_max_times(n),
                None => b.without_max_times(),
            };
            Box::new(b.build())
        }
        _ => {
            let mut b = ExponentialBuilder::new()
                .with_factor(2.0)
                .with_min_delay(policy.delay)
                .with_max_delay(policy.max_delay);
            if policy.jitter {
                // backon adds up to one more step: cap the step at half the maximum.
                b = b
                    .with_max_delay((policy.max_delay / 2).max(policy.delay))
                    .with_jitter()
                    .with_jitter_seed(seed);
            }
            let b = match times {
                Some(n) => b.with_max_times(n),
                None => b.without_max_times(),
            };
            Box::new(b.build())
        }
    }
}

/// A step of the SplitMix64 generator: derives a fresh jitter seed for each run of attempts
/// (drivers also use it to mix their entropy into a seed).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn delays(policy: ReconnectPolicy, seed: u64, n: usize) -> Vec<Duration> {
        let mut b = ReconnectBackoff::new(policy, seed);
        (0..n).map_while(|_| b.next_delay()).collect()
    }

    #[test]
    fn defaults_match_the_java_client() {
        let p = ReconnectPolicy::default();
        assert!(p.enabled);
        assert_eq!(p.delay, 3 * S);
        assert_eq!(p.max_delay, 30 * S);
        assert_eq!(p.max_attempts, None);
        assert_eq!(p.stop_on_http_status, vec![401, 403, 404]);
        assert!(ReconnectPolicy::disabled().validate().is_ok());
        assert!(!ReconnectPolicy::disabled().enabled);
    }

    #[test]
    fn fixed_reproduces_the_original() {
        let d = delays(ReconnectPolicy::fixed(), 1, 50);
        assert_eq!(d.len(), 50);
        assert!(d.iter().all(|d| *d == Duration::from_millis(3000)));
    }

    #[test]
    fn fixed_with_jitter_spreads_each_delay_over_one_more_delay() {
        let p = ReconnectPolicy::fixed().jitter(true);
        // Many clients (seeds) that lost the gateway at once: their first delays spread over
        // 3 to 6 s, none below the original's 3 s.
        let firsts: Vec<u64> = (0..200u64)
            .map(|seed| delays(p.clone(), splitmix64(seed), 1)[0].as_millis() as u64)
            .collect();
        assert!(
            firsts.iter().all(|d| (3000..6000).contains(d)),
            "{firsts:?}"
        );
        let (min, max) = (firsts.iter().min().unwrap(), firsts.iter().max().unwrap());
        assert!(max - min > 2000, "spread {min}..{max}");
        // One client's later delays stay in the same range.
        let d = delays(p, 7, 20);
        assert!(d
            .iter()
            .all(|d| (3000..6000).contains(&(d.as_millis() as u64))));
    }

    #[test]
    fn exponential_without_jitter_doubles_up_to_the_cap() {
        let p = ReconnectPolicy::default().jitter(false);
        let d: Vec<u64> = delays(p, 1, 8).iter().map(|d| d.as_secs()).collect();
        assert_eq!(d, vec![3, 6, 12, 24, 30, 30, 30, 30]);
    }

    #[test]
    fn jitter_stays_within_bounds_and_grows() {
        for seed in 0..200u64 {
            let d = delays(ReconnectPolicy::default(), seed, 8);
            let steps = [3.0, 6.0, 12.0, 15.0, 15.0, 15.0, 15.0, 15.0];
            for (i, (got, step)) in d.iter().zip(steps).enumerate() {
                let got = got.as_secs_f64();
                assert!(got >= step, "seed {seed} attempt {i}: {got} < {step}");
                assert!(got < 2.0 * step + 1e-6, "seed {seed} attempt {i}: {got}");
                assert!(got <= 30.0, "seed {seed} attempt {i}: {got} above the cap");
            }
        }
    }

    #[test]
    fn jitter_spreads_clients() {
        let firsts: std::collections::BTreeSet<Duration> = (0..50u64)
            .map(|seed| delays(ReconnectPolicy::default(), splitmix64(seed), 1)[0])
            .collect();
        assert!(
            firsts.len() > 40,
            "only {} distinct first delays",
            firsts.len()
        );
    }

    #[test]
    fn same_seed_same_delays() {
        let p = ReconnectPolicy::default();
        assert_eq!(delays(p.clone(), 7, 6), delays(p, 7, 6));
    }

    #[test]
    fn jitter_with_delay_above_half_the_cap_is_clamped() {
        let p = ReconnectPolicy::default().delay(20 * S).max_delay(30 * S);
        for seed in 0..50 {
            for d in delays(p.clone(), seed, 5) {
                assert!(d >= 20 * S && d <= 30 * S, "{d:?}");
            }
        }
    }

    #[test]
    fn attempt_limit_gives_up() {
        let p = ReconnectPolicy::default().max_attempts(Some(3));
        let mut b = ReconnectBackoff::new(p, 1);
        assert!(b.next_delay().is_some());
        assert!(b.next_delay().is_some());
        assert!(b.next_delay().is_some());
        assert_eq!(b.attempt(), 3);
        assert_eq!(b.next_delay(), None);
        assert_eq!(b.attempt(), 3);
        let fixed = ReconnectPolicy::fixed().max_attempts(Some(2));
        assert_eq!(delays(fixed, 1, 10).len(), 2);
    }

    #[test]
    fn reset_starts_over() {
        let p = ReconnectPolicy::default()
            .jitter(false)
            .max_attempts(Some(2));
        let mut b = ReconnectBackoff::new(p, 1);
        b.next_delay();
        assert_eq!(b.next_delay(), Some(6 * S));
        assert_eq!(b.next_delay(), None);
        b.reset();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.next_delay(), Some(3 * S));
    }

    #[test]
    fn validate_rejects_a_cap_below_the_delay() {
        let p = ReconnectPolicy::default().delay(10 * S).max_delay(5 * S);
        assert!(p.validate().is_err());
        assert!(ReconnectPolicy::fixed()
            .delay(10 * S)
            .max_delay(5 * S)
            .validate()
            .is_ok());
    }
}
