//! A clock every process on the host shares.
//!
//! `CLOCK_MONOTONIC` counts from one system-wide origin on Linux, so a nanosecond stamp taken by
//! a writer process can be subtracted from one taken by a reader process. Node's
//! `process.hrtime.bigint()` reads the same clock (libuv's `uv_hrtime`), which lets the Node
//! peer stamp records the same way.

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_MONOTONIC is always available on Linux; the call only writes `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Ask the kernel to wake this thread's timed sleeps without the default 50 µs of slack, so a
/// paced writer can sleep between records and still send on time.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and changes only this thread's timer
    // slack; no memory is passed to the kernel.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Wait until `mono_ns() >= due`: sleep while far ahead, spin for the last stretch.
pub fn wait_until(due: u64) {
    const SPIN_NS: u64 = 30_000;
    loop {
        let now = mono_ns();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN_NS {
            std::thread::sleep(std::time::Duration::from_nanos(left - SPIN_NS));
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_waits() {
        let a = mono_ns();
        wait_until(a + 200_000);
        let b = mono_ns();
        assert!(b >= a + 200_000);
    }
}
