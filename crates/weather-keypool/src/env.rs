use crate::key::UpstreamKey;

/// The single-key variable, also the prefix of the numbered ones.
pub const ENV_KEY: &str = "OPENWEATHER_API_KEY";
/// The comma-separated list variable.
pub const ENV_KEYS: &str = "OPENWEATHER_API_KEYS";

/// Collects the OpenWeather keys from `(name, value)` pairs shaped like the environment.
///
/// Read, in this order:
/// 1. `OPENWEATHER_API_KEY`;
/// 2. every `OPENWEATHER_API_KEY<n>` where `<n>` is one to nine ASCII digits, by increasing `n`
///    (every matching variable is read, so gaps are fine: `KEY1` and `KEY3` without `KEY2`
///    both count);
/// 3. `OPENWEATHER_API_KEYS`, a comma-separated list.
///
/// Values are trimmed; blank values are ignored. Duplicates are left in: the pool drops them.
/// Any other variable, including `OPENWEATHER_API_KEY_2` or a ten-digit suffix, is ignored.
#[must_use]
pub fn keys_from_vars<I, N, V>(vars: I) -> Vec<UpstreamKey>
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<str>,
    V: AsRef<str>,
{
    let mut single = Vec::new();
    let mut numbered: Vec<(u32, UpstreamKey)> = Vec::new();
    let mut listed = Vec::new();
    for (name, value) in vars {
        let (name, value) = (name.as_ref(), value.as_ref());
        if name == ENV_KEY {
            single.extend(UpstreamKey::new(value));
        } else if name == ENV_KEYS {
            listed.extend(value.split(',').filter_map(UpstreamKey::new));
        } else if let Some(n) = name.strip_prefix(ENV_KEY).and_then(parse_suffix) {
            numbered.extend(UpstreamKey::new(value).map(|key| (n, key)));
        }
    }
    numbered.sort_by_key(|(n, _)| *n);
    single
        .into_iter()
        .chain(numbered.into_iter().map(|(_, key)| key))
        .chain(listed)
        .collect()
}

fn parse_suffix(suffix: &str) -> Option<u32> {
    if suffix.is_empty() || suffix.len() > 9 || !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    suffix.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Vec<String> {
        keys_from_vars(vars.iter().copied())
            .iter()
            .map(|k| k.expose_secret().to_owned())
            .collect()
    }

    #[test]
    fn reads_single_numbered_with_gaps_and_list_in_order() {
        let keys = read(&[
            ("OPENWEATHER_API_KEYS", "l1, ,l2,"),
            ("OPENWEATHER_API_KEY3", "k3"),
            ("OPENWEATHER_API_KEY", " k0 "),
            ("OPENWEATHER_API_KEY10", "k10"),
            ("OPENWEATHER_API_KEY1", "k1"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(keys, ["k0", "k1", "k3", "k10", "l1", "l2"]);
    }

    #[test]
    fn ignores_blank_values_and_lookalike_names() {
        let keys = read(&[
            ("OPENWEATHER_API_KEY", "  "),
            ("OPENWEATHER_API_KEY1", ""),
            ("OPENWEATHER_API_KEY_2", "x"),
            ("OPENWEATHER_API_KEYX", "x"),
            ("OPENWEATHER_API_KEY1234567890", "x"),
            ("openweather_api_key", "x"),
            ("OPENWEATHER_API_KEY+1", "x"),
        ]);
        assert!(keys.is_empty(), "{keys:?}");
    }
}
