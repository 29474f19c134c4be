"""Data sources: where a download stage fetches raw data from (http, local, nsidc, stac)."""
