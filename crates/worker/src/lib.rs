//! edgeclaw on Cloudflare Workers: the fetch entry point and the `Session` and `Memory` Durable Objects. This crate
//! only adapts — every decision is made by `edgeclaw-core`.

mod ai;
mod config;
mod gateway;
mod http;
mod memory_object;
mod memory_store;
mod ports;
mod postgres;
mod session;
mod store;

pub use memory_object::Memory;
pub use session::Session;
use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    gateway::handle(req, env, &ctx).await
}
