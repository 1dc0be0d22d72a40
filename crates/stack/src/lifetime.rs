//! Stack lifetimes: the expiry tag `up --ttl` writes and `list` / `gc` read, and the durations
//! the CLI accepts (`--ttl 2h`, `--older-than 7d`, `--since 10m`).
//!
//! The expiry is an absolute UTC time in RFC 3339 (`2026-11-29T15:30:00Z`) in the tag
//! [`TAG_EXPIRES_AT`], so that any machine (a scheduled `gc` on another runner) reads it without
//! knowing when or where `up` ran. `--ttl none` writes [`NO_EXPIRY`] (`never`) instead of
//! removing the tag: `up` only adds and updates tags, and a value that says "no expiry" is as
//! good as no tag for every reader, while an `up` without `--ttl` keeps whatever is there.
//!
//! Times are seconds since the Unix epoch; the calendar arithmetic is done here (proleptic
//! Gregorian, UTC only) so that this crate stays free of SDKs and clocks: callers pass `now`.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::SpecError;

/// The tag that holds a stack's expiry: an RFC 3339 UTC time, or [`NO_EXPIRY`].
pub const TAG_EXPIRES_AT: &str = "wishctl:expires-at";

/// The value of [`TAG_EXPIRES_AT`] that means "this stack does not expire" (`--ttl none`).
pub const NO_EXPIRY: &str = "never";

/// The longest `--ttl` accepted: a year. Longer lifetimes are what `--ttl none` is for.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 86_400);

/// The longest duration any flag accepts (about 100 years), so that adding it to a time never
/// overflows.
const MAX_DURATION_SECS: u64 = 100 * 366 * 86_400;

/// A duration or TTL flag that cannot be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LifetimeError {
    #[error("invalid duration {value:?}: {rule}")]
    Duration { value: String, rule: &'static str },
    #[error("invalid --ttl {value:?}: {rule}")]
    Ttl { value: String, rule: &'static str },
}

impl From<LifetimeError> for SpecError {
    fn from(err: LifetimeError) -> Self {
        // The flag the user typed, not the tag it becomes.
        let (value, rule) = match err {
            LifetimeError::Duration { value, rule } | LifetimeError::Ttl { value, rule } => {
                (value, rule)
            }
        };
        SpecError::Ttl { value, rule }
    }
}

/// Parses a duration such as `90s`, `10m`, `2h`, `7d`, `1w` or `1h30m` (units `s`, `m`, `h`,
/// `d`, `w`; a bare `0` is zero). At most about 100 years.
pub fn parse_duration(text: &str) -> Result<Duration, LifetimeError> {
    let err = |rule| LifetimeError::Duration {
        value: text.to_string(),
        rule,
    };
    const EXPECTED: &str =
        "expected a number and a unit (s, m, h, d, w), such as 90s, 10m, 2h, 7d or 1h30m";
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.is_empty() || !trimmed.is_ascii() {
        return Err(err(EXPECTED));
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in trimmed.chars() {
        if let Some(digit) = c.to_digit(10) {
            let n = number
                .unwrap_or(0)
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(digit)))
                .filter(|n| *n <= MAX_DURATION_SECS)
                .ok_or_else(|| err("too long: at most about 100 years"))?;
            number = Some(n);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(err(EXPECTED)),
        };
        let n = number.take().ok_or_else(|| err(EXPECTED))?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .filter(|s| *s <= MAX_DURATION_SECS)
            .ok_or_else(|| err("too long: at most about 100 years"))?;
    }
    if number.is_some() {
        return Err(err(
            "a number needs a unit (s, m, h, d, w), such as 90s, 10m, 2h or 7d",
        ));
    }
    Ok(Duration::from_secs(total))
}

/// What `up --ttl` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Expire this long after the `up` that sets it.
    For(Duration),
    /// `--ttl none`: never expire (clears an earlier TTL).
    Never,
}

impl FromStr for Ttl {
    type Err = LifetimeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if matches!(text.trim(), "none" | "never") {
            return Ok(Ttl::Never);
        }
        let ttl_err = |rule| LifetimeError::Ttl {
            value: text.to_string(),
            rule,
        };
        let duration = parse_duration(text).map_err(|_| {
            ttl_err("expected a duration such as 30m, 2h or 7d (units s, m, h, d, w), or none")
        })?;
        if duration.is_zero() {
            return Err(ttl_err(
                "must be longer than zero and at most 366d, such as 30m, 2h or 7d (none: a stack \
                 that does not expire)",
            ));
        }
        if duration > MAX_TTL {
            return Err(ttl_err(
                "must be longer than zero and at most 366d, such as 30m, 2h or 7d (none: a stack \
                 that does not expire)",
            ));
        }
        Ok(Ttl::For(duration))
    }
}

