//! Embeddings: the [`Embedder`] port and its HTTP implementation for OpenAI-compatible `/embeddings`
//! (OpenAI, Together, Ollama, vLLM, …) and Gemini `batchEmbedContents`, with batching, retries and a
//! dimension check.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::MemoryError;
use crate::llm::client::parse_retry_after;
use crate::llm::{error_message, LlmError, ModelRoute, RetryPolicy, Wire};
use crate::ports::{HttpRequest, Ports};

/// Inputs per provider request.
pub const BATCH_SIZE: usize = 64;
/// Largest embeddings response accepted.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Turns texts into vectors.
#[async_trait(?Send)]
pub trait Embedder {
    /// `provider:model`, for reports.
    fn model(&self) -> String;
    /// Length of every vector.
    fn dimensions(&self) -> usize;
    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, MemoryError>;
}

/// Which model makes embeddings and how long its vectors are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingRoute {
    /// Provider, model, endpoint and key.
    pub route: ModelRoute,
    /// Vector length the store is built for.
    pub dimensions: usize,
    /// Whether to ask the provider for exactly `dimensions` (models that can shorten their vectors).
    pub request_dimensions: bool,
    /// A platform binding that serves the model instead of HTTP (`EDGECLAW_EMBEDDING_BINDING`, the name
    /// of a Workers AI binding).
    pub binding: Option<String>,
}

impl EmbeddingRoute {
    /// Embeds `texts` in batches of [`BATCH_SIZE`] with `embed_batch`, checking that each batch comes
    /// back as one vector per text, each `dimensions` long.
    pub async fn embed_in_batches<'a, F, E>(
        &self,
        texts: &'a [String],
        embed_batch: impl Fn(&'a [String]) -> F,
    ) -> Result<Vec<Vec<f32>>, MemoryError>
    where
        F: std::future::Future<Output = Result<Vec<Vec<f32>>, E>>,
        E: std::fmt::Display,
    {
        let model = self.route.label();
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH_SIZE) {
            let vectors = embed_batch(batch).await.map_err(|e| MemoryError::Embedding(format!("{model}: {e}")))?;
            if vectors.len() != batch.len() {
                let (got, sent) = (vectors.len(), batch.len());
                return Err(MemoryError::Embedding(format!("{model} returned {got} vectors for {sent} texts")));
            }
            if let Some(bad) = vectors.iter().find(|v| v.len() != self.dimensions) {
                return Err(MemoryError::DimensionMismatch(format!(
                    "{model} returns {} dimensions but the store is configured for {} (EDGECLAW_EMBEDDING_DIMENSIONS)",
                    bad.len(),
                    self.dimensions
                )));
            }
            out.extend(vectors);
        }
        Ok(out)
    }
}

/// An [`Embedder`] over HTTP.
pub struct HttpEmbedder {
    target: EmbeddingRoute,
    policy: RetryPolicy,
    ports: Ports,
}

impl HttpEmbedder {
    /// An embedder for `target`, retrying per `policy`.
    pub fn new(target: EmbeddingRoute, policy: RetryPolicy, ports: Ports) -> Self {
        Self { target, policy, ports }
    }

    fn request(&self, batch: &[String]) -> HttpRequest {
        let route = &self.target.route;
        let dims = self.target.request_dimensions.then_some(self.target.dimensions);
        match route.wire {
            Wire::Gemini => {
                let requests: Vec<Value> = batch
                    .iter()
                    .map(|text| {
                        let mut r =
                            json!({"model": format!("models/{}", route.model), "content": {"parts": [{"text": text}]}});
                        if let Some(d) = dims {
                            r["outputDimensionality"] = json!(d);
                        }
                        r
                    })
                    .collect();
                let url = format!("{}/v1beta/models/{}:batchEmbedContents", route.base_url, route.model);
                route.authorize(HttpRequest::post_json(url, &json!({ "requests": requests })))
            }
            _ => {
                let mut body = json!({"model": route.model, "input": batch, "encoding_format": "float"});
                if let Some(d) = dims {
                    body["dimensions"] = json!(d);
                }
                route.authorize(HttpRequest::post_json(format!("{}/embeddings", route.base_url), &body))
            }
        }
    }

