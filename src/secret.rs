//! A credential type: tokens and API keys are held as [`Secret`] so that they print only as a mask.
//!
//! Invariant: nothing in the project formats a `Secret` except through `masked()`; `expose()` is called only
//! where the value leaves the process (an HTTP header, git's credential prompt).

use std::fmt;

/// A credential: printable only as a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        let n = self.0.chars().count();
        if n <= 8 {
            "****".into()
        } else {
            let tail: String = self.0.chars().skip(n - 4).collect();
            format!("****{tail} ({n} chars)")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}
