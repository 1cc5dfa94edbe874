use std::cell::RefCell;

use futures::executor::block_on;

use super::*;
use crate::auth::Principal;
use crate::memory::testing::{ConceptEmbedder, TestStore};
use crate::ports::testing::ManualClock;

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
        block_on(f.memory.search(&f.ns, &request)).unwrap().results[0].chunk.document_id.clone()
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
