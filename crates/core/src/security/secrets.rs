//! An owner's secrets: stored sealed by the [`Vault`], listed by name and metadata only, each with
//! the hosts it may be sent to and how it is put into a request (for the egress gate).

use std::rc::Rc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{HostPattern, SealedSecret, SecretValue, Vault, VaultError};
use crate::ports::Clock;

/// Hosts one secret may list.
const MAX_HOSTS: usize = 20;
/// Secrets one owner may keep.
pub const MAX_SECRETS_PER_OWNER: usize = 100;

/// How a secret is put into an outbound request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Injection {
    /// `Authorization: Bearer <value>`.
    #[default]
    Bearer,
    /// A header of its own, e.g. `X-Api-Key: <value>`.
    Header {
        /// The header name.
        name: String,
    },
    /// `Authorization: Basic base64(<username>:<value>)`.
    Basic {
        /// The user name.
        username: String,
    },
    /// A query parameter, e.g. `?key=<value>`.
    Query {
        /// The parameter name.
        param: String,
    },
}

/// What is known about a secret besides its value: the only view of it the API gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMeta {
    /// Its name.
    pub name: String,
    /// Hosts it may be sent to: exact names or `*.` and a domain.
    pub hosts: Vec<HostPattern>,
    /// How it is put into a request.
    pub inject: Injection,
    /// First stored (unix ms).
    pub created_at: i64,
    /// Last changed (unix ms).
    pub updated_at: i64,
}

/// A stored secret: its metadata and its sealed value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// What the API shows.
    pub meta: SecretMeta,
    /// The value, encrypted.
    pub sealed: SealedSecret,
}

/// A request to store a secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// The value (never stored or shown in the clear).
    pub value: String,
    /// Hosts it may be sent to.
    pub hosts: Vec<String>,
    /// How it is put into a request.
    #[serde(default)]
    pub inject: Injection,
}

/// Where one owner's secret records are kept.
#[async_trait(?Send)]
pub trait SecretStore {
    /// One record.
    async fn get(&self, name: &str) -> Result<Option<SecretRecord>, String>;
    /// Every record, by name.
    async fn list(&self) -> Result<Vec<SecretRecord>, String>;
    /// Inserts or replaces a record.
    async fn put(&self, record: &SecretRecord) -> Result<(), String>;
    /// Deletes a record; false if there was none.
    async fn delete(&self, name: &str) -> Result<bool, String>;
}

/// Where the egress gate and the leak scanner get an owner's secret values. Values never go anywhere
/// else: not to the model, the transcript, the audit log or an error message.
#[async_trait(?Send)]
pub trait Credentials {
    /// One secret's metadata and value.
    async fn reveal(&self, name: &str) -> Result<(SecretMeta, SecretValue), SecretError>;
    /// Every secret's name and value, for exact-match leak scanning.
    async fn values(&self) -> Result<Vec<(String, SecretValue)>, SecretError>;
}

/// Why a secrets operation failed. Messages never contain a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// No secret of that name.
    #[error("no secret `{0}`")]
    NotFound(String),
    /// The owner has as many secrets as allowed.
    #[error("an owner may keep at most {MAX_SECRETS_PER_OWNER} secrets")]
    TooMany,
    /// Sealing or opening failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error("secret storage failed: {0}")]
    Store(String),
}

/// What a master-key rotation did to one owner's secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    /// Records re-sealed under the current key.
    pub rotated: usize,
    /// Records already sealed under it.
    pub current: usize,
    /// Records sealed under a key that is neither the current nor the previous one (left as they are).
    pub unreadable: Vec<String>,
}

/// One owner's secrets.
pub struct Secrets {
    vault: Rc<Vault>,
    previous: Option<Rc<Vault>>,
    store: Rc<dyn SecretStore>,
    owner: String,
    clock: Rc<dyn Clock>,
}

impl Secrets {
    /// The secrets of `owner` in `store`, sealed by `vault`.
    pub fn new(vault: Rc<Vault>, store: Rc<dyn SecretStore>, owner: &str, clock: Rc<dyn Clock>) -> Self {
        Self { vault, previous: None, store, owner: owner.to_string(), clock }
    }

    /// Also reads records sealed under the previous master key (during a rotation).
    pub fn with_previous(mut self, previous: Option<Rc<Vault>>) -> Self {
        self.previous = previous;
        self
    }

