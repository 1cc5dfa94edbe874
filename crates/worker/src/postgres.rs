//! Postgres for memory: memory-pg's SQL port over tokio-postgres on a Workers socket — through a
//! Hyperdrive binding (pooled, the way to run in production) or straight to `EDGECLAW_DATABASE_URL`.
//!
//! Each call opens a connection (Hyperdrive pools the real ones), drives it while the statements run,
//! then closes it gracefully and waits for it to finish: a connection left to die at the end of a
//! request resets the socket, which local Hyperdrive does not survive.

use std::cell::Cell;
use std::str::FromStr;

use async_trait::async_trait;
use edgeclaw_memory_pg::{migrate, tokio_pg, PgValue, SqlClient, SqlError};
use futures::future::{self, Either};
use worker::{Env, Hyperdrive, Socket};

/// Hyperdrive binding that, when present, makes Postgres the memory store.
const HYPERDRIVE_BINDING: &str = "HYPERDRIVE";
/// Variable (or secret) with a Postgres URL, used when there is no Hyperdrive binding.
const DATABASE_URL_VAR: &str = "EDGECLAW_DATABASE_URL";

/// How connections are made.
enum Route {
    Hyperdrive(Hyperdrive),
    Direct(String),
}

thread_local! {
    /// Whether this isolate has brought the schema up to date.
    static MIGRATED: Cell<bool> = const { Cell::new(false) };
}

/// The SQL port over this Worker's Postgres.
pub struct PostgresClient {
    route: Route,
}

impl PostgresClient {
    /// The client, if the Worker has a Hyperdrive binding or a database URL.
    pub fn from_env(env: &Env) -> Option<Self> {
        if let Ok(hyperdrive) = env.hyperdrive(HYPERDRIVE_BINDING) {
            return Some(Self { route: Route::Hyperdrive(hyperdrive) });
        }
        let url = env
            .secret(DATABASE_URL_VAR)
            .map(|s| s.to_string())
            .or_else(|_| env.var(DATABASE_URL_VAR).map(|v| v.to_string()));
        url.ok().filter(|u| !u.trim().is_empty()).map(|url| Self { route: Route::Direct(url) })
    }

    /// Applies pending migrations once per isolate (the runner's advisory lock guards concurrent isolates).
    pub async fn ensure_migrated(&self, dimensions: usize) -> Result<(), SqlError> {
        if MIGRATED.with(Cell::get) {
            return Ok(());
        }
        migrate(self, dimensions).await?;
        MIGRATED.with(|m| m.set(true));
        Ok(())
    }

    async fn with_connection<T>(
        &self,
        work: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let unreachable = |e: &dyn std::fmt::Display| SqlError::Connection(e.to_string());
        let (config, socket) = match &self.route {
            Route::Hyperdrive(hyperdrive) => {
                let config =
                    tokio_postgres::Config::from_str(&hyperdrive.connection_string()).map_err(|e| unreachable(&e))?;
                (config, hyperdrive.connect().map_err(|e| unreachable(&e))?)
            }
            Route::Direct(url) => {
                let config = tokio_postgres::Config::from_str(url).map_err(|e| unreachable(&e))?;
                let host = match config.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
                    _ => return Err(SqlError::Connection(format!("{DATABASE_URL_VAR} must name a TCP host"))),
                };
                let port = config.get_ports().first().copied().unwrap_or(5432);
                (config, Socket::builder().connect(host, port).map_err(|e| unreachable(&e))?)
            }
        };
        let (client, connection) =
            config.connect_raw(socket, tokio_postgres::NoTls).await.map_err(|e| unreachable(&e))?;
        let mut connection = std::pin::pin!(connection);
        let result = {
            let work = std::pin::pin!(work(&client));
            match future::select(work, connection.as_mut()).await {
                Either::Left((result, _)) => result,
                Either::Right((closed, _)) => {
                    return Err(SqlError::Connection(match closed {
                        Ok(()) => "the connection closed".into(),
                        Err(e) => e.to_string(),
                    }))
                }
            }
        };
        drop(client);
        // The connection ends once it has told the server goodbye; its own error no longer matters.
        let _ = connection.await;
        result
    }
}

#[async_trait(?Send)]
impl SqlClient for PostgresClient {
    async fn query(&self, sql: &str, params: &[PgValue]) -> Result<Vec<Vec<PgValue>>, SqlError> {
        self.with_connection(async |client| tokio_pg::query(client, sql, params).await).await
    }

    async fn transaction(&self, statements: &[(String, Vec<PgValue>)]) -> Result<(), SqlError> {
        self.with_connection(async |client| tokio_pg::transaction(client, statements).await).await
    }
}
