//! Mesos's duration syntax, as flags and executor environment variables carry it
//! (`MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs`): a number, then one of the units `ns`,
//! `us`, `ms`, `secs`, `mins`, `hrs`, `days`, `weeks`.

use std::time::Duration;

/// Parses `15secs`, `0.5secs`, `100ms`, `10mins`, ...; the error says what is wrong.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("'{text}' has no unit (e.g. 15secs, 100ms, 10mins)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' does not start with a number"))?;
    let seconds_per_unit = match unit.trim() {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86400.0,
        "weeks" => 604800.0,
        other => {
            return Err(format!(
                "'{other}' is not a duration unit (ns, us, ms, secs, mins, hrs, days, weeks)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|e| format!("'{text}': {e}"))
}

/// Formats in the largest unit that keeps the value whole (`5secs`, `100ms`, `250us`).
pub fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos.is_multiple_of(1_000_000_000) {
        format!("{}secs", duration.as_secs())
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", duration.as_millis())
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", duration.as_micros())
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mesos_durations() {
        assert_eq!(parse("15secs"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("10mins"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("0.5secs"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects_durations_without_units_or_numbers() {
        assert!(parse("15").is_err());
        assert!(parse("secs").is_err());
        assert!(parse("5parsecs").is_err());
    }

    #[test]
    fn formats_in_the_largest_whole_unit_and_parses_back() {
        for d in [
            Duration::from_secs(5),
            Duration::from_millis(1500),
            Duration::from_micros(7),
        ] {
            assert_eq!(parse(&format(d)), Ok(d));
        }
        assert_eq!(format(Duration::from_secs(5)), "5secs");
        assert_eq!(format(Duration::from_millis(100)), "100ms");
    }
}
