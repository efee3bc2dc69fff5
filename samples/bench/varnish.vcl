# Varnish in front of one origin: the second peer `reel edge` is measured against over
# HTTP/1.1 (edge/compare_test.go, TestCompareNginx, run by `make bench`). Varnish has no TLS,
# so it takes no part in the HTTP/2 rows. A template: the test fills in {{ORIGIN_PORT}} (the
# origin, 127.0.0.1) and runs
#     varnishd -F -n {{RUN_DIR}} -a 127.0.0.1:{{LISTEN_PORT}} -f {{RUN_DIR}}/bench.vcl -s malloc,512m
#
# Meant to be an ordinary production setup, as the nginx one is: Debian's Varnish 7.1 with its
# built-in VCL (freshness from the origin's Cache-Control, request coalescing on misses,
# streaming of large bodies), the whole cache in memory (malloc storage, 512 MB like reel's
# --memory), default thread pools. The only addition: a response header saying hit or miss,
# which the test checks before and after the measured runs.

vcl 4.1;

backend origin {
    .host = "127.0.0.1";
    .port = "{{ORIGIN_PORT}}";
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
