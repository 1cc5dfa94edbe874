//! edgeclaw on Cloudflare Workers: the fetch entry point and the Durable Objects (`Session`, `Memory`,
//! `Scheduler`, `Secrets`, `Audit`). This crate
//! only adapts — every decision is made by `edgeclaw-core`.

mod ai;
mod audit_object;
mod config;
mod gateway;
mod guard;
mod http;
mod memory_object;
mod memory_store;
mod ports;
mod postgres;
mod scheduler;
mod secrets_object;
mod session;
mod store;

pub use audit_object::Audit;
pub use memory_object::Memory;
pub use scheduler::Scheduler;
pub use secrets_object::Secrets;
pub use session::Session;
use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    gateway::handle(req, env, &ctx).await
}

/// The cron trigger: a safety net that makes the scheduler start anything due (its own alarm normally
/// does); it never runs a turn itself.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let sweep = scheduler::call(&env, &scheduler::SchedulerCommand::Sweep).await;
    if let Err(error) = sweep {
        worker::console_error!("routine sweep failed: {}", error.message);
    }
}
