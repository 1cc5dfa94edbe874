//! [`Memory`]: ingesting (chunk, skip what is unchanged, embed what is new), searching, facts, notes
//! and automatic recall, over any [`MemoryStore`] and optional [`Embedder`].

use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;

use super::chunk::{chunk_markdown, ChunkOptions};
use super::search::{fuse, SearchHit, SearchMode, SearchRequest};
use super::store::{ChunkRecord, DocumentRecord, DocumentSummary, MemoryStore};
use super::{
    content_hash, metadata_json, normalize, validate_document_id, DocumentKind, Embedder, MemoryError, Metadata,
    Namespace,
};
use crate::ports::Clock;

/// Limits and behaviour of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryOptions {
    /// How documents are cut.
    pub chunking: ChunkOptions,
    /// Largest document text, in bytes.
    pub max_document_bytes: usize,
    /// Memories recalled into each turn's context (0: recall off).
    pub recall_k: u32,
    /// Token budget of recalled memories.
    pub recall_tokens: usize,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self { chunking: ChunkOptions::default(), max_document_bytes: 512 * 1024, recall_k: 3, recall_tokens: 800 }
    }
}

/// A document to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDocument {
    /// Id (unique in the namespace).
    pub id: String,
    /// Kind.
    pub kind: DocumentKind,
    /// Title (may be empty).
    pub title: String,
    /// Markdown text.
    pub text: String,
    /// Where it came from.
    pub source: Option<String>,
    /// Filterable metadata.
    pub metadata: Metadata,
}

/// What ingesting did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// The document's id.
    pub document_id: String,
    /// Chunks the document has.
    pub chunks: u32,
    /// Chunks embedded now (unchanged chunks keep their vectors).
    pub embedded: u32,
    /// Whether the document was identical to the stored one, so nothing was done.
    pub unchanged: bool,
}

/// Results of a search and the mode that produced them (hybrid falls back to keyword when no
/// embedding model is configured).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResults {
    /// The mode used.
    pub mode: SearchMode,
    /// Hits, best first.
    pub results: Vec<SearchHit>,
}

/// Long-term memory over a store and, optionally, an embedding model.
pub struct Memory {
    store: Rc<dyn MemoryStore>,
    embedder: Option<Rc<dyn Embedder>>,
    options: MemoryOptions,
    clock: Rc<dyn Clock>,
}

fn check_metadata(metadata: &Metadata) -> Result<(), MemoryError> {
    if metadata.len() > 32 {
        return Err(MemoryError::Invalid("at most 32 metadata entries are allowed".into()));
    }
    for (key, value) in metadata {
        let key_ok = !key.is_empty()
            && key.len() <= 64
            && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !key_ok {
            return Err(MemoryError::Invalid(format!(
                "metadata key `{key}` must be 1-64 characters of A-Z, a-z, 0-9, '_', '-' or '.'"
            )));
        }
        if value.len() > 512 {
            return Err(MemoryError::Invalid(format!("metadata value of `{key}` is longer than 512 bytes")));
        }
    }
    Ok(())
}

impl Memory {
    /// Memory over `store`; without an embedder only keyword search works.
    pub fn new(
        store: Rc<dyn MemoryStore>,
        embedder: Option<Rc<dyn Embedder>>,
        options: MemoryOptions,
        clock: Rc<dyn Clock>,
    ) -> Self {
        Self { store, embedder, options, clock }
    }