    fn parse(&self, body: &[u8]) -> Result<Vec<Vec<f32>>, LlmError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| LlmError::Decode(format!("invalid JSON: {e}")))?;
        let vectors = |items: &[Value], field: &str| -> Option<Vec<Vec<f32>>> {
            items
                .iter()
                .map(|item| item.get(field)?.as_array()?.iter().map(|x| x.as_f64().map(|f| f as f32)).collect())
                .collect()
        };
        let parsed = match self.target.route.wire {
            Wire::Gemini => {
                value.get("embeddings").and_then(Value::as_array).and_then(|items| vectors(items, "values"))
            }
            _ => value.get("data").and_then(Value::as_array).and_then(|items| {
                let mut items = items.clone();
                items.sort_by_key(|item| item["index"].as_u64().unwrap_or(0));
                vectors(&items, "embedding")
            }),
        };
        parsed.ok_or_else(|| LlmError::Decode("no embeddings in the response".into()))
    }

    async fn embed_batch(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        let mut attempt = 0;
        loop {
            let error = match self.attempt(batch).await {
                Ok(vectors) => return Ok(vectors),
                Err(error) => error,
            };
            let delay = self.policy.retry_delay(attempt, &error, self.ports.random_u64()).ok_or(error)?;
            self.ports.clock.sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, LlmError> {
        let timeout = self.policy.request_timeout_ms;
        let exchange = async {
            let response = self.ports.http.send(self.request(batch)).await?;
            let status = response.status;
            let retry_after_ms =
                response.header("retry-after").and_then(|v| parse_retry_after(v, self.ports.clock.now_ms()));
            let body = response.bytes(MAX_RESPONSE_BYTES).await?;
            Ok::<_, LlmError>((status, retry_after_ms, body))
        };
        let (status, retry_after_ms, body) = self
            .ports
            .with_timeout(timeout, exchange)
            .await
            .unwrap_or(Err(LlmError::Transport(crate::ports::HttpError::Timeout(timeout))))?;
        if !(200..300).contains(&status) {
            return Err(LlmError::Status { status, message: error_message(&body), retry_after_ms });
        }
        self.parse(&body)
    }
}

#[async_trait(?Send)]
impl Embedder for HttpEmbedder {
    fn model(&self) -> String {
        self.target.route.label()
    }

    fn dimensions(&self) -> usize {
        self.target.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, MemoryError> {
        self.target.embed_in_batches(texts, |batch| self.embed_batch(batch)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::testing::{ports, Canned, ScriptedHttp};
    use futures::executor::block_on;
    use std::rc::Rc;

    fn embedder(
        http: Rc<ScriptedHttp>,
        wire: Wire,
        dims: usize,
    ) -> (HttpEmbedder, Rc<crate::ports::testing::ManualClock>) {
        let (ports, clock) = ports(http);
        let route = ModelRoute {
            provider: if wire == Wire::Gemini { "gemini" } else { "openai" },
            model: "embed-1".into(),
            wire,
            base_url: "https://e.test/v1".into(),
            api_key: Some("k".into()),
        };
        let target = EmbeddingRoute { route, dimensions: dims, request_dimensions: true, binding: None };
        (HttpEmbedder::new(target, RetryPolicy { base_delay_ms: 10, ..RetryPolicy::default() }, ports), clock)
    }

    fn openai_vectors(vectors: &[&[f32]]) -> Canned {
        let data: Vec<Value> = vectors
            .iter()
            .enumerate()
            .rev()
            .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
            .collect();
        Canned::json(200, &json!({"object": "list", "data": data}))
    }

    fn texts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("text {i}")).collect()
    }

    #[test]
    fn openai_vectors_come_back_in_input_order() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().push_back(Ok(openai_vectors(&[&[1.0, 0.0], &[0.0, 1.0]])));
        let (e, _) = embedder(http.clone(), Wire::OpenAi, 2);
        assert_eq!(block_on(e.embed(&texts(2))).unwrap(), vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        let sent: Value = serde_json::from_slice(&http.requests.borrow()[0].body).unwrap();
        assert_eq!((sent["dimensions"].as_u64(), sent["input"][1].as_str()), (Some(2), Some("text 1")));
        assert_eq!(http.requests.borrow()[0].url, "https://e.test/v1/embeddings");
    }

    #[test]
    fn large_inputs_are_sent_in_batches() {
        let http = Rc::new(ScriptedHttp::default());
        let one: &[f32] = &[1.0];
        http.responses.borrow_mut().push_back(Ok(openai_vectors(&vec![one; BATCH_SIZE])));
        http.responses.borrow_mut().push_back(Ok(openai_vectors(&[one; 6])));
        let (e, _) = embedder(http.clone(), Wire::OpenAi, 1);
        assert_eq!(block_on(e.embed(&texts(BATCH_SIZE + 6))).unwrap().len(), BATCH_SIZE + 6);
        assert_eq!(http.requests.borrow().len(), 2);
    }

    #[test]
    fn gemini_batches_use_batch_embed_contents() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().push_back(Ok(Canned::json(200, &json!({"embeddings": [{"values": [0.5, 0.5]}]}))));
        let (e, _) = embedder(http.clone(), Wire::Gemini, 2);
        assert_eq!(block_on(e.embed(&texts(1))).unwrap(), vec![vec![0.5, 0.5]]);
        let request = &http.requests.borrow()[0];
        assert!(request.url.ends_with("/v1beta/models/embed-1:batchEmbedContents"));
        let sent: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(sent["requests"][0]["outputDimensionality"], 2);
    }

    #[test]
    fn a_wrong_vector_length_is_a_dimension_mismatch() {
        let http = Rc::new(ScriptedHttp::default());
        http.responses.borrow_mut().push_back(Ok(openai_vectors(&[&[1.0, 0.0, 0.0]])));
        let (e, _) = embedder(http, Wire::OpenAi, 2);
        let err = block_on(e.embed(&texts(1))).unwrap_err();
        assert!(matches!(err, MemoryError::DimensionMismatch(ref m) if m.contains("returns 3 dimensions")), "{err}");
    }

    #[test]
    fn rate_limits_are_retried_and_other_errors_reported() {
        let http = Rc::new(ScriptedHttp::default());
        let mut limited = Canned::json(429, &json!({"error": {"message": "slow down"}}));
        limited.headers = vec![("retry-after".into(), "1".into())];
        http.responses.borrow_mut().extend([Ok(limited), Ok(openai_vectors(&[&[1.0]]))]);
        let (e, clock) = embedder(http.clone(), Wire::OpenAi, 1);
        assert_eq!(block_on(e.embed(&texts(1))).unwrap().len(), 1);
        assert_eq!(*clock.sleeps.borrow(), vec![1000]);

        http.responses.borrow_mut().push_back(Ok(Canned::json(401, &json!({"error": {"message": "bad key"}}))));
        let err = block_on(e.embed(&texts(1))).unwrap_err().to_string();
        assert!(err.contains("bad key") && err.contains("openai:embed-1"), "{err}");
    }
}
