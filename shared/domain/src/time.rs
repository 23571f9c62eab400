//! Business time: instants are UTC; business dates are dates in Asia/Shanghai (UTC+8, no DST).

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// Asia/Shanghai as a fixed offset (China has not observed daylight saving since 1991).
pub const SHANGHAI: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The business date in Shanghai at instant `now`.
pub fn business_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&SHANGHAI).date_naive()
}

/// Whole seconds from `now` to the next business day (midnight in Shanghai), at least 1: when
/// daily quotas refill.
pub fn secs_to_next_business_day(now: DateTime<Utc>) -> u64 {
    let next = business_date(now)
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(SHANGHAI).single());
    next.map_or(86_400, |t| {
        let secs = (t.with_timezone(&Utc) - now).num_seconds();
        u64::try_from(secs).unwrap_or(1).max(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_date_rolls_over_at_shanghai_midnight() {
        let before = DateTime::parse_from_rfc3339("2026-11-22T15:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        let after = DateTime::parse_from_rfc3339("2026-11-22T16:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(business_date(before).to_string(), "2026-11-22");
        assert_eq!(business_date(after).to_string(), "2026-11-23");
        assert_eq!(secs_to_next_business_day(before), 1);
        assert_eq!(secs_to_next_business_day(after), 86_400);
        let noon_beijing = DateTime::parse_from_rfc3339("2026-11-22T04:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(secs_to_next_business_day(noon_beijing), 12 * 3_600);
    }
}
