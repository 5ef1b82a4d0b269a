//! How option values the config types take from the command line are written (cargo feature
//! `cli`): durations like `250ms`, `15s` or `2m`, read and shown the same way.

use std::time::Duration;

/// Parses `250ms`, `15s`, `2m` or a bare number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 250ms, 15s or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// `d` as [`parse_duration`] reads it, in the largest unit that is exact: `5m`, `10s`,
/// `250ms`, else decimal seconds. The `[default: ...]` of a duration option in `--help`.
pub(crate) fn duration_text(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    if nanos == 0 && secs != 0 && secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else if nanos == 0 {
        format!("{secs}s")
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{secs}.{nanos:09}s")
    }
}

/// Parses a switch: `on`/`off` (also `true`/`false`, `yes`/`no`, `1`/`0`).
pub(crate) fn parse_switch(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not on or off")),
    }
}

/// A switch as [`parse_switch`] reads it: `on` or `off`.
pub(crate) fn switch_text(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// `T` from a command line without options and without the environment: every default shown
/// in `--help` goes through the option's value parser (the config types' tests compare it
/// with their `Default`).
#[cfg(test)]
pub(crate) fn parsed_without_options<T: clap::Args + std::fmt::Debug>() -> T {
    use clap::{CommandFactory, FromArgMatches, Parser};

    /// A program with nothing but `T`'s options.
    #[derive(Debug, Parser)]
    struct Only<T: clap::Args> {
        #[command(flatten)]
        config: T,
    }

    let command = Only::<T>::command().mut_args(|a| a.env(None));
    command.clone().debug_assert();
    let matches = command.try_get_matches_from(["program"]).unwrap();
    Only::<T>::from_arg_matches(&matches).unwrap().config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn durations_are_shown_as_they_parse() {
        for (d, text) in [
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(90), "90s"),
            (Duration::ZERO, "0s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(1500), "0.001500000s"),
        ] {
            assert_eq!(duration_text(d), text);
            assert_eq!(parse_duration(text), Ok(d), "{text}");
        }
    }
}