    /// Re-seals every record still under the previous master key with the current one.
    pub async fn rotate(&self) -> Result<RotationReport, SecretError> {
        let mut report = RotationReport::default();
        for mut record in self.store.list().await.map_err(SecretError::Store)? {
            let name = record.meta.name.clone();
            if record.sealed.key_id == self.vault.key_id() {
                report.current += 1;
                continue;
            }
            match self.previous.as_deref().filter(|p| p.key_id() == record.sealed.key_id) {
                Some(previous) => {
                    record.sealed = Vault::rotate(previous, &self.vault, &self.owner, &name, &record.sealed)?;
                    self.store.put(&record).await.map_err(SecretError::Store)?;
                    report.rotated += 1;
                }
                None => report.unreadable.push(name),
            }
        }
        Ok(report)
    }

    /// Stores (or replaces) a secret and returns its metadata.
    pub async fn set(&self, name: &str, new: NewSecret) -> Result<SecretMeta, SecretError> {
        let hosts = parse_hosts(&new.hosts)?;
        validate_injection(&new.inject)?;
        let existing = self.store.get(name).await.map_err(SecretError::Store)?;
        if existing.is_none() && self.store.list().await.map_err(SecretError::Store)?.len() >= MAX_SECRETS_PER_OWNER {
            return Err(SecretError::TooMany);
        }
        let sealed = self.vault.seal(&self.owner, name, &new.value)?;
        let now = self.clock.now_ms() as i64;
        let meta = SecretMeta {
            name: name.to_string(),
            hosts,
            inject: new.inject,
            created_at: existing.map_or(now, |e| e.meta.created_at),
            updated_at: now,
        };
        self.store.put(&SecretRecord { meta: meta.clone(), sealed }).await.map_err(SecretError::Store)?;
        Ok(meta)
    }

    /// Every secret's metadata, by name.
    pub async fn list(&self) -> Result<Vec<SecretMeta>, SecretError> {
        Ok(self.store.list().await.map_err(SecretError::Store)?.into_iter().map(|r| r.meta).collect())
    }

    /// Deletes a secret.
    pub async fn delete(&self, name: &str) -> Result<(), SecretError> {
        match self.store.delete(name).await.map_err(SecretError::Store)? {
            true => Ok(()),
            false => Err(SecretError::NotFound(name.to_string())),
        }
    }

    /// Opens a record with the key that sealed it (the current one, or the previous during a rotation).
    fn open(&self, record: &SecretRecord) -> Result<SecretValue, SecretError> {
        let vault = match &self.previous {
            Some(previous) if previous.key_id() == record.sealed.key_id => previous,
            _ => &self.vault,
        };
        Ok(vault.open(&self.owner, &record.meta.name, &record.sealed)?)
    }
}

#[async_trait(?Send)]
impl Credentials for Secrets {
    async fn reveal(&self, name: &str) -> Result<(SecretMeta, SecretValue), SecretError> {
        let record = self.store.get(name).await.map_err(SecretError::Store)?;
        let record = record.ok_or_else(|| SecretError::NotFound(name.to_string()))?;
        let value = self.open(&record)?;
        Ok((record.meta, value))
    }

    /// Records that cannot be opened (sealed under an unknown key) are left out: they cannot be
    /// injected either, so there is nothing of theirs to catch.
    async fn values(&self) -> Result<Vec<(String, SecretValue)>, SecretError> {
        let records = self.store.list().await.map_err(SecretError::Store)?;
        Ok(records.iter().filter_map(|r| Some((r.meta.name.clone(), self.open(r).ok()?))).collect())
    }
}

/// Hosts are DNS names, or `*.` and a domain of at least two labels.
fn parse_hosts(hosts: &[String]) -> Result<Vec<HostPattern>, SecretError> {
    if hosts.is_empty() || hosts.len() > MAX_HOSTS {
        return Err(SecretError::Invalid(format!("hosts must list 1 to {MAX_HOSTS} hosts the secret may be sent to")));
    }
    hosts.iter().map(|host| HostPattern::parse(host, false).map_err(SecretError::Invalid)).collect()
}

