//! The secrets vault: seals secret values under a master key into records the platform stores, and opens
//! them again.
//!
//! Every record gets its own AES-256-GCM key, derived with HKDF-SHA256 from the master key, a fresh random salt
//! and the owner and name the secret belongs to. The owner and name are also the associated data, so a record
//! copied to another owner or name fails to open. Storage is the platform's business; randomness comes through
//! the [`Random`] port.

use std::fmt;
use std::rc::Rc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::ports::Random;

/// The record format this build writes and reads.
const VERSION: u32 = 1;
/// Domain separation for per-secret keys and associated data; bump with [`VERSION`].
const CONTEXT: &[u8] = b"edgeclaw-secret-v1";
/// Domain separation for the master key fingerprint, so it is unrelated to any derived key.
const KEY_ID_LABEL: &[u8] = b"edgeclaw-master-key-id-v1";
const KEY_LEN: usize = 32;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_NAME_LEN: usize = 64;
const MAX_VALUE_LEN: usize = 16 * 1024;

/// Operators paste keys with or without `=` padding; both mean the same bytes.
const MASTER_KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a secret could not be sealed or opened. Messages never contain a secret value or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The configured master key is malformed.
    #[error("invalid master key: {0}")]
    MasterKey(String),
    /// The secret name is not 1–64 of `A-Z a-z 0-9 _ . -`.
    #[error("invalid secret name: {0}")]
    Name(String),
    /// The secret value is empty or too large.
    #[error("invalid secret value: {0}")]
    Value(String),
    /// The record was sealed under a different master key than this vault holds.
    #[error("secret was sealed with master key {sealed_with}, but this vault holds master key {vault}")]
    WrongKey {
        /// Fingerprint of the key the record names.
        sealed_with: String,
        /// Fingerprint of this vault's key.
        vault: String,
    },
    /// The record is malformed, was tampered with, or belongs to another owner or name.
    #[error("sealed secret cannot be opened: {0}")]
    Corrupt(String),
}