    /// Stores a document, re-indexing only what changed: an identical document is skipped, and chunks
    /// whose text is unchanged keep their embeddings.
    pub async fn ingest(&self, ns: &Namespace, doc: NewDocument) -> Result<IngestReport, MemoryError> {
        validate_document_id(&doc.id)?;
        check_metadata(&doc.metadata)?;
        if doc.text.trim().is_empty() {
            return Err(MemoryError::Invalid("the document text is empty".into()));
        }
        if doc.text.len() > self.options.max_document_bytes {
            return Err(MemoryError::TooLarge(format!(
                "the document has {} bytes; the limit is {}",
                doc.text.len(),
                self.options.max_document_bytes
            )));
        }
        if doc.title.len() > 500 {
            return Err(MemoryError::Invalid("the title is longer than 500 bytes".into()));
        }
        let metadata_text = metadata_json(&doc.metadata);
        let hash = content_hash(&[
            doc.kind.as_str(),
            &doc.title,
            &doc.text,
            doc.source.as_deref().unwrap_or(""),
            &metadata_text,
        ]);
        if self.store.document_hash(ns, &doc.id).await?.as_deref() == Some(hash.as_str()) {
            let chunks = self.store.chunk_embeddings(ns, &doc.id).await?.len() as u32;
            return Ok(IngestReport { document_id: doc.id, chunks, embedded: 0, unchanged: true });
        }

        let pieces = chunk_markdown(&doc.text, self.options.chunking);
        let known: HashMap<String, Vec<f32>> = self.store.chunk_embeddings(ns, &doc.id).await?.into_iter().collect();
        let mut chunks: Vec<ChunkRecord> = pieces
            .into_iter()
            .enumerate()
            .map(|(i, piece)| ChunkRecord {
                index: i as u32,
                content_hash: content_hash(&[&doc.title, &piece.heading, &piece.text]),
                heading: piece.heading,
                text: piece.text,
                embedding: Vec::new(),
            })
            .collect();
        let mut embedded = 0;
        if let Some(embedder) = &self.embedder {
            let mut missing = Vec::new();
            for chunk in &mut chunks {
                match known.get(&chunk.content_hash).filter(|v| v.len() == embedder.dimensions()) {
                    Some(vector) => chunk.embedding = vector.clone(),
                    None => missing.push(chunk.index as usize),
                }
            }
            let texts: Vec<String> = missing
                .iter()
                .map(|&i| {
                    let c = &chunks[i];
                    [doc.title.as_str(), c.heading.as_str(), c.text.as_str()]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect();
            if !texts.is_empty() {
                let vectors = embedder.embed(&texts).await?;
                embedded = vectors.len() as u32;
                for (i, mut vector) in missing.into_iter().zip(vectors) {
                    normalize(&mut vector);
                    chunks[i].embedding = vector;
                }
            }
        }

        let now = self.clock.now_ms();
        let record = DocumentRecord {
            id: doc.id,
            kind: doc.kind,
            title: doc.title,
            source: doc.source,
            metadata: doc.metadata,
            content_hash: hash,
            text: doc.text,
            created_at: now,
            updated_at: now,
        };
        self.store.put_document(ns, &record, &chunks).await?;
        Ok(IngestReport { document_id: record.id, chunks: chunks.len() as u32, embedded, unchanged: false })
    }

    /// Searches a namespace. Keyword and vector searches run concurrently; whether the namespace exists
    /// is only asked when both come back empty, to keep the common path to one round trip.
    pub async fn search(&self, ns: &Namespace, request: &SearchRequest) -> Result<SearchResults, MemoryError> {
        request.validate()?;
        check_metadata(&request.filter.metadata)?;
        let mode = match (request.mode, &self.embedder) {
            (SearchMode::Vector, None) => return Err(MemoryError::NoEmbedder),
            (SearchMode::Hybrid, None) => SearchMode::Keyword,
            (mode, _) => mode,
        };
        let candidates = request.candidates();
        let keyword = async {
            match mode {
                SearchMode::Vector => Ok(Vec::new()),
                _ => self.store.keyword_search(ns, &request.query, candidates, &request.filter).await,
            }
        };
        let vector = async {
            match (&self.embedder, mode) {
                (Some(embedder), SearchMode::Vector | SearchMode::Hybrid) => {
                    let vectors = embedder.embed(std::slice::from_ref(&request.query)).await?;
                    let mut query = vectors
                        .into_iter()
                        .next()
                        .ok_or_else(|| MemoryError::Embedding("no vector returned".into()))?;
                    normalize(&mut query);
                    self.store.vector_search(ns, &query, candidates, &request.filter).await
                }
                _ => Ok(Vec::new()),
            }
        };
        let (keyword, vector) = futures::future::try_join(keyword, vector).await?;
        if keyword.is_empty() && vector.is_empty() && !self.store.namespace_exists(ns).await? {
            return Err(MemoryError::NamespaceNotFound(ns.name().to_string()));
        }
        let effective = SearchRequest { mode, ..request.clone() };
        Ok(SearchResults { mode, results: fuse(&effective, keyword, vector, self.clock.now_ms()) })
    }

    /// A stored document.
    pub async fn get(&self, ns: &Namespace, id: &str) -> Result<DocumentRecord, MemoryError> {
        validate_document_id(id)?;
        self.store.get_document(ns, id).await?.ok_or_else(|| MemoryError::DocumentNotFound(id.to_string()))
    }

    /// Documents of a namespace, newest first.
    pub async fn list(
        &self,
        ns: &Namespace,
        kind: Option<DocumentKind>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<DocumentSummary>, MemoryError> {
        if !(1..=1000).contains(&limit) {
            return Err(MemoryError::Invalid("limit must be from 1 to 1000".into()));
        }
        if !self.store.namespace_exists(ns).await? {
            return Err(MemoryError::NamespaceNotFound(ns.name().to_string()));
        }
        self.store.list_documents(ns, kind, limit, offset).await
    }

    /// Deletes a document; fails with `DocumentNotFound` when there was none.
    pub async fn delete(&self, ns: &Namespace, id: &str) -> Result<(), MemoryError> {
        validate_document_id(id)?;
        if self.store.delete_document(ns, id).await? {
            Ok(())
        } else {
            Err(MemoryError::DocumentNotFound(id.to_string()))
        }
    }

    /// Remembers a fact; the same fact twice is one entry.
    pub async fn remember(&self, ns: &Namespace, fact: &str) -> Result<IngestReport, MemoryError> {
        let fact = fact.trim();
        let id = format!("fact:{}", &content_hash(&[fact])[..16]);
        let title: String = fact.chars().take(80).collect();
        let doc = NewDocument {
            id,
            kind: DocumentKind::Fact,
            title,
            text: fact.to_string(),
            source: None,
            metadata: Metadata::new(),
        };
        self.ingest(ns, doc).await
    }

    /// Writes (replaces) a named note such as `MEMORY.md`.
    pub async fn write_note(&self, ns: &Namespace, name: &str, text: &str) -> Result<IngestReport, MemoryError> {
        let doc = NewDocument {
            id: name.to_string(),
            kind: DocumentKind::Note,
            title: name.to_string(),
            text: text.to_string(),
            source: None,
            metadata: Metadata::new(),
        };
        self.ingest(ns, doc).await
    }

    /// The memories most relevant to `message`, as a context block within the recall budget, or `None`
    /// when recall is off or nothing relevant is stored.
    pub async fn recall(&self, ns: &Namespace, message: &str) -> Result<Option<String>, MemoryError> {
        if self.options.recall_k == 0 || message.trim().is_empty() || !self.store.namespace_exists(ns).await? {
            return Ok(None);
        }
        let query: String = message.chars().take(1_000).collect();
        let results = self.search(ns, &SearchRequest::new(query, self.options.recall_k)).await?;
        let budget = self.options.recall_tokens * 4;
        let mut block = String::new();
        for hit in results.results {
            let line = format!("- [{}] {}\n", hit.chunk.document_id, hit.chunk.text.replace('\n', " "));
            if block.len() + line.len() > budget {
                break;
            }
            block.push_str(&line);
        }
        Ok((!block.is_empty()).then_some(block))
    }
}

#[cfg(test)]
mod tests;