impl Ttl {
    /// The expiry this TTL gives a stack deployed at `now`.
    pub fn expiry_from(self, now: SystemTime) -> Expiry {
        match self {
            Ttl::Never => Expiry::Never,
            Ttl::For(duration) => Expiry::At(UtcTime::from_system_time(now).plus(duration)),
        }
    }

    /// The tag (`KEY=VALUE`, as `--tag` takes it) that records this TTL for an `up` at `now`.
    pub fn tag_from(self, now: SystemTime) -> String {
        format!("{TAG_EXPIRES_AT}={}", self.expiry_from(now))
    }
}

/// A time in whole seconds since the Unix epoch, shown as RFC 3339 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(i64);

impl UtcTime {
    pub fn from_unix_seconds(seconds: i64) -> Self {
        UtcTime(seconds)
    }

    /// `now` rounded down to the second; times before 1970 count as 1970.
    pub fn from_system_time(time: SystemTime) -> Self {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        UtcTime(secs)
    }

    /// From milliseconds since the epoch (CloudWatch Logs and many SDK timestamps).
    pub fn from_unix_millis(millis: i64) -> Self {
        UtcTime(millis.div_euclid(1000))
    }

    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    pub fn plus(self, duration: Duration) -> Self {
        let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        UtcTime(self.0.saturating_add(secs))
    }

    /// How long before `later` this time is (zero when it is not before).
    pub fn until(self, later: UtcTime) -> Duration {
        Duration::from_secs(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }

    /// Parses RFC 3339: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)` (`t`/space and `z`
    /// accepted too). The fraction is dropped.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.trim().as_bytes();
        if b.len() < 20 || !b.is_ascii() {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let s = std::str::from_utf8(b.get(range)?).ok()?;
            if !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut rest = &b[19..];
        if rest.first() == Some(&b'.') {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            rest = &rest[1 + digits..];
        }
        let offset = match rest {
            [b'Z' | b'z'] => 0,
            // `+HHMM` is not RFC 3339, but Lambda's `LastModified` uses it.
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
                let digits = [*h1, *h2, *m1, *m2];
                if !digits.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let d = |c: u8| i64::from(c - b'0');
                let minutes = (d(*h1) * 10 + d(*h2)) * 60 + d(*m1) * 10 + d(*m2);
                if *sign == b'+' {
                    minutes * 60
                } else {
                    -minutes * 60
                }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        Some(UtcTime(
            days * 86_400 + hour * 3_600 + minute * 60 + second.min(59) - offset,
        ))
    }
}

impl serde::Serialize for UtcTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3_600,
            secs % 3_600 / 60,
            secs % 60
        )
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A stack's expiry as its [`TAG_EXPIRES_AT`] tag records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    At(UtcTime),
    /// `never`: set by `--ttl none`.
    Never,
    /// A value that is neither a time nor `never` (set by hand): it never counts as expired.
    Unreadable(String),
}

impl Expiry {
    /// Reads a tag value.
    pub fn from_tag(value: &str) -> Self {
        if value.trim() == NO_EXPIRY {
            return Expiry::Never;
        }
        UtcTime::parse_rfc3339(value)
            .map_or_else(|| Expiry::Unreadable(value.to_string()), Expiry::At)
    }

    /// Whether the stack has expired at `now`: only a readable time at or before `now` counts.
    pub fn is_expired(&self, now: UtcTime) -> bool {
        matches!(self, Expiry::At(at) if *at <= now)
    }

    /// Of two expiries found on one stack's resources, the one that keeps it alive longer:
    /// `never` beats any time, a later time beats an earlier one, and an unreadable value beats
    /// a time (a stack is only considered expired when every readable tag says so).
    pub fn longest(self, other: Expiry) -> Expiry {
        use Expiry::{At, Never, Unreadable};
        match (self, other) {
            (Never, _) | (_, Never) => Never,
            (Unreadable(a), _) => Unreadable(a),
            (_, Unreadable(b)) => Unreadable(b),
            (At(a), At(b)) => At(a.max(b)),
        }
    }
}

