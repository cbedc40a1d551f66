//! Chain timestamps: [`Time`].

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A point in chain time, to the second, UTC: a block's timestamp or a time field of an op
/// (`expiration`, `escrow_expiration`, ...).
///
/// Nodes write times as `2020-11-07T19:33:27` (UTC, no zone); this type reads that form (and
/// the same with a trailing `Z`). `Display` prints RFC 3339: `2020-11-07T19:33:27Z`;
/// `Serialize` writes the node's form, so views serialize back to what nodes send. Convert to
/// [`SystemTime`] with `SystemTime::from` or [`Time::to_system_time`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Time {
    secs: i64,
}

/// Seconds per day.
const DAY: i64 = 86_400;

impl Time {
    /// `secs` seconds after 1970-01-01T00:00:00Z (negative: before).
    pub const fn from_unix(secs: i64) -> Time {
        Time { secs }
    }

    /// Seconds since 1970-01-01T00:00:00Z (negative: before).
    pub const fn unix(&self) -> i64 {
        self.secs
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(&self) -> SystemTime {
        let magnitude = Duration::from_secs(self.secs.unsigned_abs());
        if self.secs >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    /// Year, month, day, hour, minute, second (UTC).
    fn civil(&self) -> (i64, u32, u32, u32, u32, u32) {
        let (days, rem) = (self.secs.div_euclid(DAY), self.secs.rem_euclid(DAY));
        let (y, m, d) = civil_from_days(days);
        let rem = rem as u32;
        (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
    }
}

impl From<Time> for SystemTime {
    fn from(t: Time) -> SystemTime {
        t.to_system_time()
    }
}

/// Year, month, day of the day `days` after 1970-01-01 (proleptic Gregorian calendar; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01, so that leap days end each 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (era * 400 + yoe + i64::from(month <= 2), month, day)
}

/// Days from 1970-01-01 to the given date (the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Why a time could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {0:?}: expected YYYY-MM-DDTHH:MM:SS (UTC), as nodes write it")]
pub struct TimeError(pub String);

impl FromStr for Time {
    type Err = TimeError;

    /// Parses `YYYY-MM-DDTHH:MM:SS`, optionally followed by `Z`.
    fn from_str(s: &str) -> Result<Time, TimeError> {
        let bad = || TimeError(s.into());
        let b = s.strip_suffix('Z').unwrap_or(s).as_bytes();
        if b.len() != 19
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, TimeError> {
            let digits = &b[r];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            Ok(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let (y, mo, d) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let month_len = match mo {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if is_leap(y) => 29,
            2 => 28,
            _ => return Err(bad()),
        };
        if d == 0 || d > month_len || h > 23 || mi > 59 || sec > 59 {
            return Err(bad());
        }
        let secs = days_from_civil(y, mo, d) * DAY + i64::from(h * 3600 + mi * 60 + sec);
        Ok(Time { secs })
    }
}

impl fmt::Display for Time {
    /// RFC 3339, UTC, to the second: `2020-11-07T19:33:27Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.civil();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Time({self})")
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (y, mo, d, h, mi, s) = self.civil();
        serializer.collect_str(&format_args!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"))
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Time, D::Error> {
        struct TimeVisitor;
        impl Visitor<'_> for TimeVisitor {
            type Value = Time;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time like \"2020-11-07T19:33:27\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Time, E> {
                s.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(TimeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_times() {
        for (text, secs) in [
            ("1970-01-01T00:00:00", 0),
            ("2020-11-07T19:33:27", 1_604_777_607),
            ("2000-02-29T23:59:59", 951_868_799),
            ("2106-02-07T06:28:15", i64::from(u32::MAX)),
            ("1969-12-31T23:59:59", -1),
        ] {
            let t: Time = text.parse().unwrap();
            assert_eq!(t.unix(), secs, "{text}");
            assert_eq!(t.to_string(), format!("{text}Z"));
            assert_eq!(format!("{text}Z").parse::<Time>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{text}\""));
        }
        let t = Time::from_unix(1_604_777_607);
        assert_eq!(
            SystemTime::from(t),
            UNIX_EPOCH + Duration::from_secs(1_604_777_607)
        );
        assert_eq!(
            Time::from_unix(-1).to_system_time(),
            UNIX_EPOCH - Duration::from_secs(1)
        );
    }

    #[test]
    fn malformed_times_are_named() {
        for bad in [
            "",
            "2020-11-07",
            "2020-11-07 19:33:27",
            "2020-13-07T19:33:27",
            "2021-02-29T00:00:00",
            "2020-11-07T24:00:00",
            "2020-11-07T19:60:00",
            "2020-11-07T19:33:27+01:00",
            "2020-11-0xT19:33:27",
            "+020-11-07T19:33:27",
            "2020-11-07T19:33:27ZZ",
        ] {
            let err = bad.parse::<Time>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
            assert!(serde_json::from_str::<Time>(&format!("\"{bad}\"")).is_err());
        }
        assert!(serde_json::from_str::<Time>("1604777607").is_err());
    }

    proptest! {
        // Failures are reported, never written into the source tree.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn display_then_parse_is_identity(secs in -62_135_596_800i64..253_402_300_800) {
            let t = Time::from_unix(secs);
            let text = t.to_string();
            prop_assert_eq!(text.parse::<Time>(), Ok(t));
            let json = serde_json::to_string(&t).unwrap();
            prop_assert_eq!(serde_json::from_str::<Time>(&json).unwrap(), t);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "[0-9TZ:-]{0,22}") {
            let _ = s.parse::<Time>();
        }
    }
}
