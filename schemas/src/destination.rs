//! Webhook destination names, as the destinations file defines them and
//! producers name them on records (`destinations: [...]`).

/// Longest destination name.
pub const MAX_NAME_LEN: usize = 64;

/// Most destinations one record may name.
pub const MAX_PER_RECORD: usize = 16;

/// Whether `name` is a valid destination name: 1 to 64 of `[a-z0-9_-]`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words() {
        for good in ["a", "analytics", "crm-eu_2", &"x".repeat(64)] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "Analytics", "a b", "a.b", &"x".repeat(65), "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
