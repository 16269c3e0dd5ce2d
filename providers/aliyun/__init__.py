"""DashScope (Aliyun Model Studio): `params` (schemas), `wire` (pure mapping), `client` (httpx)."""
