"""HTTP plumbing shared by the S3, Azure and GCS drivers, one job a module:

- :mod:`.transport`: fixes to Libcloud's HTTP connection (timeouts and proxies
  on streams, no Libcloud retries, no pinned request bodies).
- :mod:`.per_thread`: one Libcloud connection per thread (all three drivers).
- :mod:`.errors`: HTTP failures as the Libcloud exceptions the adapter maps.
- :mod:`.downloads`: streamed, ranged downloads with bounded memory (the
  download methods of Azure and GCS; the range header of all three).
- :mod:`.uploads`: small streams in one request, large ones in exact-size
  parts uploaded a bounded number at a time (all three).
- :mod:`.timestamps`: service timestamps to epoch milliseconds.
- :mod:`.calls`: what helper modules get instead of the driver (Azure, GCS).
"""
