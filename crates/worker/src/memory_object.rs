//! The `Memory` Durable Object (one per namespace, holding the embedded store) and the client that
//! reaches it: [`DoMemoryStore`] implements core's `MemoryStore` by sending each call to the object.

use std::cell::OnceCell;
use std::rc::Rc;

use async_trait::async_trait;
use edgeclaw_core::config::Config;
use edgeclaw_core::memory::{
    ChunkRecord, DocumentKind, DocumentRecord, DocumentSummary, Embedder, Filter, HttpEmbedder,
    Memory as MemoryService, MemoryError, MemoryStore, Namespace, ScoredChunk,
};
use edgeclaw_core::ports::Ports;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::ai::AiBindingEmbedder;
use crate::http;
use crate::memory_store::SqliteMemoryStore;
use crate::postgres::PostgresClient;
use edgeclaw_memory_pg::PgMemoryStore;

/// Vector size of the Postgres schema when no embedding model is configured.
const DEFAULT_DIMENSIONS: usize = 1_536;

/// Durable Object binding of the `Memory` class.
const MEMORY_BINDING: &str = "MEMORY";

/// One store call, as sent to the object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum MemoryCommand {
    DocumentHash { id: String },
    ChunkEmbeddings { id: String },
    PutDocument { doc: DocumentRecord, chunks: Vec<ChunkRecord> },
    GetDocument { id: String },
    ListDocuments { kind: Option<DocumentKind>, limit: u32, offset: u32 },
    DeleteDocument { id: String },
    NamespaceExists,
    KeywordSearch { query: String, limit: u32, filter: Filter },
    VectorSearch { embedding: Vec<f32>, limit: u32, filter: Filter },
}

#[derive(Serialize, Deserialize)]
struct MemoryRequest {
    namespace: Namespace,
    command: MemoryCommand,
}

/// The embedded memory of one namespace, as a Durable Object.
#[durable_object]
pub struct Memory {
    state: State,
    store: OnceCell<std::result::Result<SqliteMemoryStore, MemoryError>>,
}

fn reply<T: Serialize>(result: std::result::Result<T, MemoryError>) -> Result<Response> {
    let value: std::result::Result<Value, MemoryError> =
        result.and_then(|v| serde_json::to_value(v).map_err(|e| MemoryError::Unavailable(e.to_string())));
    Response::from_json(&value)
}

impl Memory {
    async fn run(store: &SqliteMemoryStore, ns: &Namespace, command: MemoryCommand) -> Result<Response> {
        match command {
            MemoryCommand::DocumentHash { id } => reply(store.document_hash(ns, &id).await),
            MemoryCommand::ChunkEmbeddings { id } => reply(store.chunk_embeddings(ns, &id).await),
            MemoryCommand::PutDocument { doc, chunks } => reply(store.put_document(ns, &doc, &chunks).await),
            MemoryCommand::GetDocument { id } => reply(store.get_document(ns, &id).await),
            MemoryCommand::ListDocuments { kind, limit, offset } => {
                reply(store.list_documents(ns, kind, limit, offset).await)
            }
            MemoryCommand::DeleteDocument { id } => reply(store.delete_document(ns, &id).await),
            MemoryCommand::NamespaceExists => reply(store.namespace_exists(ns).await),
            MemoryCommand::KeywordSearch { query, limit, filter } => {
                reply(store.keyword_search(ns, &query, limit, &filter).await)
            }
            MemoryCommand::VectorSearch { embedding, limit, filter } => {
                reply(store.vector_search(ns, &embedding, limit, &filter).await)
            }
        }
    }
}

impl DurableObject for Memory {
    fn new(state: State, _env: Env) -> Self {
        Self { state, store: OnceCell::new() }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let request: MemoryRequest = match serde_json::from_slice(&req.bytes().await?) {
            Ok(request) => request,
            Err(e) => return reply::<()>(Err(MemoryError::Invalid(format!("bad memory command: {e}")))),
        };
        match self.store.get_or_init(|| SqliteMemoryStore::open(self.state.storage().sql())) {
            Ok(store) => Self::run(store, &request.namespace, request.command).await,
            Err(error) => reply::<()>(Err(error.clone())),
        }
    }
}

/// Memory for one request (or one session object) and the Postgres connection it may hold, which
/// must be released before the request ends.
pub struct MemoryBackend {
    /// The memory service.
    pub memory: Rc<MemoryService>,
    postgres: Option<Rc<PostgresClient>>,
}

impl MemoryBackend {
    /// Closes what the memory opened during the request; it reopens on next use.
    pub async fn release(&self) {
        if let Some(postgres) = &self.postgres {
            postgres.release().await;
        }
    }
}

