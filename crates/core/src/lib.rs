//! edgeclaw core: the whole agent, free of any platform.
//!
//! Everything the agent decides lives here — the turn loop, LLM wire formats and resilience, tools,
//! skills, sessions and the shape of the HTTP API. It performs no I/O of its own: adapters (Cloudflare
//! Workers, Spin) implement the [`ports`] and the session store, and translate HTTP.
#![warn(missing_docs)]

pub mod agent;
pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod llm;
pub mod memory;
pub mod ports;
pub mod routine;
pub mod security;
pub mod session;
pub mod skills;
pub mod tools;

pub use error::{Error, Result};
