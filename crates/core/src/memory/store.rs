//! The memory store port: documents with their chunks and embeddings, keyword search and vector search.
//! Ranking across the two is decided in core ([`super::search`]); stores only answer each kind of query.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{DocumentKind, MemoryError, Metadata, Namespace};

/// A stored document (or fact, or note).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRecord {
    /// Id, unique in its namespace.
    pub id: String,
    /// What kind of entry it is.
    pub kind: DocumentKind,
    /// Title.
    pub title: String,
    /// Where it came from (a URL, a file name), if known.
    pub source: Option<String>,
    /// Filterable metadata.
    pub metadata: Metadata,
    /// Hash of title, text and metadata: an unchanged document is not re-indexed.
    pub content_hash: String,
    /// The whole text.
    pub text: String,
    /// First stored, ms since the epoch.
    pub created_at: u64,
    /// Last changed, ms since the epoch.
    pub updated_at: u64,
}

/// One chunk as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// Position in the document, from 0.
    pub index: u32,
    /// Heading path.
    pub heading: String,
    /// Text.
    pub text: String,
    /// Hash of heading and text: unchanged chunks keep their embedding when a document changes.
    pub content_hash: String,
    /// Embedding (empty when no embedding model is configured).
    pub embedding: Vec<f32>,
}

/// A document as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentSummary {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: DocumentKind,
    /// Title.
    pub title: String,
    /// Source.
    pub source: Option<String>,
    /// Metadata.
    pub metadata: Metadata,
    /// Number of chunks.
    pub chunks: u32,
    /// Last changed, ms since the epoch.
    pub updated_at: u64,
}

/// Restricts a search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Only these kinds (empty: all).
    #[serde(default)]
    pub kinds: Vec<DocumentKind>,
    /// Only documents whose metadata has all these key/value pairs.
    #[serde(default)]
    pub metadata: Metadata,
}

/// A chunk found by one kind of search, with that search's score (higher is better).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredChunk {
    /// Document id.
    pub document_id: String,
    /// Chunk index.
    pub chunk_index: u32,
    /// Document kind.
    pub kind: DocumentKind,
    /// Document title.
    pub title: String,
    /// Heading path of the chunk.
    pub heading: String,
    /// Chunk text.
    pub text: String,
    /// Document source.
    pub source: Option<String>,
    /// Document metadata.
    pub metadata: Metadata,
    /// Document's last change, ms since the epoch.
    pub updated_at: u64,
    /// Keyword rank score or cosine similarity.
    pub score: f32,
}

/// Durable memory for namespaces (Durable Object SQLite, Postgres + pgvector, …). Every implementation
/// must behave the same: the shared suite in `tests/` runs against each.
#[async_trait(?Send)]
pub trait MemoryStore {
    /// The content hash of a document, if it exists.
    async fn document_hash(&self, ns: &Namespace, id: &str) -> Result<Option<String>, MemoryError>;
    /// Embeddings of a document's current chunks by chunk content hash (for reuse on re-indexing).
    async fn chunk_embeddings(&self, ns: &Namespace, id: &str) -> Result<Vec<(String, Vec<f32>)>, MemoryError>;
    /// Creates or replaces a document and all its chunks, atomically.
    async fn put_document(
        &self,
        ns: &Namespace,
        doc: &DocumentRecord,
        chunks: &[ChunkRecord],
    ) -> Result<(), MemoryError>;
    /// A document, if it exists.
    async fn get_document(&self, ns: &Namespace, id: &str) -> Result<Option<DocumentRecord>, MemoryError>;
    /// Documents, most recently changed first. Fails with `NamespaceNotFound` for a namespace that never
    /// held a document.
    async fn list_documents(
        &self,
        ns: &Namespace,
        kind: Option<DocumentKind>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<DocumentSummary>, MemoryError>;
    /// Deletes a document and its chunks; whether it existed.
    async fn delete_document(&self, ns: &Namespace, id: &str) -> Result<bool, MemoryError>;
    /// Whether the namespace ever held a document.
    async fn namespace_exists(&self, ns: &Namespace) -> Result<bool, MemoryError>;
    /// Chunks matching the words of `query`, best first (full-text rank).
    async fn keyword_search(
        &self,
        ns: &Namespace,
        query: &str,
        limit: u32,
        filter: &Filter,
    ) -> Result<Vec<ScoredChunk>, MemoryError>;
    /// Chunks nearest to `embedding` by cosine similarity, best first.
    async fn vector_search(
        &self,
        ns: &Namespace,
        embedding: &[f32],
        limit: u32,
        filter: &Filter,
    ) -> Result<Vec<ScoredChunk>, MemoryError>;
}
