//! Who may call a routine's webhook (`POST /hooks/{name}`): each hook has either an HMAC secret, with
//! which the sender signs every body, or a bearer token.
//!
//! Two signature headers are accepted for an HMAC hook, both HMAC-SHA256 in lower-case hex:
//!
//! - `X-Edgeclaw-Signature: t=<unix seconds>,v1=<hex>`, signing `"<t>.<body>"`. The timestamp is signed,
//!   so a captured delivery can be replayed only within [`REPLAY_WINDOW_SECS`], and the signature itself
//!   identifies the delivery for de-duplication within that window. Several `v1=` entries may be sent
//!   while a secret is being rotated; one match suffices.
//! - `X-Hub-Signature-256: sha256=<hex>`, signing the body alone, as GitHub sends it. It carries no
//!   timestamp, so the caller must de-duplicate by [`Verified::delivery_id`].
//!
//! Every comparison of a secret or signature is constant-time, and no error message contains the secret
//! or the signature expected.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// How far, in seconds, a signed timestamp may be from the clock, in either direction.
pub const REPLAY_WINDOW_SECS: i64 = 300;

/// The fewest characters a hook secret or token may have.
pub const MIN_SECRET_LEN: usize = 16;

/// The most characters a hook secret or token may have.
pub const MAX_SECRET_LEN: usize = 256;

/// The timestamped signature header (lower case, as [`HookAuth::verify`] looks it up).
pub const SIGNATURE_HEADER: &str = "x-edgeclaw-signature";

/// GitHub's signature header (lower case).
pub const GITHUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// Headers a sender may name its delivery by, in the order they are read (lower case).
pub const DELIVERY_HEADERS: [&str; 2] = ["x-github-delivery", "x-edgeclaw-delivery"];

/// The longest delivery id accepted from a header.
const MAX_DELIVERY_ID_LEN: usize = 128;

const GITHUB_PREFIX: &str = "sha256=";

const SIGNATURE_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// How a hook authenticates its callers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HookAuth {
    /// HMAC-SHA256 of the body with a shared secret, in `X-Edgeclaw-Signature` or `X-Hub-Signature-256`.
    Hmac {
        /// The shared secret.
        secret: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
}

/// A delivery that passed [`HookAuth::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What to de-duplicate deliveries by, if anything. For a timestamped signature it is
    /// `t=<t>,v1=<signature>`, which only the holder of the secret can produce; an unsigned delivery
    /// header is ignored there, since a replayer could change it. Otherwise it is the
    /// `X-GitHub-Delivery` or `X-Edgeclaw-Delivery` header, which stops a sender's redeliveries but not
    /// a hostile replay, or `None` when neither is sent.
    pub delivery_id: Option<String>,
}

/// A webhook call or a hook's configuration was rejected; the message tells the caller what to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookAuthError {
    /// An HMAC hook was called without a signature header.
    #[error("missing signature: send X-Hub-Signature-256 or X-Edgeclaw-Signature")]
    MissingSignature,
    /// A bearer hook was called without an `Authorization` header.
    #[error("missing token: send Authorization: Bearer <token>")]
    MissingToken,
    /// A header is present but not in the expected form.
    #[error("{0}")]
    Malformed(String),
    /// The signature is well-formed but was not made with this hook's secret over this body.
    #[error("the signature does not match the body and the hook's secret")]
    BadSignature,
    /// The bearer token is not this hook's token.
    #[error("the bearer token is not valid for this hook")]
    BadToken,
    /// The signed timestamp is further than [`REPLAY_WINDOW_SECS`] from the clock.
    #[error(
        "signature timestamp is outside the {}-minute window; sign each delivery with the current time",
        REPLAY_WINDOW_SECS / 60
    )]
    Expired,
    /// A new hook's secret or token is too short, too long or has characters outside printable ASCII.
    #[error("{0}")]
    WeakSecret(String),
}

impl fmt::Debug for HookAuth {
    // The secret must not reach logs through a `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookAuth::Hmac { .. } => f.debug_struct("Hmac").finish_non_exhaustive(),
            HookAuth::Bearer { .. } => f.debug_struct("Bearer").finish_non_exhaustive(),
        }
    }
}

