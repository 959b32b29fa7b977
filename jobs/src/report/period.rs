//! The calendar periods a report describes: a day or an ISO week on a time
//! zone's calendar, as the half-open UTC range `[start, end)` between two
//! local midnights (23 or 25 hours long on DST days).
//!
//! Nothing here touches the clock: [`Period::before`] takes the run's slot.

use crate::tz::Tz;
use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use serde::Serialize;

/// How long a report's period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodKind {
    /// One calendar day, local midnight to local midnight.
    Day,
    /// One ISO week, Monday 00:00 local to the next Monday 00:00 local.
    Week,
}

/// The stretch of time a report describes: `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// `2026-11-21` for a day, `2026-W47` for an ISO week.
    pub label: String,
    /// The first instant of the period (local midnight, as UTC).
    pub start: DateTime<Utc>,
    /// The first instant after the period (the next local midnight, as UTC).
    pub end: DateTime<Utc>,
}

impl Period {
    /// The last whole period ending at or before `slot` on `tz`'s calendar: a
    /// daily report whose slot is 2026-11-22 07:00 Europe/Berlin describes
    /// 2026-11-21 (local midnight to local midnight, 23 or 25 hours on DST
    /// days); a weekly one describes the ISO week (Monday 00:00 local to the
    /// next Monday) before the week containing the slot. A local midnight
    /// that does not exist (zones that change DST at midnight) is the first
    /// instant after the gap; one that occurs twice is the earlier.
    pub fn before(slot: DateTime<Utc>, kind: PeriodKind, tz: Tz) -> Period {
        let today = slot.with_timezone(&tz).date_naive();
        match kind {
            PeriodKind::Day => Period::of_day(today.pred_opt().unwrap_or(NaiveDate::MIN), tz),
            PeriodKind::Week => {
                let monday =
                    today - chrono::Days::new(today.weekday().num_days_from_monday().into());
                Period::of_week(monday - chrono::Days::new(7), tz)
            }
        }
    }

    /// The period with this label: "2026-11-21" for Day, "2026-W47" for Week
    /// (ISO week; "2025-W53" does not exist). None if the label is not of
    /// that kind, exactly as [`Period::before`] writes it (zero-padded, an
    /// upper-case `W`, no spaces).
    pub fn parse(label: &str, kind: PeriodKind, tz: Tz) -> Option<Period> {
        let period = match kind {
            PeriodKind::Day => {
                let date = NaiveDate::parse_from_str(label, "%Y-%m-%d").ok()?;
                Period::of_day(date, tz)
            }
            PeriodKind::Week => {
                let (year, week) = label.split_once("-W")?;
                let all_digits =
                    |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
                if !all_digits(year, 4) || !all_digits(week, 2) {
                    return None;
                }
                let monday = NaiveDate::from_isoywd_opt(
                    year.parse().ok()?,
                    week.parse().ok()?,
                    Weekday::Mon,
                )?;
                Period::of_week(monday, tz)
            }
        };
        // Only the canonical spelling: "2026-1-5" or "2026-W1" are refused.
        (period.label == label).then_some(period)
    }

    fn of_day(date: NaiveDate, tz: Tz) -> Period {
        let next = date.succ_opt().unwrap_or(NaiveDate::MAX);
        Period {
            label: date.format("%Y-%m-%d").to_string(),
            start: local_midnight(date, tz),
            end: local_midnight(next, tz),
        }
    }

    fn of_week(monday: NaiveDate, tz: Tz) -> Period {
        let week = monday.iso_week();
        Period {
            label: format!("{:04}-W{:02}", week.year(), week.week()),
            start: local_midnight(monday, tz),
            end: local_midnight(monday + chrono::Days::new(7), tz),
        }
    }

    /// How long the period lasts, in milliseconds.
    pub fn duration_ms(&self) -> i64 {
        (self.end - self.start).num_milliseconds()
    }

