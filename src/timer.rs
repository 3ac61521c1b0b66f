//! The server's coarse clock, the timer hyper uses for its header-read timeout, and idle
//! keep-alive tracking.
//!
//! hyper arms a timer for every request head it reads (a client must send a whole head within
//! 30 s). With tokio's timer that is a clock read, a timer-wheel insert and a removal per request.
//! Here a server keeps one millisecond clock, advanced by its housekeeping task about once a
//! second; a head timer only records its deadline in its connection's [`HeadSlot`], and the
//! housekeeping task wakes the connections whose deadline has passed. The timeout then fires
//! between about one second early and one second late, which is all a 30 s limit needs.
//!
//! The same task watches each connection's [`Idle`] state: a keep-alive connection with nothing
//! in flight and no byte read or written for a full tick is *parked* (hyper and its two 8 KiB
//! buffers are dropped until the client sends again), and one idle for the header timeout is
//! closed.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
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

/// What the housekeeping task should do with a connection (see [`Idle::check`]).
#[derive(Debug, PartialEq, Eq)]
pub enum IdleAction {
  Nothing,
  /// Idle for a full tick: drop hyper's state until the client sends again.
  Park,
  /// Idle for the header timeout: close it.
  Close,
}

/// A connection's activity, as the housekeeping task sees it.
pub struct Idle {
  /// Bumped on every read or write that moved bytes.
  activity: AtomicU32,
  /// Requests waiting for JS plus streamed bodies and SSE streams alive.
  busy: AtomicU32,
  /// `activity` at the last check, and the clock when it last changed (`NEVER` before the
  /// first check: a connection's idle time starts at the first check that sees it).
  seen: AtomicU32,
  since: AtomicU64,
  /// A park was asked for and not yet done, or the connection is parked.
  park_asked: AtomicBool,
  parked: AtomicBool,
  /// The park request waits to be seen by the connection task.
  park_signal: AtomicBool,
  /// The current hyper connection has taken a request: hyper is idle between requests only
  /// after one (a fresh connection is not, and parking it would cost the client keep-alive).
  served: AtomicBool,
}

const NEVER: u64 = u64::MAX;

impl Default for Idle {
  fn default() -> Self {
    Idle {
      activity: AtomicU32::new(0),
      busy: AtomicU32::new(0),
      seen: AtomicU32::new(0),
      since: AtomicU64::new(NEVER),
      park_asked: AtomicBool::new(false),
      parked: AtomicBool::new(false),
      park_signal: AtomicBool::new(false),
      served: AtomicBool::new(false),
    }
  }
}

impl Idle {
  pub fn note_activity(&self) {
    self.activity.fetch_add(1, Ordering::Relaxed);
  }

  /// A request was taken (see `served`); busy until the guard drops.
  pub fn request(conn: &Arc<ConnCtl>) -> Busy {
    conn.idle.served.store(true, Ordering::Release);
    Idle::busy(conn)
  }

  /// A new hyper connection starts on the socket: any park asked of the previous one is void.
  pub fn new_hyper(&self) {
    self.served.store(false, Ordering::Release);
    self.park_signal.store(false, Ordering::Release);
    self.park_asked.store(false, Ordering::Release);
  }

  pub fn activity(&self) -> u32 {
    self.activity.load(Ordering::Acquire)
  }

  /// Marks the connection busy until the guard drops.
  pub fn busy(conn: &Arc<ConnCtl>) -> Busy {
    conn.idle.busy.fetch_add(1, Ordering::AcqRel);
    Busy(conn.clone())
  }

  /// Called once per tick at clock time `now` (ms). `writing`: a write waits for the client (a
  /// response hyper is still sending; the write deadline governs it, not idleness).
  pub fn check(&self, now: u64, close_after: Option<Duration>, writing: bool) -> IdleAction {
    let activity = self.activity.load(Ordering::Relaxed);
    let changed = self.seen.swap(activity, Ordering::AcqRel) != activity;
    let since = self.since.load(Ordering::Acquire);
    if changed || since == NEVER || writing || self.busy.load(Ordering::Acquire) > 0 {
      self.since.store(now, Ordering::Release);
      return IdleAction::Nothing;
    }
    let idle_ms = now.saturating_sub(since);
    if close_after.is_some_and(|t| u128::from(idle_ms) >= t.as_millis()) {
      return IdleAction::Close;
    }
    if idle_ms >= PARK_AFTER_MS
      && self.served.load(Ordering::Acquire)
      && !self.park_asked.swap(true, Ordering::AcqRel)
    {
      self.park_signal.store(true, Ordering::Release);
      return IdleAction::Park;
    }
    IdleAction::Nothing
  }

  /// The park asked for was done (`parked`) or given up.
  pub fn set_parked(&self, parked: bool) {
    self.parked.store(parked, Ordering::Release);
    if !parked {
      self.park_asked.store(false, Ordering::Release);
    }
  }

