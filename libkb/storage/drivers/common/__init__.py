"""HTTP plumbing shared by the S3, Azure and GCS drivers, one job a module:

- :mod:`.transport`: fixes to Libcloud's HTTP connection (timeouts and proxies
  on streams, no Libcloud retries, no pinned request bodies).
- :mod:`.per_thread`: one Libcloud connection per thread.
- :mod:`.errors`: HTTP failures as the Libcloud exceptions the adapter maps.
- :mod:`.downloads`: streamed downloads with bounded memory.
- :mod:`.uploads`: exact-size parts, uploaded a bounded number at a time.
- :mod:`.timestamps`: service timestamps to epoch milliseconds.
"""
