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
