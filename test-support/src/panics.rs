//! Catching a panic quietly, so that a property test that looks for panics reports one failure
//! instead of one panic report (and, with `RUST_BACKTRACE` set, one backtrace) per case it
//! tries while shrinking.
//!
//! [`catch`] runs a closure; if it panics, the panic hook's report for that thread is captured
//! rather than printed and returned as the error, so the caller can fail the case with it
//! (proptest: `TestCaseError::fail`). Panics on other threads are reported as usual: the hook
//! installed on first use forwards them to the hook that was in place before.
//!
//! ```
//! let err = test_support::panics::catch(|| -> u32 { panic!("bad input") }).unwrap_err();
//! assert!(err.contains("bad input"), "{err}");
//! assert_eq!(test_support::panics::catch(|| 7), Ok(7));
//! ```

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// `Some` while this thread runs inside [`catch`]: the captured report, if any.
    static CAPTURED: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Runs `f`; a panic becomes `Err(report)`, with the report (location and message) not printed.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAPTURED.with(|slot| match slot.try_borrow_mut() {
                Ok(mut slot) => match slot.as_mut() {
                    Some(report) => {
                        *report = info.to_string();
                        true
                    }
                    None => false,
                },
                Err(_) => false,
            });
            if !captured {
                previous(info);
            }
        }));
    });
    let outer = CAPTURED.with(|slot| slot.replace(Some(String::new())));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let report = CAPTURED
        .with(|slot| slot.replace(outer))
        .unwrap_or_default();
    result.map_err(|_| {
        if report.is_empty() {
            "panicked".to_owned()
        } else {
            report
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_panic_becomes_its_report_and_a_value_passes_through() {
        assert_eq!(catch(|| "fine"), Ok("fine"));
        let err = catch(|| {
            let v: Vec<u8> = Vec::new();
            v[3]
        })
        .unwrap_err();
        assert!(err.contains("index out of bounds"), "{err}");
        assert!(err.contains("panics.rs"), "names the location: {err}");
        // Nested: the inner panic is the inner call's, the outer call still succeeds.
        let outer = catch(|| catch(|| panic!("inner")).unwrap_err());
        assert!(outer.unwrap().contains("inner"));
    }

    /// Runs in a child process (see the next test): panics quietly, many times.
    #[test]
    fn child_panics_quietly() {
        if std::env::var_os("TEST_SUPPORT_QUIET_CHILD").is_none() {
            return;
        }
        for i in 0..50 {
            assert!(catch(|| panic!("quiet panic {i}")).is_err());
        }
        // A panic outside `catch` still reaches the hook that was there before.
        assert!(std::thread::spawn(|| panic!("loud panic")).join().is_err());
    }

    #[test]
    fn caught_panics_print_nothing_and_others_are_reported() {
        let output = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "panics::tests::child_panics_quietly",
                "--nocapture",
            ])
            .env("TEST_SUPPORT_QUIET_CHILD", "1")
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "the child test ran: {stdout}");
        assert!(!stderr.contains("quiet panic"), "{stderr}");
        assert!(stderr.contains("loud panic"), "{stderr}");
        assert_eq!(
            stderr.matches("stack backtrace:").count(),
            1,
            "one report: {stderr}"
        );
    }
}
