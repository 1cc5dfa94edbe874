//! The embedded memory store: one `Memory` Durable Object per namespace, on its SQLite storage — FTS5
//! (porter stemming) for keywords, f32 vectors as blobs with an exact cosine scan.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use async_trait::async_trait;
use edgeclaw_core::memory::{
    keyword_clauses, metadata_json, ChunkRecord, DocumentKind, DocumentRecord, DocumentSummary, Filter, MemoryError,
    MemoryStore, Metadata, Namespace, ScoredChunk,
};
use worker::{SqlStorage, SqlStorageValue};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    document_id TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    heading TEXT NOT NULL,
    body TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    embedding BLOB,
    UNIQUE (document_id, chunk_index)
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts
    USING fts5(heading, body, content='chunks', content_rowid='id', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, heading, body) VALUES (new.id, new.heading, new.body);
END;
CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, heading, body) VALUES ('delete', old.id, old.heading, old.body);
END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/// Columns of a search result row, in this order.
const HIT_COLUMNS: &str =
    "c.document_id, c.chunk_index, c.heading, c.body, d.kind, d.title, d.source, d.metadata, d.updated_at";
/// Bound parameters per statement stay under the Durable Object limit of 100.
const IDS_PER_QUERY: usize = 90;

/// Largest number of floats kept in the in-memory vector cache (64 MiB); bigger namespaces are scanned
/// from SQLite on every search.
const MAX_CACHED_FLOATS: usize = 16 * 1024 * 1024;

/// Every chunk vector of the namespace, loaded once and kept while the object lives, so a search is a
/// scan of memory rather than of SQLite rows. Dropped on every write.
struct VectorCache {
    ids: Vec<i64>,
    dims: usize,
    data: Vec<f32>,
}

/// A [`MemoryStore`] for the one namespace whose Durable Object owns `sql`.
pub struct SqliteMemoryStore {
    sql: SqlStorage,
    vectors: RefCell<Option<Rc<VectorCache>>>,
}

fn unavailable(e: impl std::fmt::Display) -> MemoryError {
    MemoryError::Unavailable(e.to_string())
}

fn text(value: &SqlStorageValue) -> String {
    match value {
        SqlStorageValue::String(s) => s.clone(),
        _ => String::new(),
    }
}

