//! Disconnect storms: thousands of clients leaving at once (a proxy restarting, a network
//! blip, the end of a load test).
//!
//! Each disconnect reaches the runtime thread as an epoll event. A thread waiting in `epoll_wait`
//! is woken by the kernel for every one of them, and the kernel does that waking in the context
//! of whoever sent the FIN or RST: on loopback or a local proxy, the peer pays an
//! inter-processor wake-up per disconnect (measured with `perf -a`: ~2 µs per RST for the
//! client's `close()` on this 2-vCPU machine). While a storm lasts, the runtime thread naps
//! for [`NAP`] before it waits for events: disconnects arriving meanwhile are queued by the
//! kernel without a wake-up and handled together when it wakes. The cost is at most [`NAP`]
//! plus the kernel's timer slack (50 µs by default) of extra latency for other connections, only
//! during a storm. Measured (`node bench/run.js sse-close-rst --rounds 5`, 10,000 RST closes
//! against hyper-express in the same run): 1.09-1.13x without the nap, 0.97-1.05x with naps of
//! 20, 50 or 100 µs (no length clearly better than another; the shortest delays least).
//!
//! A storm is [`STORM_ENDS`] or more ends reported within one millisecond, that millisecond
//! being the current or the previous one. Only the thread of a current-thread runtime (one
//! worker, the default) naps; see `server::Runtime::start`. Responses that complete normally are not counted, so
//! busy servers with many short-lived connections never nap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Ends per millisecond from which the runtime naps before waiting.
pub const STORM_ENDS: u64 = 4;

/// How long the runtime thread naps before each wait while a storm lasts.
pub const NAP: Duration = Duration::from_micros(20);

const COUNT_BITS: u32 = 20;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// Ends reported per millisecond slot: `(slot << 20) | count`, one word so readers never see a
/// slot with another slot's count. Concurrent reports may lose a count (a plain load and store):
/// this only makes the estimate of a storm slightly low, which a storm's rate dwarfs.
#[derive(Default)]
pub struct EndRate(AtomicU64);

impl EndRate {
  /// Records one end reported now.
  pub fn note(&self) {
    self.note_at(now_ms());
  }

  /// True while a disconnect storm lasts (see the module docs).
  pub fn storm(&self) -> bool {
    // Ordinary traffic stops here, without reading the clock.
    if self.0.load(Ordering::Relaxed) & COUNT_MASK < STORM_ENDS {
      return false;
    }
    self.storm_at(now_ms())
  }

  /// Naps for [`NAP`] when a storm lasts; called by a runtime thread about to wait for events.
  pub fn nap_if_storm(&self) {
    if self.storm() {
      std::thread::sleep(NAP);
    }
  }

  fn note_at(&self, ms: u64) {
    let v = self.0.load(Ordering::Relaxed);
    let slot = ms & (u64::MAX >> COUNT_BITS);
    let count = if v >> COUNT_BITS == slot {
      ((v & COUNT_MASK) + 1).min(COUNT_MASK)
    } else {
      1
    };
    self
      .0
      .store((slot << COUNT_BITS) | count, Ordering::Relaxed);
  }

  fn storm_at(&self, ms: u64) -> bool {
    let v = self.0.load(Ordering::Relaxed);
    let slot = ms & (u64::MAX >> COUNT_BITS);
    if v & COUNT_MASK < STORM_ENDS {
      return false;
    }
    if slot.wrapping_sub(v >> COUNT_BITS) <= 1 {
      return true;
    }
    // Over: forget the count, so the next checks take the fast path (unless an end was noted
    // meanwhile, which then stays).
    let _ = self
      .0
      .compare_exchange(v, 0, Ordering::Relaxed, Ordering::Relaxed);
    false
  }
}

/// Milliseconds on a process-wide monotonic clock.
fn now_ms() -> u64 {
  static EPOCH: OnceLock<Instant> = OnceLock::new();
  let ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
  u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
  use super::{EndRate, STORM_ENDS};

  #[test]
  fn a_storm_is_enough_ends_within_one_millisecond_and_lasts_one_more() {
    let rate = EndRate::default();
    assert!(!rate.storm_at(100));
    for _ in 0..STORM_ENDS - 1 {
      rate.note_at(100);
    }
    assert!(!rate.storm_at(100), "fewer ends than STORM_ENDS");
    rate.note_at(100);
    assert!(rate.storm_at(100));
    assert!(rate.storm_at(101), "the previous millisecond still counts");
    assert!(
      !rate.storm_at(102),
      "over once a millisecond passes without a full slot"
    );
  }

  #[test]
  fn ends_spread_over_milliseconds_are_no_storm() {
    let rate = EndRate::default();
    for ms in 0..1000 {
      for _ in 0..STORM_ENDS - 1 {
        rate.note_at(ms);
      }
      assert!(!rate.storm_at(ms), "{ms}");
    }
  }

  #[test]
  fn the_count_saturates_instead_of_spilling_into_the_slot() {
    let rate = EndRate::default();
    for _ in 0..(1 << 21) {
      rate.note_at(7);
    }
    assert!(rate.storm_at(7));
    rate.note_at(8);
    assert!(!rate.storm_at(8), "a new slot starts from one end");
  }

  #[test]
  fn a_storm_that_is_over_is_forgotten() {
    let rate = EndRate::default();
    for _ in 0..STORM_ENDS {
      rate.note_at(5);
    }
    assert!(rate.storm_at(6));
    assert!(!rate.storm_at(9));
    assert_eq!(rate.0.load(std::sync::atomic::Ordering::Relaxed), 0);
  }

  #[test]
  fn without_reports_the_real_clock_sees_no_storm() {
    let rate = EndRate::default();
    assert!(!rate.storm());
    rate.nap_if_storm();
  }
}
