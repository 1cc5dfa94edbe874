//! Embeddings through a Workers AI binding (`[ai] binding = "AI"` in wrangler.toml).

use async_trait::async_trait;
use edgeclaw_core::memory::{Embedder, EmbeddingRoute, MemoryError};
use js_sys::{Array, Function, Promise, Reflect, JSON};
use serde_json::{json, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

/// An [`Embedder`] that calls `run(model, {text})` on a binding: the Workers AI binding, or anything
/// that answers the same way (e.g. a service binding to a Worker exposing `run` over RPC).
pub struct AiBindingEmbedder {
    binding: Option<JsValue>,
    name: String,
    target: EmbeddingRoute,
}

impl AiBindingEmbedder {
    /// An embedder for `target` over the binding `name` of `env` (a missing binding fails each call clearly).
    pub fn new(env: &Env, name: &str, target: EmbeddingRoute) -> Self {
        let binding = Reflect::get(env, &JsValue::from_str(name)).ok().filter(|b| b.is_object());
        Self { binding, name: name.to_string(), target }
    }

    async fn run(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let binding = self.binding.as_ref().ok_or_else(|| {
            format!(
                "the Worker has no binding `{}`: add `[ai] binding = \"{}\"` to wrangler.toml",
                self.name, self.name
            )
        })?;
        let run: Function = Reflect::get(binding, &JsValue::from_str("run"))
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| format!("binding `{}` has no `run` method", self.name))?;
        let input = JSON::parse(&json!({ "text": batch }).to_string()).map_err(js_message)?;
        // `run` answers with a promise, or a thenable when the binding is reached over RPC.
        // `Reflect.apply`, not `run.call`: on an RPC stub `call` would be a remote property.
        let args = Array::of2(&JsValue::from_str(&self.target.route.model), &input);
        let answer = Reflect::apply(&run, binding, &args).map_err(js_message)?;
        let output = JsFuture::from(Promise::resolve(&answer)).await.map_err(js_message)?;
        let text: String = JSON::stringify(&output).map_err(js_message)?.into();
        let value: Value = serde_json::from_str(&text).map_err(|e| format!("invalid output: {e}"))?;
        value["data"]
            .as_array()
            .and_then(|rows| {
                rows.iter().map(|row| row.as_array()?.iter().map(|x| x.as_f64().map(|f| f as f32)).collect()).collect()
            })
            .ok_or_else(|| "no `data` vectors in the output".to_string())
    }
}

/// The message of a thrown JavaScript value.
fn js_message(error: JsValue) -> String {
    Reflect::get(&error, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

#[async_trait(?Send)]
impl Embedder for AiBindingEmbedder {
    fn model(&self) -> String {
        self.target.route.label()
    }

    fn dimensions(&self) -> usize {
        self.target.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, MemoryError> {
        self.target.embed_in_batches(texts, |batch| self.run(batch)).await
    }
}
