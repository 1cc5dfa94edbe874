//! The Postgres store against a real PostgreSQL with pgvector, natively over TCP.
//! `scripts/test` starts a server and passes its URL in `EDGECLAW_TEST_DATABASE_URL`; run by hand with
//! `tests/harness` (`python -m harness.postgres run -- cargo test -p edgeclaw-memory-pg --all-features -- --ignored`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use edgeclaw_core::auth::Principal;
use edgeclaw_core::memory::{
    DocumentKind, Embedder, Filter, Memory, MemoryError, MemoryOptions, Metadata, Namespace, NewDocument, SearchMode,
    SearchRequest,
};
use edgeclaw_core::ports::Clock;
use edgeclaw_memory_pg::tokio_pg::{self, TokioPgClient};
use edgeclaw_memory_pg::{migrate, PgMemoryStore, PgValue, SqlClient, SqlError};
use futures::future::LocalBoxFuture;

const DIMENSIONS: usize = 16;

async fn connect(url: &str) -> Result<Rc<TokioPgClient>, SqlError> {
    tokio_pg::connect(url).await.map(Rc::new)
}

fn database_url() -> String {
    std::env::var("EDGECLAW_TEST_DATABASE_URL")
        .expect("EDGECLAW_TEST_DATABASE_URL must name a Postgres with pgvector (scripts/test starts one)")
}

struct Now;