    pub(super) fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// 00:00 of `date` on `tz`'s calendar: the earlier instant if it occurs twice,
/// the first instant after the gap if it does not occur.
fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    crate::localtime::instant(tz, date.and_time(chrono::NaiveTime::MIN))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tz::zone;

    pub(crate) fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn period(label: &str, start: &str, end: &str) -> Period {
        Period {
            label: label.to_string(),
            start: utc(start),
            end: utc(end),
        }
    }

    fn hours(p: &Period) -> i64 {
        (p.end - p.start).num_hours()
    }

    // ---- periods ----

    #[test]
    fn report_day_before_slot_berlin() {
        let p = Period::before(
            utc("2026-11-22T06:00:00Z"),
            PeriodKind::Day,
            zone("Europe/Berlin"),
        );
        assert_eq!(
            p,
            period("2026-11-21", "2026-11-20T23:00:00Z", "2026-11-21T23:00:00Z")
        );
        // A slot exactly at local midnight ends the day before it.
        let p = Period::before(
            utc("2026-11-21T23:00:00Z"),
            PeriodKind::Day,
            zone("Europe/Berlin"),
        );
        assert_eq!(p.label, "2026-11-21");
        // One second earlier is still 2026-11-21 locally.
        let p = Period::before(
            utc("2026-11-21T22:59:59Z"),
            PeriodKind::Day,
            zone("Europe/Berlin"),
        );
        assert_eq!(p.label, "2026-11-20");
        assert_eq!(
            Period::parse("2026-11-21", PeriodKind::Day, zone("Europe/Berlin"))
                .unwrap()
                .start,
            utc("2026-11-20T23:00:00Z")
        );
    }