impl HookAuth {
    /// Checks a new hook's secret or token: [`MIN_SECRET_LEN`] to [`MAX_SECRET_LEN`] printable ASCII
    /// characters without spaces, so it can be pasted into any sender's configuration as is.
    pub fn validate(&self) -> Result<(), HookAuthError> {
        let (what, value) = match self {
            HookAuth::Hmac { secret } => ("HMAC secret", secret),
            HookAuth::Bearer { token } => ("bearer token", token),
        };
        let expected = format!("use {MIN_SECRET_LEN} to {MAX_SECRET_LEN} printable ASCII characters without spaces");
        if !value.chars().all(|c| c.is_ascii_graphic()) {
            return Err(HookAuthError::WeakSecret(format!(
                "the {what} has spaces or characters outside printable ASCII; {expected}"
            )));
        }
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&value.len()) {
            return Err(HookAuthError::WeakSecret(format!("the {what} has {} characters; {expected}", value.len())));
        }
        Ok(())
    }

    /// Verifies one delivery of `body`. `header` looks a request header up by its lower-case name;
    /// `now_secs` is the clock in Unix seconds. An HMAC hook prefers `X-Edgeclaw-Signature` when both
    /// signature headers are sent.
    pub fn verify(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<Verified, HookAuthError> {
        match self {
            HookAuth::Hmac { secret } => {
                if let Some(value) = header(SIGNATURE_HEADER) {
                    verify_timestamped(secret, &value, body, now_secs)
                } else if let Some(value) = header(GITHUB_SIGNATURE_HEADER) {
                    verify_github(secret, &value, body)?;
                    Ok(Verified { delivery_id: delivery_header(header)? })
                } else {
                    Err(HookAuthError::MissingSignature)
                }
            }
            HookAuth::Bearer { token } => {
                let value = header("authorization").ok_or(HookAuthError::MissingToken)?;
                verify_bearer(token, &value)?;
                Ok(Verified { delivery_id: delivery_header(header)? })
            }
        }
    }
}

/// The `X-Edgeclaw-Signature` value a sender sends for `body` at `timestamp` (Unix seconds).
pub fn sign_timestamped(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let signature = mac(secret, &[timestamp.to_string().as_bytes(), b".", body]);
    format!("t={timestamp},v1={}", hex::encode(signature))
}

/// The `X-Hub-Signature-256` value a sender sends for `body`.
pub fn sign_github(secret: &str, body: &[u8]) -> String {
    format!("{GITHUB_PREFIX}{}", hex::encode(mac(secret, &[body])))
}