/// The memory of this deployment: Postgres when a Hyperdrive binding or `EDGECLAW_DATABASE_URL` exists
/// (its schema migrated on first use), the embedded per-namespace Durable Objects otherwise; and the
/// configured embedding model.
pub async fn backend(config: &Config, env: &Env, ports: &Ports) -> MemoryBackend {
    let embedder = config.embedding.clone().map(|target| match target.binding.clone() {
        Some(name) => Rc::new(AiBindingEmbedder::new(env, &name, target)) as Rc<dyn Embedder>,
        None => Rc::new(HttpEmbedder::new(target, config.retry, ports.clone())),
    });
    let postgres = PostgresClient::from_env(env).map(Rc::new);
    let store: Rc<dyn MemoryStore> = match &postgres {
        Some(client) => {
            let dimensions = config.embedding.as_ref().map_or(DEFAULT_DIMENSIONS, |e| e.dimensions);
            // With Postgres down the store's calls report it; the migration is tried again next time.
            let _ = client.ensure_migrated(dimensions).await;
            Rc::new(PgMemoryStore::new(client.clone()))
        }
        None => Rc::new(DoMemoryStore::new(env.clone())),
    };
    let memory = Rc::new(MemoryService::new(store, embedder, config.memory, ports.clock.clone()));
    MemoryBackend { memory, postgres }
}

/// Core's `MemoryStore`, served by the `Memory` Durable Object of each namespace.
pub struct DoMemoryStore {
    env: Env,
}

impl DoMemoryStore {
    /// A client over this Worker's `MEMORY` binding.
    pub fn new(env: Env) -> Self {
        Self { env }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        ns: &Namespace,
        command: MemoryCommand,
    ) -> std::result::Result<T, MemoryError> {
        let unavailable = |e: worker::Error| MemoryError::Unavailable(e.to_string());
        let request = MemoryRequest { namespace: ns.clone(), command };
        let mut response =
            http::ask_object(&self.env, MEMORY_BINDING, &ns.key(), &request).await.map_err(unavailable)?;
        let text = response.text().await.map_err(unavailable)?;
        serde_json::from_str::<std::result::Result<T, MemoryError>>(&text)
            .map_err(|e| MemoryError::Unavailable(format!("bad reply from the memory object: {e}")))?
    }
}

#[async_trait(?Send)]
impl MemoryStore for DoMemoryStore {
    async fn document_hash(&self, ns: &Namespace, id: &str) -> std::result::Result<Option<String>, MemoryError> {
        self.call(ns, MemoryCommand::DocumentHash { id: id.into() }).await
    }

    async fn chunk_embeddings(
        &self,
        ns: &Namespace,
        id: &str,
    ) -> std::result::Result<Vec<(String, Vec<f32>)>, MemoryError> {
        self.call(ns, MemoryCommand::ChunkEmbeddings { id: id.into() }).await
    }

    async fn put_document(
        &self,
        ns: &Namespace,
        doc: &DocumentRecord,
        chunks: &[ChunkRecord],
    ) -> std::result::Result<(), MemoryError> {
        self.call(ns, MemoryCommand::PutDocument { doc: doc.clone(), chunks: chunks.to_vec() }).await
    }

    async fn get_document(&self, ns: &Namespace, id: &str) -> std::result::Result<Option<DocumentRecord>, MemoryError> {
        self.call(ns, MemoryCommand::GetDocument { id: id.into() }).await
    }

    async fn list_documents(
        &self,
        ns: &Namespace,
        kind: Option<DocumentKind>,
        limit: u32,
        offset: u32,
    ) -> std::result::Result<Vec<DocumentSummary>, MemoryError> {
        self.call(ns, MemoryCommand::ListDocuments { kind, limit, offset }).await
    }

    async fn delete_document(&self, ns: &Namespace, id: &str) -> std::result::Result<bool, MemoryError> {
        self.call(ns, MemoryCommand::DeleteDocument { id: id.into() }).await
    }

    async fn namespace_exists(&self, ns: &Namespace) -> std::result::Result<bool, MemoryError> {
        self.call(ns, MemoryCommand::NamespaceExists).await
    }

    async fn keyword_search(
        &self,
        ns: &Namespace,
        query: &str,
        limit: u32,
        filter: &Filter,
    ) -> std::result::Result<Vec<ScoredChunk>, MemoryError> {
        self.call(ns, MemoryCommand::KeywordSearch { query: query.into(), limit, filter: filter.clone() }).await
    }

    async fn vector_search(
        &self,
        ns: &Namespace,
        embedding: &[f32],
        limit: u32,
        filter: &Filter,
    ) -> std::result::Result<Vec<ScoredChunk>, MemoryError> {
        self.call(ns, MemoryCommand::VectorSearch { embedding: embedding.to_vec(), limit, filter: filter.clone() })
            .await
    }
}
