use std::cell::RefCell;
use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::executor::block_on;

use super::*;
use crate::auth::Principal;
use crate::memory::store::{Filter, ScoredChunk};
use crate::ports::testing::ManualClock;

/// Documents by (namespace key, id).
type Documents = BTreeMap<(String, String), (DocumentRecord, Vec<ChunkRecord>)>;

/// A naive store: keyword score = query words found, vector score = cosine.
#[derive(Default)]
struct TestStore {
    docs: RefCell<Documents>,
    puts: RefCell<u32>,
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
struct ConceptEmbedder {
    calls: RefCell<Vec<usize>>,
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

struct Fixture {
    memory: Memory,
    store: Rc<TestStore>,
    embedder: Rc<ConceptEmbedder>,
    ns: Namespace,
}

fn fixture(with_embedder: bool) -> Fixture {
    let store = Rc::new(TestStore::default());
    let embedder = Rc::new(ConceptEmbedder { calls: RefCell::new(vec![]) });
    let clock: Rc<dyn Clock> = Rc::new(Rc::new(ManualClock::default()));
    let options =
        MemoryOptions { chunking: ChunkOptions { target_chars: 100, overlap_chars: 0 }, ..MemoryOptions::default() };
    let dyn_embedder: Option<Rc<dyn Embedder>> = with_embedder.then(|| embedder.clone() as Rc<dyn Embedder>);
    let memory = Memory::new(store.clone(), dyn_embedder, options, clock);
    let ns = Namespace::new(&Principal::parse("alice").unwrap(), "default").unwrap();
    Fixture { memory, store, embedder, ns }
}

fn doc(id: &str, text: &str) -> NewDocument {
    NewDocument {
        id: id.into(),
        kind: DocumentKind::Document,
        title: String::new(),
        text: text.into(),
        source: None,
        metadata: Metadata::new(),
    }
}

#[test]
fn unchanged_documents_are_skipped_and_unchanged_chunks_keep_their_vectors() {
    let f = fixture(true);
    let text = "# One\nThe automobile section.\n\n# Two\nThe kitten section.";
    let first = block_on(f.memory.ingest(&f.ns, doc("d", text))).unwrap();
    assert_eq!((first.chunks, first.embedded, first.unchanged), (2, 2, false));
    let again = block_on(f.memory.ingest(&f.ns, doc("d", text))).unwrap();
    assert_eq!((again.chunks, again.embedded, again.unchanged), (2, 0, true));
    assert_eq!(*f.store.puts.borrow(), 1);
    let changed = block_on(f.memory.ingest(&f.ns, doc("d", &text.replace("kitten", "cat")))).unwrap();
    assert_eq!((changed.chunks, changed.embedded), (2, 1));
    assert_eq!(*f.embedder.calls.borrow(), vec![2, 1]);
}

#[test]
fn hybrid_search_finds_synonyms_and_exact_words() {
    let f = fixture(true);
    block_on(f.memory.ingest(&f.ns, doc("cars", "My automobile is red."))).unwrap();
    block_on(f.memory.ingest(&f.ns, doc("pets", "A kitten sleeps."))).unwrap();
    block_on(f.memory.ingest(&f.ns, doc("code", "Error ERR-4471 means the disk is full."))).unwrap();
    let top = |query: &str, mode: SearchMode| {
        let request = SearchRequest { mode, ..SearchRequest::new(query, 1) };
        block_on(f.memory.search(&f.ns, &request)).unwrap().results[0].document_id.clone()
    };
    assert_eq!(top("car", SearchMode::Vector), "cars");
    assert_eq!(top("err-4471", SearchMode::Keyword), "code");
    assert_eq!(top("cat sleeps", SearchMode::Hybrid), "pets");
}

#[test]
fn without_an_embedder_hybrid_becomes_keyword_and_vector_is_refused() {
    let f = fixture(false);
    block_on(f.memory.ingest(&f.ns, doc("a", "plain words here"))).unwrap();
    let results = block_on(f.memory.search(&f.ns, &SearchRequest::new("words", 5))).unwrap();
    assert_eq!((results.mode, results.results.len()), (SearchMode::Keyword, 1));
    let vector = SearchRequest { mode: SearchMode::Vector, ..SearchRequest::new("words", 5) };
    assert_eq!(block_on(f.memory.search(&f.ns, &vector)).unwrap_err(), MemoryError::NoEmbedder);
}

#[test]
fn bad_documents_and_unknown_namespaces_are_clear_errors() {
    let f = fixture(true);
    assert!(matches!(block_on(f.memory.ingest(&f.ns, doc("d", "  "))), Err(MemoryError::Invalid(_))));
    assert!(matches!(block_on(f.memory.ingest(&f.ns, doc("bad id", "x"))), Err(MemoryError::Invalid(_))));
    let huge = "x".repeat(MemoryOptions::default().max_document_bytes + 1);
    assert!(matches!(block_on(f.memory.ingest(&f.ns, doc("d", &huge))), Err(MemoryError::TooLarge(_))));
    let mut bad_meta = doc("d", "text");
    bad_meta.metadata.insert("bad key".into(), "v".into());
    assert!(matches!(block_on(f.memory.ingest(&f.ns, bad_meta)), Err(MemoryError::Invalid(_))));
    assert_eq!(
        block_on(f.memory.search(&f.ns, &SearchRequest::new("x", 5))).unwrap_err(),
        MemoryError::NamespaceNotFound("default".into())
    );
    assert_eq!(block_on(f.memory.delete(&f.ns, "nope")).unwrap_err(), MemoryError::DocumentNotFound("nope".into()));
}

#[test]
fn facts_are_deduplicated_notes_replaced_and_recall_fits_the_budget() {
    let f = fixture(true);
    let a = block_on(f.memory.remember(&f.ns, "The user's cat is called Miso.")).unwrap();
    let b = block_on(f.memory.remember(&f.ns, " The user's cat is called Miso. ")).unwrap();
    assert_eq!(a.document_id, b.document_id);
    assert!(b.unchanged);
    block_on(f.memory.write_note(&f.ns, "USER.md", "Prefers metric units.")).unwrap();
    block_on(f.memory.write_note(&f.ns, "USER.md", "Prefers imperial units.")).unwrap();
    assert_eq!(block_on(f.memory.get(&f.ns, "USER.md")).unwrap().text, "Prefers imperial units.");
    let recalled = block_on(f.memory.recall(&f.ns, "what is my kitten called?")).unwrap().unwrap();
    assert!(recalled.starts_with(&format!("- [{}] The user's cat is called Miso.", a.document_id)), "{recalled}");

    let empty = fixture(true);
    assert_eq!(block_on(empty.memory.recall(&empty.ns, "anything")).unwrap(), None);
}
