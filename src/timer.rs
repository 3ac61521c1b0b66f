//! A coarse clock and the timer hyper uses for its header-read timeout.
//!
//! hyper arms a timer for every request head it reads (a client must send a whole head within
//! 30 s). With tokio's timer that is a clock read, a timer-wheel insert and a removal per request.
//! Here a server keeps one millisecond clock, advanced by its housekeeping task about once a
//! second; a head timer only records its deadline in its connection's [`HeadSlot`], and the
//! housekeeping task wakes the connections whose deadline has passed. The timeout then fires
//! between about one second early and one second late, which is all a 30 s limit needs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;

use crate::response::ConnCtl;

/// Milliseconds since the server started, advanced by [`Clock::tick`].
pub struct Clock {
  base: Instant,
  ms: AtomicU64,
}

impl Clock {
  pub fn new() -> Arc<Clock> {
    Arc::new(Clock {
      base: Instant::now(),
      ms: AtomicU64::new(0),
    })
  }

  /// Reads the real time into the clock.
  pub fn tick(&self) {
    self.set(self.base.elapsed().as_millis() as u64);
  }

  fn set(&self, ms: u64) {
    self.ms.fetch_max(ms, Ordering::AcqRel);
  }

  pub fn now_ms(&self) -> u64 {
    self.ms.load(Ordering::Acquire)
  }

  fn instant(&self) -> Instant {
    self.base + Duration::from_millis(self.now_ms())
  }

  fn ms_of(&self, t: Instant) -> u64 {
    t.saturating_duration_since(self.base).as_millis() as u64
  }
}

/// Where a connection's pending head timer waits.
pub struct HeadSlot {
  /// Clock milliseconds at which the timer fires; `u64::MAX` while none is pending.
  deadline: AtomicU64,
  waker: AtomicWaker,
}

impl Default for HeadSlot {
  fn default() -> Self {
    HeadSlot {
      deadline: AtomicU64::new(u64::MAX),
      waker: AtomicWaker::new(),
    }
  }
}

impl HeadSlot {
  /// Wakes the pending timer if its deadline has passed at `now_ms`.
  pub fn wake_if_due(&self, now_ms: u64) {
    if self.deadline.load(Ordering::Acquire) <= now_ms {
      self.waker.wake();
    }
  }
}

/// hyper's timer for one connection (see the module docs).
pub struct HeadTimer {
  clock: Arc<Clock>,
  conn: Arc<ConnCtl>,
}

impl HeadTimer {
  pub fn new(clock: Arc<Clock>, conn: Arc<ConnCtl>) -> HeadTimer {
    HeadTimer { clock, conn }
  }
}

impl hyper::rt::Timer for HeadTimer {
  fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
    self.sleep_until(self.clock.instant() + duration)
  }

  fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
    Box::pin(HeadSleep {
      deadline: self.clock.ms_of(deadline),
      clock: self.clock.clone(),
      conn: self.conn.clone(),
    })
  }

  fn now(&self) -> Instant {
    self.clock.instant()
  }
}

struct HeadSleep {
  deadline: u64,
  clock: Arc<Clock>,
  conn: Arc<ConnCtl>,
}

impl Future for HeadSleep {
  type Output = ();

  fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
    if self.clock.now_ms() >= self.deadline {
      return Poll::Ready(());
    }
    let slot = &self.conn.head;
    slot.waker.register(cx.waker());
    slot.deadline.store(self.deadline, Ordering::Release);
    // The clock may have passed the deadline after the first check, before the housekeeping
    // task could see the deadline stored.
    if self.clock.now_ms() >= self.deadline {
      return Poll::Ready(());
    }
    Poll::Pending
  }
}

impl Drop for HeadSleep {
  fn drop(&mut self) {
    self.conn.head.deadline.store(u64::MAX, Ordering::Release);
  }
}

impl hyper::rt::Sleep for HeadSleep {}

#[cfg(test)]
mod tests {
  use super::*;
  use hyper::rt::Timer;
  use std::sync::atomic::AtomicUsize;
  use std::task::{Wake, Waker};

  struct Count(AtomicUsize);
  impl Wake for Count {
    fn wake(self: Arc<Self>) {
      self.0.fetch_add(1, Ordering::SeqCst);
    }
  }

  #[test]
  fn a_head_timer_fires_once_the_clock_passes_its_deadline_and_is_woken_then() {
    let clock = Clock::new();
    let conn = ConnCtl::new();
    let timer = HeadTimer::new(clock.clone(), conn.clone());
    let mut sleep = timer.sleep(Duration::from_secs(30));
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);

    assert!(sleep.as_mut().poll(&mut cx).is_pending());
    conn.head.wake_if_due(clock.now_ms());
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "not due yet");

    clock.set(29_999);
    conn.head.wake_if_due(clock.now_ms());
    assert_eq!(count.0.load(Ordering::SeqCst), 0, "still 1 ms early");
    assert!(sleep.as_mut().poll(&mut cx).is_pending());

    clock.set(30_000);
    conn.head.wake_if_due(clock.now_ms());
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken when due");
    assert!(sleep.as_mut().poll(&mut cx).is_ready());

    // A dropped timer leaves nothing to wake.
    drop(sleep);
    conn.head.wake_if_due(u64::MAX - 1);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
  }

  #[test]
  fn the_clock_never_goes_back_and_now_follows_it() {
    let clock = Clock::new();
    clock.set(5_000);
    clock.set(4_000);
    assert_eq!(clock.now_ms(), 5_000);
    let timer = HeadTimer::new(clock.clone(), ConnCtl::new());
    assert_eq!(timer.now(), clock.base + Duration::from_secs(5));
    clock.tick();
    assert_eq!(
      clock.now_ms(),
      5_000,
      "the real time is behind the set time"
    );
  }
}
