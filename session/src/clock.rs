//! The session core's notion of time: a monotonic timestamp the driver passes in.

use std::ops::Add;
use std::time::Duration;

/// A point on a monotonic clock, in milliseconds since an origin the driver chooses
/// (usually the moment the connection object was created).
///
/// The session core never reads a clock: every method that depends on time takes `now: Millis`.
/// Drivers must feed a monotonic clock (`tokio::time::Instant`, `performance.now()`), never wall
/// time, so that a wall-clock jump cannot fire or suppress a heartbeat timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// The clock's origin.
    pub const ZERO: Millis = Millis(0);

    /// The timestamp `elapsed` after the origin (saturating at `u64::MAX` milliseconds).
    pub fn from_elapsed(elapsed: Duration) -> Millis {
        Millis(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
    }

    /// The time from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Millis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// The time from the origin to `self`.
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl Add<Duration> for Millis {
    type Output = Millis;

    fn add(self, rhs: Duration) -> Millis {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Millis(self.0.saturating_add(ms))
    }
}

/// Whole milliseconds of a duration, saturating.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Millis(5) + Duration::from_millis(7), Millis(12));
        assert_eq!(
            Millis(u64::MAX) + Duration::from_millis(1),
            Millis(u64::MAX)
        );
        assert_eq!(Millis(3).saturating_since(Millis(5)), Duration::ZERO);
        assert_eq!(
            Millis(9).saturating_since(Millis(5)),
            Duration::from_millis(4)
        );
        assert_eq!(Millis::from_elapsed(Duration::from_micros(2500)), Millis(2));
        assert_eq!(Millis(42).as_duration(), Duration::from_millis(42));
    }
}
