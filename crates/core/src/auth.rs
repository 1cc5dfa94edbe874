//! Who is calling: principals and their bearer API tokens, checked in constant time.

use std::fmt;

use subtle::ConstantTimeEq;

/// An authenticated owner of sessions, memory (and, later, secrets and routines).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Principal(String);

impl TryFrom<String> for Principal {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Principal::parse(&name)
    }
}

impl From<Principal> for String {
    fn from(principal: Principal) -> String {
        principal.0
    }
}

impl Principal {
    /// Parses a principal name: 1–64 of `a-z 0-9 _ -`.
    pub fn parse(name: &str) -> Result<Principal, String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(Principal(name.to_string()))
        } else {
            Err(format!("principal `{name}` must be 1-64 characters of a-z, 0-9, _ or -"))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The configured API tokens (`EDGECLAW_API_TOKENS`: comma-separated `principal:token` pairs).
#[derive(Clone, Default)]
pub struct ApiTokens {
    entries: Vec<(Principal, Vec<u8>)>,
}

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(p, _)| p.as_str()).collect();
        f.debug_struct("ApiTokens").field("principals", &names).finish_non_exhaustive()
    }
}

impl ApiTokens {
    /// Parses `principal:token,principal:token`.
    pub fn parse(text: &str) -> Result<ApiTokens, String> {
        let mut entries = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, token) =
                entry.split_once(':').ok_or_else(|| "each entry must be principal:token".to_string())?;
            let principal = Principal::parse(name.trim())?;
            let token = token.trim();
            if token.len() < 8 {
                return Err(format!("the token of `{principal}` is shorter than 8 characters"));
            }
            entries.push((principal, token.as_bytes().to_vec()));
        }
        Ok(ApiTokens { entries })
    }

    /// Whether any token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal whose token is in this `Authorization` header value, if any. Every configured
    /// token is compared, in constant time, so timing reveals nothing about which one matched.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Principal> {
        let presented =
            authorization?.strip_prefix("Bearer ").or_else(|| authorization?.strip_prefix("bearer "))?.trim();
        let mut found = None;
        for (principal, token) in &self.entries {
            if bool::from(token.as_slice().ct_eq(presented.as_bytes())) {
                found = Some(principal.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matching_token_yields_its_principal() {
        let tokens = ApiTokens::parse("alice:tok-alice-1, bob:tok-bob-22").unwrap();
        assert_eq!(tokens.authenticate(Some("Bearer tok-bob-22")).unwrap().as_str(), "bob");
        assert_eq!(tokens.authenticate(Some("Bearer tok-bob-2")), None);
        assert_eq!(tokens.authenticate(Some("tok-bob-22")), None);
        assert_eq!(tokens.authenticate(None), None);
    }

    #[test]
    fn no_tokens_let_nobody_in() {
        let tokens = ApiTokens::parse("").unwrap();
        assert!(tokens.is_empty());
        assert_eq!(tokens.authenticate(Some("Bearer ")), None);
    }

    #[test]
    fn malformed_entries_are_rejected() {
        assert!(ApiTokens::parse("alice").is_err());
        assert!(ApiTokens::parse("Alice:longenough").is_err());
        assert!(ApiTokens::parse("alice:short").is_err());
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let tokens = ApiTokens::parse("alice:secret-token").unwrap();
        assert!(!format!("{tokens:?}").contains("secret-token"));
    }
}