/// The 32-byte key every secret is sealed under. Never printed; compare keys by [`MasterKey::id`].
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// Parses a key from standard base64 (padding optional, surrounding whitespace ignored) that must decode to
    /// exactly 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<MasterKey, VaultError> {
        let decoded = MASTER_KEY_BASE64.decode(encoded.trim()).map(Zeroizing::new).map_err(|_| {
            // The decoder's error names the offending character, which would be a piece of the key.
            VaultError::MasterKey("the master key must be 32 bytes of base64, but it is not valid base64".into())
        })?;
        if decoded.len() != KEY_LEN {
            return Err(VaultError::MasterKey(format!(
                "the master key must be 32 bytes of base64, got {} bytes",
                decoded.len()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&decoded);
        Ok(MasterKey { bytes })
    }

    /// A short, non-secret fingerprint of the key (8 hex characters), recorded in every sealed secret so a
    /// record says which key sealed it.
    pub fn id(&self) -> String {
        let digest = Sha256::new().chain_update(KEY_ID_LABEL).chain_update(self.bytes.as_slice()).finalize();
        hex::encode(&digest[..4])
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// A decrypted secret. Printing it shows `[secret]`; the text is only reachable through
/// [`SecretValue::expose`], and is wiped from memory on drop.
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// The plaintext, for handing to the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretValue {
    /// Wraps a plaintext value (as it arrives from the API before sealing, or in tests).
    fn from(text: String) -> Self {
        SecretValue(Zeroizing::new(text))
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

/// An encrypted secret as the platform stores it; every binary field is standard, padded base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Record format, currently 1.
    pub version: u32,
    /// [`MasterKey::id`] of the key that sealed the record.
    pub key_id: String,
    /// The 16-byte HKDF salt, fresh for every record.
    pub salt: String,
    /// The 12-byte AES-GCM nonce, fresh for every record.
    pub nonce: String,
    /// The encrypted value followed by the 16-byte authentication tag.
    pub ciphertext: String,
}

/// Seals and opens secrets under one master key.
pub struct Vault {
    master: Rc<MasterKey>,
    key_id: String,
    random: Rc<dyn Random>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault sealing under `master`, drawing salts and nonces from `random`.
    pub fn new(master: Rc<MasterKey>, random: Rc<dyn Random>) -> Vault {
        let key_id = master.id();
        Vault { master, key_id, random }
    }

    /// The fingerprint of this vault's master key, as written into the records it seals.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypts `value` as the secret `name` of `owner`, with a fresh salt and nonce.
    pub fn seal(&self, owner: &str, name: &str, value: &str) -> Result<SealedSecret, VaultError> {
        check_name(name)?;
        if value.is_empty() || value.len() > MAX_VALUE_LEN {
            return Err(VaultError::Value(format!(
                "a secret value must be 1 to {MAX_VALUE_LEN} bytes, got {} bytes",
                value.len()
            )));
        }
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut salt);
        self.random.fill(&mut nonce);
        let context = context(owner, name);
        let ciphertext = self
            .cipher(&salt, &context)
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: value.as_bytes(), aad: &context })
            .map_err(|_| VaultError::Value("the secret value could not be encrypted".into()))?;
        Ok(SealedSecret {
            version: VERSION,
            key_id: self.key_id.clone(),
            salt: STANDARD.encode(salt),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(ciphertext),
        })
    }

    /// Decrypts the record of the secret `name` of `owner`, failing unless this vault's key sealed it for
    /// exactly that owner and name and it is unaltered.
    pub fn open(&self, owner: &str, name: &str, sealed: &SealedSecret) -> Result<SecretValue, VaultError> {
        check_name(name)?;
        if sealed.version != VERSION {
            return Err(VaultError::Corrupt(format!(
                "unsupported record version {} (this build reads version {VERSION})",
                sealed.version
            )));
        }
        if sealed.key_id != self.key_id {
            return Err(VaultError::WrongKey { sealed_with: sealed.key_id.clone(), vault: self.key_id.clone() });
        }
        let salt = decode_field("salt", &sealed.salt, SALT_LEN..=SALT_LEN)?;
        let nonce = decode_field("nonce", &sealed.nonce, NONCE_LEN..=NONCE_LEN)?;
        let ciphertext = decode_field("ciphertext", &sealed.ciphertext, TAG_LEN + 1..=TAG_LEN + MAX_VALUE_LEN)?;
        let context = context(owner, name);
        let plaintext = self
            .cipher(&salt, &context)
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: &context })
            .map_err(|_| {
                VaultError::Corrupt(
                    "authentication failed: the record was altered or belongs to another owner or name".into(),
                )
            })?;
        let text = String::from_utf8(plaintext).map_err(|err| {
            err.into_bytes().zeroize();
            VaultError::Corrupt("the decrypted value is not UTF-8".into())
        })?;
        Ok(SecretValue(Zeroizing::new(text)))
    }

    /// Re-seals a record from `old`'s master key under `new`'s, for key rotation. The result no longer opens
    /// with `old`.
    pub fn rotate(
        old: &Vault,
        new: &Vault,
        owner: &str,
        name: &str,
        sealed: &SealedSecret,
    ) -> Result<SealedSecret, VaultError> {
        let value = old.open(owner, name, sealed)?;
        new.seal(owner, name, value.expose())
    }

    /// The AES-256-GCM cipher for one record: HKDF-SHA256 over the master key, the record's salt and context.
    fn cipher(&self, salt: &[u8], context: &[u8]) -> Aes256Gcm {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(Some(salt), self.master.bytes.as_slice())
            .expand(context, key.as_mut_slice())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_slice()))
    }
}

/// `CONTEXT || owner || 0x00 || name`: the HKDF info and the AEAD associated data. Names never contain NUL, so
/// the last NUL splits owner from name and no two (owner, name) pairs share a context.
fn context(owner: &str, name: &str) -> Vec<u8> {
    [CONTEXT, owner.as_bytes(), &[0], name.as_bytes()].concat()
}

