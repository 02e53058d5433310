//! Dates and times as integers. The ledger never reads a clock: the block
//! proposer stamps each block with a [`Timestamp`], and dates such as a
//! token's issue and expiry dates (L-3) are whole days.

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, Write};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

/// Milliseconds in one day.
pub const MS_PER_DAY: u64 = 86_400_000;

impl Timestamp {
    /// The calendar day this instant falls on, in UTC.
    pub fn date(self) -> Date {
        // u64 ms / day fits an i32 for 5.8 million years.
        Date(i32::try_from(self.0 / MS_PER_DAY).unwrap_or(i32::MAX))
    }

    /// This instant plus `ms` milliseconds, saturating.
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

/// `2026-11-23T21:11:16.000Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms_of_day = self.0 % MS_PER_DAY;
        let (h, m) = (ms_of_day / 3_600_000, (ms_of_day / 60_000) % 60);
        let (s, ms) = ((ms_of_day / 1000) % 60, ms_of_day % 1000);
        write!(f, "{}T{h:02}:{m:02}:{s:02}.{ms:03}Z", self.date())
    }
}

/// Why a text is not a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time: use YYYY-MM-DDTHH:MM:SSZ (UTC, optional .mmm), e.g. 2026-11-23T21:00:00Z, or milliseconds since 1970")]
pub struct TimestampError(String);

/// Reads `2026-11-23T21:11:16Z`, `2026-11-23T21:11:16.123Z` (UTC only) or a
/// plain count of milliseconds since 1970.
impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, TimestampError> {
        let err = || TimestampError(s.chars().take(40).collect());
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(Timestamp).map_err(|_| err());
        }
        let (date, rest) = s.split_once('T').ok_or_else(err)?;
        let rest = rest.strip_suffix('Z').ok_or_else(err)?;
        let date: Date = date.parse().map_err(|_| err())?;
        let (hms, ms) = match rest.split_once('.') {
            Some((hms, ms)) if ms.len() == 3 => (hms, ms),
            Some(_) => return Err(err()),
            None => (rest, "000"),
        };
        let parts: Vec<&str> = hms.split(':').collect();
        if parts.len() != 3 {
            return Err(err());
        }
        let num = |t: &str, len: usize, max: u64| -> Result<u64, TimestampError> {
            if t.len() != len || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            let v: u64 = t.parse().map_err(|_| err())?;
            if v > max {
                return Err(err());
            }
            Ok(v)
        };
        let (h, m, sec, ms) = (
            num(parts[0], 2, 23)?,
            num(parts[1], 2, 59)?,
            num(parts[2], 2, 59)?,
            num(ms, 3, 999)?,
        );
        let start = date.start().ok_or_else(err)?;
        Ok(start.plus_ms(((h * 60 + m) * 60 + sec) * 1000 + ms))
    }
}

impl Write for Timestamp {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl FixedSize for Timestamp {
    const SIZE: usize = u64::SIZE;
}

impl Read for Timestamp {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Timestamp(u64::read_cfg(buf, &())?))
    }
}

/// A calendar day: days since 1970-01-01 (negative before). Text form `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i32);

/// Why a text is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a date: use YYYY-MM-DD, e.g. 2026-11-23")]
pub struct DateError(String);

impl Date {
    /// The date of `year-month-day`, if such a day exists (years 0 to 9999).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(0..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        if day > days_in_month(year, month) {
            return None;
        }
        Some(Date(days_from_civil(year, month, day)))
    }

    /// Year, month (1-12) and day (1-31).
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// The first millisecond of this day.
    pub fn start(self) -> Option<Timestamp> {
        u64::try_from(self.0)
            .ok()
            .and_then(|d| d.checked_mul(MS_PER_DAY))
            .map(Timestamp)
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Days from civil and back: the proleptic Gregorian algorithms from
// Howard Hinnant's "chrono-Compatible Low-Level Date Algorithms".
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = i64::from(z) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y as i32, m, d)
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl FromStr for Date {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Self, DateError> {
        let err = || DateError(s.chars().take(40).collect());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, DateError> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            part.parse().map_err(|_| err())
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        Date::from_ymd(y as i32, m, d).ok_or_else(err)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Write for Date {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl FixedSize for Date {
    const SIZE: usize = i32::SIZE;
}

impl Read for Date {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Date(i32::read_cfg(buf, &())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!("1970-01-01".parse::<Date>().unwrap(), Date(0));
        assert_eq!("2000-03-01".parse::<Date>().unwrap(), Date(11_017));
        assert_eq!(Date(20_415).to_string(), "2025-11-23");
        assert!("2025-02-29".parse::<Date>().is_err());
        assert!("2024-02-29".parse::<Date>().is_ok());
        assert!("2024-13-01".parse::<Date>().is_err());
        assert!("24-01-01".parse::<Date>().is_err());
        assert!("2024-1-011".parse::<Date>().is_err());
    }

    #[test]
    fn timestamps_print_in_utc() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_295_476_123).to_string(),
            "2026-11-21T21:11:16.123Z"
        );
    }

    #[test]
    fn timestamps_parse_their_own_text() {
        let t: Timestamp = "2026-11-21T21:11:16.123Z".parse().unwrap();
        assert_eq!(t, Timestamp(1_795_295_476_123));
        assert_eq!(
            "1970-01-01T00:00:01Z".parse::<Timestamp>().unwrap(),
            Timestamp(1000)
        );
        assert_eq!("42".parse::<Timestamp>().unwrap(), Timestamp(42));
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21T24:00:00Z",
            "2026-11-21T21:11:16+01:00",
            "2026-11-21T21:11:16.1Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn timestamp_text_round_trips(ms in 0u64..253_402_300_799_999) {
            let t = Timestamp(ms);
            prop_assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        }

        #[test]
        fn date_text_round_trips(days in 0i32..2_932_896) {
            let d = Date(days);
            prop_assert_eq!(d.to_string().parse::<Date>().unwrap(), d);
        }
    }
}
