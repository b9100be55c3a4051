//! The typed error of a value that serde accepts but the runner cannot use
//! (a range, or a combination of components), naming the key path.
//!
//! Component configs check their own ranges and return [`Invalid`]; the plan
//! (`crate::plan`) adds the rules across components; loading turns an
//! `Invalid` into a message naming the file (or flag, or variable) the key
//! came from.

/// A value, or a combination of values, that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct Invalid {
    /// Dotted key path, e.g. `env.horizon`.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl Invalid {
    /// The error for `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// `Err` for `key` unless `v` is a finite number > 0.
pub fn positive(key: &str, v: f64) -> Result<(), Invalid> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(key, "must be a positive number"))
    }
}

/// `Err` for `key` when an optional count is set to 0.
pub fn nonzero<T: PartialEq + Default>(key: &str, v: Option<T>) -> Result<(), Invalid> {
    match v {
        Some(x) if x == T::default() => Err(Invalid::new(key, "must be at least 1")),
        _ => Ok(()),
    }
}

/// Longest experiment name (bytes): with a run id it must fit a file name.
pub const MAX_NAME_LEN: usize = 100;

/// `Err` for `key` unless `v` is one safe path component: 1 to
/// [`MAX_NAME_LEN`] ASCII letters, digits, `.`, `_`, `-` or `+`, not starting
/// with `.` (so neither `.`, `..` nor a hidden directory). Names are refused,
/// not rewritten, so that a result directory is always the name as written.
pub fn path_component(key: &str, v: &str) -> Result<(), Invalid> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-+".contains(c);
    if v.is_empty() {
        return Err(Invalid::new(
            key,
            "must not be empty (it names the results directory)",
        ));
    }
    if v.len() > MAX_NAME_LEN {
        return Err(Invalid::new(
            key,
            format!("is {} bytes long; at most {MAX_NAME_LEN}", v.len()),
        ));
    }
    if v.starts_with('.') || !v.chars().all(allowed) {
        return Err(Invalid::new(
            key,
            format!(
                "{v:?} is not a plain directory name: use letters, digits, `.`, `_`, `-`, `+` \
                 (no `/`, spaces or a leading `.`)"
            ),
        ));
    }
    Ok(())
}

/// Longest piece of the user's input that a message quotes, in characters.
pub const MAX_ECHO: usize = 200;

/// `text` as a message quotes it: whole when at most [`MAX_ECHO`]
/// characters, else its first [`MAX_ECHO`] characters and `… (N bytes)`, so
/// that a huge line or value does not flood the terminal.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short input is quoted whole; long input is cut at MAX_ECHO characters
    /// (not bytes: a multi-byte character is never split) with its length.
    #[test]
    fn long_input_is_cut_in_messages() {
        assert_eq!(excerpt("abc"), "abc");
        let exact = "x".repeat(MAX_ECHO);
        assert_eq!(excerpt(&exact), exact);
        let long = "λ".repeat(10_000);
        let e = excerpt(&long);
        assert!(e.starts_with(&"λ".repeat(MAX_ECHO)), "{e}");
        assert!(e.ends_with("… (20000 bytes)"), "{e}");
        assert!(e.chars().count() < MAX_ECHO + 20, "{e}");
    }
}