fn check_name(name: &str) -> Result<(), VaultError> {
    let valid = (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(VaultError::Name(format!("a secret name must be 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 _ . -")))
    }
}

/// Decodes one base64 field of a record, checking its length before it reaches the cipher.
fn decode_field(field: &str, encoded: &str, allowed: std::ops::RangeInclusive<usize>) -> Result<Vec<u8>, VaultError> {
    let bytes = STANDARD.decode(encoded).map_err(|_| VaultError::Corrupt(format!("{field} is not valid base64")))?;
    if !allowed.contains(&bytes.len()) {
        return Err(VaultError::Corrupt(format!(
            "{field} must be {} to {} bytes, got {}",
            allowed.start(),
            allowed.end(),
            bytes.len()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_text(byte: u8) -> String {
        STANDARD.encode([byte; KEY_LEN])
    }

    fn vault(byte: u8) -> Vault {
        Vault::new(
            Rc::new(MasterKey::from_base64(&key_text(byte)).unwrap()),
            Rc::new(crate::ports::testing::SequenceRandom::default()),
        )
    }

    fn field_of<'a>(sealed: &'a mut SealedSecret, field: &str) -> &'a mut String {
        match field {
            "salt" => &mut sealed.salt,
            "nonce" => &mut sealed.nonce,
            "ciphertext" => &mut sealed.ciphertext,
            other => panic!("a sealed secret has no binary field {other}"),
        }
    }

    fn flip(encoded: &str, index: usize) -> String {
        let mut bytes = STANDARD.decode(encoded).unwrap();
        bytes[index] ^= 0x01;
        STANDARD.encode(bytes)
    }

    #[test]
    fn a_sealed_secret_opens_to_its_value() {
        let vault = vault(7);
        let sealed = vault.seal("alice", "GITHUB_TOKEN", "ghp_s3cr3t").unwrap();
        assert_eq!(sealed.key_id, vault.key_id());
        assert_eq!(vault.open("alice", "GITHUB_TOKEN", &sealed).unwrap().expose(), "ghp_s3cr3t");
    }

    #[test]
    fn sealing_one_value_twice_gives_unrelated_records() {
        let vault = vault(7);
        let first = vault.seal("alice", "token", "same value").unwrap();
        let second = vault.seal("alice", "token", "same value").unwrap();
        assert_ne!(first.salt, second.salt);
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
    }

    #[test]
    fn a_record_moved_to_another_owner_or_name_does_not_open() {
        let vault = vault(7);
        let sealed = vault.seal("alice", "token", "hunter2").unwrap();
        for (owner, name) in [("bob", "token"), ("alice", "token2"), ("alic", "token"), ("alice\0token", "x")] {
            let err = vault.open(owner, name, &sealed).unwrap_err();
            assert!(matches!(err, VaultError::Corrupt(_)), "{owner}/{name}: {err:?}");
            assert!(!err.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn flipping_any_byte_of_a_record_fails_to_open() {
        let vault = vault(7);
        let sealed = vault.seal("alice", "token", "hunter2").unwrap();
        for field in ["salt", "nonce", "ciphertext"] {
            let len = STANDARD.decode(field_of(&mut sealed.clone(), field)).unwrap().len();
            for index in 0..len {
                let mut tampered = sealed.clone();
                let value = field_of(&mut tampered, field);
                *value = flip(value, index);
                let err = vault.open("alice", "token", &tampered).unwrap_err();
                assert!(matches!(err, VaultError::Corrupt(_)), "byte {index}: {err:?}");
                assert!(!err.to_string().contains("hunter2"));
            }
        }
    }

    #[test]
    fn malformed_record_fields_are_corrupt_not_a_panic() {
        let vault = vault(7);
        let sealed = vault.seal("alice", "token", "hunter2").unwrap();
        let cases: [fn(&mut SealedSecret); 5] = [
            |s| s.version = 2,
            |s| s.salt = "not base64!".into(),
            |s| s.nonce = STANDARD.encode([0u8; 8]),
            |s| s.ciphertext = STANDARD.encode([0u8; TAG_LEN]),
            |s| s.ciphertext.clear(),
        ];
        for case in cases {
            let mut broken = sealed.clone();
            case(&mut broken);
            assert!(matches!(vault.open("alice", "token", &broken), Err(VaultError::Corrupt(_))), "{broken:?}");
        }
    }

    #[test]
    fn a_record_sealed_under_another_master_key_is_wrong_key() {
        let (sealer, other) = (vault(7), vault(8));
        let sealed = sealer.seal("alice", "token", "hunter2").unwrap();
        let err = other.open("alice", "token", &sealed).unwrap_err();
        assert_eq!(err, VaultError::WrongKey { sealed_with: sealer.key_id().into(), vault: other.key_id().into() });
        assert!(err.to_string().contains(sealer.key_id()));
    }

    #[test]
    fn a_record_relabelled_with_another_key_id_still_does_not_open() {
        let (sealer, other) = (vault(7), vault(8));
        let mut sealed = sealer.seal("alice", "token", "hunter2").unwrap();
        sealed.key_id = other.key_id().into();
        assert!(matches!(other.open("alice", "token", &sealed), Err(VaultError::Corrupt(_))));
    }

    #[test]
    fn rotation_moves_a_record_to_the_new_key() {
        let (old, new) = (vault(7), vault(8));
        let sealed = old.seal("alice", "token", "hunter2").unwrap();
        let rotated = Vault::rotate(&old, &new, "alice", "token", &sealed).unwrap();
        assert_eq!(rotated.key_id, new.key_id());
        assert_eq!(new.open("alice", "token", &rotated).unwrap().expose(), "hunter2");
        assert!(matches!(old.open("alice", "token", &rotated), Err(VaultError::WrongKey { .. })));
        assert!(matches!(Vault::rotate(&old, &new, "bob", "token", &sealed), Err(VaultError::Corrupt(_))));
    }

    #[test]
    fn malformed_master_keys_are_rejected_without_echoing_them() {
        let short = STANDARD.encode([9u8; 31]);
        let long = STANDARD.encode([9u8; 33]);
        for (input, expected) in [
            ("sk-this is not base64!", "not valid base64"),
            (short.as_str(), "got 31 bytes"),
            (long.as_str(), "got 33 bytes"),
            ("", "got 0 bytes"),
        ] {
            let err = MasterKey::from_base64(input).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, VaultError::MasterKey(_)));
            assert!(message.contains("must be 32 bytes of base64") && message.contains(expected), "{message}");
            assert!(input.is_empty() || !message.contains(input), "{message}");
            assert!(!message.contains("sk-") && !message.contains("CQkJ"), "{message}");
        }
    }

    #[test]
    fn master_keys_parse_with_or_without_padding() {
        let padded = key_text(7);
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=');
        let ids: Vec<String> = [padded.as_str(), unpadded, &format!(" {padded}\n")]
            .iter()
            .map(|text| MasterKey::from_base64(text).unwrap().id())
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]));
    }

    #[test]
    fn the_key_id_is_a_short_stable_fingerprint() {
        let id = MasterKey::from_base64(&key_text(7)).unwrap().id();
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, vault(7).key_id());
        assert_ne!(id, vault(8).key_id());
    }

    #[test]
    fn printing_keys_and_values_hides_their_contents() {
        let master = MasterKey::from_base64(&key_text(7)).unwrap();
        assert_eq!(format!("{master:?}"), "MasterKey(..)");
        let vault = vault(7);
        assert!(!format!("{vault:?}").contains(&key_text(7)));
        let value = vault.open("alice", "token", &vault.seal("alice", "token", "hunter2").unwrap()).unwrap();
        assert_eq!(format!("{value:?}"), "[secret]");
        assert_eq!(format!("{value}"), "[secret]");
    }

    #[test]
    fn secret_names_are_limited_to_a_safe_alphabet() {
        let vault = vault(7);
        for name in ["OPENAI_API_KEY", "db.password-2", &"n".repeat(MAX_NAME_LEN)] {
            let sealed = vault.seal("alice", name, "v").unwrap();
            assert_eq!(vault.open("alice", name, &sealed).unwrap().expose(), "v");
        }
        let sealed = vault.seal("alice", "token", "v").unwrap();
        for name in ["", "a/b", "a b", "clé", "a\0b", &"n".repeat(MAX_NAME_LEN + 1)] {
            assert!(matches!(vault.seal("alice", name, "v"), Err(VaultError::Name(_))), "{name:?}");
            assert!(matches!(vault.open("alice", name, &sealed), Err(VaultError::Name(_))), "{name:?}");
        }
    }

    #[test]
    fn secret_values_are_limited_to_16_kib() {
        let vault = vault(7);
        let largest = "x".repeat(MAX_VALUE_LEN);
        let sealed = vault.seal("alice", "token", &largest).unwrap();
        assert_eq!(vault.open("alice", "token", &sealed).unwrap().expose(), largest);
        for value in [String::new(), "y".repeat(MAX_VALUE_LEN + 1)] {
            let err = vault.seal("alice", "token", &value).unwrap_err();
            assert!(matches!(err, VaultError::Value(_)), "{err:?}");
            assert!(!err.to_string().contains("yyyy"));
        }
    }

    #[test]
    fn a_sealed_secret_is_flat_json_of_base64_strings() {
        let vault = vault(7);
        let sealed = vault.seal("alice", "token", "hunter2").unwrap();
        let json = serde_json::to_value(&sealed).unwrap();
        let mut fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["ciphertext", "key_id", "nonce", "salt", "version"]);
        assert_eq!(json["version"], 1);
        assert_eq!(json["key_id"], vault.key_id());
        for (field, len) in [("salt", SALT_LEN), ("nonce", NONCE_LEN), ("ciphertext", "hunter2".len() + TAG_LEN)] {
            assert_eq!(STANDARD.decode(json[field].as_str().unwrap()).unwrap().len(), len, "{field}");
        }
        assert!(!json.to_string().contains("hunter2"));
        let parsed: SealedSecret = serde_json::from_value(json).unwrap();
        assert_eq!(vault.open("alice", "token", &parsed).unwrap().expose(), "hunter2");
    }

    #[test]
    fn records_follow_the_documented_construction() {
        let vault = vault(7);
        let sealed = vault.seal("alice", "token", "hunter2").unwrap();
        let mut key = [0u8; KEY_LEN];
        Hkdf::<Sha256>::new(Some(&STANDARD.decode(&sealed.salt).unwrap()), &[7u8; KEY_LEN])
            .expand(b"edgeclaw-secret-v1alice\0token", &mut key)
            .unwrap();
        let payload =
            Payload { msg: &STANDARD.decode(&sealed.ciphertext).unwrap(), aad: b"edgeclaw-secret-v1alice\0token" };
        let plaintext = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key))
            .decrypt(Nonce::from_slice(&STANDARD.decode(&sealed.nonce).unwrap()), payload)
            .unwrap();
        assert_eq!(plaintext, b"hunter2");
    }

    #[test]
    fn a_record_sealed_by_an_earlier_build_still_opens() {
        let stored = concat!(
            r#"{"version":1,"key_id":"cb9ac6e6","salt":"AQAAAAAAAAACAAAAAAAAAA==","nonce":"AwAAAAAAAAAEAAAA","#,
            r#""ciphertext":"p42VdhbIm84QJ6Yn9P5IZkcY0xjXUu8="}"#
        );
        let sealed: SealedSecret = serde_json::from_str(stored).unwrap();
        assert_eq!(vault(7).open("alice", "token", &sealed).unwrap().expose(), "hunter2");
    }
}