fn optional_text(value: &SqlStorageValue) -> Option<String> {
    match value {
        SqlStorageValue::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn kind(value: &SqlStorageValue) -> DocumentKind {
    DocumentKind::parse(&text(value)).unwrap_or(DocumentKind::Document)
}

fn metadata(value: &SqlStorageValue) -> Metadata {
    serde_json::from_str(&text(value)).unwrap_or_default()
}

fn number(value: &SqlStorageValue) -> u64 {
    match value {
        SqlStorageValue::Integer(i) => *i as u64,
        SqlStorageValue::Float(f) => *f as u64,
        _ => 0,
    }
}

fn int(value: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(value as i64)
}

fn vector_to_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Cosine similarity of unit vectors.
fn similarity(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn blob_to_vector(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// `WHERE` conditions (after the first) and their values for a filter on documents `d`.
fn filter_sql(filter: &Filter) -> (String, Vec<SqlStorageValue>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    if !filter.kinds.is_empty() {
        sql.push_str(&format!(" AND d.kind IN ({})", vec!["?"; filter.kinds.len()].join(", ")));
        values.extend(filter.kinds.iter().map(|k| k.as_str().into()));
    }
    for (key, value) in &filter.metadata {
        // keys are validated by core (letters, digits, _ - .), so quoting them in a JSON path is safe
        sql.push_str(" AND json_extract(d.metadata, ?) = ?");
        values.push(format!("$.\"{key}\"").into());
        values.push(value.as_str().into());
    }
    (sql, values)
}

/// The FTS5 query for `query` (see core's `keyword_clauses`), every word quoted so user text is never
/// query syntax.
fn fts_query(query: &str) -> Option<String> {
    let clauses: Vec<String> = keyword_clauses(query)
        .iter()
        .map(|terms| format!("({})", terms.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" AND ")))
        .collect();
    (!clauses.is_empty()).then(|| clauses.join(" OR "))
}

impl SqliteMemoryStore {
    /// Opens the store, creating its tables on first use.
    pub fn open(sql: SqlStorage) -> Result<Self, MemoryError> {
        sql.exec(SCHEMA, None).map_err(unavailable)?;
        Ok(Self { sql, vectors: RefCell::new(None) })
    }

    /// The cached vectors, loading them if needed; `None` when the namespace is too big to cache.
    fn cached_vectors(&self) -> Result<Option<Rc<VectorCache>>, MemoryError> {
        if let Some(cache) = self.vectors.borrow().as_ref() {
            return Ok(Some(cache.clone()));
        }
        let rows = self.rows("SELECT id, embedding FROM chunks WHERE embedding IS NOT NULL ORDER BY id", vec![])?;
        let mut cache = VectorCache { ids: Vec::with_capacity(rows.len()), dims: 0, data: Vec::new() };
        for row in &rows {
            if let (SqlStorageValue::Integer(id), SqlStorageValue::Blob(blob)) = (&row[0], &row[1]) {
                let vector = blob_to_vector(blob);
                if cache.dims == 0 {
                    cache.dims = vector.len();
                    cache.data.reserve(cache.dims * rows.len());
                }
                if vector.len() != cache.dims || cache.data.len() + vector.len() > MAX_CACHED_FLOATS {
                    return Ok(None);
                }
                cache.ids.push(*id);
                cache.data.extend(vector);
            }
        }
        let cache = Rc::new(cache);
        *self.vectors.borrow_mut() = Some(cache.clone());
        Ok(Some(cache))
    }

    /// Scores chunks from SQLite rows of (id, embedding blob).
    fn scan(
        &self,
        conditions: &str,
        values: Vec<SqlStorageValue>,
        query: &[f32],
    ) -> Result<Vec<(i64, f32)>, MemoryError> {
        let rows = self.rows(
            &format!(
                "SELECT c.id, c.embedding FROM chunks c JOIN documents d ON d.id = c.document_id
                 WHERE c.embedding IS NOT NULL{conditions}"
            ),
            values,
        )?;
        Ok(rows
            .iter()
            .filter_map(|row| match (&row[0], &row[1]) {
                (SqlStorageValue::Integer(id), SqlStorageValue::Blob(blob)) => {
                    Some((*id, similarity(&blob_to_vector(blob), query)))
                }
                _ => None,
            })
            .collect())
    }

    fn rows(&self, query: &str, values: Vec<SqlStorageValue>) -> Result<Vec<Vec<SqlStorageValue>>, MemoryError> {
        self.sql.exec(query, values).map_err(unavailable)?.raw().collect::<Result<_, _>>().map_err(unavailable)
    }

    fn hit(row: &[SqlStorageValue], score: f32) -> ScoredChunk {
        ScoredChunk {
            document_id: text(&row[0]),
            chunk_index: number(&row[1]) as u32,
            heading: text(&row[2]),
            text: text(&row[3]),
            kind: kind(&row[4]),
            title: text(&row[5]),
            source: optional_text(&row[6]),
            metadata: metadata(&row[7]),
            updated_at: number(&row[8]),
            score,
        }
    }

    fn meta(&self, key: &str) -> Result<Option<String>, MemoryError> {
        Ok(self.rows("SELECT value FROM meta WHERE key = ?", vec![key.into()])?.first().map(|row| text(&row[0])))
    }
}

#[async_trait(?Send)]
impl MemoryStore for SqliteMemoryStore {
    async fn document_hash(&self, _ns: &Namespace, id: &str) -> Result<Option<String>, MemoryError> {
        Ok(self.rows("SELECT content_hash FROM documents WHERE id = ?", vec![id.into()])?.first().map(|r| text(&r[0])))
    }

    async fn chunk_embeddings(&self, _ns: &Namespace, id: &str) -> Result<Vec<(String, Vec<f32>)>, MemoryError> {
        let rows = self.rows(
            "SELECT content_hash, embedding FROM chunks WHERE document_id = ? ORDER BY chunk_index",
            vec![id.into()],
        )?;
        Ok(rows
            .iter()
            .map(|row| {
                let vector = match &row[1] {
                    SqlStorageValue::Blob(blob) => blob_to_vector(blob),
                    _ => Vec::new(),
                };
                (text(&row[0]), vector)
            })
            .collect())
    }

    async fn put_document(
        &self,
        _ns: &Namespace,
        doc: &DocumentRecord,
        chunks: &[ChunkRecord],
    ) -> Result<(), MemoryError> {
        if let Some(dims) = chunks.iter().map(|c| c.embedding.len()).find(|&n| n > 0) {
            match self.meta("dimensions")? {
                Some(stored) if stored != dims.to_string() => {
                    return Err(MemoryError::DimensionMismatch(format!(
                        "this namespace holds {stored}-dimensional vectors; the embedding model gives {dims}"
                    )))
                }
                Some(_) => {}
                None => {
                    self.rows("INSERT INTO meta (key, value) VALUES ('dimensions', ?)", vec![dims.to_string().into()])?;
                }
            }
        }
        self.vectors.borrow_mut().take();
        // No await between these statements: the Durable Object commits them atomically.
        self.rows("INSERT OR IGNORE INTO meta (key, value) VALUES ('created', '1')", vec![])?;
        self.rows("DELETE FROM chunks WHERE document_id = ?", vec![doc.id.as_str().into()])?;
        self.rows(
            "INSERT INTO documents (id, kind, title, source, metadata, content_hash, body, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, title = excluded.title, source = excluded.source,
                 metadata = excluded.metadata, content_hash = excluded.content_hash, body = excluded.body,
                 updated_at = excluded.updated_at",
            vec![
                doc.id.as_str().into(),
                doc.kind.as_str().into(),
                doc.title.as_str().into(),
                doc.source.clone().into(),
                metadata_json(&doc.metadata).into(),
                doc.content_hash.as_str().into(),
                doc.text.as_str().into(),
                int(doc.created_at),
                int(doc.updated_at),
            ],
        )?;
        for chunk in chunks {
            let embedding = if chunk.embedding.is_empty() {
                SqlStorageValue::Null
            } else {
                vector_to_blob(&chunk.embedding).into()
            };
            self.rows(
                "INSERT INTO chunks (document_id, chunk_index, heading, body, content_hash, embedding) VALUES (?, ?, ?, ?, ?, ?)",
                vec![
                    doc.id.as_str().into(),
                    int(chunk.index.into()),
                    chunk.heading.as_str().into(),
                    chunk.text.as_str().into(),
                    chunk.content_hash.as_str().into(),
                    embedding,
                ],
            )?;
        }
        Ok(())
    }

    async fn get_document(&self, _ns: &Namespace, id: &str) -> Result<Option<DocumentRecord>, MemoryError> {
        let rows = self.rows(
            "SELECT id, kind, title, source, metadata, content_hash, body, created_at, updated_at FROM documents WHERE id = ?",
            vec![id.into()],
        )?;
        Ok(rows.first().map(|row| DocumentRecord {
            id: text(&row[0]),
            kind: kind(&row[1]),
            title: text(&row[2]),
            source: optional_text(&row[3]),
            metadata: metadata(&row[4]),
            content_hash: text(&row[5]),
            text: text(&row[6]),
            created_at: number(&row[7]),
            updated_at: number(&row[8]),
        }))
    }

    async fn list_documents(
        &self,
        _ns: &Namespace,
        only: Option<DocumentKind>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<DocumentSummary>, MemoryError> {
        let rows = self.rows(
            "SELECT d.id, d.kind, d.title, d.source, d.metadata, d.updated_at,
                    (SELECT COUNT(*) FROM chunks c WHERE c.document_id = d.id)
             FROM documents d WHERE (? IS NULL OR d.kind = ?)
             ORDER BY d.updated_at DESC, d.id LIMIT ? OFFSET ?",
            vec![
                only.map(|k| k.as_str()).into(),
                only.map(|k| k.as_str()).into(),
                int(limit.into()),
                int(offset.into()),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|row| DocumentSummary {
                id: text(&row[0]),
                kind: kind(&row[1]),
                title: text(&row[2]),
                source: optional_text(&row[3]),
                metadata: metadata(&row[4]),
                updated_at: number(&row[5]),
                chunks: number(&row[6]) as u32,
            })
            .collect())
    }

    async fn delete_document(&self, _ns: &Namespace, id: &str) -> Result<bool, MemoryError> {
        self.vectors.borrow_mut().take();
        let existed = !self.rows("SELECT 1 FROM documents WHERE id = ?", vec![id.into()])?.is_empty();
        self.rows("DELETE FROM chunks WHERE document_id = ?", vec![id.into()])?;
        self.rows("DELETE FROM documents WHERE id = ?", vec![id.into()])?;
        Ok(existed)
    }

    async fn namespace_exists(&self, _ns: &Namespace) -> Result<bool, MemoryError> {
        Ok(self.meta("created")?.is_some())
    }

    async fn keyword_search(
        &self,
        _ns: &Namespace,
        query: &str,
        limit: u32,
        filter: &Filter,
    ) -> Result<Vec<ScoredChunk>, MemoryError> {
        let Some(fts) = fts_query(query) else { return Ok(Vec::new()) };
        let (conditions, filter_values) = filter_sql(filter);
        let mut values = vec![SqlStorageValue::from(fts)];
        values.extend(filter_values);
        values.push(int(limit.into()));
        let rows = self.rows(
            &format!(
                "SELECT {HIT_COLUMNS}, -bm25(chunks_fts, 2.0, 1.0) AS score
                 FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.document_id
                 WHERE chunks_fts MATCH ?{conditions}
                 ORDER BY bm25(chunks_fts, 2.0, 1.0) LIMIT ?"
            ),
            values,
        )?;
        Ok(rows
            .iter()
            .map(|row| {
                let score = match row[9] {
                    SqlStorageValue::Float(f) => f as f32,
                    SqlStorageValue::Integer(i) => i as f32,
                    _ => 0.0,
                };
                Self::hit(row, score)
            })
            .collect())
    }

    async fn vector_search(
        &self,
        _ns: &Namespace,
        embedding: &[f32],
        limit: u32,
        filter: &Filter,
    ) -> Result<Vec<ScoredChunk>, MemoryError> {
        if let Some(stored) = self.meta("dimensions")? {
            if stored != embedding.len().to_string() {
                return Err(MemoryError::DimensionMismatch(format!(
                    "this namespace holds {stored}-dimensional vectors; the query has {}",
                    embedding.len()
                )));
            }
        }
        let (conditions, values) = filter_sql(filter);
        let mut scored: Vec<(i64, f32)> = match self.cached_vectors()? {
            Some(cache) => {
                let allowed: Option<HashSet<i64>> = if conditions.is_empty() {
                    None
                } else {
                    let rows = self.rows(
                        &format!("SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE 1 = 1{conditions}"),
                        values,
                    )?;
                    Some(
                        rows.iter()
                            .filter_map(|row| if let SqlStorageValue::Integer(id) = row[0] { Some(id) } else { None })
                            .collect(),
                    )
                };
                cache
                    .ids
                    .iter()
                    .zip(cache.data.chunks_exact(cache.dims.max(1)))
                    .filter(|(id, _)| allowed.as_ref().is_none_or(|set| set.contains(id)))
                    .map(|(id, vector)| (*id, similarity(vector, embedding)))
                    .collect()
            }
            None => self.scan(&conditions, values, embedding)?,
        };
        let best_first = |a: &(i64, f32), b: &(i64, f32)| b.1.total_cmp(&a.1);
        if scored.len() > limit as usize {
            scored.select_nth_unstable_by(limit as usize, best_first);
            scored.truncate(limit as usize);
        }
        scored.sort_by(best_first);

        let mut hits = Vec::with_capacity(scored.len());
        for batch in scored.chunks(IDS_PER_QUERY) {
            let placeholders = vec!["?"; batch.len()].join(", ");
            let rows = self.rows(
                &format!(
                    "SELECT {HIT_COLUMNS}, c.id FROM chunks c JOIN documents d ON d.id = c.document_id
                     WHERE c.id IN ({placeholders})"
                ),
                batch.iter().map(|(id, _)| SqlStorageValue::Integer(*id)).collect(),
            )?;
            for (id, score) in batch {
                if let Some(row) = rows.iter().find(|row| row[9] == SqlStorageValue::Integer(*id)) {
                    hits.push(Self::hit(row, *score));
                }
            }
        }
        Ok(hits)
    }
}
