// A stand-in for the Workers AI binding, bound to the edgeclaw worker as a service named AI.
// `env.AI.run(model, {text})` reaches `run` over RPC and answers like Workers AI text-embedding
// models ({shape, data}); the vectors come from the scripted LLM server's embeddings endpoint.
// Like the real binding, failures are thrown as errors whose message starts with a numeric code.
import { WorkerEntrypoint } from "cloudflare:workers";

export default class WorkersAi extends WorkerEntrypoint {
  async run(model, inputs) {
    if (typeof model !== "string" || !model.startsWith("@cf/")) {
      throw new Error(`5007: No such model ${model} or task`);
    }
    const text = typeof inputs?.text === "string" ? [inputs.text] : inputs?.text;
    if (!Array.isArray(text) || text.length === 0 || text.length > 100) {
      throw new Error("5006: Error: required properties at '/' are 'text'");
    }
    const response = await fetch(`${this.env.EMBEDDINGS_URL}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${this.env.EMBEDDINGS_KEY}` },
      body: JSON.stringify({ model: model.slice("@cf/".length), input: text }),
    });
    if (response.status === 429) throw new Error("3040: Capacity temporarily exceeded, please try again.");
    if (!response.ok) throw new Error(`3043: Internal server error (${response.status})`);
    const body = await response.json();
    const data = body.data.sort((a, b) => a.index - b.index).map((item) => item.embedding);
    return { shape: [data.length, data[0].length], data, pooling: "mean" };
  }

  async fetch() {
    return new Response("the Workers AI stand-in answers RPC only", { status: 404 });
  }
}