fn validate_injection(inject: &Injection) -> Result<(), SecretError> {
    let token = |what: &str, value: &str| {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        ok.then_some(())
            .ok_or_else(|| SecretError::Invalid(format!("inject.{what} must be 1–64 letters, digits, `-`, `_` or `.`")))
    };
    match inject {
        Injection::Bearer => Ok(()),
        Injection::Header { name } => token("name", name),
        Injection::Basic { username } => token("username", username),
        Injection::Query { param } => token("param", param),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::testing::ManualClock;
    use crate::security::{MasterKey, VaultError};
    use futures::executor::block_on;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct MapStore(RefCell<BTreeMap<String, SecretRecord>>);

    #[async_trait(?Send)]
    impl SecretStore for MapStore {
        async fn get(&self, name: &str) -> Result<Option<SecretRecord>, String> {
            Ok(self.0.borrow().get(name).cloned())
        }
        async fn list(&self) -> Result<Vec<SecretRecord>, String> {
            Ok(self.0.borrow().values().cloned().collect())
        }
        async fn put(&self, record: &SecretRecord) -> Result<(), String> {
            self.0.borrow_mut().insert(record.meta.name.clone(), record.clone());
            Ok(())
        }
        async fn delete(&self, name: &str) -> Result<bool, String> {
            Ok(self.0.borrow_mut().remove(name).is_some())
        }
    }

    fn vault(key: &str) -> Rc<Vault> {
        let key = MasterKey::from_base64(key).unwrap();
        Rc::new(Vault::new(Rc::new(key), Rc::new(crate::ports::testing::SequenceRandom::default())))
    }

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    fn secrets_over(key: &str, store: Rc<MapStore>) -> Secrets {
        Secrets::new(vault(key), store, "alice", Rc::new(Rc::new(ManualClock::default())))
    }

    fn secrets() -> (Secrets, Rc<MapStore>) {
        let store = Rc::new(MapStore::default());
        (secrets_over(KEY_A, store.clone()), store)
    }

    #[test]
    fn a_rotation_reseals_records_under_the_new_key() {
        let (old, store) = secrets();
        block_on(old.set("A", new("value-a", &["x.example"]))).unwrap();
        block_on(old.set("B", new("value-b", &["x.example"]))).unwrap();
        let unaware = secrets_over(KEY_B, store.clone());
        assert_eq!(block_on(unaware.rotate()).unwrap().unreadable, ["A", "B"]);
        assert!(matches!(block_on(unaware.reveal("A")), Err(SecretError::Vault(VaultError::WrongKey { .. }))));

        let rotating = secrets_over(KEY_B, store.clone()).with_previous(Some(vault(KEY_A)));
        assert_eq!(block_on(rotating.reveal("A")).unwrap().1.expose(), "value-a", "readable mid-rotation");
        let report = block_on(rotating.rotate()).unwrap();
        assert_eq!((report.rotated, report.current, report.unreadable.len()), (2, 0, 0));
        assert_eq!(block_on(rotating.rotate()).unwrap().current, 2);
        let after = secrets_over(KEY_B, store);
        assert_eq!(block_on(after.reveal("B")).unwrap().1.expose(), "value-b");
    }

    fn new(value: &str, hosts: &[&str]) -> NewSecret {
        NewSecret {
            value: value.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            inject: Injection::Bearer,
        }
    }

    #[test]
    fn values_are_stored_sealed_and_listed_without_them() {
        let (s, store) = secrets();
        let meta = block_on(s.set("GITHUB_TOKEN", new("ghp-value-123456", &["API.github.com"]))).unwrap();
        assert_eq!(meta.hosts, [HostPattern::parse("api.github.com", false).unwrap()]);
        let stored = serde_json::to_string(&*store.0.borrow()).unwrap();
        assert!(!stored.contains("ghp-value-123456"), "the store holds ciphertext only");
        let listed = serde_json::to_string(&block_on(s.list()).unwrap()).unwrap();
        assert!(listed.contains("GITHUB_TOKEN") && !listed.contains("ghp-value"));
        let (_, value) = block_on(s.reveal("GITHUB_TOKEN")).unwrap();
        assert_eq!(value.expose(), "ghp-value-123456");
        block_on(s.delete("GITHUB_TOKEN")).unwrap();
        assert_eq!(block_on(s.delete("GITHUB_TOKEN")).unwrap_err(), SecretError::NotFound("GITHUB_TOKEN".into()));
    }

    #[test]
    fn hosts_names_and_injections_are_checked() {
        let (s, _) = secrets();
        for hosts in [&[][..], &["not a host"], &["*.com"], &["-bad.example"]] {
            assert!(matches!(block_on(s.set("K", new("v", hosts))), Err(SecretError::Invalid(_))), "{hosts:?}");
        }
        assert!(block_on(s.set("K", new("v", &["*.example.com"]))).is_ok());
        assert!(matches!(block_on(s.set("bad name", new("v", &["x.example"]))), Err(SecretError::Vault(_))));
        let header = NewSecret { inject: Injection::Header { name: "X Api".into() }, ..new("v", &["x.example"]) };
        assert!(matches!(block_on(s.set("K", header)), Err(SecretError::Invalid(_))));
    }
}