fn mac(secret: &str, parts: &[&[u8]]) -> [u8; SIGNATURE_LEN] {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn verify_timestamped(secret: &str, value: &str, body: &[u8], now_secs: i64) -> Result<Verified, HookAuthError> {
    const FORM: &str = "X-Edgeclaw-Signature must be \"t=<unix seconds>,v1=<64 hex digits>\"";
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in value.split(',').map(str::trim) {
        let (key, field) = part
            .split_once('=')
            .ok_or_else(|| HookAuthError::Malformed(format!("{FORM}; found a part without '='")))?;
        match key {
            "t" if timestamp.is_some() => {
                return Err(HookAuthError::Malformed(format!("{FORM}; found more than one t=")));
            }
            "t" => timestamp = Some(field),
            "v1" => candidates.push(decode_signature(field, "X-Edgeclaw-Signature v1")?),
            // Other schemes are for other verifiers, as a sender may sign several ways at once.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| HookAuthError::Malformed(format!("{FORM}; t= is missing")))?;
    let seconds = parse_timestamp(timestamp)
        .ok_or_else(|| HookAuthError::Malformed(format!("{FORM}; t= must be whole Unix seconds")))?;
    if candidates.is_empty() {
        return Err(HookAuthError::Malformed(format!("{FORM}; v1= is missing")));
    }

    let expected = mac(secret, &[timestamp.as_bytes(), b".", body]);
    // Every candidate is compared, so the time taken does not say which one matched.
    let matched = candidates.iter().fold(Choice::from(0), |any, candidate| any | candidate.ct_eq(&expected));
    if !bool::from(matched) {
        return Err(HookAuthError::BadSignature);
    }
    if now_secs.abs_diff(seconds) > REPLAY_WINDOW_SECS.unsigned_abs() {
        return Err(HookAuthError::Expired);
    }
    Ok(Verified { delivery_id: Some(format!("t={timestamp},v1={}", hex::encode(expected))) })
}

fn parse_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn verify_github(secret: &str, value: &str, body: &[u8]) -> Result<(), HookAuthError> {
    let hex = value.trim().strip_prefix(GITHUB_PREFIX).ok_or_else(|| {
        HookAuthError::Malformed("X-Hub-Signature-256 must be \"sha256=\" followed by 64 hex digits".to_string())
    })?;
    let given = decode_signature(hex, "X-Hub-Signature-256")?;
    if bool::from(given.ct_eq(&mac(secret, &[body]))) {
        Ok(())
    } else {
        Err(HookAuthError::BadSignature)
    }
}

fn decode_signature(hex: &str, header: &str) -> Result<[u8; SIGNATURE_LEN], HookAuthError> {
    let mut signature = [0; SIGNATURE_LEN];
    if hex.len() != 2 * SIGNATURE_LEN {
        return Err(HookAuthError::Malformed(format!(
            "{header} must be 64 hex digits (HMAC-SHA256); found {} characters",
            hex.len()
        )));
    }
    hex::decode_to_slice(hex, &mut signature).map_err(|_| {
        HookAuthError::Malformed(format!("{header} must be 64 hex digits (HMAC-SHA256); found a non-hex character"))
    })?;
    Ok(signature)
}

fn verify_bearer(token: &str, value: &str) -> Result<(), HookAuthError> {
    let malformed = || HookAuthError::Malformed("Authorization must be \"Bearer <token>\"".to_string());
    let (scheme, given) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let given = given.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || given.is_empty() {
        return Err(malformed());
    }
    // Comparing digests keeps the comparison constant-time even in the token's length.
    if bool::from(Sha256::digest(given).ct_eq(&Sha256::digest(token))) {
        Ok(())
    } else {
        Err(HookAuthError::BadToken)
    }
}

fn delivery_header(header: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, HookAuthError> {
    for name in DELIVERY_HEADERS {
        let Some(value) = header(name) else { continue };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if value.len() > MAX_DELIVERY_ID_LEN || !value.chars().all(|c| c.is_ascii_graphic()) {
            return Err(HookAuthError::Malformed(format!(
                "{name} must be at most {MAX_DELIVERY_ID_LEN} printable ASCII characters without spaces"
            )));
        }
        return Ok(Some(value.to_string()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "its-a-secret-to-everybody";
    const BODY: &[u8] = br#"{"action":"opened"}"#;
    const NOW: i64 = 1_767_225_600;

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn hmac_hook() -> HookAuth {
        HookAuth::Hmac { secret: SECRET.to_string() }
    }

    fn bearer_hook() -> HookAuth {
        HookAuth::Bearer { token: "tok_0123456789abcdef".to_string() }
    }

    fn malformed(result: Result<Verified, HookAuthError>) -> String {
        match result {
            Err(HookAuthError::Malformed(message)) => message,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2() {
        assert_eq!(
            sign_github("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn github_signature_of_the_body_passes() {
        let signature = sign_github(SECRET, BODY);
        let verified =
            hmac_hook().verify(&headers(&[("x-hub-signature-256", &signature)]), BODY, NOW).expect("verifies");
        assert_eq!(verified, Verified { delivery_id: None });
    }

    #[test]
    fn github_signature_in_upper_case_hex_passes() {
        let signature = format!("sha256={}", sign_github(SECRET, BODY)[7..].to_ascii_uppercase());
        assert!(hmac_hook().verify(&headers(&[("x-hub-signature-256", &signature)]), BODY, NOW).is_ok());
    }

    #[test]
    fn github_signature_of_a_tampered_body_is_rejected() {
        let signature = sign_github(SECRET, BODY);
        let result =
            hmac_hook().verify(&headers(&[("x-hub-signature-256", &signature)]), br#"{"action":"closed"}"#, NOW);
        assert_eq!(result, Err(HookAuthError::BadSignature));
    }

    #[test]
    fn github_signature_with_another_secret_is_rejected() {
        let signature = sign_github("another-secret-entirely", BODY);
        let result = hmac_hook().verify(&headers(&[("x-hub-signature-256", &signature)]), BODY, NOW);
        assert_eq!(result, Err(HookAuthError::BadSignature));
    }

    #[test]
    fn github_signature_that_is_not_ours_is_rejected() {
        let signature = format!("sha256={}", "0".repeat(64));
        let result = hmac_hook().verify(&headers(&[("x-hub-signature-256", &signature)]), BODY, NOW);
        assert_eq!(result, Err(HookAuthError::BadSignature));
    }

    #[test]
    fn github_signature_without_sha256_prefix_is_malformed() {
        let hex = sign_github(SECRET, BODY)[7..].to_string();
        for value in [hex.clone(), format!("sha1={hex}"), format!("SHA256={hex}")] {
            let message = malformed(hmac_hook().verify(&headers(&[("x-hub-signature-256", &value)]), BODY, NOW));
            assert!(message.contains("\"sha256=\""), "{message}");
        }
    }

    #[test]
    fn github_signature_with_short_or_non_hex_digits_is_malformed() {
        let signature = sign_github(SECRET, BODY);
        let short = &signature[..signature.len() - 2];
        let message = malformed(hmac_hook().verify(&headers(&[("x-hub-signature-256", short)]), BODY, NOW));
        assert!(message.contains("64 hex digits") && message.contains("62 characters"), "{message}");

        let non_hex = format!("sha256={}", "g".repeat(64));
        let message = malformed(hmac_hook().verify(&headers(&[("x-hub-signature-256", &non_hex)]), BODY, NOW));
        assert!(message.contains("non-hex"), "{message}");
    }

    #[test]
    fn hmac_hook_without_a_signature_says_which_headers_to_send() {
        let error = hmac_hook().verify(&headers(&[]), BODY, NOW).expect_err("rejected");
        assert_eq!(error, HookAuthError::MissingSignature);
        assert_eq!(error.to_string(), "missing signature: send X-Hub-Signature-256 or X-Edgeclaw-Signature");
    }

    #[test]
    fn timestamped_signature_passes_and_names_the_delivery() {
        let signature = sign_timestamped(SECRET, NOW - 10, BODY);
        let verified =
            hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &signature)]), BODY, NOW).expect("verifies");
        assert_eq!(verified.delivery_id, Some(signature));
    }

    #[test]
    fn timestamped_signature_at_the_edges_of_the_window_passes() {
        for timestamp in [NOW - REPLAY_WINDOW_SECS, NOW + REPLAY_WINDOW_SECS] {
            let signature = sign_timestamped(SECRET, timestamp, BODY);
            assert!(hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &signature)]), BODY, NOW).is_ok());
        }
    }

    #[test]
    fn timestamped_signature_outside_the_window_has_expired() {
        for timestamp in [NOW - REPLAY_WINDOW_SECS - 1, NOW + REPLAY_WINDOW_SECS + 1, 0] {
            let signature = sign_timestamped(SECRET, timestamp, BODY);
            let error =
                hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &signature)]), BODY, NOW).expect_err("expired");
            assert_eq!(error, HookAuthError::Expired);
            assert!(error.to_string().contains("outside the 5-minute window"));
        }
    }

    #[test]
    fn timestamp_cannot_be_moved_without_the_secret() {
        let signature =
            sign_timestamped(SECRET, NOW - 3600, BODY).replacen(&(NOW - 3600).to_string(), &NOW.to_string(), 1);
        let result = hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &signature)]), BODY, NOW);
        assert_eq!(result, Err(HookAuthError::BadSignature));
    }

    #[test]
    fn timestamped_signature_of_a_tampered_body_is_rejected() {
        let signature = sign_timestamped(SECRET, NOW, BODY);
        let result = hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &signature)]), b"{}", NOW);
        assert_eq!(result, Err(HookAuthError::BadSignature));
    }

    #[test]
    fn any_of_several_v1_signatures_may_match_during_rotation() {
        let old = sign_timestamped("the-old-secret-000", NOW, BODY);
        let new = sign_timestamped(SECRET, NOW, BODY);
        let value = format!("{old}, v1={}", &new[new.find("v1=").expect("has v1") + 3..]);
        let verified = hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &value)]), BODY, NOW).expect("verifies");
        assert_eq!(verified.delivery_id, Some(new));

        let wrong = format!("t={NOW},v1={},v1={}", "a".repeat(64), "b".repeat(64));
        let result = hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &wrong)]), BODY, NOW);
        assert_eq!(result, Err(HookAuthError::BadSignature));
    }

    #[test]
    fn timestamped_signature_without_t_is_malformed() {
        let value = format!("v1={}", "a".repeat(64));
        let message = malformed(hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &value)]), BODY, NOW));
        assert!(message.contains("t= is missing"), "{message}");
    }

    #[test]
    fn timestamped_signature_with_a_non_numeric_t_is_malformed() {
        for t in ["soon", "-5", "+5", "1.5", "", "99999999999999999999"] {
            let value = format!("t={t},v1={}", "a".repeat(64));
            let message = malformed(hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &value)]), BODY, NOW));
            assert!(message.contains("whole Unix seconds"), "{t}: {message}");
        }
    }

    #[test]
    fn timestamped_signature_with_duplicate_t_or_no_v1_is_malformed() {
        let value = format!("t={NOW},t={NOW},v1={}", "a".repeat(64));
        assert!(malformed(hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &value)]), BODY, NOW))
            .contains("more than one t="));
        let value = format!("t={NOW}");
        assert!(malformed(hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &value)]), BODY, NOW))
            .contains("v1= is missing"));
    }

    #[test]
    fn timestamped_signature_with_short_hex_is_malformed() {
        let value = format!("t={NOW},v1={}", "a".repeat(63));
        let message = malformed(hmac_hook().verify(&headers(&[("x-edgeclaw-signature", &value)]), BODY, NOW));
        assert!(message.contains("64 hex digits"), "{message}");
    }

    #[test]
    fn timestamped_signature_is_preferred_when_both_are_sent() {
        let timestamped = sign_timestamped(SECRET, NOW - 3600, BODY);
        let github = sign_github(SECRET, BODY);
        let result = hmac_hook().verify(
            &headers(&[("x-edgeclaw-signature", &timestamped), ("x-hub-signature-256", &github)]),
            BODY,
            NOW,
        );
        assert_eq!(result, Err(HookAuthError::Expired));
    }

    #[test]
    fn delivery_id_comes_from_the_delivery_headers() {
        let github = sign_github(SECRET, BODY);
        let id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
        for name in DELIVERY_HEADERS {
            let verified =
                hmac_hook().verify(&headers(&[("x-hub-signature-256", &github), (name, id)]), BODY, NOW).expect("ok");
            assert_eq!(verified.delivery_id.as_deref(), Some(id), "{name}");
        }

        let both = headers(&[
            ("authorization", "Bearer tok_0123456789abcdef"),
            ("x-github-delivery", "from-github"),
            ("x-edgeclaw-delivery", "from-edgeclaw"),
        ]);
        assert_eq!(bearer_hook().verify(&both, BODY, NOW).expect("ok").delivery_id.as_deref(), Some("from-github"));
    }

    #[test]
    fn timestamped_delivery_id_ignores_unsigned_delivery_headers() {
        let signature = sign_timestamped(SECRET, NOW, BODY);
        let verified = hmac_hook()
            .verify(&headers(&[("x-edgeclaw-signature", &signature), ("x-edgeclaw-delivery", "chosen")]), BODY, NOW)
            .expect("verifies");
        assert_eq!(verified.delivery_id, Some(signature));
    }

    #[test]
    fn oversized_delivery_id_is_malformed() {
        let github = sign_github(SECRET, BODY);
        let id = "x".repeat(MAX_DELIVERY_ID_LEN + 1);
        let message = malformed(hmac_hook().verify(
            &headers(&[("x-hub-signature-256", &github), ("x-github-delivery", &id)]),
            BODY,
            NOW,
        ));
        assert!(message.contains("x-github-delivery"), "{message}");
    }

    #[test]
    fn bearer_token_passes_with_any_scheme_case() {
        for value in ["Bearer tok_0123456789abcdef", "bearer tok_0123456789abcdef", "BEARER  tok_0123456789abcdef "] {
            let verified = bearer_hook().verify(&headers(&[("authorization", value)]), BODY, NOW).expect(value);
            assert_eq!(verified.delivery_id, None);
        }
    }

    #[test]
    fn wrong_bearer_token_is_rejected() {
        for token in ["tok_0123456789abcdeg", "tok_0123456789abcdef0", "x"] {
            let value = format!("Bearer {token}");
            let result = bearer_hook().verify(&headers(&[("authorization", &value)]), BODY, NOW);
            assert_eq!(result, Err(HookAuthError::BadToken), "{token}");
        }
    }

    #[test]
    fn missing_or_malformed_authorization_is_rejected() {
        assert_eq!(bearer_hook().verify(&headers(&[]), BODY, NOW), Err(HookAuthError::MissingToken));
        for value in ["tok_0123456789abcdef", "Basic dG9rOnRvaw==", "Bearer ", "Bearer"] {
            let message = malformed(bearer_hook().verify(&headers(&[("authorization", value)]), BODY, NOW));
            assert!(message.contains("Bearer <token>"), "{value}: {message}");
        }
    }

    #[test]
    fn bearer_hook_ignores_signatures() {
        let github = sign_github("tok_0123456789abcdef", BODY);
        let result = bearer_hook().verify(&headers(&[("x-hub-signature-256", &github)]), BODY, NOW);
        assert_eq!(result, Err(HookAuthError::MissingToken));
    }

    #[test]
    fn strong_secrets_and_tokens_are_valid() {
        assert_eq!(hmac_hook().validate(), Ok(()));
        assert_eq!(bearer_hook().validate(), Ok(()));
        assert_eq!(HookAuth::Hmac { secret: "a".repeat(MAX_SECRET_LEN) }.validate(), Ok(()));
    }

    #[test]
    fn weak_secrets_are_refused_without_echoing_them() {
        let cases = [
            HookAuth::Hmac { secret: String::new() },
            HookAuth::Hmac { secret: "short-secret".to_string() },
            HookAuth::Hmac { secret: "a".repeat(MAX_SECRET_LEN + 1) },
            HookAuth::Hmac { secret: "has a space in it somewhere".to_string() },
            HookAuth::Bearer { token: "tab\tseparated-token-value".to_string() },
            HookAuth::Bearer { token: "ünïcödé-token-value-long".to_string() },
        ];
        for auth in cases {
            let (HookAuth::Hmac { secret: value } | HookAuth::Bearer { token: value }) = &auth;
            match auth.validate() {
                Err(HookAuthError::WeakSecret(message)) => {
                    assert!(message.contains("16 to 256 printable ASCII"), "{message}");
                    assert!(value.is_empty() || !message.contains(value.as_str()), "{message}");
                }
                other => panic!("expected WeakSecret for {auth:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn errors_never_contain_the_secret_or_the_expected_signature() {
        let expected = sign_github(SECRET, BODY)[7..].to_string();
        let attempts =
            [format!("sha256={}", "0".repeat(64)), "sha256=abc".to_string(), format!("sha256={}", &expected[..62])];
        for value in attempts {
            let error =
                hmac_hook().verify(&headers(&[("x-hub-signature-256", &value)]), b"other", NOW).expect_err("bad");
            let message = format!("{error} {error:?}");
            assert!(!message.contains(SECRET) && !message.contains(&expected), "{message}");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let shown = format!("{:?} {:?}", hmac_hook(), bearer_hook());
        assert_eq!(shown, "Hmac { .. } Bearer { .. }");
    }

    #[test]
    fn hook_auth_round_trips_through_json() {
        let json = r#"{"kind":"hmac","secret":"0123456789abcdef0123"}"#;
        let auth: HookAuth = serde_json::from_str(json).expect("deserializes");
        assert_eq!(auth, HookAuth::Hmac { secret: "0123456789abcdef0123".to_string() });
        assert_eq!(serde_json::to_string(&auth).expect("serializes"), json);

        let json = r#"{"kind":"bearer","token":"0123456789abcdef0123"}"#;
        let auth: HookAuth = serde_json::from_str(json).expect("deserializes");
        assert_eq!(serde_json::to_string(&auth).expect("serializes"), json);
    }
}
