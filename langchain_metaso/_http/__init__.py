"""The HTTP core, private: every request of every public class goes through it
(``client.MetasoClient``; each module's docstring says what it does)."""

from langchain_metaso._http.call import Call
from langchain_metaso._http.client import MetasoClient
from langchain_metaso._http.pool import ConnectionPool

__all__ = ["Call", "ConnectionPool", "MetasoClient"]
