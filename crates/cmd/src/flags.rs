//! Flag value parsers shared by the subcommands, in Mesos's formats.

use std::time::Duration;

/// Parses a Mesos duration: a number followed by a unit, `ns`, `us`, `ms`, `secs`,
/// `mins`, `hrs`, `days` or `weeks` (`15secs`, `0.5secs`, `100ms`, `10mins`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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
        other => return Err(format!("'{other}' is not a duration unit (ns, us, ms, secs, mins, hrs, days, weeks)")),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|e| format!("'{text}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mesos_durations() {
        assert_eq!(parse_duration("15secs"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("10mins"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("0.5secs"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn rejects_durations_without_units_or_numbers() {
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("secs").is_err());
        assert!(parse_duration("5parsecs").is_err());
    }
}
