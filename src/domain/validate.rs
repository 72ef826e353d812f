//! Input rules shared by every entry point: names, region codes, skills, references.

pub const MAX_REGION_LEN: usize = 64;
pub const MAX_SKILLS: usize = 64;
pub const MAX_SKILL_LEN: usize = 64;

/// A display name or title: not blank, at most `max` characters, no control characters.
pub fn name(value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// An ISO 8601 duration of days and time (`P1D`, `PT30M`, `P1DT2H`, `PT90S`), in seconds.
/// Years, months and weeks are refused: their length in seconds depends on the calendar.
pub fn duration(value: &str) -> Result<u64, String> {
    let bad = || format!("'{value}' is not a duration: use ISO 8601 days and time, e.g. PT30M, PT2H, P1D, P1DT12H");
    let rest = value.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, t),
        Some(_) => return Err(bad()),
        None => (rest, ""),
    };
    let mut total: u64 = 0;
    let mut take = |part: &str, units: &[(char, u64)]| -> Result<(), String> {
        let mut number = String::new();
        let mut next = 0;
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let at = units[next..].iter().position(|(u, _)| *u == c).ok_or_else(bad)?;
            let n: u64 = number.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(units[next + at].1)
                .and_then(|x| total.checked_add(x))
                .ok_or_else(bad)?;
            number.clear();
            next += at + 1;
        }
        if number.is_empty() { Ok(()) } else { Err(bad()) }
    };
    take(days, &[('D', 86_400)])?;
    take(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    if days.is_empty() && time.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// A number of seconds as the ISO 8601 duration [`duration`] reads (`P1DT2H30M`; `PT0S`).
pub fn iso_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::from("P");
    if d > 0 {
        out.push_str(&format!("{d}D"));
    }
    if h + m + s > 0 || d == 0 {
        out.push('T');
        for (n, u) in [(h, 'H'), (m, 'M'), (s, 'S')] {
            if n > 0 {
                out.push_str(&format!("{n}{u}"));
            }
        }
        if h + m + s == 0 {
            out.push_str("0S");
        }
    }
    out
}

/// A hierarchical region code such as `CN-31-04`: segments of A-Z and 0-9 joined by `-`.
pub fn region(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_REGION_LEN
        && value
            .split('-')
            .all(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{value}' is not a region code: use segments of A-Z and 0-9 joined by '-', e.g. CN-31-04"
        ))
    }
}

/// Whether `region` lies within `prefix` in the hierarchy (`CN-31` covers `CN-31` and `CN-31-04`,
/// not `CN-310`).
pub fn region_within(region: &str, prefix: &str) -> bool {
    region == prefix || (region.starts_with(prefix) && region.as_bytes().get(prefix.len()) == Some(&b'-'))
}

/// Skills: trimmed, non-empty, bounded, de-duplicated (order kept).
pub fn skills(values: &[String]) -> Result<Vec<String>, String> {
    if values.len() > MAX_SKILLS {
        return Err(format!("at most {MAX_SKILLS} skills"));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        let s = v.trim();
        if s.is_empty() {
            return Err("a skill must not be empty".into());
        }
        if s.chars().count() > MAX_SKILL_LEN {
            return Err(format!("a skill is at most {MAX_SKILL_LEN} characters"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// A caller's reference (externalRef, outer tenant id): printable, no spaces, bounded.
pub fn reference(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be 1 to 128 printable characters without spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in ["CN", "CN-31", "CN-31-04", "US-CA-94107"] {
            assert!(region(ok).is_ok(), "{ok}");
        }
        for bad in ["", "cn-31", "CN--31", "CN-31-", "-CN", "CN 31", "CN_31", "CN-3%"] {
            assert!(region(bad).is_err(), "{bad}");
        }
        assert!(region(&"A".repeat(65)).is_err());
    }

    #[test]
    fn region_prefixes_follow_the_hierarchy() {
        assert!(region_within("CN-31-04", "CN-31"));
        assert!(region_within("CN-31", "CN-31"));
        assert!(region_within("CN-31-04", "CN"));
        assert!(!region_within("CN-310", "CN-31"));
        assert!(!region_within("CN", "CN-31"));
    }

    #[test]
    fn names_and_skills() {
        assert!(name("Fix pump", 10).is_ok());
        assert!(name("   ", 10).is_err());
        assert!(name("", 10).is_err());
        assert!(name("abcdefghijk", 10).is_err());
        assert!(name("a\u{0}b", 10).is_err());
        assert_eq!(
            skills(&[" hvac".into(), "hvac".into(), "gas".into()]).unwrap(),
            vec!["hvac", "gas"]
        );
        assert!(skills(&["".into()]).is_err());
        assert!(reference("PO-1").is_ok());
        assert!(reference("PO 1").is_err());
    }

    #[test]
    fn durations_are_iso_8601_days_and_time() {
        for (text, secs) in [
            ("PT30M", 1_800),
            ("PT2H", 7_200),
            ("P1D", 86_400),
            ("P1DT12H", 129_600),
            ("PT1H30M15S", 5_415),
            ("PT90S", 90),
        ] {
            assert_eq!(duration(text), Ok(secs), "{text}");
        }
        for bad in [
            "", "P", "PT", "30M", "PT30", "P1H", "PT1M1H", "P1W", "P1Y", "PT-1M", "PT1.5H", "P1DT",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        for secs in [0, 59, 1_800, 86_400, 129_600, 5_415, 90_061] {
            assert_eq!(duration(&iso_duration(secs)), Ok(secs), "{}", iso_duration(secs));
        }
        assert_eq!(iso_duration(1_800), "PT30M");
        assert_eq!(iso_duration(86_400), "P1D");
    }
}
