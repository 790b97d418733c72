"""What every emulator shares, whatever wire format it speaks.

- ``server``: ``EmulatorServer``, the lifecycle (a background thread or the running loop, stop
  and shutdown), and serving until SIGINT/SIGTERM;
- ``state``: ``Settings`` and ``State``, everything a request handler reads;
- ``errors``: ``WireError``, a refused request as data (each wire format renders its own body);
- ``faults``: ``Fault`` and ``FaultQueue``; ``stats``: counters and the request log;
- ``limits``: the rate-limit buckets (RPM, RPD, TPM, TPD per key and model);
- ``control``: the ``/_emulator/`` control plane; ``http``: JSON answers and aborted transports.

A wire format lives beside this package (``emulator/groq/``) and renders these into its bytes.
"""
