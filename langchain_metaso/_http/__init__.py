"""The HTTP core, private: every request of every public class goes through it.

- ``call``: ``Call``, one API call as an endpoint module describes it;
- ``client``: ``MetasoClient``, the sans-I/O attempts and their sync and async drivers;
- ``retry``: the retry policy (what is retried, after how long, within which limits);
- ``failures``: how a failed answer becomes a typed error (every message, once);
- ``body``: an answer's bytes read within max_response_bytes and total_timeout;
- ``pool``: the pooled ``httpx`` clients an instance and its copies share;
- ``sse``: the server-sent events parser.
"""

from langchain_metaso._http.call import Call
from langchain_metaso._http.client import MetasoClient
from langchain_metaso._http.pool import ConnectionPool

__all__ = ["Call", "ConnectionPool", "MetasoClient"]
