//! Local wall-clock times to instants, the one rule every calendar here
//! (report periods, on-call handoffs and windows) follows across DST.

use crate::tz::Tz;
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};

/// The instant of local `naive` on `tz`: the first occurrence if it occurs
/// twice (the autumn hour), the first instant after the gap if it does not
/// occur (the spring hour).
pub fn instant(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => gap_end(tz, naive),
    }
}

/// The first instant whose local time on `tz` is `naive` or later, to the
/// second: where `naive` falls in a gap, the instant the gap ends.
fn gap_end(tz: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    let local = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .map(|t| t.with_timezone(&tz).naive_local())
            .unwrap_or(naive)
    };
    // UTC offsets stay within ±26 h, so the local time at `lo` is before
    // `naive` and the one at `hi` is not.
    let guess = naive.and_utc().timestamp();
    let (mut lo, mut hi) = (guess - 26 * 3600, guess + 26 * 3600);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local(mid) >= naive {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or_else(|| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tz::zone;

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn gaps_move_forward_and_repeats_take_the_first() {
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            instant(berlin, naive("2026-11-24T09:00")),
            utc("2026-11-24T08:00:00Z")
        );
        // 02:30 does not exist on 29 March: 03:00 CEST is the first instant after.
        assert_eq!(
            instant(berlin, naive("2026-03-29T02:30")),
            utc("2026-03-29T01:00:00Z")
        );
        // 02:30 happens twice on 25 October: the first (CEST) one.
        assert_eq!(
            instant(berlin, naive("2026-10-25T02:30")),
            utc("2026-10-25T00:30:00Z")
        );
        // America/Santiago skips midnight when DST starts (6 September 2026).
        let santiago = zone("America/Santiago");
        assert_eq!(
            instant(santiago, naive("2026-09-06T00:00")),
            utc("2026-09-06T04:00:00Z")
        );
    }
}
