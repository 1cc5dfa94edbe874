"""Test harness for the edgeclaw end-to-end suite.

* ``harness.llm_server`` - a scripted fake of the OpenAI, Anthropic and Gemini
  HTTP APIs (stdlib only).
* ``harness.worker`` - starts/stops the real worker under ``wrangler dev``.
* ``harness.api`` - a small HTTP/SSE client for the worker's API.
"""
