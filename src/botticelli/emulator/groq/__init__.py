"""The Groq (OpenAI chat-completions) emulator: Groq's bytes on top of ``emulator.common``.

- ``emulator``: ``Emulator`` (the server) and ``serve``/``ServeOptions`` (the command lines);
- ``app``: the router; ``chat``: chat completions, JSON and SSE; ``models``: the model list;
- ``validation``: a request body -> ``ChatParams`` or ``WireError``;
- ``fault_responses``: what the faults that replace a response send;
- ``files``, ``batches``: the Files and Batch APIs;
- ``wire``: ids, bodies, frames and error texts; ``http``: bearer keys, ``WireError`` -> response.
"""
