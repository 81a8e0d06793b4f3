//! Reading variables: a lookup that treats blank as unset, and parsers that
//! name the variable in every error.

use std::{fmt, str::FromStr, time::Duration};

use anyhow::{Context, bail};

/// The environment (or a test's stand-in) being read.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The value, `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// A value of `T` between `min` and `max`, if set.
    pub fn range<T>(&self, name: &str, min: T, max: T) -> anyhow::Result<Option<T>>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.get(name)
            .map(|v| parse_range(name, &v, min, max))
            .transpose()
    }

    /// Milliseconds between `min` and `max`, if set.
    pub fn millis(&self, name: &str, min: u64, max: u64) -> anyhow::Result<Option<Duration>> {
        Ok(self.range(name, min, max)?.map(Duration::from_millis))
    }

    /// Seconds between `min` and `max`, if set.
    pub fn secs(&self, name: &str, min: u64, max: u64) -> anyhow::Result<Option<Duration>> {
        Ok(self.range(name, min, max)?.map(Duration::from_secs))
    }

    /// `true`/`false` (also 1/0, yes/no, on/off), if set.
    pub fn bool(&self, name: &str) -> anyhow::Result<Option<bool>> {
        self.get(name).map(|v| parse_bool(name, &v)).transpose()
    }
}

pub fn parse<T: FromStr>(name: &str, value: &str) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value
        .trim()
        .parse()
        .with_context(|| format!("{name}: cannot parse `{value}`"))
}

pub fn parse_range<T>(name: &str, value: &str, min: T, max: T) -> anyhow::Result<T>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let v: T = parse(name, value)?;
    if v < min || v > max {
        bail!("{name} must be between {min} and {max}, not {v}");
    }
    Ok(v)
}

pub fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name} must be true or false, not `{value}`"),
    }
}