impl Clock for Now {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
    fn sleep(&self, _ms: u64) -> LocalBoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Words map to concepts (synonyms share one), concepts to axes: enough meaning to test vector search.
struct ConceptEmbedder {
    dimensions: usize,
    calls: RefCell<usize>,
}

const CONCEPTS: &[&[&str]] = &[
    &["car", "automobile", "vehicle"],
    &["cat", "kitten", "feline"],
    &["boiler", "heater", "furnace"],
    &["money", "cash", "savings"],
];

#[async_trait(?Send)]
impl Embedder for ConceptEmbedder {
    fn model(&self) -> String {
        "test:concepts".into()
    }
    fn dimensions(&self) -> usize {
        self.dimensions
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, MemoryError> {
        *self.calls.borrow_mut() += 1;
        Ok(texts
            .iter()
            .map(|text| {
                let mut v = vec![0.01f32; self.dimensions];
                for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
                    if let Some(axis) = CONCEPTS.iter().position(|group| group.contains(&word)) {
                        v[axis] += 1.0;
                    }
                }
                v
            })
            .collect())
    }
}

struct Fixture {
    memory: Memory,
    embedder: Rc<ConceptEmbedder>,
    ns: Namespace,
    client: Rc<TokioPgClient>,
}

async fn fixture(dimensions: usize) -> Fixture {
    let client = connect(&database_url()).await.unwrap();
    migrate(client.as_ref(), DIMENSIONS).await.unwrap();
    let embedder = Rc::new(ConceptEmbedder { dimensions, calls: RefCell::new(0) });
    let store = Rc::new(PgMemoryStore::new(client.clone()));
    let options = MemoryOptions::default();
    let memory = Memory::new(store, Some(embedder.clone() as Rc<dyn Embedder>), options, Rc::new(Now));
    // a fresh principal per test keeps parallel tests apart in one database
    let principal = format!("t{}-{}", std::process::id(), NEXT_PRINCIPAL.fetch_add(1, Ordering::Relaxed));
    let ns = Namespace::new(&Principal::parse(&principal).unwrap(), "default").unwrap();
    Fixture { memory, embedder, ns, client }
}

static NEXT_PRINCIPAL: AtomicU64 = AtomicU64::new(0);

fn doc(id: &str, title: &str, text: &str) -> NewDocument {
    NewDocument {
        id: id.into(),
        kind: DocumentKind::Document,
        title: title.into(),
        text: text.into(),
        source: None,
        metadata: Metadata::new(),
    }
}

async fn top(f: &Fixture, query: &str, mode: SearchMode) -> Vec<String> {
    let request = SearchRequest { mode, ..SearchRequest::new(query, 3) };
    f.memory.search(&f.ns, &request).await.unwrap().results.into_iter().map(|h| h.chunk.document_id).collect()
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Postgres with pgvector: run through scripts/test"]
async fn keyword_vector_and_hybrid_search_each_find_what_they_are_good_at() {
    let f = fixture(DIMENSIONS).await;
    f.memory
        .ingest(&f.ns, doc("boiler", "Boiler manual", "Error E119 means the water pressure is low."))
        .await
        .unwrap();
    f.memory.ingest(&f.ns, doc("car", "Garage", "The automobile needs new tyres before winter.")).await.unwrap();
    f.memory.ingest(&f.ns, doc("pets", "Pets", "Our kitten sleeps on the radiator all day.")).await.unwrap();

    assert_eq!(top(&f, "E119", SearchMode::Keyword).await[0], "boiler");
    assert_eq!(top(&f, "vehicle", SearchMode::Vector).await[0], "car");
    assert!(top(&f, "vehicle", SearchMode::Keyword).await.is_empty());
    let hybrid = top(&f, "feline sleeps", SearchMode::Hybrid).await;
    assert_eq!(hybrid[0], "pets");
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Postgres with pgvector: run through scripts/test"]
async fn reindexing_replaces_chunks_and_skips_unchanged_documents() {
    let f = fixture(DIMENSIONS).await;
    let long = (0..40).map(|i| format!("Paragraph {i} about the furnace settings.")).collect::<Vec<_>>().join("\n\n");
    let first = f.memory.ingest(&f.ns, doc("manual", "Manual", &long)).await.unwrap();
    assert!(first.chunks > 1 && first.embedded == first.chunks);
    let again = f.memory.ingest(&f.ns, doc("manual", "Manual", &long)).await.unwrap();
    assert!(again.unchanged && again.embedded == 0 && again.chunks == first.chunks);
    let calls = *f.embedder.calls.borrow();
    let short = f.memory.ingest(&f.ns, doc("manual", "Manual", "Only one line now.")).await.unwrap();
    assert_eq!((short.chunks, short.embedded), (1, 1));
    assert_eq!(*f.embedder.calls.borrow(), calls + 1);
    let hits = top(&f, "furnace", SearchMode::Keyword).await;
    assert!(hits.is_empty(), "old chunks were replaced: {hits:?}");
    let listed = f.memory.list(&f.ns, None, 10, 0).await.unwrap();
    assert_eq!((listed.len(), listed[0].chunks), (1, 1));
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Postgres with pgvector: run through scripts/test"]
async fn filters_deletion_and_namespaces_are_respected() {
    let f = fixture(DIMENSIONS).await;
    let mut home = doc("home", "Home", "The boiler is serviced every spring.");
    home.metadata.insert("topic".into(), "home".into());
    f.memory.ingest(&f.ns, home).await.unwrap();
    f.memory.remember(&f.ns, "The boiler key is in the blue drawer.").await.unwrap();

    let facts = SearchRequest {
        filter: Filter { kinds: vec![DocumentKind::Fact], ..Filter::default() },
        ..SearchRequest::new("boiler", 5)
    };
    let hits = f.memory.search(&f.ns, &facts).await.unwrap().results;
    assert!(hits.len() == 1 && hits[0].chunk.kind == DocumentKind::Fact);
    let mut by_topic = SearchRequest::new("boiler", 5);
    by_topic.filter.metadata.insert("topic".into(), "home".into());
    assert_eq!(f.memory.search(&f.ns, &by_topic).await.unwrap().results[0].chunk.document_id, "home");

    // the same namespace name under another principal is another namespace
    let stranger = Principal::parse(&format!("{}-x", f.ns.key().split('/').next().unwrap())).unwrap();
    let other = Namespace::new(&stranger, "default").unwrap();
    assert!(matches!(
        f.memory.search(&other, &SearchRequest::new("boiler", 5)).await,
        Err(MemoryError::NamespaceNotFound(_))
    ));

    f.memory.delete(&f.ns, "home").await.unwrap();
    assert!(matches!(f.memory.get(&f.ns, "home").await, Err(MemoryError::DocumentNotFound(_))));
    assert!(matches!(f.memory.delete(&f.ns, "home").await, Err(MemoryError::DocumentNotFound(_))));
    let rows = f
        .client
        .query(
            "SELECT count(*)::bigint FROM memory_chunks WHERE namespace = $1::text AND document_id = 'home'",
            &[f.ns.key().into()],
        )
        .await
        .unwrap();
    assert_eq!(rows[0][0], PgValue::Int(0), "chunks were deleted with their document");
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Postgres with pgvector: run through scripts/test"]
async fn a_model_with_another_dimension_is_a_clear_error() {
    let f = fixture(DIMENSIONS / 2).await;
    let err = f.memory.ingest(&f.ns, doc("d", "", "some text")).await.unwrap_err();
    assert!(matches!(err, MemoryError::DimensionMismatch(_)), "{err}");
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs Postgres with pgvector: run through scripts/test"]
async fn migrations_are_applied_once() {
    let client = connect(&database_url()).await.unwrap();
    migrate(client.as_ref(), DIMENSIONS).await.unwrap();
    assert!(migrate(client.as_ref(), DIMENSIONS).await.unwrap().is_empty());
    let rows = client.query("SELECT version FROM edgeclaw_migrations ORDER BY version", &[]).await.unwrap();
    assert_eq!(rows, vec![vec![PgValue::Int(1)]]);
}

#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_database_is_unavailable_not_a_panic() {
    // port 9 (discard) on loopback refuses connections
    let err = connect("postgresql://postgres:x@127.0.0.1:9/edgeclaw").await.err().expect("connection refused");
    assert!(matches!(err, SqlError::Connection(_)), "{err}");
}

#[test]
#[ignore = "needs Postgres with pgvector: run through scripts/test"]
fn the_migrate_command_applies_and_reports() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgeclaw-migrate"))
            .args(args)
            .env_remove("EDGECLAW_DATABASE_URL")
            .output()
            .unwrap();
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let url = database_url();
    let (code, text) = run(&[&url, "--dimensions", &DIMENSIONS.to_string()]);
    assert!(code == Some(0) && (text.contains("up to date") || text.contains("applied")), "{code:?} {text}");
    assert_eq!(run(&[&url, "--dimensions", &DIMENSIONS.to_string()]), (Some(0), "up to date\n".to_string()));
    let (code, text) = run(&["postgresql://postgres:x@127.0.0.1:9/edgeclaw"]);
    assert!(code == Some(1) && text.contains("migration failed"), "{code:?} {text}");
    let (code, text) = run(&[]);
    assert!(code == Some(2) && text.contains("EDGECLAW_DATABASE_URL"), "{code:?} {text}");
    assert_eq!(run(&[&url, "--dimensions", "3"]).0, Some(2));
}
