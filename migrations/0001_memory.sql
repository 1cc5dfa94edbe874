-- Memory: namespaces, documents (facts and notes too) and their chunks, with a full-text index and an
-- HNSW cosine index over the embeddings. {{dimensions}} is the configured embedding size.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS memory_namespaces (
    key text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS memory_documents (
    namespace text NOT NULL REFERENCES memory_namespaces (key) ON DELETE CASCADE,
    id text NOT NULL,
    kind text NOT NULL,
    title text NOT NULL,
    source text,
    metadata jsonb NOT NULL DEFAULT '{}',
    content_hash text NOT NULL,
    body text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (namespace, id)
);

CREATE INDEX IF NOT EXISTS memory_documents_recent ON memory_documents (namespace, updated_at DESC);

CREATE TABLE IF NOT EXISTS memory_chunks (
    namespace text NOT NULL,
    document_id text NOT NULL,
    chunk_index integer NOT NULL,
    heading text NOT NULL,
    body text NOT NULL,
    content_hash text NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', heading), 'A') || to_tsvector('english', body)
    ) STORED,
    embedding vector({{dimensions}}),
    PRIMARY KEY (namespace, document_id, chunk_index),
    FOREIGN KEY (namespace, document_id) REFERENCES memory_documents (namespace, id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS memory_chunks_tsv ON memory_chunks USING gin (tsv);
CREATE INDEX IF NOT EXISTS memory_chunks_embedding ON memory_chunks USING hnsw (embedding vector_cosine_ops);