impl serde::Serialize for Expiry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::At(at) => write!(f, "{at}"),
            Expiry::Never => f.write_str(NO_EXPIRY),
            Expiry::Unreadable(value) => f.write_str(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> u64 {
        parse_duration(text).unwrap().as_secs()
    }

    #[test]
    fn durations_take_units_and_combinations() {
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("10m"), 600);
        assert_eq!(secs("2h"), 7_200);
        assert_eq!(secs("7d"), 604_800);
        assert_eq!(secs("1w"), 604_800);
        assert_eq!(secs("1h30m"), 5_400);
        assert_eq!(secs("0"), 0);
        assert_eq!(secs("0s"), 0);
    }

    #[test]
    fn bad_durations_are_errors_not_panics() {
        for bad in [
            "",
            "2",
            "h",
            "2x",
            "-2h",
            "2 h",
            "2h3",
            "١h",
            "99999999999999999999999h",
            "1.5h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ttl_is_a_positive_duration_or_none() {
        assert_eq!(
            "2h".parse::<Ttl>(),
            Ok(Ttl::For(Duration::from_secs(7_200)))
        );
        assert_eq!("none".parse::<Ttl>(), Ok(Ttl::Never));
        assert_eq!("never".parse::<Ttl>(), Ok(Ttl::Never));
        assert!("0s".parse::<Ttl>().is_err());
        assert!("400d".parse::<Ttl>().is_err());
        assert!("soon".parse::<Ttl>().is_err());
    }

    #[test]
    fn the_expiry_tag_is_rfc3339_utc_and_reads_back() {
        // 2026-11-29T13:30:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_795_959_000);
        let tag = Ttl::For(Duration::from_secs(7_200)).tag_from(now);
        assert_eq!(tag, "wishctl:expires-at=2026-11-29T15:30:00Z");
        let value = tag.split_once('=').unwrap().1;
        assert_eq!(
            Expiry::from_tag(value),
            Expiry::At(UtcTime::from_unix_seconds(1_795_966_200))
        );
        assert_eq!(Ttl::Never.tag_from(now), "wishctl:expires-at=never");
    }

    #[test]
    fn calendar_round_trips_across_leap_years_and_centuries() {
        for secs in [
            0,
            951_782_400,   // 2000-02-29
            4_107_542_399, // 2100-02-28T23:59:59
            1_709_164_800, // 2024-02-29
            -86_400,
        ] {
            let t = UtcTime::from_unix_seconds(secs);
            assert_eq!(UtcTime::parse_rfc3339(&t.to_string()), Some(t), "{t}");
        }
        assert_eq!(
            UtcTime::from_unix_seconds(951_782_400).to_string(),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn rfc3339_offsets_and_fractions_are_understood() {
        let z = UtcTime::parse_rfc3339("2026-11-29T15:30:00Z").unwrap();
        assert_eq!(
            UtcTime::parse_rfc3339("2026-11-29T16:30:00.123+01:00"),
            Some(z)
        );
        assert_eq!(UtcTime::parse_rfc3339("2026-11-29t15:30:00z"), Some(z));
        assert_eq!(
            UtcTime::parse_rfc3339("2026-11-29T15:30:00.000+0000"),
            Some(z)
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-29",
            "2026-11-29T25:00:00Z",
            "2026-11-29T15:30:00",
            "2026-11-29T15:30:00+1:00",
            "never",
            "",
        ] {
            assert_eq!(UtcTime::parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_readable_past_time_is_expired() {
        let now = UtcTime::parse_rfc3339("2026-11-29T15:30:00Z").unwrap();
        assert!(Expiry::from_tag("2026-11-29T15:29:59Z").is_expired(now));
        assert!(Expiry::from_tag("2026-11-29T15:30:00Z").is_expired(now));
        assert!(!Expiry::from_tag("2026-11-29T15:30:01Z").is_expired(now));
        assert!(!Expiry::from_tag("never").is_expired(now));
        assert!(!Expiry::from_tag("tomorrow").is_expired(now));
    }

    #[test]
    fn the_longest_expiry_wins_when_resources_disagree() {
        let early = Expiry::from_tag("2026-01-01T00:00:00Z");
        let late = Expiry::from_tag("2026-06-01T00:00:00Z");
        assert_eq!(early.clone().longest(late.clone()), late);
        assert_eq!(late.clone().longest(Expiry::Never), Expiry::Never);
        assert!(matches!(
            early.longest(Expiry::from_tag("soon")),
            Expiry::Unreadable(_)
        ));
    }
}
