//! Test doubles for memory: a naive in-memory store and a tiny concept embedder.

use std::cell::RefCell;
use std::collections::BTreeMap;

use async_trait::async_trait;

use super::store::{ChunkRecord, DocumentRecord, DocumentSummary, Filter, MemoryStore, ScoredChunk};
use super::{DocumentKind, Embedder, MemoryError, Namespace};

/// Documents by (namespace key, id).
type Documents = BTreeMap<(String, String), (DocumentRecord, Vec<ChunkRecord>)>;

/// A naive store: keyword score = query words found, vector score = cosine.
#[derive(Default)]
pub struct TestStore {
    docs: RefCell<Documents>,
    pub puts: RefCell<u32>,
}

impl TestStore {
    fn scored(&self, ns: &Namespace, filter: &Filter, score: impl Fn(&ChunkRecord) -> f32) -> Vec<ScoredChunk> {
        let mut out: Vec<ScoredChunk> = self
            .docs
            .borrow()
            .iter()
            .filter(|((key, _), (doc, _))| {
                *key == ns.key()
                    && (filter.kinds.is_empty() || filter.kinds.contains(&doc.kind))
                    && filter.metadata.iter().all(|(k, v)| doc.metadata.get(k) == Some(v))
            })
            .flat_map(|(_, (doc, chunks))| {
                chunks.iter().map(|c| ScoredChunk {
                    document_id: doc.id.clone(),
                    chunk_index: c.index,
                    kind: doc.kind,
                    title: doc.title.clone(),
                    heading: c.heading.clone(),
                    text: c.text.clone(),
                    source: doc.source.clone(),
                    metadata: doc.metadata.clone(),
                    updated_at: doc.updated_at,
                    score: score(c),
                })
            })
            .filter(|c| c.score > 0.0)
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out
    }
}

#[async_trait(?Send)]
impl MemoryStore for TestStore {
    async fn document_hash(&self, ns: &Namespace, id: &str) -> Result<Option<String>, MemoryError> {
        Ok(self.docs.borrow().get(&(ns.key(), id.to_string())).map(|(d, _)| d.content_hash.clone()))
    }
    async fn chunk_embeddings(&self, ns: &Namespace, id: &str) -> Result<Vec<(String, Vec<f32>)>, MemoryError> {
        Ok(self
            .docs
            .borrow()
            .get(&(ns.key(), id.to_string()))
            .map(|(_, chunks)| chunks.iter().map(|c| (c.content_hash.clone(), c.embedding.clone())).collect())
            .unwrap_or_default())
    }
    async fn put_document(
        &self,
        ns: &Namespace,
        doc: &DocumentRecord,
        chunks: &[ChunkRecord],
    ) -> Result<(), MemoryError> {
        *self.puts.borrow_mut() += 1;
        self.docs.borrow_mut().insert((ns.key(), doc.id.clone()), (doc.clone(), chunks.to_vec()));
        Ok(())
    }
    async fn get_document(&self, ns: &Namespace, id: &str) -> Result<Option<DocumentRecord>, MemoryError> {
        Ok(self.docs.borrow().get(&(ns.key(), id.to_string())).map(|(d, _)| d.clone()))
    }
    async fn list_documents(
        &self,
        ns: &Namespace,
        _kind: Option<DocumentKind>,
        _limit: u32,
        _offset: u32,
    ) -> Result<Vec<DocumentSummary>, MemoryError> {
        Ok(self
            .docs
            .borrow()
            .iter()
            .filter(|((key, _), _)| *key == ns.key())
            .map(|(_, (d, c))| DocumentSummary {
                id: d.id.clone(),
                kind: d.kind,
                title: d.title.clone(),
                source: d.source.clone(),
                metadata: d.metadata.clone(),
                chunks: c.len() as u32,
                updated_at: d.updated_at,
            })
            .collect())
    }
    async fn delete_document(&self, ns: &Namespace, id: &str) -> Result<bool, MemoryError> {
        Ok(self.docs.borrow_mut().remove(&(ns.key(), id.to_string())).is_some())
    }
    async fn namespace_exists(&self, ns: &Namespace) -> Result<bool, MemoryError> {
        Ok(self.docs.borrow().keys().any(|(key, _)| *key == ns.key()))
    }
    async fn keyword_search(
        &self,
        ns: &Namespace,
        query: &str,
        limit: u32,
        filter: &Filter,
    ) -> Result<Vec<ScoredChunk>, MemoryError> {
        let words: Vec<String> = query.to_lowercase().split_whitespace().map(String::from).collect();
        let mut hits = self.scored(ns, filter, |c| {
            let text = c.text.to_lowercase();
            words.iter().filter(|w| text.contains(w.as_str())).count() as f32
        });
        hits.truncate(limit as usize);
        Ok(hits)
    }
    async fn vector_search(
        &self,
        ns: &Namespace,
        embedding: &[f32],
        limit: u32,
        filter: &Filter,
    ) -> Result<Vec<ScoredChunk>, MemoryError> {
        let mut hits = self.scored(ns, filter, |c| c.embedding.iter().zip(embedding).map(|(a, b)| a * b).sum());
        hits.truncate(limit as usize);
        Ok(hits)
    }
}

/// Embeds by concept: "car"/"automobile" → axis 0, "cat"/"kitten" → axis 1, everything else axis 2.
pub struct ConceptEmbedder {
    pub calls: RefCell<Vec<usize>>,
}

#[async_trait(?Send)]
impl Embedder for ConceptEmbedder {
    fn model(&self) -> String {
        "test:concepts".into()
    }
    fn dimensions(&self) -> usize {
        3
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, MemoryError> {
        self.calls.borrow_mut().push(texts.len());
        Ok(texts
            .iter()
            .map(|t| {
                let t = t.to_lowercase();
                let mut v = [0.0f32, 0.0, 0.1];
                if t.contains("car") || t.contains("automobile") {
                    v[0] = 1.0;
                }
                if t.contains("cat") || t.contains("kitten") {
                    v[1] = 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}
