"""BigModel (Zhipu AI): `params` (schemas), `wire` (pure mapping), `client` (httpx)."""
