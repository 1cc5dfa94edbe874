//! Long-term memory: documents, facts and notes, chunked along their Markdown structure, embedded, and
//! found again by keyword, by meaning, or both (reciprocal-rank fusion). Stores implement
//! [`MemoryStore`]; [`Memory`] holds every decision about chunking, re-indexing, embedding and ranking.

mod chunk;
mod embed;
mod keywords;
mod search;
mod service;
mod store;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::auth::Principal;

pub use chunk::{chunk_markdown, ChunkOptions, TextChunk};
pub use embed::{Embedder, EmbeddingRoute, HttpEmbedder, BATCH_SIZE};
pub use keywords::{keyword_clauses, keyword_terms};
pub use search::{SearchHit, SearchMode, SearchRequest};
pub use service::{IngestReport, Memory, MemoryOptions, NewDocument, SearchResults};
pub use store::{ChunkRecord, DocumentRecord, DocumentSummary, Filter, MemoryStore, ScoredChunk};

/// Why a memory operation failed. Serialisable, so a store behind a process boundary (a Durable Object)
/// can report errors faithfully.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum MemoryError {
    /// Input the caller must fix.
    #[error("{0}")]
    Invalid(String),
    /// The input is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The namespace has never held a document.
    #[error("memory namespace `{0}` does not exist")]
    NamespaceNotFound(String),
    /// No document with that id.
    #[error("no document `{0}` in this namespace")]
    DocumentNotFound(String),
    /// The embedding model and the store disagree on vector size.
    #[error("embedding dimension mismatch: {0}")]
    DimensionMismatch(String),
    /// The embedding provider failed.
    #[error("embedding failed: {0}")]
    Embedding(String),
    /// Vector search was asked for but no embedding model is configured.
    #[error("no embedding model is configured: set EDGECLAW_EMBEDDING_MODEL (e.g. openai:text-embedding-3-small)")]
    NoEmbedder,
    /// The store could not be reached or failed.
    #[error("memory store unavailable: {0}")]
    Unavailable(String),
}

/// Kinds of memory entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// An ingested document.
    Document,
    /// A fact the agent was told to remember.
    Fact,
    /// A named workspace note such as `MEMORY.md`.
    Note,
}

impl DocumentKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Document => "document",
            DocumentKind::Fact => "fact",
            DocumentKind::Note => "note",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<DocumentKind> {
        [DocumentKind::Document, DocumentKind::Fact, DocumentKind::Note].into_iter().find(|k| k.as_str() == text)
    }
}

/// A namespace of one principal. Stores key everything by [`Namespace::key`], which embeds the
/// principal, so one principal can never reach another's memory. Serialised as its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Namespace {
    principal: Principal,
    name: String,
}

impl Namespace {
    /// The default namespace name.
    pub const DEFAULT: &'static str = "default";

    /// `principal`'s namespace `name` (1–64 of `a-z 0-9 _ . -`).
    pub fn new(principal: &Principal, name: &str) -> Result<Namespace, MemoryError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(MemoryError::Invalid(format!(
                "namespace `{name}` must be 1-64 characters of a-z, 0-9, '_', '.' or '-'"
            )));
        }
        Ok(Namespace { principal: principal.clone(), name: name.to_string() })
    }

    /// The storage key, `<principal>/<name>`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.principal, self.name)
    }

    /// The name as the principal knows it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl TryFrom<String> for Namespace {
    type Error = MemoryError;

    /// Parses a key made by [`Namespace::key`].
    fn try_from(key: String) -> Result<Self, MemoryError> {
        let (principal, name) =
            key.split_once('/').ok_or_else(|| MemoryError::Invalid(format!("`{key}` is not a namespace key")))?;
        let principal = Principal::parse(principal).map_err(MemoryError::Invalid)?;
        Namespace::new(&principal, name)
    }
}

impl From<Namespace> for String {
    fn from(namespace: Namespace) -> String {
        namespace.key()
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Validates a document id: 1–200 of `A-Z a-z 0-9 _ . - :`.
pub fn validate_document_id(id: &str) -> Result<(), MemoryError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':'));
    if ok {
        Ok(())
    } else {
        Err(MemoryError::Invalid(format!(
            "document id `{id}` must be 1-200 characters of A-Z, a-z, 0-9, '_', '.', '-' or ':'"
        )))
    }
}

/// Metadata of a document: string keys and values, used for filtering.
pub type Metadata = BTreeMap<String, String>;

/// Metadata as the JSON object stores keep it.
pub fn metadata_json(metadata: &Metadata) -> String {
    // a map of strings to strings always serialises; the fallback is never taken
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".into())
}

/// Scales `vector` to unit length (a zero vector stays zero), so cosine similarity is a dot product.
pub fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Hex SHA-256 of `parts`, each length-prefixed so that different splits never collide.
pub fn content_hash(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_keyed_by_principal() {
        let alice = Principal::parse("alice").unwrap();
        let bob = Principal::parse("bob").unwrap();
        assert_eq!(Namespace::new(&alice, "notes").unwrap().key(), "alice/notes");
        assert_ne!(Namespace::new(&alice, "x").unwrap().key(), Namespace::new(&bob, "x").unwrap().key());
        let ns = Namespace::new(&bob, "work").unwrap();
        assert_eq!(Namespace::try_from(ns.key()).unwrap(), ns);
        assert!(Namespace::try_from("no-slash".to_string()).is_err());
        for bad in ["", "UPPER", "a/b", "with space", &"n".repeat(65)] {
            assert!(Namespace::new(&alice, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_hashes_separate_their_parts() {
        assert_ne!(content_hash(&["ab", "c"]), content_hash(&["a", "bc"]));
        assert_eq!(content_hash(&["x"]).len(), 64);
    }

    #[test]
    fn document_ids_are_validated() {
        assert!(validate_document_id("MEMORY.md").is_ok());
        assert!(validate_document_id("fact:1a2b").is_ok());
        assert!(validate_document_id("a b").is_err());
        assert!(validate_document_id("").is_err());
    }
}
