//! Postgres for memory: memory-pg's SQL port over tokio-postgres on a Workers socket — through a
//! Hyperdrive binding (pooled, the way to run in production) or straight to `EDGECLAW_DATABASE_URL`.
//!
//! Queries share one connection per request (or per turn), opened on first use and driven in the
//! background; the owner calls [`PostgresClient::release`] before its request ends, which closes it
//! gracefully and waits until it has finished — a connection left to die with the request resets its
//! socket, which local Hyperdrive does not survive. Transactions get a connection of their own, so
//! concurrent queries can never land inside them.

use std::cell::Cell;
use std::rc::Rc;
use std::str::FromStr;

use async_trait::async_trait;
use edgeclaw_memory_pg::{migrate, tokio_pg, PgValue, SqlClient, SqlError};
use futures::channel::oneshot;
use futures::future::{self, Either};
use futures::lock::Mutex;
use tokio_postgres::{Client, Config, Connection, NoTls};
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

/// The shared connection: its client, and a signal that fires when its driver has finished.
struct Shared {
    client: Rc<Client>,
    finished: oneshot::Receiver<()>,
}

/// The SQL port over this Worker's Postgres.
pub struct PostgresClient {
    route: Route,
    shared: Mutex<Option<Shared>>,
}

fn unreachable(error: &dyn std::fmt::Display) -> SqlError {
    SqlError::Connection(error.to_string())
}

impl PostgresClient {
    /// The client, if the Worker has a Hyperdrive binding or a database URL.
    pub fn from_env(env: &Env) -> Option<Self> {
        let route = match env.hyperdrive(HYPERDRIVE_BINDING) {
            Ok(hyperdrive) => Route::Hyperdrive(hyperdrive),
            Err(_) => {
                let url = env
                    .secret(DATABASE_URL_VAR)
                    .map(|s| s.to_string())
                    .or_else(|_| env.var(DATABASE_URL_VAR).map(|v| v.to_string()))
                    .ok()
                    .filter(|u| !u.trim().is_empty())?;
                Route::Direct(url)
            }
        };
        Some(Self { route, shared: Mutex::new(None) })
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

    /// Closes the shared connection, if one is open, and waits until it has said goodbye.
    pub async fn release(&self) {
        if let Some(Shared { client, finished }) = self.shared.lock().await.take() {
            drop(client);
            // An error only means the driver is already gone.
            let _ = finished.await;
        }
    }

    async fn connect(&self) -> Result<(Client, Connection<Socket, tokio_postgres::tls::NoTlsStream>), SqlError> {
        let (config, socket) = match &self.route {
            Route::Hyperdrive(hyperdrive) => {
                let config = Config::from_str(&hyperdrive.connection_string()).map_err(|e| unreachable(&e))?;
                (config, hyperdrive.connect().map_err(|e| unreachable(&e))?)
            }
            Route::Direct(url) => {
                let config = Config::from_str(url).map_err(|e| unreachable(&e))?;
                let host = match config.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
                    _ => return Err(SqlError::Connection(format!("{DATABASE_URL_VAR} must name a TCP host"))),
                };
                let port = config.get_ports().first().copied().unwrap_or(5432);
                (config, Socket::builder().connect(host, port).map_err(|e| unreachable(&e))?)
            }
        };
        config.connect_raw(socket, NoTls).await.map_err(|e| unreachable(&e))
    }

    /// The shared client, connecting (and starting its driver) on first use.
    async fn shared_client(&self) -> Result<Rc<Client>, SqlError> {
        let mut shared = self.shared.lock().await;
        if let Some(open) = shared.as_ref().filter(|open| !open.client.is_closed()) {
            return Ok(open.client.clone());
        }
        let (client, connection) = self.connect().await?;
        let (done, finished) = oneshot::channel();
        wasm_bindgen_futures::spawn_local(async move {
            // The connection ends when its client is dropped (or the server goes away).
            let _ = connection.await;
            let _ = done.send(());
        });
        let client = Rc::new(client);
        *shared = Some(Shared { client: client.clone(), finished });
        Ok(client)
    }

    /// A connection of its own for `work`, driven alongside it and closed gracefully afterwards.
    async fn dedicated<T>(&self, work: impl AsyncFnOnce(&Client) -> Result<T, SqlError>) -> Result<T, SqlError> {
        let (client, connection) = self.connect().await?;
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
        let client = self.shared_client().await?;
        tokio_pg::query(&client, sql, params).await
    }

    async fn transaction(&self, statements: &[(String, Vec<PgValue>)]) -> Result<(), SqlError> {
        self.dedicated(async |client| tokio_pg::transaction(client, statements).await).await
    }
}