  /// Takes a pending park request (for the connection task; a load first, since this runs on
  /// every poll of a connection and there is almost never one).
  pub fn take_park_signal(&self) -> bool {
    self.park_signal.load(Ordering::Acquire) && self.park_signal.swap(false, Ordering::AcqRel)
  }

  pub fn is_parked(&self) -> bool {
    self.parked.load(Ordering::Acquire)
  }
}

/// A connection idle this long (no request in flight, no byte either way) is parked.
const PARK_AFTER_MS: u64 = 1000;

/// See [`Idle::busy`].
pub struct Busy(Arc<ConnCtl>);

impl Drop for Busy {
  fn drop(&mut self) {
    self.0.idle.busy.fetch_sub(1, Ordering::AcqRel);
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

  #[test]
  fn idle_connections_are_parked_after_a_quiet_tick_then_closed_and_busy_ones_never() {
    let close = Some(Duration::from_secs(30));
    let first = ConnCtl::new();
    // A fresh connection first seen long after the server started: its idle time starts then.
    assert_eq!(first.idle.check(100_000, close, false), IdleAction::Nothing);
    assert_eq!(first.idle.check(101_000, close, false), IdleAction::Nothing);
    // Quiet for the whole timeout before its first request: closed.
    assert_eq!(first.idle.check(130_000, close, false), IdleAction::Close);

    // A response waiting for a slow client to read is neither parked nor closed as idle.
    let slow = ConnCtl::new();
    drop(Idle::request(&slow));
    assert_eq!(slow.idle.check(0, close, true), IdleAction::Nothing);
    assert_eq!(slow.idle.check(2_000, close, true), IdleAction::Nothing);
    assert_eq!(slow.idle.check(60_000, close, true), IdleAction::Nothing);

    let conn = ConnCtl::new();
    let idle = &conn.idle;
    // A fresh connection that has not taken a request is never parked.
    assert_eq!(idle.check(0, close, false), IdleAction::Nothing);
    assert_eq!(idle.check(5_000, close, false), IdleAction::Nothing);
    // It takes one: busy while in flight, whatever the clock says.
    let busy = Idle::request(&conn);
    idle.note_activity();
    assert_eq!(idle.check(6_000, close, false), IdleAction::Nothing);
    assert_eq!(idle.check(60_000, close, false), IdleAction::Nothing);
    drop(busy);
    idle.note_activity();
    assert_eq!(
      idle.check(61_000, close, false),
      IdleAction::Nothing,
      "activity since the last check"
    );
    assert_eq!(
      idle.check(61_500, close, false),
      IdleAction::Nothing,
      "quiet for less than a second"
    );
    assert_eq!(idle.check(62_000, close, false), IdleAction::Park);
    assert!(idle.take_park_signal());
    assert!(!idle.take_park_signal(), "the signal is taken once");
    assert_eq!(
      idle.check(63_000, close, false),
      IdleAction::Nothing,
      "asked once"
    );
    // A park asked of a hyper connection that went away otherwise (e.g. an SSE takeover) is
    // void for the next one: it can be parked after its own request.
    let fresh = ConnCtl::new();
    drop(Idle::request(&fresh));
    assert_eq!(fresh.idle.check(0, close, false), IdleAction::Nothing);
    assert_eq!(fresh.idle.check(1_000, close, false), IdleAction::Park);
    fresh.idle.new_hyper();
    assert!(!fresh.idle.take_park_signal(), "the old request is void");
    drop(Idle::request(&fresh));
    fresh.idle.note_activity();
    assert_eq!(fresh.idle.check(2_000, close, false), IdleAction::Nothing);
    assert_eq!(fresh.idle.check(3_000, close, false), IdleAction::Park);
    idle.set_parked(true);
    assert!(idle.is_parked());
    assert_eq!(idle.check(90_999, close, false), IdleAction::Nothing);
    assert_eq!(
      idle.check(91_000, close, false),
      IdleAction::Close,
      "30 s without a byte"
    );
    // Without a timeout it stays parked.
    assert_eq!(idle.check(500_000, None, false), IdleAction::Nothing);
    // Bytes arrive: resumed, and a later quiet period parks it again.
    idle.set_parked(false);
    idle.new_hyper();
    idle.note_activity();
    assert_eq!(idle.check(500_100, close, false), IdleAction::Nothing);
    assert_eq!(
      idle.check(502_000, close, false),
      IdleAction::Nothing,
      "no request on this hyper yet"
    );
    let _busy = Idle::request(&conn);
    assert_eq!(idle.check(503_000, close, false), IdleAction::Nothing);
    assert_eq!(
      idle.check(600_000, close, false),
      IdleAction::Nothing,
      "busy"
    );
  }
}
