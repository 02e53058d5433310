//! XML Schema dateTimeStamp, as credentials carry it: `2026-01-01T00:00:00Z`,
//! with optional fractional seconds and a `Z` or `±hh:mm` offset.

use tranche_types::{Date, Timestamp};

/// Why a text is not a dateTimeStamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTimeError(pub String);

/// Parses a dateTimeStamp to milliseconds since 1970 (fractions past the
/// millisecond are dropped).
pub fn parse_datetime(text: &str) -> Result<Timestamp, DateTimeError> {
    let err = || {
        DateTimeError(format!(
            "{:?} is not a date-time such as 2026-01-01T00:00:00Z",
            text.chars().take(40).collect::<String>()
        ))
    };
    let (date, rest) = text.split_once('T').ok_or_else(err)?;
    let date: Date = date.parse().map_err(|_| err())?;
    let (clock, offset_min): (&str, i64) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0)
    } else {
        let at = rest.rfind(['+', '-']).ok_or_else(err)?;
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':').ok_or_else(err)?;
        let h: i64 = h.parse().map_err(|_| err())?;
        let m: i64 = m.parse().map_err(|_| err())?;
        if h > 14 || m > 59 || off.len() != 6 {
            return Err(err());
        }
        (c, sign * (h * 60 + m))
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let parts: Vec<&str> = hms.split(':').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(err());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (clock.contains('.') && frac.is_empty()) {
        return Err(err());
    }
    let n = |s: &str| s.parse::<i64>().map_err(|_| err());
    let (h, m, s) = (n(parts[0])?, n(parts[1])?, n(parts[2])?);
    if h > 23 || m > 59 || s > 59 {
        return Err(err());
    }
    let ms: i64 = format!("{frac:0<3}")[..3].parse().map_err(|_| err())?;
    let start = i64::try_from(date.start().ok_or_else(err)?.0).map_err(|_| err())?;
    let at = start + ((h * 60 + m) * 60 + s) * 1000 + ms - offset_min * 60_000;
    u64::try_from(at).map(Timestamp).map_err(|_| err())
}

/// Formats as `2026-01-01T00:00:00Z` (whole seconds, UTC).
pub fn format_datetime(t: Timestamp) -> String {
    let s = t.to_string();
    // Timestamp prints `...T21:11:16.123Z`; credentials use whole seconds.
    format!("{}Z", &s[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_fractions() {
        let z = parse_datetime("2023-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_datetime("2023-01-01T09:00:00+09:00").unwrap(), z);
        assert_eq!(parse_datetime("2022-12-31T19:00:00-05:00").unwrap(), z);
        assert_eq!(
            parse_datetime("2023-01-01T00:00:00.123456Z").unwrap().0,
            z.0 + 123
        );
        for bad in [
            "2023-01-01",
            "2023-01-01T00:00:00",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00.Z",
            "x",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
        assert_eq!(format_datetime(z), "2023-01-01T00:00:00Z");
    }
}
