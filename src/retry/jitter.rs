//! Jitter: how far a retry may move from its nominal time ([`Jitter`]) and where the
//! randomness comes from ([`JitterSource`], [`SeededJitter`], [`NoJitter`]).

use std::time::Duration;

/// How a nominal delay is randomised, so that many deliveries failing together do not
/// retry together (the "thundering herd").
///
/// For a nominal delay `d`, the delay actually used lies in:
///
/// | mode | window |
/// |---|---|
/// | [`Jitter::None`] | exactly `d` |
/// | [`Jitter::Full`] | `0 ..= d` |
/// | [`Jitter::Equal`] | `d/2 ..= d` |
/// | [`Jitter::Proportional`] `{ percent: p }` | `d − p % ..= d + p %` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomisation: the schedule exactly as written.
    #[default]
    None,
    /// Uniform between zero and the nominal delay ("full jitter").
    Full,
    /// Half the nominal delay plus a uniform share of the other half ("equal jitter").
    Equal,
    /// The nominal delay plus or minus up to `percent` per cent of it (Standard Webhooks
    /// uses 20). `percent` must be at most 100.
    Proportional {
        /// The largest deviation, in per cent of the nominal delay.
        percent: u8,
    },
}

impl Jitter {
    /// The window a nominal delay of `nominal_ms` milliseconds may move within.
    pub(crate) fn window(self, nominal_ms: u64) -> JitterWindow {
        let (min, max) = match self {
            Jitter::None => (nominal_ms, nominal_ms),
            Jitter::Full => (0, nominal_ms),
            Jitter::Equal => (nominal_ms - nominal_ms / 2, nominal_ms),
            Jitter::Proportional { percent } => {
                let span = mul_div(nominal_ms, u64::from(percent), 100);
                (
                    nominal_ms.saturating_sub(span),
                    nominal_ms.saturating_add(span),
                )
            }
        };
        JitterWindow {
            min,
            nominal: nominal_ms,
            max,
        }
    }
}

/// `a * b / c` without intermediate overflow (saturating at `u64::MAX`).
fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    u64::try_from(u128::from(a) * u128::from(b) / u128::from(c)).unwrap_or(u64::MAX)
}

/// The range a jittered delay may take, handed to a [`JitterSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterWindow {
    min: u64,
    nominal: u64,
    max: u64,
}

impl JitterWindow {
    /// The shortest delay allowed.
    pub fn min(&self) -> Duration {
        Duration::from_millis(self.min)
    }

    /// The delay the schedule names before jitter.
    pub fn nominal(&self) -> Duration {
        Duration::from_millis(self.nominal)
    }

    /// The longest delay allowed.
    pub fn max(&self) -> Duration {
        Duration::from_millis(self.max)
    }

    /// Picks a delay from the window with `source`, in milliseconds, always within bounds.
    pub(crate) fn pick_millis<J: JitterSource + ?Sized>(self, source: &mut J) -> u64 {
        if self.min == self.max {
            return self.min;
        }
        let picked = source.pick(self);
        crate::retry::time::duration_to_millis(picked).clamp(self.min, self.max)
    }
}

/// Where jitter's randomness comes from. Inject one into [`RetryPolicy::plan`] to make the
/// planner deterministic in tests.
///
/// Implement [`next_u64`](JitterSource::next_u64) to supply uniformly random bits; the provided
/// [`pick`](JitterSource::pick) maps them into the window. Override `pick` for full control
/// (for example [`NoJitter`] always answers the nominal delay). A pick outside the window is
/// clamped into it, so a source can never break the declared bounds.
///
/// [`RetryPolicy::plan`]: crate::retry::RetryPolicy::plan
pub trait JitterSource {
    /// Returns 64 uniformly distributed random bits.
    fn next_u64(&mut self) -> u64;

    /// Picks a delay in `window.min() ..= window.max()`, uniformly by default.
    fn pick(&mut self, window: JitterWindow) -> Duration {
        let span = window.max - window.min;
        let offset = match span.checked_add(1) {
            // Lemire's multiply-shift: unbiased enough and free of division.
            Some(n) => ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64,
            None => self.next_u64(),
        };
        Duration::from_millis(window.min + offset)
    }
}

impl<J: JitterSource + ?Sized> JitterSource for &mut J {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }

    fn pick(&mut self, window: JitterWindow) -> Duration {
        (**self).pick(window)
    }
}

/// A source that never randomises: every pick is the nominal delay. For tests and for
/// reproducing a schedule exactly as documented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoJitter;

impl JitterSource for NoJitter {
    fn next_u64(&mut self) -> u64 {
        0
    }

    fn pick(&mut self, window: JitterWindow) -> Duration {
        window.nominal()
    }
}

/// A small, fast pseudo-random source (SplitMix64). Not cryptographic, and it need not be:
/// jitter only spreads load.
///
/// [`SeededJitter::from_os`] seeds it from the operating system (the default for production);
/// [`SeededJitter::new`] with a fixed seed makes a run reproducible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededJitter {
    state: u64,
}

impl SeededJitter {
    /// A source with a fixed seed: the same seed gives the same sequence.
    pub const fn new(seed: u64) -> Self {
        SeededJitter { state: seed }
    }

    /// A source seeded from the operating system's random number generator (`getrandom`).
    ///
    /// Should the OS source be unavailable, it falls back to a seed derived from the current
    /// time, which is still adequate for spreading retries.
    pub fn from_os() -> Self {
        let seed = getrandom::u64().unwrap_or_else(|_| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.as_secs() ^ u64::from(now.subsec_nanos()).rotate_left(32)
        });
        SeededJitter::new(seed)
    }
}

impl Default for SeededJitter {
    /// Same as [`SeededJitter::from_os`].
    fn default() -> Self {
        SeededJitter::from_os()
    }
}

impl JitterSource for SeededJitter {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(Jitter::None.window(1000).min, 1000);
        assert_eq!(Jitter::Full.window(1000).min, 0);
        assert_eq!(Jitter::Equal.window(1001).min, 501);
        let w = Jitter::Proportional { percent: 20 }.window(5000);
        assert_eq!((w.min, w.nominal, w.max), (4000, 5000, 6000));
        let huge = Jitter::Proportional { percent: 100 }.window(u64::MAX);
        assert_eq!((huge.min, huge.max), (0, u64::MAX));
    }

    #[test]
    fn full_range_window_does_not_overflow() {
        let w = Jitter::Full.window(u64::MAX);
        let mut j = SeededJitter::new(7);
        for _ in 0..100 {
            let _ = w.pick_millis(&mut j);
        }
    }

    #[test]
    fn no_jitter_picks_nominal() {
        let w = Jitter::Proportional { percent: 20 }.window(5000);
        assert_eq!(w.pick_millis(&mut NoJitter), 5000);
    }
}