    #[test]
    fn report_day_dst_berlin() {
        // Spring forward: 23 hours.
        let p = Period::before(
            utc("2026-03-30T05:00:00Z"),
            PeriodKind::Day,
            zone("Europe/Berlin"),
        );
        assert_eq!(
            p,
            period("2026-03-29", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z")
        );
        assert_eq!(hours(&p), 23);
        assert_eq!(
            Period::parse("2026-03-29", PeriodKind::Day, zone("Europe/Berlin")),
            Some(p)
        );
        // Fall back: 25 hours.
        let p = Period::before(
            utc("2026-10-26T06:00:00Z"),
            PeriodKind::Day,
            zone("Europe/Berlin"),
        );
        assert_eq!(
            p,
            period("2026-10-25", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z")
        );
        assert_eq!(hours(&p), 25);
        assert_eq!(
            Period::parse("2026-10-25", PeriodKind::Day, zone("Europe/Berlin")),
            Some(p)
        );
    }

    #[test]
    fn report_day_dst_new_york() {
        let ny = zone("America/New_York");
        let p = Period::before(utc("2026-03-09T12:00:00Z"), PeriodKind::Day, ny);
        assert_eq!(
            p,
            period("2026-03-08", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z")
        );
        assert_eq!(hours(&p), 23);
        assert_eq!(Period::parse("2026-03-08", PeriodKind::Day, ny), Some(p));
        let p = Period::before(utc("2026-11-02T12:00:00Z"), PeriodKind::Day, ny);
        assert_eq!(
            p,
            period("2026-11-01", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z")
        );
        assert_eq!(hours(&p), 25);
        assert_eq!(Period::parse("2026-11-01", PeriodKind::Day, ny), Some(p));
        // 03:00 UTC on 2026-11-02 is still 2026-11-01 in New York (22:00 EST).
        let p = Period::before(utc("2026-11-02T03:00:00Z"), PeriodKind::Day, ny);
        assert_eq!(p.label, "2026-10-31");
    }

    #[test]
    fn report_day_midnight_in_a_gap() {
        // Chile springs forward at 24:00 on Saturday 2026-09-05: 00:00 on
        // the 6th does not exist, the day starts at 01:00 -03 (04:00 UTC).
        let tz = zone("America/Santiago");
        let midnight = NaiveDate::from_ymd_opt(2026, 9, 6)
            .unwrap()
            .and_time(chrono::NaiveTime::MIN);
        assert_eq!(
            chrono::TimeZone::from_local_datetime(&tz, &midnight),
            chrono::LocalResult::None
        );
        let p = Period::parse("2026-09-06", PeriodKind::Day, tz).unwrap();
        assert_eq!(
            p,
            period("2026-09-06", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z")
        );
        assert_eq!(hours(&p), 23);
        let before = Period::parse("2026-09-05", PeriodKind::Day, tz).unwrap();
        assert_eq!(before.end, p.start);
        assert_eq!(hours(&before), 24);
        assert_eq!(
            Period::before(utc("2026-09-06T04:00:00Z"), PeriodKind::Day, tz),
            before
        );
    }

    #[test]
    fn report_week_periods() {
        let berlin = zone("Europe/Berlin");
        // Monday 2026-11-23 07:00 Berlin is in W48: the report is W47.
        let p = Period::before(utc("2026-11-23T06:00:00Z"), PeriodKind::Week, berlin);
        assert_eq!(
            p,
            period("2026-W47", "2026-11-15T23:00:00Z", "2026-11-22T23:00:00Z")
        );
        assert_eq!(
            Period::parse("2026-W47", PeriodKind::Week, berlin),
            Some(p.clone())
        );
        // Any instant of W48 gives W47; Sunday 2026-11-22 (W47) gives W46.
        assert_eq!(
            Period::before(utc("2026-11-29T22:59:59Z"), PeriodKind::Week, berlin),
            p
        );
        let w46 = Period::before(utc("2026-11-22T06:00:00Z"), PeriodKind::Week, berlin);
        assert_eq!(w46.label, "2026-W46");
        assert_eq!(w46.end, p.start);
        // The week with the fall-back lasts 169 hours.
        let p = Period::parse("2026-W43", PeriodKind::Week, berlin).unwrap();
        assert_eq!(
            p,
            period("2026-W43", "2026-10-18T22:00:00Z", "2026-10-25T23:00:00Z")
        );
        assert_eq!(hours(&p), 169);
        // New York's spring-forward week: 167 hours.
        let p = Period::parse("2026-W10", PeriodKind::Week, zone("America/New_York")).unwrap();
        assert_eq!(
            p,
            period("2026-W10", "2026-03-02T05:00:00Z", "2026-03-09T04:00:00Z")
        );
        assert_eq!(hours(&p), 167);
        // Across the year: 2026 has 53 ISO weeks, 2025 has 52.
        let p = Period::before(utc("2027-01-05T12:00:00Z"), PeriodKind::Week, Tz::UTC);
        assert_eq!(
            p,
            period("2026-W53", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z")
        );
        assert_eq!(
            Period::parse("2026-W53", PeriodKind::Week, Tz::UTC),
            Some(p)
        );
        assert_eq!(Period::parse("2025-W53", PeriodKind::Week, Tz::UTC), None);
        let p = Period::parse("2026-W01", PeriodKind::Week, Tz::UTC).unwrap();
        assert_eq!(p.start, utc("2025-12-29T00:00:00Z"));
    }

    #[test]
    fn report_parse_refuses_other_labels() {
        let tz = zone("Europe/Berlin");
        for bad in [
            "2026-W47",
            "2026-13-01",
            "2026-02-30",
            "2026-1-05",
            " 2026-11-21",
            "2026-11-21 ",
            "",
        ] {
            assert_eq!(Period::parse(bad, PeriodKind::Day, tz), None, "{bad:?}");
        }
        for bad in [
            "2026-11-21",
            "2026-W00",
            "2026-W54",
            "2026-W7",
            "2026-w47",
            "2026W47",
            "2026-W47x",
            "+2026-W47",
        ] {
            assert_eq!(Period::parse(bad, PeriodKind::Week, tz), None, "{bad:?}");
        }
    }
}
